"""Tutoring sessions, their messages and the agent's per-session state: every query keyed by the
session id and, when given, bound to its learner (another learner's session is NotFound)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

import sqlalchemy as sa

from tutor.errors import InputError
from tutor.store import schema as S
from tutor.store.base import StoreBase, inserted_id
from tutor.store.records import (
    DEFAULT_COLLECTION,
    MAX_MESSAGE_CHARS,
    MESSAGE_ROLES,
    Message,
    Session,
    SessionState,
    check_collection,
    check_text,
    message_from_row,
    now_iso,
    session_from_row,
)


class SessionsMixin(StoreBase):
    """Sessions, messages and session state (part of ``LearnerStore``)."""

    # -- sessions ----------------------------------------------------------------------------

    def start_session(self, learner_id: int, *, collection: str = DEFAULT_COLLECTION) -> Session:
        collection = check_collection(collection)
        sid = uuid.uuid4().hex
        ts = now_iso()
        with self._write() as conn:
            self._require_learner(conn, learner_id)
            conn.execute(
                sa.insert(S.sessions).values(
                    id=sid,
                    learner_id=learner_id,
                    collection=collection,
                    started_at=ts,
                    last_active_at=ts,
                    ended_at=None,
                    state={},
                )
            )
        return Session(sid, learner_id, collection, ts, ts, None)

    def get_session(self, session_id: str, *, learner_id: int | None = None) -> Session:
        """The session; with ``learner_id``, a session of another learner is NotFound."""
        with self._read() as conn:
            row = self._session_row(conn, session_id, learner_id)
        return session_from_row(row)

    def list_sessions(self, learner_id: int) -> list[Session]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(S.sessions)
                .where(S.sessions.c.learner_id == learner_id)
                .order_by(S.sessions.c.started_at)
            ).all()
        return [session_from_row(r) for r in rows]

    def end_session(self, session_id: str) -> None:
        with self._write() as conn:
            self._session_row(conn, session_id, None)
            conn.execute(
                sa.update(S.sessions)
                .where(S.sessions.c.id == session_id)
                .values(ended_at=now_iso())
            )

    # -- messages ----------------------------------------------------------------------------

    def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        *,
        meta: Mapping[str, Any] | None = None,
        learner_id: int | None = None,
    ) -> Message:
        """Append a message to a session; committed before it returns."""
        if role not in MESSAGE_ROLES:
            raise InputError(
                f"message role must be one of {', '.join(MESSAGE_ROLES)}, got {role!r}"
            )
        if not isinstance(content, str):
            raise InputError("message content must be text")
        if len(content) > MAX_MESSAGE_CHARS:
            raise InputError(f"a message may have at most {MAX_MESSAGE_CHARS} characters")
        check_text(content, "the message")
        ts = now_iso()
        meta_d = dict(meta or {})
        with self._write() as conn:
            row = self._session_row(conn, session_id, learner_id)
            mid = inserted_id(
                conn.execute(
                    sa.insert(S.messages).values(
                        session_id=session_id,
                        learner_id=row.learner_id,
                        role=role,
                        content=content,
                        meta=meta_d,
                        created_at=ts,
                    )
                )
            )
            conn.execute(
                sa.update(S.sessions).where(S.sessions.c.id == session_id).values(last_active_at=ts)
            )
        return Message(mid, session_id, int(row.learner_id), role, content, meta_d, ts)

    def messages(
        self, session_id: str, *, limit: int | None = None, learner_id: int | None = None
    ) -> list[Message]:
        """The session's messages in order (the last ``limit`` when given)."""
        with self._read() as conn:
            self._session_row(conn, session_id, learner_id)
            q = sa.select(S.messages).where(S.messages.c.session_id == session_id)
            if limit is not None:
                q = q.order_by(S.messages.c.id.desc()).limit(limit)
                rows = list(reversed(conn.execute(q).all()))
            else:
                rows = list(conn.execute(q.order_by(S.messages.c.id)).all())
        return [message_from_row(r) for r in rows]

    # -- session state -----------------------------------------------------------------------

    def get_state(self, session_id: str, *, learner_id: int | None = None) -> SessionState:
        with self._read() as conn:
            row = self._session_row(conn, session_id, learner_id)
        return SessionState.from_dict(row.state)

    def set_state(
        self, session_id: str, state: SessionState, *, learner_id: int | None = None
    ) -> SessionState:
        data = state.to_dict()
        with self._write() as conn:
            self._session_row(conn, session_id, learner_id)
            conn.execute(
                sa.update(S.sessions)
                .where(S.sessions.c.id == session_id)
                .values(state=data, last_active_at=now_iso())
            )
        return state

    def update_state(self, session_id: str, **changes: Any) -> SessionState:
        """Read-modify-write of some state fields in one transaction."""
        known = {f.name for f in fields(SessionState)}
        bad = sorted(set(changes) - known)
        if bad:
            raise InputError(f"unknown session state field(s) {bad}; known: {sorted(known)}")

        def tx(conn: sa.Connection) -> SessionState:
            row = self._session_row(conn, session_id, None)
            new = replace(SessionState.from_dict(row.state), **changes)
            conn.execute(
                sa.update(S.sessions)
                .where(S.sessions.c.id == session_id)
                .values(state=new.to_dict(), last_active_at=now_iso())
            )
            return new

        return self._retry(tx)
