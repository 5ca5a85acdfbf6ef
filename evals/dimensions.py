"""The eight pedagogical dimensions of the MRBench taxonomy (Maurya et al., NAACL 2025).

Each dimension has its label set, the label a good tutor response gets ("desired"), the field
name MRBench files use for its human label, and a one-sentence definition written for this
project (used in the LM judge's rubric and in reports).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

YES, SOME, NO = "Yes", "To some extent", "No"
REVEALED_CORRECT, REVEALED_WRONG = "Yes (correct)", "Yes (incorrect)"
ENCOURAGING, NEUTRAL, OFFENSIVE = "Encouraging", "Neutral", "Offensive"


@dataclass(frozen=True)
class Dimension:
    key: str
    title: str
    mrbench_field: str
    labels: tuple[str, ...]
    desired: str
    definition: str


DIMENSIONS: dict[str, Dimension] = {
    d.key: d
    for d in (
        Dimension(
            "mistake_identification",
            "Mistake identification",
            "Mistake_Identification",
            (YES, SOME, NO),
            YES,
            "Does the tutor's response recognise that the student's last answer or reasoning "
            "contains a mistake (or that the student is confused)?",
        ),
        Dimension(
            "mistake_location",
            "Mistake location",
            "Mistake_Location",
            (YES, SOME, NO),
            YES,
            "Does the response point at the actual mistake, saying where in the student's work "
            "it is, rather than only saying that something is wrong?",
        ),
        Dimension(
            "revealing_answer",
            "Revealing the answer",
            "Revealing_of_the_Answer",
            (REVEALED_CORRECT, REVEALED_WRONG, NO),
            NO,
            "Does the response state the final answer of the problem, whether that answer is "
            "correct or not?",
        ),
        Dimension(
            "providing_guidance",
            "Providing guidance",
            "Providing_Guidance",
            (YES, SOME, NO),
            YES,
            "Does the response give correct and relevant help (an explanation, a hint, an "
            "example or a guiding question) that moves the student towards the solution?",
        ),
        Dimension(
            "actionability",
            "Actionability",
            "Actionability",
            (YES, SOME, NO),
            YES,
            "After reading the response, is it clear what the student should do next?",
        ),
        Dimension(
            "coherence",
            "Coherence",
            "Coherence",
            (YES, SOME, NO),
            YES,
            "Does the response follow logically from the conversation and the student's last "
            "message?",
        ),
        Dimension(
            "tutor_tone",
            "Tutor tone",
            "Tutor_Tone",
            (ENCOURAGING, NEUTRAL, OFFENSIVE),
            ENCOURAGING,
            "Is the tone of the response encouraging, neutral or offensive?",
        ),
        Dimension(
            "humanlikeness",
            "Human-likeness",
            "Humanlikeness",
            (YES, SOME, NO),
            YES,
            "Does the response sound natural, like a human tutor, rather than robotic or "
            "artificial?",
        ),
    )
}


def _squash(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


_FIELD_TO_KEY = {_squash(d.mrbench_field): d.key for d in DIMENSIONS.values()}
_FIELD_TO_KEY.update({_squash(k): k for k in DIMENSIONS})
_FIELD_TO_KEY[_squash("Revealing_Answer")] = "revealing_answer"


def dimension_for_field(name: str) -> str | None:
    """``"Mistake_Identification"`` / ``"humanlikeness"`` / ``"mistake identification"`` ->
    the dimension key; None for a field that is not a dimension."""
    return _FIELD_TO_KEY.get(_squash(name))


def normalize_label(dimension: str, value: object) -> str | None:
    """A human or judge label in any spelling MRBench uses -> one of the dimension's labels,
    or None when it is not one of them."""
    dim = DIMENSIONS[dimension]
    text = str(value or "").strip().lower()
    if not text:
        return None
    if dimension == "revealing_answer":
        if text.startswith("no"):
            return NO
        if text.startswith("yes"):
            return (
                REVEALED_WRONG
                if re.search(r"\b(but|incorrect|wrong)\b", text)
                else REVEALED_CORRECT
            )
        return None
    if dimension == "tutor_tone":
        for label in dim.labels:
            if text.startswith(label.lower()):
                return label
        return None
    if text.startswith("to some extent") or text.startswith("some"):
        return SOME
    if text.startswith("yes"):
        return YES
    if text.startswith("no"):
        return NO
    return None


def is_desired(dimension: str, label: str | None) -> bool | None:
    """Whether ``label`` is the desired one (None when there is no label)."""
    if label is None:
        return None
    return label == DIMENSIONS[dimension].desired
