"""Worked solutions and a learner's work as steps, and where the work first leaves the solution
(issue 13, item 4). Pure functions on strings; exact arithmetic with ``fractions.Fraction``.

- ``solution_steps(text)``: the steps of a worked solution, from GSM8K calculator annotations
  (``<<48/2=24>>``) or from the ``a op b = c`` claims of its lines ("He spent $2 on gumballs
  because 40 x .05 = 2", "60 potatoes * 1.5 minutes per potato = 90 minutes": words between
  the numbers are units and are skipped). ``equation_steps(expression)`` gives the steps of a
  problem the tutor solved itself ("2x + 3 = 11": 11 - 3 = 8, then 8 / 2 = 4;
  "3 + 4 * 5": 4 * 5 = 20, then 3 + 20 = 23).
- ``parse_work(text)``: the learner's work as the steps it states (``a op b = c``, also "I
  divided $3 by $1.5 to get 2") and the bare quantities around them ("he had $5 left"), in
  the order written, each with the clause it came from.
- ``first_divergence(solution, work, givens)``: the first place the work leaves the solution:
  a calculation that is false (``"arithmetic"``), or a quantity that is neither given by the
  problem nor a value of the solution (``"value"``: "where does the 5 come from?"); None when
  every quantity of the work is one the solution has.

It cannot see a step written only in words ("half of what was left"), a right quantity
reached by another route than the solution's (it reads as a divergence), or a mistake in
which quantity is used when the value itself appears in the solution.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from fractions import Fraction

MAX_EXPR_CHARS = 120
MAX_DIGITS = 30

_NUM = r"\$?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)%?"
_TOKEN = re.compile(
    rf"(?P<num>{_NUM})(?![A-Za-z](?![A-Za-z])|\d|st\b|nd\b|rd\b|th\b)|(?P<op>[-+*/=()])|(?P<word>[A-Za-z']+)|(?P<punct>\S)"
)
_ANNOTATION = re.compile(r"<<([^<>=]{1,120})=([^<>]{1,40})>>")
_SYMBOLS = str.maketrans(
    {"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-", "€": " ", "£": " ", "¢": " "}
)
# how learners say an operation in words: (pattern, replacement) applied before reading claims
_VERBAL = [
    (rf"\bdivided\s+({_NUM})\s+(?:\w+\s+){{0,3}}?by\b", r"\1 /"),
    (rf"\bmultiplied\s+({_NUM})\s+(?:\w+\s+){{0,3}}?(?:by|with)\b", r"\1 *"),
    (rf"\bsubtracted\s+({_NUM})\s+(?:\w+\s+){{0,3}}?from\s+({_NUM})", r"\2 - \1"),
    (rf"\badded\s+({_NUM})\s+(?:\w+\s+){{0,3}}?(?:and|to)\s+({_NUM})", r"\1 + \2"),
    (r"\bdivided\s+by\b", "/"),
    (r"\bmultiplied\s+by\b|(?<=\d)\s+times\s+(?=\$?[\d.])", " * "),
    (r"\bplus\b", "+"),
    (r"\bminus\b", "-"),
    (r"\b(?:equals?|is\s+equal\s+to|to\s+get|and\s+got|and\s+get|gives?|makes?|is|are|was)\b", "="),
]
_NUMBER_WORDS = {
    "half": Fraction(1, 2),
    "quarter": Fraction(1, 4),
    "fourth": Fraction(1, 4),
    "fifth": Fraction(1, 5),
    "third": Fraction(1, 3),
    "twice": Fraction(2),
    "double": Fraction(2),
    "triple": Fraction(3),
    "dozen": Fraction(12),
    "one": Fraction(1),
    "two": Fraction(2),
    "three": Fraction(3),
    "four": Fraction(4),
    "five": Fraction(5),
    "six": Fraction(6),
    "seven": Fraction(7),
    "eight": Fraction(8),
    "nine": Fraction(9),
    "ten": Fraction(10),
    "eleven": Fraction(11),
    "twelve": Fraction(12),
    "hundred": Fraction(100),
}
_CLAUSE = re.compile(r"(?<=[.!?;])\s+|\n+|,\s+(?=so\b|and then\b|then\b|which\b)", re.I)


@dataclass(frozen=True)
class Step:
    """One calculation: ``expression`` (as written, with ``*`` and ``/``) gives ``value``."""

    expression: str
    value: Fraction
    text: str = ""  # the line or clause it was read from
    operands: tuple[Fraction, ...] = ()
    stated: Fraction | None = None  # what the writer said it gives (None: a bare quantity)

    @property
    def holds(self) -> bool:
        return self.stated is None or self.stated == self.value


@dataclass(frozen=True)
class Quantity:
    """A number the learner wrote outside any calculation ("he had $5 left")."""

    value: Fraction
    written: str
    text: str  # the clause around it


@dataclass
class Work:
    """The learner's work, in the order written: ``Step`` and ``Quantity`` items."""

    items: list[Step | Quantity] = field(default_factory=list)

    @property
    def steps(self) -> list[Step]:
        return [i for i in self.items if isinstance(i, Step)]

    @property
    def values(self) -> list[Fraction]:
        return [
            i.stated if isinstance(i, Step) and i.stated is not None else i.value
            for i in self.items
        ]


@dataclass(frozen=True)
class Divergence:
    """Where the work first leaves the solution. ``kind``: ``"arithmetic"`` (``step`` is false)
    or ``"value"`` (``quantity`` is neither given nor a value of the solution; ``step`` is the
    calculation that produced or used it, when there is one). ``clause``: the learner's words."""

    kind: str
    quantity: Fraction
    written: str
    clause: str
    step: Step | None = None


def number(text: str) -> Fraction | None:
    """``"$1,500.50"`` -> 1500.5, ``"20%"`` -> 20 (as written), ``".05"`` -> 1/20."""
    raw = text.strip().lstrip("$").rstrip("%").replace(",", "")
    try:
        return Fraction(raw) if raw else None
    except (ValueError, ZeroDivisionError):
        return None


def fmt(value: Fraction) -> str:
    """A value as a learner would write it: ``4``, ``2.5``, ``0.05``; ``1/3`` when it has no
    short decimal."""
    if value.denominator == 1:
        return str(value.numerator)
    for places in range(1, 7):
        if (value * 10**places).denominator == 1:
            return f"{float(value):.{places}f}"
    return f"{value.numerator}/{value.denominator}"


def evaluate(expression: str) -> Fraction | None:
    """The exact value of an arithmetic expression of numbers, ``+ - * /`` and brackets; None
    when it is anything else, too long, too big or divides by zero."""
    expr = expression.translate(_SYMBOLS).replace("$", "").replace(",", "").strip()
    expr = re.sub(r"(\d+(?:\.\d+)?|\.\d+)%", r"(\1/100)", expr)
    if not expr or len(expr) > MAX_EXPR_CHARS or not re.fullmatch(r"[\d.\s+\-*/()]+", expr):
        return None
    try:
        tree = ast.parse(expr, mode="eval")
        return _eval(tree.body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None


def _eval(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        a, b = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Add):
            out = a + b
        elif isinstance(node.op, ast.Sub):
            out = a - b
        elif isinstance(node.op, ast.Mult):
            out = a * b
        else:
            out = a / b
        if len(str(out.numerator)) > MAX_DIGITS or len(str(out.denominator)) > MAX_DIGITS:
            raise ValueError("too big")
        return out
    raise ValueError("not arithmetic")


# -- reading claims --------------------------------------------------------------------------


def _normalize(text: str) -> str:
    s = text.translate(_SYMBOLS)
    s = re.sub(r"\b\d{1,2}:\d{2}\b", " clock ", s)  # a time of day is not a quantity here
    s = re.sub(r"(?<=[A-Za-z\d])/(?=[A-Za-z])", " per ", s)  # "4 quarts/gallon", "$50/quart"
    s = re.sub(r"(?<=\d)\s*[xX]\s*(?=\$?[\d.])", " * ", s)  # "40 x .05", "2x3"
    for pattern, repl in _VERBAL:
        s = re.sub(pattern, repl, s, flags=re.I)
    return s


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    for m in _TOKEN.finditer(text):
        out.append((m.lastgroup or "punct", m.group(0)))
    return out


def _back_to_number(tokens: list[tuple[str, str]], i: int, max_words: int) -> int:
    """The index of the number at or before ``i``, skipping up to ``max_words`` words (units);
    -1 when there is none."""
    skipped = 0
    while i >= 0 and tokens[i][0] == "word" and skipped < max_words:
        i, skipped = i - 1, skipped + 1
    return i if i >= 0 and tokens[i][0] == "num" else -1


def _left_side(tokens: list[tuple[str, str]], eq: int) -> tuple[list[str], int] | None:
    """The calculation that ends before the ``=`` at ``eq``: its parts (numbers and operators,
    words between them skipped) and the index where it starts; None without an operator."""
    j = _back_to_number(tokens, eq - 1, 5)
    if j < 0:
        return None
    parts, start = [tokens[j][1]], j
    while True:
        k = j - 1
        words = 0
        while k >= 0 and tokens[k][0] == "word" and words < 3:
            k, words = k - 1, words + 1
        if k < 0 or tokens[k][0] != "op" or tokens[k][1] not in "+-*/":
            break
        n = _back_to_number(tokens, k - 1, 3)
        if n < 0:
            break
        parts[:0] = [tokens[n][1], tokens[k][1]]
        j = start = n
    return (parts, start) if len(parts) >= 3 else None


def _right_side(tokens: list[tuple[str, str]], eq: int) -> tuple[Fraction | None, list[int]]:
    """The value stated after the ``=`` at ``eq`` (a number, or a fraction ``6/8`` not followed
    by more arithmetic) and the token indexes it uses."""
    k = eq + 1
    if k >= len(tokens) or tokens[k][0] != "num":
        return None, []
    value = number(tokens[k][1])
    frac = tokens[k + 1 : k + 4]
    if (
        value is not None
        and len(frac) >= 2
        and frac[0] == ("op", "/")
        and frac[1][0] == "num"
        and not (len(frac) == 3 and frac[2][0] == "op" and frac[2][1] in "+-*/")
    ):
        den = number(frac[1][1])
        if den:
            return value / den, [k, k + 2]
    return value, [k]


def _claims(text: str) -> list[tuple[Step, set[int]]]:
    """The ``a op b = c`` claims of one clause, with the token indexes they use."""
    tokens = _tokens(_normalize(text))
    out: list[tuple[Step, set[int]]] = []
    for eq, (kind, val) in enumerate(tokens):
        if kind != "op" or val != "=":
            continue
        left = _left_side(tokens, eq)
        stated, right = _right_side(tokens, eq)
        if left is None or stated is None:
            continue
        parts, start = left
        expression = " ".join(p.replace("$", "") for p in parts)
        value = evaluate(expression)
        if value is None:
            continue
        operands = tuple(v for p in parts[0::2] if (v := number(p)) is not None)
        used = {i for i in range(start, eq) if tokens[i][0] == "num"} | set(right)
        out.append((Step(expression, value, text.strip(), operands, stated), used))
    return out


def clauses(text: str) -> list[str]:
    """``text`` cut into clauses (sentences, and ", so ..." / ", then ..." parts)."""
    return [c.strip() for c in _CLAUSE.split(text or "") if c and c.strip()]


def solution_steps(text: str) -> list[Step]:
    """The steps of a worked solution (module docstring); [] when it states none."""
    sol = text or ""
    annotated = []
    for m in _ANNOTATION.finditer(sol):
        value, stated = evaluate(m.group(1)), number(m.group(2))
        if value is not None and stated is not None and value == stated:
            end = sol.find("\n", m.end())
            line = sol[sol.rfind("\n", 0, m.start()) + 1 : end if end >= 0 else len(sol)]
            operands = tuple(
                v for p in re.findall(r"\d+(?:\.\d+)?|\.\d+", m.group(1)) if (v := number(p))
            )
            annotated.append(Step(m.group(1).strip(), value, _ANNOTATION.sub("", line), operands))
    if annotated:
        return annotated
    steps: list[Step] = []
    for line in (sol.split("####")[0]).splitlines():
        for clause in clauses(line):
            steps.extend(s for s, _ in _claims(clause) if s.holds)
    return steps


def parse_work(text: str) -> Work:
    """The learner's work (module docstring): calculations and bare quantities, in order."""
    work = Work()
    for clause in clauses(text):
        found = _claims(clause)
        used = set().union(*(u for _, u in found)) if found else set()
        tokens = _tokens(_normalize(clause))
        by_start = sorted(found, key=lambda f: min(f[1]))
        for i, (kind, val) in enumerate(tokens):
            while by_start and min(by_start[0][1]) <= i:
                work.items.append(by_start.pop(0)[0])
            if kind == "num" and i not in used and (v := number(val)) is not None:
                work.items.append(Quantity(v, val, clause))
        work.items.extend(s for s, _ in by_start)
    return work


def givens(problem: str) -> set[Fraction]:
    """The numbers a problem gives: written in digits or as common number words ("half",
    "twice", "a dozen", "three")."""
    found = {
        v
        for kind, val in _tokens(problem or "")
        if kind == "num" and (v := number(val)) is not None
    }
    for word in re.findall(r"[a-z]+", (problem or "").lower()):
        if word in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[word])
    return found


def first_divergence(solution: list[Step], work: Work, given: set[Fraction]) -> Divergence | None:
    """The first item of ``work`` that leaves ``solution`` (module docstring); None when none
    does."""
    known = set(given) | {Fraction(1), Fraction(100)}
    for s in solution:
        known.add(s.value)
        known.update(s.operands)
    for item in work.items:
        if isinstance(item, Quantity):
            if item.value not in known:
                return Divergence("value", item.value, item.written, item.text)
            continue
        for op in item.operands:
            if op not in known:
                return Divergence("value", op, fmt(op), item.text, item)
        if not item.holds:
            stated = item.stated if item.stated is not None else item.value
            return Divergence("arithmetic", stated, fmt(stated), item.text, item)
        if item.value not in known:
            return Divergence("value", item.value, fmt(item.value), item.text, item)
    return None


def equation_steps(expression: str) -> list[Step]:
    """The steps of a problem the tutor solved itself: ``a*x + b = c`` (undo the constant,
    then the factor) or an arithmetic expression (each operation, innermost first)."""
    expr = (expression or "").translate(_SYMBOLS).replace(" ", "")
    m = re.fullmatch(r"([-+]?\d*)\*?x([-+]\d+)?=([-+]?\d+)", expr)
    if m:
        a = Fraction(m[1] + "1" if m[1] in ("", "+", "-") else m[1])
        b, c = Fraction(m[2] or 0), Fraction(m[3])
        if a == 0:
            return []
        steps = []
        rest = c - b
        if b:
            steps.append(
                Step(f"{m[3]} {'-' if b > 0 else '+'} {abs(b)}", rest, expression, (c, abs(b)))
            )
        if a != 1:
            steps.append(Step(f"{fmt(rest)} / {fmt(a)}", rest / a, expression, (rest, a)))
        return steps
    try:
        tree = ast.parse(expr.replace("^", "**"), mode="eval")
    except (SyntaxError, ValueError):
        return []
    out: list[Step] = []

    def walk(node: ast.AST) -> None:
        if isinstance(node, ast.BinOp):
            walk(node.left)
            walk(node.right)
            seg = ast.get_source_segment(expr, node) or ""
            value = evaluate(seg)
            plain = isinstance(node.op, ast.Div) and all(
                isinstance(n, ast.Constant) for n in (node.left, node.right)
            )
            if value is not None and not plain:  # "3/4" is a number, not a step
                ops = tuple(v for p in re.findall(r"\d+(?:\.\d+)?", seg) if (v := number(p)))
                out.append(Step(seg, value, expression, ops))

    walk(tree.body)
    return out
