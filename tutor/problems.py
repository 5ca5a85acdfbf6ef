"""Problems the learner brings: when a message poses an arithmetic or linear-algebra problem,
the tutor solves it exactly (sympy) so it can grade attempts and guard the answer, just as
for an item from the bank. The LM never computes the answer."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_EXPR_CHARS = 80


@dataclass(frozen=True)
class KnownProblem:
    statement: str  # as the learner wrote it
    expression: str  # what was solved
    answer: str  # canonical answer ("7/8", "4", "x = 4")


def _parse(text: str):
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    transformations = standard_transformations + (implicit_multiplication_application, convert_xor)
    return parse_expr(text, transformations=transformations, evaluate=False)


def solve(expression: str, statement: str = "") -> KnownProblem | None:
    """Solve ``3/4 + 1/8`` (exact value) or ``2x + 3 = 11`` (one linear unknown).

    Returns ``None`` for anything outside that safe, exact subset (long inputs, huge powers,
    several unknowns, no solution): then the tutor simply has no known answer to guard.
    """
    import sympy

    expr = expression.strip().rstrip("?.!").replace("×", "*").replace("÷", "/")
    if not expr or len(expr) > MAX_EXPR_CHARS or re.search(r"(\^|\*\*)\s*\d{3,}", expr):
        return None
    if re.search(r"[a-wyzA-WYZ]", expr):  # only the unknown x is supported
        return None
    try:
        if "=" in expr:
            left, _, right = expr.partition("=")
            if "=" in right:
                return None
            x = sympy.Symbol("x")
            eq = sympy.Eq(_parse(left), _parse(right))
            sols = sympy.solve(eq, x)
            if len(sols) != 1 or not sols[0].is_rational:
                return None
            return KnownProblem(statement or expression, expr, f"x = {_fmt(sols[0])}")
        value = sympy.nsimplify(_parse(expr).doit())
        if not value.is_rational:
            return None
        return KnownProblem(statement or expression, expr, _fmt(value))
    except (
        sympy.SympifyError,
        SyntaxError,
        TypeError,
        ValueError,
        ZeroDivisionError,
        AttributeError,
        TokenError_(),
    ):
        return None


def TokenError_() -> type[Exception]:
    from tokenize import TokenError

    return TokenError


def _fmt(value) -> str:
    import sympy

    r = sympy.Rational(value)
    return str(r.p) if r.q == 1 else f"{r.p}/{r.q}"
