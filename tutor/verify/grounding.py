"""Grounding (issue 13, item 3): does the course text answer the question, and which of its
sentences supports a statement the LM wrote?

An explanation is built from what the retrieved passages say, not from what the LM knows:

- ``Grounding.covered``: the passages answer the question when one of their *sentences* is close
  to it (cosine of the embedder's vectors at least ``cover_threshold``). A passage-level score
  cannot decide this: a chunk that mentions a topic in passing scores like one that explains it
  ("What are like terms?" 0.358 against "Pythagorean theorem" 0.389 on the sample course);
  the sentence that answers scores far apart (docs/evals.md, "Coverage"). A sentence that
  cannot answer anything (a question, an exercise's prompt, the question's own words again:
  ``answers_something``) neither covers nor is quoted.
- ``Grounding.core``: the sentences that answer it best, to quote with their ``[n]``;
- ``Grounding.support``: the source sentence that supports a statement: cosine at least
  ``support_threshold``, every number of the statement in that passage (or the question), most
  of its content words in that passage, and the statement a restatement of that sentence
  (``restates``: at most ``NEW_WORDS_SHARE`` of its content words are in neither the sentence
  nor the question, and both say "not" or neither does). Closeness alone admits false
  paraphrases: "A cation is a negatively charged ion" is 0.77 from "Positively charged atoms
  called cations ...", and of the 43 model sentences closeness admitted on the key-fact
  questions, 22 were false or empty (docs/benchmarks.md, "Support"). A statement without
  support is dropped by the gate.

Without an embedder (``encode`` is None) the same decisions are lexical: the share of the
question's content words found together in a window of two sentences.
Pure functions on strings and vectors; the embedder is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Encode = Callable[[Sequence[str]], np.ndarray]

COVER_THRESHOLD = 0.52  # all-MiniLM-L6-v2, calibrated on the dev questions (docs/evals.md)
SUPPORT_THRESHOLD = 0.75
LEXICAL_COVER = 0.6  # no embedder: share of the question's content words in one window
LEXICAL_SUPPORT = 0.75
LEXICAL_WEIGHT = 0.3
NEW_WORDS_SHARE = 0.2  # of a statement's content words, at most this share new to its source

_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:[.,/]\d+)*")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,/]\d+)*")
_STOP = frozenset(
    """what which how why when where who whom whose is are was were do does did can could would
    should will shall may might the a an of to in on for with and or it its i you me my your we
    our they them their he she his her explain describe tell mean means meaning define
    definition example examples work works working find get gets use used using make makes way
    ways difference different between about thing things called call name give show know help
    please there here this that these those if than then from by at be been being as so not no
    yes some many much more most into out up all any also just only really very happen happens
    doing done step steps write need want let lets let's say says said each other same such
    one""".split()
)
# what a passage line is not: headings, images, table rows, rules
_SKIP_LINE = re.compile(r"^\s*(?:#|\||[-*_]{3,}\s*$|\*?\[Image:|!\[)")
_MARKUP = re.compile(r"\*\*|__|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)|`")
_LIST_MARK = re.compile(r"^\s*(?:>\s*)*(?:[-*+•]\s+|\d{1,2}[.)]\s+)?")
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9$(\"'])")


def term_key(word: str) -> str:
    """A crude stem: lower case, a plural or -ing/-ed ending off, the first 6 letters."""
    w = word.lower().replace("’", "'")
    for suffix in ("ies", "es", "s", "ing", "ed"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            w = w[: -len(suffix)]
            break
    return w[:6]


def content_keys(text: str) -> list[str]:
    """The stems of the content words and numbers of ``text``, in order, without repeats."""
    keys = [
        term_key(w)
        for w in _WORD.findall(text)
        if w.lower() not in _STOP and (len(w) > 2 or w[0].isdigit())
    ]
    return list(dict.fromkeys(keys))


def numbers_in(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


# a sentence that cannot answer a question however close it is: an exercise's prompt, a
# worked example's label line, a lettered list of answers in one sentence ("(a) noble gas;
# (b) chalcogen; ...")
_EXERCISE = re.compile(
    r"^\s*(?:Problem|Exercise|Try [Ii]t|Example|Solution)\b|^\s*(?:\(a\)|ⓐ)[^.]*(?:\(b\)|ⓑ)"
)


def answers_something(sentence: str, question: str) -> bool:
    """Whether ``sentence`` can be part of an answer to ``question``: it is not a question
    itself, not an exercise or a worked example's label, and it says something beyond the
    question's own words ("Convert a percent to a decimal." answers nothing)."""
    if sentence.rstrip().endswith("?") or _EXERCISE.match(sentence):
        return False
    return bool(set(content_keys(sentence)) - set(content_keys(question)))


# "What is X?" and its kin: the course answers it only if it discusses X (``topic_of``)
_ASK = re.compile(
    r"^\s*(?:what\s+(?:is|are|was|were)|who\s+(?:is|was|were)|define|explain|describe)"
    r"\s+(?:an?\s+|the\s+)?(?P<x>[^?]+?)\s*\??\s*$",
    re.I,
)
_MEANS = re.compile(
    r"^\s*what\s+(?:does|do)\s+(?:the\s+(?:word|term|phrase|symbol)s?\s+)?(?P<x>.+?)\s+"
    r"(?:actually\s+)?(?:mean|stand\s+for)\b",
    re.I,
)
# words that ask about something else: "the role of X", "X's role", "the formula for X"
_RELATIONAL = frozenset(
    """role function purpose job meaning definition formula rule difference value unit units
    symbol symbols steps step process example examples type types kind kinds part parts use uses
    cause causes effect effects result results structure property properties name names
    equation idea point main""".split()
)
_CLAUSE = re.compile(
    r",|;|\s(?:and|or|that|which|when|where|how|to|if|because|so|but|being|is|are)\s", re.I
)
_PREPOSITION = re.compile(
    r"\s(?:of|for|in|on|with|as|at|from|by|into|between|inside|within|during|about)\s", re.I
)
_TAIL_VERB = re.compile(
    r"(?:\s+(?:say|says|stand|stands|mean|means|called|actually|do|does|made|used|look|like|"
    r"work|works|happen|happens))+\s*$",
    re.I,
)


def topic_of(question: str) -> str | None:
    """The term a definitional question asks about ("What is the mitochondria's role in a
    cell?" -> "mitochondria", "What are the steps of long division?" -> "long division"), or
    None: not such a question, or one about a calculation or a pronoun."""
    phrase = _MEANS.match(question)  # "What does keep, change, flip mean ...": the whole phrase
    if phrase:
        x = phrase.group("x").strip("\"'“”‘’ ")
        return x if x and not re.search(r"\d", x) else None
    m = _ASK.match(question)  # ("What does the memo say about ...?" asks about no term)
    if m is None:
        return None
    x = m.group("x").strip()
    if re.search(r"\d", x) or re.match(r"(?:it|this|that|these|those|they|you|i|we)\b", x, re.I):
        return None
    x = _CLAUSE.split(f" {x} ")[0].strip() or x
    owner = re.match(r"(.+?)['’]s?\s+(\w+)\b", x)
    if owner and owner.group(2).lower() in _RELATIONAL:
        x = owner.group(1)
    parts = _PREPOSITION.split(f" {x} ")
    words = parts[0].split()
    if words and words[-1].lower() in _RELATIONAL and len(parts) > 1:
        # "the formula for the area", "the SI unit of temperature": asks about what follows
        words = re.sub(r"^(?:an?|the)\s+", "", parts[1].strip(), flags=re.I).split()
    while words and words[-1].lower() in _RELATIONAL:
        words.pop()
    topic = _TAIL_VERB.sub("", " ".join(words)).strip(" .")
    return topic or None


def _names(word: str, head: str) -> bool:
    k = term_key(word)
    return k.startswith(head[:4]) and (head.startswith(k) or k.startswith(head))


_CALLED = r"\b(?:called|named|termed|known as|defined as)\s+(?:\S+\s+){{0,3}}{w}\b"
_IS = r"\b{w}\b[\"'”’]?\s*(?::|\(|,?\s+(?:is|are|means|refers to)\b)"


def _defines(word: str, line: str) -> bool:
    """``line`` defines ``word``: "... is called the limiting factor", "An anion is ...",
    "isotopes: ...", "\"keep, change, flip\": ..."."""
    w = re.escape(word)
    return any(re.search(p.format(w=w), line, re.I) for p in (_CALLED, _IS))


def discussed(term: str, passages: Sequence[str]) -> tuple[int, bool]:
    """In how many distinct sentences (and headings) of ``passages`` the head word of
    ``term`` (its last word) occurs, stems compared by prefix ("state" and "states"), and whether one of them defines
    it ("... is called the limiting factor", "a cation is ...", "isotopes: ...")."""
    words = [w for w in _WORD.findall(term) if not w[0].isdigit()]
    if not words:
        return 0, False
    head = term_key(words[-1])
    lines = {
        piece.strip()
        for p in passages
        for line in p.splitlines()
        for piece in _SPLIT.split(_MARKUP.sub("", line))
        if piece.strip()
    }
    found, defines = 0, False
    for line in lines:
        named = {w for w in _WORD.findall(line) if _names(w, head)}
        if not named:
            continue
        found += 1
        defines = defines or any(_defines(w, line) for w in named)
    return found, defines


MIN_TOPIC_SENTENCES = 2  # a term one sentence names, without defining it, is named in passing

_LEAD = re.compile(r"^(?:This|That|These|Those|It|They|So|Then|Thus|Here|For example|Such)\b")


def passage_sentences(text: str) -> list[str]:
    """The sentences of a passage as a student can read them quoted: Markdown emphasis, list
    and quote marks removed; headings, titles (a short line without a full stop), image
    descriptions and table rows left out. A sentence that leans on the one before it ("This is
    called infiltration.") is joined to it."""
    out: list[str] = []
    for raw in text.splitlines():
        if not raw.strip() or _SKIP_LINE.match(raw.lstrip("> ")):
            continue
        line = _LIST_MARK.sub("", raw)
        line = re.sub(r"^\*?Figure [\d.]+:\s*", "", line)
        line = _MARKUP.sub("", line).strip()
        if len(line.split()) < 7 and not re.search(r"[.!?:]$", line):
            continue  # a title or a label
        parts: list[str] = []
        for piece in _SPLIT.split(line):
            piece = piece.strip()
            if len(piece) < 12 or not re.search(r"[A-Za-z]{3}", piece):
                continue
            if parts and _LEAD.match(piece):
                parts[-1] = f"{parts[-1]} {piece}"
            else:
                parts.append(piece)
        out.extend(p for p in parts if len(p.split()) >= 5 or p.endswith(":"))
    return out


@dataclass(frozen=True)
class SourceSentence:
    passage: int  # the [n] of its passage (1-based)
    text: str
    score: float  # closeness to the question (cosine, or the lexical share)
    index: int = 0  # of its (first) sentence in ``Grounding.sentences``: the reading order


@dataclass(frozen=True)
class Support:
    passage: int
    sentence: str
    score: float


_NEGATION = re.compile(r"\b(?:not|no|never|cannot|none|nor|neither)\b|n['’]t\b", re.I)
# words that frame a restatement without adding to it ("X refers to ...", "is known as")
_FRAMING = frozenset(
    term_key(w)
    for w in """refers refer defined known simply typically usually generally basically
    actually essentially also""".split()
)


def _claim_keys(text: str) -> list[str]:
    return [k for k in content_keys(re.sub(r"['’]s\b", "", text)) if not k[0].isdigit()]


def restates(statement: str, source: str, question: str = "") -> bool:
    """Whether ``statement`` says no more than ``source`` (with the ``question`` it answers):
    at most ``NEW_WORDS_SHARE`` of its content words (framing words such as "refers to" aside)
    are in neither, and it is negated exactly when the source is. A lexical test: it cannot
    see two of the source's terms swapped ("the property of zero is the identity property"),
    so it is a floor under the closeness test, not a proof."""
    keys = [k for k in _claim_keys(statement) if k not in _FRAMING]
    if bool(_NEGATION.search(statement)) != bool(_NEGATION.search(source)):
        return False
    have = set(_claim_keys(source)) | set(_claim_keys(question))
    new = [k for k in keys if k not in have]
    return len(new) <= NEW_WORDS_SHARE * len(keys)


class Grounding:
    """The retrieved passages of one explain turn, sentence by sentence, against its question."""

    def __init__(
        self,
        question: str,
        passages: Sequence[str],
        encode: Encode | None = None,
        *,
        cover_threshold: float = COVER_THRESHOLD,
        support_threshold: float = SUPPORT_THRESHOLD,
    ):
        self.question = question
        self.encode = encode
        self.cover_threshold = cover_threshold
        self.support_threshold = support_threshold
        self.sentences: list[tuple[int, str]] = [
            (i + 1, s) for i, p in enumerate(passages) for s in passage_sentences(p)
        ]
        self.passage_keys = [set(content_keys(p)) | numbers_in(p) for p in passages]
        self.passage_numbers = [numbers_in(p) for p in passages]
        self._vectors: np.ndarray | None = None
        self.scores = self._score_question()
        # coverage and quotes come from the sentences that can answer; support may use any
        self.answering = np.array(
            [answers_something(s, question) for _, s in self.sentences], dtype=bool
        )
        answering = self.scores[self.answering]
        self.best = float(answering.max()) if len(answering) else 0.0
        self.topic = topic_of(question)
        self.topic_sentences, self.topic_defined = (
            discussed(self.topic, passages) if self.topic else (0, False)
        )
        # the order of the quoted sentences: closeness plus the share of the question's words
        # a sentence holds (the closest sentence is often the section's title sentence)
        focus = content_keys(question)
        lexical = np.array(
            [
                sum(1 for f in focus if f in set(content_keys(s))) / max(len(focus), 1)
                for _, s in self.sentences
            ],
            dtype=np.float32,
        )
        self.rank = self.scores + LEXICAL_WEIGHT * lexical if encode is not None else self.scores

    # -- vectors --------------------------------------------------------------------------
    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        assert self.encode is not None
        v = np.asarray(self.encode(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return np.asarray(v / np.where(norms == 0, 1.0, norms))

    def _score_question(self) -> np.ndarray:
        if not self.sentences:
            return np.zeros(0, dtype=np.float32)
        if self.encode is not None:
            v = self._embed([self.question] + [s for _, s in self.sentences])
            self._vectors = v[1:]
            return np.asarray(v[1:] @ v[0])
        focus = content_keys(self.question)
        keys = [set(content_keys(s)) for _, s in self.sentences]
        out = np.zeros(len(keys), dtype=np.float32)
        for i, k in enumerate(keys):
            window = k | (keys[i + 1] if i + 1 < len(keys) else set())
            out[i] = sum(1 for f in focus if f in window) / max(len(focus), 1)
        return out

    # -- decisions ------------------------------------------------------------------------
    @property
    def on_topic(self) -> bool:
        """A definitional question's term (``topic_of``) is discussed by the passages: named in
        ``MIN_TOPIC_SENTENCES`` sentences or more, or defined where it is named. Questions of other
        forms pass."""
        return (
            self.topic is None or self.topic_sentences >= MIN_TOPIC_SENTENCES or self.topic_defined
        )

    @property
    def covered(self) -> bool:
        """The passages hold a sentence that answers the question (``answers_something``) and,
        for a definitional question, discuss its term (``on_topic``)."""
        threshold = self.cover_threshold if self.encode is not None else LEXICAL_COVER
        return bool(self.sentences) and self.best >= threshold and self.on_topic

    def core(
        self, n: int = 2, *, follow: int = 0, avoid: Callable[[str], bool] | None = None
    ) -> list[SourceSentence]:
        """The ``n`` sentences closest to the question, best first, each with the ``follow``
        sentences after it in its passage (and the next one when it only introduces it,
        "...:"); ``avoid`` drops a sentence (one that states an open problem's answer)."""
        order = np.argsort(-self.rank, kind="stable")
        out: list[SourceSentence] = []
        used: set[int] = set()
        for i in map(int, order):
            if len(out) >= n or self.scores[i] < 0.5 * self.best:
                break
            if i in used or not self.answering[i]:
                continue
            passage, text = self.sentences[i]
            if avoid is not None and avoid(text):
                continue
            parts, used_here = [text], {i}
            j = i + 1
            while (
                j < len(self.sentences)
                and self.sentences[j][0] == passage
                and (len(parts) <= follow or parts[-1].endswith(":"))
            ):
                if j in used or (avoid is not None and avoid(self.sentences[j][1])):
                    break
                parts.append(self.sentences[j][1])
                used_here.add(j)
                j += 1
            used |= used_here
            joined = " ".join(parts)
            if any(joined in s.text or s.text in joined for s in out):
                continue  # overlapping chunks hold the same sentences
            out.append(SourceSentence(passage, joined, float(self.scores[i]), i))
        return out

    def support(self, statement: str) -> Support | None:
        """The source sentence that supports ``statement``, or None (see the module docstring)."""
        keys = [k for k in content_keys(statement) if not k[0].isdigit()]
        nums = numbers_in(statement) - numbers_in(self.question)
        if not self.sentences or not keys:
            return None
        if self.encode is not None and self._vectors is not None:
            sims = self._vectors @ self._embed([statement])[0]
            threshold = self.support_threshold
        else:
            sims = np.array(
                [
                    sum(1 for k in keys if k in set(content_keys(s))) / len(keys)
                    for _, s in self.sentences
                ],
                dtype=np.float32,
            )
            threshold = LEXICAL_SUPPORT
        for i in np.argsort(-sims, kind="stable"):
            score = float(sims[i])
            if score < threshold:
                return None
            passage, sentence = self.sentences[int(i)]
            if not nums <= self.passage_numbers[passage - 1]:
                continue
            have = self.passage_keys[passage - 1]
            if sum(1 for k in keys if k in have) < 0.5 * len(keys):
                continue
            if not restates(statement, sentence, self.question):
                continue
            return Support(passage, sentence, score)
        return None


CHECK_QUESTIONS = (
    "Can you put that in your own words?",
    "Can you try a small example of your own?",
    "Which part of this would you like to look at more closely?",
)


def check_question(question: str) -> str:
    """One question that checks understanding (a fixed one, chosen by the question's text)."""
    return CHECK_QUESTIONS[sum(map(ord, question)) % len(CHECK_QUESTIONS)]
