"""The store's interface as the layers above see it (``typing.Protocol``s): ``TutorStore`` for
what the tutoring agent (``tutor/agent.py``) calls, ``LearnerStoreLike`` for that plus what the
web UI (``ui/``) calls. ``LearnerStore`` satisfies both; a test or another backend may pass any
object that does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from tutor import kt
from tutor.accounts import Role
from tutor.grading import GradeResult
from tutor.items import Bank, Item, Skill
from tutor.store.records import (
    DEFAULT_COLLECTION,
    AddItemsReport,
    Attempt,
    AttemptOutcome,
    Editor,
    Learner,
    LearnerStats,
    Message,
    Profile,
    Session,
    SessionState,
    SkillMastery,
    User,
)


@runtime_checkable
class TutorStore(Protocol):
    """What the tutoring agent needs: learners, sessions, messages, state, items and mastery."""

    def get_learner(self, learner_id: int) -> Learner: ...

    def find_learner(self, name: str) -> Learner: ...

    def get_profile(self, learner_id: int) -> Profile: ...

    def start_session(
        self, learner_id: int, *, collection: str = DEFAULT_COLLECTION
    ) -> Session: ...

    def get_session(self, session_id: str, *, learner_id: int | None = None) -> Session: ...

    def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        *,
        meta: Mapping[str, Any] | None = None,
        learner_id: int | None = None,
    ) -> Message: ...

    def messages(
        self, session_id: str, *, limit: int | None = None, learner_id: int | None = None
    ) -> list[Message]: ...

    def attempts(
        self,
        learner_id: int | None = None,
        *,
        skill: str | None = None,
        item_id: str | None = None,
        session_id: str | None = None,
        counted_only: bool = False,
    ) -> list[Attempt]: ...

    def get_state(self, session_id: str, *, learner_id: int | None = None) -> SessionState: ...

    def set_state(
        self, session_id: str, state: SessionState, *, learner_id: int | None = None
    ) -> SessionState: ...

    def get_item(self, collection: str, item_id: str) -> Item: ...

    def skills(self, collection: str = DEFAULT_COLLECTION) -> dict[str, Skill]: ...

    def next_item(
        self,
        learner_id: int,
        collection: str = DEFAULT_COLLECTION,
        *,
        exclude: Iterable[str] | None = None,
        recent: int = 5,
    ) -> kt.Selection | None: ...

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
    ) -> AttemptOutcome: ...

    def mastery(
        self, learner_id: int, skills: Iterable[str] | None = None
    ) -> dict[str, SkillMastery]: ...


@runtime_checkable
class LearnerStoreLike(TutorStore, Protocol):
    """What the agent and the web UI need: the agent's part plus the teacher's views, item
    banks, accounts, sign-in sessions and privacy."""

    def add_learner(self, name: str, *, display_name: str = "") -> Learner: ...

    def get_or_create_learner(self, name: str, *, display_name: str = "") -> Learner: ...

    def list_learners(self) -> list[LearnerStats]: ...

    def update_profile(
        self, learner_id: int, changes: Mapping[str, str], *, editor: Editor = "learner"
    ) -> Profile: ...

    def list_sessions(self, learner_id: int) -> list[Session]: ...

    def add_items(
        self, bank: Bank, *, collection: str = DEFAULT_COLLECTION, source_file: str = ""
    ) -> AddItemsReport: ...

    def collections(self) -> list[str]: ...

    def bank(self, collection: str = DEFAULT_COLLECTION) -> Bank: ...

    def stored_skills(self, collection: str) -> dict[str, Skill]: ...

    def add_user(
        self,
        username: str,
        password: str,
        *,
        role: Role,
        learner_id: int | None = None,
        learner_name: str | None = None,
        display_name: str = "",
    ) -> User: ...

    def authenticate(self, username: str, password: str) -> User | None: ...

    def get_user(self, username: str) -> User: ...

    def list_users(self) -> list[User]: ...

    def count_users(self, role: Role | None = None) -> int: ...

    def create_auth_session(self, user_id: int, *, hours: float, address: str = "") -> str: ...

    def auth_session_user(self, token: str) -> User | None: ...

    def revoke_auth_session(self, token: str) -> None: ...

    def export_learner(self, learner_id: int) -> dict[str, Any]: ...

    def delete_learner(self, learner_id: int) -> dict[str, int]: ...
