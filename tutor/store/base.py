"""The learner store's engine and transactions: ``make_engine`` (SQLite tuned for concurrent
writers, or any SQLAlchemy URL) and ``StoreBase``, which every part of ``LearnerStore`` builds on:
read and write transactions, the retry of a write that lost a race, and the two lookups every
part needs (a learner, a session bound to its learner).

A SQLite store remembers which file it opened (device and inode): when that file is deleted or
replaced while the process runs, every transaction refuses with ``StoreError`` instead of
writing into a deleted file (which a restart would lose) or an empty new one."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError

from knowledge_base.diskspace import no_space
from knowledge_base.errors import DiskFullError, StoreError
from tutor import kt
from tutor.errors import NotFoundError
from tutor.items import Bank
from tutor.store import schema as S

log = logging.getLogger(__name__)

T = TypeVar("T")


def make_engine(url: str, *, echo: bool = False) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout, FKs and ``BEGIN IMMEDIATE``."""
    u = sa.make_url(url)
    if u.get_backend_name() != "sqlite":
        return sa.create_engine(url, echo=echo, pool_pre_ping=True)
    db = u.database or ""
    memory = db in ("", ":memory:") or db.startswith("file::memory:")
    if not memory and not db.startswith("file:"):
        _create_private(Path(db).expanduser())
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


def _create_private(path: Path) -> None:
    """Create a new store file readable by its owner only (mode 0600, in a 0700 directory when
    that is new): it holds chats and password hashes. SQLite gives its -wal and -shm files the
    database file's mode. An existing file or directory keeps its mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (absolute); None for memory databases and other engines."""
    u = sa.make_url(url)
    db = u.database or ""
    if u.get_backend_name() != "sqlite" or db in ("", ":memory:") or db.startswith("file:"):
        return None
    return Path(db).expanduser().resolve()


def file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class StoreBase:
    """The engine, the settings and the transactions shared by every part of the store.

    ``LearnerStore.__init__`` sets the attributes; the parts (mixins) only use them.
    """

    url: str
    engine: sa.Engine
    bkt_defaults: kt.BKTParams
    mastery_threshold: float
    kdf_n: int
    _fallback: Bank | Callable[[], Bank] | None
    _fallback_bank: Bank | None
    _bank_cache: dict[str, tuple[tuple[Any, ...], Bank]]
    _lock: threading.Lock
    # the SQLite file and its (device, inode) when opened; None for other databases
    _file: Path | None = None
    _file_id: tuple[int, int] | None = None

    def _remember_file(self) -> None:
        """Note which file the store opened (called once it exists, after the migrations)."""
        self._file = sqlite_file(self.url)
        self._file_id = file_identity(self._file) if self._file is not None else None

    def check_file(self) -> None:
        """Raise ``StoreError`` when the store's file was deleted or replaced since it was opened.

        The open connections would go on writing into the deleted file (all lost at the next
        start) or a new connection into an empty one; so nothing is read or written until the
        process is restarted on the restored file.
        """
        if self._file_id is None or self._file is None:
            return
        now = file_identity(self._file)
        if now == self._file_id:
            return
        what = "was deleted" if now is None else "was replaced by another file"
        # the full path goes to the log only: the message may be shown to students
        log.error("the learner store %s %s; refusing to read or write it", self._file, what)
        raise StoreError(
            f"the learner store ({self._file.name} in the data dir) {what} while the tutor was "
            "running; nothing more is saved. Restore the file from a backup (or leave it missing "
            "to start empty) and restart the tutor (docs/operations.md, 'The learner store went "
            "missing')"
        )

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        self.check_file()
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction; a full disk (or file-size limit) raises ``DiskFullError``, after
        the transaction was rolled back, so nothing of it is kept."""
        self.check_file()
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(tutor_write=True)
                with conn.begin():
                    yield conn
        except (OperationalError, OSError) as e:
            where = self._file.parent if self._file is not None else None
            if not no_space(e, where):
                raise
            log.error("no room left to write the learner store %s: %s", self._file, e)
            raise DiskFullError(_disk_full_message(where)) from e

    def _retry(self, fn: Callable[[sa.Connection], T], attempts: int = 3) -> T:
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

    # -- lookups every part needs ------------------------------------------------------------

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


def insert_learner(conn: sa.Connection, name: str, display_name: str, ts: str) -> int:
    """Insert a learner and its empty profile in the caller's transaction; returns its id."""
    lid = inserted_id(
        conn.execute(
            sa.insert(S.learners).values(name=name, display_name=display_name or "", created_at=ts)
        )
    )
    conn.execute(
        sa.insert(S.profiles).values(learner_id=lid, data={}, updated_at=ts, updated_by="")
    )
    return lid


def _disk_full_message(directory: Path | None) -> str:
    free = "free space unknown"
    if directory is not None:
        try:
            free = f"{shutil.disk_usage(directory).free / 1e6:.1f} MB free"
        except OSError:
            pass
    # no path: students may see this; the log names the file
    return (
        f"no room left on the disk of the learner store ({free}, or the file-size limit was "
        "reached): nothing of this was saved. Free some disk space in the data dir and try again"
    )


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key an ``INSERT`` gave its row (tables with an integer ``id``)."""
    key = result.inserted_primary_key
    assert key is not None, "not the result of a single-row INSERT"
    return int(key[0])


def _retryable(e: Exception) -> bool:
    msg = str(e).lower()
    return isinstance(e, IntegrityError) or "locked" in msg or "deadlock" in msg or "busy" in msg
