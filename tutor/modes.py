"""Which kind of turn is this? Safety first, then the learner's explicit choice, then what the
message is: the trained intent model (``tutor.intents``: question, answer, step, hint,
solution, practice, new problem, greeting, off-topic, meta, given the conversation state) when
it is loaded with the bundled embedder, else the plain rules below. ``intent_from_label`` maps a
label to a turn: an answer is graded only with a problem open; a new problem is opened when the
tutor can solve it or it is a word problem (never graded: its answer is unknown), otherwise it
is a question for explain mode ("Convert 3.5 km to meters" is never an answer to the open
problem); a hint with nothing open gets a reply that says so and offers practice.

The rules, in order (the first that matches decides; ``Intent.rule`` names it):

1. ``unsafe``      - harmful requests get a short, kind redirect (``tutor.safety``).
2. ``explicit``    - the learner picked a mode (UI switch, ``/mode``): it is used.
3. ``solution``    - "show me the answer / solution" while a problem is open.
4. ``hint``        - "hint", "I'm stuck", "help", "I don't know" while a problem is open.
5. ``practice``    - "give me a problem", "quiz me", "practice", "next one".
6. ``work``        - a problem is open and the message shows a calculation with a result
                     ("24 x 14 = 336", "2x = 8") or states an intermediate quantity ("He sold
                     20 crates over the weekend."): guide mode, not graded as an answer.
   ``attempt``     - a problem is open and the message reads as an answer ("3/4", "x = 4",
                     "is it 12?", "I got 0.75", "B").
7. ``problem``     - the message poses a problem the tutor can solve itself ("what is 3/4 + 1/8",
                     "solve 2x + 3 = 11") or a word problem: guide mode with it opened. While a problem
                     is open, only a message phrased as a new question opens another; working
                     such as "24 x 14 = 336" is rule ``work`` (guide mode, no grading).
   (``greeting`` is checked just before ``attempt``, so "hello" is never graded.)
8. ``offtopic``    - small talk and requests outside school topics.
9. ``question``    - everything else is a question about the course: explain mode.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tutor.grading import reads_as_step
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
    r"(another|next|new) (one|problem|question|exercise)|exercise)\b|"
    r"^\s*(next|another|again|one more|more)\W*$",
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


_QUESTION = re.compile(
    r"\?\s*$|\b(?:how (?:many|much|long|far|old)|what is|what was|find|calculate|work out)\b", re.I
)


def is_word_problem(text: str) -> bool:
    """A message that poses a word problem: a question of ten words or more with at least two
    numbers in digits ("Sam sold 8 crates on each of 5 days ... How many did he sell?"), or of
    fifteen words or more with one ("48 of her friends ... half as many in May ...")."""
    words = re.findall(r"[A-Za-z']+", text or "")
    nums = re.findall(r"(?<![\w=.])\d+(?:[.,]\d+)?(?!=)", text or "")  # not "x=1", "h1"
    if not _QUESTION.search(text or ""):
        return False
    # one number is enough in a longer problem ("48 friends ... half as many in May")
    return len(words) >= 10 and len(nums) >= 2 or len(words) >= 15 and len(nums) >= 1


def asks_new_problem(message: str) -> bool:
    """While a problem is open, only a message phrased as a new question opens another one:
    "24 x 14 = 336" is the learner's working, "what is 24 x 14?" is a new problem."""
    return bool(_NEW_PROBLEM.search(message))


def detect_intent(
    message: str,
    *,
    explicit_mode: str = "auto",
    problem_open: bool = False,
    classifier: Callable[[str], str] | None = None,
) -> Intent:
    """Apply the rules in the module docstring, in order. With ``classifier`` (the trained
    intent model: message -> label, ``tutor.intents``), the label decides instead of the
    rules in auto mode, and decides answer / step / new problem in the explicit modes; safety
    stays a rule."""
    text = message.strip()
    if is_unsafe(text):
        return Intent("offtopic", "unsafe", "redirect")
    if classifier is not None:
        label = classifier(text)
        if explicit_mode in ("explain", "guide", "practice"):
            return _explicit_from_label(label, text, explicit_mode, problem_open)
        return intent_from_label(label, text, problem_open=problem_open)
    if explicit_mode in ("explain", "guide", "practice"):
        if explicit_mode == "practice" and not problem_open:
            return Intent("practice", "explicit", "next_item")
        if problem_open and explicit_mode != "explain":
            if _SOLUTION.search(text):
                return Intent(explicit_mode, "explicit", "solution")
            if _HINT.search(text):
                return Intent(explicit_mode, "explicit", "hint")
            if looks_like_answer(text) and not (explicit_mode == "guide" and reads_as_step(text)):
                return Intent(explicit_mode, "explicit", "grade")
        if (
            explicit_mode == "guide"
            and (computable_problem(text) or is_word_problem(text))
            and (not problem_open or asks_new_problem(text))
        ):
            return Intent("guide", "explicit", "open_problem")
        return Intent(explicit_mode, "explicit", "")
    return rule_intent(text, problem_open=problem_open)


def rule_intent(text: str, *, problem_open: bool = False) -> Intent:
    """Rules 3 to 9 (auto mode, after safety): the cascade the intent model replaces when it
    is loaded, kept for embedders it was not trained on and as the eval's baseline."""
    if problem_open and _SOLUTION.search(text):
        return Intent("guide", "solution", "solution")
    if problem_open and _HINT.search(text):
        return Intent("guide", "hint", "hint")
    if _PRACTICE.search(text) and len(text) < 80:
        return Intent("practice", "practice", "next_item")
    if _GREETING.match(text):
        return Intent("offtopic", "greeting", "greet")
    if problem_open and (_WORKING.search(text) or reads_as_step(text)):
        return Intent("guide", "work", "")  # the learner shows a step of their working
    if problem_open and looks_like_answer(text):
        return Intent("practice", "attempt", "grade")
    if (computable_problem(text) or is_word_problem(text)) and (
        not problem_open or asks_new_problem(text)
    ):
        return Intent("guide", "problem", "open_problem")
    if _OFFTOPIC.search(text):
        return Intent("offtopic", "offtopic", "redirect")
    return Intent("explain", "question", "")


def intent_from_label(label: str, text: str, *, problem_open: bool) -> Intent:
    """The turn for an intent label in auto mode (rule ``model:<label>``)."""
    rule = f"model:{label}"
    if label == "practice":
        return Intent("practice", rule, "next_item")
    if label == "greeting":
        return Intent("offtopic", rule, "greet")
    if label == "offtopic":
        return Intent("offtopic", rule, "redirect")
    if label == "meta":
        return Intent("offtopic", rule, "about")
    if label in ("hint", "solution"):
        return Intent("guide", rule, label if problem_open else "no_problem")
    if label == "answer":
        return Intent("practice", rule, "grade") if problem_open else _no_problem(rule, text)
    if label == "step":
        if problem_open:
            return Intent("guide", rule, "")  # working on the open problem: a guide move
        return Intent("guide", rule, "open_problem" if computable_problem(text) else "")
    if label == "new_problem":
        return _new_problem(rule, text)
    return Intent("explain", rule, "")


def _no_problem(rule: str, text: str) -> Intent:
    """An answer with nothing open: a problem in it is opened, else the no-problem reply."""
    if computable_problem(text):
        return Intent("guide", rule, "open_problem")
    return Intent("guide", rule, "no_problem")


def _new_problem(rule: str, text: str) -> Intent:
    """A problem the learner poses: opened when the tutor can solve it or it is a word
    problem (guide mode then plans it without judging an answer it cannot check); otherwise
    ("Convert 3.5 km to meters") a question for explain mode, never an answer to grade."""
    if computable_problem(text) or is_word_problem(text):
        return Intent("guide", rule, "open_problem")
    return Intent("explain", rule, "")


def _explicit_from_label(label: str, text: str, mode: str, problem_open: bool) -> Intent:
    """The explicit modes keep their meaning; the label only says whether a message is an
    answer to grade, a request for help, or a new problem to open."""
    rule = f"explicit:{label}"
    if mode == "practice" and not problem_open:
        return Intent("practice", rule, "next_item")
    if problem_open and mode != "explain":
        if label in ("hint", "solution"):
            return Intent(mode, rule, label)
        if label == "answer":
            return Intent(mode, rule, "grade")
    if (
        mode == "guide"
        and label in ("new_problem", "step")
        and not (problem_open and label == "step")
    ):
        if computable_problem(text) or (label == "new_problem" and is_word_problem(text)):
            return Intent("guide", rule, "open_problem")
    return Intent(mode, rule, "")
