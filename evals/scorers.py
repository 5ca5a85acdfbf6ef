"""Scorers for one tutor response, without a model.

Deterministic (exact by construction):

- ``answer_revealed``: the response states the context's final answer in any form the answer
  checker accepts (``tutor.grading.mentions_answer``: 0.75, 75% or "three quarters" for 3/4),
  not counting the problem's own numbers unless stated as a result. None when the context has
  no known answer. This is the MRBench "revealing the answer" dimension restricted to the
  correct answer (a response that reveals a *wrong* final answer is not detected).
- ``asks_question``, ``word_count``.

Heuristic (cue phrases; report them as such and check them with ``judge-calibration``):

- ``mistake_identification``: Yes when the response signals a mistake ("not quite", "check",
  "mistake", ...), else No;
- ``tutor_tone``: Offensive on insulting words, Encouraging on praise or support cues, else
  Neutral.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from evals.datasets import DialogueContext
from evals.dimensions import ENCOURAGING, NEUTRAL, NO, OFFENSIVE, REVEALED_CORRECT, YES

DETERMINISTIC = ("revealing_answer",)
HEURISTIC = ("mistake_identification", "tutor_tone")

_MISTAKE = re.compile(
    r"\b(not quite|not (exactly |entirely |quite )?(right|correct)|isn'?t (quite )?right|incorrect|"
    r"mistake|error|wrong|check (your|that|this|it|again|the|each|how)|re-?check|double[- ]check|"
    r"look (again|closely|carefully)|take another look|are you sure|almost|close,? but|careful|"
    r"revisit|let'?s (re)?look at|try (it )?again|one more time|not what|doesn'?t (look|seem) right|"
    r"where did you get|how did you get|why did you|you (forgot|missed|mixed up|confused|swapped)|"
    r"you (only )?(added|subtracted|multiplied|divided|counted|used|wrote|took)\b.*\b(but|instead|not)|"
    r"should (be|have)|instead of|close|but (you|remember|look|wait|that|it'?s not)|"
    r"does it say|is that (right|correct|what))\b",
    re.I,
)
_OFFENSIVE = re.compile(
    r"\b(stupid|dumb|idiot\w*|lazy|pathetic|useless|ridiculous|shut up|terrible|awful|"
    r"are you (even )?(listening|serious)|obviously wrong|how (can|could) you not)\b",
    re.I,
)
_ENCOURAGING = re.compile(
    r"\b(good|great|nice|well done|excellent|awesome|wonderful|fantastic|brilliant|"
    r"(you'?re|you are) (on the right track|close|getting (there|closer))|good (try|start|effort|thinking|job)|"
    r"keep (it up|going|trying)|don'?t worry|no worries|almost there|you can do|i like (how|that|the way)|"
    r"thanks? (you )?for|nice try|that'?s okay|it'?s okay|proud)\b",
    re.I,
)


@dataclass
class ResponseScores:
    """Labels per dimension with where each came from, plus plain features."""

    labels: dict[str, str | None] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # dimension -> scorer name
    features: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"labels": self.labels, "sources": self.sources, "features": self.features}


def answer_revealed(text: str, ctx: DialogueContext) -> bool | None:
    """True when ``text`` states ``ctx.answer`` (see module docstring); None without an answer."""
    from tutor.errors import InputError
    from tutor.grading import AnswerSpec, mentions_answer

    if not ctx.answer:
        return None
    try:
        spec = AnswerSpec.infer(ctx.answer)
    except InputError:
        return None
    return bool(mentions_answer(text or "", spec, prompt=ctx.problem or ""))


def asks_question(text: str) -> bool:
    return "?" in (text or "")


def word_count(text: str) -> int:
    return len((text or "").split())


def mistake_identification(text: str) -> str:
    return YES if _MISTAKE.search(text or "") else NO


def tutor_tone(text: str) -> str:
    if _OFFENSIVE.search(text or ""):
        return OFFENSIVE
    return ENCOURAGING if _ENCOURAGING.search(text or "") else NEUTRAL


def score_response(text: str, ctx: DialogueContext) -> ResponseScores:
    """All model-free scores of one response to ``ctx``."""
    s = ResponseScores()
    revealed = answer_revealed(text, ctx)
    s.features = {
        "answer_revealed": revealed,
        "asks_question": asks_question(text),
        "words": word_count(text),
        "empty": not (text or "").strip(),
    }
    s.labels["revealing_answer"] = (
        None if revealed is None else (REVEALED_CORRECT if revealed else NO)
    )
    s.sources["revealing_answer"] = "deterministic"
    s.labels["mistake_identification"] = mistake_identification(text)
    s.sources["mistake_identification"] = "heuristic"
    s.labels["tutor_tone"] = tutor_tone(text)
    s.sources["tutor_tone"] = "heuristic"
    return s
