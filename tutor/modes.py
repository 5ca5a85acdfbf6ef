"""Which kind of turn is this? Explicit choice first, then plain, testable rules on the text.

The rules, in order (the first that matches decides; ``Intent.rule`` names it):

1. ``unsafe``      - harmful requests get a short, kind redirect (``tutor.safety``).
2. ``explicit``    - the learner picked a mode (UI switch, ``/mode``): it is used.
3. ``solution``    - "show me the answer / solution" while a problem is open.
4. ``hint``        - "hint", "I'm stuck", "help", "I don't know" while a problem is open.
5. ``practice``    - "give me a problem", "quiz me", "practice", "next one".
6. ``work``        - a problem is open and the message shows a calculation with a result
                     ("24 x 14 = 336", "2x = 8"): guide mode, not graded as an answer.
   ``attempt``     - a problem is open and the message reads as an answer ("3/4", "x = 4",
                     "is it 12?", "I got 0.75", "B").
7. ``problem``     - the message poses a problem the tutor can solve itself ("what is 3/4 + 1/8",
                     "solve 2x + 3 = 11"): guide mode with that problem opened. While a problem
                     is open, only a message phrased as a new question opens another; working
                     such as "24 x 14 = 336" is rule ``work`` (guide mode, no grading).
   (``greeting`` is checked just before ``attempt``, so "hello" is never graded.)
8. ``offtopic``    - small talk and requests outside school topics.
9. ``question``    - everything else is a question about the course: explain mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tutor.safety import is_unsafe

_HINT = re.compile(
    r"\b(hint|clue|help( me)?|i'?m stuck|stuck|i (do not|don'?t) (know|get it|understand)|no idea|not sure|next step|what do i do)\b",
    re.I,
)
_SOLUTION = re.compile(
    r"\b((show|tell|give) me the (answer|solution|result)|what('?s| is) the (answer|solution)|"
    r"(just )?give (it|me it) to me|full solution|i give up|solve it for me)\b",
    re.I,
)
_PRACTICE = re.compile(
    r"\b(practi[cs]e|quiz me|test me|give me (a|another|one more) (problem|question|exercise|one)|"
    r"(another|next|new) (one|problem|question|exercise)|exercise)\b",
    re.I,
)
_GREETING = re.compile(
    r"^\s*(hi|hello|hey|good (morning|afternoon|evening)|thanks|thank you|bye|goodbye)\b[\s!.,?]*$",
    re.I,
)
_OFFTOPIC = re.compile(
    r"\b(joke|football|soccer|basketball|video ?games?|fortnite|minecraft|movie|tv show|netflix|"
    r"celebrity|girlfriend|boyfriend|dating|crush|weather|song|music|lyrics|favou?rite (color|colour|food|team)|"
    r"your name|how old are you|are you (a )?(robot|human|real)|bitcoin|stock market|politics?|election)\b",
    re.I,
)
_ANSWERISH = re.compile(
    r"^\s*(?:(?:is it|i got|i get|i think (it'?s|it is)?|it'?s|it is|my answer is|answer:?|maybe|so|then|=)\s*)?"
    r"(?P<ans>[-+]?\s*[\d.,/ ]+\s*%?\s*[a-zA-Z²³^0-9]{0,6}|[a-eA-E]|[a-z]\s*=\s*[-+]?[\d./]+|[\w\s^*/+()-]{1,40})\s*[?.!]?\s*$",
    re.I,
)
_ANSWER_PREFIX = re.compile(
    r"^\s*(is it|i got|i get|i think (that )?(it'?s|it is|the answer is)?|it'?s|it is|my answer is|"
    r"the answer is|answer:?|maybe|so|then|=)\s*",
    re.I,
)
# At most ~100 characters per candidate (``solve`` takes 80): unbounded, a long run like
# "( ( ( ..." with no closing digit made every start position scan to the end (4000 characters
# took 2 s).
_COMPUTE = re.compile(
    r"(?P<expr>(?:solve\s+)?[-+(]?\s*[\dx(][\dx\s.+\-*/^()×÷=]{0,100}[\d)x])", re.I
)


@dataclass(frozen=True)
class Intent:
    mode: str  # explain | guide | practice | offtopic
    rule: str  # which rule matched
    action: str = ""  # hint | solution | next_item | grade | open_problem | greet | ""


def looks_like_answer(message: str) -> bool:
    """A short message that reads as an answer attempt, not a question or a request."""
    text = message.strip()
    if not text or len(text) > 60:
        return False
    if _HINT.search(text) or _SOLUTION.search(text) or _PRACTICE.search(text):
        return False
    lowered = text.lower()
    if re.match(r"^(what|why|how|when|where|who|which|can|could|explain|tell)\b", lowered):
        return False
    if re.search(r"\d", text) or re.fullmatch(r"[a-eA-E][).]?", text):
        return True
    # word answers ("three quarters", "evaporation", "is it chlorophyll?")
    core = _ANSWER_PREFIX.sub("", lowered).strip(" ?.!")
    return 0 < len(core.split()) <= 4 and not _GREETING.match(text)


# A number as learners write one in words around it: 3, 2.5, 3/4, 1 1/2 (a mixed number).
# Starts only where a number starts and never gives digits back, so a long run of digits is
# scanned once, not once per position.
_NUM = r"(?<![\d.])(?:\d++\s++\d++\s*+/\s*+\d++|\d++(?:\.\d++)?+(?:\s*+/\s*+\d++)?+)"
# Operations said in words ("add 1/2 and 1/3", "subtract 2 from 9", "multiply 3/4 by 8"):
# (pattern, template) with A and B the numbers in the order the template uses them.
_VERBAL = [
    (rf"\b(?:add|sum of|total of)\s+(?P<a>{_NUM})\s+(?:and|plus|to)\s+(?P<b>{_NUM})", "{a} + {b}"),
    (
        rf"\b(?:subtract|take away|take)\s+(?P<b>{_NUM})\s+(?:from|away from)\s+(?P<a>{_NUM})",
        "{a} - {b}",
    ),
    (rf"\bdifference (?:between|of)\s+(?P<a>{_NUM})\s+and\s+(?P<b>{_NUM})", "{a} - {b}"),
    (rf"\b(?:multiply)\s+(?P<a>{_NUM})\s+(?:by|and|times)\s+(?P<b>{_NUM})", "{a} * {b}"),
    (rf"\bproduct of\s+(?P<a>{_NUM})\s+and\s+(?P<b>{_NUM})", "{a} * {b}"),
    (rf"\bdivide\s+(?P<a>{_NUM})\s+(?:by|into)\s+(?P<b>{_NUM})", "{a} / ({b})"),
    (rf"\bquotient of\s+(?P<a>{_NUM})\s+and\s+(?P<b>{_NUM})", "{a} / ({b})"),
    (rf"(?P<a>{_NUM})\s+(?:plus)\s+(?P<b>{_NUM})", "{a} + {b}"),
    (rf"(?P<a>{_NUM})\s+(?:minus)\s+(?P<b>{_NUM})", "{a} - {b}"),
    (rf"(?P<a>{_NUM})\s+(?:times|multiplied by)\s+(?P<b>{_NUM})", "{a} * {b}"),
    (rf"(?P<a>{_NUM})\s+divided by\s+(?P<b>{_NUM})", "{a} / ({b})"),
]
_VERBAL_RE = [(re.compile(p, re.I), t) for p, t in _VERBAL]
_VERBAL_WORD = re.compile(
    r"\b(add|sum|total|subtract|take|difference|multipl|product|divide|quotient|plus|minus|times)",
    re.I,
)


def _operand(num: str) -> str:
    """A mixed number "1 1/2" becomes "(1 + 1/2)"; other numbers stay as written."""
    m = re.fullmatch(r"(\d+)\s+(\d+\s*/\s*\d+)", num.strip())
    return f"({m.group(1)} + {m.group(2)})" if m else num.strip()


def _verbal_problem(text: str) -> str | None:
    if len(text) > 500 or not _VERBAL_WORD.search(text):  # one short sentence, in words
        return None
    for rx, template in _VERBAL_RE:
        m = rx.search(text)
        if m:
            return template.format(a=_operand(m.group("a")), b=_operand(m.group("b")))
    return None


def computable_problem(message: str) -> str | None:
    """The arithmetic/algebra problem in a message, when there is one the tutor can solve
    exactly ("What is 3/4 + 1/8?" -> "3/4 + 1/8"; "solve 2x + 3 = 11" -> "2x + 3 = 11";
    "How do I add 1/2 and 1/3?" -> "1/2 + 1/3")."""
    text = message.replace("×", "*").replace("÷", "/")
    verbal = _verbal_problem(text)
    if verbal:
        return verbal
    text = re.sub(r"(?<=\d)\s+[xX]\s+(?=\d)", " * ", text)  # "24 x 14" multiplies
    pct = re.search(r"(\d+(?:\.\d+)?)\s*(?:%|percent)\s+of\s+(\d+(?:\.\d+)?)", text, re.I)
    if pct:
        return f"{pct.group(1)}/100 * {pct.group(2)}"
    best = None
    for m in _COMPUTE.finditer(text):
        expr = m.group("expr").strip()
        expr = re.sub(r"^solve\s+", "", expr, flags=re.I)
        has_op = re.search(r"\d\s*[-+*/^×÷]\s*[\d(x]|=|\dx|\)\s*\(", expr)
        # a bare number, fraction or "x = 4" is an answer, not a problem
        if re.fullmatch(r"[-+]?\s*[\d.]+\s*(/\s*[\d.]+)?|x\s*=\s*[-+]?[\d./]+", expr):
            continue
        if has_op and (best is None or len(expr) > len(best)):
            best = expr
    return best


# a calculation with a result: "24 x 14 = 336", "3/4 = 6/8" (but not "x = 4" or "= 12")
_WORKING = re.compile(
    r"[\d)]\s*[-+*/×÷xX^]\s*[\d(].*=|=.*[\d)]\s*[-+*/×÷xX^]\s*[\d(]|\d\s*/\s*\d+\s*=\s*\d|\d\s*[xX]\s*=\s*[-+]?\d"
)
_NEW_PROBLEM = re.compile(
    r"^\s*(what('?s| is)|solve|calculate|compute|work out|find|how much|evaluate|simplify)\b|\?\s*$",
    re.I,
)


def asks_new_problem(message: str) -> bool:
    """While a problem is open, only a message phrased as a new question opens another one:
    "24 x 14 = 336" is the learner's working, "what is 24 x 14?" is a new problem."""
    return bool(_NEW_PROBLEM.search(message))


def detect_intent(
    message: str, *, explicit_mode: str = "auto", problem_open: bool = False
) -> Intent:
    """Apply the rules in the module docstring, in order."""
    text = message.strip()
    if is_unsafe(text):
        return Intent("offtopic", "unsafe", "redirect")
    if explicit_mode in ("explain", "guide", "practice"):
        if explicit_mode == "practice" and not problem_open:
            return Intent("practice", "explicit", "next_item")
        if problem_open and explicit_mode != "explain":
            if _SOLUTION.search(text):
                return Intent(explicit_mode, "explicit", "solution")
            if _HINT.search(text):
                return Intent(explicit_mode, "explicit", "hint")
            if looks_like_answer(text):
                return Intent(explicit_mode, "explicit", "grade")
        if (
            explicit_mode == "guide"
            and computable_problem(text)
            and (not problem_open or asks_new_problem(text))
        ):
            return Intent("guide", "explicit", "open_problem")
        return Intent(explicit_mode, "explicit", "")
    if problem_open and _SOLUTION.search(text):
        return Intent("guide", "solution", "solution")
    if problem_open and _HINT.search(text):
        return Intent("guide", "hint", "hint")
    if _PRACTICE.search(text) and len(text) < 80:
        return Intent("practice", "practice", "next_item")
    if _GREETING.match(text):
        return Intent("offtopic", "greeting", "greet")
    if problem_open and _WORKING.search(text):
        return Intent("guide", "work", "")  # the learner shows a step of their working
    if problem_open and looks_like_answer(text):
        return Intent("practice", "attempt", "grade")
    if computable_problem(text) and (not problem_open or asks_new_problem(text)):
        return Intent("guide", "problem", "open_problem")
    if _OFFTOPIC.search(text):
        return Intent("offtopic", "offtopic", "redirect")
    return Intent("explain", "question", "")
