"""Decoding that neither loops nor cuts: repetition control and ending at a sentence, measured.

The bundled model (the ``hf`` backend as the product builds it, greedy) answers ~20 tutoring
prompts under a tight token budget, once per setting, interleaved prompt by prompt in the same
run. Per setting, the share of replies that

- end mid-sentence: the reply does not end with ``.``, ``!`` or ``?`` (closing quotes or
  brackets may follow); an answer the model ended itself without a full stop counts too;
- repeat a sentence: two sentences (split at ``.!?`` + space or a line break, 3 words or more)
  are the same after collapsing whitespace;
- repeat an n-gram: some word 5-gram occurs twice,

and decode speed: new tokens over the answer's wall time (prefill included), and the time to the
first text shown (the backend's ``ttft_s``: prefill, decoding and whatever the filter holds
back). These counters are the evals' own (``evals.unguarded``), independent of
``tutor.lm.sentences`` (the filter they judge). The meta ``sentence_tokens`` gives the length in
tokens of the sentences of the "off" replies, against the filter's ``TAIL_TOKENS`` (a sentence
that starts that close to the budget is held back until it ends).

    python benchmarks/decoding.py [--tokens 128] [--prompts 20]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from results import Recorder  # noqa: E402

from evals.unguarded import ends_mid_sentence, repeats_sentence  # noqa: E402

SYSTEM = (
    "You are a patient tutor for students aged 10 to 16. Explain step by step, with a short "
    "example, in plain words."
)
PROMPTS = [
    "How do I add fractions with different denominators?",
    "What is place value in a decimal number?",
    "How do you work out a percent change?",
    "What does it mean to solve an equation?",
    "How do I find the area of a triangle?",
    "What happens during evaporation?",
    "Why do plants need light?",
    "Explain what a ratio is.",
    "How do I simplify the fraction 12/18?",
    "What is the difference between mass and weight?",
    "How do you round 3.456 to one decimal place?",
    "What is photosynthesis?",
    "How do I solve 2x + 3 = 11?",
    "What is a prime number? Give examples.",
    "Explain the water cycle.",
    "How do I find the perimeter of a rectangle?",
    "What is the mean of a set of numbers?",
    "Why does ice float on water?",
    "How do I multiply two negative numbers?",
    "What is the circumference of a circle with radius 3 cm?",
]
# (label, options) in the order of the table; "on" is the [lm] default of tutor/config.py
SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("off", dict(repetition_penalty=1.0, no_repeat_ngram_size=0)),
    ("penalty 1.1", dict(repetition_penalty=1.1, no_repeat_ngram_size=0)),
    ("penalty 1.1 + no 4-gram twice", dict(repetition_penalty=1.1, no_repeat_ngram_size=4)),
    ("penalty 1.3", dict(repetition_penalty=1.3, no_repeat_ngram_size=0)),
    ("sentences only (no penalty)", dict(repetition_penalty=1.0, no_repeat_ngram_size=0)),
    ("on: penalty 1.1 + sentences", dict(repetition_penalty=1.1, no_repeat_ngram_size=0)),
]
SENTENCE_OPTIONS = ("sentences only (no penalty)", "on: penalty 1.1 + sentences")
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def repeats_ngram(text: str, n: int = 5) -> bool:
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) < len(grams)


def sentence_tokens(tokenizer: Any, replies: list[dict[str, Any]]) -> dict[str, Any]:
    """Tokens per sentence (3+ words, the last unfinished one left out) of ``replies``."""
    from tutor.lm.sentences import TAIL_TOKENS

    counts = sorted(
        len(tokenizer.encode(part, add_special_tokens=False))
        for r in replies
        for part in _SPLIT.split(r["text"].strip())[:-1]
        if len(part.split()) >= 3
    )
    if not counts:
        return {}
    return {
        "sentences": len(counts),
        "median": counts[len(counts) // 2],
        "p90": counts[int(0.9 * (len(counts) - 1))],
        "max": counts[-1],
        "tail_tokens": TAIL_TOKENS,
        "over_tail": sum(1 for c in counts if c > TAIL_TOKENS),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=128, help="max_new_tokens of every answer")
    ap.add_argument("--prompts", type=int, default=len(PROMPTS))
    args = ap.parse_args()
    rec = Recorder("decoding", args)

    from tutor.config import load_config
    from tutor.lm.hf import HFGenerator

    cfg = load_config(env={})
    gen = HFGenerator.from_config(cfg.lm, cfg.paths.models_dir)
    rec.meta(model=gen.name, decode_path=gen.decode_path, dtype=str(gen.model.dtype))
    prompts = PROMPTS[: args.prompts]
    replies: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in SETTINGS}
    "".join(gen.stream([{"role": "user", "content": "Hi"}], max_new_tokens=8))
    for i, prompt in enumerate(prompts):
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        for label, options in SETTINGS:
            sentences = label in SENTENCE_OPTIONS
            t0 = time.perf_counter()
            text = "".join(
                gen.stream(
                    messages,
                    max_new_tokens=args.tokens,
                    temperature=0.0,
                    end_at_sentence=sentences,
                    drop_repeated_sentences=sentences,
                    **options,
                )
            )
            wall = time.perf_counter() - t0
            n_new = int(gen.last_stats["new_tokens"])
            first = float(gen.last_stats["ttft_s"])
            replies[label].append(
                {"prompt": i, "text": text, "tokens": n_new, "wall_s": wall, "first_s": first}
            )
        print(f"prompt {i + 1}/{len(prompts)} done", flush=True)

    rows = []
    for label, options in SETTINGS:
        got = replies[label]
        n = len(got)

        def share(test: Any, got: list[dict[str, Any]] = got, n: int = n) -> str:
            k = sum(1 for r in got if test(r["text"]))
            return f"{k}/{n} ({100 * k / n:.0f} %)"

        speed = sum(r["tokens"] for r in got) / sum(r["wall_s"] for r in got)
        words = sum(len(r["text"].split()) for r in got) / n
        first = sum(r["first_s"] for r in got) / n
        rows.append(
            [
                label,
                share(ends_mid_sentence),
                share(repeats_sentence),
                share(repeats_ngram),
                f"{words:.0f}",
                f"{speed:.1f}",
                f"{first:.2f}",
            ]
        )
        rec.samples(label, {"options": options, "replies": got})
    columns = [
        "setting",
        "ends mid-sentence",
        "repeats a sentence",
        "repeats a word 5-gram",
        "words / reply",
        "tok/s",
        "first text (s)",
    ]
    print(rec.table("settings", columns, rows, align="lrrrrrr"))
    rec.meta(sentence_tokens=sentence_tokens(gen.tokenizer, replies["off"]))
    rec.meta(
        tokens=args.tokens,
        prompts=len(prompts),
        note="greedy; tok/s = new tokens / answer wall time (prefill included)",
    )
    rec.write()


if __name__ == "__main__":
    main()
