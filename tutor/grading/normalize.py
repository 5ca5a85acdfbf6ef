"""Text normalization shared by the readers: unicode math to ASCII, commas, lead-ins.

``normalize_text`` lowercases and turns unicode minus signs, vulgar fractions, superscripts and
LaTeX ``\\frac`` into plain ASCII math; ``_fix_commas`` reads thousands separators and decimal
commas; ``_trim`` and ``_LEAD_INS`` strip the words and punctuation around an answer
(``"I think it's 3/4."`` -> ``3/4``).
"""

from __future__ import annotations

import re
import unicodedata

_VULGAR = {
    "½": "1/2",
    "⅓": "1/3",
    "⅔": "2/3",
    "¼": "1/4",
    "¾": "3/4",
    "⅕": "1/5",
    "⅖": "2/5",
    "⅗": "3/5",
    "⅘": "4/5",
    "⅙": "1/6",
    "⅚": "5/6",
    "⅛": "1/8",
    "⅜": "3/8",
    "⅝": "5/8",
    "⅞": "7/8",
}
_CHAR_MAP = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",
    "\u2014": " - ",
    "\u00f7": "/",
    "\u2044": "/",  # fraction slash
    "\u2215": "/",
    "\u00d7": "*",
    "\u22c5": "*",
    "\u00b7": "*",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u2248": "=",
    "\u00a0": " ",
    "\u2019": "'",
    "\u00b5": "u",
    "\u03bc": "u",
}


def normalize_text(text: str) -> str:
    """Lowercase, plain ASCII-ish math: unicode minus/fractions/superscripts, LaTeX ``\\frac``."""
    s = unicodedata.normalize("NFC", str(text))
    for ch, rep in _VULGAR.items():
        s = s.replace(ch, f" {rep}")
    for ch, rep in _CHAR_MAP.items():
        s = s.replace(ch, rep)
    s = re.sub(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"(\1)/(\2)", s)
    s = s.replace("\\%", "%").replace("\\cdot", "*").replace("\\times", "*").replace("\\div", "/")
    s = re.sub(r"\\(?:left|right|,|;|!|quad|text\{([^{}]*)\})", r" \1 ", s)
    s = s.replace("$", " $ ") if re.search(r"\$\s*\d", s) else s.replace("$", " ")
    s = s.replace("{", "(").replace("}", ")").replace("\\", " ")
    # "(3)/(4)" from \frac with plain numbers -> "3/4"
    s = re.sub(r"\((-?\d+(?:\.\d+)?)\)\s*/\s*\((\d+(?:\.\d+)?)\)", r"\1/\2", s)
    s = s.lower()
    s = re.sub(r"(\d)\s+out\s+of\s+(\d)", r"\1/\2", s)
    s = re.sub(r"[^\S\n]+", " ", s)  # collapse spaces, keep line breaks (list labels)
    return re.sub(r" ?\n[\s]*", "\n", s).strip()


def _fix_commas(s: str, *, free_text: bool) -> str:
    """Thousands separators (``1,200``) are dropped; a decimal comma (``0,75``) becomes a point."""

    def repl(m: re.Match[str]) -> str:
        groups = m.group(0).split(",")
        if (
            len(groups[0]) <= 3
            and groups[0] != "0"
            and all(len(g) == 3 for g in groups[1:])
            and not (free_text and len(groups) == 2 and False)
        ):
            return "".join(groups)
        if len(groups) == 2:
            if free_text and not (groups[0] == "0" or len(groups[1]) <= 2):
                return m.group(0)
            return f"{groups[0]}.{groups[1]}"
        return m.group(0)  # a list like 1,2,3

    pattern = (
        r"(?<![\d,])\d+(?:,\d+)+(?![\d,])"
        if not free_text
        else r"(?<![\d.,])\d+(?:,\d+)+(?!\d|,\d)"
    )
    return re.sub(pattern, repl, s)


_LEAD_INS = re.compile(
    r"^(?:(?:so|well|um+|uh+|ok(?:ay)?|hmm+|i\s+think|i\s+got|i\s+get|i\s+guess|i\s+believe|"
    r"maybe|probably|my\s+answer\s+is|the\s+answer\s+is|answer\s*:|answer\s+is|final\s+answer\s*:?|"
    r"it'?s|it\s+is|that'?s|that\s+is|is|equals|=|would\s+be|should\s+be|the\s+result\s+is|"
    r"result\s*:|approximately|about|around|roughly)[\s,:]*)+"
)


def _trim(s: str) -> str:
    """Strip spaces and punctuation around an answer, keeping a leading point of ``.75``."""
    return re.sub(r"^(?:[\s!?;:]|\.(?!\d))+|[\s.!?;:]+$", "", s)
