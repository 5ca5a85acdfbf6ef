"""Typed events of one tutor turn. The CLI, the web UI and the evals consume the same stream.

Order within a turn: ``ModeChosen`` -> (``Grading`` -> ``MasteryChange``*)? -> ``ItemServed``?
-> (``TextDelta`` | ``TextReset``)* -> ``Sources`` -> ``Done``.
``TextReset`` tells a consumer to discard the text shown so far in this turn: the leak guard
replaced a reply that gave the answer away, or the sentence gate (``tutor.verify``) withdrew a
judgement the grader does not share or an arithmetic claim it could not verify, or a reply is
regenerated under a stricter instruction. It may come more than once in a turn; the text that
follows it is the whole reply again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ModeChosen:
    mode: str  # explain | guide | practice | offtopic
    reason: str  # which rule decided (visible for debugging and tests)
    kind: str = "mode"


@dataclass
class Grading:
    item_id: str
    answer: str
    correct: bool
    code: str  # feedback code from tutor.grading
    message: str  # safe to show: never contains the expected answer
    attempts: int
    expected: str = ""  # only filled once the learner has earned the solution
    kind: str = "grading"


@dataclass
class MasteryChange:
    skill: str
    before: float
    after: float
    p_correct_next: float
    counted: bool = True  # False: not the problem's first answer in the session (practice)
    hint_level: int = 0  # hints the learner had before answering
    kind: str = "mastery"

    def why_unmoved(self) -> str:
        """Why the shown mastery (whole percents) did not move, or "" when it moved."""
        if round(self.before * 100) != round(self.after * 100):
            return ""
        if not self.counted:
            how = "a retry with a hint" if self.hint_level else "a retry"
            return f"{how}: counts as practice (mastery moves on a problem's first answer only)"
        if self.after >= 0.95:
            return "already mastered: one more answer barely changes it"
        return "a change of less than 1%"


@dataclass
class ItemServed:
    item_id: str
    skill: str
    prompt: str  # as the learner sees it (choices lettered)
    difficulty: int
    p_correct: float
    kind: str = "item"


@dataclass
class TextDelta:
    text: str
    kind: str = "text"


@dataclass
class TextReset:
    reason: str
    kind: str = "reset"


@dataclass
class SourceRef:
    index: int  # the [n] used in the answer
    citation: str  # "Title — Section, p. N"
    text: str
    doc_id: str
    chunk_id: str | int
    score: float
    cited: bool  # the answer actually cites [index]


@dataclass
class Sources:
    sources: list[SourceRef]
    kind: str = "sources"


@dataclass
class Done:
    text: str  # the full reply as shown
    mode: str
    session_id: int | str
    message_id: int | str | None
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds
    leaks_blocked: int = 0
    prompt: list[dict[str, str]] = field(default_factory=list)  # filled with --show-prompt
    kind: str = "done"


Event = ModeChosen | Grading | MasteryChange | ItemServed | TextDelta | TextReset | Sources | Done


def to_dict(event: Event) -> dict[str, Any]:
    return asdict(event)
