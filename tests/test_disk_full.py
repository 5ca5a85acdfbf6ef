"""Full disk during ingest: ``tutor kb add`` on a disk that runs out fails with one clear line
(``DiskFullError``, exit code 2) and leaves the previous knowledge base readable and consistent:
the same documents, FAISS index and SQLite rows in agreement (``Store.check``), search working,
no temp file left behind.

The disk runs out in two ways: a small tmpfs mounted by the test with a filler file leaving a
few bytes to a few hundred KB free (needs root; skipped otherwise), and ``RLIMIT_FSIZE`` in a
subprocess with SIGXFSZ ignored, so writes past the limit fail with EFBIG (any POSIX user).
Unit tests pin each failure point: ENOSPC from the index write, faiss's errno-less write error,
SQLITE_FULL (which rolls the transaction back itself) and a plain disk I/O error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge_base import DiskFullError, KnowledgeBase, StoreError
from knowledge_base.store import Store
from knowledge_base.testing import HashEmbedder
from tests.test_faults import small_disk as mounted_tmpfs
from tests.test_kb_store import write_course
from tutor.cli import main

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file-size limits and mounts")

REPO = Path(__file__).resolve().parents[1]
FULL = "error: no room left to save the knowledge base"


def big_document(path: Path, paragraphs: int = 1500) -> Path:
    text = "# The water cycle in depth\n\n" + "\n\n".join(
        f"Paragraph {i}: water evaporates from the sea, condenses into clouds number {i} and "
        f"falls as rain on hill {i % 97}."
        for i in range(paragraphs)
    )
    path.write_text(text + "\n", encoding="utf-8")
    return path


def snapshot(kb_dir: Path) -> dict[str, object]:
    """What a reader sees: documents, chunk count, index/rows agreement, a search."""
    kb = KnowledgeBase.open(kb_dir, HashEmbedder(), show_progress=False)
    try:
        docs = sorted(d.doc_id for d in kb.list_documents())
        return {
            "docs": docs,
            "chunks": kb.stats().chunks,
            "problems": kb.store.check(),
            "hits": [p.chunk_id for p in kb.search("fractions numerator", k=3)],
        }
    finally:
        kb.close()


def leftovers(kb_dir: Path) -> list[str]:
    return sorted(p.name for p in (kb_dir / "index").iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    import tutor.builders

    monkeypatch.setattr(tutor.builders, "build_embedder", lambda config: HashEmbedder())

    def run(home: Path, *args: str) -> tuple[int, str]:
        monkeypatch.setenv("TUTOR_HOME", str(home))
        code = main(list(args))
        return code, capsys.readouterr().err

    return run


# ------------------------------------------------------------------------------- a real full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for this test (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE test covers other users")
    with mounted_tmpfs(tmp_path / "disk", "4m") as mnt:
        yield mnt


def fill(disk: Path, leave: int) -> Path:
    """A filler file that leaves about ``leave`` bytes free on ``disk``."""
    filler = disk / "filler"
    with contextlib.suppress(FileNotFoundError):
        filler.unlink()
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as f:
        with contextlib.suppress(OSError):  # the last block may not fit exactly
            f.write(b"\0" * max(0, free - leave))
    return filler


def test_kb_add_on_a_full_disk(cli, small_disk: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = small_disk / "home"
    course = write_course(tmp_path / "course")
    big = big_document(tmp_path / "big.md")
    code, err = cli(home, "kb", "add", str(course))
    assert code == 0, err
    kb_dir = home / "kb"
    before = snapshot(kb_dir)
    assert before["problems"] == [] and len(before["docs"]) == 3 and before["hits"]

    failures = 0
    for leave in (0, 8 * 1024, 64 * 1024, 256 * 1024):
        filler = fill(small_disk, leave)
        code, err = cli(home, "kb", "add", str(big))
        filler.unlink()
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if code == 0:  # it fitted: then it is simply there
            pytest.fail(f"the big document fitted in {leave} bytes; make it bigger")
        failures += 1
        assert code == 2, err
        assert lines[-1].startswith(FULL) and "TUTOR_HOME" in lines[-1], err
        assert "Traceback" not in err
        # the previous knowledge base, whole and consistent
        assert snapshot(kb_dir) == before
        assert leftovers(kb_dir) == []
    assert failures == 4

    # with room again the same command works, and the result is consistent
    code, err = cli(home, "kb", "add", str(big))
    assert code == 0, err
    after = snapshot(kb_dir)
    assert after["problems"] == [] and len(after["docs"]) == 4

    # a new knowledge base on a completely full disk: the same clear line, no traceback
    filler = fill(small_disk, 0)
    try:
        code, err = cli(small_disk / "other-home", "kb", "add", str(course))
    finally:
        filler.unlink()
    assert code == 2 and err.strip().splitlines()[-1].startswith(FULL), err


# ------------------------------------------------------------------------------- a file-size limit

CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    sys.path.insert(0, {repo!r})
    import tutor.builders
    from knowledge_base.testing import HashEmbedder
    tutor.builders.build_embedder = lambda config: HashEmbedder()
    from tutor.cli import main

    limit = int(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    sys.exit(main(sys.argv[2:]))
    """
)


@pytest.mark.parametrize("margin", [0, 16 * 1024, 96 * 1024])
def test_kb_add_past_the_file_size_limit(
    cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    margin: int,
) -> None:
    home = tmp_path / "home"
    course = write_course(tmp_path / "course")
    big = big_document(tmp_path / "big.md")
    code, err = cli(home, "kb", "add", str(course))
    assert code == 0, err
    kb_dir = home / "kb"
    before = snapshot(kb_dir)
    largest = max(p.stat().st_size for p in kb_dir.rglob("*") if p.is_file())
    env = {**os.environ, "TUTOR_HOME": str(home)}
    r = subprocess.run(
        [sys.executable, "-c", CHILD.format(repo=str(REPO)), str(largest + margin)]
        + ["kb", "add", str(big)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, r.stderr
    assert lines[-1].startswith(FULL) and "Traceback" not in r.stderr, r.stderr
    assert snapshot(kb_dir) == before
    assert leftovers(kb_dir) == []


# ------------------------------------------------------------------------------- each failure point


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    kb = KnowledgeBase.open(tmp_path / "kb", HashEmbedder(), show_progress=False)
    kb.add(write_course(tmp_path / "course"))
    yield kb
    Store.fault_hook = None
    kb.close()


def _state(kb: KnowledgeBase) -> tuple[list[str], int, list[str]]:
    return (
        sorted(d.doc_id for d in kb.list_documents()),
        kb.stats().chunks,
        kb.store.check(),
    )


def test_enospc_while_writing_the_index(
    kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import knowledge_base.store as store_mod

    before = _state(kb)

    def full(index: object, path: Path) -> None:
        path.with_name(f".{path.name}.1.tmp").write_bytes(b"partial")  # cleaned by the next write
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(store_mod.ix, "write_atomic", full)
    with pytest.raises(DiskFullError, match="no room left") as e:
        kb.add(big_document(tmp_path / "big.md", 50))
    assert "\n" not in str(e.value) and "left as it was" in str(e.value)
    assert _state(kb) == before
    monkeypatch.undo()
    kb.add(big_document(tmp_path / "big.md", 50))  # room again: works, and cleans up
    assert kb.store.check() == [] and leftovers(kb.store.dir) == []


def test_faiss_write_error_is_a_full_disk(
    kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import knowledge_base.store as store_mod

    def full(index: object, path: Path) -> None:
        raise RuntimeError(
            f"Error in faiss::write_index: 'ret == (size * 4)' write error in {path}"
        )

    before = _state(kb)
    monkeypatch.setattr(store_mod.ix, "write_atomic", full)
    with pytest.raises(DiskFullError):
        kb.add(big_document(tmp_path / "big.md", 50))
    assert _state(kb) == before


def test_sqlite_full_that_rolled_back_itself(kb: KnowledgeBase, tmp_path: Path) -> None:
    """SQLITE_FULL rolls the transaction back on its own; the store's ROLLBACK then raised
    "cannot rollback - no transaction is active", hiding the real error (found on the tmpfs)."""
    before = _state(kb)
    conn = kb.store._conn

    def hook(point: str) -> None:
        if point == "rows_written":
            conn.execute("ROLLBACK")  # what SQLite does by itself on SQLITE_FULL
            raise sqlite3.OperationalError("database or disk is full")

    Store.fault_hook = staticmethod(hook)  # type: ignore[assignment]
    with pytest.raises(DiskFullError):
        kb.add(big_document(tmp_path / "big.md", 50))
    Store.fault_hook = None
    assert _state(kb) == before
    assert [p.name for p in (kb.store.dir / "index").iterdir()] == ["default.1.faiss"]


def test_disk_io_error_is_a_store_error_not_a_full_disk(kb: KnowledgeBase, tmp_path: Path) -> None:
    before = _state(kb)

    def hook(point: str) -> None:
        if point == "rows_written":
            raise sqlite3.OperationalError("disk I/O error")

    Store.fault_hook = staticmethod(hook)  # type: ignore[assignment]
    with pytest.raises(StoreError, match="disk I/O error") as e:
        kb.add(big_document(tmp_path / "big.md", 50))
    Store.fault_hook = None
    assert not isinstance(e.value, DiskFullError)  # plenty of room and no file-size limit here
    assert _state(kb) == before
