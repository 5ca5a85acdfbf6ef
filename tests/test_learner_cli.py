"""``tutor learners|items|users``: the commands, end to end, in a fresh data dir."""

from __future__ import annotations

import io
import json
import stat
import sys
from pathlib import Path

import pytest

from tutor.cli import main
from tutor.items import DEFAULT_ITEMS_DIR, DEFAULT_SKILLS_FILE


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_items_check_add_and_list(tutor_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "items", "check", str(DEFAULT_SKILLS_FILE), str(DEFAULT_ITEMS_DIR))
    assert rc == 0 and out.startswith("ok: 7") and "over 8 skills" in out
    rc, out, err = run(capsys, "items", "list")
    assert rc == 0 and "no items loaded" in err and "frac-01" in out
    rc, _, err = run(
        capsys,
        "items",
        "add",
        str(DEFAULT_SKILLS_FILE),
        str(DEFAULT_ITEMS_DIR),
        "--collection",
        "sample",
    )
    assert rc == 0 and "into collection 'sample'" in err
    rc, out, err = run(capsys, "items", "list", "--collection", "sample", "--skill", "water-cycle")
    assert rc == 0 and "no items loaded" not in err
    assert {line.split()[0] for line in out.splitlines()[1:]} == {f"wc-0{i}" for i in range(1, 8)}
    assert (tutor_home / "learners.sqlite").is_file()


def test_items_check_reports_file_line_and_field(
    tmp_path: Path, tutor_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "items:\n  - id: b1\n    skill: fractions\n    prompt: Hi\n    answer: '1/2'\n    difficulty: 7\n",
        encoding="utf-8",
    )
    rc, out, err = run(capsys, "items", "check", str(bad))
    assert rc == 2 and out == ""
    assert err.startswith(f"error: {bad}:6: item 'b1' field 'difficulty':")
    assert "Traceback" not in err
    rc, _, err = run(capsys, "items", "add", str(bad))
    assert rc == 2 and f"{bad}:6" in err


def test_learners_lifecycle(
    tmp_path: Path, tutor_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tutor.builders import build_learner_store
    from tutor.config import load_config
    from tutor.grading import grade

    assert run(capsys, "learners", "add", "ana", "--display-name", "Ana")[0] == 0
    assert run(capsys, "learners", "add", "ana")[0] == 2
    # some activity, as the agent would record it
    store = build_learner_store(load_config(env={"TUTOR_HOME": str(tutor_home)}))
    ana = store.find_learner("ana")
    s = store.start_session(ana.id)
    store.add_message(s.id, "user", "what is a fraction?")
    item = store.get_item("default", "frac-01")
    store.record_attempt(ana.id, item, "3/5", grade(item, "3/5"), session_id=s.id)
    store.close()

    rc, out, _ = run(capsys, "learners", "list")
    assert rc == 0 and out.splitlines()[1].split()[:4] == ["ana", "1", "1", "1"]
    rc, out, _ = run(capsys, "learners", "show", "ana")
    assert rc == 0 and "learner: ana (Ana)" in out and "fractions" in out and "next item:" in out
    fractions = next(line for line in out.splitlines() if line.startswith("fractions"))
    assert fractions.split()[1:] == ["0.60", "0.62", "1", "1"]

    rc, out, _ = run(capsys, "learners", "export", "ana")
    data = json.loads(out)
    assert data["learner"]["name"] == "ana" and data["tables"]["messages"]
    target = tmp_path / "exports" / "ana.json"
    rc, out, err = run(capsys, "learners", "export", "ana", "-o", str(target))
    assert rc == 0 and out == "" and str(target) in err
    assert json.loads(target.read_text(encoding="utf-8"))["tables"]["attempts"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    rc, _, err = run(capsys, "learners", "delete", "ana")  # stdin is not a terminal
    assert rc == 2 and "--yes" in err
    rc, _, err = run(capsys, "learners", "delete", "ana", "--yes")
    assert rc == 0 and "deleted learner ana" in err
    rc, _, err = run(capsys, "learners", "show", "ana")
    assert rc == 2 and "no learner named 'ana'" in err


def test_fit_kt_command(tutor_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "learners", "fit-kt")
    assert rc == 0 and "defaults stay in use" in err
    from tutor.builders import build_learner_store
    from tutor.config import load_config
    from tutor.grading import grade

    store = build_learner_store(load_config(env={"TUTOR_HOME": str(tutor_home)}))
    item = store.get_item("default", "dec-01")
    for i in range(12):
        lr = store.add_learner(f"l{i}")
        for k in range(3):
            ans = "0.75" if (i + k) % 3 else "0.7"
            store.record_attempt(lr.id, item, ans, grade(item, ans))
    store.close()
    rc, out, _ = run(capsys, "learners", "fit-kt", "--min-attempts", "20")
    assert rc == 0 and out.splitlines()[1].split()[0] == "decimals"
    assert out.splitlines()[1].split()[-2:] == ["12", "36"]


def test_users(
    tutor_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rc, _, err = run(capsys, "users", "list")
    assert rc == 0 and "users add NAME --teacher" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO("teacherpass\n"))
    rc, _, err = run(capsys, "users", "add", "mrs-k", "--teacher", "--password-stdin")
    assert rc == 0 and "added teacher mrs-k" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO("studentpass\n"))
    rc, _, err = run(
        capsys, "users", "add", "ana", "--student", "--learner", "Ana B", "--password-stdin"
    )
    assert rc == 0 and "linked to learner Ana B" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    rc, _, err = run(capsys, "users", "add", "ben", "--password-stdin")
    assert rc == 2 and "at least 8" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    rc, _, err = run(capsys, "users", "add", "ben")
    assert rc == 2 and "--password-stdin" in err
    rc, out, _ = run(capsys, "users", "list")
    rows = [line.split()[:3] for line in out.splitlines()[1:]]
    assert rows == [["ana", "student", "Ana"], ["mrs-k", "teacher", "-"]]

    from tutor.builders import build_learner_store
    from tutor.config import load_config

    store = build_learner_store(load_config(env={"TUTOR_HOME": str(tutor_home)}))
    assert store.authenticate("mrs-k", "teacherpass") is not None
    assert store.authenticate("ana", "studentpass").learner_id == store.find_learner("Ana B").id  # type: ignore[union-attr]
    store.close()


def test_database_url_from_config(
    tmp_path: Path, tutor_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "elsewhere" / "x.sqlite"
    rc, _, _ = run(capsys, "learners", "add", "zoe", "--set", f"tutor.database_url=sqlite:///{db}")
    assert rc == 0 and db.is_file() and not (tutor_home / "learners.sqlite").exists()


def test_users_remove_reset_password_and_sign_out(
    tutor_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16: the store could remove a user, reset a password and sign a user out, but no
    command did; each now works from the terminal and ends the user's signed-in sessions."""
    from tutor.builders import build_learner_store
    from tutor.config import load_config

    for name, role in (("mrs-k", "--teacher"), ("ana", "--student")):
        monkeypatch.setattr(sys, "stdin", io.StringIO("firstpass\n"))
        assert run(capsys, "users", "add", name, role, "--password-stdin")[0] == 0
    store = build_learner_store(load_config(env={"TUTOR_HOME": str(tutor_home)}))
    ana = store.get_user("ana")
    tokens = [store.create_auth_session(ana.id, hours=1) for _ in range(2)]

    rc, _, err = run(capsys, "users", "sign-out", "ana")
    assert rc == 0 and "ana: 2 sessions signed out" in err
    assert all(store.auth_session_user(t) is None for t in tokens)

    token = store.create_auth_session(ana.id, hours=1)
    monkeypatch.setattr(sys, "stdin", io.StringIO("secondpass\n"))
    rc, _, err = run(capsys, "users", "reset-password", "ana", "--password-stdin")
    assert rc == 0 and "new password set for ana" in err
    assert store.auth_session_user(token) is None
    assert store.authenticate("ana", "firstpass") is None
    assert store.authenticate("ana", "secondpass") is not None
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    rc, _, err = run(capsys, "users", "reset-password", "ana", "--password-stdin")
    assert rc == 2 and "at least 8" in err and "Traceback" not in err
    assert store.authenticate("ana", "secondpass") is not None
    rc, _, err = run(capsys, "users", "reset-password", "nobody", "--password-stdin")
    assert rc == 2 and "no user named 'nobody'" in err

    token = store.create_auth_session(ana.id, hours=1)
    rc, _, err = run(capsys, "users", "remove", "ana")
    assert rc == 0 and "removed student ana (1 session signed out)" in err
    assert "learner's data stays" in err
    assert (
        store.auth_session_user(token) is None and store.authenticate("ana", "secondpass") is None
    )
    assert store.find_learner("ana") is not None  # the learner's data is not the account
    rc, out, _ = run(capsys, "users", "list")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["mrs-k"]
    rc, _, err = run(capsys, "users", "remove", "ana")
    assert rc == 2 and "no user named 'ana'" in err
    rc, _, err = run(capsys, "users", "remove", "mrs-k")
    assert rc == 0 and "warning: mrs-k was the last teacher" in err
    store.close()
