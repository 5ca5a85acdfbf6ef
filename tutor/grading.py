"""Deterministic answer checking: the LM never decides whether an answer is correct.

``grade(item_or_spec, response)`` reads the learner's answer in whatever notation they used
(``3/4``, ``3 / 4``, ``0,75``, ``three quarters``, ``75%``, ``1 1/2``, ``12 cm²``, ``2(x+3)``,
``B``) and returns a :class:`GradeResult`: the verdict, the answer as the checker read it, and a
feedback code that says what went wrong (``close_but_rounding``, ``sign_error``,
``unit_missing``, ``wrong_form``, ``not_parsed``, ...) so the agent can point at the mistake.

``mentions_answer(text, item_or_answer)`` is the answer-leak check: True when a tutor response
states the answer in any form the checker would accept (``0.75``, ``75%``, ``three quarters`` for
3/4), but not when it only repeats numbers from the problem statement.

Answer kinds: ``integer``, ``number`` (decimals, with an optional tolerance), ``fraction``
(fractions and mixed numbers), ``percent``, ``quantity`` (a number with a unit, converted
between units of one dimension), ``expression`` (algebra, by sympy equivalence), ``choice``
(multiple choice) and ``text`` (a short word answer).
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction
from functools import lru_cache
from typing import Any, Literal, Protocol, get_args

from tutor.errors import InputError

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
    """Anything with an ``answer`` spec and a ``prompt`` (``tutor.items.Item``)."""

    answer: AnswerSpec
    prompt: str


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
# Text normalization

_VULGAR = {
    "½": "1/2",
    "⅓": "1/3",
    "⅔": "2/3",
    "¼": "1/4",
    "¾": "3/4",
    "⅕": "1/5",
    "⅖": "2/5",
    "⅗": "3/5",
    "⅘": "4/5",
    "⅙": "1/6",
    "⅚": "5/6",
    "⅛": "1/8",
    "⅜": "3/8",
    "⅝": "5/8",
    "⅞": "7/8",
}
_CHAR_MAP = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",
    "\u2014": " - ",
    "\u00f7": "/",
    "\u2044": "/",  # fraction slash
    "\u2215": "/",
    "\u00d7": "*",
    "\u22c5": "*",
    "\u00b7": "*",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u2248": "=",
    "\u00a0": " ",
    "\u2019": "'",
    "\u00b5": "u",
    "\u03bc": "u",
}


def normalize_text(text: str) -> str:
    """Lowercase, plain ASCII-ish math: unicode minus/fractions/superscripts, LaTeX ``\\frac``."""
    s = unicodedata.normalize("NFC", str(text))
    for ch, rep in _VULGAR.items():
        s = s.replace(ch, f" {rep}")
    for ch, rep in _CHAR_MAP.items():
        s = s.replace(ch, rep)
    s = re.sub(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"(\1)/(\2)", s)
    s = s.replace("\\%", "%").replace("\\cdot", "*").replace("\\times", "*").replace("\\div", "/")
    s = re.sub(r"\\(?:left|right|,|;|!|quad|text\{([^{}]*)\})", r" \1 ", s)
    s = s.replace("$", " $ ") if re.search(r"\$\s*\d", s) else s.replace("$", " ")
    s = s.replace("{", "(").replace("}", ")").replace("\\", " ")
    # "(3)/(4)" from \frac with plain numbers -> "3/4"
    s = re.sub(r"\((-?\d+(?:\.\d+)?)\)\s*/\s*\((\d+(?:\.\d+)?)\)", r"\1/\2", s)
    s = s.lower()
    s = re.sub(r"(\d)\s+out\s+of\s+(\d)", r"\1/\2", s)
    s = re.sub(r"[^\S\n]+", " ", s)  # collapse spaces, keep line breaks (list labels)
    return re.sub(r" ?\n[\s]*", "\n", s).strip()


def _fix_commas(s: str, *, free_text: bool) -> str:
    """Thousands separators (``1,200``) are dropped; a decimal comma (``0,75``) becomes a point."""

    def repl(m: re.Match[str]) -> str:
        groups = m.group(0).split(",")
        if (
            len(groups[0]) <= 3
            and groups[0] != "0"
            and all(len(g) == 3 for g in groups[1:])
            and not (free_text and len(groups) == 2 and False)
        ):
            return "".join(groups)
        if len(groups) == 2:
            if free_text and not (groups[0] == "0" or len(groups[1]) <= 2):
                return m.group(0)
            return f"{groups[0]}.{groups[1]}"
        return m.group(0)  # a list like 1,2,3

    pattern = (
        r"(?<![\d,])\d+(?:,\d+)+(?![\d,])"
        if not free_text
        else r"(?<![\d.,])\d+(?:,\d+)+(?!\d|,\d)"
    )
    return re.sub(pattern, repl, s)


# --------------------------------------------------------------------------------------------
# Units

Dimension = tuple[int, int, int, int, int]  # length, mass, time, money, temperature


@dataclass(frozen=True)
class Unit:
    key: str  # canonical symbol: "cm^2"
    dim: Dimension
    factor: Fraction  # to SI base (m, kg, s, dollar)


def _build_units() -> tuple[dict[str, Unit], dict[str, str]]:
    units: dict[str, Unit] = {}
    aliases: dict[str, str] = {}

    def add(key: str, dim: Dimension, factor: Fraction, *names: str) -> None:
        units[key] = Unit(key, dim, factor)
        for n in (key, *names):
            aliases[n] = key

    lengths = {
        "mm": (Fraction(1, 1000), ("millimeter", "millimetre")),
        "cm": (Fraction(1, 100), ("centimeter", "centimetre")),
        "m": (Fraction(1), ("meter", "metre")),
        "km": (Fraction(1000), ("kilometer", "kilometre")),
        "in": (Fraction(254, 10000), ("inch", "inches")),
        "ft": (Fraction(3048, 10000), ("foot", "feet")),
        "yd": (Fraction(9144, 10000), ("yard",)),
        "mi": (Fraction(1609344, 1000), ("mile",)),
    }
    for sym, (f, names) in lengths.items():
        add(sym, (1, 0, 0, 0, 0), f, *names, *(n + "s" for n in names))
        add(
            f"{sym}^2",
            (2, 0, 0, 0, 0),
            f * f,
            *(f"square {n}" for n in (sym, *names)),
            *(f"square {n}s" for n in names),
            *(f"sq {n}" for n in (sym, *names)),
            *(f"sq {n}s" for n in names),
            f"{sym}2",
            f"sq{sym}",
            *(f"{n} squared" for n in (sym, *names)),
            *(f"{n}s squared" for n in names),
        )
        add(
            f"{sym}^3",
            (3, 0, 0, 0, 0),
            f * f * f,
            *(f"cubic {n}" for n in (sym, *names)),
            *(f"cubic {n}s" for n in names),
            f"{sym}3",
            f"cu {sym}",
            *(f"{n} cubed" for n in (sym, *names)),
        )
    aliases["feet squared"] = "ft^2"
    aliases["square feet"] = "ft^2"
    aliases["square foot"] = "ft^2"
    aliases["cubic feet"] = "ft^3"
    add(
        "ml",
        (3, 0, 0, 0, 0),
        Fraction(1, 10**6),
        "milliliter",
        "millilitre",
        "milliliters",
        "millilitres",
    )
    add("l", (3, 0, 0, 0, 0), Fraction(1, 1000), "liter", "litre", "liters", "litres")
    add("mg", (0, 1, 0, 0, 0), Fraction(1, 10**6), "milligram", "milligrams")
    add("g", (0, 1, 0, 0, 0), Fraction(1, 1000), "gram", "grams")
    add("kg", (0, 1, 0, 0, 0), Fraction(1), "kilogram", "kilograms", "kilo", "kilos")
    add("s", (0, 0, 1, 0, 0), Fraction(1), "sec", "secs", "second", "seconds")
    add("min", (0, 0, 1, 0, 0), Fraction(60), "mins", "minute", "minutes")
    add("h", (0, 0, 1, 0, 0), Fraction(3600), "hr", "hrs", "hour", "hours")
    add("day", (0, 0, 1, 0, 0), Fraction(86400), "days")
    add("$", (0, 0, 0, 1, 0), Fraction(1), "dollar", "dollars", "usd")
    add("cent", (0, 0, 0, 1, 0), Fraction(1, 100), "cents", "¢", "c")
    add(
        "degc",
        (0, 0, 0, 0, 1),
        Fraction(1),
        "°c",
        "° c",
        "degrees c",
        "degrees celsius",
        "celsius",
        "c°",
    )
    return units, aliases


UNITS, _UNIT_ALIASES = _build_units()


def parse_unit(text: str) -> Unit | None:
    """``"square centimeters"``, ``"cm²"``, ``"cm^2"`` -> the ``cm^2`` unit; None if unknown."""
    t = normalize_text(text).strip(" .")
    t = re.sub(r"\s*\^\s*", "^", t)
    t = re.sub(r"\s+", " ", t)
    key = _UNIT_ALIASES.get(t)
    return UNITS[key] if key else None


# --------------------------------------------------------------------------------------------
# Numbers

NumberForm = Literal["integer", "decimal", "fraction", "mixed", "words"]


@dataclass(frozen=True)
class Number:
    """A number as written: ``value`` is the written number (75 for ``75%``)."""

    value: Fraction
    form: NumberForm
    percent: bool = False
    decimals: int = 0  # digits after the decimal point, for rounding checks
    unit: str = ""  # a key of UNITS, or "" (unknown trailing words are dropped)
    unit_text: str = ""
    parts: tuple[int, ...] = ()  # the integers written (numerator, denominator, whole)
    text: str = ""
    start: int = 0
    end: int = 0

    @property
    def ratio(self) -> Fraction:
        """The plain value: 0.75 for ``75%``."""
        return self.value / 100 if self.percent else self.value

    def canonical(self) -> str:
        """The number as written, tidied: ``6/8`` stays ``6/8``, ``$4.50`` keeps its cents."""
        v = self.value
        sign = "-" if v < 0 else ""
        if self.form == "fraction" and len(self.parts) == 2 and self.parts[1]:
            s = f"{sign}{self.parts[0]}/{self.parts[1]}"
        elif self.form == "mixed" and len(self.parts) == 3:
            s = f"{sign}{self.parts[2]} {self.parts[0]}/{self.parts[1]}"
        elif self.form == "decimal" and 0 < self.decimals <= 12 and abs(v) < _FLOAT_EXACT:
            s = f"{float(v):.{self.decimals}f}"
            if Fraction(s) != v:
                s = _decimal_str(v)
        else:
            return format_number(v, self.form, percent=self.percent, unit=self.unit)
        if self.percent:
            s += "%"
        if self.unit:
            s = f"${s}" if self.unit == "$" else f"{s} {self.unit}"
        return s


def format_number(value: Fraction, form: str = "", *, percent: bool = False, unit: str = "") -> str:
    """A readable canonical form: ``3/4``, ``1 1/2``, ``0.75``, ``75%``, ``12 cm^2``."""
    v = Fraction(value)
    if v.denominator == 1:
        s = str(v.numerator)
    elif form == "mixed" and abs(v) > 1:
        whole = int(abs(v))
        rest = abs(v) - whole
        s = f"{'-' if v < 0 else ''}{whole} {rest.numerator}/{rest.denominator}"
    elif form in ("fraction", "words"):
        s = f"{v.numerator}/{v.denominator}"
    else:
        s = _decimal_str(v)
    if percent:
        s += "%"
    if unit:
        s = f"${s}" if unit == "$" else f"{s} {unit}"
    return s


# Beyond this size a float no longer holds every digit (and past ~1e308 it overflows): such
# numbers are formatted with ``decimal`` instead.
_FLOAT_EXACT = Fraction(10**15)


def _decimal_str(v: Fraction, max_places: int = 12) -> str:
    d = v.denominator
    # terminating decimal: denominator has only 2s and 5s
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    big = abs(v) >= _FLOAT_EXACT
    if d == 1:
        places = 0
        x = v
        while x.denominator != 1:
            x *= 10
            places += 1
        if big:
            return _decimal_digits(v, int(abs(v.numerator).bit_length() * 0.302) + places + 2, "f")
        return f"{float(v):.{places}f}" if places <= 15 else str(float(v))
    if big:
        return _decimal_digits(v, max_places, "g")
    return f"{float(v):.{max_places}g}"


def _decimal_digits(v: Fraction, precision: int, spec: str) -> str:
    """``v`` with ``precision`` significant digits, computed by ``decimal``: exact for any size
    (a float overflows past ~1e308 and a learner may type a 400-digit number)."""
    with localcontext() as ctx:
        ctx.prec = max(precision, 1)
        return format(Decimal(v.numerator) / Decimal(v.denominator), spec)


_SMALL = {
    "zero": 0,
    "oh": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6}
_DENOMS = {
    "half": 2,
    "halves": 2,
    "third": 3,
    "thirds": 3,
    "quarter": 4,
    "quarters": 4,
    "fourth": 4,
    "fourths": 4,
    "fifth": 5,
    "fifths": 5,
    "sixth": 6,
    "sixths": 6,
    "seventh": 7,
    "sevenths": 7,
    "eighth": 8,
    "eighths": 8,
    "ninth": 9,
    "ninths": 9,
    "tenth": 10,
    "tenths": 10,
    "twelfth": 12,
    "twelfths": 12,
    "hundredth": 100,
    "hundredths": 100,
    "thousandth": 1000,
    "thousandths": 1000,
}
_NUMBER_WORDS = set(_SMALL) | set(_TENS) | set(_SCALES) | set(_DENOMS)
# Longer numbers are not read as numbers at all: no answer has that many digits, and Python
# refuses to convert integers of more than 4300 digits to or from text.
MAX_NUMBER_DIGITS = 300
_TOO_BIG = 10**MAX_NUMBER_DIGITS
_GLUE_WORDS = {"and", "a", "an", "point", "percent", "negative", "minus"}


def _cardinal(tokens: list[str]) -> int | None:
    if not tokens:
        return None
    total = current = 0
    seen = False
    for t in tokens:
        if t in _SMALL:
            current += _SMALL[t]
        elif t in _TENS:
            current += _TENS[t]
        elif t == "hundred":
            current = max(current, 1) * 100
        elif t in ("thousand", "million"):
            total += max(current, 1) * _SCALES[t]
            current = 0
        elif t == "and" and seen:
            continue
        elif t.isdigit() and len(t) <= MAX_NUMBER_DIGITS:
            current += int(t)
        else:
            return None
        if current >= _TOO_BIG or total >= _TOO_BIG:
            return None  # "nine hundred hundred hundred ..."
        seen = True
    return total + current


def _parse_words(phrase: str) -> Number | None:
    """``three quarters``, ``two and a half``, ``seventy-five percent``, ``zero point five``."""
    tokens = phrase.replace("-", " ").split()
    if not tokens:
        return None
    neg = False
    if tokens[0] in ("negative", "minus"):
        neg, tokens = True, tokens[1:]
    percent = False
    if tokens and tokens[-1] == "percent":
        percent, tokens = True, tokens[:-1]
    elif len(tokens) >= 2 and tokens[-2:] == ["per", "cent"]:
        percent, tokens = True, tokens[:-2]
    if not tokens or not any(t in _NUMBER_WORDS for t in tokens):
        return None
    value: Fraction
    decimals = 0
    parts: tuple[int, ...] = ()
    form: NumberForm = "words"
    if "point" in tokens:
        i = tokens.index("point")
        whole = _cardinal(tokens[:i]) if i else 0
        digits = [_SMALL.get(t) for t in tokens[i + 1 :]]
        if whole is None or not digits or any(d is None or d > 9 for d in digits):
            return None
        if len(digits) > MAX_NUMBER_DIGITS:
            return None
        decimals = len(digits)
        value = Fraction(int(str(whole) + "".join(str(d) for d in digits)), 10**decimals)
        parts = (whole,)
    elif tokens[-1] in _DENOMS:
        denom = _DENOMS[tokens[-1]]
        body = tokens[:-1]
        whole = 0
        if "and" in body:
            j = len(body) - 1 - body[::-1].index("and")
            w = _cardinal(body[:j])
            if w is None:
                return None
            whole, body = w, body[j + 1 :]
        if not body or body in (["a"], ["an"]):
            numer = 1
        else:
            n = _cardinal(body)
            if n is None:
                return None
            numer = n
        value = whole + Fraction(numer, denom)
        parts = (numer, denom) + ((whole,) if whole else ())
    else:
        n = _cardinal(tokens)
        if n is None:
            return None
        value = Fraction(n)
        parts = (n,)
    return Number(
        value=-value if neg else value,
        form=form,
        percent=percent,
        decimals=decimals,
        parts=parts,
        text=phrase,
    )


_NUM = r"(?:\d+(?:\.\d+)?|\.\d+)"
_NUMBER_RE = re.compile(
    rf"""
    (?P<sign>[-+]\s*)?
    (?P<dollar>\$\s*)?
    (?:
        (?P<whole>\d+)\s+(?:and\s+)?(?P<mn>\d+)\s*/\s*(?P<md>\d+)      # mixed number 1 1/2
      | (?P<fn>{_NUM})\s*/\s*(?P<fd>{_NUM})                           # fraction 3/4, 1.5/3
      | (?P<num>{_NUM})                                               # integer or decimal
    )
    (?P<pct>\s*(?:%|percent\b|per\s+cent\b|pct\b))?
    """,
    re.VERBOSE,
)
_LEAD_INS = re.compile(
    r"^(?:(?:so|well|um+|uh+|ok(?:ay)?|hmm+|i\s+think|i\s+got|i\s+get|i\s+guess|i\s+believe|"
    r"maybe|probably|my\s+answer\s+is|the\s+answer\s+is|answer\s*:|answer\s+is|final\s+answer\s*:?|"
    r"it'?s|it\s+is|that'?s|that\s+is|is|equals|=|would\s+be|should\s+be|the\s+result\s+is|"
    r"result\s*:|approximately|about|around|roughly)[\s,:]*)+"
)


def _match_to_number(m: re.Match[str], s: str) -> Number:
    """The number a ``_NUMBER_RE`` match wrote. Raises ``ZeroDivisionError`` (``3/0``) and
    ``ValueError`` (more than ``MAX_NUMBER_DIGITS`` digits)."""
    if sum(ch.isdigit() for ch in m.group(0)) > MAX_NUMBER_DIGITS:
        raise ValueError("too many digits")
    sign = -1 if (m.group("sign") or "").strip() == "-" else 1
    parts: tuple[int, ...]
    if m.group("whole") is not None:
        whole, mn, md = int(m.group("whole")), int(m.group("mn")), int(m.group("md"))
        if md == 0:
            raise ZeroDivisionError
        value = whole + Fraction(mn, md)
        form: NumberForm = "mixed" if mn < md else "fraction"
        decimals = 0
        parts = (mn, md, whole)
    elif m.group("fn") is not None:
        fn, fd = Fraction(m.group("fn")), Fraction(m.group("fd"))
        if fd == 0:
            raise ZeroDivisionError
        value = fn / fd
        form = "fraction"
        decimals = 0
        parts = tuple(int(x) for x in (fn, fd) if x.denominator == 1)
    else:
        text = m.group("num")
        value = Fraction(text)
        if "." in text:
            form = "decimal"
            decimals = len(text.split(".")[1])
        else:
            form = "integer"
            decimals = 0
        parts = (int(value),) if value.denominator == 1 else ()
    return Number(
        value=sign * value,
        form=form,
        percent=bool(m.group("pct")),
        decimals=decimals,
        unit="$" if m.group("dollar") else "",
        unit_text="$" if m.group("dollar") else "",
        parts=parts,
        text=m.group(0).strip(),
        start=m.start(),
        end=m.end(),
    )


def _trim(s: str) -> str:
    """Strip spaces and punctuation around an answer, keeping a leading point of ``.75``."""
    return re.sub(r"^(?:[\s!?;:]|\.(?!\d))+|[\s.!?;:]+$", "", s)


def _strip_answer_text(text: str) -> str:
    s = normalize_text(text)
    s = _fix_commas(s, free_text=False)
    s = _trim(s)
    s = _LEAD_INS.sub("", s)
    # "x = 4", "4 = x", "x=4"
    s = re.sub(r"^[a-z]\s*=\s*", "", s)
    s = re.sub(r"\s*=\s*[a-z]$", "", s)
    return _trim(s)


def parse_number(text: str) -> Number | None:
    """Read a whole answer as one number (with optional percent sign and unit); None if not."""
    s = _strip_answer_text(text)
    if not s or len(s) > 200:
        return None
    neg_word = re.match(r"^(?:negative|minus)\s+", s)
    body = s[neg_word.end() :] if neg_word else s
    m = _NUMBER_RE.match(body)
    if m and m.group(0).strip():
        try:
            n = _match_to_number(m, body)
        except (ZeroDivisionError, ValueError):
            return None
        rest = body[m.end() :].strip()
        unit = ""
        unit_text = n.unit_text
        if rest and rest.split()[0] in _DENOMS:
            return _parse_words(s)  # "3 quarters"
        if (
            rest
            and m.group("num")
            and re.fullmatch(r"(?:\d{3}\s)*\d{3}", rest)
            and len(m.group("num")) <= 3
        ):
            return parse_number(re.sub(r"\s", "", s))  # "1 200": a space as thousands separator
        if rest:
            u = parse_unit(rest)
            if u is None:
                # trailing words that are not a unit: "12 apples" reads as 12, but "3 x" does not
                if not re.fullmatch(r"[a-z][a-z ]*[a-z]", rest) or rest in ("x", "y"):
                    return None
                unit_text = rest
            else:
                unit, unit_text = u.key, rest
        n = Number(
            value=-n.value if neg_word else n.value,
            form=n.form,
            percent=n.percent,
            decimals=n.decimals,
            unit=unit or n.unit,
            unit_text=unit_text,
            parts=n.parts,
            text=s,
        )
        return n
    w = _parse_words(s)
    if w is not None:
        return w
    # words followed by a unit: "twelve square centimeters"
    tokens = s.split()
    for i in range(len(tokens) - 1, 0, -1):
        u = parse_unit(" ".join(tokens[i:]))
        if u is not None:
            w = _parse_words(" ".join(tokens[:i]))
            if w is not None:
                return Number(
                    w.value, w.form, w.percent, w.decimals, u.key, " ".join(tokens[i:]), w.parts, s
                )
    return None


_UNIT_TAIL_RE = re.compile(
    r"\s*(?P<u>(?:square|sq|cubic)\s+[a-z]+|[a-z°¢]+(?:\^[23])?(?:\s+(?:squared|cubed))?)"
)


def find_numbers(text: str) -> list[Number]:
    """Every number mentioned in free text (digits, fractions, percents, number words).

    Numbers inside ``[n]`` citation markers and list/step labels (``Step 2``, a line starting
    ``2.``) are skipped.
    """
    s = _fix_commas(normalize_text(text), free_text=True)
    out: list[Number] = []
    taken: list[tuple[int, int]] = []
    for m in _NUMBER_RE.finditer(s):
        if not m.group(0).strip() or not re.search(r"\d", m.group(0)):
            continue
        start = m.start()
        # a "-" glued to a previous word or number is subtraction, not a sign
        if m.group("sign") and start > 0 and re.search(r"[\w)]\s*$", s[:start]):
            start += len(m.group("sign"))
            m2 = _NUMBER_RE.match(s, start)
            if m2 is None:
                continue
            m = m2
        if start > 0 and (s[start - 1].isalpha() or s[start - 1] in "_^"):
            continue  # part of a name like x2 or an exponent
        if _is_label(s, m.start(), m.end()):
            continue
        try:
            n = _match_to_number(m, s)
        except (ZeroDivisionError, ValueError):
            continue
        dm = re.match(r"\s*-?\s*([a-z]+)", s[m.end() :])
        if n.form == "integer" and dm and dm.group(1) in _DENOMS and not n.percent:
            w = _parse_words(f"{n.value} {dm.group(1)}")  # "75 hundredths", "3 quarters"
            if w is not None:
                end = m.end() + dm.end()
                out.append(
                    Number(
                        w.value,
                        "fraction",
                        False,
                        0,
                        "",
                        "",
                        w.parts,
                        s[m.start() : end],
                        m.start(),
                        end,
                    )
                )
                taken.append((m.start(), end))
                continue
        unit = n.unit
        unit_text = n.unit_text
        um = _UNIT_TAIL_RE.match(s, m.end())
        if um and not n.percent:
            u = parse_unit(um.group("u"))
            if u is not None:
                unit, unit_text = u.key, um.group("u")
        out.append(
            Number(
                n.value,
                n.form,
                n.percent,
                n.decimals,
                unit,
                unit_text,
                n.parts,
                n.text,
                m.start(),
                m.end(),
            )
        )
        taken.append((m.start(), m.end()))
    out.extend(_find_word_numbers(s, taken))
    out.sort(key=lambda n: n.start)
    return out


def _is_label(s: str, start: int, end: int) -> bool:
    before = s[:start]
    after = s[end : end + 2]
    if re.search(r"\[\s*(?:\d+\s*,\s*)*$", before) and re.match(r"\s*[\],]", s[end:]):
        return True  # citation [2] or [1, 2]
    if re.search(
        r"\b(?:step|hint|part|question|example|problem|item|page|chapter|section|no\.?|#)\s*$",
        before,
    ):
        return True
    line_start = before.rfind("\n") + 1
    return not before[line_start:].strip() and after[:1] in (".", ")") and after[1:2] in (" ", "")


def _find_word_numbers(s: str, taken: list[tuple[int, int]]) -> list[Number]:
    tokens = [(m.group(0), m.start(), m.end()) for m in re.finditer(r"[a-z]+(?:-[a-z]+)*|\d+", s)]
    out: list[Number] = []
    i = 0
    vocab = _NUMBER_WORDS | _GLUE_WORDS | {"per", "cent"}

    def is_num_token(t: str) -> bool:
        return all(p in vocab for p in t.split("-"))

    while i < len(tokens):
        word = tokens[i][0]
        if not is_num_token(word) or word in ("and", "point", "per", "cent", "percent"):
            i += 1
            continue
        j = i
        while j < len(tokens) and (
            is_num_token(tokens[j][0]) or (tokens[j][0].isdigit() and j > i)
        ):
            j += 1
        run = tokens[i:j]
        # trim glue at the ends; a leading "a"/"an" stays only before a denominator word
        while run and run[-1][0] in ("and", "a", "an", "point", "negative", "minus", "per"):
            run = run[:-1]
        while run and run[0][0] in ("a", "an") and not (len(run) > 1 and run[1][0] in _DENOMS):
            run = run[1:]
        i = max(j, i + 1)
        if not run:
            continue
        words = [t[0] for t in run]
        if not any(p in _NUMBER_WORDS for w in words for p in w.split("-")):
            continue
        if words in (["one"], ["half"], ["a", "half"], ["quarter"], ["third"], ["second"]):
            continue  # too common as ordinary words ("the one on the left", "the first half")
        start, end = run[0][1], run[-1][2]
        if any(a < end and start < b for a, b in taken):
            continue
        n = _parse_words(" ".join(words))
        if n is None:
            continue
        out.append(
            Number(n.value, n.form, n.percent, n.decimals, "", "", n.parts, n.text, start, end)
        )
    return out


def _extract_number(response: str) -> Number | None:
    """The whole response as a number, else the last number mentioned in it."""
    n = parse_number(response)
    if n is not None:
        return n
    found = find_numbers(response)
    return found[-1] if found else None


# --------------------------------------------------------------------------------------------
# Expressions (sympy, parsed from a whitelist of characters only: never eval'd as Python)

_FUNCS = ("sqrt",)
_CONSTS = ("pi",)


@lru_cache(maxsize=2048)
def _parse_expression(text: str, evaluate: bool = True) -> Any:
    """A sympy expression or ``Eq``-like pair, or None. Safe on untrusted input: only digits,
    single-letter variables, ``+-*/^().=`` and ``sqrt``/``pi`` get through, with small exponents."""
    s = normalize_text(text)
    s = _trim(_fix_commas(s, free_text=False))
    s = _trim(_LEAD_INS.sub("", s))
    if not s or len(s) > 120 or not re.fullmatch(r"[0-9a-z+\-*/^(). =]+", s):
        return None
    if s.count("=") > 1:
        return None
    if s.count("(") != s.count(")"):
        return None

    # split letter runs into single-letter variables, keeping known names
    def split_word(m: re.Match[str]) -> str:
        w = m.group(0)
        if w in _FUNCS or w in _CONSTS:
            return f" {w} "
        return " " + "*".join(w) + " "

    s = re.sub(r"[a-z]+", split_word, s)
    s = s.replace("**", "^")
    # exponents: only small literals or a single variable, no towers
    for m in re.finditer(r"\^\s*(\(?\s*[-+]?\s*[\d.]+\s*\)?|[a-z])", s):
        lit = re.sub(r"[()\s+-]", "", m.group(1))
        if lit and lit[0].isdigit() and float(lit) > 12:
            return None
    if re.search(r"\^[^^]*\^", s) or re.search(r"\d{16,}", s):
        return None
    sides = s.split("=")
    try:
        parsed = [_sympy_parse(side, evaluate) for side in sides]
    except Exception:
        return None
    if any(p is None for p in parsed):
        return None
    return tuple(parsed) if len(parsed) == 2 else parsed[0]


@lru_cache(maxsize=1)
def _sympy_env() -> tuple[dict[str, Any], tuple[Any, ...]]:
    import sympy
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        standard_transformations,
    )

    env: dict[str, Any] = {
        "__builtins__": {},
        "Integer": sympy.Integer,
        "Float": sympy.Float,
        "Rational": sympy.Rational,
        "Symbol": sympy.Symbol,
        "Mul": sympy.Mul,
        "Add": sympy.Add,
        "Pow": sympy.Pow,
        "sqrt": sympy.sqrt,
        "pi": sympy.pi,
    }
    transformations = standard_transformations + (implicit_multiplication_application, convert_xor)
    return env, transformations


def _sympy_parse(s: str, evaluate: bool) -> Any:
    import sympy
    from sympy.parsing.sympy_parser import parse_expr

    s = s.strip()
    if not s:
        return None
    env, transformations = _sympy_env()
    local = {c: sympy.Symbol(c) for c in set(re.findall(r"(?<![a-z])[a-z](?![a-z])", s))}
    # decimals become exact rationals so 0.5x == x/2
    s = re.sub(r"(\d+\.\d+|\.\d+)", lambda m: f"({Fraction(m.group(1))})", s)
    expr = parse_expr(
        s,
        local_dict=local,
        global_dict=dict(env),
        transformations=transformations,
        evaluate=evaluate,
    )
    if not isinstance(expr, sympy.Basic):
        return None
    return expr


def _expr_equal(a: Any, b: Any) -> bool:
    import sympy

    if isinstance(a, tuple) != isinstance(b, tuple):
        return False
    if isinstance(a, tuple):
        # equations are equal when lhs - rhs differ by a nonzero constant factor
        da, db = sympy.expand(a[0] - a[1]), sympy.expand(b[0] - b[1])
        if da == 0 or db == 0:
            return da == db
        ratio = sympy.cancel(da / db)
        return not ratio.free_symbols and ratio != 0
    try:
        d = sympy.expand(a - b)
        if d == 0:
            return True
        if sympy.cancel(sympy.together(d)) == 0:
            return True
        syms = sorted(d.free_symbols, key=str)
        if not syms:
            return abs(complex(sympy.N(d))) < 1e-12
        # numeric identity check at a few points
        for point in (
            (Fraction(3, 7), Fraction(5, 11)),
            (Fraction(13, 5), Fraction(-2, 3)),
            (2, 9),
        ):
            subs = {s: sympy.Rational(point[i % 2]) + i for i, s in enumerate(syms)}
            val = d.subs(subs)
            if val.free_symbols or abs(complex(sympy.N(val))) > 1e-9:
                return False
        return True
    except Exception:
        return False


def _terms(e: Any) -> int:
    import sympy

    return len(sympy.Add.make_args(e))


def _has_unexpanded(e: Any) -> bool:
    import sympy

    for node in sympy.preorder_traversal(e):
        if isinstance(node, sympy.Mul) and any(isinstance(a, sympy.Add) for a in node.args):
            return True
        if isinstance(node, sympy.Pow) and isinstance(node.base, sympy.Add):
            return True
    return False


def _format_expr(e: Any) -> str:
    if isinstance(e, tuple):
        return f"{_format_expr(e[0])} = {_format_expr(e[1])}"
    return str(e).replace("**", "^")


# --------------------------------------------------------------------------------------------
# Choices and text


def _norm_words(text: str) -> str:
    s = normalize_text(text)
    s = re.sub(r"[^a-z0-9%/.\- ]+", " ", s)
    s = re.sub(r"\b(?:the|a|an)\b", " ", s)
    return re.sub(r"\s+", " ", s).strip(" .-")


_LABEL_RE = re.compile(
    r"^(?:(?:the\s+)?(?:answer|option|choice)\s*(?:is|:)?\s*|i\s+(?:think|pick|choose)\s+|it'?s\s+)?"
    r"\(?([a-h])\)?[.):]?(?:\s+(.*))?$"
)


def _choice_index(spec: AnswerSpec, response: str) -> int | None:
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
    # the response contains exactly one option's text
    hits = [i for i, c in enumerate(norm_choices) if c and re.search(rf"\b{re.escape(c)}\b", nr)]
    if len(hits) == 1:
        return hits[0]
    # the options may be numbers: compare by value
    n = _extract_number(response)
    if n is not None:
        vals = [parse_number(c) for c in spec.choices]
        hits = [i for i, v in enumerate(vals) if v is not None and v.ratio == n.ratio]
        if len(hits) == 1:
            return hits[0]
    return None


def _label(i: int) -> str:
    return chr(ord("A") + i)


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
        norm = _norm_words(text)
        if not norm:
            raise InputError(f"the answer {text!r} is empty after normalization")
        return norm
    raise InputError(f"unknown answer kind {kind!r}")


_EXAMPLES = {
    "integer": "12",
    "number": "2.5",
    "fraction": "3/4 or 1 1/2",
    "percent": "75%",
    "quantity": "12 cm^2",
}


# --------------------------------------------------------------------------------------------
# Grading


def _result(correct: bool, code: str, normalized: str, expected: str) -> GradeResult:
    return GradeResult(correct, code, normalized, expected, _MESSAGES[code])  # type: ignore[arg-type]


def expected_text(spec: AnswerSpec) -> str:
    """The canonical answer as shown when the solution is earned."""
    t = spec.target()
    if isinstance(t, Number):
        return (
            t.canonical()
            if spec.kind != "fraction" or t.form != "words"
            else format_number(t.value, "fraction")
        )
    if isinstance(t, _Choice):
        return f"{_label(t.index)}) {spec.choices[t.index]}"
    if spec.kind == "expression":
        return spec.value
    return spec.value


def grade(item_or_spec: ItemLike | AnswerSpec | str, response: str) -> GradeResult:
    """Grade one answer deterministically. ``item_or_spec``: an item, an ``AnswerSpec``, or a bare
    answer string (its kind is inferred). Never raises on a learner's input."""
    spec = _spec_of(item_or_spec)
    expected = expected_text(spec)
    text = (response or "").strip()
    if not text:
        return _result(False, "not_parsed", "", expected)
    text = text[:1000]
    # an extra accepted form, matched as written
    nt = _norm_words(text)
    for a in spec.accepted:
        if nt == _norm_words(a) or _strip_answer_text(text) == _strip_answer_text(a):
            return _result(True, "correct", a, expected)
    if spec.kind in ("integer", "number", "fraction", "percent", "quantity"):
        return _grade_number(spec, text, expected)
    if spec.kind == "expression":
        return _grade_expression(spec, text, expected)
    if spec.kind == "choice":
        idx = _choice_index(spec, text)
        if idx is None:
            return _result(False, "not_parsed", "", expected)
        norm = f"{_label(idx)}) {spec.choices[idx]}"
        if idx == spec.target().index:
            return _result(True, "correct", norm, expected)
        return _result(False, "wrong_choice", norm, expected)
    return _grade_text(spec, text, expected)


def _close_code(rv: Fraction, target: Fraction, r: Number, kind: str) -> str:
    if target != 0 and rv == -target:
        return "sign_error"
    diff = abs(rv - target)
    rel = diff / abs(target) if target != 0 else None
    if r.form == "decimal" or (r.form == "integer" and target.denominator != 1):
        d = r.decimals
        if (
            diff < Fraction(1, 10**d)
            and (rel is None or rel <= Fraction(5, 100))
            and (d >= 1 or target.denominator != 1)
        ):
            return "close_but_rounding"
    if target not in (0, 1, -1) and rv != 0 and rv == 1 / target:
        return "reciprocal"
    if (
        target != 0
        and rv != 0
        and rv / target
        in (
            10,
            100,
            1000,
            Fraction(1, 10),
            Fraction(1, 100),
            Fraction(1, 1000),
        )
    ):
        return "place_value"
    if kind == "integer" and target.denominator == 1 and diff == 1:
        return "off_by_one"
    if rel is not None and rel <= Fraction(5, 100):
        return "close"
    return "incorrect"


def _within(rv: Fraction, target: Fraction, tol: float) -> bool:
    if rv == target:
        return True
    if tol > 0:
        return abs(rv - target) <= Fraction(tol) + Fraction(1, 10**12)
    return False


def _grade_number(spec: AnswerSpec, text: str, expected: str) -> GradeResult:
    first = _grade_number_as_read(spec, text, expected)
    if not first.correct and re.search(r"\d,\d", text):
        # "2,375" is 2375 to some and 2.375 to others: take the reading that is right
        other = _grade_number_as_read(spec, re.sub(r"(\d),(\d)", r"\1.\2", text), expected)
        if other.correct:
            return other
    return first


def _grade_number_as_read(spec: AnswerSpec, text: str, expected: str) -> GradeResult:
    exp: Number = spec.target()
    r = _extract_number(text)
    if r is None:
        return _result(False, "not_parsed", "", expected)
    norm = r.canonical()
    # an accepted alternative value, in its own form
    for alt in spec.accepted_targets():
        if (
            isinstance(alt, Number)
            and alt.percent == r.percent
            and _within(r.value, alt.value, spec.tolerance)
        ):
            if spec.kind != "quantity" or _same_quantity(r, alt):
                return _result(True, "correct", norm, expected)

    if spec.kind == "quantity":
        return _grade_quantity(spec, exp, r, expected)

    if spec.kind == "percent":
        target = exp.value  # the percent number
        if (
            not r.percent
            and r.form in ("decimal", "fraction", "mixed", "words")
            and r.value != target
            and _within(r.value * 100, target, spec.tolerance)
        ):
            return _result(False, "wrong_form", norm, expected)
        rv = r.value
        if _within(rv, target, spec.tolerance):
            return _result(True, "correct", norm if r.percent else norm + "%", expected)
        return _result(False, _close_code(rv, target, r, "number"), norm, expected)

    target = exp.value
    rv = r.ratio
    if not _within(rv, target, spec.tolerance):
        return _result(False, _close_code(rv, target, r, spec.kind), norm, expected)
    # the value is right: is the form right?
    if spec.kind == "integer":
        return _result(True, "correct", format_number(rv), expected)
    if spec.kind == "fraction":
        if r.form in ("fraction", "mixed", "words") and not r.percent:
            if r.form == "fraction" and len(r.parts) >= 2 and _gcd(r.parts[0], r.parts[1]) != 1:
                return _result(not spec.simplify, "not_simplified", norm, expected)
            if r.form == "mixed" and len(r.parts) >= 2 and _gcd(r.parts[0], r.parts[1]) != 1:
                return _result(not spec.simplify, "not_simplified", norm, expected)
            if spec.strict_form and exp.form == "mixed" and r.form == "fraction" and abs(rv) > 1:
                return _result(False, "wrong_form", norm, expected)
            if spec.strict_form and exp.form == "fraction" and r.form == "mixed":
                return _result(False, "wrong_form", norm, expected)
            same_form = r.form == exp.form or r.form == "words" or exp.form == "words"
            return _result(True, "correct" if same_form else "equivalent_form", norm, expected)
        if spec.strict_form:
            return _result(False, "wrong_form", norm, expected)
        return _result(True, "equivalent_form", norm, expected)
    # number (decimal)
    if r.form in ("integer", "decimal") and not r.percent or r.form == "words":
        return _result(True, "correct", norm, expected)
    if spec.strict_form:
        return _result(False, "wrong_form", norm, expected)
    return _result(True, "equivalent_form", norm, expected)


def _gcd(a: int, b: int) -> int:
    from math import gcd

    return gcd(a, b)


def _same_quantity(r: Number, alt: Number) -> bool:
    return r.unit == alt.unit


def _grade_quantity(spec: AnswerSpec, exp: Number, r: Number, expected: str) -> GradeResult:
    u_exp = UNITS[exp.unit]
    norm = r.canonical()
    target = exp.value
    if not r.unit:
        rv = r.ratio
        if _within(rv, target, spec.tolerance):
            if spec.unit_required:
                return _result(False, "unit_missing", norm, expected)
            return _result(True, "correct", norm, expected)
        code = _close_code(rv, target, r, "number")
        return _result(False, code, norm, expected)
    u_r = UNITS[r.unit]
    if u_r.dim != u_exp.dim:
        return _result(False, "wrong_unit", norm, expected)
    rv = r.ratio * u_r.factor / u_exp.factor
    if _within(rv, target, spec.tolerance):
        if u_r.key == u_exp.key:
            return _result(True, "correct", norm, expected)
        if spec.strict_form:
            return _result(False, "wrong_form", norm, expected)
        return _result(True, "equivalent_form", norm, expected)
    code = _close_code(rv, target, Number(rv, r.form, False, r.decimals), "number")
    if code == "incorrect" and u_r.key != u_exp.key and _within(r.ratio, target, spec.tolerance):
        code = "wrong_unit"  # the right number with another unit of the same dimension
    return _result(False, code, norm, expected)


def _grade_expression(spec: AnswerSpec, text: str, expected: str) -> GradeResult:
    import sympy

    exp = spec.target()
    r = _parse_expression(text)
    if r is None:
        # maybe "the answer is 2x+6 I think": try the longest math-looking span
        for cand in _math_spans(text):
            r = _parse_expression(cand)
            if r is not None:
                text = cand
                break
    if r is None:
        return _result(False, "not_parsed", "", expected)
    norm = _format_expr(r)
    if isinstance(exp, tuple) and not isinstance(r, tuple):
        # an equation answered with just the value of the variable, or vice versa: not parsed
        return _result(False, "wrong_form", norm, expected)
    if _expr_equal(r, exp):
        if spec.form != "any" and not isinstance(r, tuple):
            raw = _parse_expression(text, evaluate=False)
            if raw is not None and not _form_ok(raw, r, spec.form):
                return _result(False, "wrong_form", norm, expected)
        if spec.strict_form and isinstance(r, tuple) and not _same_equation(r, exp):
            return _result(False, "wrong_form", norm, expected)  # "x = 4" for "2x + 3 = 11"
        return _result(True, "correct", norm, expected)
    if not isinstance(r, tuple) and not isinstance(exp, tuple):
        try:
            if sympy.expand(r + exp) == 0:
                return _result(False, "sign_error", norm, expected)
        except Exception:
            pass
        if not getattr(exp, "free_symbols", None) and not getattr(r, "free_symbols", None):
            try:
                rv = Fraction(str(sympy.nsimplify(r)))
                tv = Fraction(str(sympy.nsimplify(exp)))
                return _result(
                    False, _close_code(rv, tv, Number(rv, "fraction"), "number"), norm, expected
                )
            except (ValueError, TypeError):
                pass
    return _result(False, "incorrect", norm, expected)


def _same_equation(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    """The same equation up to the order of its sides and of the terms in each side."""
    import sympy

    sa_, sb_ = [sympy.expand(x) for x in a], [sympy.expand(x) for x in b]
    return (sa_[0] == sb_[0] and sa_[1] == sb_[1]) or (sa_[0] == sb_[1] and sa_[1] == sb_[0])


def _form_ok(raw: Any, evaluated: Any, form: str) -> bool:
    import sympy

    if form == "expanded":
        return not _has_unexpanded(raw) and _terms(raw) <= _terms(sympy.expand(evaluated))
    if form == "simplified":
        return _terms(raw) <= _terms(sympy.expand(evaluated))
    if form == "factored":
        return (
            not isinstance(sympy.simplify(raw), sympy.Add)
            and _has_unexpanded(raw)
            or not isinstance(raw, sympy.Add)
        )
    return True


def _grade_text(spec: AnswerSpec, text: str, expected: str) -> GradeResult:
    targets = [spec.target()] + [_norm_words(a) for a in spec.accepted]
    r = _norm_words(text)
    r = _LEAD_INS.sub("", r).strip()
    if not r:
        return _result(False, "not_parsed", "", expected)
    negated = re.search(r"\b(?:not|isn'?t|no)\b", r)
    for t in targets:
        if r == t:
            return _result(True, "correct", r, expected)
    for t in targets:
        if re.search(rf"\b{re.escape(t)}\b", r) and not negated:
            return _result(True, "correct", t, expected)
    for t in targets:
        if len(t) >= 5 and difflib.SequenceMatcher(None, r, t).ratio() >= 0.85:
            return _result(True, "misspelled", r, expected)
        # a misspelled word inside a longer answer
        for w in r.split():
            if (
                len(t) >= 5
                and " " not in t
                and difflib.SequenceMatcher(None, w, t).ratio() >= 0.85
                and not negated
            ):
                return _result(True, "misspelled", w, expected)
    return _result(False, "incorrect", r, expected)


def _math_spans(text: str) -> list[str]:
    s = normalize_text(text)
    spans = re.findall(r"[0-9a-z+\-*/^(). =]*[0-9][0-9a-z+\-*/^(). =]*", s)
    cands = []
    for sp in spans:
        # cut leading English words: keep from the first digit/variable-with-operator
        tokens = sp.split()
        for i in range(len(tokens)):
            tail = " ".join(tokens[i:]).strip(" .")
            if tail and all(
                len(t) == 1
                or re.fullmatch(r"[0-9a-z+\-*/^().=]*[0-9+\-*/^()=][0-9a-z+\-*/^().=]*", t)
                or t in _FUNCS
                for t in tokens[i:]
            ):
                cands.append(tail)
                break
    return sorted(cands, key=len, reverse=True)


# --------------------------------------------------------------------------------------------
# Leak check

_ANSWER_CONTEXT = re.compile(
    r"(?:=|\bequals?|\banswer\s*(?:is|:|would\s+be|should\s+be)?|\bresult\s+is|\bis\s+equal\s+to|"
    r"\b[a-z]\s+is|\bit'?s|\bit\s+is|\byou\s+get|\bget|\bgives(?:\s+you)?|\bmakes)\s*(?:about\s+|exactly\s+|just\s+)?\$?\s*$"
)


def mentions_answer(
    text: str, item_or_answer: ItemLike | AnswerSpec | str, *, prompt: str | None = None
) -> bool:
    """True when ``text`` states the answer in any form the checker accepts.

    ``item_or_answer``: an item (its prompt and choices are the problem statement), an
    ``AnswerSpec`` or a bare answer string. ``prompt``: the problem statement when not given by
    the item. Numbers that also appear in the problem statement count only when stated as a
    result (``= 6``, ``the answer is 6``, ``x is 6``).
    """
    spec = _spec_of(item_or_answer)
    if prompt is None:
        prompt = getattr(item_or_answer, "prompt", "") or ""
    context = " \n".join([prompt, *spec.choices])
    if not text or not text.strip():
        return False
    if spec.kind in ("integer", "number", "fraction", "percent", "quantity"):
        return _leaks_number(text, spec, context)
    if spec.kind == "expression":
        return _leaks_expression(text, spec, context)
    if spec.kind == "choice":
        return _leaks_choice(text, spec, prompt)
    return _leaks_text(text, spec, context)


def _number_key(n: Number) -> tuple[str, Any]:
    """How a number is written, for "is this the problem's own number?": 3/4 and three
    quarters match, 0.75 and 75 hundredths do not match 3/4."""
    if n.form in ("fraction", "mixed", "words") and n.value.denominator != 1:
        form = "fraction"
        written: Any = n.parts if len(n.parts) >= 2 else n.value
    else:
        form = (
            "decimal" if n.form == "decimal" else "integer" if n.value.denominator == 1 else n.form
        )
        written = n.value
    return (("%" if n.percent else "") + form, written)


def _leaks_number(text: str, spec: AnswerSpec, context: str) -> bool:
    exp: Number = spec.target()
    targets: list[Number] = [exp] + [a for a in spec.accepted_targets() if isinstance(a, Number)]
    ctx_numbers = find_numbers(context) if context else []
    ctx_keys = {_number_key(n) for n in ctx_numbers}
    ctx_ints = {p for n in ctx_numbers for p in n.parts} | {
        int(n.value) for n in ctx_numbers if n.value.denominator == 1
    }
    s = _fix_commas(normalize_text(text), free_text=True)
    for m in find_numbers(text):
        if not any(_number_matches(m, t, spec) for t in targets):
            continue
        verdict = grade(spec, m.canonical())
        if verdict.code == "not_simplified" and not verdict.correct:
            continue  # 4/6 when the item asks for lowest terms: a step, not the answer
        # weak mentions count only when stated as a result ("= 6", "the answer is 6")
        weak = (
            not verdict.correct and verdict.code != "unit_missing"  # 0.75 for 75%, 0.33 for 1/3
        )
        weak |= _number_key(m) in ctx_keys or (
            m.form in ("fraction", "mixed")
            and len(m.parts) >= 2
            and all(p in ctx_ints for p in m.parts)
        )  # the problem's own numbers
        weak |= m.value in (0, 1) and m.form in ("integer", "words") and not m.percent
        weak |= m.form == "fraction" and exp.value.denominator == 1 and not m.percent  # 80/4
        if not weak:
            return True
        if _ANSWER_CONTEXT.search(s[: m.start]) and not _continues_expression(s, m.end):
            return True
    return False


def _continues_expression(s: str, end: int) -> bool:
    """``= 6 + 2`` or ``= 6x``: the number starts a longer expression, not a stated result."""
    return bool(re.match(r"\s*(?:[+*/^x(]|-\s*\d|[a-z]\b)", s[end:])) and not re.match(
        r"\s*(?:[a-z]{2,})", s[end:]
    )


def _number_matches(m: Number, t: Number, spec: AnswerSpec) -> bool:
    tol = Fraction(spec.tolerance) if spec.tolerance else Fraction(0)
    if spec.kind == "quantity":
        u_t = UNITS[t.unit]
        if m.unit and m.unit in UNITS:
            u_m = UNITS[m.unit]
            if u_m.dim != u_t.dim:
                return False
            mv = m.ratio * u_m.factor / u_t.factor
        else:
            mv = m.ratio
        return abs(mv - t.value) <= tol or _rounds_to(m, mv, t.value)
    if spec.kind == "percent" or t.percent:
        pv = t.value if t.percent else t.value * 100
        if m.percent or m.form in ("integer",):
            mv = m.value
            if mv == pv or abs(mv - pv) <= tol:
                return True
            return _rounds_to(m, mv, pv)
        return m.value == pv / 100 or _rounds_to(m, m.value, pv / 100)
    mv = m.ratio
    if abs(mv - t.ratio) <= tol:
        return True
    return _rounds_to(m, mv, t.ratio)


def _rounds_to(m: Number, mv: Fraction, target: Fraction) -> bool:
    """A decimal that is the target rounded (0.33 for 1/3): still gives the answer away."""
    if m.form != "decimal" or m.decimals < 1 or target.denominator == 1:
        return False
    if m.decimals < 2 or abs(target) < Fraction(1, 10**m.decimals):
        return False
    scaled = abs(target) * 10**m.decimals
    rounded = Fraction(int(scaled + Fraction(1, 2)), 10**m.decimals)  # half up
    return abs(mv) == rounded and (mv < 0) == (target < 0)


def _leaks_expression(text: str, spec: AnswerSpec, context: str) -> bool:
    exp = spec.target()
    if not isinstance(exp, tuple) and not getattr(exp, "free_symbols", None):
        # a numeric expression answer: compare as a number
        try:
            import sympy

            value = Fraction(str(sympy.nsimplify(exp)))
        except (ValueError, TypeError):
            value = None
        if value is not None:
            as_number = AnswerSpec(kind="fraction", value=f"{value.numerator}/{value.denominator}")
            return _leaks_number(text, as_number, context)
    ctx_forms = {
        _format_expr(e)
        for e in (_parse_expression(c) for c in _math_spans(context))
        if e is not None
    }
    for cand in _expression_candidates(text):
        e = _parse_expression(cand)
        if e is None:
            continue
        if isinstance(e, tuple) and not isinstance(exp, tuple):
            parts = [e[1], e[0]]
        else:
            parts = [e]
        for p in parts:
            if (
                getattr(p, "free_symbols", None) is not None
                and not getattr(p, "free_symbols", None)
                and not isinstance(exp, tuple)
                and getattr(exp, "free_symbols", None)
            ):
                continue
            if _expr_equal(p, exp):
                if spec.strict_form and isinstance(p, tuple) and not _same_equation(p, exp):
                    continue  # an equivalent equation the checker would not accept
                raw = _parse_expression(cand, evaluate=False)
                if (
                    _format_expr(p) in ctx_forms
                    and raw is not None
                    and _format_expr(raw)
                    in {
                        _format_expr(_parse_expression(c, evaluate=False))
                        for c in _math_spans(context)
                        if _parse_expression(c, evaluate=False) is not None
                    }
                ):
                    continue  # the problem's own expression, restated
                if (
                    spec.form != "any"
                    and raw is not None
                    and not isinstance(raw, tuple)
                    and not _form_ok(raw, p, spec.form)
                ):
                    continue  # e.g. restating 2(x+3) when the item asks to expand it
                return True
    return False


def _expression_candidates(text: str) -> list[str]:
    s = normalize_text(text)
    out = []
    # runs of math tokens: digits, single letters, operators, parentheses
    for m in re.finditer(
        r"(?:(?<![a-z])[a-z](?![a-z])|[0-9.]+[a-z]?(?![a-z])|[+\-*/^()=]|\s|sqrt)+", s
    ):
        chunk = m.group(0).strip(" .")
        if not chunk or not re.search(r"[a-z0-9]", chunk):
            continue
        out.append(chunk)
        if "=" in chunk:
            out.extend(p.strip() for p in chunk.split("=") if p.strip())
    return out


def _mark_options(sentence: str, spec: AnswerSpec) -> str:
    """The sentence, normalized, with each option's label and text replaced by ``optN``."""
    s = sentence
    for i in range(len(spec.choices)):
        L, low = _label(i), _label(i).lower()
        pats = [
            rf"\(\s*[{L}{low}]\s*\)",
            rf"(?i:\b(?:option|choice|letter)\s+)[{L}{low}]\b",
            rf"(?<![\w'(])[{L}{low}]\)",
        ]
        if L in ("A", "I"):
            pats.append(rf"(?<![\w'])({L})(?=\s*(?:[.,!?:;]|$))")
        else:
            pats.append(rf"(?<![\w']){L}(?![\w'])")
        s = re.sub("|".join(pats), f" lab{i} ", s)
    hay = _norm_words(s)
    order = sorted(range(len(spec.choices)), key=lambda i: -len(spec.choices[i]))
    for i in order:
        t = _norm_words(spec.choices[i])
        if t:
            hay = re.sub(rf"(?<![\w.]){re.escape(t)}(?![\w]|\.\d)", f" opt{i} ", hay)
    return re.sub(r"\s+", " ", hay)


def _leaks_choice(text: str, spec: AnswerSpec, context: str) -> bool:
    c = spec.target().index
    me = rf"(?:opt|lab){c}\b"
    in_prompt = {
        i
        for i, o in enumerate(spec.choices)
        if _norm_words(o) and re.search(rf"\b{re.escape(_norm_words(o))}\b", _norm_words(context))
    }
    lead = (
        r"(?:answer|correct\s+(?:answer|option|choice|one)|right\s+(?:answer|option|choice|one))"
        r"\s*(?:is|:|would\s+be|=|should\s+be)\s*"
    )
    affirm = r"\s*(?:is|was|would\s+be)\s+(?:definitely\s+|indeed\s+)?(?:correct|right|answer|the\s+(?:correct|right))"
    for sentence in re.split(r"(?<=[.!?])\s+(?=\S)|\n+", text):
        hay = _mark_options(sentence, spec)
        hits = {int(h) for h in re.findall(r"(?:opt|lab)(\d+)\b", hay)}
        labels = {int(h) for h in re.findall(r"lab(\d+)\b", hay)}
        if c not in hits:
            continue
        if labels == {c} and not sentence.rstrip().endswith("?"):
            return True  # "Evaporation (A): ...", "so 5/8 is larger (B)"
        if re.search(rf"{lead}{me}", hay) or re.search(rf"{me}{affirm}", hay):
            return True
        if re.search(rf"\b(?:pick|choose|select|go\s+with)\s+{me}", hay):
            return True
        # only the right option singled out, in a statement about it
        if hits == {c} and c not in in_prompt:
            return True
    return False


def _leaks_text(text: str, spec: AnswerSpec, context: str) -> bool:
    targets = [spec.target()] + [_norm_words(a) for a in spec.accepted]
    hay = _norm_words(text)
    ctx = _norm_words(context)
    for t in targets:
        if not t:
            continue
        for m in re.finditer(rf"\b{re.escape(t)}\b", hay):
            if re.search(rf"\b{re.escape(t)}\b", ctx):
                if _ANSWER_CONTEXT.search(hay[: m.start()]) or re.search(
                    r"\banswer\b[^.]{0,12}$", hay[: m.start()]
                ):
                    return True
                continue
            return True
        # a plural or inflected form of a single-word answer (evaporates, evaporating)
        if " " not in t and len(t) >= 6:
            stem = t[: max(5, len(t) - 3)]
            for w in hay.split():
                if w.startswith(stem) and not re.search(rf"\b{re.escape(w)}\b", ctx):
                    return True
    return False
