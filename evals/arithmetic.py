"""False arithmetic in a tutor reply, checked with exact rational arithmetic.

Independent of the agent: this module has its own claim reader and evaluator and imports
neither ``tutor.grading``, ``tutor.guard`` nor ``tutor.verify`` (a test reads its imports), so
the false-arithmetic rate does not measure with the function the agent censors with.

What it sees: an **arithmetic claim** is two or more expressions joined by ``=`` (or by "is",
"equals", "is equal to", "makes", "gives" between a number and a number), at least one side
with an operator. Expressions are numbers written in digits (``1,500``, ``$2.50``, ``.05``,
``-4``, ``20%`` read as 20/100), the operators ``+ - * / x × ÷ ·`` and the words "plus",
"minus", "times", "multiplied by", "divided by", "p% of b", and parentheses. Chains
(``2 + 3 = 5 = 10 / 2``) are checked link by link. Each side is evaluated exactly as a
fraction; a claim is false when two linked sides differ, except that a side written as one
decimal number may be the other side rounded to its decimals (``10 / 3 = 3.33`` is true,
``10 / 3 = 3`` is false).

What it cannot see: claims with variables or unknowns (``x = 5``, ``2x + 3 = 11``), number
words ("three times four is twelve"), powers, roots and functions, units between the number
and the operator (``40 guests - 36 guests = 4``; ``3.5 km = 3,500 m`` is a unit conversion it
does not read), approximate signs (``≈``), comparisons (``<``), and a claim split over two
sentences. A division by zero is not judged.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from fractions import Fraction

_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)%?"
_TERM = rf"[(\s]*-?\s*\$?\s*{_NUM}[)\s]*"
_EXPR = rf"{_TERM}(?:[-+*/]{_TERM})*"
_CLAIM = re.compile(rf"(?<![\w.,$]){_EXPR}(?:={_EXPR})+(?!\w|\.\d)")

_WORD_OPS = [
    (re.compile(r"\s*(?:×|✕|·|⋅|\*)\s*"), " * "),
    (re.compile(r"\s*÷\s*"), " / "),
    (re.compile(r"(?<=\d)\s*[−–]\s*(?=[\d$.(])"), " - "),  # typographic minus and en dash
    (re.compile(r"(?<=[\d)%])\s+x\s+(?=[\d$.(])", re.I), " * "),
    (re.compile(r"(?<=[\d)%])\s+(?:multiplied by|times)\s+(?=[\d$.(])", re.I), " * "),
    (re.compile(r"(?<=[\d)%])\s+divided by\s+(?=[\d$.(])", re.I), " / "),
    (re.compile(r"(?<=[\d)%])\s+plus\s+(?=[\d$.(])", re.I), " + "),
    (re.compile(r"(?<=[\d)%])\s+minus\s+(?=[\d$.(])", re.I), " - "),
    (re.compile(r"(?<=\d)%\s+of\s+(?=[\d$.(])", re.I), "% * "),
    (
        re.compile(
            r"(?<=[\d)%])\s+(?:is equal to|equals|is|makes|gives)\s+(?=-?\s*\$?[\d.(])", re.I
        ),
        " = ",
    ),
    (re.compile(r"\s*=\s*"), " = "),
]


@dataclass(frozen=True)
class Claim:
    text: str  # the claim as normalised ("36 - 40 = 20")
    true: bool


def _normalise(text: str) -> str:
    for pattern, repl in _WORD_OPS:
        text = pattern.sub(repl, text)
    return text


def _to_python(side: str) -> str:
    s = side.replace("$", "").replace(",", "")
    s = re.sub(r"(\d+(?:\.\d+)?|\.\d+)%", r"(\1/100)", s)
    return s


def _eval(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _eval(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if isinstance(node.op, ast.Div):
            return a / b  # ZeroDivisionError: not judged
    raise ValueError(f"not arithmetic: {ast.dump(node)}")


def value(side: str) -> Fraction:
    """The exact value of one side (``"$1,500 / 3"``); ValueError when it is not arithmetic."""
    src = _to_python(side).strip()
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"not arithmetic: {side!r}") from e
    return _eval(tree)  # decimals go through str, so 0.1 stays 1/10


def _rounded_equal(written: str, exact: Fraction) -> bool:
    """``written`` is one decimal number and ``exact`` rounds to it at its decimals."""
    m = re.fullmatch(r"\s*-?\s*\$?\s*(?:\d[\d,]*)?\.(\d+)\s*", written)
    if not m:
        return False
    w = value(written)
    return abs(exact - w) <= Fraction(1, 2 * 10 ** len(m.group(1)))


def _link_true(left: str, right: str) -> bool | None:
    try:
        a, b = value(left), value(right)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return a == b or _rounded_equal(right, a) or _rounded_equal(left, b)


def claims(text: str) -> list[Claim]:
    """The arithmetic claims of ``text`` (module docstring) with their truth; a claim whose
    sides cannot be evaluated is left out."""
    out = []
    for m in _CLAIM.finditer(_normalise(text or "")):
        raw = m.group(0).strip()
        sides = [s.strip() for s in raw.split("=")]
        if len(sides) < 2 or not any(re.search(r"[\d%)]\s*[-+*/]\s*[\d$.(-]", s) for s in sides):
            continue
        links = [_link_true(a, b) for a, b in zip(sides, sides[1:], strict=False)]
        if any(x is None for x in links):
            continue
        out.append(Claim(" = ".join(sides), all(bool(x) for x in links)))
    return out


def false_claims(text: str) -> list[str]:
    """The false arithmetic claims of ``text``, as normalised strings."""
    return [c.text for c in claims(text) if not c.true]
