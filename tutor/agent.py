"""The tutor agent: one turn = ``TutorAgent.respond(learner, session, message)`` -> events.

Per turn: load the learner (profile, mastery, the session's open problem) -> decide the mode
(``tutor.modes``) -> act. Everything that must be right does not depend on the LM:

- grading is deterministic (``tutor.grading``) and only graded attempts move mastery (BKT);
- practice items, hints from the bank, worked solutions, safety and off-topic replies are
  fixed text;
- the LM writes explanations and guiding questions, streamed through a citation filter (no
  invented ``[n]``) and, while a problem is open and the solution not earned, the leak guard:
  a reply that would state the answer is withdrawn (``TextReset``), regenerated once with a
  stricter instruction, then replaced by the next hint.

Every user and assistant message, attempt and state change is persisted before the turn ends;
a turn stopped by the consumer (Stop button, Ctrl-C) still stores what was shown.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from tutor import safety
from tutor.errors import InputError
from tutor.events import (
    Done,
    Event,
    Grading,
    ItemServed,
    MasteryChange,
    ModeChosen,
    SourceRef,
    Sources,
    TextDelta,
    TextReset,
)
from tutor.grading import AnswerSpec, GradeResult, grade, mentions_answer
from tutor.guard import CitationFilter, LeakGuard
from tutor.items import Item
from tutor.modes import Intent, computable_problem, detect_intent
from tutor.problems import diagnose, scaffold, solve
from tutor.prompts import HINT_LADDER, LearnerSummary, ProblemState, PromptPassage, build_messages

log = logging.getLogger(__name__)

NOT_COVERED = "Your course material doesn't cover this, so I have no source to cite. "
GENERIC_HINT = "Let's take it one step at a time. What is the first thing you would do?"
MAX_LADDER = len(HINT_LADDER) - 1  # the last rung is the full solution


@dataclass
class AgentSettings:
    """The knobs of the agent (from ``[tutor]`` and ``[kb]``)."""

    solution_after_attempts: int = 2
    max_message_chars: int = 4000
    leak_guard: bool = True
    leak_retries: int = 1
    history_turns: int = 12
    top_k: int = 4
    min_score: float = 0.25
    max_new_tokens: int = 256

    @classmethod
    def from_config(cls, config: Any) -> AgentSettings:
        t, kb = config.tutor, config.kb
        return cls(
            solution_after_attempts=t.solution_after_attempts,
            max_message_chars=t.max_message_chars,
            leak_guard=t.leak_guard,
            leak_retries=t.leak_retries,
            history_turns=t.history_turns,
            top_k=kb.top_k,
            min_score=kb.min_score,
            max_new_tokens=config.lm.max_new_tokens,
        )


@dataclass
class _Open:
    """The open problem of a session: a bank item or a problem the learner brought."""

    item: Item
    from_bank: bool
    expression: str = ""  # a learner's own problem: what was solved ("1/2 + 1/3")


@dataclass
class _Turn:
    """Mutable bookkeeping of one turn."""

    mode: str
    intent: Intent
    text: str = ""
    leaks: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    passages: list[Any] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)
    prompt: list[dict[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def add_time(self, key: str, started: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + (time.perf_counter() - started) * 1000


class TutorAgent:
    """Combines the LM (``generator``), the learner store and the knowledge base."""

    def __init__(
        self,
        generator: Any,
        store: Any,
        kb: Any = None,
        settings: AgentSettings | None = None,
        *,
        show_prompt: bool = False,
    ):
        self.generator = generator
        self.store = store
        self.kb = kb
        self.settings = settings or AgentSettings()
        self.show_prompt = show_prompt

    # -- sessions -------------------------------------------------------------------------
    def learner(self, learner: Any) -> Any:
        """A ``Learner`` from an object, an id or a name (an unknown one is an error)."""
        if hasattr(learner, "id") and hasattr(learner, "name"):
            return learner
        if isinstance(learner, int):
            return self.store.get_learner(learner)
        return self.store.find_learner(str(learner))

    def start_session(self, learner: Any, collection: str = "default") -> Any:
        return self.store.start_session(self.learner(learner).id, collection=collection)

    # -- the turn -------------------------------------------------------------------------
    def respond(
        self,
        learner: Any,
        session: Any,
        message: str,
        *,
        mode: str = "auto",
        cancel: threading.Event | None = None,
    ) -> Iterator[Event]:
        t_start = time.perf_counter()
        text = (message or "").strip()
        if not text:
            raise InputError("the message is empty; type a question or an answer")
        if len(text) > self.settings.max_message_chars:
            raise InputError(
                f"the message has {len(text)} characters; the limit is "
                f"{self.settings.max_message_chars} (tutor.max_message_chars). Shorten it or "
                f"split it into several messages"
            )
        if mode not in ("auto", "explain", "guide", "practice"):
            raise InputError(f"mode {mode!r} is not known; use auto, explain, guide or practice")
        t0 = time.perf_counter()
        lrn = self.learner(learner)
        sess_id = session.id if hasattr(session, "id") else str(session)
        sess = self.store.get_session(sess_id, learner_id=lrn.id)
        state = self.store.get_state(sess.id, learner_id=lrn.id)
        opened = self._open_problem(sess.collection, state)
        intent = detect_intent(text, explicit_mode=mode, problem_open=opened is not None)
        turn = _Turn(mode=intent.mode, intent=intent)
        turn.add_time("profile_ms", t0)

        t0 = time.perf_counter()
        history = self._history(sess.id, lrn.id)
        self.store.add_message(
            sess.id,
            "user",
            text,
            meta={"mode": intent.mode, "rule": intent.rule},
            learner_id=lrn.id,
        )
        turn.add_time("persist_ms", t0)
        yield ModeChosen(intent.mode, intent.rule)

        stopped = True
        try:
            yield from self._act(turn, lrn, sess, state, opened, text, history, cancel)
            stopped = False
        finally:
            t0 = time.perf_counter()
            meta = {
                "mode": turn.mode,
                "rule": intent.rule,
                "leaks_blocked": turn.leaks,
                "sources": [p.citation for p in turn.passages],
                # the passage texts too, so a reloaded chat can still show what was cited
                "passages": [p.text for p in turn.passages],
                "cited": turn.cited,
                **turn.meta,
            }
            if stopped or (cancel is not None and cancel.is_set()):
                meta["stopped"] = True  # closed by the consumer, or cut short by ``cancel``
            saved = None
            if turn.text or not stopped:
                saved = self.store.add_message(
                    sess.id, "assistant", turn.text, meta=meta, learner_id=lrn.id
                )
            turn.add_time("persist_ms", t0)
        turn.timings["total_ms"] = (time.perf_counter() - t_start) * 1000
        turn.timings["overhead_ms"] = turn.timings["total_ms"] - turn.timings.get(
            "generation_ms", 0.0
        )
        yield Done(
            text=turn.text,
            mode=turn.mode,
            session_id=sess.id,
            message_id=saved.id if saved is not None else None,
            timings={k: round(v, 2) for k, v in turn.timings.items()},
            leaks_blocked=turn.leaks,
            prompt=turn.prompt if self.show_prompt else [],
        )

    # -- actions --------------------------------------------------------------------------
    def _act(
        self,
        turn: _Turn,
        lrn: Any,
        sess: Any,
        state: Any,
        opened: _Open | None,
        text: str,
        history: list[dict[str, str]],
        cancel: threading.Event | None,
    ) -> Iterator[Event]:
        action = turn.intent.action
        if turn.intent.rule == "unsafe":
            yield from self._say(turn, safety.redirect_reply(text))
            return
        if action == "greet":
            yield from self._say(turn, safety.GREETING_REPLY)
            return
        if turn.mode == "offtopic":
            yield from self._say(turn, safety.OFFTOPIC_REPLY)
            return
        if action == "next_item":
            yield from self._serve_item(turn, lrn, sess, state)
            return
        if action == "grade" and opened is not None:
            yield from self._grade(turn, lrn, sess, state, opened, text, history, cancel)
            return
        if action in ("hint", "solution") and opened is not None:
            yield from self._help(turn, lrn, sess, state, opened, text, history, cancel, action)
            return
        if action == "open_problem":
            expr = computable_problem(text)
            known = solve(expr, text) if expr else None
            if known is not None:
                fresh = state.with_item(None, problem=text, answer=_answer_value(known.answer))
                state = self.store.set_state(
                    sess.id,
                    replace(fresh, extra={"expression": known.expression}),
                    learner_id=lrn.id,
                )
                steps = scaffold(known.expression)
                opened = _Open(
                    _problem_item(text, known.answer, steps),
                    from_bank=False,
                    expression=known.expression,
                )
                turn.meta["problem"] = text
                if steps:  # a recognised problem type: the first rung is a fixed, correct question
                    yield from self._say(turn, f"Let's work it out together. {steps[0]}")
                    return
        # explain / guide with the LM (guarded while a problem is open)
        yield from self._generate(turn, lrn, sess, state, opened, text, history, cancel)

    def _say(self, turn: _Turn, reply: str) -> Iterator[Event]:
        turn.text += reply
        yield TextDelta(reply)
        yield Sources([])

    def _serve_item(self, turn: _Turn, lrn: Any, sess: Any, state: Any) -> Iterator[Event]:
        t0 = time.perf_counter()
        sel = self.store.next_item(lrn.id, sess.collection)
        turn.add_time("selection_ms", t0)
        if sel is None:
            yield from self._say(
                turn,
                "There are no practice items for this course yet; ask your teacher to add some.",
            )
            return
        item = sel.item
        self.store.set_state(sess.id, state.with_item(item.id), learner_id=lrn.id)
        skills = self.store.skills(sess.collection)
        skill_name = skills[sel.skill].name if sel.skill in skills else sel.skill
        turn.meta["item_id"] = item.id
        yield ItemServed(
            item.id, sel.skill, item.render(), item.difficulty, round(sel.p_correct, 3)
        )
        yield from self._say(
            turn,
            f"Here is a problem on {skill_name}:\n\n{item.render()}\n\nType your answer, or ask for a hint.",
        )

    def _grade(
        self,
        turn: _Turn,
        lrn: Any,
        sess: Any,
        state: Any,
        opened: _Open,
        text: str,
        history: list[dict[str, str]],
        cancel: threading.Event | None,
    ) -> Iterator[Event]:
        t0 = time.perf_counter()
        item = opened.item
        result = grade(item, text)
        turn.add_time("grading_ms", t0)
        t0 = time.perf_counter()
        attempts = state.attempts + 1
        outcome = None
        if opened.from_bank:
            outcome = self.store.record_attempt(
                lrn.id, item, text, result, session_id=sess.id, hint_level=state.hint_level
            )
        earned = result.correct or attempts >= self.settings.solution_after_attempts
        if result.correct:
            new_state = state.with_item(None)
        else:
            new_state = replace(
                state,
                attempts=attempts,
                hint_level=min(
                    state.hint_level + 1, MAX_LADDER - 1
                ),  # each wrong try climbs a rung,
                last_code=result.code,
                solution_earned=state.solution_earned or earned,
            )
        self.store.set_state(sess.id, new_state, learner_id=lrn.id)
        turn.add_time("persist_ms", t0)
        turn.meta["grading"] = {"item_id": item.id, "correct": result.correct, "code": result.code}
        yield Grading(
            item.id,
            text,
            result.correct,
            result.code,
            result.message,
            attempts,
            expected=result.expected if result.correct else "",
        )
        if outcome is not None:
            masteries = self.store.mastery(lrn.id, item.skills)
            for skill in item.skills:
                m = masteries.get(skill)
                yield MasteryChange(
                    skill,
                    round(outcome.mastery_before.get(skill, 0.0), 4),
                    round(outcome.mastery_after.get(skill, 0.0), 4),
                    round(m.p_correct, 4) if m else 0.0,
                )
        feedback = _feedback_line(result, attempts)
        mistake = "" if result.correct else diagnose(opened.expression, text)
        if mistake:  # a known misconception says more than the checker's generic verdict
            feedback = f"Not quite. {mistake}"
        if result.correct:
            turn.mode = "practice"
            closing = ' Say "next" for another problem.' if opened.from_bank else ""
            yield from self._say(turn, feedback + closing)
            return
        # wrong: name the mistake first (deterministic), then the next rung of the ladder
        turn.text += feedback + " "
        yield TextDelta(feedback + " ")
        hint = _bank_hint(item, new_state.hint_level)
        if hint:
            yield from self._say(turn, f"Hint: {hint}")
            return
        problem = ProblemState(
            problem=item.prompt,
            attempts=attempts,
            hint_level=new_state.hint_level,
            last_answer=text,
            verdict=f"incorrect: {mistake or result.message}",
        )
        yield from self._generate(
            turn, lrn, sess, new_state, opened, text, history, cancel, problem=problem
        )

    def _help(
        self,
        turn: _Turn,
        lrn: Any,
        sess: Any,
        state: Any,
        opened: _Open,
        text: str,
        history: list[dict[str, str]],
        cancel: threading.Event | None,
        action: str,
    ) -> Iterator[Event]:
        item = opened.item
        allowed = state.solution_earned or state.attempts >= self.settings.solution_after_attempts
        if action == "solution" and allowed:
            self.store.set_state(
                sess.id,
                replace(
                    state,
                    solution_earned=True,
                    solution_shown=True,
                    item_id=None,
                    problem="",
                    answer="",
                ),
                learner_id=lrn.id,
            )
            solution = item.solution or f"The answer is {item.answer.value}."
            turn.meta["solution_shown"] = item.id
            yield from self._say(
                turn, f"Here is the full solution:\n\n{solution}\n\nAnswer: {item.answer.value}"
            )
            return
        prefix = ""
        if action == "solution":
            need = self.settings.solution_after_attempts - state.attempts
            prefix = (
                f"Let's try a bit more first: after {need} more attempt{'s' if need != 1 else ''} "
                f"I can show the full solution. "
            )
        level = min(state.hint_level + 1, MAX_LADDER - 1)
        new_state = self.store.set_state(
            sess.id, replace(state, hint_level=level), learner_id=lrn.id
        )
        turn.meta["hint_level"] = level
        hint = _bank_hint(item, level)
        if hint:
            yield from self._say(turn, f"{prefix}Hint: {hint}")
            return
        if prefix:
            turn.text += prefix
            yield TextDelta(prefix)
        problem = ProblemState(problem=item.prompt, attempts=state.attempts, hint_level=level)
        yield from self._generate(
            turn, lrn, sess, new_state, opened, text, history, cancel, problem=problem
        )

    # -- the LM path ----------------------------------------------------------------------
    def _generate(
        self,
        turn: _Turn,
        lrn: Any,
        sess: Any,
        state: Any,
        opened: _Open | None,
        text: str,
        history: list[dict[str, str]],
        cancel: threading.Event | None,
        *,
        problem: ProblemState | None = None,
    ) -> Iterator[Event]:
        t0 = time.perf_counter()
        summary = self._learner_summary(lrn, sess.collection)
        turn.add_time("profile_ms", t0)
        # an answer or a hint request says little on its own: search with the problem
        query = (
            opened.item.prompt
            if opened is not None and turn.intent.action in ("grade", "hint", "solution")
            else text
        )
        passages = self._retrieve(turn, query, sess.collection)
        mode = turn.mode if turn.mode in ("explain", "guide", "practice") else "explain"
        if opened is not None and problem is None:
            problem = ProblemState(
                problem=opened.item.prompt, attempts=state.attempts, hint_level=state.hint_level
            )
        if mode == "explain" and not passages:
            turn.text += NOT_COVERED
            yield TextDelta(NOT_COVERED)
        guard_on = self.settings.leak_guard and opened is not None
        strict = False
        for _attempt in range(self.settings.leak_retries + 1):
            t0 = time.perf_counter()
            prompt_passages = [
                PromptPassage(i + 1, p.citation, p.text) for i, p in enumerate(passages)
            ]
            msgs = build_messages(
                mode,
                text,
                history=history,
                learner=summary,
                passages=prompt_passages,
                problem=problem if mode in ("guide", "practice") else None,
                count_tokens=getattr(self.generator, "count_tokens", None),
                budget=max(
                    int(getattr(self.generator, "context_window", 0))
                    - self.settings.max_new_tokens,
                    0,
                ),
                max_history=self.settings.history_turns * 2,
                strict=strict,
            )
            turn.prompt = msgs
            turn.add_time("prompt_ms", t0)
            shown_before = turn.text
            leaked = yield from self._stream(
                turn, msgs, len(prompt_passages), opened if guard_on else None, cancel
            )
            if not leaked:
                break
            turn.leaks += 1
            turn.text = shown_before
            yield TextReset("the reply gave the answer away; asking again")
            strict = True
        else:
            fallback = _bank_hint(opened.item, max(state.hint_level, 1)) if opened else ""
            reply = f"Hint: {fallback}" if fallback else GENERIC_HINT
            turn.text += reply
            yield TextDelta(reply)
        yield self._sources(turn, passages)

    def _stream(
        self,
        turn: _Turn,
        msgs: list[dict[str, str]],
        n_passages: int,
        guarded: _Open | None,
        cancel: threading.Event | None,
    ) -> Iterator[Event]:
        """Stream one generation; returns True when the leak guard tripped."""
        cites = CitationFilter(n_passages)
        guard = None
        if guarded is not None:
            item = guarded.item

            def leaks(candidate: str) -> bool:
                g0 = time.perf_counter()
                try:
                    return mentions_answer(candidate, item)
                finally:
                    turn.add_time("guard_ms", g0)

            guard = LeakGuard(leaks)
        local_cancel = threading.Event()
        if cancel is not None and cancel.is_set():
            local_cancel.set()
        t0 = time.perf_counter()
        first = True
        stream = self.generator.stream(msgs, cancel=local_cancel)
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
                if out:
                    turn.text += out
                    yield TextDelta(out)
            tail = cites.finish()
            if guard is not None and not guard.tripped:
                tail = guard.feed(tail) + guard.finish()
            if tail and not (guard is not None and guard.tripped):
                turn.text += tail
                yield TextDelta(tail)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
            turn.add_time("generation_ms", t0)
        turn.cited = list(cites.cited)
        return bool(guard is not None and guard.tripped)

    # -- helpers --------------------------------------------------------------------------
    def _retrieve(self, turn: _Turn, text: str, collection: str) -> list[Any]:
        if self.kb is None:
            return []
        t0 = time.perf_counter()
        try:
            found = self.kb.search(text, k=self.settings.top_k, collection=collection)
        finally:
            turn.add_time("retrieval_ms", t0)
        relevant = [
            p for p in found if p.similarity is None or p.similarity >= self.settings.min_score
        ]
        turn.passages = relevant
        return relevant

    def _sources(self, turn: _Turn, passages: list[Any]) -> Sources:
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

    def _history(self, session_id: str, learner_id: int) -> list[dict[str, str]]:
        msgs = self.store.messages(
            session_id, limit=self.settings.history_turns * 4, learner_id=learner_id
        )
        return [
            {"role": m.role, "content": m.content}
            for m in msgs
            if m.role in ("user", "assistant") and m.content
        ]

    def _learner_summary(self, lrn: Any, collection: str) -> LearnerSummary:
        profile = self.store.get_profile(lrn.id)
        mastery = self.store.mastery(lrn.id)
        skills = self.store.skills(collection)
        practised = [m for m in mastery.values() if m.n_attempts > 0]

        def name(s: str) -> str:
            return skills[s].name if s in skills else s

        weakest = sorted((m for m in practised if not m.mastered), key=lambda m: m.p_mastery)[:2]
        strongest = sorted(practised, key=lambda m: -m.p_mastery)[:2]
        return LearnerSummary(
            name=lrn.display_name or lrn.name,
            grade_level=profile.grade_level,
            language=profile.language,
            goals=profile.goals,
            preferences=profile.preferences,
            weakest=[(name(m.skill), m.p_mastery) for m in weakest],
            strongest=[(name(m.skill), m.p_mastery) for m in strongest if m not in weakest],
        )

    def _open_problem(self, collection: str, state: Any) -> _Open | None:
        if state.item_id:
            try:
                return _Open(self.store.get_item(collection, state.item_id), from_bank=True)
            except Exception:  # the item was removed from the bank since
                log.info("open item %s is no longer in collection %s", state.item_id, collection)
                return None
        if state.problem and state.answer:
            expression = state.extra.get("expression", "") if state.extra else ""
            steps = scaffold(expression)
            return _Open(
                _problem_item(state.problem, state.answer, steps),
                from_bank=False,
                expression=expression,
            )
        return None


# -- module helpers ---------------------------------------------------------------------------


def _answer_value(answer: str) -> str:
    """``"x = 4"`` -> ``"4"`` (the grader accepts ``x = 4`` for 4)."""
    return answer.split("=", 1)[1].strip() if "=" in answer else answer


def _problem_item(statement: str, answer: str, steps: list[str] | None = None) -> Item:
    """A learner-brought problem as an item, so grading, hints and the leak guard treat it
    alike. ``steps`` is its scaffold: rung 0 opened the problem, the rest are the hints."""
    digest = hashlib.sha1(statement.encode("utf-8")).hexdigest()[:10]
    return Item(
        id=f"problem-{digest}",
        skills=("own-problem",),
        prompt=statement,
        answer=AnswerSpec.infer(_answer_value(answer)),
        hints=tuple((steps or [])[1:]),
        solution="",
    )


def _bank_hint(item: Item, level: int) -> str:
    """The bank's hint for ladder rung ``level`` (1-based); the last one when fewer exist."""
    if not item.hints or level <= 0:
        return ""
    return item.hints[min(level, len(item.hints)) - 1]


def _feedback_line(result: GradeResult, attempts: int) -> str:
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
