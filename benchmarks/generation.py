"""Generation speed of the tutor's ``hf`` backend against a plain ``model.generate`` in fp32.

Same bundled model, same prompts, same run: every variant decodes the same prompts, round after
round, interleaved, so load from other processes hits them alike. Greedy decoding with the
tutor's repetition penalty; EOS is disabled so every run decodes exactly ``--tokens`` tokens
(the effect ``min_new_tokens`` has on ``generate``, applied to the backend too).

* TTFT: from the call to the first new token (prefill + first step), median over runs.
* decode tok/s: 1 / median gap between consecutive tokens (the median shrugs off bursts of
  load from other processes on a shared CPU); the ratio is against the baseline's.
* end-to-end: the whole call, as a ratio of the baseline's (backend overhead included).
* warm-up: one-time cost before the first answer, beyond loading the fp32 checkpoint: extra
  load / quantize / compile time plus a first 2-token answer (first-call allocations).
* quality, for lossy variants: share of greedy tokens equal to fp32 generate's at the same
  position, and teacher-forced top-1 agreement with fp32 (each position predicted from the fp32
  text, so one early difference does not count for the whole tail).

Run: ``.venv/bin/python benchmarks/generation.py`` (``--help`` for options). Prints Markdown.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_llamacpp import add_llamacpp  # noqa: E402
from gen_quality import decoder_logits, logits_fn, quality, reference_answers  # noqa: E402
from results import Recorder  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROMPTS = [
    "Explain what a fraction is, with an everyday example.",
    "Why do plants need sunlight? Answer for a 12-year-old.",
    "How do I solve 3x + 5 = 20? Show the steps.",
]
EXTRA_QUALITY_PROMPTS = [
    "What is the water cycle?",
    "Give me a hint for finding the area of a rectangle, without the answer.",
    "What is 15% of 80? Explain.",
]
SYSTEM = "You are a patient tutor. Explain step by step and check understanding."


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Run:
    tokens: list[int]
    ttft: float
    gaps: list[float]
    total: float


@dataclass
class Variant:
    name: str
    run: Callable[[int], Run]  # prompt index, -1 = the warm-up prompt
    warmup_s: float = 0.0
    lossy: bool = False
    logits: Callable[[Any], Any] | None = None  # teacher-forced logits for the quality column
    runs: list[Run] = field(default_factory=list)
    outputs: dict[int, list[int]] = field(default_factory=dict)


def timed_streamer_class(base: Any) -> Any:
    """A streamer subclass that timestamps every token ``put`` (the prompt is the first put)."""

    class Timed(base):
        def __init__(self, *a: Any, **k: Any):
            super().__init__(*a, **k)
            self.stamps: list[float] = []
            self.ids: list[int] = []
            self.seen_prompt = False

        def put(self, value: Any) -> None:
            if self.seen_prompt:
                self.stamps.append(time.perf_counter())
                self.ids.extend(int(v) for v in value.reshape(-1))
            self.seen_prompt = True
            super().put(value)

    return Timed


def machine() -> str:
    import torch

    model = platform.processor() or "?"
    flags: list[str] = []
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln)
        line = next(ln for ln in info.splitlines() if ln.startswith("flags"))
        wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
        flags = [f for f in wanted if f" {f}" in line]
    except (OSError, StopIteration):
        pass
    return (
        f"{model}; {os.cpu_count()} logical CPUs; flags: {' '.join(flags) or '?'}; "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=48, help="new tokens per run (default 48)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds over all prompts (default 2)")
    ap.add_argument("--prompts", type=int, default=len(PROMPTS), help="how many prompts")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--quality-tokens", type=int, default=64, help="tokens for the quality check")
    ap.add_argument("--compile", action="store_true", help="also time static cache + compile")
    ap.add_argument("--skip-gguf", action="store_true", help="skip the GGUF load timing")
    ap.add_argument("--home", default="", help="data dir (default: the config's paths.home)")
    ap.add_argument("--tag", default="", help="result file suffix (results/generation-TAG.json)")
    return ap.parse_args(argv)


def _chat(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def _ids(encoded: Any) -> list[int]:
    """A chat template's token ids, whether it returned a list or a ``BatchEncoding``."""
    return list(encoded["input_ids"]) if hasattr(encoded, "keys") else list(encoded)


def no_eos(model: Any) -> Any:
    model.generation_config.eos_token_id = None  # fixed token counts for every variant
    return model


def _gaps(stamps: list[float]) -> list[float]:
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


@dataclass
class Bench:
    """What every variant shares: the run's settings, the tokenizer, the prompts, the fp32 model."""

    args: argparse.Namespace
    alias: str
    models_dir: Path
    defaults: Any  # LMConfig
    n_new: int
    penalty: float
    msgs: list[list[dict[str, str]]]
    header: str
    loads: list[tuple[str, float]] = field(default_factory=list)
    tok: Any = None
    fp32: Any = None
    t_fp32: float = 0.0
    encoded: list[list[int]] = field(default_factory=list)
    warm_msgs: list[dict[str, str]] = field(default_factory=list)
    warm_ids: list[int] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)
    dtypes: dict[str, str] = field(default_factory=dict)
    gen_default: Any = None  # the HFGenerator built from the config's defaults
    default_path: str = ""  # what dtype=auto chose (tutor.lm.speed) and its timings

    def load(self, **kw: Any) -> tuple[Any, Any, float]:
        from tutor.lm.resolve import load_causal_lm

        gc.collect()
        t = time.perf_counter()
        model, tok = load_causal_lm(self.alias, models_dir=self.models_dir, device="cpu", **kw)
        return model, tok, time.perf_counter() - t

    def backend(self, model: Any, **kw: Any) -> Any:
        from tutor.lm.base import GenerationOptions
        from tutor.lm.hf import HFGenerator

        opts = GenerationOptions(max_new_tokens=self.n_new, repetition_penalty=self.penalty)
        return HFGenerator(model, self.tok, defaults=opts, stream_timeout=900, **kw)

    def add(
        self,
        name: str,
        run: Callable[[int], Run],
        extra_s: float = 0.0,
        model: Any = None,
        dtype: str = "torch.float32",
    ) -> None:
        """Register a variant; ``model`` marks it lossy (quality columns against fp32)."""
        self.dtypes[name] = str(model.dtype) if model is not None else dtype
        v = Variant(name, run, lossy=model is not None)
        if model is not None:
            v.logits = logits_fn(model)
        t = time.perf_counter()
        v.run(-1)  # warm-up: a 2-token answer pays first-call costs (allocations, compiling)
        v.warmup_s = max(0.0, extra_s) + time.perf_counter() - t
        self.variants.append(v)
        log(f"ready: {name} (warm-up {v.warmup_s:.1f} s)")


def _setup(args: argparse.Namespace) -> Bench:
    import torch
    import transformers

    from tutor.config import LMConfig, load_config
    from tutor.lm.resolve import ensure_bundled_cache

    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    home = Path(args.home) if args.home else load_config().paths.home_dir
    models_dir = home / "models"
    alias = "smollm2-135m-instruct"
    ensure_bundled_cache(alias, models_dir)
    # the base model's defaults: the shipped LoRA (lm.adapter = auto) changes the answers, so
    # the quality columns against fp32 would measure the adapter (benchmarks/lora_decode.py
    # times the adapter's cost)
    defaults = LMConfig(adapter="none")
    msgs = [_chat(p) for p in PROMPTS[: args.prompts]]
    header = machine()
    log(header)
    return Bench(
        args, alias, models_dir, defaults, args.tokens, defaults.repetition_penalty, msgs, header
    )


def _time_gguf_load(b: Bench) -> None:
    """What the very first start pays, before the safetensors cache exists."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    from tutor.lm.resolve import BUNDLED, bundled_gguf_path

    gguf = bundled_gguf_path(BUNDLED[b.alias])
    log("timing the GGUF dequantizing load ...")
    t = time.perf_counter()
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    m = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.float32,
    )
    b.loads.append(
        ("GGUF Q4_1, dequantized (first run, before the cache exists)", time.perf_counter() - t)
    )
    del m


def _load_fp32(b: Bench) -> None:
    """Time the loads, keep the fp32 model and tokenizer, and encode the prompts."""
    b.load(dtype="float32")  # once to warm the page cache: the timed loads below then compare
    b.fp32, b.tok, b.t_fp32 = b.load(dtype="float32")
    b.loads.append(("cached safetensors, fp32 (`quantize=none`)", b.t_fp32))
    if not b.args.skip_gguf:
        _time_gguf_load(b)
    no_eos(b.fp32)
    b.encoded = [
        _ids(
            b.tok.apply_chat_template(
                m, add_generation_prompt=True, tokenize=True, return_dict=False
            )
        )
        for m in b.msgs
    ]
    b.warm_msgs = [{"role": "user", "content": "Hi!"}]
    b.warm_ids = _ids(
        b.tok.apply_chat_template(b.warm_msgs, add_generation_prompt=True, return_dict=False)
    )


def run_generate(b: Bench, model: Any, extra: dict[str, Any] | None = None) -> Callable[[int], Run]:
    """A variant's run: plain ``model.generate`` with a timestamping streamer."""
    import torch
    from transformers import TextStreamer

    timed_plain = timed_streamer_class(TextStreamer)

    def run(i: int) -> Run:
        ids = b.encoded[i] if i >= 0 else b.warm_ids
        n = b.n_new if i >= 0 else 2
        streamer = timed_plain(b.tok, skip_prompt=True, skip_special_tokens=True)
        streamer.on_finalized_text = lambda *a, **k: None  # no printing
        x = torch.tensor([ids])
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.generate(
                input_ids=x,
                attention_mask=torch.ones_like(x),
                max_new_tokens=n,
                do_sample=False,
                repetition_penalty=b.penalty,
                pad_token_id=b.tok.pad_token_id,
                streamer=streamer,
                **(extra or {}),
            )
        total = time.perf_counter() - t0
        s = streamer.stamps
        return Run(streamer.ids, s[0] - t0, _gaps(s), total)

    return run


def run_backend(b: Bench, gen: Any) -> Callable[[int], Run]:
    """A variant's run: the tutor's ``HFGenerator.stream``, its streamer's puts timestamped."""
    from tutor.lm.streamer import TokenTextStreamer

    original = TokenTextStreamer.put

    def run(i: int) -> Run:
        # The backend builds its own TokenTextStreamer: timestamp its puts (shadowed for the
        # call, restored after).
        stamps: list[float] = []
        out: list[int] = []
        seen_prompt = [False]

        def put(self: Any, value: Any) -> None:
            if seen_prompt[0]:
                stamps.append(time.perf_counter())
                out.extend(int(v) for v in value.reshape(-1))
            seen_prompt[0] = True
            original(self, value)

        TokenTextStreamer.put = put  # type: ignore[method-assign]
        try:
            t0 = time.perf_counter()
            chat, n = (b.msgs[i], b.n_new) if i >= 0 else (b.warm_msgs, 2)
            for _ in gen.stream(chat, max_new_tokens=n):
                pass
            total = time.perf_counter() - t0
        finally:
            TokenTextStreamer.put = original  # type: ignore[method-assign]
        return Run(out, stamps[0] - t0, _gaps(stamps), total)

    return run


def _add_default_variant(b: Bench) -> None:
    """Time the config's defaults (first start quantizes and saves, later starts load) and add it."""
    from tutor.lm.base import GenerationOptions
    from tutor.lm.hf import HFGenerator
    from tutor.lm.speed import CACHE_FILE

    for old in (b.models_dir / b.alias / "quantized").glob("auto-*.safetensors"):
        old.unlink()  # time the first start, which measures the paths, quantizes and saves
    (b.models_dir / CACHE_FILE).unlink(missing_ok=True)
    t = time.perf_counter()
    HFGenerator.from_config(b.defaults, b.models_dir)
    b.loads.append(
        ("defaults, first start: fp32, paths timed, int4 packing saved", time.perf_counter() - t)
    )
    gc.collect()
    t = time.perf_counter()
    gen_default = HFGenerator.from_config(b.defaults, b.models_dir)
    t_default = time.perf_counter() - t
    choice = gen_default.path_choice
    label = choice.label if choice is not None else str(gen_default.model.dtype)
    b.loads.append((f"defaults, later starts: fp32 + the remembered path ({label})", t_default))
    b.default_path = choice.summary() if choice is not None else label
    no_eos(gen_default.model)
    gen_default.defaults = GenerationOptions(max_new_tokens=b.n_new, repetition_penalty=b.penalty)
    gen_default.stream_timeout = 900
    b.gen_default = gen_default
    b.add(
        f"**backend defaults** (`dtype=auto` chose {label}; {gen_default.decode_path} loop)",
        run_backend(b, gen_default),
        t_default - b.t_fp32,
        gen_default.model,
    )
    if gen_default.decoder is not None:  # quality as the backend computes it (native step too)
        b.variants[-1].logits = decoder_logits(gen_default.decoder)


def _add_variants(b: Bench) -> None:
    """Build and warm every variant, in the table's order."""
    fp32 = b.fp32
    b.add("baseline: `model.generate`, fp32", run_generate(b, fp32))
    b.add("backend, fp32, `generate` path", run_backend(b, b.backend(fp32, fast_decode=False)))
    b.add(
        "backend, fp32, static cache, `generate` path",
        run_backend(b, b.backend(fp32, static_cache=True)),
    )
    t = time.perf_counter()
    lean32 = b.backend(fp32)  # fuses q/k/v and gate/up in place (views: same values)
    b.add("backend, fp32, lean loop", run_backend(b, lean32), time.perf_counter() - t)
    bf16, _, t_bf16 = b.load(dtype="bfloat16", quantize="none")
    b.add(
        "backend, bf16, lean loop",
        run_backend(b, b.backend(no_eos(bf16))),
        t_bf16 - b.t_fp32,
        bf16,
    )
    i8, _, t_i8 = b.load(dtype="float32", quantize="int8")
    b.add(
        "backend, int8 weight-only, lean loop",
        run_backend(b, b.backend(no_eos(i8))),
        t_i8 - b.t_fp32,
        i8,
    )
    # ``quantize=int4`` packs what ``auto`` packs, without the timing and so without the native
    # decode step: the int4 path on PyTorch's kernel (the defaults before the native step)
    i4, _, t_i4 = b.load(dtype="float32", quantize="int4")
    gen_i4 = b.backend(no_eos(i4))
    b.add(
        "backend, int4 (PyTorch's kernel), lean loop",
        run_backend(b, gen_i4),
        t_i4 - b.t_fp32,
        i4,
    )
    if gen_i4.decoder is not None:
        b.variants[-1].logits = decoder_logits(gen_i4.decoder)
    _add_default_variant(b)
    add_llamacpp(b, Run, _gaps)  # when llama-cpp-python is installed
    if b.args.compile:
        log("compiling (static cache + torch.compile; minutes) ...")
        comp, _, _ = b.load(dtype="float32", quantize="none")
        t = time.perf_counter()
        run = run_backend(b, b.backend(no_eos(comp), static_cache=True, compile=True))
        run(0)  # compiles prefill for this prompt length and the decode step
        b.add("backend, fp32, static cache + compile", run, time.perf_counter() - t)


def _measure(b: Bench) -> None:
    """Every variant on every prompt, round after round, interleaved."""
    for r in range(b.args.rounds):
        for i in range(len(b.encoded)):
            for v in b.variants:
                log(f"round {r + 1}/{b.args.rounds} prompt {i + 1}: {v.name}")
                res = v.run(i)
                v.runs.append(res)
                v.outputs.setdefault(i, res.tokens)


COLUMNS = [
    "variant",
    "TTFT (ms)",
    "decode tok/s",
    "decode vs baseline",
    "end-to-end vs baseline",
    "warm-up (s)",
    "same tokens as fp32",
    "teacher-forced top-1",
]


def _medians(v: Variant) -> tuple[float, float, float]:
    """Median TTFT, decode rate (1 / median token gap) and median whole-call time."""
    ttft = statistics.median([r.ttft for r in v.runs])
    rate = 1 / statistics.median([g for r in v.runs for g in r.gaps])
    total = statistics.median([r.total for r in v.runs])
    return ttft, rate, total


def _variant_rows(
    b: Bench, rec: Recorder, quality: dict[str, tuple[float, float]]
) -> list[list[str]]:
    """The variants table's rows; records every variant's raw latencies."""
    _, b_rate, b_total = _medians(b.variants[0])
    rows = []
    for v in b.variants:
        ttft, rate, total = _medians(v)
        same, tf = quality[v.name]
        rows.append(
            [
                v.name,
                f"{ttft * 1e3:.0f}",
                f"{rate:.1f}",
                f"{rate / b_rate:.2f}x",
                f"{b_total / total:.2f}x",
                f"{v.warmup_s:.1f}",
                f"{same:.0%}",
                "" if tf != tf else f"{tf:.1%}",
            ]
        )
        rec.latency(f"{v.name}.ttft", [r.ttft for r in v.runs], scale=1000)
        rec.latency(f"{v.name}.token_gap", [g for r in v.runs for g in r.gaps], scale=1000)
        rec.latency(f"{v.name}.total", [r.total for r in v.runs], unit="s")
    return rows


def _report(
    b: Bench,
    rec: Recorder,
    quality: dict[str, tuple[float, float]],
    refs: list[tuple[int, Any, Any]],
) -> str:
    """The Markdown the script prints; records the tables and the run's settings."""
    base = b.variants[0]
    b_ttft, b_rate, b_total = _medians(base)
    rows = _variant_rows(b, rec, quality)
    n_tf = sum(r[2].numel() for r in refs)
    rec.meta(
        model=b.alias,
        prompts=len(b.encoded),
        rounds=b.args.rounds,
        new_tokens=b.n_new,
        repetition_penalty=b.penalty,
        teacher_forced_positions=n_tf,
        variant_dtypes=b.dtypes,
        default_decode_path=b.gen_default.decode_path,
        default_path_choice=b.default_path,
    )
    loads = [[n, f"{t:.2f}"] for n, t in b.loads]
    default = next(v for v in b.variants if "defaults" in v.name)
    lines = [
        f"Machine: {b.header}; load average at end {os.getloadavg()[0]:.1f}.",
        f"Model: {b.alias} (134.5M params), {len(b.encoded)} prompts x {b.args.rounds} rounds, "
        f"{b.n_new} new tokens each, greedy, repetition_penalty={b.penalty}. Teacher-forced "
        f"top-1: {n_tf} positions of fp32 greedy answers to {len(refs)} prompts.",
        "",
        rec.table("variants", COLUMNS, rows, align="lrrrrrrr"),
        "",
        f"Baseline: TTFT {b_ttft * 1e3:.0f} ms, {b_rate:.1f} tok/s, {b_total:.2f} s per answer.",
        "",
        rec.table("loads", ["load", "seconds"], loads, align="lr"),
        "",
        "Sample (defaults, prompt 1):",
        "",
        "> " + b.tok.decode(default.outputs[0]).replace("\n", " "),
        "",
        "fp32 generate, same prompt:",
        "",
        "> " + b.tok.decode(base.outputs[0]).replace("\n", " "),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    rec = Recorder("generation", args, tag=args.tag)
    b = _setup(args)
    _load_fp32(b)
    _add_variants(b)
    _measure(b)
    refs = reference_answers(b, [*b.msgs, *(_chat(p) for p in EXTRA_QUALITY_PROMPTS)])
    print(_report(b, rec, quality(b, refs), refs))
    rec.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
