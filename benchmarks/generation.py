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


def main(argv: list[str] | None = None) -> int:
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
    args = ap.parse_args(argv)
    rec = Recorder("generation", args, tag=args.tag)

    import torch
    import transformers

    from tutor.config import LMConfig, load_config
    from tutor.lm.base import GenerationOptions
    from tutor.lm.hf import HFGenerator
    from tutor.lm.resolve import BUNDLED, bundled_gguf_path, ensure_bundled_cache, load_causal_lm

    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    home = Path(args.home) if args.home else load_config().paths.home_dir
    models_dir = home / "models"
    alias = "smollm2-135m-instruct"
    ensure_bundled_cache(alias, models_dir)
    defaults = LMConfig()
    n_new = args.tokens
    penalty = defaults.repetition_penalty
    prompts = PROMPTS[: args.prompts]
    msgs = [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}] for p in prompts
    ]
    header = machine()
    log(header)

    # -- load times -------------------------------------------------------------------
    loads: list[tuple[str, float]] = []

    def load(**kw: Any) -> tuple[Any, Any, float]:
        gc.collect()
        t = time.perf_counter()
        model, tok = load_causal_lm(alias, models_dir=models_dir, device="cpu", **kw)
        return model, tok, time.perf_counter() - t

    load(dtype="float32")  # once to warm the page cache: the timed loads below then compare
    fp32, tok, t_fp32 = load(dtype="float32")
    loads.append(("cached safetensors, fp32 (`quantize=none`)", t_fp32))
    # (GGUF below: what the very first start pays, before the safetensors cache exists)
    if not args.skip_gguf:
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        gguf = bundled_gguf_path(BUNDLED[alias])
        log("timing the GGUF dequantizing load ...")
        t = time.perf_counter()
        AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        m = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent),
            gguf_file=gguf.name,
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32,
        )
        loads.append(
            ("GGUF Q4_1, dequantized (first run, before the cache exists)", time.perf_counter() - t)
        )
        del m

    def no_eos(model: Any) -> Any:
        model.generation_config.eos_token_id = None  # fixed token counts for every variant
        return model

    no_eos(fp32)
    encoded = [
        tok.apply_chat_template(m, add_generation_prompt=True, tokenize=True, return_dict=False)
        for m in msgs
    ]
    encoded = [list(e["input_ids"]) if hasattr(e, "keys") else list(e) for e in encoded]
    warm_msgs = [{"role": "user", "content": "Hi!"}]
    warm_ids = tok.apply_chat_template(warm_msgs, add_generation_prompt=True, return_dict=False)
    warm_ids = list(warm_ids["input_ids"]) if hasattr(warm_ids, "keys") else list(warm_ids)

    from transformers import TextIteratorStreamer, TextStreamer

    timed_plain = timed_streamer_class(TextStreamer)

    def run_generate(model: Any, extra: dict[str, Any] | None = None) -> Callable[[int], Run]:
        def run(i: int) -> Run:
            ids = encoded[i] if i >= 0 else warm_ids
            n = n_new if i >= 0 else 2
            streamer = timed_plain(tok, skip_prompt=True, skip_special_tokens=True)
            streamer.on_finalized_text = lambda *a, **k: None  # no printing
            x = torch.tensor([ids])
            t0 = time.perf_counter()
            with torch.inference_mode():
                model.generate(
                    input_ids=x,
                    attention_mask=torch.ones_like(x),
                    max_new_tokens=n,
                    do_sample=False,
                    repetition_penalty=penalty,
                    pad_token_id=tok.pad_token_id,
                    streamer=streamer,
                    **(extra or {}),
                )
            total = time.perf_counter() - t0
            s = streamer.stamps
            return Run(
                streamer.ids, s[0] - t0, [b - a for a, b in zip(s, s[1:], strict=False)], total
            )

        return run

    def run_backend(gen: HFGenerator) -> Callable[[int], Run]:
        def run(i: int) -> Run:
            # The backend builds its own TextIteratorStreamer: timestamp its puts (the class
            # inherits ``put`` from TextStreamer, so shadow it for the call and delete after).
            stamps: list[float] = []
            out: list[int] = []
            seen_prompt = [False]

            def put(self: Any, value: Any) -> None:
                if seen_prompt[0]:
                    stamps.append(time.perf_counter())
                    out.extend(int(v) for v in value.reshape(-1))
                seen_prompt[0] = True
                TextStreamer.put(self, value)

            TextIteratorStreamer.put = put
            try:
                t0 = time.perf_counter()
                chat, n = (msgs[i], n_new) if i >= 0 else (warm_msgs, 2)
                for _ in gen.stream(chat, max_new_tokens=n):
                    pass
                total = time.perf_counter() - t0
            finally:
                del TextIteratorStreamer.put
            s = stamps
            return Run(out, s[0] - t0, [b - a for a, b in zip(s, s[1:], strict=False)], total)

        return run

    def backend(model: Any, **kw: Any) -> HFGenerator:
        opts = GenerationOptions(max_new_tokens=n_new, repetition_penalty=penalty)
        return HFGenerator(model, tok, defaults=opts, stream_timeout=900, **kw)

    def logits_fn(model: Any) -> Callable[[Any], Any]:
        def f(ids: Any) -> Any:
            with torch.inference_mode():
                return model(ids).logits[0].float()

        return f

    variants: list[Variant] = []

    dtypes: dict[str, str] = {}

    def add(
        name: str,
        run: Callable[[int], Run],
        extra_s: float = 0.0,
        model: Any = None,
        dtype: str = "torch.float32",
    ) -> None:
        """Register a variant; ``model`` marks it lossy (quality columns against fp32)."""
        dtypes[name] = str(model.dtype) if model is not None else dtype
        v = Variant(name, run, lossy=model is not None)
        if model is not None:
            v.logits = logits_fn(model)
        t = time.perf_counter()
        v.run(-1)  # warm-up: a 2-token answer pays first-call costs (allocations, compiling)
        v.warmup_s = max(0.0, extra_s) + time.perf_counter() - t
        variants.append(v)
        log(f"ready: {name} (warm-up {v.warmup_s:.1f} s)")

    add("baseline: `model.generate`, fp32", run_generate(fp32))
    add("backend, fp32, `generate` path", run_backend(backend(fp32, fast_decode=False)))
    add(
        "backend, fp32, static cache, `generate` path",
        run_backend(backend(fp32, static_cache=True)),
    )
    t = time.perf_counter()
    lean32 = backend(fp32)  # fuses q/k/v and gate/up in place (views: same values)
    add("backend, fp32, lean loop", run_backend(lean32), time.perf_counter() - t)
    bf16, _, t_bf16 = load(dtype="bfloat16", quantize="none")
    add("backend, bf16, lean loop", run_backend(backend(no_eos(bf16))), t_bf16 - t_fp32, bf16)
    i8, _, t_i8 = load(dtype="float32", quantize="int8")
    add("backend, int8 weight-only, lean loop", run_backend(backend(no_eos(i8))), t_i8 - t_fp32, i8)
    # (``quantize=int4`` is not listed: on this model it makes exactly what ``auto`` makes.)
    for old in (models_dir / alias / "quantized").glob("auto-*.safetensors"):
        old.unlink()  # time the first start, which quantizes and saves
    t = time.perf_counter()
    HFGenerator.from_config(defaults, models_dir)
    loads.append(("defaults, first start: fp32 + int4 packing, saved", time.perf_counter() - t))
    gc.collect()
    t = time.perf_counter()
    gen_default = HFGenerator.from_config(defaults, models_dir)
    t_default = time.perf_counter() - t
    loads.append(("defaults, later starts: fp32 + saved int4 layers", t_default))
    no_eos(gen_default.model)
    gen_default.defaults = GenerationOptions(max_new_tokens=n_new, repetition_penalty=penalty)
    gen_default.stream_timeout = 900
    add(
        f"**backend defaults** (`quantize=auto`: int4 layers, Q8 head; {gen_default.decode_path} loop)",
        run_backend(gen_default),
        t_default - t_fp32,
        gen_default.model,
    )
    if args.compile:
        log("compiling (static cache + torch.compile; minutes) ...")
        comp, _, _ = load(dtype="float32", quantize="none")
        t = time.perf_counter()
        run = run_backend(backend(no_eos(comp), static_cache=True, compile=True))
        run(0)  # compiles prefill for this prompt length and the decode step
        add("backend, fp32, static cache + compile", run, time.perf_counter() - t)

    # -- measure, interleaved -----------------------------------------------------------
    for r in range(args.rounds):
        for i in range(len(encoded)):
            for v in variants:
                log(f"round {r + 1}/{args.rounds} prompt {i + 1}: {v.name}")
                res = v.run(i)
                v.runs.append(res)
                v.outputs.setdefault(i, res.tokens)

    # -- quality vs fp32 ----------------------------------------------------------------
    # Free-running: the timed runs' tokens against the baseline's. Teacher-forced: the fp32
    # greedy answers to more prompts, each position predicted by the variant from fp32 text.
    base = variants[0]
    ref_logits = logits_fn(fp32)
    refs = []
    for m in [
        *msgs,
        *(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}]
            for p in EXTRA_QUALITY_PROMPTS
        ),
    ]:
        ids = torch.tensor(
            [tok.apply_chat_template(m, add_generation_prompt=True, return_dict=False)]
        )
        with torch.inference_mode():
            out = fp32.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=args.quality_tokens,
                do_sample=False,
                repetition_penalty=penalty,
                pad_token_id=tok.pad_token_id,
            )
        refs.append((ids.shape[1], out, ref_logits(out)[ids.shape[1] - 1 : -1].argmax(-1)))
    quality: dict[str, tuple[float, float]] = {}
    for v in variants:
        same = sum(
            sum(a == b for a, b in zip(v.outputs[i], base.outputs[i], strict=True))
            for i in range(len(encoded))
        )
        total = sum(len(base.outputs[i]) for i in range(len(encoded)))
        tf = float("nan")
        if v.logits is not None:
            hits = n = 0
            for start, seq, want in refs:
                got = v.logits(seq)[start - 1 : -1].argmax(-1)
                hits += int((got == want).sum())
                n += want.numel()
            tf = hits / n
        quality[v.name] = (same / total, tf)
    n_tf = sum(r[2].numel() for r in refs)

    # -- table ----------------------------------------------------------------------------
    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    b_ttft = med([r.ttft for r in base.runs])
    b_rate = 1 / med([g for r in base.runs for g in r.gaps])
    b_total = med([r.total for r in base.runs])
    columns = [
        "variant",
        "TTFT (ms)",
        "decode tok/s",
        "decode vs baseline",
        "end-to-end vs baseline",
        "warm-up (s)",
        "same tokens as fp32",
        "teacher-forced top-1",
    ]
    rows = []
    for v in variants:
        ttft = med([r.ttft for r in v.runs])
        rate = 1 / med([g for r in v.runs for g in r.gaps])
        total = med([r.total for r in v.runs])
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
    rec.meta(
        model=alias,
        prompts=len(encoded),
        rounds=args.rounds,
        new_tokens=n_new,
        repetition_penalty=penalty,
        teacher_forced_positions=n_tf,
        variant_dtypes=dtypes,
        default_decode_path=gen_default.decode_path,
    )
    lines = [
        f"Machine: {header}; load average at end {os.getloadavg()[0]:.1f}.",
        f"Model: {alias} (134.5M params), {len(encoded)} prompts x {args.rounds} rounds, "
        f"{n_new} new tokens each, greedy, repetition_penalty={penalty}. Teacher-forced top-1: "
        f"{n_tf} positions of fp32 greedy answers to {len(refs)} prompts.",
        "",
        rec.table("variants", columns, rows, align="lrrrrrrr"),
    ]
    lines += [
        "",
        f"Baseline: TTFT {b_ttft * 1e3:.0f} ms, {b_rate:.1f} tok/s, {b_total:.2f} s per answer.",
        "",
        rec.table("loads", ["load", "seconds"], [[n, f"{t:.2f}"] for n, t in loads], align="lr"),
    ]
    default = next(v for v in variants if "defaults" in v.name)
    lines += [
        "",
        "Sample (defaults, prompt 1):",
        "",
        "> " + tok.decode(default.outputs[0]).replace("\n", " "),
    ]
    lines += [
        "",
        "fp32 generate, same prompt:",
        "",
        "> " + tok.decode(base.outputs[0]).replace("\n", " "),
    ]
    print("\n".join(lines))
    rec.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
