"""The answer-leak check: ``mentions_answer`` is True when a tutor's text states the answer in
any form the checker would accept, but not when it only repeats the problem's own numbers.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from tutor.grading.expressions import (
    _expr_equal,
    _form_ok,
    _format_expr,
    _math_spans,
    _parse_expression,
    _same_equation,
)
from tutor.grading.grade import grade
from tutor.grading.normalize import _fix_commas, normalize_text
from tutor.grading.numbers import Number, find_numbers
from tutor.grading.spec import AnswerSpec, ItemLike, _spec_of
from tutor.grading.units import UNITS
from tutor.grading.words import _label, _norm_words

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
        # "30%" for an answer of 30 gives it away, whatever the question asks
        as_percent = _percent_of_answer(m, exp, spec)
        # weak mentions count only when stated as a result ("= 6", "the answer is 6")
        weak = (
            not verdict.correct
            and not as_percent
            and verdict.code != "unit_missing"  # 0.75 for 75%, 0.33 for 1/3
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


def _percent_of_answer(m: Number, t: Number, spec: AnswerSpec) -> bool:
    """``30%`` or ``30 percent`` for a bare answer of 30 (a question that asks what percentage
    has a bare number as its answer)."""
    if spec.kind not in ("integer", "number") or not m.percent or t.percent:
        return False
    tol = Fraction(spec.tolerance) if spec.tolerance else Fraction(0)
    return abs(m.value - t.value) <= tol or _rounds_to(m, m.value, t.value)


def _number_matches(m: Number, t: Number, spec: AnswerSpec) -> bool:
    if _percent_of_answer(m, t, spec):
        return True
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
