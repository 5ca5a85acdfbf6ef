"""The web app's handlers: thin functions from a signed-in user and form values to the library.

Every public method is decorated with its role (``ui.guard``) and gets the ``Principal`` as
``p``; learner data always comes from ``p.learner_id``, never from an input. Return values are
tuples in the order of the ``*_OUTPUTS`` name lists, which ``ui.app`` maps to components.

Chat turns stream ``(chat, practice card)``: the whole chat so far each time (Gradio sends only
the change), the user's message first, then the answer as it grows (at most every
``STREAM_EVERY``), then its sources. Stop sets the turn's cancel event: the agent ends at the next
token and stores what was shown, marked stopped (``TutorAgent.respond``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tutor import progress as prog
from tutor.errors import InputError, NotFoundError
from ui import render
from ui.auth import Principal, SignIn
from ui.guard import signed_in, student, teacher

log = logging.getLogger(__name__)

DOC_SUFFIXES = (".md", ".markdown", ".txt", ".text", ".pdf", ".docx", ".html", ".htm", ".xhtml")
BANK_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")
MODES = ("auto", "explain", "guide", "practice")
MAX_SESSIONS_LISTED = 30
STREAM_EVERY = 0.04  # seconds: the chat is updated at most this often while a reply streams
# What the buttons say on the learner's behalf (the agent reads them like typed text).
HINT_MESSAGE = "Can I have a hint?"
NEXT_MESSAGE = "Give me another problem"
BUTTON_MESSAGES = frozenset({HINT_MESSAGE, NEXT_MESSAGE})
PICK_LEARNER = (
    '<div class="empty">Pick a learner to see their profile, progress and sessions.</div>'
)
# learner_detail's outputs while no learner is picked: the hint, then its five panels empty
NO_LEARNER_DETAIL = (PICK_LEARNER, "", "", "", "", "")
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

PAGE_OUTPUTS = (
    "header",
    "student_view",
    "teacher_view",
    # student
    "sessions",
    "session_id",
    "chat",
    "card",
    "progress",
    "prof_grade",
    "prof_language",
    "prof_goals",
    "prof_preferences",
    "prof_interests",
    # teacher
    "class_heatmap",
    "class_risk",
    "students_table",
    "learner_pick",
    "docs_table",
    "doc_pick",
    "bank_table",
)
TURN_OUTPUTS = ("chat", "card")
SESSION_OUTPUTS = ("session_id", "chat", "card", "card_answer")
NEW_SESSION_OUTPUTS = ("sessions", *SESSION_OUTPUTS)
CLASS_OUTPUTS = ("class_heatmap", "class_risk")
CREATE_OUTPUTS = (
    "new_status",
    "students_table",
    "learner_pick",
    "new_username",
    "new_display",
    "new_password",
)
DETAIL_OUTPUTS = (
    "learner_info",
    "learner_notes",
    "learner_sessions",
    "learner_attempts",
    "learner_export",
    "delete_confirm",
)
DELETE_OUTPUTS = ("students_table", "learner_pick", *DETAIL_OUTPUTS, *CLASS_OUTPUTS)
DOCS_OUTPUTS = ("ingest_table", "docs_table", "doc_pick", "doc_files")
REMOVE_OUTPUTS = ("docs_table", "doc_pick", "remove_row", "remove_text")
ITEMS_OUTPUTS = ("items_status", "bank_table", "item_files")


def _gr() -> Any:
    import gradio as gr

    return gr


def _skip() -> Any:
    return _gr().skip()


@dataclass
class UIContext:
    """What the handlers work with: built once per server process and shared."""

    config: Any
    store: Any
    agent: Any
    kb: Any
    signin: SignIn
    collection: str = "default"
    model_name: str = ""
    max_upload_mb: float = 50.0
    title: str = "Offline Tutor"
    extra: dict[str, Any] = field(default_factory=dict)


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


class Handlers:
    """All handlers of one app. ``signin`` is what ``ui.guard`` checks every call against."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx
        self.signin = ctx.signin
        self.store = ctx.store
        self.agent = ctx.agent
        self.kb = ctx.kb
        self.collection = ctx.collection
        self.turns = Turns()

    # ===================================================================== page

    @signed_in
    def page_load(self, p: Principal) -> tuple[Any, ...]:
        """The page for whoever signed in: their view, filled; the other view stays hidden."""
        gr = _gr()
        header = self._header(p)
        if p.is_teacher:
            student_part = tuple(_skip() for _ in range(10))
            heat, risk = self._class_outputs()
            docs, doc_pick = self._docs_outputs()
            teacher_part = (
                heat,
                risk,
                self._students_table(),
                gr.update(choices=self._learner_choices(), value=None),
                docs,
                doc_pick,
                self._bank_table(),
            )
            return (
                header,
                gr.update(visible=False),
                gr.update(visible=True),
                *student_part,
                *teacher_part,
            )
        sess = self._latest_session(p)
        _, chat, card, _ = self._session_view(p, sess)
        profile = self.store.get_profile(p.learner_id)
        student_part = (
            gr.update(choices=self._session_choices(p), value=sess.id),
            sess.id,
            chat,
            card,
            self._progress_html(p),
            profile.grade_level,
            profile.language,
            profile.goals,
            profile.preferences,
            profile.interests,
        )
        teacher_part = tuple(_skip() for _ in range(7))
        return (
            header,
            gr.update(visible=True),
            gr.update(visible=False),
            *student_part,
            *teacher_part,
        )

    def _header(self, p: Principal) -> str:
        esc = render.esc
        initial = esc((p.display_name or p.username or "?")[:1].upper())
        if p.demo:
            account = (
                '<span class="role">demo mode</span>'
                '<a class="hdr-link" href="/login">Teacher sign-in</a>'
            )
        else:
            account = f'<span class="role">{esc(p.role)}</span><a class="hdr-link" href="/logout">Sign out</a>'
        model = (
            f'<span class="hdr-model">{esc(self.ctx.model_name)}</span>'
            if self.ctx.model_name
            else ""
        )
        return (
            '<div class="topbar"><div class="brand"><span class="logo">🎓</span>'
            f"<span>{esc(self.ctx.title)}</span></div>"
            f'<div class="course">Course <b>{esc(self.collection)}</b>{model}</div>'
            f'<div class="who"><span class="avatar">{initial}</span>'
            f'<span class="name">{esc(p.display_name)}</span>{account}</div></div>'
        )

    # ===================================================================== student: sessions

    def _sessions(self, p: Principal) -> list[Any]:
        ss = [s for s in self.store.list_sessions(p.learner_id) if s.collection == self.collection]
        return sorted(ss, key=lambda s: s.last_active_at, reverse=True)

    def _latest_session(self, p: Principal) -> Any:
        ss = self._sessions(p)
        return ss[0] if ss else self.store.start_session(p.learner_id, collection=self.collection)

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

    def _session_view(self, p: Principal, sess: Any) -> tuple[Any, ...]:
        msgs = self.store.messages(sess.id, learner_id=p.learner_id)
        item, feedback = self._card(p, sess)
        card = item + ("\n\n" + feedback if feedback else "")
        return sess.id, render.history_messages(msgs), card, ""

    def _skill_name(self, skill: str) -> str:
        skills = self.store.skills(self.collection)
        return skills[skill].name if skill in skills else skill

    def _open_item(self, p: Principal, sess: Any) -> tuple[Any, Any] | None:
        """(state, item or None) of the session's open problem, or None when nothing is open."""
        state = self.store.get_state(sess.id, learner_id=p.learner_id)
        if state.item_id:
            try:
                return state, self.store.get_item(self.collection, state.item_id)
            except NotFoundError:
                return None
        if state.problem:
            return state, None
        return None

    def _card(self, p: Principal, sess: Any) -> tuple[str, str]:
        opened = self._open_item(p, sess)
        if opened is None:
            # the problem solved last in this session stays on the card until the next one
            last = self.store.attempts(p.learner_id, session_id=sess.id)[-1:]
            solved = self._solved_card(last[0].item_id) if last and last[0].correct else ""
            if solved:
                return solved, render.NEXT_HINT
            return render.PRACTICE_EMPTY, ""
        state, item = opened
        if item is None:
            card = render.practice_item(state.problem, "Your own problem", 1)
        else:
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
    def open_session(self, p: Principal, session_id: str) -> tuple[Any, ...]:
        if not session_id:
            raise InputError("pick a session from the list")
        return self._session_view(p, self._session(p, session_id))

    @student
    def new_session(self, p: Principal) -> tuple[Any, ...]:
        gr = _gr()
        ss = self._sessions(p)
        # an untouched session is reused, so clicking twice does not pile up empty ones
        if ss and not self.store.messages(ss[0].id, learner_id=p.learner_id):
            sess = ss[0]
        else:
            sess = self.store.start_session(p.learner_id, collection=self.collection)
        return (
            gr.update(choices=self._session_choices(p), value=sess.id),
            sess.id,
            [],
            render.PRACTICE_EMPTY,
            "",
        )

    # ===================================================================== student: chat turns

    @student
    def send(
        self, p: Principal, message: str, mode: str, session_id: str
    ) -> Iterator[tuple[Any, ...]]:
        yield from self._turn(p, message, mode or "auto", session_id)

    @student
    def hint(self, p: Principal, session_id: str) -> Iterator[tuple[Any, ...]]:
        if self._open_item(p, self._session(p, session_id)) is None:
            raise InputError(
                "there is no problem open to give a hint for. Press Next problem, or type a "
                "problem of your own, like: solve 2x + 3 = 11"
            )
        yield from self._turn(p, HINT_MESSAGE, "auto", session_id)

    @student
    def check(self, p: Principal, answer: str, session_id: str) -> Iterator[tuple[Any, ...]]:
        if not (answer or "").strip():
            raise InputError("type your answer in the box first")
        if self._open_item(p, self._session(p, session_id)) is None:
            raise InputError("no problem is open; press Next problem first")
        yield from self._turn(p, answer, "practice", session_id)

    @student
    def next_problem(self, p: Principal, session_id: str) -> Iterator[tuple[Any, ...]]:
        yield from self._turn(p, NEXT_MESSAGE, "auto", session_id)

    @student
    def stop(self, p: Principal, session_id: str) -> list[dict[str, Any]]:
        """Stop the running turn of this session (generation ends at the next token), wait until
        it stored what was shown, and show the chat as stored."""
        sess = self._session(p, session_id)
        self.turns.stop(p.username, sess.id, timeout=10.0)
        return render.history_messages(self.store.messages(sess.id, learner_id=p.learner_id))

    def _turn(
        self, p: Principal, message: str, mode: str, session_id: str
    ) -> Iterator[tuple[Any, ...]]:
        if mode not in MODES:
            raise InputError(f"mode {mode!r} is not known; use auto, explain, guide or practice")
        text = (message or "").strip()
        if not text:
            raise InputError("the message is empty; type a question or an answer")
        learner = self.store.get_learner(p.learner_id)
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
        events: Iterator[Any],
        cancel: threading.Event,
        item: str,
        feedback: str,
    ) -> Iterator[tuple[Any, ...]]:
        """Yield ``(chat, card)`` as the agent's events arrive.

        Two outputs only, and real values (never ``gr.skip()``): Gradio rebuilds a component for
        every skipped output of every update, which costs more than the update itself when
        many students stream at once.
        """
        chat = render.history_messages(stored)

        def card() -> str:
            return item + ("\n\n" + feedback if feedback else "")

        with contextlib.closing(events):
            first = next(events)  # bad input (too long, ...) fails here, before the screen changes
            chat.append({"role": "user", "content": render.chat_text(text)})
            yield (list(chat), card())
            answer = ""
            reply_at: int | None = None
            last_yield = 0.0
            for ev in itertools.chain([first], events):
                kind = ev.kind
                if kind in ("text", "reset"):
                    if kind == "text":
                        answer += ev.text
                        # tokens that arrive within STREAM_EVERY of the last update go out with
                        # the next one: fewer messages, same text (the first token goes at once)
                        if reply_at is not None and time.monotonic() - last_yield < STREAM_EVERY:
                            continue
                        shown = render.chat_text(answer)
                    else:
                        answer = ""
                        shown = "*Let me put that another way…*"
                    if reply_at is None:
                        reply_at = len(chat)
                        chat.append({"role": "assistant", "content": shown})
                    else:
                        chat[reply_at] = {"role": "assistant", "content": shown}
                elif kind == "item":
                    item = render.practice_item(
                        ev.prompt, self._skill_name(ev.skill), ev.difficulty
                    )
                    feedback = ""
                elif kind == "grading":
                    feedback = render.grading_feedback(ev.correct, ev.message, ev.attempts)
                    if ev.correct:
                        item = self._solved_card(ev.item_id) or item
                elif kind == "mastery":
                    feedback += render.mastery_line(
                        self._skill_name(ev.skill), ev.before, ev.after, ev.p_correct_next
                    )
                elif kind == "sources":
                    if reply_at is not None and answer:
                        chat[reply_at] = {"role": "assistant", "content": render.chat_text(answer)}
                    block = render.sources_html(render.event_sources(ev.sources))
                    if block:
                        chat.append({"role": "assistant", "content": block})
                elif kind == "done":
                    if cancel.is_set():
                        shown = render.chat_text(answer) + "\n\n*⏹ Stopped.*"
                        if reply_at is None:
                            chat.append({"role": "assistant", "content": shown})
                        else:
                            chat[reply_at] = {"role": "assistant", "content": shown}
                    elif reply_at is not None and answer:
                        chat[reply_at] = {"role": "assistant", "content": render.chat_text(answer)}
                    elif not answer and reply_at is None:
                        chat.append({"role": "assistant", "content": "…"})
                    yield (list(chat), card())
                    return
                else:
                    continue  # mode: nothing to show
                last_yield = time.monotonic()
                yield (list(chat), card())

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
        rows = prog.learner_progress(self.store, p.learner_id, self.collection)
        return render.progress_chart(rows)

    @student
    def my_progress(self, p: Principal) -> str:
        return self._progress_html(p)

    @student
    def save_profile(
        self, p: Principal, grade: str, language: str, goals: str, preferences: str, interests: str
    ) -> str:
        self.store.update_profile(
            p.learner_id,
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

    # ===================================================================== teacher: class

    def _class_outputs(self) -> tuple[str, str]:
        ov = prog.class_overview(self.store, self.collection)
        return render.heatmap(ov), render.at_risk(ov)

    @teacher
    def class_view(self, p: Principal) -> tuple[str, str]:
        return self._class_outputs()

    # ===================================================================== teacher: students

    def _students_table(self) -> str:
        accounts: dict[int, str] = {}
        for u in self.store.list_users():
            if u.learner_id is not None:
                accounts[u.learner_id] = u.username
        rows = []
        for s in self.store.list_learners():
            lr = s.learner
            rows.append(
                [
                    accounts.get(lr.id, "—"),
                    lr.display_name or lr.name,
                    s.n_sessions,
                    s.n_attempts,
                    render.when(s.last_active_at),
                ]
            )
        return render.table(render.STUDENT_HEADERS, rows, empty="No learners yet.")

    def _learner_choices(self) -> list[tuple[str, int]]:
        return [
            (
                f"{s.learner.display_name} ({s.learner.name})"
                if s.learner.display_name
                else s.learner.name,
                s.learner.id,
            )
            for s in self.store.list_learners()
        ]

    @teacher
    def create_student(
        self, p: Principal, username: str, display_name: str, password: str
    ) -> tuple[Any, ...]:
        from tutor.accounts import check_password_policy, check_username

        gr = _gr()
        username = (username or "").strip()
        display_name = (display_name or "").strip()
        check_username(username)
        generated = not password
        if generated:
            password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(12))
        check_password_policy(password)
        for u in self.store.list_users():
            if u.username == username:
                raise InputError(f"a user named {username!r} already exists")
        try:
            learner = self.store.find_learner(username)
        except NotFoundError:
            learner = self.store.add_learner(username, display_name=display_name)
        user = self.store.add_user(username, password, role="student", learner_id=learner.id)
        log.info(
            "teacher %s created a student account (user %d, learner %d)",
            p.username,
            user.id,
            learner.id,
        )
        status = f"✅ Created the student account **{render.esc(username)}**."
        if generated:
            status += (
                f" Password: `{password}` — give it to the student now; it is not shown again."
            )
        return (
            status,
            self._students_table(),
            gr.update(choices=self._learner_choices()),
            "",
            "",
            "",
        )

    def _learner(self, learner_id: Any) -> Any:
        if learner_id in (None, ""):
            raise InputError("pick a learner first")
        try:
            return self.store.get_learner(int(learner_id))
        except (TypeError, ValueError):
            raise InputError(f"{learner_id!r} is not a learner id") from None

    @teacher
    def learner_detail(self, p: Principal, learner_id: Any) -> tuple[Any, ...]:
        gr = _gr()
        if learner_id in (None, ""):
            return NO_LEARNER_DETAIL
        lr = self._learner(learner_id)
        profile = self.store.get_profile(lr.id)
        accounts = [u.username for u in self.store.list_users() if u.learner_id == lr.id]
        fields = [
            ("Account", ", ".join(accounts) or "none (learner only)"),
            ("Grade / level", profile.grade_level),
            ("Language", profile.language),
            ("Goals", profile.goals),
            ("Preferences", profile.preferences),
            ("Interests", profile.interests),
        ]
        none = '<span class="muted">—</span>'
        dl = "".join(
            f"<dt>{render.esc(k)}</dt><dd>{render.esc(v) if v else none}</dd>" for k, v in fields
        )
        rows = prog.learner_progress(self.store, lr.id, self.collection)
        info = (
            f'<div class="learner-card"><h3>{render.esc(lr.display_name or lr.name)}</h3>'
            f'<dl class="profile">{dl}</dl>{render.progress_chart(rows)}</div>'
        )
        sessions = []
        for s in sorted(
            self.store.list_sessions(lr.id), key=lambda s: s.last_active_at, reverse=True
        )[:20]:
            msgs = self.store.messages(s.id, learner_id=lr.id)
            first = next((m.content for m in msgs if m.role == "user"), "")
            sessions.append(
                [
                    render.when(s.started_at),
                    render.when(s.last_active_at),
                    len(msgs),
                    render.message_snippet(first, 60),
                ]
            )
        attempts = [
            [
                render.when(a.created_at),
                a.item_id,
                ", ".join(self._skill_name(s) for s in a.skills),
                render.message_snippet(a.response, 40),
                "✅ correct" if a.correct else f"✗ {a.code}",
                a.hint_level,
            ]
            for a in reversed(self.store.attempts(lr.id)[-50:])
        ]
        export = f'<a class="tutor-btn" href="/export/learner/{lr.id}" download>⬇ Export all data (JSON)</a>'
        return (
            info,
            profile.teacher_notes,
            render.table(render.SESSION_HEADERS, sessions, empty="No sessions yet."),
            render.table(render.ATTEMPT_HEADERS, attempts, empty="No attempts yet."),
            export,
            gr.update(value="", placeholder=f"type {lr.name} to confirm"),
        )

    @teacher
    def save_notes(self, p: Principal, learner_id: Any, notes: str) -> str:
        lr = self._learner(learner_id)
        self.store.update_profile(lr.id, {"teacher_notes": notes or ""}, editor="teacher")
        _gr().Info(f"Notes saved for {render.esc(lr.display_name or lr.name)}.")
        return notes or ""

    def export_learner(self, p: Principal, learner_id: int) -> dict[str, Any]:
        """Everything stored about one learner (the export route checks the role first)."""
        return self.store.export_learner(self._learner(learner_id).id)

    @teacher
    def delete_learner(self, p: Principal, learner_id: Any, confirm: str) -> tuple[Any, ...]:
        gr = _gr()
        lr = self._learner(learner_id)
        if (confirm or "").strip() != lr.name:
            raise InputError(
                f"nothing was deleted: type the learner's name {lr.name!r} exactly to confirm"
            )
        counts = self.store.delete_learner(lr.id)
        log.warning("teacher %s deleted learner %d (%s)", p.username, lr.id, counts)
        n = sum(counts.values())
        gr.Info(f"Deleted all data of {render.esc(lr.name)} ({n} records).")
        heat, risk = self._class_outputs()
        return (
            self._students_table(),
            gr.update(choices=self._learner_choices(), value=None),
            *NO_LEARNER_DETAIL,
            heat,
            risk,
        )

    # ===================================================================== teacher: documents

    def _docs_outputs(self) -> tuple[str, Any]:
        gr = _gr()
        docs = self.kb.list_documents(self.collection) if self.kb is not None else []
        table = render.table(
            render.DOC_HEADERS,
            render.document_rows(docs),
            empty="No documents in this course yet: upload some above.",
        )
        return table, gr.update(choices=[render.doc_choice(d) for d in docs], value=None)

    def _need_kb(self) -> Any:
        if self.kb is None:
            raise InputError("this server runs without a knowledge base; documents cannot be added")
        return self.kb

    @teacher
    def add_documents(self, p: Principal, files: Any, progress: Any = None) -> tuple[Any, ...]:
        kb = self._need_kb()
        paths = _paths(files)
        if not paths:
            raise InputError("choose one or more files first (.md, .txt, .pdf, .docx or .html)")
        limit = int(self.ctx.max_upload_mb * 1024 * 1024)
        results: list[tuple[str, str, int, str]] = []
        uploads: list[tuple[str, bytes]] = []
        for path in paths:
            name = _upload_name(path)
            if Path(name).suffix.lower() not in DOC_SUFFIXES:
                results.append(
                    (name, "error", 0, "not a supported type; use .md, .txt, .pdf, .docx or .html")
                )
                continue
            size = os.path.getsize(path)
            if size > limit:
                results.append(
                    (
                        name,
                        "error",
                        0,
                        f"{size / 2**20:.1f} MB is over the {self.ctx.max_upload_mb:g} MB limit (ui.max_upload_mb)",
                    )
                )
                continue
            uploads.append((name, Path(path).read_bytes()))
        if uploads:

            def report_progress(done: int, total: int, what: str) -> None:
                if progress is not None:
                    progress((done, total) if total else None, desc=what)

            report = kb.add(uploads, collection=self.collection, progress=report_progress)
            results += [(f.path, f.status, f.chunks, f.message) for f in report.files]
            log.info("teacher %s added documents: %s", p.username, report.summary())
            _gr().Info(report.summary())
        docs, pick = self._docs_outputs()
        table = render.table(render.INGEST_HEADERS, render.ingest_rows(results))
        return table, docs, pick, None

    @teacher
    def ask_remove(self, p: Principal, doc_id: str) -> tuple[Any, ...]:
        gr = _gr()
        if not doc_id:
            raise InputError("pick a document to remove first")
        doc = self._doc(doc_id)
        text = (
            f"Remove **{render.esc(doc.title)}** ({render.esc(doc.name)}, {doc.n_chunks} chunks) "
            "from the course? Answers will no longer cite it."
        )
        return (gr.update(visible=True), text)

    @teacher
    def cancel_remove(self, p: Principal) -> Any:
        return _gr().update(visible=False)

    def _doc(self, doc_id: str) -> Any:
        kb = self._need_kb()
        for d in kb.list_documents(self.collection):
            if d.doc_id == doc_id:
                return d
        raise NotFoundError(
            f"no document {doc_id!r} in this course; it may have been removed already"
        )

    @teacher
    def remove_document(self, p: Principal, doc_id: str) -> tuple[Any, ...]:
        gr = _gr()
        doc = self._doc(doc_id)
        self._need_kb().remove(doc.doc_id)
        log.info("teacher %s removed document %s (%s)", p.username, doc.doc_id, doc.name)
        gr.Info(f"Removed {render.esc(doc.title)}.")
        docs, pick = self._docs_outputs()
        return docs, pick, gr.update(visible=False), ""

    # ===================================================================== teacher: item banks

    def _bank_table(self) -> str:
        bank = self.store.bank(self.collection)
        rows = [
            [s.id, s.name, len(bank.for_skill(s.id)), ", ".join(s.prerequisites)]
            for s in bank.skills.values()
        ]
        note = (
            ""
            if self.collection in self.store.collections()
            else '<div class="section-note">No bank loaded for this course yet: these are the '
            "shipped sample items.</div>"
        )
        return note + render.table(render.BANK_HEADERS, rows, empty="No practice items yet.")

    @teacher
    def add_items(self, p: Principal, files: Any) -> tuple[Any, ...]:
        from tutor.items import DEFAULT_SKILLS_FILE, ItemBankError, load_bank, load_skills

        paths = _paths(files)
        if not paths:
            raise InputError(
                "choose one or more item-bank files first (.yaml, .yml, .json, .jsonl)"
            )
        for path in paths:
            if Path(_upload_name(path)).suffix.lower() not in BANK_SUFFIXES:
                raise InputError(
                    f"{_upload_name(path)}: not an item bank; use .yaml, .yml, .json or .jsonl"
                )
        # items may use the skills already stored for the course (else the shipped ones)
        known = self.store.stored_skills(self.collection) or (
            load_skills(DEFAULT_SKILLS_FILE) if DEFAULT_SKILLS_FILE.is_file() else {}
        )
        try:
            bank = load_bank(paths, known_skills=known)
        except ItemBankError as e:
            msg = str(e).replace(e.path, _upload_name(e.path))
            return (
                f'<div class="fb fb-no">❌ Nothing was loaded. {render.esc(msg)}</div>',
                _skip(),
                _skip(),
            )
        report = self.store.add_items(
            bank, collection=self.collection, source_file=", ".join(_upload_name(x) for x in paths)
        )
        log.info("teacher %s loaded %d items", p.username, report.n_items)
        status = (
            f'<div class="fb fb-ok">✅ Loaded {report.n_items} items ({report.n_replaced} replaced) '
            f"and {report.n_skills} skills into the course.</div>"
        )
        return status, self._bank_table(), None


def _paths(files: Any) -> list[str]:
    if not files:
        return []
    items = files if isinstance(files, (list, tuple)) else [files]
    out = []
    for f in items:
        path = f if isinstance(f, str) else getattr(f, "name", None) or getattr(f, "path", None)
        if path:
            out.append(str(path))
    return out


def _upload_name(path: str) -> str:
    """The name the user gave the file (Gradio keeps it as the last path component)."""
    return Path(path).name
