"""The optional LM judge: one rubric question per MRBench dimension, through any LM backend.

The judge gets the problem (and its answer, when known), the conversation so far and the
tutor's response, with the dimension's definition and its allowed labels, and must answer with
one label. Greedy decoding, a few tokens. An answer that names no allowed label is recorded as
unparsed (None). When the backend cannot be reached the judge is switched off for the rest
of the run (``Judge.skipped`` says why) and every other scorer still runs.

Trust a judge only after ``tutor eval judge-calibration`` shows it agrees with human labels.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from evals.datasets import DialogueContext
from evals.dimensions import DIMENSIONS, normalize_label
from tutor.errors import BackendError, ContextOverflowError

if TYPE_CHECKING:
    from tutor.lm.base import Generator

log = logging.getLogger(__name__)

JUDGE_SYSTEM = (
    "You are an experienced mathematics teacher who evaluates how well tutors respond to "
    "students. Read the conversation and the tutor's response, then answer the question with "
    "exactly one of the allowed labels and nothing else."
)


def judge_messages(dimension: str, ctx: DialogueContext, response: str) -> list[dict[str, str]]:
    dim = DIMENSIONS[dimension]
    parts = []
    if ctx.problem:
        parts.append(f"Problem: {ctx.problem}")
    if ctx.answer:
        parts.append(f"Correct final answer: {ctx.answer}")
    parts.append(f"Conversation so far:\n{ctx.transcript(3000)}")
    parts.append(f"Tutor's response to evaluate:\n{response.strip()}")
    parts.append(f"Question ({dim.title}): {dim.definition}")
    parts.append(f"Allowed labels: {' / '.join(dim.labels)}")
    parts.append("Answer with one label.")
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def parse_label(dimension: str, output: str) -> str | None:
    """The allowed label the judge's output names first (None when it names none)."""
    text = (output or "").strip()
    if not text:
        return None
    direct = normalize_label(dimension, text)
    if direct is not None:
        return direct
    low = text.lower()
    best: tuple[int, int, str] | None = None
    for label in DIMENSIONS[dimension].labels:
        variants = {label.lower(), label.lower().split(" (")[0]}
        for v in variants:
            m = re.search(rf"(?<![a-z]){re.escape(v)}(?![a-z])", low)
            if m and (best is None or (m.start(), -len(v)) < (best[0], best[1])):
                best = (m.start(), -len(v), label)
    if best is None:
        return None
    return normalize_label(dimension, best[2])


class Judge:
    """Labels responses per dimension with an LM (any ``Generator``)."""

    def __init__(self, generator: Generator, *, name: str = "", max_new_tokens: int = 12) -> None:
        self.generator = generator
        self.name = name or str(getattr(generator, "name", "judge"))
        self.max_new_tokens = max_new_tokens
        self.skipped: str | None = None  # why the judge was switched off
        self.calls = 0
        self.unparsed = 0

    @property
    def available(self) -> bool:
        return self.skipped is None

    def label(self, dimension: str, ctx: DialogueContext, response: str) -> tuple[str | None, str]:
        """``(label, raw output)``; label None when unparsed or when the judge is off."""
        if self.skipped is not None:
            return None, ""
        msgs = judge_messages(dimension, ctx, response)
        try:
            out = "".join(
                self.generator.stream(msgs, max_new_tokens=self.max_new_tokens, temperature=0.0)
            )
        except ContextOverflowError as e:
            log.warning("judge: prompt too long for %s (%s)", ctx.id, e)
            return None, ""
        except BackendError as e:
            self.skipped = f"judge backend unreachable: {e}"
            log.warning("the LM judge is skipped for the rest of the run: %s", e)
            return None, ""
        self.calls += 1
        label = parse_label(dimension, out)
        if label is None:
            self.unparsed += 1
        return label, out.strip()

    def label_all(
        self, ctx: DialogueContext, response: str, dimensions: tuple[str, ...] | None = None
    ) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for d in dimensions or tuple(DIMENSIONS):
            if self.skipped is not None:
                break
            out[d] = self.label(d, ctx, response)[0]
        return out
