"""Arithmetic and algebraic claims in tutor text, checked with sympy under size bounds.

``find_claims(sentence)`` reads the claims a sentence states: ``a op b = c``, chains
(``2 + 3 = 5 = 10/2``), the words people use for them (``3 × 4 is 12``, ``7 times 6 equals
42``, ``20% of 50 is 10``, ``√16 = 4``), quantities with units the grader knows (``3.5 km =
3500 m``) and ``x = 5`` for a variable of a known equation. ``check_claim`` returns
``True`` (holds), ``False`` (does not) or ``None`` (unverified: unparsable, too big, nothing to
check it against). A verifier error is never raised: it is ``None``.

Conditional forms ("if x = 5", "let x = 5", "suppose …") state no claim and are skipped.
Bounds (checked before sympy computes anything big): at most ``MAX_TOKENS`` tokens per side,
exponents up to ``MAX_EXPONENT``, results up to ``MAX_DIGITS`` digits, expressions in the unknowns
up to degree ``MAX_POLY_DEGREE`` in at most ``MAX_SYMBOLS`` of them, equations solved up to
degree ``MAX_DEGREE``; beyond them a claim is unverified. There is no wall-clock timeout (sympy
cannot be interrupted from another thread); the bounds keep a check in milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tutor.grading import parse_unit

MAX_TOKENS = 40
MAX_EXPONENT = 64
MAX_DIGITS = 300
MAX_DEGREE = 4
MAX_POLY_DEGREE = 12
MAX_SYMBOLS = 3

_WORD_OPS = [
    # "equals approximately 7.8", "is about 7.8": a rounded value, checked as "≈"
    (
        r"\b(?:(?:is|are)\s+(?:equal\s+to\s+)?|equals?\s+|gives\s+|makes\s+)?"
        r"(?:approximately|approx\.?|about|roughly|around|nearly|almost)(?=\s*[$\d.])",
        " ~ ",
    ),
    (r"\bmultiplied\s+by\b", " * "),
    (r"\bdivided\s+by\b", " / "),
    (r"\btimes\b", " * "),
    (r"\bplus\b", " + "),
    (r"\bminus\b", " - "),
    (r"\bsquare\s+root\s+of\b", " sqrt "),
    (r"\bis\s+(?:equal\s+to|the\s+same\s+as)\b", " = "),
    (r"\bequals?\b", " = "),
    (r"\bgives\b", " = "),
    (r"\bmakes\b", " = "),
    (r"\b(?:is|are)\b", " is "),
]
_SYMBOLS = str.maketrans(
    {"×": "*", "·": "*", "⋅": "*", "∗": "*", "÷": "/", "−": "-", "–": "-", "≈": "~", "√": " sqrt "}
)
_CONDITIONAL = re.compile(
    r"\b(?:if|let|suppose|assume|assuming|when|whether|unless|try|guess|say)\b", re.I
)
_TOKEN = re.compile(
    r"(?P<num>\$?\d+(?:,\d{3})*(?:\.\d+)?|\$?\.\d+)(?P<pct>\s*%)?"
    r"|(?P<op>\*\*|[-+*/^()=~])"
    r"|(?P<word>[a-z]+)"
    r"|(?P<other>\S)"
)
_EQ_WORDS = {"=": "=", "~": "~", "is": "is"}
_OPEN = {"+", "-", "*", "/", "**", "(", "sqrt"}
_LABELS = {"step", "problem", "question", "part", "number", "page", "example", "exercise", "line"}
_NOT_UNITS = {"in", "at", "a", "s", "h", "t"}


@dataclass(frozen=True)
class Claim:
    """One stated chain ``sides[0] = sides[1] = ...`` (each side in Python syntax)."""

    text: str  # as written, for reports
    sides: tuple[str, ...]
    approx: tuple[bool, ...]  # per link: written with "≈" (a rounded value is fine)
    units: bool = False  # some side carries a unit


@dataclass
class _Side:
    parts: list[str]
    has_op: bool = False
    has_var: bool = False
    has_unit: bool = False
    decimals: int = 0


def _normalize(sentence: str) -> str:
    s = sentence.translate(_SYMBOLS).lower().replace("²", "^2").replace("³", "^3")
    s = re.sub(r"\$([^$]*)\$", r" \1 ", s)  # $...$ math markup
    s = s.replace("\\times", "*").replace("\\cdot", "*").replace("\\div", "/")
    s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", s)
    s = re.sub(r"(\d+):(\d+)", r"(\1/\2)", s)  # a ratio "3:4" is the number 3/4
    for pattern, repl in _WORD_OPS:
        s = re.sub(pattern, repl, s)
    return s


def _unit_at(words: list[str]) -> tuple[str, int]:
    """The unit starting the word list (two words tried first): (key, words used)."""
    for n in (2, 1):
        if len(words) >= n:
            u = parse_unit(" ".join(words[:n]))
            if u is not None:
                return u.key, n
    return "", 0


def _tokens(s: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for m in _TOKEN.finditer(s):
        kind = "num" if m.group("num") is not None else (m.lastgroup or "other")
        if kind == "num":
            raw = m.group("num").replace("$", "").replace(",", "")
            out.append(("num", raw + ("%" if m.group("pct") else "")))
        elif kind == "op":
            out.append(("op", "^" if m.group(0) == "**" else m.group(0)))
        else:
            out.append((kind, m.group(0)))
    return out


def _split_sides(tokens: list[tuple[str, str]], variables: frozenset[str]) -> list[list[Any]]:
    """Runs of math tokens; each run is a list of sides and the links between them."""
    runs: list[list[Any]] = []
    cur: list[Any] = []
    side = _Side([])
    i = 0

    def close_run() -> None:
        nonlocal cur, side
        if side.parts:
            cur.append(side)
        elif cur and isinstance(cur[-1], str):
            cur.pop()  # a trailing "=" with nothing after it
        if len(cur) >= 3:
            runs.append(cur)
        cur, side = [], _Side([])

    while i < len(tokens):
        kind, val = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        prev = tokens[i - 1] if i else ("", "")
        if kind == "num" and prev[0] == "word" and prev[1] in _LABELS:
            close_run()  # "step 1", "page 12": a label, not a quantity
        elif kind == "num":
            if side.parts and side.parts[-1] not in _OPEN:
                close_run()
            value = val.rstrip("%")
            written = f"({value}/100)" if val.endswith("%") else value
            if side.parts and side.parts[-1] == "sqrt":
                side.parts[-1] = f"sqrt({written})"
            else:
                side.parts.append(written)
            if "." in value:
                side.decimals = len(value.split(".")[1])
            words = [w for k, w in tokens[i + 1 : i + 3] if k == "word"]
            words = (
                words if tokens[i + 1 : i + 1 + len(words)] == [("word", w) for w in words] else []
            )
            unit, used = _unit_at(words)
            if unit and words[0] not in _NOT_UNITS and words[0] not in variables:
                side.parts.append(f"*U[{unit!r}]")
                side.has_unit = True
                i += used
        elif kind == "op" and val in "+-*/^()":
            if val == "(" and side.parts and side.parts[-1] not in _OPEN:
                side.parts.append("*")  # "2(x + 3)"
            side.parts.append("**" if val == "^" else val)
            if val in "+-*/^":
                side.has_op = True
        elif kind == "word" and val == "sqrt" and nxt[0] in ("num", "op"):
            side.parts.append("sqrt")
            side.has_op = True
        elif kind == "word" and val == "of" and side.parts and nxt[0] == "num":
            side.parts.append("*")
            side.has_op = True
        elif kind == "word" and val == "x" and prev[0] == "num" and nxt[0] == "num":
            side.parts.append("*")  # "0.5 x 10"
            side.has_op = True
        elif kind == "word" and val in variables:
            if side.parts and side.parts[-1] not in _OPEN:
                side.parts.append("*")
            side.parts.append(val)
            side.has_var = True
        elif (kind == "op" and val in "=~") or (kind == "word" and val == "is"):
            if not side.parts:
                close_run()
            else:
                cur.append(side)
                cur.append(_EQ_WORDS[val])
                side = _Side([])
        else:
            close_run()
        i += 1
    close_run()
    return runs


def _claims_from_run(run: list[Any], text: str) -> list[Claim]:
    sides: list[_Side] = run[0::2]
    links: list[str] = run[1::2]
    claims: list[Claim] = []
    start = 0
    for j, link in enumerate(links):
        a, b = sides[j], sides[j + 1]
        bare_is = link == "is" and not (
            a.has_op or b.has_op or a.has_var or (a.has_unit and b.has_unit)
        )
        stated = a.has_op or b.has_op or a.has_var or b.has_var or a.has_unit or link != "is"
        if bare_is or not stated:
            if j + 1 - start >= 2:
                claims.append(_make(sides[start : j + 1], links[start:j], text))
            start = j + 1
    if len(sides) - start >= 2:
        claims.append(_make(sides[start:], links[start:], text))
    return claims


def _make(sides: list[_Side], links: list[str], text: str) -> Claim:
    return Claim(
        text=text.strip(),
        sides=tuple("".join(s.parts) for s in sides),
        approx=tuple(link == "~" for link in links),
        units=any(s.has_unit for s in sides),
    )


def find_claims(
    sentence: str, variables: frozenset[str] = frozenset(), *, conditionals: bool = False
) -> list[Claim]:
    """The arithmetic/algebraic claims stated in ``sentence`` (conditionals state none unless
    ``conditionals``: what follows "if", "when", "suppose", ... is not stated, what comes
    before it is: "18 * 4 = 64, when adding ..." states 18 * 4 = 64). ``variables``: the
    letters that name unknowns here."""
    cond = None if conditionals else _CONDITIONAL.search(sentence)
    stated = sentence[: cond.start()] if cond is not None else sentence
    if not stated.strip():
        return []
    s = _normalize(stated)
    # a lone letter before "=" names an unknown, unless it is a unit after a number ("4 m =")
    letters = variables | frozenset(
        m.group(1)
        for m in re.finditer(r"(?<![a-z])([a-z])\s*=", s)
        if not re.search(r"\d\s+$", s[: m.start()])
    )
    letters |= frozenset(re.findall(r"\d([a-z])(?![a-z])", s))  # "2x"
    letters = letters - {"a", "i"} if not (variables & {"a", "i"}) else letters
    tokens = _tokens(s)
    out: list[Claim] = []
    for run in _split_sides(tokens, letters):
        out.extend(_claims_from_run(run, sentence))
    return [c for c in out if all(c.sides)]


class _Unverifiable(Exception):
    """The claim cannot be checked within the bounds."""


def _too_big(v: Any) -> bool:
    import sympy

    if isinstance(v, sympy.Rational):
        return max(len(str(abs(v.p))), len(str(v.q))) > MAX_DIGITS
    return False


def _unit_symbol(key: str) -> Any:
    import sympy

    from tutor.grading import UNITS

    unit = UNITS[key]
    if unit.dim[4]:
        raise _Unverifiable("temperature conversions have an offset")
    dims = sympy.symbols("L M T D K", positive=True)
    out = sympy.Rational(unit.factor.numerator, unit.factor.denominator)
    for d, p in zip(dims, unit.dim, strict=True):
        out *= d**p
    return out


def _evaluate(side: str, use_units: bool) -> Any:
    """The side as a sympy value (exact rationals), within the bounds; ``_Unverifiable``."""
    import ast

    import sympy

    if len(re.findall(r"[\d.]+|[a-z]+|\S", side)) > MAX_TOKENS:
        raise _Unverifiable("too long")
    try:
        tree = ast.parse(side, mode="eval")
    except (SyntaxError, ValueError) as e:
        raise _Unverifiable("unparsable") from e

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return sympy.Rational(str(node.value))
        if isinstance(node, ast.Name) and len(node.id) == 1:
            return sympy.Symbol(node.id)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            return _unit_symbol(str(node.slice.value)) if use_units else sympy.Integer(1)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = walk(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1:
            if node.func.id == "sqrt":
                return sympy.sqrt(walk(node.args[0]))
        if isinstance(node, ast.BinOp):
            return _binop(node.op, walk(node.left), walk(node.right))
        raise _Unverifiable(f"unsupported {type(node).__name__}")

    if _degree(tree.body) > MAX_POLY_DEGREE:
        raise _Unverifiable("polynomial of too high a degree")
    value = walk(tree.body)
    if len(value.free_symbols) > MAX_SYMBOLS:
        raise _Unverifiable("too many unknowns")
    if _too_big(value):
        raise _Unverifiable("too big")
    return value


def _degree(node: Any) -> float:
    """An upper bound of the polynomial degree in the unknowns (units count 0), before any
    expansion: "(2x + 2y)^64" is refused without being multiplied out."""
    import ast

    if isinstance(node, ast.Name):
        return 1
    if isinstance(node, ast.UnaryOp):
        return _degree(node.operand)
    if isinstance(node, ast.Call):
        return max((_degree(a) for a in node.args), default=0)
    if isinstance(node, ast.BinOp):
        left, right = _degree(node.left), _degree(node.right)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return max(left, right)
        if isinstance(node.op, ast.Pow):
            if right:
                return float("inf")
            exp = node.right
            n = exp.value if isinstance(exp, ast.Constant) else MAX_EXPONENT
            return left * abs(n) if isinstance(n, (int, float)) else float("inf")
        return left + right
    return 0


def _binop(op: Any, a: Any, b: Any) -> Any:
    import ast

    if isinstance(op, ast.Pow):
        if not (b.is_Integer and abs(int(b)) <= MAX_EXPONENT):
            raise _Unverifiable("exponent too big")
        if a.is_Rational and abs(int(b)) * len(str(max(abs(a.p), a.q))) > MAX_DIGITS:
            raise _Unverifiable("power too big")
        out = a**b
    elif isinstance(op, ast.Add):
        out = a + b
    elif isinstance(op, ast.Sub):
        out = a - b
    elif isinstance(op, ast.Mult):
        out = a * b
    elif isinstance(op, ast.Div):
        if b == 0:
            raise _Unverifiable("division by zero")
        out = a / b
    else:
        raise _Unverifiable("unsupported operator")
    if _too_big(out):
        raise _Unverifiable("too big")
    return out


def _written_decimals(side: str) -> int | None:
    """Decimal places of a side that is one written decimal ("3.33"), else None."""
    m = re.fullmatch(r"\(?-?\d+\.(\d+)\)?(?:\*U\[.*\])?", side)
    return len(m.group(1)) if m else None


def _equal(a: Any, b: Any, sa: str, sb: str, approx: bool) -> bool:
    import sympy

    d = sympy.simplify(a - b) if (a.free_symbols or b.free_symbols) else a - b
    if d == 0:
        return True
    if d.free_symbols:
        raise _Unverifiable("depends on a variable")
    # a rounded decimal is fine: "10/3 = 3.33", "22/7 ≈ 3.14"
    places = [p for p in (_written_decimals(sa), _written_decimals(sb)) if p is not None]
    tol = sympy.Rational(1, 2) / 10 ** min(places) if places else 0
    if approx:
        tol = max(tol, sympy.Rational(1, 100) * max(abs(a), abs(b)))
    value = abs(sympy.N(d, 30))
    if not value.is_finite:
        raise _Unverifiable("not finite")
    return bool(value <= tol + sympy.Float(1e-12) if tol else value < sympy.Float(1e-20))


def _solutions(equations: tuple[str, ...]) -> dict[Any, set[Any]]:
    """Each variable's solutions from the known equations (bounded degree)."""
    import sympy

    out: dict[Any, set[Any]] = {}
    for eq in equations:
        if eq.count("=") != 1:
            continue
        letters = frozenset(re.findall(r"[a-z]", eq.lower()))
        claims = find_claims(eq.replace("=", " = "), letters, conditionals=True)
        for c in claims[:1]:
            try:
                lhs, rhs = (_evaluate(s, False) for s in c.sides[:2])
                expr = sympy.expand(lhs - rhs)
                syms = list(expr.free_symbols)
                if len(syms) != 1 or sympy.degree(expr, syms[0]) > MAX_DEGREE:
                    continue
                out.setdefault(syms[0], set()).update(sympy.solve(expr, syms[0]))
            except Exception:
                continue
    return out


def check_claim(claim: Claim, equations: tuple[str, ...] = ()) -> bool | None:
    """True when every link of the chain holds, False when one does not, None when it cannot
    be checked (never raises). ``equations``: the problem's equations, for ``x = 5``."""
    try:
        return _check(claim, equations)
    except _Mismatch:
        return False
    except _Unverifiable:
        return None
    except Exception:  # a sympy failure is an unverified claim, never a crashed turn
        return None


def _check(claim: Claim, equations: tuple[str, ...]) -> bool:
    unit_keys = set(re.findall(r"U\['([^']*)'\]", "".join(claim.sides)))
    use_units = len(unit_keys) > 1
    if use_units and any("U[" not in s for s in claim.sides):
        raise _Unverifiable("a side without a unit next to converted units")
    values = [_evaluate(s, use_units) for s in claim.sides]
    if use_units:
        values = _drop_dimensions(values)
    symbols = set().union(*(v.free_symbols for v in values))
    if symbols:
        return _check_with_variables(claim, values, equations)
    return all(
        _equal(values[j], values[j + 1], claim.sides[j], claim.sides[j + 1], claim.approx[j])
        for j in range(len(values) - 1)
    )


def _drop_dimensions(values: list[Any]) -> list[Any]:
    """Quantities in base units -> plain numbers, after checking that every side has the same
    dimension (``_Mismatch`` otherwise: "3 m = 3 kg" is false)."""
    import sympy

    dims = set(sympy.symbols("L M T D K", positive=True))
    for a, b in zip(values, values[1:], strict=False):
        if b == 0 or a == 0:
            continue
        if sympy.simplify(a / b).free_symbols & dims:
            raise _Mismatch("the sides have different dimensions")
    return [v.subs({d: 1 for d in dims}) for v in values]


class _Mismatch(Exception):
    """The sides of a claim measure different things: the claim is false."""


def _check_with_variables(claim: Claim, values: list[Any], equations: tuple[str, ...]) -> bool:
    """Identities hold for every value ("2(x + 3) = 2x + 6"); otherwise each link must hold
    at the solution of the problem's equation ("x = 4" for "2x + 3 = 11")."""
    import sympy

    if all(sympy.expand(values[j] - values[j + 1]) == 0 for j in range(len(values) - 1)):
        return True
    sols = _solutions(equations)
    symbols = set().union(*(v.free_symbols for v in values))
    if not sols or not symbols <= {s for s in sols if len(sols[s]) == 1}:
        raise _Unverifiable("no equation fixes the variable")
    subs = {s: next(iter(sols[s])) for s in symbols}
    sides = [v.subs(subs) for v in values]
    return all(
        _equal(sides[j], sides[j + 1], claim.sides[j], claim.sides[j + 1], claim.approx[j])
        for j in range(len(sides) - 1)
    )


def problem_equations(text: str) -> tuple[str, ...]:
    """The equations with an unknown that ``text`` states ("Solve 2x + 3 = 11" -> "2*x+3 = 11"),
    in the form ``check_claim`` takes as ``equations``."""
    if not text or len(text) > 2000:
        return ()
    out = []
    letters = frozenset(re.findall(r"(?<![a-z])([a-z])(?![a-z'])", text.lower())) - {"a", "i"}
    for claim in find_claims(text.replace("?", "."), letters, conditionals=True):
        if len(claim.sides) == 2 and re.search(r"[a-z]", "".join(claim.sides).replace("U[", "")):
            out.append(f"{claim.sides[0]} = {claim.sides[1]}")
    return tuple(out)
