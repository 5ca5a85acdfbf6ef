"""The native decode step: one C call per token for the lean loop's int4 path.

``native_decode.c`` (beside this file) computes what ``LlamaDecoder.forward`` computes for one
token, over the same int4 weights, LoRA matrices and KV cache, with float32 activations (the
torch loop casts every matmul's input to bf16). It is built with the machine's C compiler
(``cc``, or ``$CC``) at first use, with ``-march=native``, and kept in the model cache
(``$TUTOR_NATIVE_DIR`` instead, where set) keyed by the source, the flags, the compiler and the
CPU, so later starts load it in milliseconds.
Without a compiler, or on a model it does not cover, the torch loop runs as before; whether
it runs is decided by measurement like the rest of the decode path (``tutor/lm/speed.py``).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("native_decode.c")
FLAGS = [
    "-O3",
    "-march=native",
    "-std=gnu11",
    "-shared",
    "-fPIC",
    "-fno-math-errno",
    "-fopenmp-simd",
    "-pthread",
]
ABI = 4
BUILD_TIMEOUT_S = 120
MAX_HIDDEN = 16384  # the C step keeps its per-token buffers on the stack


class Proj(ctypes.Structure):
    _fields_ = [
        ("packed", ctypes.c_void_p),
        ("sz", ctypes.c_void_p),
        ("n", ctypes.c_int),
        ("k", ctypes.c_int),
        ("g", ctypes.c_int),
        ("a_q", ctypes.c_void_p),
        ("a_s", ctypes.c_void_p),
        ("b_q", ctypes.c_void_p),
        ("b_s", ctypes.c_void_p),
        ("r", ctypes.c_int),
        ("dense", ctypes.c_void_p),
    ]


class Layer(ctypes.Structure):
    _fields_ = [
        ("norm_in", ctypes.c_void_p),
        ("norm_post", ctypes.c_void_p),
        ("qkv", Proj),
        ("o", Proj),
        ("gate_up", Proj),
        ("down", Proj),
    ]


class Model(ctypes.Structure):
    _fields_ = [
        ("n_layers", ctypes.c_int),
        ("hidden", ctypes.c_int),
        ("n_heads", ctypes.c_int),
        ("n_kv", ctypes.c_int),
        ("head_dim", ctypes.c_int),
        ("inter", ctypes.c_int),
        ("vocab", ctypes.c_int),
        ("max_pos", ctypes.c_int),
        ("eps", ctypes.c_float),
        ("final_eps", ctypes.c_float),
        ("scaling", ctypes.c_float),
        ("embed", ctypes.c_void_p),
        ("cos", ctypes.c_void_p),
        ("sin", ctypes.c_void_p),
        ("layers", ctypes.POINTER(Layer)),
        ("norm", ctypes.c_void_p),
        ("head", Proj),
        ("head2", Proj),
    ]


class Unsupported(Exception):
    """The model (or this machine) cannot take the native step; the message says why."""


# -- building and loading ----------------------------------------------------------------------


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")


def _version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.splitlines()[0] if out.stdout else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def library_path(cache_dir: Path, cc: str, flags: list[str]) -> Path:
    from tutor.lm.machine import cpu_key

    ident = "\n".join([SOURCE.read_text(encoding="utf-8"), " ".join(flags), _version(cc)])
    ident += repr(sorted(cpu_key().items()))
    return (
        Path(cache_dir) / "native" / f"decode-{hashlib.sha256(ident.encode()).hexdigest()[:16]}.so"
    )


def _root(cache_dir: Path | None) -> Path:
    """Where the library is kept: ``$TUTOR_NATIVE_DIR`` (one build for several data dirs, as
    in the tests), else ``cache_dir``, else a per-user temporary directory."""
    if os.environ.get("TUTOR_NATIVE_DIR"):
        return Path(os.environ["TUTOR_NATIVE_DIR"])
    if cache_dir is None:
        return Path(tempfile.gettempdir()) / f"tutor-native-{os.getuid()}"
    return Path(cache_dir)


def build(cache_dir: Path | None, flags: list[str] | None = None) -> Path:
    """The compiled library for this machine, built if missing. Raises ``Unsupported``.
    ``flags`` replaces ``FLAGS`` (tests build the portable C path with ``-mno-avx512f``)."""
    flags = FLAGS if flags is None else flags
    cc = _compiler()
    if cc is None:
        raise Unsupported("no C compiler (cc, gcc or $CC) on PATH")
    out = library_path(_root(cache_dir), cc, flags)
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    cmd = [cc, *flags, str(SOURCE), "-o", tmp, "-lm"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as e:
        Path(tmp).unlink(missing_ok=True)
        raise Unsupported(f"compiling {SOURCE.name} failed: {e}") from e
    if res.returncode != 0:
        Path(tmp).unlink(missing_ok=True)
        tail = " ".join(res.stderr.strip().splitlines()[-3:])
        raise Unsupported(f"compiling {SOURCE.name} failed ({' '.join(cmd[:3])} ...): {tail}")
    os.replace(tmp, out)  # atomic: a concurrent start sees the old state or a whole library
    log.info("built the native decode step: %s", out)
    return out


# keyed by where and how it is built: a loaded library is not looked for again (building
# checks the compiler's version in a subprocess, and every decoder asks for the library)
_LOADED: dict[tuple[str, tuple[str, ...]], ctypes.CDLL] = {}
_LOCK = threading.Lock()


def load(cache_dir: Path | None, flags: list[str] | None = None) -> ctypes.CDLL:
    """Build (if needed) and load the library; once per process, place and flags. Raises
    ``Unsupported``."""
    key = (str(_root(cache_dir)), tuple(FLAGS if flags is None else flags))
    with _LOCK:
        lib = _LOADED.get(key)
        if lib is None:
            path = build(cache_dir, flags)
            try:
                lib = ctypes.CDLL(str(path))
            except OSError as e:
                raise Unsupported(f"loading {path} failed: {e}") from e
            if lib.tutor_native_abi() != ABI:
                raise Unsupported(f"{path} is not ABI {ABI}")
            lib.tutor_native_step.argtypes = [
                ctypes.POINTER(Model),
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_void_p,
                ctypes.c_int,
            ]
            lib.tutor_native_step.restype = ctypes.c_int
            _LOADED[key] = lib
        return lib


# -- a model's weights as C structs --------------------------------------------------------------


class NativeStep:
    """``LlamaDecoder.forward`` for one token as one C call. Built from the decoder's fused
    projections; holds references to every tensor it points at."""

    def __init__(self, lib: ctypes.CDLL, decoder: Any):
        self._lib = lib
        self._keep: list[torch.Tensor] = []
        self.switch: Any = None  # the adapter's on/off switch (LoraSwitch), if any
        if decoder.dtype != torch.float32:
            raise Unsupported(f"activations in {decoder.dtype} (the native step is float32)")
        cfg = decoder.model.config
        hidden = int(cfg.hidden_size)
        if hidden > MAX_HIDDEN:
            raise Unsupported(f"hidden size {hidden} > {MAX_HIDDEN}")
        if len({layer.eps for layer in decoder.layers}) > 1:
            raise Unsupported("layers with different norm epsilons")
        layers = (Layer * len(decoder.layers))()
        inter = 0
        for i, layer in enumerate(decoder.layers):
            parts = [layer.qkv_fused, layer.o_proj, layer.gate_up_fused, layer.down_proj]
            if any(p is None for p in parts):
                raise Unsupported("unfused projections")
            qkv, o, gu, down = (self._proj(p) for p in parts)
            inter = gu.n // 2
            layers[i] = Layer(
                self._ptr(layer.norm_in), self._ptr(layer.norm_post), qkv, o, gu, down
            )
        head, head2 = self._head(decoder.lm_head)
        embed = decoder.embed.weight
        if embed.dtype != torch.float32:
            raise Unsupported(f"embedding in {embed.dtype}")
        self.vocab = int(embed.shape[0])
        if head.n < self.vocab:
            raise Unsupported("an output head smaller than the vocabulary")
        self._layers = layers
        self.model = Model(
            len(decoder.layers),
            hidden,
            decoder.n_heads,
            decoder.n_kv,
            decoder.head_dim,
            inter,
            self.vocab,
            decoder.max_positions,
            float(decoder.layers[0].eps) if decoder.layers else 0.0,
            float(decoder.eps),
            float(decoder.scaling),
            self._ptr(embed),
            self._ptr(decoder.cos),
            self._ptr(decoder.sin),
            layers,
            self._ptr(decoder.norm),
            head,
            head2,
        )
        self.out_features = head.n
        self._ref = ctypes.byref(self.model)

    def _ptr(self, t: torch.Tensor | None) -> int | None:
        if t is None:
            return None
        t = t.detach()
        if not t.is_contiguous() or t.device.type != "cpu":
            raise Unsupported("a weight that is not a contiguous CPU tensor")
        if t.dtype not in (torch.float32, torch.uint8, torch.int8, torch.bfloat16):
            raise Unsupported(f"a weight in {t.dtype}")
        self._keep.append(t)
        return t.data_ptr()

    def _int4(self, mod: Any) -> Proj:
        from tutor.lm.quant import Int4Linear

        if not isinstance(mod, Int4Linear):
            raise Unsupported(f"a {type(mod).__name__} projection (the native step needs int4)")
        n, k, g = mod.out_features, mod.in_features, mod.group_size
        if n % 64 or k % g or g % 2 or mod.packed.shape != (n, k // 2):
            raise Unsupported(f"an int4 layout it does not read ({n}x{k}, groups of {g})")
        if mod.scales_and_zeros.shape != (k // g, n, 2):
            raise Unsupported("an int4 scale layout it does not read")
        return Proj(self._ptr(mod.packed), self._ptr(mod.scales_and_zeros), n, k, g)

    def _proj(self, fn: Any) -> Proj:
        base, lora = getattr(fn, "tutor_base", fn), getattr(fn, "tutor_lora", None)
        p = self._int4(base)
        if lora is not None:
            r = int(lora.a_q.shape[0])
            if lora.a_q.shape != (r, p.k) or lora.b_q.shape != (p.n, r) or r % 16 or p.k % 16:
                raise Unsupported("LoRA matrices of an unexpected shape")
            p.a_q, p.a_s = self._ptr(lora.a_q), self._ptr(lora.a_s)
            p.b_q, p.b_s = self._ptr(lora.b_q), self._ptr(lora.b_s)
            p.r = r
            self.switch = getattr(fn, "tutor_switch", None)
        return p

    def _head(self, head: Any) -> tuple[Proj, Proj]:
        from tutor.lm.quant import Int4Linear, Int8GroupLinear

        if isinstance(head, Int8GroupLinear):
            return self._int4(head.hi), self._int4(head.lo)
        if isinstance(head, Int4Linear):
            return self._int4(head), Proj()
        w = getattr(head, "weight", None)
        if type(head) is torch.nn.Linear and head.bias is None and w is not None:
            if w.dtype != torch.float32:
                raise Unsupported(f"an output head in {w.dtype}")
            n, k = w.shape
            return Proj(n=n, k=k, dense=self._ptr(w)), Proj()
        raise Unsupported(f"a {type(head).__name__} output head")

    def __call__(self, token: int, pos: int, kv: torch.Tensor) -> torch.Tensor:
        """The logits (1, out_features) after feeding ``token`` at ``pos``; writes its K and V
        into ``kv`` (the torch loop's cache, float32 and contiguous). The matmuls are shared
        by torch's current thread count (the decode loop sets the measured count)."""
        logits = torch.empty(1, self.out_features, dtype=torch.float32)
        lora_on = 1 if self.switch is None or self.switch.on else 0
        rc = self._lib.tutor_native_step(
            self._ref,
            token,
            pos,
            kv.data_ptr(),
            kv.shape[3],
            lora_on,
            logits.data_ptr(),
            torch.get_num_threads(),
        )
        if rc != 0:
            raise ValueError(f"native decode step refused token {token} at position {pos}")
        return logits


def native_step(decoder: Any, cache_dir: Path | None) -> NativeStep:
    """The native step for a ``LlamaDecoder``; raises ``Unsupported`` with the reason."""
    return NativeStep(load(cache_dir), decoder)
