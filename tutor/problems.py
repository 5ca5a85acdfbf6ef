"""Problems the learner brings: when a message poses an arithmetic or linear-algebra problem,
the tutor solves it exactly (sympy) so it can grade attempts and guard the answer, just as
for an item from the bank. The LM never computes the answer."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

MAX_EXPR_CHARS = 80
# What ``solve`` evaluates must stay small: a learner's "what is 9^9^9?" is a 370-million-digit
# number that would take the server minutes. Results (and every part of them) are limited to
# MAX_DIGITS digits, powers of the unknown to MAX_DEGREE.
MAX_DIGITS = 1000
MAX_DEGREE = 12
_ALLOWED = re.compile(r"[\dx\s.+\-*/^()=]+")


@dataclass(frozen=True)
class KnownProblem:
    statement: str  # as the learner wrote it
    expression: str  # what was solved
    answer: str  # canonical answer ("7/8", "4", "x = 4")


def _parse(text: str) -> Any:
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        rationalize,
        standard_transformations,
    )

    # rationalize: "0.5" is the exact 1/2, not a 15-digit float ("123456789012345678 + 0.5"
    # would lose its half)
    transformations = standard_transformations + (
        implicit_multiplication_application,
        convert_xor,
        rationalize,
    )
    return parse_expr(text, transformations=transformations, evaluate=False)


def solve(expression: str, statement: str = "") -> KnownProblem | None:
    """Solve ``3/4 + 1/8`` (exact value) or ``2x + 3 = 11`` (one linear unknown).

    Returns ``None`` for anything outside that safe, exact subset (long inputs, huge powers,
    several unknowns, no solution): then the tutor simply has no known answer to guard.
    """
    import sympy

    expr = expression.strip().rstrip("?.!").replace("×", "*").replace("÷", "/")
    # "24 x 14" is a multiplication; "2x" is the unknown
    expr = re.sub(r"(?<=\d)\s+[xX]\s+(?=\d)", " * ", expr)
    if not expr or len(expr) > MAX_EXPR_CHARS or re.search(r"(\^|\*\*)\s*\d{3,}", expr):
        return None
    # digits, the unknown x and arithmetic only: parse_expr evaluates Python, so quotes,
    # shifts (1 << 10**10), factorials and other letters never reach it
    if not _ALLOWED.fullmatch(expr):
        return None
    # a mixed number "2 1/3" is 2 + 1/3, not 2 × 1/3
    mixed = re.sub(r"(?<![\d./)])(\d+)\s+(\d+)\s*/\s*(\d+)(?![\d.(/])", r"(\1+\2/\3)", expr)
    # a learner writes 1/2 / 1/4 meaning (1/2) ÷ (1/4): keep simple fractions together
    parsed_expr = re.sub(r"(?<![\d.)])(\d+)\s*/\s*(\d+)(?![\d.(])", r"(\1/\2)", mixed)
    # a problem written in decimals (and no fractions) gets its answer in decimals
    decimal = "." in expr and "/" not in expr
    try:
        if "=" in expr:
            left, _, right = parsed_expr.partition("=")
            if "=" in right or "x" not in parsed_expr:
                return None  # a statement like 24 * 14 = 336 is working, not a problem
            if not left.strip() or not right.strip():
                return None  # "=x": sympy's parser raises IndexError on an empty side
            x = sympy.Symbol("x")
            lhs, rhs = _parse(left), _parse(right)
            if _too_big(lhs) or _too_big(rhs):
                return None
            # linear (or a square) only: solving higher degrees exactly takes sympy seconds
            num, _den = sympy.fraction(sympy.together(lhs.doit() - rhs.doit()))
            if sympy.Poly(num, x).degree() > 2:
                return None
            eq = sympy.Eq(lhs, rhs)
            sols = sympy.solve(eq, x)
            if len(sols) != 1 or not sols[0].is_rational:
                return None
            # check the solution in the equation as written ("x/0 = 1" has none)
            check = (lhs.doit() - rhs.doit()).subs(x, sols[0])
            if check.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) or sympy.simplify(check) != 0:
                return None
            return KnownProblem(statement or expression, expr, f"x = {_fmt(sols[0], decimal)}")
        parsed = _parse(parsed_expr)
        if _too_big(parsed) or parsed.has(sympy.Symbol("x")):
            return None
        value = sympy.nsimplify(parsed.doit())
        if not value.is_rational:
            return None
        return KnownProblem(statement or expression, expr, _fmt(value, decimal))
    except (
        sympy.SympifyError,
        sympy.PolynomialError,
        SyntaxError,
        TypeError,
        ValueError,
        ZeroDivisionError,
        AttributeError,
        IndexError,
        TokenError_(),
    ):
        return None


def _too_big(expr: Any) -> bool:
    """Whether evaluating the parsed (unevaluated) ``expr`` could give a number of more than
    ``MAX_DIGITS`` digits or a power of x above ``MAX_DEGREE``, or divides by zero. Bounds
    only, never evaluates anything large: digits(a^n) <= n * digits(a), digits(a*b) <=
    digits(a) + digits(b), and degrees add up the same way."""
    import sympy

    x = sympy.Symbol("x")

    def size(e: Any) -> tuple[float, float]:  # (digits, degree in x)
        if e == x:
            return 1.0, 1.0
        if e.is_Integer or e.is_Rational:
            return float(max(len(str(abs(e.p))), len(str(e.q)))), 0.0
        if e.is_Float:
            return (abs(math.log10(abs(float(e)))) + 16 if e != 0 else 1.0), 0.0
        if e.is_Pow:
            base, exp = e.args
            d_exp, deg_exp = size(exp)
            if d_exp > 3 or deg_exp > 0:
                return math.inf, math.inf  # an exponent of 1000 or more, or x in an exponent
            n = exp.doit()
            if n.is_negative and base.doit() == 0:
                return math.inf, math.inf  # 1/0
            d_base, deg_base = size(base)
            k = max(abs(float(n)), 1.0)
            return d_base * k, deg_base * k
        if e.is_Add or e.is_Mul:
            parts = [size(a) for a in e.args]
            degs = [g for _, g in parts]
            return float(sum(d for d, _ in parts)), (sum(degs) if e.is_Mul else max(degs))
        return math.inf, math.inf  # functions, factorials...: nothing these problems need

    digits, degree = size(expr)
    return digits > MAX_DIGITS or degree > MAX_DEGREE


def TokenError_() -> type[Exception]:
    from tokenize import TokenError

    return TokenError


def _fmt(value: Any, decimal: bool = False) -> str:
    """An exact answer as "7/8" or "4"; as "4.5" when the problem was written in decimals
    (``decimal``) and the value has a short exact decimal form."""
    import sympy

    r = sympy.Rational(value)
    if r.q == 1:
        return str(r.p)
    if decimal:
        # exact when q divides 10^6: at most six decimal places, computed in integers
        for places in range(1, 7):
            if 10**places % r.q == 0:
                scaled = abs(r.p) * (10**places // r.q)
                whole, frac = divmod(scaled, 10**places)
                sign = "-" if r.p < 0 else ""
                return f"{sign}{whole}.{frac:0{places}d}"
    return f"{r.p}/{r.q}"


# -- scaffolds: a deterministic hint ladder for common problem types --------------------------

_FRAC2 = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*([-+*/])\s*(\d+)\s*/\s*(\d+)\s*$")
_LINEAR = re.compile(r"^\s*([-+]?\d*)\s*\*?\s*x\s*(?:([-+])\s*(\d+))?\s*=\s*([-+]?\d+)\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)/100 \* (\d+(?:\.\d+)?)\s*$")
_INT2 = re.compile(r"^\s*(\d+)\s*([*/])\s*\(?\s*(\d+)\s*\)?\s*$")


def _value(answer: str) -> Any:
    """The learner's answer as an exact rational, or None ("5/6", "0.75", "x = 4", "-3")."""
    import sympy

    text = answer.strip().rstrip("?.!").strip()
    text = re.sub(r"^(?:x\s*=\s*)", "", text, flags=re.I)
    m = re.fullmatch(r"([-+]?\d+(?:\.\d+)?)(?:\s*/\s*(\d+))?", text)
    if not m:
        return None
    try:
        num = sympy.Rational(m[1])
        return num / int(m[2]) if m[2] and int(m[2]) else (None if m[2] else num)
    except (TypeError, ValueError):
        return None


def diagnose(expression: str, answer: str) -> str:
    """Name the likely mistake behind a wrong ``answer`` to a recognised problem type, from
    the classic misconceptions (adding tops and bottoms, not rewriting the numerators over the
    common denominator, multiplying instead of dividing, undoing a step with the wrong
    operation). "" when the answer fits none of them. Never states the right answer."""
    import sympy

    v = _value(answer)
    if v is None:
        return ""
    m = _FRAC2.match(expression)
    if m:
        a, b, op, c, d = int(m[1]), int(m[2]), m[3], int(m[4]), int(m[5])
        if 0 in (b, d):
            return ""
        R = sympy.Rational
        if op in "+-":
            word, sign = ("add", 1) if op == "+" else ("subtract", -1)
            if b != d and (b + sign * d) != 0 and v == R(a + sign * c, b + sign * d):
                return (
                    f"It looks like you {word}ed the numerators ({a} and {c}) and the denominators "
                    f"({b} and {d}) separately. Fractions can only be {word}ed once they have the "
                    "same denominator."
                )
            lcd = b * d // math.gcd(b, d)
            if b != d and v == R(a + sign * c, lcd):
                return (
                    f"You found the common denominator {lcd}, but the numerators have to be "
                    f"rewritten over {lcd} too before you {word} them."
                )
            if b != d and v == R(a + sign * c, b * d) and b * d != lcd:
                return (
                    f"Multiplying the denominators is fine, but then the numerators have to be "
                    f"rewritten over {b * d} too before you {word} them."
                )
        if op == "*" and c and v == R(a * d, b * c):
            return "It looks like you flipped the second fraction: that is for dividing, not multiplying."
        if op == "/":
            if v == R(a * c, b * d):
                return (
                    f"It looks like you multiplied {a}/{b} by {c}/{d}. To divide by a fraction, "
                    "multiply by its reciprocal (flip the second fraction)."
                )
            if a and v == R(b * c, a * d):
                return "You flipped the first fraction; it is the second one (the divisor) that gets flipped."
        return ""
    m = _LINEAR.match(expression)
    if m and m[3]:
        coef_txt = m[1] if m[1] not in ("", "+", "-") else (m[1] + "1" if m[1] else "1")
        k, const, rhs = int(coef_txt), int(m[3]), int(m[4])
        const = const if m[2] == "+" else -const
        if k == 0:
            return ""
        if v == sympy.Rational(rhs + const, k) and const != 0:
            undo = "subtract" if const > 0 else "add"
            return (
                f"Check the first step: to undo {'+' if const > 0 else '-'} {abs(const)} you "
                f"{undo} {abs(const)} on both sides, so the sign changes."
            )
        if k != 1 and v == sympy.Rational(rhs, k) - const:
            return (
                f"The order matters: undo the {'+' if const > 0 else '-'} {abs(const)} first, and "
                f"divide both sides by {k} after that."
            )
        if k != 1 and v == sympy.Rational(rhs - const) * k:
            return f"The x is multiplied by {k}, so undo it by dividing by {k}, not multiplying."
    return ""


def scaffold(expression: str) -> list[str]:
    """Three rungs (a pointing question, a specific hint, one worked step) for problem types
    the tutor recognises, none of which states the final answer; [] for others."""
    from math import gcd

    m = _FRAC2.match(expression)
    if m:
        a, b, op, c, d = int(m[1]), int(m[2]), m[3], int(m[4]), int(m[5])
        if op in "+-":
            word = "add" if op == "+" else "subtract"
            if b == d:
                return [
                    f"The denominators are already the same. What happens to the numerators when you {word} the fractions?",
                    f"Keep the denominator {b} and {word} the numerators {a} and {c}.",
                    f"Write it as ({a} {op} {c})/{b}, then simplify if you can.",
                ]
            lcd = b * d // gcd(b, d)
            return [
                f"Can you {word} these fractions as they are? What do the denominators {b} and {d} need to be first?",
                f"Find a common denominator: the smallest number that both {b} and {d} divide into is {lcd}.",
                f"Rewrite both fractions over {lcd}: {a}/{b} = {a * lcd // b}/{lcd} and {c}/{d} = {c * lcd // d}/{lcd}. Now {word} the numerators.",
            ]
        if op == "*":
            return [
                "When you multiply two fractions, what do you do with the numerators and with the denominators?",
                f"Multiply the numerators ({a} × {c}) and multiply the denominators ({b} × {d}).",
                f"That gives ({a} × {c})/({b} × {d}). Work out both products, then simplify.",
            ]
        return [
            "Dividing by a fraction is the same as multiplying by what?",
            f"Flip the second fraction: dividing by {c}/{d} means multiplying by {d}/{c}.",
            f"So {a}/{b} ÷ {c}/{d} = {a}/{b} × {d}/{c}. Multiply the numerators and the denominators, then simplify.",
        ]
    m = _LINEAR.match(expression.replace(" ", "") and expression)
    if m:
        coef = m[1] if m[1] not in ("", "+", "-") else (m[1] + "1" if m[1] else "1")
        sign, const, rhs = m[2], m[3], m[4]
        xterm = "x" if coef == "1" else ("-x" if coef == "-1" else f"{coef}x")
        if const:
            inverse = "subtract" if sign == "+" else "add"
            then = (
                " Now work out the right side."
                if coef == "1"
                else f" Now work out the right side, then divide both sides by {coef}."
            )
            return [
                "Which number is added to or taken away from the x term? How could you undo that on both sides?",
                f"{inverse.capitalize()} {const} on both sides of the equation to get the x term alone.",
                f"After you {inverse} {const} on both sides, you have {xterm} = {rhs} {'-' if sign == '+' else '+'} {const}.{then}",
            ]
        return [
            "The x is multiplied by a number. What is the opposite of multiplying?",
            f"Divide both sides by {coef}.",
            f"Dividing both sides by {coef} leaves x on its own on the left. What is left on the right side?",
        ]
    m = _PERCENT.match(expression)
    if m:
        p, n = m[1], m[2]
        return [
            f"How could you write {p}% as a fraction or a decimal?",
            f"{p}% means {p} out of 100, so {p}% of {n} is {p}/100 × {n}.",
            f"{p}% = {float(p) / 100:g}. Multiply {float(p) / 100:g} by {n}.",
        ]
    m = _INT2.match(expression)
    if m:
        steps = _times_or_share(int(m[1]), m[2], int(m[3]))
        if steps:
            return steps
    ops = set(re.findall(r"[-+*/^]", re.sub(r"^\s*-", "", expression)))
    if len(ops) >= 2 or "(" in expression:
        return [
            "Which part of this expression should you work out first?",
            "Use the order of operations: brackets first, then powers, then × and ÷ from left to right, then + and − from left to right.",
            "Work out the first step only, write the shorter expression, and continue from there.",
        ]
    return []


def _times_or_share(a: int, op: str, b: int) -> list[str]:
    """Rungs for a whole-number product ("7 × 8": split a factor, 7 × 5 + 7 × 3) or an exact
    quotient ("56 ÷ 8": how many 8s make 56?); [] for a zero, a remainder, or a rung that
    would state the answer."""
    if a == 0 or b == 0:
        return []
    if op == "*":
        answer = a * b
        m, n = (a, b) if b >= 10 or a < 10 else (b, a)  # n: the factor to split
        first = f"{a} × {b} means {a} groups of {b}. Which multiplication fact that you already know is close to it?"
        if n > 5 and n % 10:  # tens and ones (23 = 20 + 3), or 5 and the rest (8 = 5 + 3)
            p = n - n % 10 if n >= 10 else 5
            steps = [
                first,
                f"Split {n} into {p} + {n - p}: {m} × {n} = {m} × {p} + {m} × {n - p}.",
                f"{m} × {p} = {m * p}. Now work out {m} × {n - p} and add the two results.",
            ]
        else:  # (m = 1 states the answer in every rung: refused below)
            counted = ", ".join(str(n * k) for k in range(1, min(m, 6)))
            tens = f", or work out {n // 10} × {m} first" if n % 10 == 0 else ""
            steps = [
                first,
                f"Count in {n}s, {m} times{tens}.",
                f"Counting in {n}s: {counted}, … How many {n}s is that so far, and how many more do you need?",
            ]
    else:
        if a % b:
            return []
        answer = a // b
        k = 5 if answer < 5 or answer == 10 else 10  # a product near it to start from
        steps = [
            f"{a} ÷ {b} asks: how many {b}s make {a}? Which multiplication fact with {b} could help?",
            f"Think of it as a missing number: {b} × ? = {a}.",
            f"{b} × {k} = {b * k}. Is {a} more or less than that, and by how many {b}s?",
        ]
    said = {int(x) for step in steps for x in re.findall(r"\d+", step)}
    return [] if answer in said else steps
