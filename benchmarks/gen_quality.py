"""Quality columns of benchmarks/generation.py: each variant's next-token predictions on the
float32 model's greedy answers (teacher-forced), through the model's forward or, for the
backend's lean loop, as that loop computes them while answering."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def logits_fn(model: Any) -> Callable[[Any, int], Any]:
    """Logits at every position of ``ids`` (1, n) from the model's own forward."""
    import torch

    def f(ids: Any, start: int) -> Any:
        with torch.inference_mode():
            return model(ids).logits[0].float()

    return f


def decoder_logits(decoder: Any) -> Callable[[Any, int], Any]:
    """Logits as the backend's lean loop computes them while answering: the first ``start``
    tokens as one prefill chunk, then one token at a time (the steps the native decode step
    takes over); rows before ``start - 1`` are zeros (the quality check does not read them)."""
    import torch

    def f(ids: Any, start: int) -> Any:
        seq = ids[0]
        rows = [torch.zeros(start - 1, decoder.lm_head.out_features)]
        with torch.inference_mode():
            decoder.reset(seq.shape[0])
            rows.append(decoder.forward(seq[:start]))
            for i in range(start, seq.shape[0]):
                rows.append(decoder.forward(seq[i : i + 1]))
        return torch.cat(rows)

    return f


def reference_answers(b: Any, chats: list[Any]) -> list[tuple[int, Any, Any]]:
    """fp32 greedy answers to more prompts: (prompt length, sequence, fp32's top-1 per position)."""
    import torch

    ref_logits = logits_fn(b.fp32)
    refs = []
    for m in chats:
        ids = torch.tensor(
            [b.tok.apply_chat_template(m, add_generation_prompt=True, return_dict=False)]
        )
        with torch.inference_mode():
            out = b.fp32.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=b.args.quality_tokens,
                do_sample=False,
                repetition_penalty=b.penalty,
                pad_token_id=b.tok.pad_token_id,
            )
        want = ref_logits(out, ids.shape[1])[ids.shape[1] - 1 : -1].argmax(-1)
        refs.append((ids.shape[1], out, want))
    return refs


def quality(b: Any, refs: list[tuple[int, Any, Any]]) -> dict[str, tuple[float, float]]:
    """Free-running: the timed runs' tokens against the baseline's. Teacher-forced: each
    position of the fp32 reference answers predicted by the variant from fp32 text."""
    base = b.variants[0]
    quality: dict[str, tuple[float, float]] = {}
    for v in b.variants:
        same = sum(
            sum(a == x for a, x in zip(v.outputs[i], base.outputs[i], strict=True))
            for i in range(len(b.encoded))
        )
        total = sum(len(base.outputs[i]) for i in range(len(b.encoded)))
        tf = float("nan")
        if v.logits is not None:
            hits = n = 0
            for start, seq, want in refs:
                got = v.logits(seq, start)[start - 1 : -1].argmax(-1)
                hits += int((got == want).sum())
                n += want.numel()
            tf = hits / n
        quality[v.name] = (same / total, tf)
    return quality
