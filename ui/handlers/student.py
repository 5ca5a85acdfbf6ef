"""The student view's handlers: sessions, chat turns, the practice card, progress and profile.

Chat turns stream ``{chat, card}``: the whole chat so far each time (Gradio sends only the
change), the user's message first, then the answer as it grows (at most every ``STREAM_EVERY``),
then its sources. Stop sets the turn's cancel event: the agent ends at the next token and stores
what was shown, marked stopped (``TutorAgent.respond``).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any, cast

from tutor import progress as prog
from tutor.errors import InputError, NotFoundError, PermissionDeniedError, TutorError
from tutor.opening import word_problem_open
from tutor.services import check_mode, open_problem
from tutor.turns import OpenProblem
from ui import render
from ui.auth import Principal
from ui.guard import student, user_message
from ui.handlers.base import HandlerBase, _gr

MAX_SESSIONS_LISTED = 30
MAX_TYPED_SHOWN = 2000  # characters of a refused message shown back under its error
STREAM_EVERY = 0.04  # seconds: the chat is updated at most this often while a reply streams
# What the buttons say on the learner's behalf (the agent reads them like typed text).
HINT_MESSAGE = "Can I have a hint?"
NEXT_MESSAGE = "Give me another problem"
BUTTON_MESSAGES = frozenset({HINT_MESSAGE, NEXT_MESSAGE})

# The components each student event updates (``ui.views.student`` wires them in this order).
TURN_OUTPUTS = ("chat", "card")
SESSION_OUTPUTS = ("session_id", "chat", "card", "card_answer")
NEW_SESSION_OUTPUTS = ("sessions", *SESSION_OUTPUTS)
PROFILE_FIELDS = ("prof_grade", "prof_language", "prof_goals", "prof_preferences", "prof_interests")
# what the page load fills in the student view
STUDENT_PAGE_OUTPUTS = ("sessions", "session_id", "chat", "card", "progress", *PROFILE_FIELDS)


class Turns:
    """Chat turns in flight per (user, session), so Stop can wait for the one it ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], tuple[threading.Event, threading.Event]] = {}

    @contextlib.contextmanager
    def running(self, user: str, session_id: str) -> Iterator[threading.Event]:
        """Register a turn; yields its cancel event (set by ``stop``)."""
        cancel, done = threading.Event(), threading.Event()
        key = (user, session_id)
        with self._lock:
            self._running[key] = (cancel, done)
        try:
            yield cancel
        finally:
            done.set()
            with self._lock:
                if self._running.get(key, (None, None))[1] is done:
                    del self._running[key]

    def stop(self, user: str, session_id: str, timeout: float) -> bool:
        """Ask the running turn to stop and wait until it has stored what it showed."""
        with self._lock:
            entry = self._running.get((user, session_id))
        if entry is None:
            return False
        cancel, done = entry
        cancel.set()
        done.wait(timeout)
        return True


def _learner_id(p: Principal) -> int:
    """``p.learner_id`` of a student: ``ui.guard.student`` admits no student without one."""
    return cast(int, p.learner_id)


class StudentHandlers(HandlerBase):
    """The student's handlers; learner data always comes from ``p.learner_id``."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.turns = Turns()

    # ===================================================================== student: sessions

    def _sessions(self, p: Principal) -> list[Any]:
        ss = [
            s for s in self.store.list_sessions(_learner_id(p)) if s.collection == self.collection
        ]
        return sorted(ss, key=lambda s: s.last_active_at, reverse=True)

    def _latest_session(self, p: Principal) -> Any:
        ss = self._sessions(p)
        return ss[0] if ss else self.store.start_session(_learner_id(p), collection=self.collection)

    def _session(self, p: Principal, session_id: str | None) -> Any:
        """The learner's own session (another learner's is 'not found'), or a new one."""
        if not session_id:
            return self._latest_session(p)
        sess = self.store.get_session(str(session_id), learner_id=p.learner_id)
        if sess.collection != self.collection:
            raise NotFoundError("that session belongs to another course; start a new session")
        return sess

    def _session_choices(self, p: Principal) -> list[tuple[str, str]]:
        out = []
        for s in self._sessions(p)[:MAX_SESSIONS_LISTED]:
            msgs = self.store.messages(s.id, learner_id=p.learner_id)
            # name a session after the learner's first question (not an answer, not a button)
            asked = [m for m in msgs if m.role == "user"]
            first = next(
                (m.content for m in asked if m.meta.get("rule") in ("question", "problem")),
                next((m.content for m in asked if m.content not in BUTTON_MESSAGES), None),
            )
            out.append((render.session_label(s, first), s.id))
        return out

    def _chat_and_card(self, p: Principal, sess: Any) -> tuple[list[dict[str, Any]], str]:
        """The session's chat as stored and its practice card (problem and feedback)."""
        msgs = self.store.messages(sess.id, learner_id=p.learner_id)
        item, feedback = self._card(p, sess)
        return render.history_messages(msgs), item + ("\n\n" + feedback if feedback else "")

    def _session_view(self, p: Principal, sess: Any) -> dict[Any, Any]:
        """``SESSION_OUTPUTS`` for ``sess``: its chat and card, the answer box emptied."""
        chat, card = self._chat_and_card(p, sess)
        return self._out(session_id=sess.id, chat=chat, card=card, card_answer="")

    def _student_page(self, p: Principal) -> dict[Any, Any]:
        """``STUDENT_PAGE_OUTPUTS``: the latest session resumed, progress and profile filled."""
        gr = _gr()
        sess = self._latest_session(p)
        profile = self.store.get_profile(_learner_id(p))
        chat, card = self._chat_and_card(p, sess)
        return self._out(
            sessions=gr.update(choices=self._session_choices(p), value=sess.id),
            session_id=sess.id,
            chat=chat,
            card=card,
            progress=self._progress_html(p),
            prof_grade=profile.grade_level,
            prof_language=profile.language,
            prof_goals=profile.goals,
            prof_preferences=profile.preferences,
            prof_interests=profile.interests,
        )

    def _open_item(self, p: Principal, sess: Any) -> tuple[Any, OpenProblem] | None:
        """(state, open problem) of the session, or None when nothing is open (the agent's
        rule: ``tutor.services.open_problem``)."""
        state = self.store.get_state(sess.id, learner_id=p.learner_id)
        opened = open_problem(self.store, self.collection, state)
        return None if opened is None else (state, opened)

    def _card(self, p: Principal, sess: Any) -> tuple[str, str]:
        opened = self._open_item(p, sess)
        if opened is None:
            # the problem solved last in this session stays on the card until the next one
            last = self.store.attempts(p.learner_id, session_id=sess.id)[-1:]
            solved = self._solved_card(last[0].item_id) if last and last[0].correct else ""
            if solved:
                return solved, render.NEXT_HINT
            return render.PRACTICE_EMPTY, ""
        state, problem = opened
        if not problem.from_bank:
            card = render.practice_item(state.problem, "Your own problem", 1)
        else:
            item = problem.item
            card = render.practice_item(
                item.render(), self._skill_name(item.skill), item.difficulty
            )
        feedback = (
            f'<div class="fb fb-no">{state.attempts} attempt{"s" if state.attempts != 1 else ""} so far — keep going!</div>'
            if state.attempts
            else ""
        )
        return card, feedback

    @student
    def open_session(self, p: Principal, session_id: str) -> dict[Any, Any]:
        if not session_id:
            raise InputError("pick a session from the list")
        return self._session_view(p, self._session(p, session_id))

    @student
    def new_session(self, p: Principal) -> dict[Any, Any]:
        gr = _gr()
        ss = self._sessions(p)
        # an untouched session is reused, so clicking twice does not pile up empty ones
        if ss and not self.store.messages(ss[0].id, learner_id=p.learner_id):
            sess = ss[0]
        else:
            sess = self.store.start_session(_learner_id(p), collection=self.collection)
        return self._out(
            sessions=gr.update(choices=self._session_choices(p), value=sess.id),
            session_id=sess.id,
            chat=[],
            card=render.PRACTICE_EMPTY,
            card_answer="",
        )

    # ===================================================================== student: chat turns

    @student
    def send(
        self, p: Principal, message: str, mode: str, session_id: str
    ) -> Iterator[dict[Any, Any]]:
        mode = mode or self.ctx.config.tutor.default_mode
        yield from self._one_turn(
            p, session_id, message, lambda: self._turn(p, message, mode, session_id)
        )

    @student
    def hint(self, p: Principal, session_id: str) -> Iterator[dict[Any, Any]]:
        def run() -> Iterator[dict[Any, Any]]:
            sess = self._session(p, session_id)
            state = self.store.get_state(sess.id, learner_id=p.learner_id)
            if self._open_item(p, sess) is None and not word_problem_open(state):
                raise InputError(
                    "there is no problem open to give a hint for. Press Next problem, or type a "
                    "problem of your own, like: solve 2x + 3 = 11"
                )
            yield from self._turn(p, HINT_MESSAGE, "auto", session_id)

        yield from self._one_turn(p, session_id, HINT_MESSAGE, run)

    @student
    def check(self, p: Principal, answer: str, session_id: str) -> Iterator[dict[Any, Any]]:
        def run() -> Iterator[dict[Any, Any]]:
            if not (answer or "").strip():
                raise InputError("type your answer in the box first")
            if self._open_item(p, self._session(p, session_id)) is None:
                raise InputError("no problem is open; press Next problem first")
            yield from self._turn(p, answer, "practice", session_id)

        yield from self._one_turn(p, session_id, answer, run)

    @student
    def next_problem(self, p: Principal, session_id: str) -> Iterator[dict[Any, Any]]:
        yield from self._one_turn(
            p, session_id, NEXT_MESSAGE, lambda: self._turn(p, NEXT_MESSAGE, "auto", session_id)
        )

    def _one_turn(
        self,
        p: Principal,
        session_id: str,
        typed: str,
        run: Callable[[], Iterator[dict[Any, Any]]],
    ) -> Iterator[dict[Any, Any]]:
        """Run one turn; a ``TutorError`` in it (bad input, no problem open, the model down)
        ends that turn only: the chat stays as it was shown, with what was typed and the error
        under it (not stored). Raised to the page, the error covered the whole chat with an
        "Error" badge until the next message. An error before anything can be shown (another
        learner's session, the store gone) is still raised."""
        chat_key = self.components.get("chat")
        last: list[dict[str, Any]] | None = None
        outs = run()
        try:
            for out in outs:
                if chat_key is not None and chat_key in out:
                    last = out[chat_key]
                yield out
        except TutorError as e:
            if isinstance(e, PermissionDeniedError):
                raise
            try:
                chat = list(last) if last is not None else self._chat_with(p, session_id, typed)
            except TutorError:
                raise e from None
            chat.append({"role": "assistant", "content": render.turn_error(user_message(e))})
            yield self._out(chat=chat)
        finally:
            # Stop closes this generator: that must reach the running turn at once
            close = getattr(outs, "close", None)
            if close is not None:
                close()

    def _chat_with(self, p: Principal, session_id: str, typed: str) -> list[dict[str, Any]]:
        """The session's chat as stored, and ``typed`` as the learner's next message."""
        sess = self._session(p, session_id)
        chat = render.history_messages(self.store.messages(sess.id, learner_id=p.learner_id))
        text = (typed or "").strip()
        if text:
            # a lone surrogate cannot go to the browser (JSON): shown as '?'
            shown = text.encode("utf-8", "replace").decode("utf-8")
            if len(shown) > MAX_TYPED_SHOWN:  # a refused 100,000-character paste
                shown = shown[:MAX_TYPED_SHOWN] + " …"
            chat.append({"role": "user", "content": render.chat_text(shown)})
        return chat

    @student
    def stop(self, p: Principal, session_id: str) -> list[dict[str, Any]]:
        """Stop the running turn of this session (generation ends at the next token), wait until
        it stored what was shown, and show the chat as stored."""
        sess = self._session(p, session_id)
        self.turns.stop(p.username, sess.id, timeout=10.0)
        return render.history_messages(self.store.messages(sess.id, learner_id=p.learner_id))

    def _turn(
        self, p: Principal, message: str, mode: str, session_id: str
    ) -> Iterator[dict[Any, Any]]:
        check_mode(mode)
        text = (message or "").strip()
        if not text:
            raise InputError("the message is empty; type a question or an answer")
        learner = self.store.get_learner(_learner_id(p))
        sess = self._session(p, session_id)
        stored = self.store.messages(sess.id, learner_id=p.learner_id)
        item, feedback = self._card(p, sess)
        with self.turns.running(p.username, sess.id) as cancel:
            events = self.agent.respond(learner, sess, text, mode=mode, cancel=cancel)
            yield from self._stream_turn(text, stored, events, cancel, item, feedback)

    def _stream_turn(
        self,
        text: str,
        stored: list[Any],
        events: Generator[Any, None, None],
        cancel: threading.Event,
        item: str,
        feedback: str,
    ) -> Iterator[dict[Any, Any]]:
        """Yield ``{chat, card}`` as the agent's events arrive.

        Two outputs only, and real values (never ``gr.skip()``): Gradio rebuilds a component for
        every skipped output of every update, which costs more than the update itself when
        many students stream at once.
        """
        chat = render.history_messages(stored)

        def shown() -> dict[Any, Any]:
            return self._out(chat=list(chat), card=item + ("\n\n" + feedback if feedback else ""))

        def say(at: int | None, content: str) -> int:
            """Put the reply at ``at`` (appended when None); where it is now."""
            if at is None:
                chat.append({"role": "assistant", "content": content})
                return len(chat) - 1
            chat[at] = {"role": "assistant", "content": content}
            return at

        with contextlib.closing(events):
            first = next(events)  # bad input (too long, ...) fails here, before the screen changes
            chat.append({"role": "user", "content": render.chat_text(text)})
            yield shown()
            answer = ""
            reply_at: int | None = None
            last_yield = 0.0
            for ev in itertools.chain([first], events):
                kind = ev.kind
                if kind == "text":
                    answer += ev.text
                    # tokens that arrive within STREAM_EVERY of the last update go out with
                    # the next one: fewer messages, same text (the first token goes at once)
                    if reply_at is not None and time.monotonic() - last_yield < STREAM_EVERY:
                        continue
                    reply_at = say(reply_at, render.chat_text(answer))
                elif kind == "reset":
                    answer = ""
                    reply_at = say(reply_at, "*Let me put that another way…*")
                elif kind in ("item", "grading", "mastery"):
                    item, feedback = self._card_event(ev, item, feedback)
                elif kind == "sources":
                    if reply_at is not None and answer:
                        say(reply_at, render.chat_text(answer))
                    block = render.sources_html(render.event_sources(ev.sources))
                    if block:
                        chat.append({"role": "assistant", "content": block})
                elif kind == "done":
                    if cancel.is_set():
                        say(reply_at, render.chat_text(answer) + "\n\n*⏹ Stopped.*")
                    elif reply_at is not None and answer:
                        say(reply_at, render.chat_text(answer))
                    elif not answer and reply_at is None:
                        say(None, "…")
                    yield shown()
                    return
                else:
                    continue  # mode: nothing to show
                last_yield = time.monotonic()
                yield shown()

    def _card_event(self, ev: Any, item: str, feedback: str) -> tuple[str, str]:
        """The practice card (problem, feedback) after an item, grading or mastery event."""
        if ev.kind == "item":
            return render.practice_item(ev.prompt, self._skill_name(ev.skill), ev.difficulty), ""
        if ev.kind == "grading":
            feedback = render.grading_feedback(ev.correct, ev.message, ev.attempts)
            if ev.correct:
                item = self._solved_card(ev.item_id) or item
            return item, feedback
        line = render.mastery_line(
            self._skill_name(ev.skill), ev.before, ev.after, ev.p_correct_next, ev.why_unmoved()
        )
        return item, feedback + line

    @student
    def session_list(self, p: Principal, session_id: str) -> Any:
        """The sessions list after a turn (a new session gets its name from the first message)."""
        sess = self._session(p, session_id)
        return _gr().update(choices=self._session_choices(p), value=sess.id)

    def _solved_card(self, item_id: str) -> str:
        try:
            item = self.store.get_item(self.collection, item_id)
        except NotFoundError:
            return ""
        return render.practice_item(
            item.render(), self._skill_name(item.skill), item.difficulty, solved=True
        )

    # ===================================================================== student: progress, profile

    def _progress_html(self, p: Principal) -> str:
        rows = prog.learner_progress(self.store, _learner_id(p), self.collection)
        return render.progress_chart(rows)

    @student
    def my_progress(self, p: Principal) -> str:
        return self._progress_html(p)

    @student
    def save_profile(
        self, p: Principal, grade: str, language: str, goals: str, preferences: str, interests: str
    ) -> str:
        self.store.update_profile(
            _learner_id(p),
            {
                "grade_level": grade or "",
                "language": language or "",
                "goals": goals or "",
                "preferences": preferences or "",
                "interests": interests or "",
            },
            editor="learner",
        )
        return "✅ Saved. The tutor uses your profile from your next message on."
