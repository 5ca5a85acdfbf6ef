"""The move classifier as an offline judge (``tutor eval --judge classifier``).

It has the LM judge's interface (``label_all``, ``available``, ``skipped``, ``name``) and
labels the MRBench dimensions its moves map to (``tutor.judge.model.DERIVED``), Yes when the
derived probability is at least ``threshold``, else No:

- mistake identification <- ``identifies_mistake`` (focus + probing + telling);
- providing guidance <- ``gives_guidance`` (focus + probing + telling);
- actionability <- ``is_actionable`` (focus + probing).

It leaves the others unlabelled: revealing the answer stays with the deterministic answer check
(the "telling" move also covers telling a step or a strategy, so it is not the same question),
and mistake location, coherence, tone and human-likeness have no move to map from. What it
sees: the problem, the student's last turn, the final answer and the reply; not the earlier
turns, and not whether the mistake it "identifies" is the student's actual one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals.datasets import DialogueContext
from evals.dimensions import NO, YES

# MRBench dimension -> derived judgement of the classifier
DIMENSION_MAP = {
    "mistake_identification": "identifies_mistake",
    "providing_guidance": "gives_guidance",
    "actionability": "is_actionable",
}


class ClassifierJudge:
    """Labels responses with the trained move classifier (see module docstring)."""

    def __init__(self, model: Any, *, name: str = "classifier", threshold: float = 0.5) -> None:
        self.model = model
        self.name = name
        self.threshold = threshold
        self.skipped: str | None = None
        self.calls = 0
        self.unparsed = 0  # never: the classifier always answers

    @classmethod
    def load(cls, weights: str | Path | None = None) -> ClassifierJudge:
        from tutor.judge.model import SHIPPED, MoveClassifier

        return cls(MoveClassifier.load(weights or SHIPPED))

    @property
    def available(self) -> bool:
        return self.skipped is None

    def judgement(self, ctx: DialogueContext, response: str) -> Any:
        self.calls += 1
        return self.model.judge(
            response, problem=ctx.problem, student=ctx.last_student, answer=ctx.answer
        )

    def label_all(
        self, ctx: DialogueContext, response: str, dimensions: tuple[str, ...] | None = None
    ) -> dict[str, str | None]:
        j = self.judgement(ctx, response)
        out: dict[str, str | None] = {}
        for dim, derived in DIMENSION_MAP.items():
            if dimensions is None or dim in dimensions:
                out[dim] = YES if j.derived[derived] >= self.threshold else NO
        return out
