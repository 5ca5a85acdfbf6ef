"""The learner store's records (frozen dataclasses returned by ``LearnerStore``), its limits and
validators, and the functions that turn database rows into records."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

from tutor.accounts import Role
from tutor.errors import InputError

EXPORT_FORMAT = "offline-tutor.learner-export"
EXPORT_VERSION = 1
DEFAULT_COLLECTION = "default"
MESSAGE_ROLES = ("user", "assistant", "system", "tool")
_NAME_RE = re.compile(r"^[\w][\w .@'\-]{0,99}$", re.UNICODE)
_COLLECTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
MAX_MESSAGE_CHARS = 100_000
MAX_PROFILE_VALUE_CHARS = 2000


def now_iso() -> str:
    """The current UTC time as the ISO-8601 text every timestamp column holds."""
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
# Validation and rows -> records


def check_name(name: str) -> str:
    """A valid learner name, stripped; InputError naming the bad value otherwise."""
    if not isinstance(name, str) or not _NAME_RE.match(name.strip()):
        raise InputError(
            f"learner name {name!r} is not valid: 1-100 letters, digits, spaces, '.', '@', \"'\" or '-'"
        )
    return name.strip()


def check_text(text: str, what: str) -> str:
    """``text`` when it can be stored (UTF-8); an InputError for a lone surrogate (``\\ud800``,
    which a browser's JSON can carry but no database can store), naming where it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(
            f"{what} has a character that is not text (U+{ord(text[e.start]):04X} at position "
            f"{e.start + 1}); remove it or type it again"
        ) from None
    return text


def check_collection(collection: str) -> str:
    """A valid collection name; InputError naming the bad value otherwise."""
    if not isinstance(collection, str) or not _COLLECTION_RE.match(collection):
        raise InputError(
            f"collection name {collection!r} is not valid: letters, digits, '_', '.' or '-'"
        )
    return collection


def learner_from_row(r: Any) -> Learner:
    return Learner(int(r.id), r.name, r.display_name or "", r.created_at)


def profile_from_row(learner_id: int, row: Any) -> Profile:
    data = dict(row.data) if row is not None else {}
    return Profile(
        learner_id,
        **{k: str(data.get(k, "")) for k in PROFILE_FIELDS},
        updated_at=row.updated_at if row is not None else "",
        updated_by=row.updated_by if row is not None else "",
    )


def session_from_row(r: Any) -> Session:
    return Session(
        r.id, int(r.learner_id), r.collection, r.started_at, r.last_active_at, r.ended_at
    )


def message_from_row(r: Any) -> Message:
    return Message(
        int(r.id),
        r.session_id,
        int(r.learner_id),
        r.role,
        r.content,
        dict(r.meta or {}),
        r.created_at,
    )


def attempt_from_row(r: Any) -> Attempt:
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


def user_from_row(r: Any) -> User:
    return User(int(r.id), r.username, r.role, r.learner_id, r.created_at, r.last_login_at)
