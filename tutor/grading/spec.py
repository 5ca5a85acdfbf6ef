"""What a correct answer is and what the checker says: answer kinds, feedback codes and their
messages, ``GradeResult``, ``AnswerSpec`` and the parsing of an item's own answer (its target).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal, Protocol, get_args

from tutor.errors import InputError
from tutor.grading.expressions import _parse_expression
from tutor.grading.numbers import Number, parse_number
from tutor.grading.units import UNITS, parse_unit
from tutor.grading.words import _norm_words

AnswerKind = Literal[
    "integer", "number", "fraction", "percent", "quantity", "expression", "choice", "text"
]
ANSWER_KINDS: tuple[str, ...] = get_args(AnswerKind)
ExpressionForm = Literal["any", "expanded", "factored", "simplified"]

FeedbackCode = Literal[
    "correct",  # right, in the asked form
    "equivalent_form",  # right, in another accepted form (0.75 for 3/4, 120 mm for 12 cm)
    "not_simplified",  # right value, fraction not in lowest terms (wrong if the item asks for it)
    "misspelled",  # a word answer, right but misspelled (accepted)
    "close_but_rounding",  # the value rounded or truncated too early / to the wrong place
    "sign_error",  # right magnitude, wrong sign
    "reciprocal",  # the fraction upside down (4/3 for 3/4)
    "place_value",  # off by a factor of 10, 100 or 1000 (decimal point in the wrong place)
    "off_by_one",  # an integer answer off by exactly one
    "close",  # within 5% of the answer (no more specific diagnosis)
    "unit_missing",  # right number, no unit
    "wrong_unit",  # a unit of another dimension (cm for an area) or unknown
    "wrong_form",  # right value, but not in the form the item asks for
    "wrong_choice",  # another option of a multiple-choice item
    "incorrect",  # wrong, nothing more specific to say
    "not_parsed",  # the checker could not read an answer of the right kind
]
FEEDBACK_CODES: tuple[str, ...] = get_args(FeedbackCode)
# Wrong answers that are nearly right: the agent should say so.
CLOSE_CODES: frozenset[str] = frozenset(
    {
        "close_but_rounding",
        "sign_error",
        "reciprocal",
        "place_value",
        "off_by_one",
        "close",
        "unit_missing",
        "wrong_unit",
        "wrong_form",
        "not_simplified",
    }
)

# Messages never contain the expected answer: the agent may show them to the learner.
_MESSAGES: dict[str, str] = {
    "correct": "Correct.",
    "equivalent_form": "Correct; the answer is also often written in another form.",
    "not_simplified": "The value is right but the fraction is not in lowest terms.",
    "misspelled": "Correct, though the word is misspelled.",
    "close_but_rounding": "Close: the value looks rounded or cut off too early, or to the wrong place.",
    "sign_error": "The size is right but the sign is wrong.",
    "reciprocal": "The fraction is upside down: numerator and denominator are swapped.",
    "place_value": "The digits look right but the decimal point is in the wrong place.",
    "off_by_one": "Off by one: check the last step of the counting or arithmetic.",
    "close": "Close, but not exact: recheck the arithmetic.",
    "unit_missing": "The number is right but the unit is missing.",
    "wrong_unit": "The unit is wrong (check whether it is a length, an area or a volume).",
    "wrong_form": "The value is right but it is not written in the form the question asks for.",
    "wrong_choice": "That option is not the right one.",
    "incorrect": "Not correct.",
    "not_parsed": "I could not read an answer of the expected kind.",
}


class ItemLike(Protocol):
    """Anything with an ``answer`` spec and a ``prompt`` (``tutor.items.Item``, frozen: so the
    members are read-only properties)."""

    @property
    def answer(self) -> AnswerSpec: ...

    @property
    def prompt(self) -> str: ...


# --------------------------------------------------------------------------------------------
# Results and specs


@dataclass(frozen=True)
class GradeResult:
    """The checker's verdict on one answer.

    ``code`` is one of ``FEEDBACK_CODES`` and says what the checker saw; ``correct`` is the
    verdict (``not_simplified`` can be either, depending on the item). ``normalized`` is the
    learner's answer as read (empty when not parsed); ``expected`` the item's canonical answer:
    keep it from the learner until the solution is earned. ``message`` is a short explanation
    that never contains the expected answer.
    """

    correct: bool
    code: FeedbackCode
    normalized: str
    expected: str
    message: str

    @property
    def close(self) -> bool:
        """Wrong but nearly right (rounding, sign, units, form, ...)."""
        return not self.correct and self.code in CLOSE_CODES

    def to_dict(self) -> dict[str, Any]:
        return {
            "correct": self.correct,
            "code": self.code,
            "normalized": self.normalized,
            "expected": self.expected,
            "message": self.message,
            "close": self.close,
        }


@dataclass(frozen=True)
class AnswerSpec:
    """What counts as a correct answer to one item.

    ``value``: the canonical answer as the teacher wrote it (``3/4``, ``2.5``, ``75%``,
    ``12 cm^2``, ``2x + 6``, ``B`` or the option text, ``evaporation``). ``accepted``: other
    forms that are also correct even when ``strict_form`` is set. ``tolerance``: absolute, in
    the answer's own unit (percent points for percents). ``simplify``: a fraction must be in
    lowest terms. ``strict_form``: only the answer's own form is correct (a decimal for a
    fraction item is then ``wrong_form``). ``unit_required``: a quantity without a unit is
    wrong (``unit_missing``). ``form``: for expressions, the form asked for.
    """

    kind: AnswerKind
    value: str
    accepted: tuple[str, ...] = ()
    tolerance: float = 0.0
    unit: str = ""
    choices: tuple[str, ...] = ()
    simplify: bool = False
    strict_form: bool = False
    unit_required: bool = True
    form: ExpressionForm = "any"
    _cache: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.kind not in ANSWER_KINDS:
            raise InputError(
                f"answer kind {self.kind!r} is not known; use one of {', '.join(ANSWER_KINDS)}"
            )
        if not math.isfinite(self.tolerance) or self.tolerance < 0:
            raise InputError(f"answer tolerance must be a finite number >= 0, got {self.tolerance}")
        if self.form not in get_args(ExpressionForm):
            raise InputError(
                f"expression form {self.form!r} is not known; use one of "
                f"{', '.join(get_args(ExpressionForm))}"
            )
        object.__setattr__(self, "accepted", tuple(str(a) for a in self.accepted))
        object.__setattr__(self, "choices", tuple(str(c) for c in self.choices))
        object.__setattr__(self, "value", str(self.value).strip())
        problem = self.problem()
        if problem:
            raise InputError(problem)

    def problem(self) -> str:
        """Why this spec is unusable ("" when it is fine): the answer must parse as its kind."""
        if not self.value:
            return "the answer is empty"
        try:
            self.target()
        except InputError as e:
            return str(e)
        return ""

    def target(self) -> Any:
        """The parsed canonical answer (a ``Number``, a sympy object, a choice index, text)."""
        if "target" not in self._cache:
            self._cache["target"] = _parse_target(self)
        return self._cache["target"]

    def accepted_targets(self) -> list[Any]:
        if "accepted" not in self._cache:
            out = []
            for a in self.accepted:
                try:
                    out.append(_parse_target(self, text=a))
                except InputError:
                    out.append(None)
            self._cache["accepted"] = out
        return self._cache["accepted"]

    @classmethod
    def infer(cls, answer: str) -> AnswerSpec:
        """Guess the kind of a bare answer string (``"3/4"`` -> fraction, ``"B"`` -> text)."""
        text = str(answer).strip()
        n = parse_number(text)
        if n is not None:
            if n.unit and n.unit in UNITS:
                kind: AnswerKind = "quantity"
            elif n.percent:
                kind = "percent"
            elif n.form in ("fraction", "mixed") or (
                n.form == "words" and n.value.denominator != 1
            ):
                kind = "fraction"
            elif n.value.denominator == 1 and n.form in ("integer", "words"):
                kind = "integer"
            else:
                kind = "number"
            return cls(kind=kind, value=text)
        if _parse_expression(text) is not None and re.search(r"[0-9+\-*/^=()]", text):
            return cls(kind="expression", value=text)
        return cls(kind="text", value=text)


def _spec_of(obj: Any) -> AnswerSpec:
    if isinstance(obj, AnswerSpec):
        return obj
    spec = getattr(obj, "answer", None)
    if isinstance(spec, AnswerSpec):
        return spec
    if isinstance(obj, (str, int, float, Fraction)):
        return AnswerSpec.infer(str(obj))
    raise TypeError(
        f"expected an item, an AnswerSpec or an answer string, got {type(obj).__name__}"
    )


# --------------------------------------------------------------------------------------------
# Targets


@dataclass(frozen=True)
class _Choice:
    index: int


def _parse_target(real: AnswerSpec, text: str | None = None) -> Any:
    """Parse ``text`` (default: the spec's own answer) as an answer of the spec's kind."""
    kind = real.kind
    text = real.value if text is None else text
    if kind in ("integer", "number", "fraction", "percent", "quantity"):
        n = parse_number(text)
        if n is None:
            raise InputError(
                f"cannot read the answer {text!r} as a {kind}; write it like {_EXAMPLES[kind]}"
            )
        if kind == "integer" and n.ratio.denominator != 1:
            raise InputError(
                f"the answer {text!r} is not an integer; use kind 'number' or 'fraction'"
            )
        if kind == "quantity":
            unit = parse_unit(real.unit) if real.unit else (UNITS.get(n.unit) if n.unit else None)
            if unit is None:
                raise InputError(
                    f"the quantity answer {text!r} has no known unit; write it like 12 cm^2 "
                    f"(known units include {', '.join(list(UNITS)[:12])}, ...)"
                )
            if n.unit and n.unit != unit.key:
                raise InputError(f"the answer {text!r} and the unit {real.unit!r} disagree")
            n = Number(n.value, n.form, n.percent, n.decimals, unit.key, unit.key, n.parts, n.text)
        return n
    if kind == "expression":
        e = _parse_expression(text)
        if e is None:
            raise InputError(
                f"cannot read the answer {text!r} as an expression; write it like 2*x + 6 or 2x + 6"
            )
        return e
    if kind == "choice":
        if len(real.choices) < 2:
            raise InputError("a choice answer needs at least two choices")
        t = text.strip()
        if re.fullmatch(r"[A-Ha-h]", t):
            idx = ord(t.upper()) - ord("A")
            if idx >= len(real.choices):
                raise InputError(f"the answer {t!r} names no choice; there are {len(real.choices)}")
            return _Choice(idx)
        norm = [_norm_words(c) for c in real.choices]
        if _norm_words(t) in norm:
            return _Choice(norm.index(_norm_words(t)))
        raise InputError(
            f"the answer {t!r} is neither a choice label (A, B, ...) nor one of the choices"
        )
    if kind == "text":
        words = _norm_words(text)
        if not words:
            raise InputError(f"the answer {text!r} is empty after normalization")
        return words
    raise InputError(f"unknown answer kind {kind!r}")


_EXAMPLES = {
    "integer": "12",
    "number": "2.5",
    "fraction": "3/4 or 1 1/2",
    "percent": "75%",
    "quantity": "12 cm^2",
}
