"""Grading one answer: ``grade`` reads the response as the item's kind and returns the verdict
with a feedback code (``close_but_rounding``, ``sign_error``, ``unit_missing``, ...).
"""

from __future__ import annotations

import difflib
import re
from fractions import Fraction

from tutor.grading.expressions import (
    _expr_equal,
    _form_ok,
    _format_expr,
    _math_spans,
    _parse_expression,
    _same_equation,
)
from tutor.grading.meaning import _asserted_number, asks_for_percent
from tutor.grading.normalize import _LEAD_INS
from tutor.grading.numbers import Number, _strip_answer_text, format_number
from tutor.grading.spec import (
    _MESSAGES,
    AnswerSpec,
    GradeResult,
    ItemLike,
    _Choice,
    _spec_of,
)
from tutor.grading.units import UNITS
from tutor.grading.words import _choice_index, _label, _norm_words


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


def grade(
    item_or_spec: ItemLike | AnswerSpec | str, response: str, *, prompt: str | None = None
) -> GradeResult:
    """Grade one answer deterministically. ``item_or_spec``: an item, an ``AnswerSpec``, or a bare
    answer string (its kind is inferred). ``prompt``: the question, when not given by the item
    (an item's own ``prompt`` is read otherwise). Never raises on a learner's input.

    The graded number is the one the learner asserts: a number they negate or take back
    (``not 18``, ``18 is wrong``, ``I first thought 18 but ...``) is not their answer; when no
    other number is given the result is ``not_parsed`` (see ``tutor.grading.meaning``). When the
    question asks for a percentage (``What percentage ...?``), ``20%`` answers a bare 20."""
    spec = _spec_of(item_or_spec)
    if prompt is None:
        prompt = getattr(item_or_spec, "prompt", "") or ""
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
        percent_ok = spec.kind in ("integer", "number") and asks_for_percent(prompt)
        return _grade_number(spec, text, expected, percent_ok)
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


def _grade_number(
    spec: AnswerSpec, text: str, expected: str, percent_ok: bool = False
) -> GradeResult:
    first = _grade_number_as_read(spec, text, expected, percent_ok)
    if not first.correct and re.search(r"\d,\d", text):
        # "2,375" is 2375 to some and 2.375 to others: take the reading that is right
        other = _grade_number_as_read(
            spec, re.sub(r"(\d),(\d)", r"\1.\2", text), expected, percent_ok
        )
        if other.correct:
            return other
    return first


def _grade_number_as_read(
    spec: AnswerSpec, text: str, expected: str, percent_ok: bool = False
) -> GradeResult:
    """``percent_ok``: the question asks for a percentage and the answer is a bare number, so
    ``20%`` is read as 20 (its written value), not 0.2."""
    exp: Number = spec.target()
    r = _asserted_number(text)
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
    if percent_ok and r.percent:
        # "20%" for a question that asks what percentage: the written number is the answer
        rv = r.value
        if _within(rv, target, spec.tolerance):
            return _result(True, "correct", norm, expected)
        return _result(False, _close_code(rv, target, r, spec.kind), norm, expected)
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
