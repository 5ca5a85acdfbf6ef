"""A damaged FAISS index file (issue 16, V9).

Found: random bytes written into the middle of a flat index passed ``tutor kb stats --check``
("ok") and search then scored 4e37; a truncated index took every chat down with the server's
file path in the student's error. Now every index file carries a SHA-256 trailer written with it
(before the database names it) and checked whenever it is loaded and by ``--check``; a search on
a damaged index ranks by keywords (BM25) only, the log says why once, the teacher's course page
warns, and students see answers, never a path.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import gradio as gr
import pytest

from knowledge_base import KnowledgeBase
from knowledge_base import index as ix
from knowledge_base.testing import HashEmbedder
from tests.test_kb_store import write_course
from tutor.cli import main
from tutor.testing.fake_lm import ScriptedGenerator
from ui.app import build_blocks
from ui.handlers import PAGE_OUTPUTS, TURN_OUTPUTS, Handlers
from ui.testing import by_name, sample_context


def index_file(kb_dir: Path) -> Path:
    (path,) = sorted((kb_dir / "index").glob("default.*.faiss"))[-1:]
    return path


def scribble(path: Path) -> None:
    """Random bytes over a stretch in the middle of the file (its size unchanged)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = os.urandom(64)
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.fixture
def cli(tutor_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    import tutor.builders

    monkeypatch.setattr(tutor.builders, "build_embedder", lambda config: HashEmbedder())

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.mark.parametrize("damage", [scribble, truncate])
def test_stats_check_finds_a_damaged_index(cli, tutor_home: Path, tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    course = write_course(tmp_path / "course")
    assert cli("kb", "add", str(course))[0] == 0
    code, out, _ = cli("kb", "stats", "--check")
    assert code == 0 and "check           ok" in out
    damage(index_file(tutor_home / "kb"))
    code, out, _ = cli("kb", "stats", "--check")
    assert code == 1 and "is damaged" in out and "check           ok" not in out


def test_every_index_written_carries_its_checksum(tmp_path: Path) -> None:
    kb = KnowledgeBase.open(tmp_path / "kb", HashEmbedder(), show_progress=False)
    kb.add(write_course(tmp_path / "course"))
    path = index_file(tmp_path / "kb")
    assert path.read_bytes()[-40:].startswith(ix.CHECKSUM_MAGIC) and ix.verify(path) is True
    kb.close()
    scribble(path)
    with pytest.raises(ix.IndexChecksumError, match="do not match the checksum"):
        ix.read(path)


def test_an_index_written_before_checksums_still_loads(tmp_path: Path) -> None:
    import faiss

    kb = KnowledgeBase.open(tmp_path / "kb", HashEmbedder(), show_progress=False)
    kb.add(write_course(tmp_path / "course"))
    path = index_file(tmp_path / "kb")
    faiss.write_index(kb.store.index("default"), str(path))  # no trailer, as before
    kb.close()
    kb = KnowledgeBase.open(tmp_path / "kb", HashEmbedder(), show_progress=False)
    assert ix.verify(path) is False and kb.store.check() == []
    assert kb.search("numerators denominators", k=2)[0].similarity is not None
    kb.close()


@pytest.mark.parametrize("damage", [scribble, truncate])
def test_search_on_a_damaged_index_falls_back_to_keywords(
    tmp_path: Path, damage, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    kb = KnowledgeBase.open(tmp_path / "kb", HashEmbedder(), show_progress=False)
    kb.add(write_course(tmp_path / "course"))
    kb.close()
    damage(index_file(tmp_path / "kb"))
    kb = KnowledgeBase.open(tmp_path / "kb", HashEmbedder(), show_progress=False)
    with caplog.at_level(logging.WARNING, logger="knowledge_base.kb"):
        for mode in ("hybrid", "dense"):
            hits = kb.search("add the numerators", k=3, mode=mode)  # type: ignore[arg-type]
            assert hits and "numerators" in hits[0].text
            assert all(p.similarity is None and p.bm25 is not None for p in hits)
    warned = [r for r in caplog.records if "keywords only" in r.getMessage()]
    assert len(warned) == 1  # once, not per search
    assert "is damaged" in kb.damaged["default"] and kb.index_problem("default")
    kb.close()


def test_students_get_answers_and_the_teacher_a_warning(tmp_path: Path) -> None:
    ctx = sample_context(tmp_path, ScriptedGenerator("Plants make glucose from light [1]."))
    h = Handlers(ctx)
    build_blocks(h, 1)
    assert h.kb is not None
    h.kb.store._indexes.clear()  # as after a restart: the index is read from disk again
    truncate(index_file(ctx.config.paths.kb_dir))
    ana = gr.Request(username="ana")
    sid = by_name(h, PAGE_OUTPUTS, h.page_load(request=ana))["session_id"]
    outs = [
        by_name(h, TURN_OUTPUTS, o)
        for o in h.send("How do plants make glucose?", "explain", sid, request=ana)
    ]
    shown = " ".join(m["content"] for m in outs[-1]["chat"])
    assert "glucose" in shown and "Sources" in shown  # cited from a keyword-found passage
    assert str(tmp_path) not in shown and "damaged" not in shown and "⚠️" not in shown
    teacher = by_name(h, PAGE_OUTPUTS, h.page_load(request=gr.Request(username="mrs-k")))
    table = teacher["docs_table"]
    assert "search index of this course is damaged" in table and str(tmp_path) not in table
