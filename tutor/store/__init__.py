"""The learner store (SQLAlchemy 2): see ``tutor.store.learners.LearnerStore``."""

from tutor.store.learners import (
    AddItemsReport,
    Attempt,
    AttemptOutcome,
    Learner,
    LearnerStats,
    LearnerStore,
    Message,
    Prediction,
    Profile,
    Session,
    SessionState,
    SkillMastery,
    User,
    make_engine,
)
from tutor.store.migrations import MIGRATIONS, applied_migrations, migrate

__all__ = [
    "MIGRATIONS",
    "AddItemsReport",
    "Attempt",
    "AttemptOutcome",
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
    "applied_migrations",
    "make_engine",
    "migrate",
]
