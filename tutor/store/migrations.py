"""Schema migrations: a named, ordered list, each applied once and recorded (simonw/llm style).

Each migration is a function of a connection inside a transaction; its name goes into
``schema_migrations`` in the same transaction, so a migration is applied completely or not at
all. Migrations define the tables as they were at that point (their own ``MetaData``) and never
import the current schema: an old database is brought forward step by step. Only portable DDL
(SQLAlchemy Core ``create``, ``ALTER TABLE ... ADD COLUMN`` with a default) is used, so the same
list runs on SQLite and PostgreSQL. Add new migrations at the end; never edit an applied one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

log = logging.getLogger(__name__)

Migration = Callable[[sa.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def _ts() -> sa.String:
    return sa.String(40)


@migration
def m001_learners_sessions_messages(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "learners",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", _ts(), nullable=False),
    )
    sa.Table(
        "profiles",
        md,
        sa.Column("learner_id", sa.Integer, sa.ForeignKey("learners.id"), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("updated_by", sa.String(20), nullable=False, server_default=""),
    )
    sa.Table(
        "sessions",
        md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "learner_id", sa.Integer, sa.ForeignKey("learners.id"), nullable=False, index=True
        ),
        sa.Column("collection", sa.String(100), nullable=False, server_default="default"),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("last_active_at", _ts(), nullable=False),
        sa.Column("ended_at", _ts(), nullable=True),
    )
    sa.Table(
        "messages",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("sessions.id"), nullable=False, index=True
        ),
        sa.Column(
            "learner_id", sa.Integer, sa.ForeignKey("learners.id"), nullable=False, index=True
        ),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
    )
    md.create_all(conn)


@migration
def m002_attempts_mastery(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table("learners", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("sessions", md, sa.Column("id", sa.String(36), primary_key=True))
    attempts = sa.Table(
        "attempts",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "learner_id", sa.Integer, sa.ForeignKey("learners.id"), nullable=False, index=True
        ),
        sa.Column(
            "session_id", sa.String(36), sa.ForeignKey("sessions.id"), nullable=True, index=True
        ),
        sa.Column("collection", sa.String(100), nullable=False, server_default="default"),
        sa.Column("item_id", sa.String(100), nullable=False),
        sa.Column("skills", sa.Text, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("correct", sa.Boolean, nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("normalized", sa.Text, nullable=False, server_default=""),
        sa.Column("hint_level", sa.Integer, nullable=False, server_default="0"),
        sa.Column("counted", sa.Boolean, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
    )
    mastery = sa.Table(
        "mastery",
        md,
        sa.Column("learner_id", sa.Integer, sa.ForeignKey("learners.id"), primary_key=True),
        sa.Column("skill", sa.String(100), primary_key=True),
        sa.Column("p_mastery", sa.Float, nullable=False),
        sa.Column("n_attempts", sa.Integer, nullable=False),
        sa.Column("n_correct", sa.Integer, nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
    )
    attempts.create(conn)
    mastery.create(conn)


@migration
def m003_item_banks(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "skills",
        md,
        sa.Column("collection", sa.String(100), primary_key=True),
        sa.Column("skill_id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prerequisites", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    )
    sa.Table(
        "items",
        md,
        sa.Column("collection", sa.String(100), primary_key=True),
        sa.Column("item_id", sa.String(100), primary_key=True),
        sa.Column("skills", sa.Text, nullable=False),
        sa.Column("difficulty", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("source_file", sa.Text, nullable=False, server_default=""),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("added_at", _ts(), nullable=False),
    )
    md.create_all(conn)


@migration
def m004_kt_params(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "kt_params",
        md,
        sa.Column("skill", sa.String(100), primary_key=True),
        sa.Column("prior", sa.Float, nullable=False),
        sa.Column("learn", sa.Float, nullable=False),
        sa.Column("guess", sa.Float, nullable=False),
        sa.Column("slip", sa.Float, nullable=False),
        sa.Column("forget", sa.Float, nullable=False),
        sa.Column("n_sequences", sa.Integer, nullable=False),
        sa.Column("n_observations", sa.Integer, nullable=False),
        sa.Column("log_likelihood", sa.Float, nullable=False),
        sa.Column("fitted_at", _ts(), nullable=False),
    ).create(conn)


@migration
def m005_users(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table("learners", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "users",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column(
            "learner_id", sa.Integer, sa.ForeignKey("learners.id"), nullable=True, index=True
        ),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("last_login_at", _ts(), nullable=True),
    ).create(conn)


@migration
def m006_session_state(conn: sa.Connection) -> None:
    # The agent's per-session tutoring state (open item, attempts, hint level, ...).
    conn.execute(sa.text("ALTER TABLE sessions ADD COLUMN state TEXT NOT NULL DEFAULT '{}'"))


@migration
def m007_auth_sessions(conn: sa.Connection) -> None:
    # Web sign-in sessions (ui.auth): token hashes with an expiry, removed with their user.
    md = sa.MetaData()
    sa.Table("users", md, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "auth_sessions",
        md,
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("address", sa.String(100), nullable=False, server_default=""),
    ).create(conn)


@migration
def m008_kt_predictors(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "kt_predictors",
        md,
        sa.Column("collection", sa.String(100), primary_key=True),
        sa.Column("chosen", sa.String(40), nullable=False),
        sa.Column("model", sa.Text, nullable=True),
        sa.Column("heldout", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("n_answers", sa.Integer, nullable=False, server_default="0"),
        sa.Column("fitted_at", _ts(), nullable=False),
    ).create(conn)


def applied_migrations(conn: sa.Connection) -> list[str]:
    if not sa.inspect(conn).has_table("schema_migrations"):
        return []
    rows = conn.execute(sa.text("SELECT name FROM schema_migrations ORDER BY applied_at, name"))
    return [r[0] for r in rows]


def _ensure_table(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "schema_migrations",
        md,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("applied_at", _ts(), nullable=False),
    )
    md.create_all(conn, checkfirst=True)


def migrate(engine: sa.Engine, *, upto: str | None = None) -> list[str]:
    """Apply the pending migrations in order (up to and including ``upto``); returns their names.

    Safe to run from several processes at once: each migration runs in a write transaction
    (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL) that re-checks what is
    already applied.
    """
    names = [n for n, _ in MIGRATIONS]
    if upto is not None and upto not in names:
        raise ValueError(f"unknown migration {upto!r}; known: {', '.join(names)}")
    done: list[str] = []
    for name, fn in MIGRATIONS:
        with engine.connect() as conn:
            conn = conn.execution_options(tutor_write=True)
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7419032)"))
                _ensure_table(conn)
                if name not in applied_migrations(conn):
                    log.info("applying migration %s", name)
                    fn(conn)
                    conn.execute(
                        sa.text("INSERT INTO schema_migrations (name, applied_at) VALUES (:n, :t)"),
                        {"n": name, "t": datetime.now(UTC).isoformat(timespec="microseconds")},
                    )
                    done.append(name)
        if name == upto:
            break
    return done
