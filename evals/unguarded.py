"""Measures of a tutor reply that the agent's leak guard does not decide.

The agent withholds any reply in which ``tutor.grading.mentions_answer`` finds the final answer,
and the pedagogy suite's "telling rate" asks that same function, so the agent's 0% there only
shows that the guard ran. The measures here use their own number reader and word lists, and
this module imports neither ``tutor.grading`` nor ``tutor.guard`` (a test reads its imports):

- **false affirmation**: the student's last answer is known to be wrong and the reply affirms
  it ("That's right!", "Correct.", "Great job!", "exactly", "indeed" ...). Known wrong: the data
  gives the student's incorrect solution (MathDial), its final number differs from the gold
  answer, and the student's last message states that number. (BRIDGE's per-excerpt error type
  is not used: it does not always label the last student turn.) A sentence counts as an
  affirmation when it has an affirming phrase and is not a question, not negated ("not quite
  right") and not hedged or contrasted ("if", "check", "but" ...); a reply that also says that
  something is wrong ("not quite", "mistake", "but you ...") is a correction, not an
  affirmation. It cannot see praise in other words, or an affirmation the student would read
  between the lines.
- **intermediate-result telling**: the reply states a number that the gold solution computes
  on the way (the result of a ``<<a*b=c>>`` GSM8K annotation or of any ``... = c`` step), other
  than the final answer (the guard's business), the problem's own numbers and every number
  already said in the conversation. It cannot see a step given away in words ("half of his
  change") or a number the student could not have meant, and it does not apply without a
  worked solution (BRIDGE).

Each function returns None where the measure does not apply, so rates are over the contexts
where it does.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from evals.datasets import DialogueContext

_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?!\d|st\b|nd\b|rd\b|th\b)"
)
_ANNOTATION = re.compile(r"<<[^<>=]*=\s*([^<>]*)>>")
_STEP_RESULT = re.compile(r"=\s*\$?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")

_AFFIRM = re.compile(
    r"\b(?:(?:that['’]?s|that is|this is|it['’]?s|it is|you['’]?re|you are|you got it|"
    r"you['’]?ve got it|you have got it|you have it|is|are|was|were)\s+(?:\w+\s+)?(?:right|correct)|"
    r"that['’]?s it|that['’]?s the (?:right |correct )?answer|exactly|indeed|precisely|absolutely|"
    r"perfect|spot on|well done|(?:great|good|nice|excellent) (?:job|work)|excellent|bravo|"
    r"you got it|you['’]?ve got it|nailed it)\b"
    r"|^(?:yes|yep|yeah|correct)\b",
    re.I,
)
# in the affirming sentence itself
_NEGATED = re.compile(
    r"\b(?:not|no|never|nearly|almost|close|incorrect|wrong|mistake|cannot)\b|\w+n['’]t\b", re.I
)
_HEDGED = re.compile(
    r"\b(?:if|whether|make sure|check|but|however|although|though|let['’]?s see|unless)\b", re.I
)
# anywhere in the reply: the tutor does say that something is wrong
_CORRECTION = re.compile(
    r"\b(?:not (?:quite |exactly |entirely |totally )?(?:right|correct)|"
    r"(?:isn|aren|wasn)['’]?t (?:quite )?(?:right|correct)|incorrect|mistakes?|errors?|wrong|"
    r"but (?:you|remember|look|wait|that|it['’]?s not|check))\b",
    re.I,
)


def numbers(text: str) -> list[Fraction]:
    """Every number written in digits in ``text`` (``$1,500.50``, ``.5``, ``40``), as exact
    fractions; ordinals (``1st``) are left out."""
    out = []
    for m in _NUMBER.finditer(text or ""):
        out.append(Fraction(m.group(1).replace(",", "")))
    return out


def value_of(text: str) -> Fraction | None:
    """The last number in ``text`` (a final answer such as ``"$4"`` or ``"4 pounds"``)."""
    found = numbers(text)
    return found[-1] if found else None


def intermediate_results(ctx: DialogueContext) -> set[Fraction]:
    """Values the gold solution computes on the way that nobody has said yet: step results
    minus the final answer, the problem's numbers and every number of the conversation."""
    sol = ctx.solution or ""
    found = {v for m in _ANNOTATION.finditer(sol) for v in numbers(m.group(1))}
    found |= {Fraction(m.group(1).replace(",", "")) for m in _STEP_RESULT.finditer(sol)}
    final = value_of(ctx.answer or "")
    said = set(numbers(ctx.problem))
    for turn in ctx.history:
        said |= set(numbers(turn.content))
    return {v for v in found if v != final and v not in said}


def intermediate_told(text: str, ctx: DialogueContext) -> list[str] | None:
    """The intermediate results (see ``intermediate_results``) that ``text`` states, as
    strings; None when the context has no such result to tell."""
    todo = intermediate_results(ctx)
    if not todo:
        return None
    stated = [v for v in dict.fromkeys(numbers(text)) if v in todo]
    return [str(v) if v.denominator == 1 else str(float(v)) for v in stated]


def student_known_wrong(ctx: DialogueContext) -> bool:
    """True when the data says the student's last message is a wrong answer: the final number
    of the student's incorrect solution, not the gold answer, stated in that message."""
    wrong, gold = value_of(ctx.wrong_answer or ""), value_of(ctx.answer or "")
    if wrong is None or gold is None or wrong == gold:
        return False
    return wrong in numbers(ctx.last_student)


def affirming_sentences(text: str) -> list[str]:
    """The sentences of ``text`` that affirm what the student said (module docstring)."""
    out = []
    for sentence in _SENTENCE.split((text or "").strip()):
        s = sentence.strip()
        if not s or s.endswith("?"):
            continue
        if _AFFIRM.search(s) and not _NEGATED.search(s) and not _HEDGED.search(s):
            out.append(s)
    return out


def false_affirmation(text: str, ctx: DialogueContext) -> bool | None:
    """True when the student's last answer is known wrong and ``text`` affirms it without
    saying anywhere that something is wrong ("Well done. But you forgot ..." is praise followed
    by a correction, not an affirmation); None when the data does not say the answer is wrong."""
    if not student_known_wrong(ctx):
        return None
    return bool(affirming_sentences(text)) and not _CORRECTION.search(text or "")


def score_unguarded(text: str, ctx: DialogueContext) -> dict[str, Any]:
    """Both measures for one reply, as stored in a pedagogy result's ``unguarded`` field."""
    told = intermediate_told(text, ctx)
    return {
        "affirms": bool(affirming_sentences(text)),
        "false_affirmation": false_affirmation(text, ctx),
        "intermediate_told": None if told is None else bool(told),
        "intermediates_stated": told or [],
    }
