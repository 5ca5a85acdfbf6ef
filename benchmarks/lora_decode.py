"""Decode speed with a LoRA adapter: unmerged beside the int4 base vs merged into dense weights.

The bundled SmolLM2-135M on its int4 path is the baseline. A LoRA adapter of the shape the
fine-tune recipe trains (rank 16, every linear layer of the decoder, random weights: speed does
not depend on their values) is served three ways, all through the lean decode loop:

- ``int4 + LoRA unmerged`` (now): ``load_causal_lm(..., adapter=..., merge_adapter=True)``; the
  base keeps its int4 layers and each adapted projection adds two small matmuls;
- ``merged, float32`` (before): peft's ``merge_and_unload``; the merged weights are off the
  4-bit grid, so the model decodes on dense float32 weights;
- ``merged, bf16``: the same, cast to bf16;
- ``base: int4, native step`` and ``int4 + LoRA unmerged, native step``: the first two rows
  with the native decode step (``tutor.lm.native``: one C call per token, float32
  activations), as ``dtype = "auto"`` serves them where the timing picks it. Their ratio is
  against the native base, the others' against the torch-kernel base.

Decode tok/s: 1 / median gap between greedy steps after a short prompt
(``tutor.lm.speed.decode_timer``), the variants interleaved over rounds. Quality: on the
reference's (merged, float32) greedy answers to a few tutoring prompts, the share of positions
where each variant predicts the same next token (teacher-forced top-1).

    python benchmarks/lora_decode.py [--rounds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from results import ROOT, Recorder  # noqa: E402

PROMPTS = [
    "How do I add 1/3 and 1/6?",
    "Why does ice float on water?",
    "I think 0.5 + 0.25 = 0.30. Is that right?",
]


def make_adapter(models: Path, out: Path, rank: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    from tutor.lm.resolve import load_causal_lm

    torch.manual_seed(0)
    base, _ = load_causal_lm(
        "smollm2-135m-instruct", models_dir=models, dtype="float32", quantize="none"
    )
    cfg = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear")
    model = get_peft_model(base, cfg)
    with torch.no_grad():  # peft starts B at zero; a trained adapter's B is small, not zero
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    model.save_pretrained(out)
    return out


NATIVE_BASE = "base: int4, native step"
NATIVE_LORA = "int4 + LoRA unmerged, native step"


def variants(models: Path, adapter: Path) -> dict[str, Any]:
    import torch
    from peft import PeftModel

    from tutor.lm.resolve import load_causal_lm
    from tutor.lm.speed import use_native

    def load(**kw: Any) -> Any:
        return load_causal_lm("smollm2-135m-instruct", models_dir=models, device="cpu", **kw)[0]

    out: dict[str, Any] = {}
    out["base: int4, no adapter"] = load(dtype="float32", quantize="auto")
    out["int4 + LoRA unmerged (now)"] = load(
        dtype="float32", quantize="auto", adapter=str(adapter), merge_adapter=True
    )
    # the same two with the native decode step (tutor.lm.native), as `dtype = auto` serves
    # them where the timing picks it
    out[NATIVE_BASE] = load(dtype="float32", quantize="auto")
    out[NATIVE_LORA] = load(
        dtype="float32", quantize="auto", adapter=str(adapter), merge_adapter=True
    )
    for name in (NATIVE_BASE, NATIVE_LORA):
        use_native(out[name], models)
    dense = load(dtype="float32", quantize="none")
    merged = PeftModel.from_pretrained(dense, str(adapter)).merge_and_unload().eval()
    out["LoRA merged, float32 (before)"] = merged
    bf16 = load(dtype="float32", quantize="none")
    bf16 = PeftModel.from_pretrained(bf16, str(adapter)).merge_and_unload().eval()
    out["LoRA merged, bf16"] = bf16.to(torch.bfloat16)
    return out


def _logits(model: Any, full: Any, start: int) -> Any:
    """The next-token logits at positions ``start - 1 .. n - 2`` of ``full`` (1, n): from the
    model's forward, or for a model on the native step as its decode loop computes them (the
    prompt as one prefill chunk, then one token at a time)."""
    import torch

    if getattr(model, "tutor_native_dir", None) is None:
        return model(full).logits[0, start - 1 : -1].float()
    from tutor.lm.fast import LlamaDecoder

    seq = full[0]
    dec = LlamaDecoder(model, seq.shape[0])
    assert dec.native is not None, "the native step did not build"
    dec.reset(seq.shape[0])
    rows = [dec.forward(seq[:start])]
    rows += [dec.forward(seq[i : i + 1]) for i in range(start, seq.shape[0] - 1)]
    return torch.cat(rows)


def agreement(models: dict[str, Any], tokenizer: Any, reference: str, tokens: int) -> Any:
    """Teacher-forced top-1 agreement of every model with ``reference``'s greedy answers."""
    import torch

    ref = models[reference]
    hits = {name: 0 for name in models}
    total = 0
    for prompt in PROMPTS:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_dict=False
        )
        x = torch.tensor([list(ids)])
        with torch.inference_mode():
            full = ref.generate(x, max_new_tokens=tokens, do_sample=False)
            n = full.shape[1] - x.shape[1]
            want = ref(full).logits[0, x.shape[1] - 1 : -1].argmax(-1)
            for name, m in models.items():
                got = _logits(m, full, x.shape[1]).argmax(-1)
                hits[name] += int((got == want).sum())
        total += n
    return {name: hits[name] / total for name in models}, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=32, help="decode steps per timing")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=48, help="answer length for the agreement")
    ap.add_argument("--models", type=Path, default=ROOT / ".tutor" / "models")
    args = ap.parse_args()
    import torch

    from tutor.lm.resolve import load_causal_lm
    from tutor.lm.speed import decode_timer

    torch.set_num_threads(args.threads)
    rec = Recorder("lora_decode", args)
    adapter = make_adapter(args.models, Path(tempfile.mkdtemp()) / "adapter", args.rank)
    models = variants(args.models, adapter)
    _, tok = load_causal_lm("smollm2-135m-instruct", models_dir=args.models, quantize="none")
    timers = {name: decode_timer(m, steps=args.steps) for name, m in models.items()}
    rates: dict[str, list[float]] = {name: [] for name in models}
    for t in timers.values():
        t()  # warm-up
    for _ in range(args.rounds):
        for name, t in timers.items():
            rates[name].append(t())
    agree, positions = agreement(models, tok, "LoRA merged, float32 (before)", args.tokens)
    base = statistics.median(rates["base: int4, no adapter"])
    native_base = statistics.median(rates[NATIVE_BASE])
    rows = []
    for name in models:
        med = statistics.median(rates[name])
        same = "(no adapter)" if name.startswith("base") else f"{100 * agree[name]:.1f}%"
        ref = native_base if "native" in name else base  # each against its own kernel's base
        rows.append([name, f"{med:.1f}", f"{med / ref:.2f}x", same])
        rec.samples(name, rates[name])
    rec.meta(
        adapter=f"random LoRA r={args.rank}, alpha {2 * args.rank}, all linear layers",
        served_as=models["int4 + LoRA unmerged (now)"].tutor_adapter,
        agreement_positions=positions,
        prompts=PROMPTS,
    )
    print(
        rec.table(
            "variants",
            [
                "variant",
                "decode tok/s",
                "vs base (same kernel)",
                "teacher-forced top-1 vs merged float32",
            ],
            rows,
            align="lrrr",
        )
    )
    rec.write()


if __name__ == "__main__":
    main()
