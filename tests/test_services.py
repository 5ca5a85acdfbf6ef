"""The business rules the web UI and the CLI share (``tutor.services``), on a real SQLite store:
account creation checks everything before it writes, item banks are checked against the
course's skills, the open problem of a session, the list of modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tutor import services
from tutor.errors import InputError
from tutor.items import ItemBankError
from tutor.store import LearnerStore, SessionState

FAST_KDF = 2**8  # scrypt cost for tests only
PASSWORD = "correct-horse-1"


@pytest.fixture
def store(tmp_path: Path) -> LearnerStore:
    return LearnerStore(f"sqlite:///{tmp_path / 'learners.sqlite'}", kdf_n=FAST_KDF)


def learner_names(store: LearnerStore) -> list[str]:
    return [s.learner.name for s in store.list_learners()]


def test_create_account_links_a_student_and_not_a_teacher(store: LearnerStore) -> None:
    user, learner = services.create_account(store, "ana", PASSWORD, display_name="Ana")
    assert user.role == "student" and learner is not None and user.learner_id == learner.id
    assert (learner.name, learner.display_name) == ("ana", "Ana")
    user, learner = services.create_account(store, "bo", PASSWORD, learner="ana")
    assert learner is not None and learner.name == "ana"  # an existing learner is linked
    teacher, none = services.create_account(store, "mrs-k", PASSWORD, role="teacher")
    assert teacher.role == "teacher" and teacher.learner_id is None and none is None
    assert store.authenticate("mrs-k", PASSWORD) is not None
    with pytest.raises(InputError, match="not linked to a learner"):
        services.create_account(store, "mr-j", PASSWORD, role="teacher", learner="ana")


@pytest.mark.parametrize(
    "username, password, role, fragment",
    [
        ("<script>", PASSWORD, "student", "not valid"),
        ("cleo", "short", "student", "at least 8 characters"),
        ("cleo", PASSWORD, "admin", "not known"),
        ("ana", PASSWORD, "student", "already exists"),
    ],
)
def test_a_refused_account_writes_nothing(
    store: LearnerStore, username: str, password: str, role: str, fragment: str
) -> None:
    services.create_account(store, "ana", PASSWORD)
    with pytest.raises(InputError, match=fragment):
        services.create_account(
            store, username, password, role=role, learner="new-learner", display_name="X"
        )
    assert learner_names(store) == ["ana"]  # no learner left behind by a refused account
    assert [u.username for u in store.list_users()] == ["ana"]


def test_generated_passwords_pass_the_policy_and_differ(store: LearnerStore) -> None:
    a, b = services.generate_password(), services.generate_password()
    assert a != b and len(a) == services.GENERATED_PASSWORD_CHARS
    assert set(a) <= set(services.PASSWORD_ALPHABET) and not set("0O1lI") & set(a)
    services.create_account(store, "dan", a)
    assert store.authenticate("dan", a) is not None


BANK = (
    "skills:\n  - {id: geo, name: Geometry}\nitems:\n  - id: g1\n    skill: geo\n"
    '    prompt: "Angles in a triangle add up to?"\n    answer: "180"\n    difficulty: 2\n'
)
USES_GEO = 'items:\n  - id: g2\n    skill: geo\n    prompt: "A right angle?"\n    answer: "90"\n'


def test_item_banks_are_checked_against_the_courses_skills(
    store: LearnerStore, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BANK.replace("difficulty: 2", "difficulty: 9"))
    with pytest.raises(ItemBankError, match="difficulty"):
        services.add_item_bank(store, [bad], collection="c1")
    assert "c1" not in store.collections()  # all or nothing
    good = tmp_path / "good.yaml"
    good.write_text(BANK)
    report = services.add_item_bank(store, [good], collection="c1", source_file="good.yaml")
    assert report.n_items == 1 and "geo" in store.skills("c1")
    # a later file may use the skills stored for its course, not those of another course
    later = tmp_path / "later.yaml"
    later.write_text(USES_GEO)
    assert [it.id for it in services.check_item_bank([later], store=store, collection="c1").items]
    with pytest.raises(ItemBankError, match="geo"):
        services.check_item_bank([later], store=store, collection="c2")
    with pytest.raises(ItemBankError, match="geo"):
        services.check_item_bank([later])  # no store: the shipped skills only
    assert set(services.known_skills(store, "c2")) == set(services.shipped_skills())


def test_open_problem(store: LearnerStore, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(BANK)
    services.add_item_bank(store, [good], collection="c1")
    opened = services.open_problem(store, "c1", SessionState(item_id="g1"))
    assert opened is not None and opened.from_bank and opened.item.id == "g1"
    assert services.open_problem(store, "c1", SessionState(item_id="gone")) is None
    assert services.open_problem(store, "c1", SessionState()) is None
    own = services.open_problem(store, "c1", SessionState(problem="solve 2x + 3 = 11", answer="4"))
    assert own is not None and not own.from_bank
    # a problem of the learner's whose answer the tutor did not work out is not open
    assert services.open_problem(store, "c1", SessionState(problem="prove it")) is None


def test_modes() -> None:
    assert services.MODES == ("auto", "explain", "guide", "practice")
    assert services.check_mode("guide") == "guide"
    with pytest.raises(InputError, match="not known; use auto, explain, guide or practice"):
        services.check_mode("<b>evil</b>")
