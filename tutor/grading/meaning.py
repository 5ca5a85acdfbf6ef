"""What the learner means: which number a response asserts, whether a question asks for a
percentage, and whether a message states a step rather than a final answer.

``_asserted_number`` is the number the grader grades. A number the learner negates or takes
back is not their answer: ``not 18``, ``it's not 18``, ``it isn't 18``, ``I don't think it's 18``,
``18 is wrong``, ``18 is not right``, ``18 doesn't work``, ``18, no wait``, ``I first thought 18
but ...``. When the response also asserts another number (``I first thought 18 but it's 20``,
``18, not 20``), that one is graded; when every number is negated there is no answer to grade.

Hedges are not negations: in ``not sure, maybe 18`` or ``I think 18 but I'm not sure`` the
learner still gives 18 as their best answer, and it is graded. Questions that lean towards a
number (``is it 18?``, ``isn't it 18?``) assert it too.

``asks_for_percent(prompt)``: the question asks for a percentage (``What percentage of ...``,
``as a percent``, ``in %``), so ``20%`` answers a bare gold of 20. A percent attached to a number
of the statement (``shorten it by 30%``, ``fifty percent``) does not ask for one.

``reads_as_step(response)``: a sentence that states an intermediate quantity (``He sold 20 crates
over the weekend.``), not a final answer (``60 crates``, ``I got 60``, ``So he sold 60 crates in
total.``).
"""

from __future__ import annotations

import re

from tutor.grading.normalize import _fix_commas, normalize_text
from tutor.grading.numbers import (
    _NUMBER_WORDS,
    Number,
    _extract_number,
    find_numbers,
)

# --------------------------------------------------------------------------------------------
# Negated and retracted numbers

# "not", "never", "cannot" and the n't forms ("isn't", "doesn't", "can't", also without the
# apostrophe)
_NEG = (
    r"(?:\b(?:is|was|are|were|do|does|did|ca|could|wo|would|should|must|has|have|had|ai)n'?t\b"
    r"|\bcan\s*not\b|\bnot\b|\bnever\b)"
)
# words that may stand between the negation and the number: "not equal to 18", "isn't even 18"
_NEG_FILLER = (
    r"(?:be|been|equal|equals|equal\s+to|the\s+(?:answer|total|result|number)|just|exactly|"
    r"really|actually|even|quite|simply|possibly|going\s+to\s+be|gonna\s+be|come\s+to|"
    r"add\s+up\s+to|make|makes|give|gives|about|around)"
)
_PRE_NEGATED = re.compile(rf"(?P<neg>{_NEG})(?:\s+{_NEG_FILLER})*[\s,:]*$")
# "I don't think it's 18", "I doubt it's 18"
_PRE_DOUBTED = re.compile(
    r"\b(?:(?:do|does|did)(?:n'?t|\s+not)\s+(?:think|believe|reckon)|doubt)\s+"
    r"(?:(?:that|it'?s|it\s+is|it\s+was|it'?ll\s+be|the\s+answer\s+is|the\s+answer'?s|"
    r"that'?s|it\s+would\s+be)\s+)*$"
)
# an inverted question: "Isn't 18 the answer?" asks whether 18 is right, it does not deny it
_QUESTION_START = re.compile(r"(?:^|[.!?\n]\s*)$")

# up to two words after the number that are not a new clause: "18 clips is wrong"
_AFTER_WORDS = (
    r"(?:\s+(?!(?:is|was|are|were|isn|wasn|but|and|or|so|because|since|not|no|then|now|"
    r"though|however)\b)[a-z][a-z^0-9]*){0,2}"
)
_BAD = r"(?:right|correct|true|it|the\s+(?:right\s+|correct\s+)?answer)"
# "18 is wrong", "18 is not right", "18 doesn't work", "18 can't be right"
_POST_REJECTED = re.compile(
    rf"^{_AFTER_WORDS}\s*[,:;\-]?\s*(?:"
    r"(?:(?:is|was|are|were|seems|looks|sounds|feels)\s+|'s\s+)?"
    r"(?:definitely\s+|totally\s+|probably\s+|clearly\s+|obviously\s+|surely\s+)?"
    rf"(?:wrong|incorrect|false|a\s+mistake|an\s+error|not\s+(?:quite\s+)?{_BAD})"
    r"|(?:is|was|are|does|do|did|can|could|would|must|wo|ca)(?:\s*not|n'?t)\s+(?:be\s+)?"
    rf"(?:{_BAD}|work|works)"
    r")\b"
)
# "18, no wait, 20", "18... no.", "18, I mean 20", "18 - scratch that"
_POST_TAKEN_BACK = re.compile(
    r"^\s*[,.;:!?\u2026\-]*\s*(?:"
    r"no\b(?=\s*(?:[,.!\u2026]|$|wait|\d|it'?s|i\s+mean))|nope\b|wait\b|oops\b|"
    r"scratch\s+that|i\s+mean\b|i\s+meant\b"
    r")"
)
# "I first thought 18 but ...": a number the learner had before and is moving away from
_EARLIER = re.compile(
    r"\b(?:(?:at\s+)?first|initially|originally|thought|was\s+going\s+to\s+(?:say|put|write)|"
    r"wanted\s+to\s+(?:say|put|write)|used\s+to\s+think)\b"
)
_TURN = re.compile(
    rf"^{_AFTER_WORDS}\s*[,.;:!?\u2026\-]*\s*(?P<turn>but|however|though|actually|now|wait|no\b|"
    r"then\s+i\b|then\s+(?:realized|realised|saw|noticed))"
)
# "... but I'm not sure": a hedge, the earlier number is still the answer
_HEDGE_AFTER_TURN = re.compile(
    r"^\s*[,\u2026.]*\s*(?:i'?m\s+|i\s+am\s+)?(?:not\s+(?:sure|certain|100)|unsure|"
    r"i\s+don'?t\s+know|i\s+do\s+not\s+know|i\s+could\s+be\s+wrong|maybe|idk|i\s+still|"
    r"i'?m\s+still|it\s+still)"
)
_SENTENCE_END = re.compile(r"[.!?\n](?=\s|$)")


def _free_text(text: str) -> str:
    """The text as ``find_numbers`` reads it (its positions index into this string)."""
    return _fix_commas(normalize_text(text), free_text=True)


def _sentence_before(s: str, start: int) -> str:
    before = s[:start]
    ends = list(_SENTENCE_END.finditer(before))
    return before[ends[-1].end() :] if ends else before


def _is_rejected(s: str, n: Number) -> bool:
    """True when the learner negates or takes back the number ``n`` (found in ``s``)."""
    return _rejected_between(s[: n.start], s[n.end :])


def _rejected_between(before: str, after: str) -> bool:
    """True when the text around an answer (``before`` and ``after`` it, normalized) negates or
    takes it back."""
    m = _PRE_NEGATED.search(before)
    if m:
        inverted = re.search(r"n'?t$", m.group("neg")) is not None  # "isn't", not "not"
        if not (inverted and _QUESTION_START.search(before[: m.start()])):
            return True
    if _PRE_DOUBTED.search(before):
        return True
    if _POST_REJECTED.match(after) or _POST_TAKEN_BACK.match(after):
        return True
    if _EARLIER.search(_sentence_before(before, len(before))):
        t = _TURN.match(after)
        if t and not (
            t.group("turn") in ("but", "though") and _HEDGE_AFTER_TURN.match(after[t.end() :])
        ):
            return True
    return False


def rejected_numbers(response: str) -> list[Number]:
    """The numbers of ``response`` that the learner negates or takes back (``not 18``,
    ``18 is wrong``, ``I first thought 18 but ...``), in order."""
    s = _free_text(response or "")
    return [n for n in find_numbers(response or "") if _is_rejected(s, n)]


def _asserted_number(response: str) -> Number | None:
    """The number the learner gives as their answer: the whole response read as one number,
    else the last number mentioned; numbers the learner negates or takes back never count
    (None when no other number is left)."""
    s = _free_text(response)
    found = find_numbers(response)
    rejected = {id(n) for n in found if _is_rejected(s, n)}
    if not rejected:
        return _extract_number(response)
    kept = [n for n in found if id(n) not in rejected]
    return kept[-1] if kept else None


# --------------------------------------------------------------------------------------------
# Questions that ask for a percentage

_PERCENT_MENTION = re.compile(r"%|\bper\s*cent(?:age)?s?\b|\bpercentages?\b")
_NUMBER_BEFORE = re.compile(
    r"(?:\d|\b(?:" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r"))[\s-]*$"
)


def asks_for_percent(prompt: str | None) -> bool:
    """True when the question asks for a percentage: it mentions percent, percentage or ``%``
    without a number in front (``What percentage ...?``, ``as a percent``, ``in %``). A percent
    of the statement's own numbers (``by 30%``, ``fifty percent``) does not ask for one."""
    if not prompt:
        return False
    s = normalize_text(prompt)
    return any(not _NUMBER_BEFORE.search(s[: m.start()]) for m in _PERCENT_MENTION.finditer(s))


# --------------------------------------------------------------------------------------------
# Steps and final answers

# a word that concludes: the message gives a result, not a step on the way
_CONCLUDING = re.compile(
    r"\b(?:answer|total(?:s|ly|led)?|altogether|all\s+together|in\s+all|so|therefore|thus|"
    r"hence|final(?:ly)?|overall|in\s+the\s+end|combined|sum|result)\b"
)
_THIRD_PERSON = {"he", "she", "they", "it"}
_FIRST_PERSON = {"i", "we", "you", "i'm", "i've", "we're", "we've", "you're", "my", "our", "your"}
_DETERMINERS = {"the", "his", "her", "their", "its", "each", "every", "this", "that", "these"}
# words that are not the verb of a step ("it is 60", "that makes 60")
_NOT_VERBS = {
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "'s",
    "s",
    "equals",
    "equal",
    "makes",
    "make",
    "comes",
    "come",
    "means",
    "gives",
    "give",
    "would",
    "should",
    "could",
    "might",
    "may",
    "will",
    "can",
    "must",
}
# auxiliaries and adverbs between the subject and the verb: "he also sold", "she has made"
_BETWEEN = {"also", "then", "only", "just", "still", "has", "had", "have", "will", "did", "does"}
# common words that, capitalized at the start of a sentence, are not a name
_FUNCTION_WORDS = (
    _THIRD_PERSON
    | _FIRST_PERSON
    | _DETERMINERS
    | _NOT_VERBS
    | _BETWEEN
    | {
        "a",
        "an",
        "and",
        "but",
        "or",
        "so",
        "then",
        "on",
        "in",
        "at",
        "for",
        "from",
        "to",
        "by",
        "with",
        "after",
        "before",
        "during",
        "over",
        "there",
        "here",
        "if",
        "when",
        "yes",
        "no",
        "not",
        "ok",
        "okay",
        "well",
        "maybe",
        "what",
        "how",
        "why",
        "which",
        "who",
        "first",
        "next",
        "last",
        "now",
        "total",
        "answer",
    }
)
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
_NOT_NOUNS = {
    "and",
    "or",
    "but",
    "so",
    "is",
    "are",
    "was",
    "were",
    "x",
    "times",
    "plus",
    "minus",
    "divided",
    "multiplied",
    "to",
    "by",
    "of",
    "per",
    "if",
    "then",
    "than",
    "more",
    "less",
    "fewer",
}
_OPINION = {"think", "guess", "believe", "reckon", "suppose", "know", "mean", "feel"}
_ADJECTIVES = {"more", "fewer", "less", "extra", "other", "additional", "new", "whole", "full"}


def _has_subject_and_verb(words: list[tuple[str, bool]]) -> bool:
    """``words``: (lowercased word, capitalized in the text) before the number, in order."""
    for i, (w, cap) in enumerate(words):
        if w in _FIRST_PERSON:
            if i + 1 < len(words) and words[i + 1][0] in _OPINION:
                continue  # "I think he sold 20 crates": the step is the rest
            return False  # "I got 60", "we get 60": the learner reports a result
        if w in _THIRD_PERSON:
            j = i + 1
        elif w in _DETERMINERS and i + 1 < len(words):
            j = i + 2  # "the farmer sold", "his sister made"
        elif cap and w.endswith("'s") and w[:-2] not in _FUNCTION_WORDS:
            j = i + 2  # "Sam's sister made"
        elif cap and w not in _FUNCTION_WORDS and "'" not in w:
            j = i + 1  # a name: "Sam sold"
        elif i == 0 and w not in _FUNCTION_WORDS and len(words) > 1 and _past_verb(words[1][0]):
            j = 1  # a name written in lower case, before a past-tense verb: "sam sold"
        else:
            continue
        skipped = set()
        while j < len(words) and (words[j][0] in _BETWEEN or words[j][0].endswith("ly")):
            skipped.add(words[j][0])
            j += 1
        if j < len(words) and words[j][0] not in _NOT_VERBS and words[j][0] not in _FUNCTION_WORDS:
            return True
        if j == len(words) and skipped & {"has", "had", "have"}:
            return True  # "he has 40 apples left": "has" is the verb
    return False


_IRREGULAR_PAST = {
    "sold", "bought", "made", "had", "got", "gave", "took", "ate", "spent", "paid", "read",
    "ran", "drove", "won", "lost", "left", "kept", "found", "sent", "saw", "wrote", "grew",
    "brought", "built", "caught", "threw", "put", "cut", "drank", "fed", "held", "lent", "met",
    "rode", "sat", "swam", "went", "did", "chose", "broke", "sang", "drew", "flew", "hid",
}  # fmt: skip


def _past_verb(w: str) -> bool:
    return w in _IRREGULAR_PAST or (len(w) > 4 and w.endswith("ed"))


def reads_as_step(response: str) -> bool:
    """True when ``response`` states an intermediate quantity in a sentence rather than giving a
    final answer: a subject and a verb, then a number with a noun or unit after it (``He sold
    20 crates over the weekend.``, ``Sam paid $12 for the tickets.``), and no concluding word
    (``answer``, ``total``, ``altogether``, ``in all``, ``so``, ``therefore``, ``final``, ...).

    False for a bare answer (``60``, ``60 crates``, ``it's 60``), for the learner reporting a
    result (``I got 60``, ``we get 60``) and for a concluding sentence (``So he sold 60 crates
    in total.``). It says nothing about whether the number is right: ``grade`` still grades the
    number of ``He sold 60 crates.``. Deterministic, no model."""
    text = response or ""
    s = _free_text(text)
    if not s or _CONCLUDING.search(s):
        return False
    # capitalization from the original text, word by word (normalize_text lowercases)
    caps = {m.group(0).lower() for m in _WORD.finditer(text) if m.group(0)[0].isupper()}
    for n in find_numbers(text):
        sentence = _sentence_before(s, n.start)
        tail = s[n.end :]
        nm = re.match(r"\s*([a-z]+)(?:\s+([a-z]+))?", tail)
        has_noun = bool(n.unit or n.percent)
        if nm and not has_noun:
            first, second = nm.group(1), nm.group(2)
            if first in _ADJECTIVES and second and second not in _NOT_NOUNS:
                has_noun = True
            elif first not in _NOT_NOUNS and first not in _NUMBER_WORDS:
                has_noun = True
        if not has_noun:
            continue
        words = [(w, w in caps) for w in (m.group(0) for m in _WORD.finditer(sentence))]
        words = [(w, c) for w, c in words if w not in _NUMBER_WORDS]
        if _has_subject_and_verb(words):
            return True
    return False
