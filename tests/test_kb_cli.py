"""``tutor kb ...`` end to end through ``tutor.cli.main`` (with a tiny embedder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge_base.testing import HashEmbedder
from tests.test_kb_store import TOPICS, write_course
from tutor.cli import main


@pytest.fixture
def cli(tutor_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):  # type: ignore[no-untyped-def]
    import tutor.builders

    monkeypatch.setattr(tutor.builders, "build_embedder", lambda config: HashEmbedder())

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_add_list_search_stats_remove(cli, tmp_path: Path, tutor_home: Path) -> None:  # type: ignore[no-untyped-def]
    course = write_course(tmp_path / "course")
    code, out, err = cli("kb", "add", str(course), "--collection", "grade6")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 3 and all(ln.startswith("added") for ln in lines)
    assert "3 added, 0 replaced, 0 unchanged, 0 failed" in err
    assert (tutor_home / "kb" / "kb.sqlite").is_file()

    code, out, _ = cli("kb", "add", str(course), "-c", "grade6")
    assert code == 0 and out.count("skipped") == 3 and "unchanged" in out

    code, out, _ = cli("kb", "list")
    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "COLLECTION", "CHUNKS", "TYPE", "TITLE", "SOURCE"]
    assert "grade6" in out and "The Water Cycle" in out

    code, out, _ = cli("kb", "list", "--json")
    docs = json.loads(out)
    assert {d["title"] for d in docs} == {"Fractions", "Percents", "The Water Cycle"}

    code, out, _ = cli("kb", "search", "percent", "discount", "-k", "2")
    assert code == 0
    assert out.startswith("[1] Percents — Discounts")
    assert "A discount takes a percent off the price." in out

    code, out, _ = cli("kb", "search", "clouds rain", "--json", "--mode", "bm25", "-c", "grade6")
    hits = json.loads(out)
    assert hits[0]["title"] == "The Water Cycle" and hits[0]["citation"] == "The Water Cycle"

    code, out, _ = cli("kb", "stats", "--check")
    assert code == 0
    assert "hash-embedder" in out and "grade6: 3 documents" in out and "check           ok" in out
    st = json.loads(cli("kb", "stats", "--json")[1])
    assert st["documents"] == 3 and st["collections"][0]["index_kind"] == "flat"

    water = next(d for d in docs if d["title"] == "The Water Cycle")
    code, out, _ = cli("kb", "remove", water["doc_id"])
    assert code == 0 and out.startswith(f"removed {water['doc_id']}")
    code, out, err = cli("kb", "remove", water["doc_id"])
    assert code == 2 and "no document with id" in err

    code, out, _ = cli("kb", "remove", "--collection", "grade6")
    assert code == 0 and "removed collection grade6 (2 documents)" in out
    code, out, err = cli("kb", "list")
    assert out == "" and "no documents yet" in err


def test_add_reports_bad_files_and_exits_1(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = write_course(tmp_path / "c", {"good.md": TOPICS["fractions.md"], "bad.md": ""})
    code, out, err = cli("kb", "add", str(d), str(tmp_path / "missing.pdf"))
    assert code == 1
    assert "added" in out and "good.md" in out
    assert "error" in out and "bad.md" in out and "empty" in out
    assert "missing.pdf" in out and "does not exist" in out
    assert "1 added, 0 replaced, 0 unchanged, 2 failed" in err


def test_cli_errors_are_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("kb", "search", "x", "-c", "nope")
    assert code == 2 and err.startswith("error: no collection named 'nope'")
    code, _, err = cli("kb", "remove")
    assert code == 2 and "give document ids" in err
    code, _, err = cli("kb", "add", str(tmp_path), "-c", "bad name!")
    assert code == 2 and "collection name" in err


def test_kb_config_overrides_reach_the_knowledge_base(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    course = write_course(tmp_path / "c")
    cli("kb", "add", str(course), "--set", "kb.chunk_tokens=16", "--set", "kb.chunk_overlap=0")
    docs = json.loads(cli("kb", "list", "--json")[1])
    assert max(d["n_chunks"] for d in docs) >= 2  # tiny budget: more chunks


def test_importing_the_kb_cli_stays_light() -> None:
    code = (
        "import sys, tutor.cli.kb, knowledge_base; "
        "heavy = [m for m in ('numpy', 'faiss', 'torch', 'sentence_transformers', 'pypdf') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_builders_make_a_lazy_bundled_embedder(tutor_home: Path) -> None:
    from tutor.builders import build_embedder, build_knowledge_base
    from tutor.config import load_config

    config = load_config(env={"TUTOR_HOME": str(tutor_home)})
    emb = build_embedder(config)
    assert emb.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert emb.dimension == 384 and emb.max_seq_length == 256
    assert not emb.loaded  # name, size and tokenizer come from files
    kb = build_knowledge_base(config, embedder=emb)
    assert kb.store.dir == tutor_home.resolve() / "kb"
    assert kb.max_chunk_tokens() == 254  # 300 capped to what MiniLM takes whole
    assert not emb.loaded
