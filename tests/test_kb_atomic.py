"""Atomic writes: an ingest process killed (SIGKILL) in the middle leaves the previous state
intact, with the FAISS index and the SQLite rows in agreement."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from knowledge_base import KnowledgeBase
from knowledge_base.chunk import chunk_document
from knowledge_base.load import load_document
from knowledge_base.testing import HashEmbedder

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")

REPO = Path(__file__).resolve().parents[1]

# Run in a child process: add SRC to the KB, optionally killing itself at a write point, or
# embedding slowly (so the parent can kill it at a random moment).
CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path.insert(0, {repo!r})
    from knowledge_base import KnowledgeBase
    from knowledge_base.store import Store
    from knowledge_base.testing import HashEmbedder

    kb_dir, src, point, slow, checkpoint = sys.argv[1:6]

    class Slow(HashEmbedder):
        def encode(self, texts):
            out = super().encode(texts)
            with open(os.path.join(kb_dir, "..", "progress"), "a") as f:
                f.write("x")
            time.sleep(float(slow))
            return out

    if point != "none":
        def hook(p):
            if p == point:
                os.kill(os.getpid(), signal.SIGKILL)
        Store.fault_hook = staticmethod(hook)
    kb = KnowledgeBase.open(kb_dir, Slow(), show_progress=False, batch_size=2,
                            checkpoint_chunks=int(checkpoint))
    kb.add(src)
    print("finished")
    """
).format(repo=str(REPO))


def _course(d: Path, prefix: str, n: int) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (d / f"{prefix}{i}.md").write_text(
            f"# {prefix} {i}\n\nParagraph about {prefix} number {i} and fractions.\n\n"
            f"## Part two\n\nMore words about {prefix} {i}: ratios, percents and rates.\n",
            encoding="utf-8",
        )
    return d


def _run(kb_dir: Path, src: Path, point: str, slow: float = 0.0, checkpoint: int = 10_000):
    script = kb_dir.parent / "child.py"
    script.write_text(CHILD)
    return subprocess.Popen(
        [sys.executable, str(script), str(kb_dir), str(src), point, str(slow), str(checkpoint)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _snapshot(kb: KnowledgeBase) -> dict[str, tuple[str, int, list[str]]]:
    out = {}
    for d in kb.list_documents():
        texts = [r.text for r in kb.store.doc_chunks(d.doc_id)]
        out[d.doc_id] = (d.content_hash, d.n_chunks, texts)
    return out


def _assert_consistent(kb_dir: Path) -> KnowledgeBase:
    kb = KnowledgeBase.open(kb_dir, HashEmbedder(), show_progress=False)
    assert kb.store.check() == []
    for info in kb.collections():
        assert info.vectors == info.chunks
    # every stored document is complete: exactly the chunks a fresh chunking gives
    for d in kb.list_documents():
        doc = load_document(d.source, collection=d.collection)
        expect = [
            c.text
            for c in chunk_document(
                doc,
                max_tokens=kb.max_chunk_tokens(),
                overlap=kb.options.chunk_overlap,
                count_tokens=HashEmbedder().count_tokens,
            )
        ]
        assert [r.text for r in kb.store.doc_chunks(d.doc_id)] == expect
    return kb


@pytest.fixture
def prefilled(tmp_path: Path) -> tuple[Path, dict]:
    kb_dir = tmp_path / "kb"
    kb = KnowledgeBase.open(kb_dir, HashEmbedder(), show_progress=False)
    kb.add(_course(tmp_path / "old", "old", 3))
    snap = _snapshot(kb)
    kb.close()
    return kb_dir, snap


@pytest.mark.parametrize("point", ["index_written", "rows_written"])
def test_kill_before_commit_keeps_previous_state(
    tmp_path: Path, prefilled: tuple[Path, dict], point: str
) -> None:
    kb_dir, before = prefilled
    new = _course(tmp_path / "new", "new", 4)
    # also change one stored file, so the killed write would have replaced it
    (tmp_path / "old" / "old0.md").write_text("# old 0\n\nRewritten.\n", encoding="utf-8")
    proc = _run(kb_dir, tmp_path, point)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    assert "finished" not in out
    kb = KnowledgeBase.open(kb_dir, HashEmbedder(), show_progress=False)
    assert kb.store.check() == []  # index and rows agree
    assert _snapshot(kb) == before  # exactly the previous state (old0 not replaced)
    hits = kb.search("fractions paragraph", k=10)
    assert hits and all(h.title.startswith("old") for h in hits)
    # the killed writer's index file is an orphan; the next writer removes it and succeeds
    r = kb.add([new, tmp_path / "old"])
    assert {f.status for f in r.files} == {"added", "skipped", "replaced"}
    assert kb.store.check() == []
    gens = sorted(int(p.name.split(".")[1]) for p in (kb_dir / "index").glob("*.faiss"))
    cur = kb.collections()[0].generation
    assert gens == [cur - 1, cur]


def test_kill_right_after_commit_keeps_the_new_state(
    tmp_path: Path, prefilled: tuple[Path, dict]
) -> None:
    kb_dir, before = prefilled
    _course(tmp_path / "new", "new", 2)
    proc = _run(kb_dir, tmp_path / "new", "committed")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    kb = _assert_consistent(kb_dir)
    after = _snapshot(kb)
    assert set(before) < set(after) and len(after) == len(before) + 2
    assert {d: after[d] for d in before} == before


def test_kill_at_a_random_moment_of_a_long_ingest(
    tmp_path: Path, prefilled: tuple[Path, dict]
) -> None:
    kb_dir, before = prefilled
    _course(tmp_path / "new", "new", 12)  # 24 chunks, 2 per embedding batch, 4 per commit
    progress = tmp_path / "progress"
    proc = _run(kb_dir, tmp_path / "new", "none", slow=0.05, checkpoint=4)
    deadline = time.monotonic() + 60
    while (not progress.exists() or len(progress.read_text()) < 5) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    kb = _assert_consistent(kb_dir)
    after = _snapshot(kb)
    assert {d: after[d] for d in before} == before  # nothing already stored was lost
    added = len(after) - len(before)
    assert 0 < added < 12  # some checkpoints committed, the rest did not
    # re-running the same ingest finishes the job, skipping what was committed
    r = kb.add(tmp_path / "new")
    assert len(r.skipped) == added and len(r.added) == 12 - added
    assert kb.store.check() == []
