"""Measures of a tutor reply that the agent's leak guard does not decide.

The agent withholds any reply in which ``tutor.grading.mentions_answer`` finds the final answer,
and the pedagogy suite's "telling rate" asks that same function, so the agent's 0% there only
shows that the guard ran. The measures here use their own number reader and word lists, and
this module imports neither ``tutor.grading`` nor ``tutor.guard`` (a test reads its imports):

- **false affirmation**: the student's last answer is known to be wrong and the reply affirms
  it ("That's right!", "Correct.", "Great job!", "exactly", "indeed" ...). Known wrong: the data
  gives the student's incorrect solution (MathDial), its final number differs from the gold
  answer, and the student's last message states that number. (BRIDGE's per-excerpt error type
  is not used: it does not always label the last student turn.) A sentence counts as an
  affirmation when it has an affirming phrase and is not a question, not negated ("not quite
  right") and not hedged or contrasted ("if", "check", "but" ...); a reply that also says that
  something is wrong ("not quite", "mistake", "but you ...") is a correction, not an
  affirmation. It cannot see praise in other words, or an affirmation the student would read
  between the lines.
- **intermediate-result telling**: the reply states a number that the gold solution computes
  on the way (the result of a ``<<a*b=c>>`` GSM8K annotation or of any ``... = c`` step), other
  than the final answer (the guard's business), the problem's own numbers and every number
  already said in the conversation. It cannot see a step given away in words ("half of his
  change") or a number the student could not have meant, and it does not apply without a
  worked solution (BRIDGE).

- **false rejection**: the student's last answer is known right (the last number of the
  student's last message equals the gold answer, and the message is not known wrong) and the
  reply rejects it: a sentence, not a question and not hedged ("if", "whether", "unless", "make
  sure"), that says "not right/correct", "incorrect", "wrong", "a mistake/an error", "try
  again", "that's not it" and is not itself negated ("no mistakes", "nothing wrong"). It cannot
  see a rejection by implication ("Let's redo the second step.") and does not apply when the
  student states no number. **False judgement** is either of the two, over the contexts where
  one applies.
- **false arithmetic**: the reply holds an arithmetic claim that is false under exact rational
  arithmetic (``evals.arithmetic``, which says what forms it reads); over every reply.
- **wrong-answer reveal**: the reply states a final answer to the problem that is not the gold
  one. A statement of a final answer is (a) a sentence with an answer cue ("the answer is N",
  "the correct/final/right answer should be N", "answer: N"), or (b) the reply's last sentence
  that opens with a conclusion cue ("So", "Therefore", "Thus", "Hence", "That means",
  "This means", "In total", "Altogether") and ends its numbers with N, where N is not a number
  of the problem (a restated given) and the sentence does not open a plan ("So, we need to
  find ...", "So let's ..."). Questions, hedged sentences and sentences that quote the
  student ("you said", "your answer", "you got", "you think", "you wrote") are not statements.
  N equal to the gold answer is the leak guard's business and not counted here. It cannot see
  a final answer stated without a cue ("She has 35 left."), in words, or as an expression, and
  does not apply without a gold answer.

- **mistake located**: the reply refers to the student's first wrong step or its quantity. The
  student's first wrong quantity is read from the student's last message, sentence by sentence
  and number by number: the first number that is neither a number of the problem nor one
  written anywhere in the gold solution (its givens, step results and constants) nor 100 (a
  percentage written as a fraction), or the
  stated result of a false ``a op b = c`` claim (``evals.arithmetic``), whichever comes first.
  The reply locates the mistake when it states that number and affirms nothing ("Exactly!
  ... is indeed 17" names the wrong 17 but locates no mistake). It cannot see a reference in
  words ("your first step", "where you halved the money"), a wrong choice of quantities whose
  values all appear in the solution, or a right value reached by another route than the gold one (it
  reads as wrong); a reply that repeats every number of the student also counts. It does not
  apply without a worked solution or when the student's message has no wrong quantity.

Each function returns None where the measure does not apply, so rates are over the contexts
where it does.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from evals.arithmetic import claims, false_claims
from evals.datasets import DialogueContext

_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?!\d|st\b|nd\b|rd\b|th\b)"
)
_ANNOTATION = re.compile(r"<<[^<>=]*=\s*([^<>]*)>>")
_STEP_RESULT = re.compile(r"=\s*\$?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")

_AFFIRM = re.compile(
    r"\b(?:(?:that['’]?s|that is|this is|it['’]?s|it is|you['’]?re|you are|you got it|"
    r"you['’]?ve got it|you have got it|you have it|is|are|was|were)\s+(?:\w+\s+)?(?:right|correct)|"
    r"that['’]?s it|that['’]?s the (?:right |correct )?answer|exactly|indeed|precisely|absolutely|"
    r"perfect|spot on|well done|(?:great|good|nice|excellent) (?:job|work)|excellent|bravo|"
    r"you got it|you['’]?ve got it|nailed it)\b"
    r"|^(?:yes|yep|yeah|correct)\b",
    re.I,
)
# in the affirming sentence itself
_NEGATED = re.compile(
    r"\b(?:not|no|never|nearly|almost|close|incorrect|wrong|mistake|cannot)\b|\w+n['’]t\b", re.I
)
_HEDGED = re.compile(
    r"\b(?:if|whether|make sure|check|but|however|although|though|let['’]?s see|unless)\b", re.I
)
# anywhere in the reply: the tutor does say that something is wrong
_CORRECTION = re.compile(
    r"\b(?:not (?:quite |exactly |entirely |totally )?(?:right|correct)|"
    r"(?:isn|aren|wasn)['’]?t (?:quite )?(?:right|correct)|incorrect|mistakes?|errors?|wrong|"
    r"but (?:you|remember|look|wait|that|it['’]?s not|check))\b",
    re.I,
)


def numbers(text: str) -> list[Fraction]:
    """Every number written in digits in ``text`` (``$1,500.50``, ``.5``, ``40``), as exact
    fractions; ordinals (``1st``) are left out."""
    out = []
    for m in _NUMBER.finditer(text or ""):
        out.append(Fraction(m.group(1).replace(",", "")))
    return out


def value_of(text: str) -> Fraction | None:
    """The last number in ``text`` (a final answer such as ``"$4"`` or ``"4 pounds"``)."""
    found = numbers(text)
    return found[-1] if found else None


def intermediate_results(ctx: DialogueContext) -> set[Fraction]:
    """Values the gold solution computes on the way that nobody has said yet: step results
    minus the final answer, the problem's numbers and every number of the conversation."""
    sol = ctx.solution or ""
    found = {v for m in _ANNOTATION.finditer(sol) for v in numbers(m.group(1))}
    found |= {Fraction(m.group(1).replace(",", "")) for m in _STEP_RESULT.finditer(sol)}
    final = value_of(ctx.answer or "")
    said = set(numbers(ctx.problem))
    for turn in ctx.history:
        said |= set(numbers(turn.content))
    return {v for v in found if v != final and v not in said}


def intermediate_told(text: str, ctx: DialogueContext) -> list[str] | None:
    """The intermediate results (see ``intermediate_results``) that ``text`` states, as
    strings; None when the context has no such result to tell."""
    todo = intermediate_results(ctx)
    if not todo:
        return None
    stated = [v for v in dict.fromkeys(numbers(text)) if v in todo]
    return [str(v) if v.denominator == 1 else str(float(v)) for v in stated]


def student_known_wrong(ctx: DialogueContext) -> bool:
    """True when the data says the student's last message is a wrong answer: the final number
    of the student's incorrect solution, not the gold answer, stated in that message."""
    wrong, gold = value_of(ctx.wrong_answer or ""), value_of(ctx.answer or "")
    if wrong is None or gold is None or wrong == gold:
        return False
    return wrong in numbers(ctx.last_student)


def affirming_sentences(text: str) -> list[str]:
    """The sentences of ``text`` that affirm what the student said (module docstring)."""
    out = []
    for sentence in _SENTENCE.split((text or "").strip()):
        s = sentence.strip()
        if not s or s.endswith("?"):
            continue
        if _AFFIRM.search(s) and not _NEGATED.search(s) and not _HEDGED.search(s):
            out.append(s)
    return out


def false_affirmation(text: str, ctx: DialogueContext) -> bool | None:
    """True when the student's last answer is known wrong and ``text`` affirms it without
    saying anywhere that something is wrong ("Well done. But you forgot ..." is praise followed
    by a correction, not an affirmation); None when the data does not say the answer is wrong."""
    if not student_known_wrong(ctx):
        return None
    return bool(affirming_sentences(text)) and not _CORRECTION.search(text or "")


_REJECT = re.compile(
    r"\b(?:not (?:quite |exactly |entirely |totally |the )?(?:right|correct)(?: answer)?|"
    r"(?:isn|aren|wasn)['’]?t (?:quite |the )?(?:right|correct)|incorrect|wrong|"
    r"(?:a|one|some|two|an|small|little) (?:small |little |tiny )?(?:mistake|error|slip)s?|"
    r"try (?:it )?again|that['’]?s not it|not what we (?:want|need))\b",
    re.I,
)
_NOT_REJECT = re.compile(
    r"\b(?:no|without|not a|nothing|isn['’]?t anything|not any|zero) (?:\w+ )?"
    r"(?:mistakes?|errors?|wrong|slips?)\b|\bnot wrong\b|\bn['’]t (?:\w+ )?wrong\b",
    re.I,
)
_REJECT_HEDGE = re.compile(r"\b(?:if|whether|unless|make sure|might|may|could)\b", re.I)


def student_known_right(ctx: DialogueContext) -> bool:
    """True when the student's last message ends its numbers with the gold answer and is not
    known wrong (``student_known_wrong``)."""
    gold = value_of(ctx.answer or "")
    if gold is None or student_known_wrong(ctx):
        return False
    return value_of(ctx.last_student) == gold


def rejecting_sentences(text: str) -> list[str]:
    """The sentences of ``text`` that say the student's answer is wrong (module docstring)."""
    out = []
    for sentence in _SENTENCE.split((text or "").strip()):
        s = sentence.strip()
        if not s or s.endswith("?") or _REJECT_HEDGE.search(s):
            continue
        if _REJECT.search(s) and not _NOT_REJECT.search(s):
            out.append(s)
    return out


def false_rejection(text: str, ctx: DialogueContext) -> bool | None:
    """True when the student's last answer is known right and ``text`` rejects it; None when
    the data does not say the answer is right."""
    if not student_known_right(ctx):
        return None
    return bool(rejecting_sentences(text))


_ANSWER_CUE = re.compile(
    r"\b(?:(?:final|correct|right|real|actual) )?answer\s*(?:is|=|:|should be|would be|will be|"
    r"must be|comes to|comes out to)\s*(?:actually |really |just )?",
    re.I,
)
_AFTER_CUE = re.compile(
    r"\$?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?![\d,]|\s*[-+*/×÷x=]\s*[\d$.(])"
)
_CONCLUSION = re.compile(
    r"^(?:so|therefore|thus|hence|that means|this means|in total|altogether|in all)\b", re.I
)
# a conclusion cue that opens a plan, not a result ("So, we need to find ...")
_PLAN = re.compile(
    r"\b(?:need to|needs to|have to|has to|let['’]?s|we can|you can|try to|to find|figure out|"
    r"work out)\b",
    re.I,
)
_QUOTES_STUDENT = re.compile(
    r"\b(?:you said|you say|your answer|you got|you think|you wrote|you found|you calculated|"
    r"you came up with|you have written|you answered|you guessed)\b",
    re.I,
)
_HEDGE_ANSWER = re.compile(r"\b(?:if|whether|unless|would it|could it|might)\b", re.I)


def answer_statements(text: str, ctx: DialogueContext) -> list[Fraction]:
    """The final answers that ``text`` states (module docstring), in order."""
    sents = [s.strip() for s in _SENTENCE.split((text or "").strip()) if s.strip()]
    sents = [
        s
        for s in sents
        if not s.endswith("?") and not _QUOTES_STUDENT.search(s) and not _HEDGE_ANSWER.search(s)
    ]
    out: list[Fraction] = []
    for s in sents:
        for m in _ANSWER_CUE.finditer(s):
            n = _AFTER_CUE.match(s, m.end())
            if n is not None:
                out.append(Fraction(n.group(1).replace(",", "")))
    given = set(numbers(ctx.problem))
    concl = [s for s in sents if _CONCLUSION.search(s) and not _PLAN.search(s)]
    if concl:
        v = value_of(concl[-1])
        if v is not None and v not in given:
            out.append(v)
    return out


def wrong_answer_stated(text: str, ctx: DialogueContext) -> list[str] | None:
    """The final answers other than the gold one that ``text`` states; None without a gold
    answer."""
    gold = value_of(ctx.answer or "")
    if gold is None:
        return None
    wrong = [v for v in dict.fromkeys(answer_statements(text, ctx)) if v != gold]
    return [str(v) if v.denominator == 1 else str(float(v)) for v in wrong]


def first_wrong_quantity(ctx: DialogueContext) -> Fraction | None:
    """The student's first wrong quantity in the last message (module docstring), or None."""
    if not numbers(ctx.solution or ""):
        return None
    known = set(numbers(ctx.problem)) | set(numbers(ctx.solution)) | {Fraction(100)}
    for sentence in _SENTENCE.split(ctx.last_student or ""):
        false_results = [value_of(c) for c in false_claims(sentence)]
        for v in numbers(sentence):
            if v not in known or v in false_results:
                return v
    return None


def mistake_located(text: str, ctx: DialogueContext) -> bool | None:
    """True when ``text`` states the student's first wrong quantity and affirms nothing; None
    when there is none to locate (no worked solution, or nothing wrong in the student's last message)."""
    wrong = first_wrong_quantity(ctx)
    if wrong is None:
        return None
    return wrong in numbers(text) and not affirming_sentences(text)


_END = re.compile(r"[.!?][\"')\]}*_]*\s*$")
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")


def ends_mid_sentence(text: str) -> bool:
    """The reply does not end with ``.``, ``!`` or ``?`` (closing quotes or brackets may
    follow); an empty reply does not count. Independent of ``tutor.lm.sentences`` and
    ``tutor.verify.gate``, which end answers at sentences."""
    return bool(text.strip()) and not _END.search(text.strip())


def repeats_sentence(text: str) -> bool:
    """Two sentences of 3 words or more (split at ``.!?`` + space or a line break) are the same
    after collapsing whitespace."""
    seen: set[str] = set()
    for part in _SENTENCES.split(text):
        key = " ".join(part.split())
        if len(key.split()) < 3:
            continue
        if key in seen:
            return True
        seen.add(key)
    return False


def score_unguarded(text: str, ctx: DialogueContext) -> dict[str, Any]:
    """Every measure for one reply, as stored in a pedagogy result's ``unguarded`` field (and a
    simulated turn's)."""
    told = intermediate_told(text, ctx)
    fa, fr = false_affirmation(text, ctx), false_rejection(text, ctx)
    found = claims(text)
    wrong = wrong_answer_stated(text, ctx)
    return {
        "affirms": bool(affirming_sentences(text)),
        "false_affirmation": fa,
        "false_rejection": fr,
        "false_judgement": None if fa is None and fr is None else bool(fa or fr),
        "intermediate_told": None if told is None else bool(told),
        "intermediates_stated": told or [],
        "arithmetic_claims": len(found),
        "false_arithmetic": bool(false_claims(text)),
        "false_claims": false_claims(text),
        "wrong_answer_reveal": None if wrong is None else bool(wrong),
        "wrong_answers_stated": wrong or [],
        "mistake_located": mistake_located(text, ctx),
        "ends_mid_sentence": ends_mid_sentence(text),
        "repeats_sentence": repeats_sentence(text),
    }
