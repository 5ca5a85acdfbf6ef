"""Whole sentences out of a stream of text deltas: every backend's answer goes through here.

``AnswerFilter`` chains the stop-string filter and ``SentenceFilter``. Text streams as it comes;
the sentence filter holds back the sentence being written only when it has to, so that

- an answer cut by the token budget ends at its last complete sentence (``end_at_sentence``): a
  sentence that starts within ``TAIL_TOKENS`` of the budget (or at any time when the backend
  cannot say how much budget is left) is held back until it ends, so a cut drops it. A sentence
  that started streaming before that window and is still unfinished at the cut ends with " …"
  (the rare case: one sentence longer than the window). An answer with no complete sentence is
  kept as it is, and one that ended on its own (end of sequence, stop string) keeps its last words;
- a sentence that repeats one already said in the answer is dropped (``drop_repeated_sentences``):
  the sentence being written is held back while its text so far is the start of one already
  said, and released as soon as it differs. After ``MAX_REPEATS`` repeats in a row the answer is
  over (the model is looping; the backend stops decoding).

A sentence ends at ``.``, ``!`` or ``?`` (closing quotes or brackets may follow) followed by
whitespace, or at a line break. Never inside a number (``3.14``), inline or display math
(``$...$``, ``\\(...\\)``, ``\\[...\\]``), inline code, a list marker (``1.``) or a common
abbreviation (``e.g.``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tutor.lm.base import StopStringFilter

MAX_REPEATS = 3  # repeated sentences in a row that end the answer
MIN_REPEAT_WORDS = 3  # shorter sentences ("Yes.", "Step 2:") may repeat legitimately
# budget tokens left under which a new sentence is held back until it ends: most sentences of the
# bundled model's answers are shorter (benchmarks/decoding.py measures them; docs/benchmarks.md)
TAIL_TOKENS = 48
ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "dr", "mr", "mrs", "ms", "approx", "fig", "eq", "cf"}
CLOSERS = "\"')]}»”’*_"
_MARKER = re.compile(r"\s*(\d+|[A-Za-z]|[ivxIVX]+)")
_SPACE = re.compile(r"\s+")


def _inside_markup(text: str) -> bool:
    """Whether the end of ``text`` lies inside math or inline code."""
    unescaped = text.replace("\\$", "")
    display = unescaped.count("$$")
    if display % 2 or (unescaped.count("$") - 2 * display) % 2 or text.count("`") % 2:
        return True
    return text.count("\\(") > text.count("\\)") or text.count("\\[") > text.count("\\]")


def _ends_sentence(text: str, start: int, i: int) -> bool:
    """Whether the punctuation ``text[i - 1]`` (``text[start:i]`` being the sentence so far)
    ends a sentence: not a list marker, an abbreviation or inside markup."""
    if text[i - 1] == ".":
        sentence = text[start : i - 1]
        if _MARKER.fullmatch(sentence):
            return False
        words = sentence.split()
        if words and words[-1].lower() in ABBREVIATIONS:
            return False
    return not _inside_markup(text[:i])


def next_boundary(text: str, start: int = 0) -> int | None:
    """The end of the first complete sentence of ``text[start:]`` (an index into ``text``,
    just after its punctuation or before its line break), or None while it is unfinished."""
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            if i > start and text[start:i].strip() and not _inside_markup(text[:i]):
                return i
            i += 1
            continue
        if ch in ".!?":
            j = i + 1
            while j < n and text[j] in CLOSERS:
                j += 1
            if j < n and text[j].isspace() and _ends_sentence(text, start, i + 1):
                return j
            if j >= n:
                return None  # the next delta says whether this ends the sentence
            i = j
            continue
        i += 1
    return None


class SentenceFilter:
    """Streams text, holding back a sentence only as needed; see the module docstring."""

    def __init__(self, *, end_at_sentence: bool = True, drop_repeats: bool = True):
        self.end_at_sentence = end_at_sentence
        self.drop_repeats = drop_repeats
        self.buffer = ""  # the sentence being written (with the whitespace before it)
        self.sent = 0  # how much of ``buffer`` is out already
        self.seen: set[str] = set()
        self.complete = 0  # complete sentences seen (kept or dropped)
        self.repeats_in_row = 0
        self.dropped = 0
        self.looped = False

    def _release(self, segment: str) -> str:
        """``segment`` (leading whitespace + one sentence), or "" when it repeats one."""
        key = _SPACE.sub(" ", segment).strip()
        if self.drop_repeats and len(key.split()) >= MIN_REPEAT_WORDS:
            if key in self.seen:
                self.dropped += 1
                self.repeats_in_row += 1
                if self.repeats_in_row >= MAX_REPEATS:
                    self.looped = True
                return ""
            self.seen.add(key)
        if key:
            self.repeats_in_row = 0
        return segment

    def _complete(self, segment: str) -> str:
        """A sentence just ended: what of it goes out now. Once part of it is out it differed
        from every sentence said before, so it is no repeat."""
        self.complete += 1
        if not self.sent:
            return self._release(segment)
        key = _SPACE.sub(" ", segment).strip()
        if self.drop_repeats and len(key.split()) >= MIN_REPEAT_WORDS:
            self.seen.add(key)
        self.repeats_in_row = 0
        return segment[self.sent :]

    def _hold(self, tokens_left: int | None) -> bool:
        """Whether the unfinished sentence in ``buffer`` (none of it out yet) waits."""
        so_far = _SPACE.sub(" ", self.buffer).strip()
        if not so_far:
            return True  # only whitespace: wait for the sentence itself
        if self.drop_repeats and any(said.startswith(so_far) for said in self.seen):
            return True  # may turn out a repeat
        return self.end_at_sentence and (tokens_left is None or tokens_left <= TAIL_TOKENS)

    def feed(self, delta: str, tokens_left: int | None = None) -> str:
        """The text that can go out after ``delta``. ``tokens_left``: the budget left after the
        tokens decoded so far; None when the backend cannot tell (then, with
        ``end_at_sentence``, every sentence waits for its end)."""
        if self.looped:
            return ""
        self.buffer += delta
        out: list[str] = []
        while not self.looped and (end := next_boundary(self.buffer)) is not None:
            segment, self.buffer = self.buffer[:end], self.buffer[end:]
            out.append(self._complete(segment))
            self.sent = 0
        if not self.looped and (self.sent or not self._hold(tokens_left)):
            out.append(self.buffer[self.sent :])
            self.sent = len(self.buffer)
        return "".join(out)

    def flush(self, *, truncated: bool) -> str:
        """The held-back tail at the end of the answer. ``truncated``: decoding stopped at the
        token budget, so the tail is an unfinished sentence (dropped when a complete one was
        said before it; ended with " …" when it was streaming already)."""
        tail, sent = self.buffer, self.sent
        self.buffer, self.sent = "", 0
        if self.looped:
            return ""
        if sent:
            rest = tail[sent:]
            if not (truncated and self.end_at_sentence):
                return rest
            rest = rest.rstrip()
            return rest + ("…" if (tail[:sent] + rest)[-1:].isspace() else " …")
        if not tail.strip():
            return tail
        if truncated and self.end_at_sentence and self.complete:
            return ""
        return self._release(tail)


class AnswerFilter:
    """Stop strings, then (when either option is on) the sentence filter."""

    def __init__(
        self,
        stops: Iterable[str],
        *,
        end_at_sentence: bool = False,
        drop_repeated_sentences: bool = False,
    ):
        self.stop = StopStringFilter(stops)
        self.sentences = (
            SentenceFilter(end_at_sentence=end_at_sentence, drop_repeats=drop_repeated_sentences)
            if end_at_sentence or drop_repeated_sentences
            else None
        )

    @property
    def stopped(self) -> bool:
        """A stop string was met or the model is looping: decoding can stop."""
        return self.stop.stopped or (self.sentences is not None and self.sentences.looped)

    def feed(self, delta: str, tokens_left: int | None = None) -> str:
        """``tokens_left``: the token budget left, when the backend knows it (see
        ``SentenceFilter.feed``)."""
        out = self.stop.feed(delta)
        if self.sentences is None or not out:
            return out
        return self.sentences.feed(out, tokens_left)

    def finish(self, *, truncated: bool) -> str:
        """What is left at the end; ``truncated``: the token budget ended the answer."""
        tail = self.stop.flush()
        if self.sentences is None:
            return tail
        out = self.sentences.feed(tail)
        return out + self.sentences.flush(truncated=truncated and not self.stop.stopped)
