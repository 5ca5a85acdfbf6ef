"""Pick the CPU decode path by measurement, once per machine, instead of by CPU flags.

With ``lm.dtype = "auto"`` on CPU the model is loaded in float32 and every path that applies is
built from it and timed on a few decode steps, interleaved:

* ``float32``: the weights as loaded;
* ``bfloat16``: every weight rounded to bf16 (fast where the CPU has native bf16 math, slow
  where it is emulated);
* ``float32 + int4``: the linear layers packed into PyTorch's CPU int4 kernel, only where
  ``lm.quantize = "auto"`` finds them already on a 4-bit grid (the bundled GGUF model), so no
  weight changes.

Each path is timed at every decode thread count in ``thread_options`` (on 2 cores: 2 and 1;
in the generator's worker thread one can decode faster than two, see docs/benchmarks.md), and
the decode loop runs its steps at the winner's count (``LlamaDecoder.threads``) while prefill
keeps torch's. The fastest wins. The choice is cached per machine (CPU model and flags, torch
version, torch threads) and per model (path, weights' size and mtime, adapter) in ``decode-paths.json`` in the
model cache, so later starts load only the winner; ``tutor bench-lm`` measures again, and
``tutor config show`` prints what was chosen and why. ``lm.dtype`` set to anything but ``auto``
skips all of this. A model too large to hold three copies of (over ``MEASURE_LIMIT_BYTES`` in
float32) is not measured: it gets int4 where lossless, else bf16 where the CPU has it natively.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import queue
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from knowledge_base.atomic import write_atomic
from tutor.lm.machine import cpu_key

log = logging.getLogger(__name__)

CACHE_FILE = "decode-paths.json"
MEASURE_LIMIT_BYTES = 2 * 1024**3
STEPS = 6
ROUNDS = 3
PROMPT_TOKENS = 32


@dataclass
class PathChoice:
    """One decision: ``dtype`` and ``quantize`` of the winner, and the evidence."""

    dtype: str  # float32 | bfloat16
    quantize: str  # none | int4 | int8
    reason: str
    rates: dict[str, float] = field(default_factory=dict)  # path label -> decode tok/s
    measured_utc: str = ""
    key: dict[str, Any] = field(default_factory=dict)
    threads: int = 0  # decode threads; 0: torch's own count (not measured, or older cache)
    kernel: str = "torch"  # torch | native: the one-call C decode step (tutor.lm.native)

    @property
    def label(self) -> str:
        return path_label(self.dtype, self.quantize, self.threads, self.kernel)

    def summary(self) -> str:
        if not self.rates:
            return f"{self.label} ({self.reason})"
        rates = ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(self.rates.items(), key=lambda kv: -kv[1])
        )
        return f"{self.label} ({self.reason}; decode tok/s: {rates})"


def path_label(dtype: str, quantize: str, threads: int = 0, kernel: str = "torch") -> str:
    label = dtype if quantize == "none" else f"{dtype} + {quantize}"
    if kernel == "native":
        label += " (native step)"
    return f"{label} @ {threads} thread{'s' if threads != 1 else ''}" if threads else label


def thread_options(available: int) -> list[int]:
    """Decode thread counts worth timing with ``available`` torch threads, most first (a tie
    keeps the most: prefill and other work use them anyway)."""
    return sorted({available, max(1, available // 2), 1}, reverse=True)


# -- the machine and the model ---------------------------------------------------------------


def machine_key() -> dict[str, Any]:
    """What makes a measurement valid: the CPU (model name and flags), torch, its threads."""
    import torch

    return {**cpu_key(), "torch": torch.__version__, "threads": torch.get_num_threads()}


def choice_key(model: dict[str, Any], quantize: str, native: bool = False) -> dict[str, Any]:
    """The cache key of a choice: the machine, ``model`` (``model_key``), ``lm.quantize`` and
    whether the native step may run (``lm.native_decode``: without it the fastest torch path
    and its thread count are measured on their own). "timing" 3: every path timed at each
    decode thread count, the native step among them (older entries are measured again)."""
    return {**machine_key(), **model, "quantize": quantize, "native": native, "timing": 3}


def model_key(path: str, adapter: str = "") -> dict[str, Any]:
    """The model's identity: its config and the names and sizes of its weight files (not its
    path or mtimes, so a copied or moved model keeps its measured path), and the adapter."""
    parts: list[str] = []
    p = Path(path)
    if p.is_dir():
        cfg = p / "config.json"
        if cfg.is_file():
            parts.append(hashlib.sha256(cfg.read_bytes()).hexdigest())
        files = sorted(f for pat in ("*.safetensors", "*.bin", "*.gguf") for f in p.glob(pat))
        parts += [f"{f.name}:{f.stat().st_size}" for f in files]
    else:
        parts.append(str(path))  # a hub id
    return {
        "model": str(path),
        "weights": hashlib.sha256(";".join(parts).encode()).hexdigest()[:16],
        "adapter": adapter,
    }


def _entry_id(key: dict[str, Any]) -> str:
    """The cache entry for ``key``; the model's path is shown, not part of its identity."""
    ident = {k: v for k, v in key.items() if k != "model"}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


# -- the cache --------------------------------------------------------------------------------


def _read_all(models_dir: Path) -> dict[str, Any]:
    f = Path(models_dir) / CACHE_FILE
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable %s (%s); the decode path will be measured again", f, e)
        return {}
    return data if isinstance(data, dict) else {}


def cached_choice(models_dir: Path | None, key: dict[str, Any]) -> PathChoice | None:
    if models_dir is None:
        return None
    raw = _read_all(models_dir).get(_entry_id(key))
    if not isinstance(raw, dict):
        return None
    try:
        choice = PathChoice(**raw)
    except TypeError:
        return None
    if choice.dtype not in ("float32", "bfloat16") or choice.quantize not in ("none", "int4"):
        return None
    if not isinstance(choice.threads, int) or choice.threads < 0:
        return None
    if choice.kernel not in ("torch", "native"):
        return None
    return choice


def native_ready(models_dir: Path | None) -> str | None:
    """None when the native decode step is built (or builds now) for this machine, else why
    not. The library is kept in ``models_dir/native``."""
    from tutor.lm.native import Unsupported, load

    try:
        load(models_dir)
    except Unsupported as e:
        return str(e)
    return None


def use_native(model: Any, models_dir: Path | None) -> None:
    """Mark ``model`` for the native step: the lean loop builds it (``LlamaDecoder``)."""
    model.tutor_native_dir = models_dir if models_dir is not None else ""


def save_choice(models_dir: Path | None, choice: PathChoice) -> None:
    if models_dir is None:
        return
    data = _read_all(models_dir)
    data[_entry_id(choice.key)] = asdict(choice)
    try:
        Path(models_dir).mkdir(parents=True, exist_ok=True)
        write_atomic(Path(models_dir) / CACHE_FILE, json.dumps(data, indent=2) + "\n")
    except OSError as e:  # a read-only data dir: measure again next start
        log.warning("could not save the decode path choice in %s: %s", models_dir, e)


def describe(models_dir: Path) -> list[str]:
    """One line per choice remembered for this CPU, for ``tutor config show``."""
    here = cpu_key()
    lines = []
    for raw in _read_all(models_dir).values():
        try:
            c = PathChoice(**raw)
        except TypeError:
            continue
        if any(c.key.get(k) != v for k, v in here.items()):
            continue
        where = str(c.key.get("model", "?"))
        lines.append(
            f"{Path(where).name or where}: {c.summary()}; measured {c.measured_utc or '?'} "
            f"with torch {c.key.get('torch', '?')}, {c.key.get('threads', '?')} thread(s)"
        )
    return lines


# -- measuring --------------------------------------------------------------------------------


def decode_timer(
    model: Any,
    steps: int = STEPS,
    clock: Callable[[], float] = time.perf_counter,
    *,
    threads: int = 0,
) -> Callable[[], float]:
    """A function that measures ``model``'s decode tokens per second on CPU: a short prompt,
    then ``steps`` greedy steps (at ``threads`` torch threads, 0: unchanged) through the decode
    loop the backend uses (the lean loop where it applies), in a worker thread that hands each
    token to the caller, as ``HFGenerator.stream`` does. The loop is built once, so repeated
    calls time only decoding."""
    import torch

    from tutor.lm.fast import LlamaDecoder, decode_threads

    vocab = int(model.config.vocab_size)
    ids = torch.arange(PROMPT_TOKENS) % max(vocab - 1, 1) + 1
    total = PROMPT_TOKENS + steps + 1
    lean = LlamaDecoder(model, total) if LlamaDecoder.unsupported_reason(model) is None else None

    def prefill() -> tuple[Any, Callable[[Any], Any]]:
        if lean is not None:
            lean.reset(total)
            return lean.forward(ids), lambda tok: lean.forward(tok.reshape(1))
        out = model(ids[None], use_cache=True)
        past = [out.cache]

        def step(tok: Any) -> Any:
            o = model(tok.reshape(1, 1), cache=past[0], use_cache=True)
            past[0] = o.cache
            return o.logits[0, -1]

        return out.logits[0, -1], step

    def decode(gaps: list[float], tokens: queue.Queue[Any]) -> None:
        try:
            with torch.inference_mode():
                logits, step = prefill()
                with decode_threads(threads):
                    for _ in range(steps):
                        t0 = clock()
                        logits = step(logits.argmax(-1))
                        gaps.append(clock() - t0)
                        tokens.put(logits)
        finally:
            tokens.put(None)

    def measure() -> float:
        # As the generator decodes: in a new thread, handing each token to a reader (this
        # thread). On 2 cores that reader and 2 OpenMP threads share the cores, which can
        # make 1 decode thread faster than 2 although a loop without a reader says otherwise.
        gaps: list[float] = []
        tokens: queue.Queue[Any] = queue.Queue()
        worker = threading.Thread(target=decode, args=(gaps, tokens), name="tutor-bench-lm")
        worker.start()
        while tokens.get() is not None:
            pass
        worker.join()
        if len(gaps) < steps:
            raise RuntimeError("the decode timer's worker failed")
        gap = statistics.median(gaps)
        return 1.0 / gap if gap > 0 else float("inf")

    return measure


def _param_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def choose_path(
    model: Any,
    *,
    quantize: str,
    quantize_fn: Callable[[Any, str], bool],
    models_dir: Path | None,
    key: dict[str, Any],
    native_bf16: Callable[[], bool],
    remeasure: bool = False,
    native: bool = False,
) -> tuple[Any, PathChoice]:
    """Turn a float32 CPU ``model`` into the fastest path; returns it and the decision.

    ``quantize`` is ``lm.quantize`` after ``pick_quantize`` (``none``, ``auto``, ``int4`` or
    ``int8``). ``quantize_fn(model, mode)`` quantizes in place and says whether it did.
    ``native_bf16()`` says whether the CPU has bf16 math (only asked of a model too large to
    measure). Decoding is timed by ``decode_timer`` (tests replace it with a fake).
    ``native``: the int4 path with the C decode step (``tutor.lm.native``) is a candidate too.
    """
    import torch

    if quantize in ("int4", "int8"):  # asked for explicitly: packed from the float32 weights
        quantize_fn(model, quantize)
        return model, PathChoice("float32", quantize, f"lm.quantize = {quantize}", key=key)
    full_key = choice_key(key, quantize, native)
    if not remeasure:
        cached = cached_choice(models_dir, full_key)
        if cached is not None:
            log.info("decode path: %s, measured %s", cached.label, cached.measured_utc)
            model = _apply(model, cached, quantize_fn)
            if cached.kernel == "native":
                use_native(model, models_dir)
            return model, cached
    if _param_bytes(model) > MEASURE_LIMIT_BYTES:
        return _by_rule(model, quantize, quantize_fn, native_bf16(), full_key)
    candidates: dict[tuple[str, str], Any] = {("float32", "none"): model}
    candidates["bfloat16", "none"] = copy.deepcopy(model).to(torch.bfloat16)
    if quantize == "auto":
        packed = copy.deepcopy(model)
        if quantize_fn(packed, "auto"):
            candidates["float32", "int4"] = packed
    counts = thread_options(torch.get_num_threads())
    several = len(counts) > 1  # one count: labels and choice without it, as before
    timers = {
        path_label(*path, n if several else 0): (path, n, "torch", decode_timer(m, threads=n))
        for path, m in candidates.items()
        for n in counts
    }
    not_native = ""  # why the native step was not timed, where it could have been
    if native and ("float32", "int4") in candidates:
        not_native = _add_native_timers(timers, candidates["float32", "int4"], counts, models_dir)
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for *_, t in timers.values():  # warm-up: the first calls allocate and pick kernels
        t()
    for _ in range(ROUNDS):  # interleaved, so a change in machine load hits every path alike
        for name, (*_, t) in timers.items():
            samples[name].append(t())
    rates = {name: round(statistics.median(v), 2) for name, v in samples.items()}
    best = max(rates, key=lambda n: rates[n])  # the first of a tie: the most threads, torch
    (dtype, q), threads, kernel, _ = timers[best]
    del timers
    choice = PathChoice(
        dtype,
        q,
        "measured: the fastest of "
        + (f"{len(rates)} paths" if len(rates) > 3 else ", ".join(rates)),
        rates,
        datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        full_key,
        threads if several else 0,
        kernel,
    )
    if not_native:
        choice.reason += f"; no native step: {not_native}"
    save_choice(models_dir, choice)
    log.info("decode path: %s", choice.summary())
    winner = candidates[dtype, q]
    if kernel == "native":
        use_native(winner, models_dir)
    return winner, choice


def _add_native_timers(
    timers: dict[str, Any], packed: Any, counts: list[int], models_dir: Path | None
) -> str:
    """Add the int4 path with the native decode step to ``timers`` (the same packed model;
    its decoders are built with the step); returns why not where it does not build."""
    reason = native_ready(models_dir)
    if reason:
        return reason
    use_native(packed, models_dir)
    for n in counts:
        label = path_label("float32", "int4", n if len(counts) > 1 else 0, "native")
        timers[label] = (("float32", "int4"), n, "native", decode_timer(packed, threads=n))
    del packed.tutor_native_dir
    return ""


def _apply(model: Any, choice: PathChoice, quantize_fn: Callable[[Any, str], bool]) -> Any:
    import torch

    if choice.quantize == "int4":
        if not quantize_fn(model, "auto"):
            log.warning("the cached decode path is int4 but the weights are no longer on the grid")
        return model
    if choice.dtype == "bfloat16":
        return model.to(torch.bfloat16)
    return model


def _by_rule(
    model: Any,
    quantize: str,
    quantize_fn: Callable[[Any, str], bool],
    bf16: bool,
    key: dict[str, Any],
) -> tuple[Any, PathChoice]:
    import torch

    size = f"{_param_bytes(model) / 1e9:.1f} GB"
    if quantize == "auto" and quantize_fn(model, "auto"):
        return model, PathChoice(
            "float32", "int4", f"not measured ({size}): int4 is lossless", key=key
        )
    if bf16:
        return model.to(torch.bfloat16), PathChoice(
            "bfloat16", "none", f"not measured ({size}): the CPU has native bf16", key=key
        )
    return model, PathChoice("float32", "none", f"not measured ({size}): no native bf16", key=key)
