"""The tutor agent: one turn = ``TutorAgent.respond(learner, session, message)`` -> events.

Per turn: load the learner (profile, mastery, the session's open problem) -> decide the mode
(``tutor.modes``) -> act. Everything that must be right does not depend on the LM:

- grading is deterministic (``tutor.grading``) and only graded attempts move mastery (BKT);
- practice items, hints from the bank, worked solutions, safety and off-topic replies are
  fixed text;
- the LM writes explanations and guiding questions, streamed through a citation filter (no
  invented ``[n]``), the sentence gate (``tutor.verify``: a judgement of the learner's work the
  grader does not back is replaced by the verdict or dropped; a false or unverifiable
  calculation withdraws the reply, ``TextReset``, for one stricter regeneration whose bad
  sentences are dropped) and, while a problem is open and the solution not earned, the leak
  guard: a reply that would state the answer is withdrawn (``TextReset``), regenerated once with
  a stricter instruction, then replaced by the next hint (``tutor.turns`` holds the streaming).

Every user and assistant message, attempt and state change is persisted before the turn ends;
a turn stopped by the consumer (Stop button, Ctrl-C) still stores what was shown.
"""

from __future__ import annotations

import collections.abc
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from tutor import safety
from tutor.candidates import best_of_n
from tutor.errors import InputError
from tutor.events import (
    Done,
    Event,
    Grading,
    ItemServed,
    MasteryChange,
    ModeChosen,
    Sources,
    TextDelta,
    TextReset,
)
from tutor.explain import ExplainSettings, explain_turn
from tutor.grading import GradeResult, grade
from tutor.guide import NO_PROBLEM_REPLY, guide_reply, help_reply, reply_mode, word_problem_help
from tutor.intents import IntentReader, turn_state
from tutor.lm.base import Generator, Message
from tutor.modes import detect_intent
from tutor.opening import TurnContext, open_own_problem, open_word_problem, word_problem_open
from tutor.problems import diagnose
from tutor.prompts import HINT_LADDER, LearnerSummary, ProblemState, PromptPassage, build_messages
from tutor.protocols import KnowledgeBaseLike, PassageLike
from tutor.services import check_mode, learner_summary, open_problem
from tutor.turns import (
    OpenProblem,
    Turn,
    bank_hint,
    feedback_line,
    fixed_move,
    record_checks,
    says_nothing,
    sources_event,
    stream_reply,
    verify_context,
)
from tutor.verify import SentenceGate

if TYPE_CHECKING:
    from tutor.config import Config
    from tutor.store.protocol import TutorStore
    from tutor.store.records import AttemptOutcome, Learner, Session, SessionState

log = logging.getLogger(__name__)

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
    explain: ExplainSettings = field(default_factory=ExplainSettings)
    intent_model: bool = True
    candidates: int = 1  # best-of-N replies for an LM turn (tutor.candidates)

    @classmethod
    def from_config(cls, config: Config) -> AgentSettings:
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
            explain=ExplainSettings.from_config(t),
            intent_model=t.intent_model,
            candidates=t.candidates,
        )


class TutorAgent:
    """Combines the LM (``generator``), the learner store and the knowledge base."""

    def __init__(
        self,
        generator: Generator,
        store: TutorStore,
        kb: KnowledgeBaseLike | None = None,
        settings: AgentSettings | None = None,
        *,
        show_prompt: bool = False,
    ):
        self.generator = generator
        self.store = store
        self.kb = kb
        self.settings = settings or AgentSettings()
        self.show_prompt = show_prompt
        self.intents = IntentReader(
            lambda: getattr(self.kb, "embedder", None), enabled=self.settings.intent_model
        )

    # -- sessions -------------------------------------------------------------------------
    def learner(self, learner: Learner | int | str) -> Learner:
        """A ``Learner`` from an object, an id or a name (an unknown one is an error)."""
        if hasattr(learner, "id") and hasattr(learner, "name"):
            return learner  # type: ignore[return-value]  # a Learner (or one alike)
        if isinstance(learner, int):
            return self.store.get_learner(learner)
        return self.store.find_learner(str(learner))

    def start_session(self, learner: Learner | int | str, collection: str = "default") -> Session:
        return self.store.start_session(self.learner(learner).id, collection=collection)

    # -- the turn -------------------------------------------------------------------------
    def _check(self, message: str, mode: str) -> str:
        """The message, stripped; an ``InputError`` for an empty or overlong one or a bad mode."""
        text = (message or "").strip()
        if not text:
            raise InputError("the message is empty; type a question or an answer")
        if len(text) > self.settings.max_message_chars:
            raise InputError(
                f"the message has {len(text)} characters; the limit is "
                f"{self.settings.max_message_chars} (tutor.max_message_chars). Shorten it or "
                f"split it into several messages"
            )
        check_mode(mode)
        return text

    def respond(
        self,
        learner: Learner | int | str,
        session: Session | str,
        message: str,
        *,
        mode: str = "auto",
        cancel: threading.Event | None = None,
    ) -> collections.abc.Generator[Event, None, None]:
        t_start = time.perf_counter()
        text = self._check(message, mode)
        t0 = time.perf_counter()
        lrn = self.learner(learner)
        sess_id = session.id if hasattr(session, "id") else str(session)
        sess = self.store.get_session(sess_id, learner_id=lrn.id)
        state = self.store.get_state(sess.id, learner_id=lrn.id)
        opened = self._open_problem(sess.collection, state)
        history = self._history(sess.id, lrn.id)
        t1 = time.perf_counter()
        classifier = self.intents.classifier(turn_state(opened, state, history))
        intent = detect_intent(
            text,
            explicit_mode=mode,
            problem_open=opened is not None or word_problem_open(state),
            classifier=classifier,
        )
        turn = Turn(mode=intent.mode, intent=intent)
        turn.add_time("intent_ms", t1)  # the model's embedding is reused by the search
        turn.timings["profile_ms"] = (t1 - t0) * 1000

        t0 = time.perf_counter()
        meta = {"mode": intent.mode, "rule": intent.rule}
        self.store.add_message(sess.id, "user", text, meta=meta, learner_id=lrn.id)
        turn.add_time("persist_ms", t0)
        yield ModeChosen(intent.mode, intent.rule)

        ctx = TurnContext(turn, lrn, sess, state, opened, text, history, cancel)
        stopped = True
        message_id = None
        try:
            yield from self._act(ctx)
            stopped = False
        finally:
            message_id = self._save_reply(ctx, stopped)
        turn.timings["total_ms"] = (time.perf_counter() - t_start) * 1000
        turn.timings["overhead_ms"] = turn.timings["total_ms"] - turn.timings.get(
            "generation_ms", 0.0
        )
        yield Done(
            text=turn.text,
            mode=turn.mode,
            session_id=sess.id,
            message_id=message_id,
            timings={k: round(v, 2) for k, v in turn.timings.items()},
            leaks_blocked=turn.leaks,
            prompt=turn.prompt if self.show_prompt else [],
        )

    def _save_reply(self, ctx: TurnContext, stopped: bool) -> int | None:
        """Store the reply as shown (also when the turn was stopped); its message id."""
        turn = ctx.turn
        t0 = time.perf_counter()
        meta = {
            "mode": turn.mode,
            "rule": turn.intent.rule,
            "leaks_blocked": turn.leaks,
            "sources": [p.citation for p in turn.passages],
            # the passage texts too, so a reloaded chat can still show what was cited
            "passages": [p.text for p in turn.passages],
            "cited": turn.cited,
            **turn.meta,
        }
        if stopped or (ctx.cancel is not None and ctx.cancel.is_set()):
            meta["stopped"] = True  # closed by the consumer, or cut short by ``cancel``
        saved = None
        if turn.text or not stopped:
            saved = self.store.add_message(
                ctx.sess.id, "assistant", turn.text, meta=meta, learner_id=ctx.lrn.id
            )
        turn.add_time("persist_ms", t0)
        return saved.id if saved is not None else None

    # -- actions --------------------------------------------------------------------------
    def _act(self, ctx: TurnContext) -> Iterator[Event]:
        turn, text, opened = ctx.turn, ctx.text, ctx.opened
        action = turn.intent.action
        if turn.intent.rule == "unsafe":
            yield from self._say(turn, safety.redirect_reply(text))
        elif action == "greet":
            yield from self._say(turn, safety.GREETING_REPLY)
        elif action == "about":
            yield from self._say(turn, safety.ABOUT_REPLY)
        elif action == "no_problem" and not ctx.state.problem:
            yield from self._say(turn, NO_PROBLEM_REPLY)
        elif action == "open_problem" and (move := open_word_problem(self.store, ctx)) is not None:
            yield from self._say(turn, move)  # a word problem: planned, its answer not judged
        elif turn.mode == "offtopic":
            yield from self._say(turn, safety.OFFTOPIC_REPLY)
        elif action == "next_item":
            yield from self._serve_item(ctx)
        elif (
            opened is None
            and action in ("grade", "hint", "solution", "no_problem")
            and (
                move := guide_reply(None, ctx.state, text, ctx.history)
                or word_problem_help(ctx.state)
            )
        ):
            yield from self._say(turn, move)  # a word problem is open: nothing to grade
        elif action == "grade" and opened is not None:
            yield from self._grade(ctx, opened)
        elif action in ("hint", "solution") and opened is not None:
            yield from self._help(ctx, opened, action)
        elif (
            action == "open_problem"
            and (first_step := open_own_problem(self.store, ctx)) is not None
        ):
            # a recognised problem type: the first rung is a fixed, correct question
            yield from self._say(turn, f"Let's work it out together. {first_step}")
        elif turn.mode == "guide" and (move := guide_reply(opened, ctx.state, text, ctx.history)):
            yield from self._say(turn, move)  # the solution is known: locate the mistake
        else:  # explain / guide with the LM (guarded while a problem is open)
            yield from self._generate(ctx)

    def _say(self, turn: Turn, reply: str) -> Iterator[Event]:
        yield turn.say(reply)
        yield Sources([])

    def _serve_item(self, ctx: TurnContext) -> Iterator[Event]:
        turn, lrn, sess = ctx.turn, ctx.lrn, ctx.sess
        t0 = time.perf_counter()
        # "next" means another one: not the open item, nor those of the last attempts
        avoid = {a.item_id for a in self.store.attempts(lrn.id)[-5:]} | {ctx.state.item_id or ""}
        sel = self.store.next_item(lrn.id, sess.collection, exclude=avoid)
        turn.add_time("selection_ms", t0)
        if sel is None:
            yield from self._say(
                turn,
                "There are no practice items for this course yet; ask your teacher to add some.",
            )
            return
        item = sel.item
        self.store.set_state(sess.id, ctx.state.with_item(item.id), learner_id=lrn.id)
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

    def _record_grade(
        self, ctx: TurnContext, opened: OpenProblem
    ) -> tuple[GradeResult, SessionState, AttemptOutcome | None]:
        """Grade the answer, record the attempt (bank items only) and move the session state:
        a right answer closes the problem, a wrong one climbs a rung of the hint ladder."""
        turn, state, item = ctx.turn, ctx.state, opened.item
        t0 = time.perf_counter()
        result = grade(item, ctx.text)
        turn.add_time("grading_ms", t0)
        t0 = time.perf_counter()
        attempts = state.attempts + 1
        outcome = None
        if opened.from_bank:
            outcome = self.store.record_attempt(
                ctx.lrn.id,
                item,
                ctx.text,
                result,
                session_id=ctx.sess.id,
                hint_level=state.hint_level,
            )
        earned = result.correct or attempts >= self.settings.solution_after_attempts
        if result.correct:
            new_state = state.with_item(None)
        else:
            new_state = replace(
                state,
                attempts=attempts,
                hint_level=min(state.hint_level + 1, MAX_LADDER - 1),  # each wrong try climbs
                last_code=result.code,
                solution_earned=state.solution_earned or earned,
            )
        self.store.set_state(ctx.sess.id, new_state, learner_id=ctx.lrn.id)
        turn.add_time("persist_ms", t0)
        turn.meta["grading"] = {"item_id": item.id, "correct": result.correct, "code": result.code}
        return result, new_state, outcome

    def _mastery_changes(
        self, lrn: Learner, outcome: AttemptOutcome, skills: Sequence[str]
    ) -> Iterator[Event]:
        masteries = self.store.mastery(lrn.id, skills)
        for skill in skills:
            m = masteries.get(skill)
            yield MasteryChange(
                skill,
                round(outcome.mastery_before.get(skill, 0.0), 4),
                round(outcome.mastery_after.get(skill, 0.0), 4),
                round(m.p_correct, 4) if m else 0.0,
                counted=outcome.counted,
                hint_level=outcome.attempt.hint_level,
            )

    def _grade(self, ctx: TurnContext, opened: OpenProblem) -> Iterator[Event]:
        turn, text, item = ctx.turn, ctx.text, opened.item
        attempts = ctx.state.attempts + 1
        result, new_state, outcome = self._record_grade(ctx, opened)
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
            yield from self._mastery_changes(ctx.lrn, outcome, item.skills)
        feedback = feedback_line(result, attempts)
        mistake = "" if result.correct else diagnose(opened.expression, text)
        if mistake:  # a known misconception says more than the checker's generic verdict
            feedback = f"Not quite. {mistake}"
        if result.correct:
            turn.mode = "practice"
            closing = ' Say "next" for another problem.' if opened.from_bank else ""
            yield from self._say(turn, feedback + closing)
            return
        # wrong: name the mistake first (deterministic), then the next rung of the ladder
        yield turn.say(feedback + " ")
        move = guide_reply(opened, new_state, text, ctx.history, graded=True)
        hint = bank_hint(item, new_state.hint_level)
        if move or hint:
            yield from self._say(turn, move or f"Hint: {hint}")
            return
        problem = ProblemState(
            problem=item.prompt,
            attempts=attempts,
            hint_level=new_state.hint_level,
            last_answer=text,
            verdict=f"incorrect: {mistake or result.message}",
        )
        ctx.state = new_state
        yield from self._generate(ctx, problem=problem)

    def _help(self, ctx: TurnContext, opened: OpenProblem, action: str) -> Iterator[Event]:
        turn, state, item = ctx.turn, ctx.state, opened.item
        allowed = state.solution_earned or state.attempts >= self.settings.solution_after_attempts
        if action == "solution" and allowed:
            shown = replace(
                state,
                solution_earned=True,
                solution_shown=True,
                item_id=None,
                problem="",
                answer="",
            )
            self.store.set_state(ctx.sess.id, shown, learner_id=ctx.lrn.id)
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
        ctx.state = self.store.set_state(
            ctx.sess.id, replace(state, hint_level=level), learner_id=ctx.lrn.id
        )
        turn.meta["hint_level"] = level
        hint = help_reply(opened, ctx.state, ctx.text, ctx.history, bank_hint(item, level))
        if hint:  # the bank's hint, else the guide move for a learner asking for help
            yield from self._say(turn, f"{prefix}{hint}")
            return
        if prefix:
            yield turn.say(prefix)
        problem = ProblemState(problem=item.prompt, attempts=state.attempts, hint_level=level)
        yield from self._generate(ctx, problem=problem)

    # -- the LM path ----------------------------------------------------------------------
    def _prompt(
        self,
        ctx: TurnContext,
        mode: str,
        summary: LearnerSummary,
        passages: list[PromptPassage],
        problem: ProblemState | None,
        strict: bool,
        strict_math: bool = False,
    ) -> list[Message]:
        t0 = time.perf_counter()
        msgs = build_messages(
            mode,
            ctx.text,
            history=ctx.history,
            learner=summary,
            passages=passages,
            problem=problem if mode in ("guide", "practice") else None,
            count_tokens=getattr(self.generator, "count_tokens", None),
            budget=max(
                int(getattr(self.generator, "context_window", 0)) - self.settings.max_new_tokens,
                0,
            ),
            max_history=self.settings.history_turns * 2,
            strict=strict,
            strict_math=strict_math,
        )
        ctx.turn.prompt = msgs
        ctx.turn.add_time("prompt_ms", t0)
        return msgs

    def _generate(
        self, ctx: TurnContext, *, problem: ProblemState | None = None
    ) -> Iterator[Event]:
        turn, opened, state = ctx.turn, ctx.opened, ctx.state
        t0 = time.perf_counter()
        summary = learner_summary(self.store, ctx.lrn, ctx.sess.collection)
        turn.add_time("profile_ms", t0)
        # an answer or a hint request says little on its own: search with the problem
        query = (
            opened.item.prompt
            if opened is not None and turn.intent.action in ("grade", "hint", "solution")
            else ctx.text
        )
        passages = self._retrieve(turn, query, ctx.sess.collection)
        mode = turn.mode if turn.mode in ("explain", "guide", "practice") else "explain"
        asked = reply_mode(mode, turn.intent.action, ctx.text, bool(opened or state.problem))
        if (mode := asked) != turn.mode:
            turn.meta["answered_as"] = mode  # a question in guide mode: from the course
        if opened is not None and problem is None:
            problem = ProblemState(
                problem=opened.item.prompt, attempts=state.attempts, hint_level=state.hint_level
            )
        prompt_passages = [PromptPassage(i + 1, p.citation, p.text) for i, p in enumerate(passages)]
        if mode == "explain":  # grounded by construction: tutor.explain
            yield from explain_turn(
                generator=self.generator,
                turn=turn,
                question=ctx.text,
                passages=passages,
                embedder=getattr(self.kb, "embedder", None),
                settings=self.settings.explain,
                prompt=lambda cited: self._prompt(
                    ctx, mode, summary, prompt_passages if cited else [], problem, False
                ),
                opened=opened if self.settings.leak_guard else None,
                cancel=ctx.cancel,
            )
            return
        if not (yield from self._checked_reply(ctx, mode, summary, prompt_passages, problem)):
            yield turn.say(fixed_move(turn, opened, state.hint_level))
        yield sources_event(turn, passages)

    def _checked_reply(
        self,
        ctx: TurnContext,
        mode: str,
        summary: LearnerSummary,
        passages: list[PromptPassage],
        problem: ProblemState | None,
    ) -> collections.abc.Generator[Event, None, bool]:
        """Generate through the leak guard and the sentence gate; False when every try leaked
        or the checks left nothing to show (the caller falls back to a hint).
        A reply that leaks is withdrawn and regenerated (``leak_retries`` times, stricter); one
        with a false or unverifiable claim is withdrawn and regenerated once with the stricter
        math instruction, whose bad sentences are then dropped (so the tries are bounded)."""
        turn, opened = ctx.turn, ctx.opened
        guarded = opened if self.settings.leak_guard else None
        graded = turn.meta.get("grading", {}).get("correct")
        checks = verify_context(opened, ctx.state.attempts, ctx.text, graded)
        flags = yield from best_of_n(self, ctx, (mode, summary, passages, problem), checks, guarded)
        if flags is None:  # best-of-N (``[tutor] candidates`` > 1) showed a reply
            return True
        strict, strict_math = flags  # N = 1, or every candidate failed: the tries below
        leaks_left = self.settings.leak_retries
        while True:
            msgs = self._prompt(ctx, mode, summary, passages, problem, strict, strict_math)
            shown_before = turn.text
            gate = SentenceGate(checks, drop_bad_math=strict_math)
            outcome = yield from stream_reply(
                self.generator, turn, msgs, len(passages), guarded, ctx.cancel, gate
            )
            record_checks(turn, gate)
            if outcome == "ok":  # all of it dropped by the checks: a template move instead
                stopped = ctx.cancel is not None and ctx.cancel.is_set()
                said = turn.text[len(shown_before) :]
                if not stopped and graded is not True and says_nothing(said):
                    return False  # "Great try!" alone: the fixed move follows it
                return stopped or turn.text != shown_before or not gate.report.sentences_dropped
            turn.text = shown_before
            if outcome == "math":
                strict_math = True
                turn.meta["math_regenerated"] = True
                yield TextReset("the reply stated arithmetic that did not check out; asking again")
            else:
                turn.leaks += 1
                yield TextReset("the reply gave the answer away; asking again")
                strict = True
            if shown_before:  # the consumer discards the turn's text: show the kept part again
                yield TextDelta(shown_before)
            if outcome == "leak" and leaks_left <= 0:
                return False
            leaks_left -= outcome == "leak"

    # -- helpers --------------------------------------------------------------------------
    def _retrieve(self, turn: Turn, text: str, collection: str) -> list[PassageLike]:
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

    def _history(self, session_id: str, learner_id: int) -> list[Message]:
        msgs = self.store.messages(
            session_id, limit=self.settings.history_turns * 4, learner_id=learner_id
        )
        return [
            {"role": m.role, "content": m.content}
            for m in msgs
            if m.role in ("user", "assistant") and m.content
        ]

    def _open_problem(self, collection: str, state: SessionState) -> OpenProblem | None:
        return open_problem(self.store, collection, state)  # the rule the UI's card shows too
