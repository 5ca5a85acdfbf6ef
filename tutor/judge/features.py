"""Surface features of a reply that the encoder sees poorly: numbers.

A "telling" turn states results (the final answer, or a step's value that neither the problem
nor the student gave); a pooled sentence vector blurs which numbers a reply contains. These few
features go to the classifier's head beside the pooled vectors.
"""

from __future__ import annotations

import math
import re

from tutor.judge.data import MoveExample

FEATURE_NAMES = (
    "asks_question",
    "states_final_answer",
    "new_numbers",  # numbers in neither the problem nor the student's turn (log1p of the count)
    "numbers",  # log1p of the count
    "has_equation",  # "a op b = c" or "= c"
    "words",  # log1p of the word count
)

_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")
_EQUATION = re.compile(r"\d\s*[-+*/x×÷]\s*\d|=\s*\$?\d")


def numbers(text: str) -> set[str]:
    """The numbers written in ``text`` (commas and trailing ``.0`` dropped)."""
    out = set()
    for m in _NUMBER.findall(text or ""):
        n = m.replace(",", "")
        if "." in n:
            n = n.rstrip("0").rstrip(".")
        out.add(n)
    return out


def features(e: MoveExample) -> list[float]:
    """``FEATURE_NAMES`` for one example, in that order."""
    said = numbers(e.reply)
    known = numbers(e.problem) | numbers(e.student)
    answer = numbers(e.answer)
    return [
        float("?" in e.reply),
        float(bool(answer) and answer <= said),
        math.log1p(len(said - known)),
        math.log1p(len(said)),
        float(bool(_EQUATION.search(e.reply))),
        math.log1p(len(e.reply.split())),
    ]
