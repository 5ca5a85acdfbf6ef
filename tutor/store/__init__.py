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
from tutor.store.protocol import LearnerStoreLike, TutorStore

__all__ = [
    "MIGRATIONS",
    "AddItemsReport",
    "Attempt",
    "AttemptOutcome",
    "Learner",
    "LearnerStats",
    "LearnerStore",
    "LearnerStoreLike",
    "Message",
    "Prediction",
    "Profile",
    "Session",
    "SessionState",
    "SkillMastery",
    "TutorStore",
    "User",
    "applied_migrations",
    "make_engine",
    "migrate",
]
