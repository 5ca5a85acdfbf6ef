"""The learner store: learners, profiles, sessions, messages, attempts, mastery, session state,
item banks per collection, fitted BKT parameters and user accounts, on SQLAlchemy 2 (Core).

SQLite by default (a file in the data dir, WAL mode, busy timeout, ``BEGIN IMMEDIATE`` for
writes, so threads and processes write concurrently); any SQLAlchemy URL (PostgreSQL) by
config. Every write is its own committed transaction before the method returns (acknowledged =
durable). Every query about a session or a learner is keyed by its id, and a session can be
bound to its learner (``get_session(id, learner_id=...)``), so concurrent learners never see each
other's history.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError

from tutor import kt
from tutor.accounts import (
    SCRYPT_N,
    Role,
    check_role,
    check_username,
    dummy_verify,
    hash_password,
    verify_password,
)
from tutor.errors import InputError, NotFoundError, PermissionDeniedError
from tutor.grading import GradeResult
from tutor.items import Bank, Item, Skill, item_from_dict
from tutor.store import schema as S
from tutor.store.migrations import migrate

log = logging.getLogger(__name__)

EXPORT_FORMAT = "offline-tutor.learner-export"
EXPORT_VERSION = 1
DEFAULT_COLLECTION = "default"
MESSAGE_ROLES = ("user", "assistant", "system", "tool")
_NAME_RE = re.compile(r"^[\w][\w .@'\-]{0,99}$", re.UNICODE)
_COLLECTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
MAX_MESSAGE_CHARS = 100_000
MAX_PROFILE_VALUE_CHARS = 2000


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Learner:
    id: int
    name: str
    display_name: str
    created_at: str


@dataclass(frozen=True)
class LearnerStats:
    learner: Learner
    n_sessions: int
    n_messages: int
    n_attempts: int
    last_active_at: str | None


# Profile fields; ``teacher_notes`` only a teacher may edit.
PROFILE_FIELDS: tuple[str, ...] = (
    "grade_level",
    "language",
    "goals",
    "preferences",
    "interests",
    "teacher_notes",
)
TEACHER_ONLY_FIELDS: frozenset[str] = frozenset({"teacher_notes"})
Editor = Literal["learner", "teacher"]


@dataclass(frozen=True)
class Profile:
    """What the learner and the teacher tell the tutor (free text, each optional)."""

    learner_id: int
    grade_level: str = ""
    language: str = ""
    goals: str = ""
    preferences: str = ""
    interests: str = ""
    teacher_notes: str = ""
    updated_at: str = ""
    updated_by: str = ""

    def to_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in PROFILE_FIELDS}


@dataclass(frozen=True)
class Session:
    id: str
    learner_id: int
    collection: str
    started_at: str
    last_active_at: str
    ended_at: str | None


@dataclass(frozen=True)
class SessionState:
    """The agent's tutoring state for one session (stored as JSON with the session).

    ``item_id``: the open practice item (from the collection's bank), or None. ``problem``: a
    problem the learner brought that is not a bank item (its text), or "". ``attempts``: graded
    attempts on the open item/problem. ``hint_level``: the highest hint given (0 = none).
    ``solution_earned``: the learner may now see the full solution. ``extra``: anything else the
    agent keeps (JSON-serialisable).
    """

    item_id: str | None = None
    problem: str = ""
    answer: str = ""  # the answer of a learner-brought problem, when known (never shown)
    mode: str = ""
    attempts: int = 0
    hint_level: int = 0
    solution_earned: bool = False
    solution_shown: bool = False
    last_code: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> SessionState:
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        extra = dict(d.pop("extra", {}) or {})
        extra.update({k: v for k, v in d.items() if k not in known})
        return cls(**{k: v for k, v in d.items() if k in known}, extra=extra)

    def with_item(
        self, item_id: str | None, *, problem: str = "", answer: str = ""
    ) -> SessionState:
        """A fresh state for a newly opened item or problem (counters reset)."""
        return SessionState(item_id=item_id, problem=problem, answer=answer, mode=self.mode)


@dataclass(frozen=True)
class Message:
    id: int
    session_id: str
    learner_id: int
    role: str
    content: str
    meta: dict[str, Any]
    created_at: str


@dataclass(frozen=True)
class Attempt:
    id: int
    learner_id: int
    session_id: str | None
    collection: str
    item_id: str
    skills: tuple[str, ...]
    response: str
    correct: bool
    code: str
    normalized: str
    hint_level: int
    counted: bool
    created_at: str


@dataclass(frozen=True)
class SkillMastery:
    """Mastery of one skill: P(learned) and the prediction P(correct on the next item)."""

    skill: str
    p_mastery: float
    p_correct: float
    n_attempts: int
    n_correct: int
    mastered: bool
    updated_at: str | None


@dataclass(frozen=True)
class AttemptOutcome:
    """What ``record_attempt`` did: the stored attempt and mastery before/after per skill."""

    attempt: Attempt
    counted: bool
    mastery_before: dict[str, float]
    mastery_after: dict[str, float]


@dataclass(frozen=True)
class Prediction:
    learner_id: int
    learner_name: str
    skill: str
    p_mastery: float
    p_correct: float


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: Role
    learner_id: int | None
    created_at: str
    last_login_at: str | None


@dataclass(frozen=True)
class AddItemsReport:
    collection: str
    n_items: int
    n_skills: int
    n_replaced: int


# --------------------------------------------------------------------------------------------
# Engine


def make_engine(url: str, *, echo: bool = False) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout, FKs and ``BEGIN IMMEDIATE``."""
    u = sa.make_url(url)
    if u.get_backend_name() != "sqlite":
        return sa.create_engine(url, echo=echo, pool_pre_ping=True)
    db = u.database or ""
    memory = db in ("", ":memory:") or db.startswith("file::memory:")
    if not memory:
        Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 30, "check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = sa.pool.StaticPool
    engine = sa.create_engine(url, echo=echo, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun explicitly below
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")  # a committed write survives a power cut
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Writers take the write lock up front: a deferred transaction that reads and then
        # writes can fail at once with "database is locked" instead of waiting its turn.
        write = conn.get_execution_options().get("tutor_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


# --------------------------------------------------------------------------------------------
# The store


class LearnerStore:
    """All learner data behind one typed API. Thread-safe: share one instance per process."""

    def __init__(
        self,
        url: str,
        *,
        bkt_defaults: kt.BKTParams | None = None,
        mastery_threshold: float = 0.95,
        fallback_bank: Bank | Callable[[], Bank] | None = None,
        kdf_n: int = SCRYPT_N,
        auto_migrate: bool = True,
        echo: bool = False,
    ) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.bkt_defaults = bkt_defaults or kt.BKTParams()
        self.mastery_threshold = mastery_threshold
        self.kdf_n = kdf_n
        self._fallback = fallback_bank
        self._fallback_bank: Bank | None = None
        self._bank_cache: dict[str, tuple[tuple[Any, ...], Bank]] = {}
        self._lock = threading.Lock()
        if auto_migrate:
            migrate(self.engine)

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> LearnerStore:
        """The store for a resolved ``Config`` (``config.database_url``, ``[tutor]`` BKT defaults)."""
        from tutor.items import load_bank, load_default_bank

        t = config.tutor

        def fallback() -> Bank:
            return load_bank(t.item_bank) if t.item_bank else load_default_bank()

        return cls(
            config.database_url,
            bkt_defaults=kt.BKTParams.from_config(t),
            mastery_threshold=t.mastery_threshold,
            fallback_bank=fallback,
            **kwargs,
        )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> LearnerStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(tutor_write=True)
            with conn.begin():
                yield conn

    def _retry(self, fn: Callable[[sa.Connection], Any], attempts: int = 3) -> Any:
        """Run ``fn`` in a write transaction; retry on an insert race (PostgreSQL) or a lock."""
        for i in range(attempts):
            try:
                with self._write() as conn:
                    return fn(conn)
            except (IntegrityError, OperationalError) as e:
                if i == attempts - 1 or not _retryable(e):
                    raise
                log.debug("retrying a write after %s", type(e).__name__)
        raise AssertionError("unreachable")

    # -- learners ----------------------------------------------------------------------------

    def add_learner(self, name: str, *, display_name: str = "") -> Learner:
        name = _check_name(name)
        ts = now_iso()
        try:
            with self._write() as conn:
                lid = conn.execute(
                    sa.insert(S.learners).values(
                        name=name, display_name=display_name or "", created_at=ts
                    )
                ).inserted_primary_key[0]
                conn.execute(
                    sa.insert(S.profiles).values(
                        learner_id=lid, data={}, updated_at=ts, updated_by=""
                    )
                )
        except IntegrityError:
            raise InputError(
                f"a learner named {name!r} already exists; pick another name"
            ) from None
        return Learner(int(lid), name, display_name or "", ts)

    def get_or_create_learner(self, name: str, *, display_name: str = "") -> Learner:
        try:
            return self.find_learner(name)
        except NotFoundError:
            try:
                return self.add_learner(name, display_name=display_name)
            except InputError:
                return self.find_learner(name)  # created meanwhile by another writer

    def get_learner(self, learner_id: int) -> Learner:
        with self._read() as conn:
            row = conn.execute(sa.select(S.learners).where(S.learners.c.id == learner_id)).first()
        if row is None:
            raise NotFoundError(
                f"no learner with id {learner_id}; `tutor learners list` shows them"
            )
        return _learner(row)

    def find_learner(self, name: str) -> Learner:
        with self._read() as conn:
            row = conn.execute(sa.select(S.learners).where(S.learners.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no learner named {name!r}; `tutor learners list` shows them")
        return _learner(row)

    def list_learners(self) -> list[LearnerStats]:
        with self._read() as conn:
            rows = conn.execute(sa.select(S.learners).order_by(S.learners.c.name)).all()

            def counts(table: sa.Table) -> dict[int, int]:
                q = sa.select(table.c.learner_id, sa.func.count()).group_by(table.c.learner_id)
                return {int(r[0]): int(r[1]) for r in conn.execute(q)}

            ns, nm, na = counts(S.sessions), counts(S.messages), counts(S.attempts)
            last = dict(
                conn.execute(
                    sa.select(
                        S.sessions.c.learner_id, sa.func.max(S.sessions.c.last_active_at)
                    ).group_by(S.sessions.c.learner_id)
                ).all()
            )
        return [
            LearnerStats(
                _learner(r), ns.get(r.id, 0), nm.get(r.id, 0), na.get(r.id, 0), last.get(r.id)
            )
            for r in rows
        ]

    # -- profiles ----------------------------------------------------------------------------

    def get_profile(self, learner_id: int) -> Profile:
        with self._read() as conn:
            self._require_learner(conn, learner_id)
            row = conn.execute(
                sa.select(S.profiles).where(S.profiles.c.learner_id == learner_id)
            ).first()
        return _profile(learner_id, row)

    def update_profile(
        self, learner_id: int, changes: Mapping[str, str], *, editor: Editor = "learner"
    ) -> Profile:
        """Change profile fields. A learner may not edit teacher-only fields (``teacher_notes``)."""
        if editor not in ("learner", "teacher"):
            raise InputError(f"editor must be 'learner' or 'teacher', got {editor!r}")
        for k, v in changes.items():
            if k not in PROFILE_FIELDS:
                raise InputError(
                    f"unknown profile field {k!r}; use one of {', '.join(PROFILE_FIELDS)}"
                )
            if k in TEACHER_ONLY_FIELDS and editor != "teacher":
                raise PermissionDeniedError(f"only a teacher may edit the profile field {k!r}")
            if not isinstance(v, str) or len(v) > MAX_PROFILE_VALUE_CHARS:
                raise InputError(
                    f"profile field {k!r} must be text of at most {MAX_PROFILE_VALUE_CHARS} characters"
                )

        def tx(conn: sa.Connection) -> Profile:
            self._require_learner(conn, learner_id)
            row = conn.execute(
                sa.select(S.profiles).where(S.profiles.c.learner_id == learner_id)
            ).first()
            data = dict(row.data) if row is not None else {}
            data.update({k: v.strip() for k, v in changes.items()})
            ts = now_iso()
            if row is None:
                conn.execute(
                    sa.insert(S.profiles).values(
                        learner_id=learner_id, data=data, updated_at=ts, updated_by=editor
                    )
                )
            else:
                conn.execute(
                    sa.update(S.profiles)
                    .where(S.profiles.c.learner_id == learner_id)
                    .values(data=data, updated_at=ts, updated_by=editor)
                )
            return Profile(
                learner_id,
                **{k: data.get(k, "") for k in PROFILE_FIELDS},
                updated_at=ts,
                updated_by=editor,
            )

        return self._retry(tx)

    # -- sessions ----------------------------------------------------------------------------

    def start_session(self, learner_id: int, *, collection: str = DEFAULT_COLLECTION) -> Session:
        collection = _check_collection(collection)
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
        return _session(row)

    def list_sessions(self, learner_id: int) -> list[Session]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(S.sessions)
                .where(S.sessions.c.learner_id == learner_id)
                .order_by(S.sessions.c.started_at)
            ).all()
        return [_session(r) for r in rows]

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
        ts = now_iso()
        meta_d = dict(meta or {})
        with self._write() as conn:
            row = self._session_row(conn, session_id, learner_id)
            mid = conn.execute(
                sa.insert(S.messages).values(
                    session_id=session_id,
                    learner_id=row.learner_id,
                    role=role,
                    content=content,
                    meta=meta_d,
                    created_at=ts,
                )
            ).inserted_primary_key[0]
            conn.execute(
                sa.update(S.sessions).where(S.sessions.c.id == session_id).values(last_active_at=ts)
            )
        return Message(int(mid), session_id, int(row.learner_id), role, content, meta_d, ts)

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
                rows = conn.execute(q.order_by(S.messages.c.id)).all()
        return [_message(r) for r in rows]

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

    # -- attempts and mastery ----------------------------------------------------------------

    def record_attempt(
        self,
        learner_id: int,
        item: Item,
        response: str,
        result: GradeResult,
        *,
        session_id: str | None = None,
        collection: str | None = None,
        hint_level: int = 0,
    ) -> AttemptOutcome:
        """Store a graded attempt and update mastery of the item's skills (BKT), atomically.

        Only the first graded attempt at an item within a session moves mastery (``counted``):
        retries after feedback would otherwise inflate it. Mastery changes only here.
        """
        if not isinstance(result, GradeResult):
            raise InputError("record_attempt needs the checker's GradeResult (tutor.grading.grade)")
        ts = now_iso()

        def tx(conn: sa.Connection) -> AttemptOutcome:
            coll = collection
            if session_id is not None:
                srow = self._session_row(conn, session_id, learner_id)
                coll = coll or srow.collection
                earlier = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(S.attempts)
                    .where(S.attempts.c.session_id == session_id, S.attempts.c.item_id == item.id)
                ).scalar_one()
                counted = earlier == 0
            else:
                self._require_learner(conn, learner_id)
                counted = True
            coll = coll or DEFAULT_COLLECTION
            aid = conn.execute(
                sa.insert(S.attempts).values(
                    learner_id=learner_id,
                    session_id=session_id,
                    collection=coll,
                    item_id=item.id,
                    skills=list(item.skills),
                    response=response[:MAX_MESSAGE_CHARS],
                    correct=bool(result.correct),
                    code=result.code,
                    normalized=result.normalized,
                    hint_level=int(hint_level),
                    counted=counted,
                    created_at=ts,
                )
            ).inserted_primary_key[0]
            before: dict[str, float] = {}
            after: dict[str, float] = {}
            params = self._params(conn)
            for skill in item.skills:
                p = kt.params_for(params, skill, self.bkt_defaults)
                row = conn.execute(
                    sa.select(S.mastery)
                    .where(S.mastery.c.learner_id == learner_id, S.mastery.c.skill == skill)
                    .with_for_update()
                ).first()
                pm = float(row.p_mastery) if row is not None else p.prior
                before[skill] = pm
                new = kt.update(pm, result.correct, p) if counted else pm
                after[skill] = new
                n_att = (row.n_attempts if row is not None else 0) + (1 if counted else 0)
                n_cor = (row.n_correct if row is not None else 0) + (
                    1 if counted and result.correct else 0
                )
                values = dict(p_mastery=new, n_attempts=n_att, n_correct=n_cor, updated_at=ts)
                if row is None:
                    conn.execute(
                        sa.insert(S.mastery).values(learner_id=learner_id, skill=skill, **values)
                    )
                else:
                    conn.execute(
                        sa.update(S.mastery)
                        .where(S.mastery.c.learner_id == learner_id, S.mastery.c.skill == skill)
                        .values(**values)
                    )
            if session_id is not None:
                conn.execute(
                    sa.update(S.sessions)
                    .where(S.sessions.c.id == session_id)
                    .values(last_active_at=ts)
                )
            attempt = Attempt(
                int(aid),
                learner_id,
                session_id,
                coll,
                item.id,
                tuple(item.skills),
                response[:MAX_MESSAGE_CHARS],
                bool(result.correct),
                result.code,
                result.normalized,
                int(hint_level),
                counted,
                ts,
            )
            return AttemptOutcome(attempt, counted, before, after)

        return self._retry(tx)

    def attempts(
        self,
        learner_id: int | None = None,
        *,
        skill: str | None = None,
        item_id: str | None = None,
        session_id: str | None = None,
        counted_only: bool = False,
    ) -> list[Attempt]:
        """Attempts in time order, filtered."""
        q = sa.select(S.attempts).order_by(S.attempts.c.id)
        if learner_id is not None:
            q = q.where(S.attempts.c.learner_id == learner_id)
        if item_id is not None:
            q = q.where(S.attempts.c.item_id == item_id)
        if session_id is not None:
            q = q.where(S.attempts.c.session_id == session_id)
        if counted_only:
            q = q.where(S.attempts.c.counted == sa.true())
        with self._read() as conn:
            rows = conn.execute(q).all()
        out = [_attempt(r) for r in rows]
        return [a for a in out if skill is None or skill in a.skills]

    def mastery(
        self, learner_id: int, skills: Iterable[str] | None = None
    ) -> dict[str, SkillMastery]:
        """Mastery per skill: the learner's stored rows, plus ``skills`` (at their prior)."""
        with self._read() as conn:
            self._require_learner(conn, learner_id)
            rows = conn.execute(
                sa.select(S.mastery).where(S.mastery.c.learner_id == learner_id)
            ).all()
            params = self._params(conn)
        out: dict[str, SkillMastery] = {}
        for r in rows:
            out[r.skill] = self._skill_mastery(
                r.skill, float(r.p_mastery), r.n_attempts, r.n_correct, r.updated_at, params
            )
        for s in skills or ():
            if s not in out:
                p = kt.params_for(params, s, self.bkt_defaults)
                out[s] = self._skill_mastery(s, p.prior, 0, 0, None, params)
        return out

    def _skill_mastery(
        self,
        skill: str,
        pm: float,
        n: int,
        c: int,
        ts: str | None,
        params: Mapping[str, kt.BKTParams],
    ) -> SkillMastery:
        p = kt.params_for(params, skill, self.bkt_defaults)
        return SkillMastery(
            skill, pm, kt.p_correct(pm, p), int(n), int(c), pm >= self.mastery_threshold, ts
        )

    def predictions(self, skills: Iterable[str] | None = None) -> list[Prediction]:
        """P(mastery) and P(correct on the next item) for every learner x skill.

        Skills: ``skills`` when given, else every skill of any stored collection, any skill with
        fitted parameters and any skill with mastery rows (and the fallback bank's skills).
        """
        with self._read() as conn:
            learners_ = conn.execute(sa.select(S.learners).order_by(S.learners.c.name)).all()
            rows = conn.execute(sa.select(S.mastery)).all()
            params = self._params(conn)
            if skills is None:
                names = {r[0] for r in conn.execute(sa.select(S.skills.c.skill_id))}
                names |= set(params) | {r.skill for r in rows}
        if skills is None:
            names |= set(self._fallback_skills())
            skill_list = sorted(names)
        else:
            skill_list = list(skills)
        stored = {(r.learner_id, r.skill): float(r.p_mastery) for r in rows}
        out = []
        for lr in learners_:
            for s in skill_list:
                p = kt.params_for(params, s, self.bkt_defaults)
                pm = stored.get((lr.id, s), p.prior)
                out.append(Prediction(lr.id, lr.name, s, pm, kt.p_correct(pm, p)))
        return out

    # -- knowledge-tracing parameters ----------------------------------------------------------

    def kt_params(self) -> dict[str, kt.BKTParams]:
        """Fitted BKT parameters per skill (skills without a fit use ``bkt_defaults``)."""
        with self._read() as conn:
            return self._params(conn)

    def params_for(self, skill: str) -> kt.BKTParams:
        return kt.params_for(self.kt_params(), skill, self.bkt_defaults)

    def _params(self, conn: sa.Connection) -> dict[str, kt.BKTParams]:
        rows = conn.execute(sa.select(S.kt_params)).all()
        return {r.skill: kt.BKTParams(r.prior, r.learn, r.guess, r.slip, r.forget) for r in rows}

    def set_kt_params(
        self, skill: str, params: kt.BKTParams, *, fit: kt.FitResult | None = None
    ) -> None:
        values = dict(
            prior=params.prior,
            learn=params.learn,
            guess=params.guess,
            slip=params.slip,
            forget=params.forget,
            n_sequences=fit.n_sequences if fit else 0,
            n_observations=fit.n_observations if fit else 0,
            log_likelihood=fit.log_likelihood if fit else 0.0,
            fitted_at=now_iso(),
        )

        def tx(conn: sa.Connection) -> None:
            exists = conn.execute(
                sa.select(S.kt_params.c.skill).where(S.kt_params.c.skill == skill)
            ).first()
            if exists:
                conn.execute(
                    sa.update(S.kt_params).where(S.kt_params.c.skill == skill).values(**values)
                )
            else:
                conn.execute(sa.insert(S.kt_params).values(skill=skill, **values))

        self._retry(tx)

    def fit_kt(self, *, min_observations: int = 20, **fit_kwargs: Any) -> dict[str, kt.FitResult]:
        """Fit BKT per skill from the attempts log (counted attempts, in time order), store the
        parameters and recompute every learner's mastery with them. Skills with fewer than
        ``min_observations`` attempts keep their current parameters."""
        records = [
            (a.learner_id, s, a.correct) for a in self.attempts(counted_only=True) for s in a.skills
        ]
        fits = kt.fit(
            records, defaults=self.bkt_defaults, min_observations=min_observations, **fit_kwargs
        )
        for skill, res in fits.items():
            self.set_kt_params(skill, res.params, fit=res)
        if fits:
            self.recompute_mastery()
        return fits

    def recompute_mastery(self) -> int:
        """Replay every learner's counted attempts with the current parameters; returns rows."""
        attempts = self.attempts(counted_only=True)
        state: dict[tuple[int, str], list[Any]] = {}
        with self._read() as conn:
            params = self._params(conn)
        for a in attempts:
            for s in a.skills:
                p = kt.params_for(params, s, self.bkt_defaults)
                cur = state.setdefault((a.learner_id, s), [p.prior, 0, 0, a.created_at])
                cur[0] = kt.update(cur[0], a.correct, p)
                cur[1] += 1
                cur[2] += int(a.correct)
                cur[3] = a.created_at

        def tx(conn: sa.Connection) -> int:
            for (lid, s), (pm, n, c, ts) in state.items():
                res = conn.execute(
                    sa.update(S.mastery)
                    .where(S.mastery.c.learner_id == lid, S.mastery.c.skill == s)
                    .values(p_mastery=pm, n_attempts=n, n_correct=c, updated_at=ts)
                )
                if res.rowcount == 0:
                    conn.execute(
                        sa.insert(S.mastery).values(
                            learner_id=lid,
                            skill=s,
                            p_mastery=pm,
                            n_attempts=n,
                            n_correct=c,
                            updated_at=ts,
                        )
                    )
            return len(state)

        return self._retry(tx)

    # -- item banks ----------------------------------------------------------------------------

    def add_items(
        self, bank: Bank, *, collection: str = DEFAULT_COLLECTION, source_file: str = ""
    ) -> AddItemsReport:
        """Store a validated bank's skills and items in a collection (same id = replaced)."""
        collection = _check_collection(collection)
        ts = now_iso()

        def tx(conn: sa.Connection) -> AddItemsReport:
            existing_sk = {
                r[0]: r[1]
                for r in conn.execute(
                    sa.select(S.skills.c.skill_id, S.skills.c.position).where(
                        S.skills.c.collection == collection
                    )
                )
            }
            pos = max(existing_sk.values(), default=-1) + 1
            for sk in bank.skills.values():
                values = dict(
                    name=sk.name, prerequisites=list(sk.prerequisites), description=sk.description
                )
                if sk.id in existing_sk:
                    conn.execute(
                        sa.update(S.skills)
                        .where(S.skills.c.collection == collection, S.skills.c.skill_id == sk.id)
                        .values(**values)
                    )
                else:
                    conn.execute(
                        sa.insert(S.skills).values(
                            collection=collection, skill_id=sk.id, position=pos, **values
                        )
                    )
                    pos += 1
            existing = {
                r[0]: r[1]
                for r in conn.execute(
                    sa.select(S.items.c.item_id, S.items.c.position).where(
                        S.items.c.collection == collection
                    )
                )
            }
            ipos = max(existing.values(), default=-1) + 1
            replaced = 0
            for it in bank.items:
                values = dict(
                    skills=list(it.skills),
                    difficulty=it.difficulty,
                    data=it.to_dict(),
                    source_file=source_file or it.origin.rsplit(":", 1)[0],
                    added_at=ts,
                )
                if it.id in existing:
                    replaced += 1
                    conn.execute(
                        sa.update(S.items)
                        .where(S.items.c.collection == collection, S.items.c.item_id == it.id)
                        .values(**values)
                    )
                else:
                    conn.execute(
                        sa.insert(S.items).values(
                            collection=collection, item_id=it.id, position=ipos, **values
                        )
                    )
                    ipos += 1
            return AddItemsReport(collection, len(bank.items), len(bank.skills), replaced)

        report = self._retry(tx)
        self._bank_cache.pop(collection, None)
        return report

    def remove_items(self, collection: str, item_ids: Iterable[str] | None = None) -> int:
        """Remove some items (or all items and skills) of a collection; returns items removed."""
        with self._write() as conn:
            q = sa.delete(S.items).where(S.items.c.collection == collection)
            if item_ids is not None:
                q = q.where(S.items.c.item_id.in_(list(item_ids)))
            else:
                conn.execute(sa.delete(S.skills).where(S.skills.c.collection == collection))
            n = conn.execute(q).rowcount
        self._bank_cache.pop(collection, None)
        return int(n)

    def collections(self) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(sa.select(S.items.c.collection).distinct()).all()
        return sorted(r[0] for r in rows)

    def bank(self, collection: str = DEFAULT_COLLECTION) -> Bank:
        """The collection's skills and items; the fallback bank (the shipped sample, or
        ``tutor.item_bank``) when nothing is stored for it."""
        with self._read() as conn:
            version = tuple(
                conn.execute(
                    sa.select(sa.func.count(), sa.func.max(S.items.c.added_at)).where(
                        S.items.c.collection == collection
                    )
                ).one()
            ) + tuple(
                conn.execute(
                    sa.select(sa.func.count()).where(S.skills.c.collection == collection)
                ).one()
            )
            cached = self._bank_cache.get(collection)
            if cached is not None and cached[0] == version:
                return cached[1]
            if version[0] == 0:
                return self._fallback_bank_obj()
            sk_rows = conn.execute(
                sa.select(S.skills)
                .where(S.skills.c.collection == collection)
                .order_by(S.skills.c.position)
            ).all()
            it_rows = conn.execute(
                sa.select(S.items)
                .where(S.items.c.collection == collection)
                .order_by(S.items.c.position)
            ).all()
        bank = Bank(
            skills={
                r.skill_id: Skill(r.skill_id, r.name, tuple(r.prerequisites), r.description)
                for r in sk_rows
            },
            items=[item_from_dict(r.data, origin=f"{collection}/{r.item_id}") for r in it_rows],
        )
        self._bank_cache[collection] = (version, bank)
        return bank

    def _fallback_bank_obj(self) -> Bank:
        with self._lock:
            if self._fallback_bank is None:
                fb = self._fallback
                self._fallback_bank = fb() if callable(fb) else (fb or Bank())
            return self._fallback_bank

    def _fallback_skills(self) -> list[str]:
        try:
            return list(self._fallback_bank_obj().skills)
        except InputError:
            return []

    def stored_skills(self, collection: str) -> dict[str, Skill]:
        """The skills stored for a collection (no fallback), in their order."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(S.skills)
                .where(S.skills.c.collection == collection)
                .order_by(S.skills.c.position)
            ).all()
        return {
            r.skill_id: Skill(r.skill_id, r.name, tuple(r.prerequisites), r.description)
            for r in rows
        }

    def items(
        self, collection: str = DEFAULT_COLLECTION, *, skill: str | None = None
    ) -> list[Item]:
        b = self.bank(collection)
        return b.for_skill(skill) if skill else list(b.items)

    def get_item(self, collection: str, item_id: str) -> Item:
        it = self.bank(collection).item(item_id)
        if it is None:
            raise NotFoundError(
                f"no item {item_id!r} in collection {collection!r}; `tutor items list` shows them"
            )
        return it

    def skills(self, collection: str = DEFAULT_COLLECTION) -> dict[str, Skill]:
        return dict(self.bank(collection).skills)

    def next_item(
        self,
        learner_id: int,
        collection: str = DEFAULT_COLLECTION,
        *,
        exclude: Iterable[str] | None = None,
        recent: int = 5,
    ) -> kt.Selection | None:
        """The next practice item for the learner (``kt.select_next_item``). By default the
        items of the learner's last ``recent`` attempts are avoided when others fit."""
        bank = self.bank(collection)
        if exclude is None:
            last = self.attempts(learner_id)[-recent:] if recent else []
            exclude = {a.item_id for a in last}
        m = self.mastery(learner_id)
        return kt.select_next_item(
            bank.items,
            bank.skills,
            {s: v.p_mastery for s, v in m.items()},
            self.kt_params(),
            threshold=self.mastery_threshold,
            exclude=set(exclude),
            default=self.bkt_defaults,
        )

    # -- users ---------------------------------------------------------------------------------

    def add_user(
        self, username: str, password: str, *, role: Role, learner_id: int | None = None
    ) -> User:
        """Create an account. A student account must be linked to a learner; a teacher's not."""
        check_username(username)
        check_role(role)
        if role == "student" and learner_id is None:
            raise InputError("a student account needs a learner (pass the learner to link)")
        if role == "teacher" and learner_id is not None:
            raise InputError("a teacher account is not linked to a learner")
        pw_hash = hash_password(password, n=self.kdf_n)
        ts = now_iso()
        try:
            with self._write() as conn:
                if learner_id is not None:
                    self._require_learner(conn, learner_id)
                uid = conn.execute(
                    sa.insert(S.users).values(
                        username=username,
                        role=role,
                        password_hash=pw_hash,
                        learner_id=learner_id,
                        created_at=ts,
                        last_login_at=None,
                    )
                ).inserted_primary_key[0]
        except IntegrityError:
            raise InputError(f"a user named {username!r} already exists") from None
        return User(int(uid), username, role, learner_id, ts, None)

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
        return replace(_user(row), last_login_at=ts)

    def get_user(self, username: str) -> User:
        with self._read() as conn:
            row = conn.execute(sa.select(S.users).where(S.users.c.username == username)).first()
        if row is None:
            raise NotFoundError(f"no user named {username!r}; `tutor users list` shows them")
        return _user(row)

    def list_users(self) -> list[User]:
        with self._read() as conn:
            rows = conn.execute(sa.select(S.users).order_by(S.users.c.username)).all()
        return [_user(r) for r in rows]

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
        return _user(row) if row is not None else None

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

    # -- export and deletion ---------------------------------------------------------------------

    def export_learner(self, learner_id: int) -> dict[str, Any]:
        """Everything stored about one learner, as JSON-serialisable data (no password hashes).

        ``tables`` has one entry per table in ``LEARNER_TABLES``: the learner's rows.
        """
        tables: dict[str, list[dict[str, Any]]] = {}
        with self._read() as conn:
            learner = self._require_learner(conn, learner_id)
            for name in S.LEARNER_TABLES:
                t = S.metadata.tables[name]
                col = t.c.id if name == "learners" else t.c.learner_id
                order = list(t.primary_key.columns)
                rows = conn.execute(sa.select(t).where(col == learner_id).order_by(*order)).all()
                hidden = S.SECRET_COLUMNS.get(name, ())
                tables[name] = [
                    {k: v for k, v in r._mapping.items() if k not in hidden} for r in rows
                ]
            for name, where in _linked_rows(learner_id).items():
                t = S.metadata.tables[name]
                rows = conn.execute(sa.select(t).where(where).order_by(*t.primary_key)).all()
                hidden = S.SECRET_COLUMNS.get(name, ())
                tables[name] = [
                    {k: v for k, v in r._mapping.items() if k not in hidden} for r in rows
                ]
        return {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": now_iso(),
            "learner": asdict(_learner(learner)),
            "tables": tables,
        }

    def delete_learner(self, learner_id: int) -> dict[str, int]:
        """Delete every row of one learner in every learner table; returns rows per table."""
        _check_learner_tables()
        counts: dict[str, int] = {}
        with self._write() as conn:
            self._require_learner(conn, learner_id)
            for name, where in _linked_rows(learner_id).items():
                t = S.metadata.tables[name]
                counts[name] = int(conn.execute(sa.delete(t).where(where)).rowcount)
            for name in S.LEARNER_TABLES:
                t = S.metadata.tables[name]
                col = t.c.id if name == "learners" else t.c.learner_id
                counts[name] = int(conn.execute(sa.delete(t).where(col == learner_id)).rowcount)
        return counts

    # -- helpers ---------------------------------------------------------------------------------

    def _require_learner(self, conn: sa.Connection, learner_id: int) -> Any:
        row = conn.execute(sa.select(S.learners).where(S.learners.c.id == learner_id)).first()
        if row is None:
            raise NotFoundError(
                f"no learner with id {learner_id}; `tutor learners list` shows them"
            )
        return row

    def _session_row(self, conn: sa.Connection, session_id: str, learner_id: int | None) -> Any:
        row = conn.execute(sa.select(S.sessions).where(S.sessions.c.id == session_id)).first()
        if row is None or (learner_id is not None and row.learner_id != learner_id):
            # the same message for "missing" and "someone else's": ids are not probed
            raise NotFoundError(f"no session {session_id!r} for this learner; start a new session")
        return row


def _retryable(e: Exception) -> bool:
    msg = str(e).lower()
    return isinstance(e, IntegrityError) or "locked" in msg or "deadlock" in msg or "busy" in msg


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _linked_rows(learner_id: int) -> dict[str, Any]:
    """For each table in LEARNER_LINKED_TABLES, the condition selecting one learner's rows."""
    out: dict[str, Any] = {}
    for name, (column, parent) in S.LEARNER_LINKED_TABLES.items():
        t, pt = S.metadata.tables[name], S.metadata.tables[parent]
        out[name] = t.c[column].in_(sa.select(pt.c.id).where(pt.c.learner_id == learner_id))
    return out


def _check_learner_tables() -> None:
    """Every table with a ``learner_id`` column must be in LEARNER_TABLES (export/delete)."""
    holding = {t.name for t in S.metadata.sorted_tables if "learner_id" in t.c} | {"learners"}
    missing = holding - set(S.LEARNER_TABLES)
    assert not missing, f"tables with learner data missing from LEARNER_TABLES: {missing}"
    # ... and every other table pointing into one of them in LEARNER_LINKED_TABLES
    linked = {
        t.name
        for t in S.metadata.sorted_tables
        if t.name not in holding and any(fk.column.table.name in holding for fk in t.foreign_keys)
    }
    missing = linked - set(S.LEARNER_LINKED_TABLES)
    assert not missing, f"tables with learner data missing from LEARNER_LINKED_TABLES: {missing}"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name.strip()):
        raise InputError(
            f"learner name {name!r} is not valid: 1-100 letters, digits, spaces, '.', '@', \"'\" or '-'"
        )
    return name.strip()


def _check_collection(collection: str) -> str:
    if not isinstance(collection, str) or not _COLLECTION_RE.match(collection):
        raise InputError(
            f"collection name {collection!r} is not valid: letters, digits, '_', '.' or '-'"
        )
    return collection


def _learner(r: Any) -> Learner:
    return Learner(int(r.id), r.name, r.display_name or "", r.created_at)


def _profile(learner_id: int, row: Any) -> Profile:
    data = dict(row.data) if row is not None else {}
    return Profile(
        learner_id,
        **{k: str(data.get(k, "")) for k in PROFILE_FIELDS},
        updated_at=row.updated_at if row is not None else "",
        updated_by=row.updated_by if row is not None else "",
    )


def _session(r: Any) -> Session:
    return Session(
        r.id, int(r.learner_id), r.collection, r.started_at, r.last_active_at, r.ended_at
    )


def _message(r: Any) -> Message:
    return Message(
        int(r.id),
        r.session_id,
        int(r.learner_id),
        r.role,
        r.content,
        dict(r.meta or {}),
        r.created_at,
    )


def _attempt(r: Any) -> Attempt:
    return Attempt(
        int(r.id),
        int(r.learner_id),
        r.session_id,
        r.collection,
        r.item_id,
        tuple(r.skills or ()),
        r.response,
        bool(r.correct),
        r.code,
        r.normalized or "",
        int(r.hint_level),
        bool(r.counted),
        r.created_at,
    )


def _user(r: Any) -> User:
    return User(int(r.id), r.username, r.role, r.learner_id, r.created_at, r.last_login_at)
