"""Weight-only int4 / int8 quantization of a causal LM's linear layers, for decoding on CPU.

Decoding one token reads every weight once, so on a CPU it is bound by memory traffic and
per-op overhead rather than by arithmetic. Storing the weights in 4 or 8 bits cuts the traffic
4-8x against fp32. The matmuls run in PyTorch's own CPU kernels
(``_weight_int4pack_mm_for_cpu``, ``_weight_int8pack_mm``) with bf16 activations; those kernels
are vectorised for bf16 only (fp16 and fp32 inputs take a scalar path ~30x slower), so each
layer casts its input to bf16 and its output back.

* ``int4``: groups of 32 input weights share a scale and an offset (asymmetric, min/max), the
  layout of GGUF's Q4_1. The bundled SmolLM2 ships as Q4_1, so its dequantized weights already
  lie on that grid and ``int4`` reproduces them (up to bf16 rounding of the scales): ``auto``
  picks ``int4`` only in that lossless case. The bundled model's output head is Q8_0 (8-bit,
  groups of 32): it becomes ``Int8GroupLinear``, two int4 matmuls, again without changing it.
* ``int8``: one symmetric scale per output row; lossy for any model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

GROUP_SIZE = 32
COMPUTE_DTYPE = torch.bfloat16  # the CPU kernels are vectorised for bf16 activations only
# ``auto`` applies int4 only when every group already sits on a 4-bit grid to within this
# rounding error, in units of the group's step (ordinary weights: up to 0.5).
LOSSLESS_TOLERANCE = 1e-3


def _int4_parts(
    w: torch.Tensor, group_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Asymmetric min/max 4-bit quantization per group of ``group_size`` input weights.

    Returns ``q`` (int32, 0..15, shape of ``w``), ``scale`` and ``lo`` (fp32, ``(N, K/g)``) with
    ``w ~= q * scale + lo``, and the largest rounding error in units of a step: ~0 for weights
    dequantized from a Q4_1-style checkpoint, up to 0.5 for ordinary weights.
    """
    n, k = w.shape
    g = w.detach().to(torch.float32).reshape(n, k // group_size, group_size)
    lo, hi = torch.aminmax(g, dim=-1)
    scale = (hi - lo) / 15
    inv = torch.where(scale > 0, 1 / scale, torch.zeros_like(scale))
    t = (g - lo[..., None]).mul_(inv[..., None])
    q = t.round()
    err = float((t - q).abs_().max()) if t.numel() else 0.0
    return q.clamp_(0, 15).to(torch.int32).reshape(n, k), scale, lo, err


def int4_error(w: torch.Tensor, group_size: int = GROUP_SIZE) -> float:
    """Largest rounding error of ``int4`` on ``w``, in units of each group's step."""
    if w.dim() != 2 or w.shape[1] % group_size:
        return float("inf")
    return _int4_parts(w, group_size)[3]


_CONCAT_CHECKED: set[tuple[int, int, tuple[int, ...]]] = set()


class Int4Linear(nn.Module):
    """``nn.Linear`` (no bias) with 4-bit groupwise weights; computes in bf16 on CPU."""

    packed: torch.Tensor  # buffers (register_buffer), declared for the type checker
    scales_and_zeros: torch.Tensor

    def __init__(
        self,
        packed: torch.Tensor,
        scales_and_zeros: torch.Tensor,
        in_features: int,
        out_features: int,
        group_size: int,
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.group_size = group_size
        self.register_buffer("packed", packed)
        self.register_buffer("scales_and_zeros", scales_and_zeros)

    @classmethod
    def from_weight(cls, w: torch.Tensor, group_size: int = GROUP_SIZE) -> Int4Linear:
        q, scale, lo, _ = _int4_parts(w, group_size)
        return cls.from_parts(q, scale, lo, group_size)

    @classmethod
    def from_parts(
        cls, q: torch.Tensor, scale: torch.Tensor, lo: torch.Tensor, group_size: int
    ) -> Int4Linear:
        n, k = q.shape
        # The kernel dequantizes as (q - 8) * scale + zero, so zero = lo + 8 * scale.
        sz = torch.stack([scale, lo + 8 * scale], -1).transpose(0, 1).contiguous()
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
        return cls(packed, sz.to(COMPUTE_DTYPE), k, n, group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(
            x.reshape(-1, shape[-1]).to(COMPUTE_DTYPE),
            self.packed,
            self.group_size,
            self.scales_and_zeros,
        )
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    @staticmethod
    def concat(parts: list[Int4Linear]) -> Int4Linear | None:
        """One module computing ``cat([p(x) for p in parts], -1)``, or None when the packed
        layout cannot be concatenated (checked on a probe input, so a layout change in a future
        PyTorch falls back to separate matmuls instead of giving wrong numbers)."""
        first = parts[0]
        if any(
            p.in_features != first.in_features or p.group_size != first.group_size for p in parts
        ):
            return None
        fused = Int4Linear(
            torch.cat([p.packed for p in parts]),
            torch.cat([p.scales_and_zeros for p in parts], 1),
            first.in_features,
            sum(p.out_features for p in parts),
            first.group_size,
        )
        shape = (first.in_features, first.group_size, tuple(p.out_features for p in parts))
        if shape not in _CONCAT_CHECKED:  # once per process and shape, not for every layer
            probe = torch.linspace(-1, 1, first.in_features, dtype=COMPUTE_DTYPE)[None]
            with torch.inference_mode():
                if not torch.equal(fused(probe), torch.cat([p(probe) for p in parts], -1)):
                    return None
            _CONCAT_CHECKED.add(shape)
        # the parts' packed weights become views of the fused ones (the same bytes), so the
        # fused copy costs no memory; their (small) scales stay their own
        start = 0
        for p in parts:
            n = p.packed.shape[0]
            p.packed = fused.packed[start : start + n]
            start += n
        return fused

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, int4 g{self.group_size}"


def _int8_group_parts(w: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Symmetric 8-bit quantization per group (GGUF's Q8_0): ``w ~= q * scale``, q in -127..127.
    Also returns the largest rounding error in steps (~0 for weights dequantized from Q8_0)."""
    n, k = w.shape
    g = w.detach().to(torch.float32).reshape(n, k // group_size, group_size)
    scale = g.abs().amax(-1) / 127
    inv = torch.where(scale > 0, 1 / scale, torch.zeros_like(scale))
    t = g * inv[..., None]
    q = t.round()
    err = float((t - q).abs_().max()) if t.numel() else 0.0
    return q.clamp_(-127, 127).to(torch.int32).reshape(n, k), scale, err


class Int8GroupLinear(nn.Module):
    """Groupwise int8 weights (Q8_0 layout) as two int4 matmuls: q = 16 * hi + lo with hi in
    -8..7 and lo in 0..15, so ``W x = (16 s hi) x + (s lo) x``. Half the bytes of bf16, and
    exact for a Q8_0 matrix (up to bf16 rounding of the scales) where int8 per row is not."""

    def __init__(self, hi: Int4Linear, lo: Int4Linear):
        super().__init__()
        self.hi, self.lo = hi, lo
        self.in_features, self.out_features = hi.in_features, hi.out_features

    @classmethod
    def from_parts(cls, q: torch.Tensor, scale: torch.Tensor, group_size: int) -> Int8GroupLinear:
        hi = torch.div(q, 16, rounding_mode="floor")
        lo = q - 16 * hi
        zero = torch.zeros_like(scale)
        # Int4Linear.from_parts stores (q4, scale, lo) as w = q4 * scale + lo.
        return cls(
            Int4Linear.from_parts(hi + 8, 16 * scale, -128 * scale, group_size),
            Int4Linear.from_parts(lo, scale, zero, group_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hi(x) + self.lo(x)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, int8 g{self.hi.group_size}"


class Int8Linear(nn.Module):
    """``nn.Linear`` (no bias) with int8 weights and one scale per output row; bf16 compute."""

    weight_int8: torch.Tensor  # buffers (register_buffer), declared for the type checker
    scales: torch.Tensor

    def __init__(self, weight: torch.Tensor, scales: torch.Tensor):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.register_buffer("weight_int8", weight)
        self.register_buffer("scales", scales)

    @classmethod
    def from_weight(cls, w: torch.Tensor) -> Int8Linear:
        w = w.detach().float()
        scale = w.abs().amax(1).clamp(min=1e-12) / 127
        q = (w / scale[:, None]).round().clamp(-127, 127).to(torch.int8)
        return cls(q.contiguous(), scale.to(COMPUTE_DTYPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = torch.ops.aten._weight_int8pack_mm(
            x.reshape(-1, shape[-1]).to(COMPUTE_DTYPE), self.weight_int8, self.scales
        )
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    @staticmethod
    def concat(parts: list[Int8Linear]) -> Int8Linear | None:
        if len({p.in_features for p in parts}) != 1:
            return None
        return Int8Linear(
            torch.cat([p.weight_int8 for p in parts]), torch.cat([p.scales for p in parts])
        )

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, int8"


@dataclass
class QuantReport:
    mode: str
    layers: int = 0
    skipped: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0


def _linears(model: Any) -> list[tuple[str, nn.Module, str, nn.Linear]]:
    out = []
    for parent_name, parent in model.named_modules():
        for name, child in parent.named_children():
            if type(child) is nn.Linear:
                full = f"{parent_name}.{name}" if parent_name else name
                out.append((full, parent, name, child))
    return out


def _output_head_name(model: Any) -> str | None:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    for name, module in model.named_modules():
        if module is head:
            return name
    return None


def quantize_model(
    model: Any, mode: str, group_size: int = GROUP_SIZE, *, lossless_only: bool = False
) -> QuantReport | None:
    """Replace the model's ``nn.Linear`` layers in place by int4 or int8 weight-only modules.

    ``int4``: decoder layers in 4-bit groups; the output head (the largest single matrix, often
    tied to the input embeddings, which stay fp32 for the lookup) in 8-bit groups, as 4 bits
    there costs ~10 points of top-1 agreement on SmolLM2. ``int8``: every layer in int8 with
    one scale per row (simplest, lossy everywhere). Layers with a bias, or an input size that
    is not a multiple of ``group_size``, fall back to int8 per row or are left as they are.

    ``lossless_only`` (``lm.quantize = "auto"``): only weights already on the grid: if any
    decoder layer is off the 4-bit grid the model is left untouched and None is returned; the
    head is converted only if it lies on the 8-bit grid (Q8_0, as in the bundled GGUF). The
    check rides on the quantization pass and gives up at the first layer off the grid, so an
    ordinary model costs one layer's worth of work.
    """
    if mode not in ("int4", "int8"):
        raise ValueError(f"quantize mode must be 'int4' or 'int8', got {mode!r}")
    report = QuantReport(mode)
    head = _output_head_name(model)
    replaced: list[tuple[nn.Module, str, nn.Linear, nn.Module]] = []
    for name, parent, attr, lin in _linears(model):
        w = lin.weight
        if lin.bias is not None or w.device.type != "cpu":
            report.skipped.append(name)
            continue
        # the int4 packing needs N % 16 == 0
        grouped = mode == "int4" and w.shape[1] % group_size == 0 and w.shape[0] % 16 == 0
        if grouped and name != head:
            q, scale, lo, err = _int4_parts(w, group_size)
            if lossless_only and err > LOSSLESS_TOLERANCE:
                for p, a, old, _ in replaced:  # put everything back
                    setattr(p, a, old)
                log.info("weights of %s are not on a 4-bit grid (error %.2f steps)", name, err)
                return None
            new: nn.Module = Int4Linear.from_parts(q, scale, lo, group_size)
        elif grouped:  # the output head: 8-bit groups
            q8, scale, err = _int8_group_parts(w, group_size)
            if lossless_only and err > LOSSLESS_TOLERANCE:
                report.skipped.append(name)
                continue
            new = Int8GroupLinear.from_parts(q8, scale, group_size)
        elif lossless_only:
            report.skipped.append(name)
            continue
        else:
            new = Int8Linear.from_weight(w)
        replaced.append((parent, attr, lin, new))
    for parent, attr, _, new in replaced:
        setattr(parent, attr, new)
    for _, _, old, new in replaced:
        report.bytes_before += old.weight.numel() * old.weight.element_size()
        report.bytes_after += sum(b.numel() * b.element_size() for b in new.buffers())
    report.layers = len(replaced)
    if head and isinstance(
        model.get_output_embeddings(), Int8Linear | Int4Linear | Int8GroupLinear
    ):
        # The head no longer shares its weight with the input embeddings (kept fp32).
        model.config.tie_word_embeddings = False
    log.info(
        "quantized %d linear layers to %s: %.0f MB -> %.0f MB%s",
        report.layers,
        mode,
        report.bytes_before / 1e6,
        report.bytes_after / 1e6,
        f" (left as is: {', '.join(report.skipped)})" if report.skipped else "",
    )
    return report


# -- persistence: quantize once, reload in a blink ---------------------------------------------

FORMAT = "tutor-quant-1"


def _quantized_modules(model: Any) -> dict[str, nn.Module]:
    kinds = (Int4Linear, Int8Linear, Int8GroupLinear)
    out: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if isinstance(module, kinds) and not any(name.startswith(p + ".") for p in out):
            out[name] = module
    return out


def _describe(module: nn.Module) -> dict[str, Any]:
    if isinstance(module, Int4Linear):
        return {
            "kind": "int4",
            "in": module.in_features,
            "out": module.out_features,
            "group": module.group_size,
        }
    if isinstance(module, Int8GroupLinear):
        return {"kind": "int8group", "hi": _describe(module.hi), "lo": _describe(module.lo)}
    return {"kind": "int8"}


def _rebuild(spec: dict[str, Any], prefix: str, tensors: dict[str, torch.Tensor]) -> nn.Module:
    if spec["kind"] == "int4":
        return Int4Linear(
            tensors[f"{prefix}.packed"],
            tensors[f"{prefix}.scales_and_zeros"],
            spec["in"],
            spec["out"],
            spec["group"],
        )
    if spec["kind"] == "int8group":
        return Int8GroupLinear(
            _rebuild(spec["hi"], f"{prefix}.hi", tensors),  # type: ignore[arg-type]
            _rebuild(spec["lo"], f"{prefix}.lo", tensors),  # type: ignore[arg-type]
        )
    return Int8Linear(tensors[f"{prefix}.weight_int8"], tensors[f"{prefix}.scales"])


def save_quantized(model: Any, path: Any, source_stamp: str) -> None:
    """Write the quantized layers of ``model`` to one safetensors file (atomically).

    ``source_stamp`` identifies the weights they came from; ``load_quantized`` refuses a file
    whose stamp, format or PyTorch version (the packed int4 layout is PyTorch's) differ.
    """
    import json
    from pathlib import Path

    from safetensors.torch import save_file

    from knowledge_base.atomic import atomic_path

    path = Path(path)
    modules = _quantized_modules(model)
    tensors = {
        f"{name}.{buf_name}": buf.contiguous()
        for name, module in modules.items()
        for buf_name, buf in module.named_buffers()
    }
    meta = {
        "format": FORMAT,
        "torch": torch.__version__,
        "source": source_stamp,
        "modules": json.dumps({name: _describe(m) for name, m in modules.items()}),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_quantized(model: Any, path: Any, source_stamp: str) -> bool:
    """Swap in the layers saved by ``save_quantized``; False (model untouched) when the file is
    missing, unreadable or stale."""
    import json
    from pathlib import Path

    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if (meta.get("format"), meta.get("torch"), meta.get("source")) != (
            FORMAT,
            torch.__version__,
            source_stamp,
        ):
            log.info("ignoring stale quantized cache %s", path)
            return False
        specs = json.loads(meta["modules"])
        # Copies, not views into the file: the int8/int4 kernels expect aligned buffers
        # (a tensor at an odd offset of a mapped file crashed _weight_int8pack_mm).
        tensors = {k: v.clone() for k, v in load_file(str(path)).items()}
        new = {name: _rebuild(spec, name, tensors) for name, spec in specs.items()}
        targets = []
        for name, module in new.items():
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            if not isinstance(getattr(parent, attr, None), nn.Linear):
                return False
            targets.append((parent, attr, module))
    except (OSError, ValueError, KeyError, AttributeError) as e:
        log.warning("ignoring unreadable quantized cache %s (%s)", path, e)
        return False
    for parent, attr, module in targets:
        setattr(parent, attr, module)
    if isinstance(model.get_output_embeddings(), Int8Linear | Int4Linear | Int8GroupLinear):
        model.config.tie_word_embeddings = False
    log.info("loaded %d quantized layers from %s", len(targets), path)
    return True
