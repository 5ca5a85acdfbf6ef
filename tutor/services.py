"""The business rules the web UI and the command line share, in one place.

- ``MODES`` and ``check_mode``: the tutoring modes a turn may ask for.
- ``create_account``: a web account (validated before anything is written; a student account
  is linked to its learner, created if new); ``generate_password`` for one the teacher leaves
  empty.
- ``known_skills``, ``check_item_bank`` and ``add_item_bank``: which skills an item-bank file may
  use, validating the files, and loading them into a course.
- ``open_problem``: the open problem of a session (a bank item, or a problem the learner brought
  that the tutor could solve), or None.
- ``learner_summary``: what the prompt says about the learner (profile, weakest and strongest
  skills).

The UI (``ui.handlers``), the CLI (``tutor.cli``) and the agent call these; none of them keeps
its own copy.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tutor.accounts import check_password_policy, check_role, check_username
from tutor.errors import InputError, NotFoundError

if TYPE_CHECKING:  # the rest is imported where it is used: the CLI imports this module early
    from tutor.items import Bank, Skill
    from tutor.prompts import LearnerSummary
    from tutor.store.protocol import TutorStore
    from tutor.store.records import AddItemsReport, Learner, SessionState, User
    from tutor.turns import OpenProblem

log = logging.getLogger(__name__)

MODES = ("auto", "explain", "guide", "practice")
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/l/I
GENERATED_PASSWORD_CHARS = 12


def check_mode(mode: str) -> str:
    """``mode`` when it is one of ``MODES``; else an InputError naming them."""
    if mode not in MODES:
        raise InputError(f"mode {mode!r} is not known; use auto, explain, guide or practice")
    return mode


# -- accounts ----------------------------------------------------------------------------------


def generate_password() -> str:
    """A random password for a new account, easy to read out (no look-alike characters)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_CHARS))


def create_account(
    store: Any,
    username: str,
    password: str,
    *,
    role: str = "student",
    learner: str | None = None,
    display_name: str = "",
) -> tuple[User, Learner | None]:
    """Create a web account; the user and, for a student, the learner it is linked to.

    Everything is checked before anything is written (user name, role, password policy, the
    name still free), so a refused account leaves no learner behind. A student account is
    linked to the learner named ``learner`` (default: the user name), created with
    ``display_name`` when new; a teacher account has no learner.
    """
    check_username(username)
    check_role(role)
    check_password_policy(password)
    if role != "student" and learner:
        raise InputError("a teacher account is not linked to a learner")
    if any(u.username == username for u in store.list_users()):
        raise InputError(f"a user named {username!r} already exists")
    if role != "student":
        return store.add_user(username, password, role=role), None
    # the learner is created in the account's own transaction: a refused account (a full
    # disk, a name taken meanwhile) leaves no learner behind
    user = store.add_user(
        username,
        password,
        role=role,
        learner_name=learner or username,
        display_name=display_name,
    )
    assert user.learner_id is not None
    return user, store.get_learner(user.learner_id)


# -- item banks --------------------------------------------------------------------------------


def shipped_skills() -> dict[str, Skill]:
    """The skills that ship with the tutor (the sample bank's), or none."""
    from tutor.items import DEFAULT_SKILLS_FILE, load_skills

    return load_skills(DEFAULT_SKILLS_FILE) if DEFAULT_SKILLS_FILE.is_file() else {}


def known_skills(store: Any, collection: str) -> dict[str, Skill]:
    """The skills item files for ``collection`` may use: those stored for it, else the shipped."""
    return store.stored_skills(collection) or shipped_skills()


def check_item_bank(
    files: Sequence[str | Path], *, store: Any = None, collection: str = ""
) -> Bank:
    """Read and validate item-bank files into a ``Bank`` (nothing is stored).

    Items may use the skills of ``known_skills(store, collection)``, or without a store the
    shipped ones. A file with an error raises ``ItemBankError`` naming the file, line and field.
    """
    from tutor.items import load_bank

    skills = known_skills(store, collection) if store is not None else shipped_skills()
    return load_bank(list(files), known_skills=skills)


def add_item_bank(
    store: Any, files: Sequence[str | Path], *, collection: str, source_file: str = ""
) -> AddItemsReport:
    """Validate item-bank files and load them into ``collection`` (all or nothing)."""
    bank = check_item_bank(files, store=store, collection=collection)
    return store.add_items(bank, collection=collection, source_file=source_file)


# -- the open problem --------------------------------------------------------------------------


def open_problem(store: Any, collection: str, state: SessionState) -> OpenProblem | None:
    """The session's open problem: its bank item (None once the item left the bank), or the
    problem the learner brought with the answer the tutor worked out; None when none is open."""
    from tutor.problems import scaffold
    from tutor.turns import OpenProblem, problem_item

    if state.item_id:
        try:
            return OpenProblem(store.get_item(collection, state.item_id), from_bank=True)
        except NotFoundError:  # the item was removed from the bank since
            log.info("open item %s is no longer in collection %s", state.item_id, collection)
            return None
    if state.problem and state.answer:
        expression = state.extra.get("expression", "") if state.extra else ""
        return OpenProblem(
            problem_item(state.problem, state.answer, scaffold(expression)),
            from_bank=False,
            expression=expression,
        )
    return None


def learner_summary(store: TutorStore, lrn: Learner, collection: str) -> LearnerSummary:
    """The learner as the prompt describes them: profile, two weakest and two strongest skills."""
    from tutor.prompts import LearnerSummary

    profile = store.get_profile(lrn.id)
    mastery = store.mastery(lrn.id)
    skills = store.skills(collection)
    practised = [m for m in mastery.values() if m.n_attempts > 0]

    def name(s: str) -> str:
        return skills[s].name if s in skills else s

    weakest = sorted((m for m in practised if not m.mastered), key=lambda m: m.p_mastery)[:2]
    strongest = sorted(practised, key=lambda m: -m.p_mastery)[:2]
    return LearnerSummary(
        name=lrn.display_name or lrn.name,
        grade_level=profile.grade_level,
        language=profile.language,
        goals=profile.goals,
        preferences=profile.preferences,
        weakest=[(name(m.skill), m.p_mastery) for m in weakest],
        strongest=[(name(m.skill), m.p_mastery) for m in strongest if m not in weakest],
    )
