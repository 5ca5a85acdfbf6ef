"""Numbers as learners write them: digits, fractions, mixed numbers, decimals, percents,
number words (``three quarters``, ``two and a half``) and a trailing unit.

``parse_number`` reads a whole answer as one number; ``find_numbers`` finds every number in free
text (skipping citation markers and list labels); ``format_number`` writes a canonical form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Literal

from tutor.grading.normalize import _LEAD_INS, _fix_commas, _trim, normalize_text
from tutor.grading.units import parse_unit

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
