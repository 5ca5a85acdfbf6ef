"""Explain mode, grounded by construction (issue 13, item 3).

What a student reads in an explanation comes from the course or passed a check:

1. **Coverage** (``tutor.verify.grounding``): the retrieved passages must hold a sentence that
   answers the question. If none does, the reply is the not-covered notice and nothing else:
   no LM call, no passages listed as if they supported anything. (``[tutor] general_knowledge``
   lets a deployment with a strong model answer anyway, marked as unsourced.)
2. **The course's words first**: the passages' sentences closest to the question, quoted in
   reading order with their ``[n]``. They are the explanation's facts.
3. **The LM's elaboration, sentence by sentence**: each statement is shown only when a passage
   sentence supports it (``Grounding.support``) and it passes the sentence gate (judgements,
   arithmetic); it carries its supporting passage's ``[n]``. Unsupported statements are dropped.
   At most one question is kept.
4. **One question that checks understanding** closes the reply: the LM's, or a fixed one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tutor.events import Event, Sources, TextDelta, TextReset
from tutor.grading import mentions_answer
from tutor.lm.base import Generator, Message
from tutor.protocols import PassageLike
from tutor.turns import OpenProblem, Turn, record_checks, sources_event, stream_reply
from tutor.verify import SentenceGate, VerifyContext, check_sentence
from tutor.verify.grounding import (
    COVER_THRESHOLD,
    SUPPORT_THRESHOLD,
    Encode,
    Grounding,
    check_question,
    content_keys,
)
from tutor.worked import worked_result

NOT_COVERED_REPLY = (
    "Your course material doesn't cover this, so I have no source to answer from: ask your "
    "teacher, or ask again in the words your course uses."
)
UNSOURCED_NOTE = (
    "Your course material doesn't cover this. Here is an answer that is not from your course "
    "and that I could not check against a source:\n\n"
)
QUOTE_LEAD = "Here is what your course says:\n\n"
_MARKER = re.compile(r"\[(\d{1,2})\]")


CALIBRATED = {"all-MiniLM-L6-v2": (COVER_THRESHOLD, SUPPORT_THRESHOLD)}


@dataclass(frozen=True)
class ExplainSettings:
    """``cover_threshold``/``support_threshold`` 0: the values calibrated for the embedder
    (``CALIBRATED``), or the lexical rules for an embedder without them."""

    cover_threshold: float = 0.0
    support_threshold: float = 0.0
    quote_sentences: int = 4
    general_knowledge: bool = False
    adapter: bool = False  # tutor.explain_adapter: the LM's LoRA for explain mode's sentences

    @classmethod
    def from_config(cls, t: Any) -> ExplainSettings:
        """From ``config.tutor``."""
        return cls(
            t.cover_threshold,
            t.support_threshold,
            t.quote_sentences,
            t.general_knowledge,
            t.explain_adapter,
        )


def calibrated(embedder: object, settings: ExplainSettings) -> tuple[Encode | None, float, float]:
    """(the embedder's ``encode`` or None for the lexical rules, cover and support thresholds)."""
    encode = getattr(embedder, "encode", None)
    name = str(getattr(embedder, "name", ""))
    known = next((v for k, v in CALIBRATED.items() if name.endswith(k) or k in name), None)
    cover = settings.cover_threshold or (known[0] if known else 0.0)
    support = settings.support_threshold or (known[1] if known else SUPPORT_THRESHOLD)
    if encode is None or not cover:
        return None, 0.0, 0.0
    return encode, cover, support


def grounded_check(grounding: Grounding) -> Callable[[str, VerifyContext], tuple[str, str]]:
    """The gate's check for explain mode: the usual checks, then support by a passage. A
    statement gets ``("cite", "[n]")`` or ``("unsupported", "")``; one question may stand (a
    question states nothing; the gate still checks its judgements and arithmetic), later ones
    are dropped, and so is a sentence said before in the reply."""
    questions = 0
    seen: set[str] = set()

    def check(sentence: str, ctx: VerifyContext) -> tuple[str, str]:
        nonlocal questions
        verdict, detail = check_sentence(sentence, ctx)
        if verdict != "ok":
            return verdict, detail
        text = _MARKER.sub("", sentence).strip()
        said = " ".join(content_keys(text))
        if said in seen:  # a model that loops: a sentence is shown once
            return "unsupported", ""
        seen.add(said)
        if text.endswith(":"):  # it leads into what follows, which is checked on its own
            return "unsupported", ""
        if text.endswith("?"):  # a question states nothing: the first one may stand
            questions += 1
            return ("ok", "") if questions == 1 else ("unsupported", "")
        support = grounding.support(text)
        return ("cite", f"[{support.passage}]") if support else ("unsupported", "")

    return check


def quote(grounding: Grounding, n: int, opened: OpenProblem | None) -> str:
    """The course's sentences that answer the question, in reading order, with their ``[n]``
    (none that states an open problem's answer)."""
    avoid = (lambda s: mentions_answer(s, opened.item)) if opened is not None else None
    core = sorted(grounding.core(n, avoid=avoid), key=lambda c: c.index)
    body = " ".join(f"{c.text} [{c.passage}]" for c in core)
    return f"{QUOTE_LEAD}{body}" if body else ""


def cited_in(text: str, n_passages: int) -> list[int]:
    """The passage numbers ``[n]`` the shown text cites, in order."""
    seen = [int(m) for m in _MARKER.findall(text)]
    return list(dict.fromkeys(i for i in seen if 1 <= i <= n_passages))


def explain_turn(
    *,
    generator: Generator,
    turn: Turn,
    question: str,
    passages: Sequence[PassageLike],
    embedder: object,
    settings: ExplainSettings,
    prompt: Callable[[bool], list[Message]],
    opened: OpenProblem | None,
    cancel: threading.Event | None,
) -> Iterator[Event]:
    """One explain turn (see the module docstring). ``prompt(with_passages)`` builds the LM's
    messages; the caller has retrieved ``passages`` for ``question``."""
    encode, cover, support = calibrated(embedder, settings)
    grounding = Grounding(
        question,
        [p.text for p in passages],
        encode,
        cover_threshold=cover,
        support_threshold=support,
    )
    turn.meta["coverage"] = {"covered": grounding.covered, "best": round(grounding.best, 3)}
    if not grounding.covered:
        turn.passages = []  # nothing retrieved answers it: no source is listed
        if not settings.general_knowledge:
            yield turn.say(NOT_COVERED_REPLY)
            yield Sources([])
            return
        yield turn.say(UNSOURCED_NOTE)
        gate = SentenceGate(VerifyContext(), drop_bad_math=True, early=False)
        yield from stream_reply(
            generator, turn, prompt(False), 0, None, cancel, gate, adapter=settings.adapter
        )
        record_checks(turn, gate)
        yield Sources([])
        return
    shown = quote(grounding, settings.quote_sentences, opened)
    work = worked_result(question)  # a calculation asked about, done exactly (never the LM)
    if work and not (opened is not None and mentions_answer(work, opened.item)):
        shown = f"{shown}\n\n{work}" if shown else work
        turn.meta["worked"] = work
    if shown:
        yield turn.say(shown + "\n\n")
    kept = turn.text
    gate = SentenceGate(
        VerifyContext(), drop_bad_math=True, check=grounded_check(grounding), early=False
    )
    outcome = yield from stream_reply(
        generator, turn, prompt(True), len(passages), opened, cancel, gate, adapter=settings.adapter
    )
    record_checks(turn, gate)
    turn.meta.setdefault("verify", {})["unsupported"] = gate.report.unsupported
    if outcome == "leak":  # the elaboration would give an open problem's answer away
        turn.leaks += 1
        turn.text = kept
        yield TextReset("the reply gave the answer away; it was withdrawn")
        yield TextDelta(kept)
    stopped = cancel is not None and cancel.is_set()
    if not stopped and not turn.text.rstrip().endswith("?"):
        yield turn.say(("" if turn.text.endswith((" ", "\n")) else " ") + check_question(question))
    turn.cited = cited_in(turn.text, len(passages))
    yield sources_event(turn, passages)
