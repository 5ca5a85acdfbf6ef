"""Word answers and multiple choice: word normalization (``_norm_words``) and reading which
option a response picks (a label like ``B`` or ``(b)``, the option text, or its value).
"""

from __future__ import annotations

import re
from typing import Protocol

from tutor.grading.meaning import _asserted_number, _rejected_between
from tutor.grading.normalize import _LEAD_INS, _trim, normalize_text
from tutor.grading.numbers import parse_number


class _HasChoices(Protocol):
    """What ``_choice_index`` needs of an ``AnswerSpec``: its options."""

    @property
    def choices(self) -> tuple[str, ...]: ...


def _norm_words(text: str) -> str:
    s = normalize_text(text)
    s = re.sub(r"[^a-z0-9%/.\- ]+", " ", s)
    s = re.sub(r"\b(?:the|a|an)\b", " ", s)
    return re.sub(r"\s+", " ", s).strip(" .-")


_LABEL_RE = re.compile(
    r"^(?:(?:the\s+)?(?:answer|option|choice)\s*(?:is|:)?\s*|i\s+(?:think|pick|choose)\s+|it'?s\s+)?"
    r"\(?([a-h])\)?[.):]?(?:\s+(.*))?$"
)


def _choice_index(spec: _HasChoices, response: str) -> int | None:
    """The option the response picks: a label (``B``, ``(b)``, ``option b``) or the option text."""
    r = normalize_text(response).strip(" .!?")
    norm_choices = [_norm_words(c) for c in spec.choices]
    nr = _norm_words(r)
    if nr in norm_choices:
        return norm_choices.index(nr)
    m = _LABEL_RE.match(r) or _LABEL_RE.match(_trim(_LEAD_INS.sub("", r)))  # "I think it's B"
    if m:
        idx = ord(m.group(1)) - ord("a")
        rest = _norm_words(m.group(2) or "")
        if idx < len(spec.choices) and (not rest or rest == norm_choices[idx]):
            return idx
        if rest in norm_choices:
            return norm_choices.index(rest)
        if not rest and idx >= len(spec.choices):
            return None
    # the response contains exactly one option's text, not negated ("not evaporation")
    hits = [i for i, c in enumerate(norm_choices) if c and _mentions_option(nr, c)]
    if len(hits) == 1:
        return hits[0]
    # the options may be numbers: compare by value
    n = _asserted_number(response)  # not a number the learner negates ("not 0.5")
    if n is not None:
        vals = [parse_number(c) for c in spec.choices]
        hits = [i for i, v in enumerate(vals) if v is not None and v.ratio == n.ratio]
        if len(hits) == 1:
            return hits[0]
    return None


def _mentions_option(nr: str, option: str) -> bool:
    """``nr`` (normalized words) names ``option`` at least once without negating it."""
    for m in re.finditer(rf"\b{re.escape(option)}\b", nr):
        # _norm_words turned "isn't" into "isn t": put the apostrophe back for the check
        before = re.sub(r"n t\b", "n't", nr[: m.start()])
        after = re.sub(r"n t\b", "n't", nr[m.end() :])
        if not _rejected_between(before, after):
            return True
    return False


def _label(i: int) -> str:
    return chr(ord("A") + i)
