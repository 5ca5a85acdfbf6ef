"""The pieces of one tutor turn that do not need the agent: its bookkeeping (``Turn``), the open
problem (``OpenProblem``), the LM stream's post-processing and the fixed reply texts.

``stream_reply`` runs one generation through the citation filter (no invented ``[n]``), the
leak guard (for a guarded problem) and the sentence gate of ``tutor.verify`` (judgements the
grader does not back, false or unverifiable arithmetic); it yields ``TextDelta`` events (and a
``TextReset`` with the kept text when the gate withdraws a sentence whose start was shown) and
returns what tripped (``"ok"``, ``"math"`` or ``"leak"``). ``verify_context`` says what the
gate checks against. ``sources_event`` turns the retrieved passages into the ``Sources`` event.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Generator as Coroutine
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tutor.events import Event, SourceRef, Sources, TextDelta, TextReset
from tutor.grading import AnswerSpec, GradeResult, mentions_answer
from tutor.guard import CitationFilter, LeakGuard
from tutor.items import Item
from tutor.lm.base import Generator, Message
from tutor.modes import Intent
from tutor.protocols import PassageLike
from tutor.verify import (
    LAST_ANSWER_WRONG,
    STEP_RIGHT,
    STEP_WRONG,
    SentenceGate,
    VerifyContext,
    check_claim,
    find_claims,
)
from tutor.verify.arithmetic import problem_equations


@dataclass
class OpenProblem:
    """The open problem of a session: a bank item or a problem the learner brought."""

    item: Item
    from_bank: bool
    expression: str = ""  # a learner's own problem: what was solved ("1/2 + 1/3")


@dataclass
class Turn:
    """Mutable bookkeeping of one turn."""

    mode: str
    intent: Intent
    text: str = ""
    leaks: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    passages: list[PassageLike] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)
    prompt: list[Message] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def add_time(self, key: str, started: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + (time.perf_counter() - started) * 1000

    def say(self, text: str) -> TextDelta:
        """Append ``text`` to the reply; the event that shows it."""
        self.text += text
        return TextDelta(text)


def _leak_guard(turn: Turn, item: Item) -> LeakGuard:
    def leaks(candidate: str) -> bool:
        g0 = time.perf_counter()
        try:
            return mentions_answer(candidate, item)
        finally:
            turn.add_time("guard_ms", g0)

    return LeakGuard(leaks)


def verify_context(
    opened: OpenProblem | None, attempts: int, learner_text: str, graded: bool | None
) -> VerifyContext:
    """What the sentence gate checks a reply against. The verdict on the learner's latest
    work: this turn's grade (``graded``; its feedback line is already shown), else the
    arithmetic of the step the learner wrote, else the last graded attempt on the open problem
    (a right one closes it, so an open problem with attempts was answered wrongly), else
    ``"unknown"`` (then no judgement of the learner's work stands)."""
    equations: tuple[str, ...] = ()
    if opened is not None:
        equations = problem_equations(opened.expression) + problem_equations(opened.item.prompt)
    variables = frozenset(c for eq in equations for c in eq if c.isalpha() and c != "U")
    base = VerifyContext(equations=equations, variables=variables)
    if graded is not None:
        return replace(base, verdict="correct" if graded else "incorrect")
    step = [check_claim(c, equations) for c in find_claims(learner_text, variables)]
    if False in step:
        return replace(base, verdict="incorrect", verdict_line=STEP_WRONG)
    if step and all(step):
        return replace(base, verdict="correct", verdict_line=STEP_RIGHT)
    if opened is not None and attempts > 0:
        return replace(base, verdict="incorrect", verdict_line=LAST_ANSWER_WRONG)
    return base


def _show(turn: Turn, gate: SentenceGate, text: str) -> Iterator[Event]:
    """Show ``text``; first, when the gate withdrew the shown start of a sentence that failed
    its check, reset the turn's text and show it again without that start."""
    if gate.retract:
        turn.text, gate.retract = turn.text[: len(turn.text) - gate.retract], 0
        yield TextReset("a sentence did not pass the checks; it was withdrawn")
        if turn.text:
            yield TextDelta(turn.text)
    if text:
        yield turn.say(text)


def stream_reply(
    generator: Generator,
    turn: Turn,
    msgs: list[Message],
    n_passages: int,
    guarded: OpenProblem | None,
    cancel: threading.Event | None,
    gate: SentenceGate | None = None,
    **options: Any,
) -> Coroutine[Event, None, str]:
    """Stream one generation into ``turn``; returns ``"leak"`` when the leak guard tripped,
    ``"math"`` when the gate met a false or unverifiable claim (nothing of it was shown),
    else ``"ok"``. ``options`` go to the generator (``GenerationOptions`` fields)."""
    cites = CitationFilter(n_passages)
    gate = gate if gate is not None else SentenceGate(VerifyContext(), drop_bad_math=True)
    guard = _leak_guard(turn, guarded.item) if guarded is not None else None
    local_cancel = threading.Event()
    if cancel is not None and cancel.is_set():
        local_cancel.set()
    t0 = time.perf_counter()
    first = True
    stream = generator.stream(msgs, cancel=local_cancel, **options)
    try:
        for delta in stream:
            if cancel is not None and cancel.is_set():
                local_cancel.set()
                break
            if first:
                turn.timings["ttft_ms"] = (time.perf_counter() - t0) * 1000
                first = False
            out = cites.feed(delta)
            if guard is not None:
                out = guard.feed(out)
                if guard.tripped:
                    local_cancel.set()
                    break
            out = gate.feed(out)
            if gate.tripped:
                local_cancel.set()
                break
            yield from _show(turn, gate, out)
        tail = "" if gate.tripped else cites.finish()
        if guard is not None and not guard.tripped and not gate.tripped:
            tail = guard.feed(tail) + guard.finish()
        if not gate.tripped and not (guard is not None and guard.tripped):
            tail = gate.feed(tail) + gate.finish()
            if not gate.tripped:
                yield from _show(turn, gate, tail)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        turn.add_time("generation_ms", t0)
        turn.timings["verify_ms"] = turn.timings.get("verify_ms", 0.0) + gate.report.check_ms
    turn.cited = list(cites.cited)
    if guard is not None and guard.tripped:
        return "leak"
    return "math" if gate.tripped else "ok"


def record_checks(turn: Turn, gate: SentenceGate) -> None:
    """Add what the sentence gate withheld to the turn's stored meta (``verify``)."""
    r = gate.report
    counts = turn.meta.setdefault("verify", {})
    for key in (
        "judgements_withdrawn",
        "false_claims",
        "unverified_claims",
        "sentences_dropped",
        "cut_dropped",
    ):
        counts[key] = counts.get(key, 0) + getattr(r, key)


def sources_event(turn: Turn, passages: Sequence[PassageLike]) -> Sources:
    """The passages shown for this turn, numbered as the prompt numbered them."""
    return Sources(
        [
            SourceRef(
                index=i + 1,
                citation=p.citation,
                text=p.text,
                doc_id=p.doc_id,
                chunk_id=p.chunk_id,
                score=round(float(p.similarity if p.similarity is not None else p.score), 4),
                cited=(i + 1) in turn.cited,
            )
            for i, p in enumerate(passages)
        ]
    )


def answer_value(answer: str) -> str:
    """``"x = 4"`` -> ``"4"`` (the grader accepts ``x = 4`` for 4)."""
    return answer.split("=", 1)[1].strip() if "=" in answer else answer


def problem_item(statement: str, answer: str, steps: list[str] | None = None) -> Item:
    """A learner-brought problem as an item, so grading, hints and the leak guard treat it
    alike. ``steps`` is its scaffold: rung 0 opened the problem, the rest are the hints."""
    digest = hashlib.sha1(statement.encode("utf-8")).hexdigest()[:10]
    return Item(
        id=f"problem-{digest}",
        skills=("own-problem",),
        prompt=statement,
        answer=AnswerSpec.infer(answer_value(answer)),
        hints=tuple((steps or [])[1:]),
        solution="",
    )


def bank_hint(item: Item, level: int) -> str:
    """The bank's hint for ladder rung ``level`` (1-based); the last one when fewer exist."""
    if not item.hints or level <= 0:
        return ""
    return item.hints[min(level, len(item.hints)) - 1]


def feedback_line(result: GradeResult, attempts: int) -> str:
    """The fixed verdict line for a graded answer (never the expected answer when wrong)."""
    if result.correct:
        extra = "" if result.code == "correct" else f" {result.message}"
        return f"Correct — well done!{extra}".rstrip()
    if result.code == "not_parsed":
        return (
            "I couldn't read that as an answer. Could you write just the answer, like 3/4 or 12 cm?"
        )
    if result.code == "incorrect":
        return "Not quite — that isn't right yet."
    lead = "Close, but not quite." if result.close else "Not quite."
    return f"{lead} {result.message}"


def says_nothing(text: str) -> bool:
    """A reply the learner can do nothing with: no question and at most three words ("Great
    try!", left alone when the checks withdrew the rest). Empty text is not this case: the
    checks' own fallback handles it."""
    words = text.split()
    return 0 < len(words) <= 3 and "?" not in text


GENERIC_HINT = "Let's take it one step at a time. What is the first thing you would do?"


def fixed_move(turn: Turn, opened: OpenProblem | None, hint_level: int) -> str:
    """What follows a reply the checks left with nothing to work with: the open item's hint at
    the learner's level (at least the first), or ``GENERIC_HINT``; a space first when the text
    shown so far needs one."""
    hint = bank_hint(opened.item, max(hint_level, 1)) if opened else ""
    gap = " " if turn.text and not turn.text.endswith((" ", "\n")) else ""
    return gap + (f"Hint: {hint}" if hint else GENERIC_HINT)
