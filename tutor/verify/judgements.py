"""Sentences that judge the learner's work, and whether they agree with the grader.

``find_judgement(sentence)`` says whether a sentence affirms ("That's right.", "Correct!",
"Yes, 12 is it.", "Well done", "indeed", "exactly") or rejects ("Not quite.", "That's wrong",
"incorrect") the learner's work; questions ("Is that right?") and hedged or conditional forms
("If you got 12, that's correct", "check whether it is right") judge nothing. Praise for a
question ("Great question!") and "the correct answer/way/units" are no judgement either.

``agrees(judgement, verdict)``: only the grader judges, so a judgement stands only when it says
what the deterministic verdict says; with no verdict (``"unknown"``) none stands.
"""

from __future__ import annotations

import re
from typing import Literal

Judgement = Literal["affirm", "reject"]
Verdict = Literal["correct", "incorrect", "unknown"]

_REJECT = re.compile(
    r"\b(?:not\s+(?:quite|correct|right|exactly\s+right)|incorrect|wrong|"
    r"(?:isn't|is\s+not|aren't|are\s+not|wasn't)\s+(?:quite\s+)?(?:right|correct)|"
    r"(?:that's|that\s+is|this\s+is)\s+not\s+it|try\s+again|"
    r"(?:there's|there\s+is|you\s+made)\s+(?:a|an|one)\s+(?:small\s+)?(?:mistake|error)|"
    r"close,\s+but|almost)\b"
    r"|^\W*no\b(?!\s+(?:problem|worries|need|one|matter|doubt))",
    re.I,
)
_AFFIRM = re.compile(
    r"^\W*(?:yes|yeah|yep|bingo)\b|^\W*(?:correct|right|exactly|perfect|excellent)\s*(?:[!.,]|$)"
    r"|\b(?:indeed|well\s+done|great\s+job|good\s+job|nice\s+job|nice\s+work|great\s+work|"
    r"(?:awesome|amazing|fantastic|terrific|brilliant|superb|outstanding)\s+(?:job|work)|"
    r"good\s+work|spot\s+on|you\s+got\s+it|you've\s+got\s+it|nailed\s+it|bravo|"
    r"(?:that's|that\s+is|this\s+is|it's|it\s+is|you're|you\s+are|is|are|was|were|looks|"
    r"sounds|absolutely|exactly|perfectly|completely|totally|quite|all)\s+(?:the\s+)?"
    r"(?:correct|right)(?!\s+(?:angle|triangle|side|hand|way\s+to|answer\s+is|there|here|now|away))|"
    r"correct\s*!|"
    r"(?:good|great|excellent|nice|perfect|awesome|amazing|fantastic|brilliant|superb)\s*!)",
    re.I,
)
_NOT_JUDGING = re.compile(
    r"\b(?:great|good|excellent|nice)\s+question\b|\bperfect\s+(?:square|cube|number)\b", re.I
)
_HEDGE = re.compile(
    r"\b(?:if|whether|unless|might|maybe|could|would|should|check|make\s+sure|see\s+if|"
    r"let's\s+see|when\s+you|once\s+you|to\s+be)\b",
    re.I,
)
_CONDITIONAL_START = re.compile(
    r"^\W*(?:if|when|once|whenever|suppose|assuming|unless|imagine)\b", re.I
)
_QUESTION_START = re.compile(
    r"^\W*(?:is|are|was|were|do|does|did|can|could|would|will|should|what|how|why|which|"
    r"where|when|who|have|has)\b",
    re.I,
)


def _clauses(sentence: str) -> list[str]:
    return [c for c in re.split(r"[,;:—–]|\s-\s|\bbut\b|\bso\b", sentence) if c.strip()]


def find_judgement(sentence: str) -> Judgement | None:
    """``"affirm"``, ``"reject"`` or None for one sentence of tutor text."""
    s = sentence.strip()
    if not s or (s.endswith("?") and _QUESTION_START.search(s)):
        return None  # "Is that right?": asking, not judging
    s = s.replace("’", "'")
    if _CONDITIONAL_START.search(s):
        return None  # "If you got 12, that's correct": a condition, not a verdict
    found: Judgement | None = None
    for i, clause in enumerate(_clauses(s)):
        if clause.rstrip().endswith("?") or _HEDGE.search(clause) or _NOT_JUDGING.search(clause):
            continue
        # "yes"/"no"/"correct" open a sentence; later clauses only judge by a full phrase
        text = clause if i == 0 else re.sub(r"^\W*(?:yes|no|right|correct|exactly)\b", "", clause)
        if _REJECT.search(text):
            return "reject"  # a rejection anywhere decides: "Yes, but that's not right"
        if found is None and _AFFIRM.search(text):
            found = "affirm"
    return found


def agrees(judgement: Judgement, verdict: Verdict) -> bool:
    """True when the grader's verdict says the same; never when there is no verdict."""
    return (judgement, verdict) in (("affirm", "correct"), ("reject", "incorrect"))


STEP_RIGHT = "That step checks out."
STEP_WRONG = "That step doesn't check out yet; let's look at it again."
LAST_ANSWER_WRONG = "Your last answer isn't right yet."
