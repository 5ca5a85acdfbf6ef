"""The learner store's current schema (SQLAlchemy Core), shared by queries and tests.

The database is built by the migrations in ``tutor.store.migrations``; a test checks that a
migrated database has exactly these tables and columns. JSON goes in ``JSONText`` (TEXT with
json.dumps/loads) so SQLite and PostgreSQL store it the same way.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


class JSONText(TypeDecorator[Any]):
    """JSON stored as TEXT (portable across SQLite and PostgreSQL)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else json.loads(value)


metadata = sa.MetaData()
TS = sa.String(40)  # ISO-8601 UTC timestamps sort as text

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("applied_at", TS, nullable=False),
)

learners = sa.Table(
    "learners",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", TS, nullable=False),
)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("learner_id", sa.Integer, sa.ForeignKey("learners.id"), primary_key=True),
    sa.Column("data", JSONText, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(20), nullable=False, server_default=""),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("learner_id", sa.Integer, sa.ForeignKey("learners.id"), nullable=False, index=True),
    sa.Column("collection", sa.String(100), nullable=False, server_default="default"),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("last_active_at", TS, nullable=False),
    sa.Column("ended_at", TS, nullable=True),
    sa.Column("state", JSONText, nullable=False, server_default="{}"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "session_id", sa.String(36), sa.ForeignKey("sessions.id"), nullable=False, index=True
    ),
    sa.Column("learner_id", sa.Integer, sa.ForeignKey("learners.id"), nullable=False, index=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("meta", JSONText, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("learner_id", sa.Integer, sa.ForeignKey("learners.id"), nullable=False, index=True),
    sa.Column("session_id", sa.String(36), sa.ForeignKey("sessions.id"), nullable=True, index=True),
    sa.Column("collection", sa.String(100), nullable=False, server_default="default"),
    sa.Column("item_id", sa.String(100), nullable=False),
    sa.Column("skills", JSONText, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("correct", sa.Boolean, nullable=False),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("normalized", sa.Text, nullable=False, server_default=""),
    sa.Column("hint_level", sa.Integer, nullable=False, server_default="0"),
    # whether this attempt moved mastery (the first graded try at an item in a session)
    sa.Column("counted", sa.Boolean, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

mastery = sa.Table(
    "mastery",
    metadata,
    sa.Column("learner_id", sa.Integer, sa.ForeignKey("learners.id"), primary_key=True),
    sa.Column("skill", sa.String(100), primary_key=True),
    sa.Column("p_mastery", sa.Float, nullable=False),
    sa.Column("n_attempts", sa.Integer, nullable=False),
    sa.Column("n_correct", sa.Integer, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

skills = sa.Table(
    "skills",
    metadata,
    sa.Column("collection", sa.String(100), primary_key=True),
    sa.Column("skill_id", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prerequisites", JSONText, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("collection", sa.String(100), primary_key=True),
    sa.Column("item_id", sa.String(100), primary_key=True),
    sa.Column("skills", JSONText, nullable=False),
    sa.Column("difficulty", sa.Integer, nullable=False),
    sa.Column("data", JSONText, nullable=False),
    sa.Column("source_file", sa.Text, nullable=False, server_default=""),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    sa.Column("added_at", TS, nullable=False),
)

kt_params = sa.Table(
    "kt_params",
    metadata,
    sa.Column("skill", sa.String(100), primary_key=True),
    sa.Column("prior", sa.Float, nullable=False),
    sa.Column("learn", sa.Float, nullable=False),
    sa.Column("guess", sa.Float, nullable=False),
    sa.Column("slip", sa.Float, nullable=False),
    sa.Column("forget", sa.Float, nullable=False),
    sa.Column("n_sequences", sa.Integer, nullable=False),
    sa.Column("n_observations", sa.Integer, nullable=False),
    sa.Column("log_likelihood", sa.Float, nullable=False),
    sa.Column("fitted_at", TS, nullable=False),
)

# the learner-performance predictor chosen for a course (``tutor learners fit-kt``)
kt_predictors = sa.Table(
    "kt_predictors",
    metadata,
    sa.Column("collection", sa.String(100), primary_key=True),
    sa.Column("chosen", sa.String(40), nullable=False),  # "Best-LR" | "BKT"
    sa.Column("model", JSONText, nullable=True),  # tutor.kt_lr.LRModel.to_dict()
    sa.Column("heldout", JSONText, nullable=False),  # model -> held-out AUC
    sa.Column("source", sa.Text, nullable=False, server_default=""),
    sa.Column("n_answers", sa.Integer, nullable=False, server_default="0"),
    sa.Column("fitted_at", TS, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(10), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("learner_id", sa.Integer, sa.ForeignKey("learners.id"), nullable=True, index=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("last_login_at", TS, nullable=True),
)

# Signed-in web sessions (``tutor serve``): the SHA-256 of the cookie token, never the token.
# Deleting a user (or the learner behind it) deletes its sessions (ON DELETE CASCADE).
auth_sessions = sa.Table(
    "auth_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("address", sa.String(100), nullable=False, server_default=""),
)

# Every table that holds one learner's data, children first (the order deletion uses).
# Export and delete go through this list; a test checks it names every table with a
# ``learner_id`` column, so a new table cannot be forgotten.
LEARNER_TABLES: tuple[str, ...] = (
    "messages",
    "attempts",
    "mastery",
    "sessions",
    "profiles",
    "users",
    "learners",
)
# Tables that hold a learner's data through another learner table: name -> (column, parent).
# A web sign-in session records when and from which address the learner's account signed in;
# export and delete include these too (before their parent, which deletion needs).
LEARNER_LINKED_TABLES: dict[str, tuple[str, str]] = {"auth_sessions": ("user_id", "users")}
# Columns never exported.
SECRET_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("password_hash",),
    "auth_sessions": ("token_hash",),
}
