"""Algebraic expressions and equations, read with sympy from a whitelist of characters only
(never eval'd as Python), compared by equivalence, and checked for the form an item asks for
(expanded, factored, simplified).
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

from tutor.grading.normalize import _LEAD_INS, _fix_commas, _trim, normalize_text

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
