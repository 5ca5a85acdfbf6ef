"""The learner store's file while the tutor runs (issue 16): a deleted or replaced
``learners.sqlite`` is noticed and every later read and write refuses with one clear
``StoreError`` (before, turns, sign-ins and profile saves reported success into a deleted file
and were gone at the next start); a new store file is private to its owner (0600, in a 0700
directory when that is new)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from knowledge_base.errors import StoreError
from tutor.store import LearnerStore

FAST_KDF = 2**8
GONE = "was deleted while the tutor was running"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "home" / "learners.sqlite"


def _open(db: Path) -> LearnerStore:
    return LearnerStore(f"sqlite:///{db}", kdf_n=FAST_KDF)


@pytest.mark.skipif(os.name != "posix", reason="inodes and unlink of an open file")
def test_a_deleted_store_refuses_turns_sign_ins_and_profile_saves(db: Path) -> None:
    store = _open(db)
    learner = store.add_learner("ana")
    store.add_user("ana", "password1", role="student", learner_id=learner.id)
    session = store.start_session(learner.id)
    store.add_message(session.id, "user", "hello", learner_id=learner.id)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)

    attempts = {
        "turn": lambda: store.add_message(session.id, "user", "again", learner_id=learner.id),
        "sign-in": lambda: store.authenticate("ana", "password1"),
        "new session": lambda: store.create_auth_session(1, hours=1),
        "profile": lambda: store.update_profile(learner.id, {"goals": "fractions"}),
        "read": lambda: store.messages(session.id, learner_id=learner.id),
    }
    for what, attempt in attempts.items():
        with pytest.raises(StoreError, match=GONE) as e:
            attempt()
        assert "learners.sqlite in the data dir" in str(e.value), what
        assert "restart the tutor" in str(e.value) and str(db.parent) not in str(e.value)
        assert "docs/operations.md" in str(e.value)
    store.close()
    # nothing was written anywhere: not into the deleted file, not into a new empty one
    assert not db.exists()


@pytest.mark.skipif(os.name != "posix", reason="inodes")
def test_a_replaced_store_is_refused_until_the_restart(db: Path, tmp_path: Path) -> None:
    store = _open(db)
    store.add_learner("ana")
    backup = tmp_path / "backup.sqlite"
    store.close()
    shutil.copy(db, backup)
    store = _open(db)
    os.replace(backup, db)  # an operator restores a backup under the running server
    with pytest.raises(StoreError, match="was replaced by another file"):
        store.add_learner("ben")
    store.close()
    restarted = _open(db)
    assert [s.learner.name for s in restarted.list_learners()] == ["ana"]
    restarted.add_learner("ben")
    restarted.close()


def test_memory_stores_are_not_checked() -> None:
    store = LearnerStore("sqlite://", kdf_n=FAST_KDF)
    store.add_learner("ana")
    assert [s.learner.name for s in store.list_learners()] == ["ana"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_new_store_is_readable_by_its_owner_only(db: Path) -> None:
    old = os.umask(0o022)
    try:
        store = _open(db)
        store.add_learner("ana")  # the WAL files exist now
    finally:
        os.umask(old)
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    store.close()


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_an_existing_store_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite"
    _open(db).close()
    db.chmod(0o640)
    tmp_path.chmod(0o750)
    _open(db).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o640
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o750


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_serve_creates_the_data_dir_and_uploads_owner_only(tmp_path: Path) -> None:
    from tutor.cli.serve import make_private_dirs
    from tutor.config import load_config

    config = load_config(env={"TUTOR_HOME": str(tmp_path / "new-home")})
    old = os.umask(0o022)
    try:
        make_private_dirs(config)
    finally:
        os.umask(old)
    for d in (config.paths.home_dir, config.paths.uploads_dir):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


# ------------------------------------------------------------------------------- a full disk


def test_users_add_on_a_full_disk_says_so_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16, V10: ``tutor users add`` on a full disk printed a traceback. Now one line
    (exit 2), and the account is either made whole (user and learner) or not at all."""
    import io
    import sys

    from tests.test_disk_full import fill
    from tests.test_faults import small_disk
    from tutor.cli import main

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with small_disk(tmp_path / "disk", "2m") as disk:
        home = disk / "home"
        monkeypatch.setenv("TUTOR_HOME", str(home))
        monkeypatch.setattr(sys, "stdin", io.StringIO("teacherpass\n"))
        assert main(["users", "add", "mrs-k", "--teacher", "--password-stdin"]) == 0
        capsys.readouterr()
        refused = 0
        for i, leave in enumerate((0, 0, 1024, 4096, 16 * 1024, 64 * 1024)):
            fill(disk, leave)
            monkeypatch.setattr(sys, "stdin", io.StringIO("studentpass\n"))
            code = main(["users", "add", f"s{i}", "--password-stdin"])
            err = capsys.readouterr().err
            assert "Traceback" not in err and code in (0, 2), err
            if code == 2:
                refused += 1
                assert err.startswith("error: no room left on the disk of the learner store"), err
        (disk / "filler").unlink()
        assert refused, "the disk never ran out: the test proves nothing"
        store = LearnerStore(f"sqlite:///{home / 'learners.sqlite'}", kdf_n=FAST_KDF)
        users = {u.username for u in store.list_users()}
        learners = {s.learner.name for s in store.list_learners()}
        assert learners == users - {"mrs-k"}  # no learner without its account, nor the reverse
        store.close()


def test_sign_in_on_a_full_disk_or_a_deleted_store_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16, V10 and V8 at the door: ``POST /login`` answered a bare 500 on a full disk.
    Now 503 with the reason; the attempt does not count as a failed password."""
    import httpx

    from tests.test_disk_full import fill
    from tests.test_faults import small_disk
    from tutor.testing.fake_lm import ScriptedGenerator
    from ui.app import create_app
    from ui.testing import PASSWORD, ServerThread, sample_context

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with small_disk(tmp_path / "disk", "16m") as disk:
        ctx = sample_context(disk, ScriptedGenerator("hi"))
        right = {"username": "ana", "password": PASSWORD}
        with ServerThread(create_app(ctx)) as srv:
            fill(disk, 0)
            for _ in range(12):  # more than the failure limit: none of these counts as one
                r = httpx.post(srv.url + "login", data=right, headers={"accept": "text/html"})
                assert r.status_code == 503, r.text[:300]
                assert "Cannot sign in now: no room left on the disk" in r.text
                assert "Traceback" not in r.text and str(disk) not in r.text
            (disk / "filler").unlink()
            assert httpx.post(srv.url + "login", data=right).status_code == 200
            db = ctx.config.paths.home_dir / "learners.sqlite"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            r = httpx.post(srv.url + "login", data=right)
            assert r.status_code == 503 and "was deleted while the tutor was running" in r.text
        ctx.store.close()  # type: ignore[attr-defined]
        if ctx.kb is not None:
            ctx.kb.close()


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_the_first_command_creates_the_data_dir_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``make run`` starts with ``tutor kb add``, which made the data dir 0755 before any store
    or upload folder existed; every command now creates a missing data dir 0700."""
    from tests.test_kb_store import write_course
    from tutor.cli import main

    home = tmp_path / "fresh-home"
    monkeypatch.setenv("TUTOR_HOME", str(home))
    import tutor.builders
    from knowledge_base.testing import HashEmbedder

    monkeypatch.setattr(tutor.builders, "build_embedder", lambda config: HashEmbedder())
    old = os.umask(0o022)
    try:
        assert main(["kb", "add", str(write_course(tmp_path / "course"))]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
