"""Worked results for explain mode: a calculation the learner asks about, done exactly.

Explain mode quotes the course's method. When the question itself is a calculation the tutor
can do exactly ("What is 1/2 + 1/3?", "How do you solve 2x + 5 = 17?", "What is 7/4 as a mixed
number?", "What is 2/3 of 18?"), the answer adds one line worked out with sympy
(``tutor.problems.solve``) or with integer arithmetic: a verified statement, never the LM's.
Anything else gets no line.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from tutor.modes import computable_problem
from tutor.problems import _fmt, solve

_NUM = r"(\d+\s+\d+/\d+|\d+/\d+|\d*\.\d+|\d+)"
_CONVERT = re.compile(
    _NUM + r"\s+(?:as|to|into)\s+(?:an?\s+)?(mixed number|improper fraction|decimal|fraction|"
    r"percent(?:age)?)",
    re.I,
)
_LOWEST = re.compile(
    r"(\d+/\d+)\s+(?:in|to)\s+(?:its\s+)?(?:lowest|simplest)\s+(?:terms|form)", re.I
)
_RECIPROCAL = re.compile(r"reciprocal\s+of\s+" + _NUM, re.I)
_FRACTION_OF = re.compile(r"(\d+/\d+)\s+of\s+(\d+(?:\.\d+)?)", re.I)
_RATIO = re.compile(r"ratio\s+(\d+)\s*:\s*(\d+)", re.I)
_ROUND = re.compile(
    r"(\d*\.\d+|\d+)\s+rounded\s+to\s+the\s+nearest\s+"
    r"(thousand|hundred|ten|whole number|tenth|hundredth|thousandth)\b",
    re.I,
)
_PLACES = {
    "thousand": -3,
    "hundred": -2,
    "ten": -1,
    "whole number": 0,
    "tenth": 1,
    "hundredth": 2,
    "thousandth": 3,
}


def _number(text: str) -> Fraction | None:
    text = text.strip()
    try:
        if " " in text:  # a mixed number "2 1/3"
            whole, part = text.split(None, 1)
            return int(whole) + Fraction(part)
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def _mixed(value: Fraction) -> str:
    whole, rest = divmod(value.numerator, value.denominator)
    if value < 0 or whole == 0 or rest == 0:
        return _fmt(value)
    return f"{whole} {rest}/{value.denominator}"


def _decimal(value: Fraction) -> str | None:
    shown = _fmt(value, decimal=True)
    return shown if "/" not in shown else None  # 1/3 has no exact decimal: no line


def _conversion(question: str) -> str | None:
    if m := _CONVERT.search(question):
        value, target = _number(m[1]), m[2].lower()
        if value is None:
            return None
        if target == "mixed number":
            shown: str | None = _mixed(value)
        elif target == "decimal":
            shown = _decimal(value)
        elif target.startswith("percent"):
            pct = _decimal(value * 100)
            shown = f"{pct}%" if pct is not None else None
        else:  # an (improper) fraction in lowest terms
            shown = _fmt(value)
        return f"{m[1]} = {shown}" if shown is not None and shown != m[1] else None
    if m := _LOWEST.search(question):
        value = _number(m[1])
        return f"{m[1]} = {_fmt(value)}" if value is not None and _fmt(value) != m[1] else None
    if m := _RECIPROCAL.search(question):
        value = _number(m[1])
        if not value:
            return None
        return (
            f"the reciprocal of {m[1]} is {_fmt(1 / value)}, since {m[1]} × {_fmt(1 / value)} = 1"
        )
    if m := _FRACTION_OF.search(question):
        part, whole = _number(m[1]), _number(m[2])
        if part is None or whole is None:
            return None
        return f"{m[1]} of {m[2]} = {m[2]} × {m[1]} = {_fmt(part * whole, decimal='.' in m[2])}"
    if m := _RATIO.search(question):
        a, b = int(m[1]), int(m[2])
        g = math.gcd(a, b)
        return f"{a}:{b} = {a // g}:{b // g} (both divided by {g})" if g > 1 and b else None
    if m := _ROUND.search(question):
        from decimal import ROUND_HALF_UP, Decimal

        places = _PLACES[m[2].lower()]
        exp = Decimal(1).scaleb(-places)
        rounded = (
            Decimal(m[1]).quantize(exp, rounding=ROUND_HALF_UP)
            if places >= 0
            else ((Decimal(m[1]) / exp).quantize(Decimal(1), rounding=ROUND_HALF_UP) * exp)
        )
        return f"{m[1]} rounded to the nearest {m[2].lower()} is {rounded:f}"
    return None


def worked_result(question: str) -> str | None:
    """One verified line for a calculation question ("Worked out: 1/2 + 1/3 = 5/6."), or None."""
    line = _conversion(question)
    if line is None:
        expr = computable_problem(question)
        known = solve(expr, question) if expr else None
        if known is None:
            return None
        shown = known.expression.replace("*", "×").replace(" / ", " ÷ ")
        shown = re.sub(r"\((\d*\.?\d+)\)", r"\1", shown)  # "4.5 ÷ (0.9)" -> "4.5 ÷ 0.9"
        if known.answer.startswith("x ="):
            line = f"{shown} gives {known.answer}"
        else:
            pct = re.fullmatch(r"(\d+(?:\.\d+)?)/100 × (\d+(?:\.\d+)?)", shown)
            if pct:
                shown = f"{pct[1]}% of {pct[2]} = {pct[1]}/100 × {pct[2]}"
            line = f"{shown} = {known.answer}"
    return f"Worked out: {line}."
