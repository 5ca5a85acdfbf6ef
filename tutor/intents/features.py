"""What the intent classifier sees of a message besides its embedding: the conversation state
and a few cheap facts about the text.

The embedding (the bundled MiniLM's sentence vector) carries the wording; these carry what a
sentence vector blurs: whether there is a digit, an equals sign, a question mark, a problem
the tutor could solve; and the state (is a problem open, which kind, did the tutor just ask
something). The same "12" is an answer with a problem open and something else without one, so
the state is crossed with the text facts (``problem_open`` times each), which lets a linear
model weigh them differently in the two states.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tutor.store.records import SessionState
    from tutor.turns import OpenProblem

LABELS = (
    "question",
    "answer",
    "step",
    "hint",
    "solution",
    "practice",
    "new_problem",
    "greeting",
    "offtopic",
    "meta",
)
KINDS = ("none", "bank", "own", "word")

_WH = re.compile(
    r"^\s*(what|why|how|when|where|who|which|whats|can|could|would|is|are|do|does|did|should)\b",
    re.I,
)
_MATH_VERB = re.compile(
    r"^\s*(solve|calculate|compute|convert|find|simplify|evaluate|work out|factor|expand|"
    r"divide|multiply|add|subtract|what'?s|what is)\b",
    re.I,
)
_OPERATION = re.compile(r"\d\s*[-+*/x×÷^]\s*[\d(]|\d\s*%|\bpercent\b", re.I)
_NEGATION = re.compile(r"\b(not|isn'?t|wasn'?t|no|wrong|never)\b", re.I)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_WORD = re.compile(r"\w+")

TEXT_FEATURES = (
    "has_digit",
    "ends_with_question_mark",
    "has_equals",
    "has_operation",
    "starts_with_question_word",
    "starts_with_math_verb",
    "words_log",
    "numbers",
    "computable_problem",
    "word_problem",
    "negation",
    "at_most_three_words",
    "non_ascii",
)
STATE_FEATURES = ("problem_open", *(f"kind_{k}" for k in KINDS), "last_tutor_question")
FEATURE_NAMES = (
    *TEXT_FEATURES,
    *STATE_FEATURES,
    *(f"open_x_{f}" for f in TEXT_FEATURES),
)


@dataclass(frozen=True)
class TurnState:
    """The conversation state an intent depends on."""

    problem_open: bool = False
    problem_kind: str = "none"  # none | bank | own | word
    last_tutor_question: bool = False

    def __post_init__(self) -> None:
        if self.problem_kind not in KINDS:
            raise ValueError(f"problem_kind {self.problem_kind!r} is not one of {KINDS}")


def text_features(text: str) -> list[float]:
    """The cheap facts about one message, in ``TEXT_FEATURES`` order (each in [0, 1])."""
    from tutor.modes import computable_problem, is_word_problem

    t = (text or "").strip()[:4000]
    words = _WORD.findall(t)
    return [
        float(bool(re.search(r"\d", t))),
        float(t.endswith("?")),
        float("=" in t),
        float(bool(_OPERATION.search(t))),
        float(bool(_WH.match(t))),
        float(bool(_MATH_VERB.match(t))),
        min(1.0, math.log1p(len(words)) / 5.0),
        min(3, len(_NUMBER.findall(t))) / 3.0,
        float(computable_problem(t[:500]) is not None),
        float(is_word_problem(t)),
        float(bool(_NEGATION.search(t))),
        float(len(words) <= 3),
        float(any(ord(c) > 127 for c in t)),
    ]


def state_features(state: TurnState) -> list[float]:
    return [
        float(state.problem_open),
        *(float(state.problem_kind == k) for k in KINDS),
        float(state.last_tutor_question),
    ]


def feature_rows(texts: Sequence[str], states: Sequence[TurnState]) -> np.ndarray:
    """The non-embedding features, shape ``(len(texts), len(FEATURE_NAMES))``."""
    rows = []
    for text, state in zip(texts, states, strict=True):
        tf = text_features(text)
        rows.append([*tf, *state_features(state), *(v * state.problem_open for v in tf)])
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(FEATURE_NAMES))


def turn_state(
    opened: OpenProblem | None, state: SessionState, history: Sequence[Any]
) -> TurnState:
    """The state of a conversation as the model reads it: what is open (a bank item, the
    learner's own problem, a word problem the tutor cannot solve), and whether the tutor's last
    turn asked something."""
    from tutor.opening import word_problem_open

    if opened is not None:
        kind = "bank" if opened.from_bank else "own"
    else:
        kind = "word" if word_problem_open(state) else "none"
    said = [m for m in history if m.get("role") == "assistant"]
    asked = bool(said) and str(said[-1].get("content", "")).rstrip().endswith("?")
    return TurnState(kind != "none", kind, asked)
