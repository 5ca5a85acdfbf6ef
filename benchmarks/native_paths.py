"""The native decode step's C paths against PyTorch's int4 kernel, on one CPU.

The native step (``tutor/lm/native_decode.c``) has an AVX-512 path, an AVX2 path and plain C.
A CPU only runs the best one it has; here each is built for this CPU with the instruction sets
above it turned off (``-mno-avx512f``, ``-mno-avx2``), which shows what a CPU without them
gets from the same code (not what such a CPU would measure: its cores and memory differ). The
baseline is the lean loop on PyTorch's int4 kernel (the decode path the timing picks when the
native step is slower, or does not build).

Each variant decodes the bundled model (int4, no adapter) greedily after a short prompt, in the
main thread at ``--threads`` torch threads; decode tok/s is 1 / the median gap between steps,
the variants interleaved over rounds.

    python benchmarks/native_paths.py [--rounds 5] [--steps 48] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from results import ROOT, Recorder  # noqa: E402

PATHS = {
    "native step, AVX-512": [],
    "native step, AVX2 (built with -mno-avx512f)": ["-mno-avx512f"],
    "native step, plain C (built with -mno-avx512f -mno-avx2)": ["-mno-avx512f", "-mno-avx2"],
}
BASELINE = "lean loop, PyTorch's int4 kernel"


def decoders(models: Path) -> dict[str, Any]:
    from tutor.lm import native
    from tutor.lm.fast import LlamaDecoder
    from tutor.lm.resolve import load_causal_lm

    model, _ = load_causal_lm(
        "smollm2-135m-instruct", models_dir=models, device="cpu", dtype="float32", quantize="auto"
    )
    out = {BASELINE: LlamaDecoder(model, 512)}
    for name, extra in PATHS.items():
        lib = native.load(models, [*native.FLAGS, *extra])
        d = LlamaDecoder(model, 512)
        d.native = native.NativeStep(lib, d)
        out[name] = (d, lib.tutor_native_simd())
    return out


def rate(decoder: Any, steps: int) -> float:
    import torch

    prompt = torch.arange(32) + 100
    with torch.inference_mode():
        decoder.reset(32 + steps + 1)
        logits = decoder.forward(prompt)
        stamps = []
        for _ in range(steps):
            logits = decoder.forward(logits.argmax(-1))
            stamps.append(time.perf_counter())
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return 1 / statistics.median(gaps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", type=Path, default=ROOT / ".tutor" / "models")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rec = Recorder("native_paths", args)
    built = decoders(args.models)
    simd = {name: v[1] for name, v in built.items() if isinstance(v, tuple)}
    decs = {name: v[0] if isinstance(v, tuple) else v for name, v in built.items()}
    rates: dict[str, list[float]] = {name: [] for name in decs}
    for d in decs.values():
        rate(d, 4)  # warm-up
    for _ in range(args.rounds):
        for name, d in decs.items():
            rates[name].append(rate(d, args.steps))
    base = statistics.median(rates[BASELINE])
    rows = []
    for name in decs:
        med = statistics.median(rates[name])
        width = {512: "512-bit", 256: "256-bit", 0: "none"}.get(simd.get(name, -1), "(torch)")
        rows.append([name, width, f"{med:.1f}", f"{med / base:.2f}x"])
        rec.samples(name, rates[name])
    rec.meta(simd_width=simd, model="smollm2-135m-instruct, int4, no adapter")
    print(
        rec.table(
            "paths",
            ["decode path", "vector width it uses", "decode tok/s", "vs PyTorch's kernel"],
            rows,
            align="llrr",
        )
    )
    rec.write()


if __name__ == "__main__":
    main()
