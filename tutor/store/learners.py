"""The learner store: learners, profiles, sessions, messages, attempts, mastery, session state,
item banks per collection, fitted BKT parameters and user accounts, on SQLAlchemy 2 (Core).

SQLite by default (a file in the data dir, WAL mode, busy timeout, ``BEGIN IMMEDIATE`` for
writes, so threads and processes write concurrently); any SQLAlchemy URL (PostgreSQL) by
config. Every write is its own committed transaction before the method returns (acknowledged =
durable). Every query about a session or a learner is keyed by its id, and a session can be
bound to its learner (``get_session(id, learner_id=...)``), so concurrent learners never see each
other's history.

``LearnerStore`` is composed of one part per kind of data, each in its own module:

- ``profiles``: learners and their profiles
- ``sessions``: sessions, messages and the agent's session state
- ``practice``: attempts, mastery, predictions and BKT parameters (rules in ``rules``, pure)
- ``predictors``: the course's learner-performance predictor (Best-LR or BKT), fitted by fit-kt
- ``banks``: item banks per collection
- ``accounts``: user accounts and web sign-in sessions
- ``privacy``: export and deletion of one learner's data

``records`` holds the returned dataclasses and ``base`` the engine and transactions; every name
that used to live here is still importable from here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tutor import kt
from tutor.accounts import SCRYPT_N
from tutor.items import Bank
from tutor.store.accounts import AccountsMixin
from tutor.store.base import make_engine
from tutor.store.migrations import migrate
from tutor.store.practice import PracticeMixin
from tutor.store.privacy import PrivacyMixin
from tutor.store.profiles import LearnersMixin
from tutor.store.records import (
    DEFAULT_COLLECTION,
    EXPORT_FORMAT,
    EXPORT_VERSION,
    MAX_MESSAGE_CHARS,
    MAX_PROFILE_VALUE_CHARS,
    MESSAGE_ROLES,
    PROFILE_FIELDS,
    TEACHER_ONLY_FIELDS,
    AddItemsReport,
    Attempt,
    AttemptOutcome,
    Editor,
    Learner,
    LearnerStats,
    Message,
    Prediction,
    Profile,
    Session,
    SessionState,
    SkillMastery,
    User,
    now_iso,
)
from tutor.store.sessions import SessionsMixin

__all__ = [
    "DEFAULT_COLLECTION",
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "MAX_MESSAGE_CHARS",
    "MAX_PROFILE_VALUE_CHARS",
    "MESSAGE_ROLES",
    "PROFILE_FIELDS",
    "TEACHER_ONLY_FIELDS",
    "AddItemsReport",
    "Attempt",
    "AttemptOutcome",
    "Editor",
    "Learner",
    "LearnerStats",
    "LearnerStore",
    "Message",
    "Prediction",
    "Profile",
    "Session",
    "SessionState",
    "SkillMastery",
    "User",
    "make_engine",
    "now_iso",
]


class LearnerStore(LearnersMixin, SessionsMixin, PracticeMixin, AccountsMixin, PrivacyMixin):
    """All learner data behind one typed API. Thread-safe: share one instance per process."""

    def __init__(
        self,
        url: str,
        *,
        bkt_defaults: kt.BKTParams | None = None,
        mastery_threshold: float = 0.95,
        target_p_correct: float = 0.7,
        fallback_bank: Bank | Callable[[], Bank] | None = None,
        kdf_n: int = SCRYPT_N,
        auto_migrate: bool = True,
        echo: bool = False,
    ) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.bkt_defaults = bkt_defaults or kt.BKTParams()
        self.mastery_threshold = mastery_threshold
        self.target_p_correct = target_p_correct
        self.kdf_n = kdf_n
        self._fallback = fallback_bank
        self._fallback_bank = None
        self._bank_cache = {}
        self._lock = threading.Lock()
        if auto_migrate:
            migrate(self.engine)
        self._remember_file()

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
            target_p_correct=t.target_p_correct,
            fallback_bank=fallback,
            **kwargs,
        )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> LearnerStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
