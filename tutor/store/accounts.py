"""User accounts and web sign-in sessions: create and check accounts (scrypt password hashes),
and sign-in tokens of which only the SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tutor.accounts import (
    Role,
    check_role,
    check_username,
    dummy_verify,
    hash_password,
    verify_password,
)
from tutor.errors import InputError, NotFoundError
from tutor.store import schema as S
from tutor.store.base import StoreBase, insert_learner, inserted_id
from tutor.store.records import User, check_name, now_iso, user_from_row


class AccountsMixin(StoreBase):
    """Users and sign-in sessions (part of ``LearnerStore``)."""

    # -- users ---------------------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        password: str,
        *,
        role: Role,
        learner_id: int | None = None,
        learner_name: str | None = None,
        display_name: str = "",
    ) -> User:
        """Create an account. A student account must be linked to a learner; a teacher's not.

        ``learner_name`` links a student to the learner of that name, created (with
        ``display_name``) in the same transaction when new: a refused account (a full disk, a
        taken name) leaves no learner behind.
        """
        check_username(username)
        check_role(role)
        if learner_name is not None:
            learner_name = check_name(learner_name)
        if role == "student" and learner_id is None and learner_name is None:
            raise InputError("a student account needs a learner (pass the learner to link)")
        if role == "teacher" and (learner_id is not None or learner_name is not None):
            raise InputError("a teacher account is not linked to a learner")
        pw_hash = hash_password(password, n=self.kdf_n)
        ts = now_iso()
        try:
            with self._write() as conn:
                if learner_name is not None:
                    found = conn.execute(
                        sa.select(S.learners.c.id).where(S.learners.c.name == learner_name)
                    ).scalar()
                    learner_id = found or insert_learner(conn, learner_name, display_name, ts)
                elif learner_id is not None:
                    self._require_learner(conn, learner_id)
                uid = inserted_id(
                    conn.execute(
                        sa.insert(S.users).values(
                            username=username,
                            role=role,
                            password_hash=pw_hash,
                            learner_id=learner_id,
                            created_at=ts,
                            last_login_at=None,
                        )
                    )
                )
        except IntegrityError:
            raise InputError(f"a user named {username!r} already exists") from None
        return User(uid, username, role, learner_id, ts, None)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password is right, else None (same work either way)."""
        with self._read() as conn:
            row = conn.execute(sa.select(S.users).where(S.users.c.username == username)).first()
        if row is None:
            dummy_verify(password, n=self.kdf_n)
            return None
        if not verify_password(password, row.password_hash):
            return None
        ts = now_iso()
        with self._write() as conn:
            conn.execute(sa.update(S.users).where(S.users.c.id == row.id).values(last_login_at=ts))
        return replace(user_from_row(row), last_login_at=ts)

    def get_user(self, username: str) -> User:
        with self._read() as conn:
            row = conn.execute(sa.select(S.users).where(S.users.c.username == username)).first()
        if row is None:
            raise NotFoundError(f"no user named {username!r}; `tutor users list` shows them")
        return user_from_row(row)

    def list_users(self) -> list[User]:
        with self._read() as conn:
            rows = conn.execute(sa.select(S.users).order_by(S.users.c.username)).all()
        return [user_from_row(r) for r in rows]

    def count_users(self, role: Role | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(S.users)
        if role:
            q = q.where(S.users.c.role == role)
        with self._read() as conn:
            return int(conn.execute(q).scalar_one())

    def set_password(self, username: str, password: str) -> None:
        pw_hash = hash_password(password, n=self.kdf_n)
        with self._write() as conn:
            n = conn.execute(
                sa.update(S.users)
                .where(S.users.c.username == username)
                .values(password_hash=pw_hash)
            ).rowcount
        if not n:
            raise NotFoundError(f"no user named {username!r}")
        self.revoke_user_sessions(username)  # a new password signs every session out

    def delete_user(self, username: str) -> None:
        with self._write() as conn:
            n = conn.execute(sa.delete(S.users).where(S.users.c.username == username)).rowcount
        if not n:
            raise NotFoundError(f"no user named {username!r}")

    # -- web sign-in sessions --------------------------------------------------------------------

    def create_auth_session(self, user_id: int, *, hours: float, address: str = "") -> str:
        """A new signed-in session for a user, valid for ``hours``; returns its secret token.

        Only the token's SHA-256 is stored, so a copy of the database signs no one in. Expired
        sessions are purged here, so the table does not grow without bound.
        """
        if hours <= 0:
            raise InputError(f"a session must last more than 0 hours, got {hours}")
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        ts = now.isoformat(timespec="microseconds")
        expires = (now + timedelta(hours=hours)).isoformat(timespec="microseconds")
        with self._write() as conn:
            conn.execute(sa.delete(S.auth_sessions).where(S.auth_sessions.c.expires_at <= ts))
            if conn.execute(sa.select(S.users.c.id).where(S.users.c.id == user_id)).first() is None:
                raise NotFoundError(f"no user with id {user_id}")
            conn.execute(
                sa.insert(S.auth_sessions).values(
                    token_hash=_token_hash(token),
                    user_id=user_id,
                    created_at=ts,
                    expires_at=expires,
                    address=(address or "")[:100],
                )
            )
        return token

    def auth_session_user(self, token: str) -> User | None:
        """The user of a live session token; None when unknown, expired or revoked."""
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        with self._read() as conn:
            row = conn.execute(
                sa.select(S.users)
                .join(S.auth_sessions, S.auth_sessions.c.user_id == S.users.c.id)
                .where(
                    S.auth_sessions.c.token_hash == _token_hash(token),
                    S.auth_sessions.c.expires_at > now_iso(),
                )
            ).first()
        return user_from_row(row) if row is not None else None

    def revoke_auth_session(self, token: str) -> None:
        """Sign one session out (unknown tokens are ignored)."""
        if isinstance(token, str) and token:
            with self._write() as conn:
                conn.execute(
                    sa.delete(S.auth_sessions).where(
                        S.auth_sessions.c.token_hash == _token_hash(token)
                    )
                )

    def revoke_user_sessions(self, username: str) -> int:
        """Sign a user out everywhere; returns how many sessions ended."""
        with self._write() as conn:
            uid = conn.execute(
                sa.select(S.users.c.id).where(S.users.c.username == username)
            ).scalar()
            if uid is None:
                return 0
            n = conn.execute(
                sa.delete(S.auth_sessions).where(S.auth_sessions.c.user_id == uid)
            ).rowcount
        return int(n)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
