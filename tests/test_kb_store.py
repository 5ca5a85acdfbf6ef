"""The knowledge base as a store: add / skip / replace / remove, collections, bad input in a
batch, embedder mismatch, index kinds, and readers seeing other writers' commits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge_base import KnowledgeBase
from knowledge_base.errors import DocumentNotFoundError, EmbedderMismatchError, StoreError
from knowledge_base.store import Store
from knowledge_base.testing import HashEmbedder
from tests.test_kb_load import PDF_PAGES, make_docx, make_encrypted_pdf, make_image_pdf, make_pdf
from tutor.errors import InputError

TOPICS = {
    "fractions.md": "# Fractions\n\nA fraction names equal parts of a whole.\n\n## Adding\n\n"
    "Add the numerators when the denominators match.\n",
    "percents.md": "# Percents\n\nPercent means per hundred.\n\n## Discounts\n\n"
    "A discount takes a percent off the price.\n",
    "water.txt": "The Water Cycle\n\nWater evaporates, condenses into clouds and falls as rain.\n",
}


def write_course(d: Path, files: dict[str, str] = TOPICS) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


def open_kb(path: Path, embedder: object | None = None, **kw: object) -> KnowledgeBase:
    return KnowledgeBase.open(path, embedder or HashEmbedder(), show_progress=False, **kw)


def test_add_then_unchanged_readd_is_skipped_without_embedding(tmp_path: Path) -> None:
    course = write_course(tmp_path / "course")
    emb = HashEmbedder()
    kb = open_kb(tmp_path / "kb", emb)
    r = kb.add(course)
    assert [(Path(f.path).name, f.status) for f in r.files] == [
        ("fractions.md", "added"),
        ("percents.md", "added"),
        ("water.txt", "added"),
    ]
    assert r.ok and r.chunks == sum(f.chunks for f in r.files) and r.chunks >= 5
    assert {d.title for d in kb.list_documents()} == {"Fractions", "Percents", "The Water Cycle"}
    calls = emb.calls
    again = kb.add(course)
    assert [f.status for f in again.files] == ["skipped"] * 3
    assert all(f.message == "unchanged" for f in again.files)
    assert emb.calls == calls  # nothing embedded
    assert kb.store.check() == []
    kb.close()


def test_changed_file_replaces_its_old_chunks(tmp_path: Path) -> None:
    course = write_course(tmp_path / "course")
    kb = open_kb(tmp_path / "kb")
    kb.add(course)
    old = {d.source: d for d in kb.list_documents()}
    (course / "percents.md").write_text(
        "# Percents\n\nPercent means out of one hundred.\n\n## Interest\n\nBanks pay interest.\n"
    )
    r = kb.add(course)
    by_name = {Path(f.path).name: f for f in r.files}
    assert by_name["percents.md"].status == "replaced"
    src = str((course / "percents.md").resolve())
    assert by_name["percents.md"].replaced == old[src].doc_id
    assert by_name["fractions.md"].status == "skipped"
    docs = kb.list_documents()
    assert len(docs) == 3 and old[src].doc_id not in {d.doc_id for d in docs}
    texts = " ".join(p.text for p in kb.search("interest discount percent", k=10))
    assert "Banks pay interest" in texts and "discount" not in texts.lower()
    assert kb.store.check() == []


def test_remove_document_and_collection(tmp_path: Path) -> None:
    course = write_course(tmp_path / "course")
    kb = open_kb(tmp_path / "kb")
    kb.add(course, collection="math")
    kb.add(course / "water.txt", collection="science")
    water_sci = kb.list_documents("science")[0]
    math_ids = {d.doc_id for d in kb.list_documents("math")}
    assert water_sci.doc_id not in math_ids  # ids are per collection
    gone = kb.remove(water_sci.doc_id)
    assert gone.doc_id == water_sci.doc_id
    assert kb.list_documents("science") == []
    assert kb.search("clouds rain", collection="science") == []
    with pytest.raises(DocumentNotFoundError, match="tutor kb list"):
        kb.remove(water_sci.doc_id)
    assert kb.store.check() == []
    info = kb.remove_collection("math")
    assert info.documents == 3
    assert kb.list_documents() == []
    assert [c.name for c in kb.collections()] == ["science"]
    # removed documents are gone from search and from the index files on disk
    files = sorted(p.name for p in (tmp_path / "kb" / "index").iterdir())
    assert all(f.startswith("science.") for f in files)


def test_stats(tmp_path: Path) -> None:
    kb = open_kb(tmp_path / "kb")
    assert kb.stats().documents == 0 and kb.stats().embedder is None
    kb.add(write_course(tmp_path / "c"))
    st = kb.stats()
    assert st.embedder == "hash-embedder" and st.dimension == 128
    assert st.documents == 3 and st.formats == {"md": 2, "txt": 1}
    assert st.collections[0].name == "default" and st.collections[0].vectors == st.chunks
    assert st.disk_bytes > 0


def test_bad_inputs_in_a_batch_fail_per_file_and_keep_the_rest(tmp_path: Path) -> None:
    kb = open_kb(tmp_path / "kb", max_file_mb=0.05)
    first = kb.add(write_course(tmp_path / "before", {"kept.md": "# Kept\n\nStored before.\n"}))
    kept_id = first.files[0].doc_id
    d = tmp_path / "batch"
    d.mkdir()
    good_pdf = make_pdf(d / "good.pdf", PDF_PAGES, title="Water")
    (d / "corrupt.pdf").write_bytes(good_pdf.read_bytes()[:400])
    make_encrypted_pdf(good_pdf, d / "locked.pdf")
    make_image_pdf(d / "scan.pdf")
    (d / "empty.md").write_bytes(b"")
    (d / "binary.md").write_bytes(bytes(range(256)) * 4)
    (d / "latin1.txt").write_bytes("café crème".encode("latin-1"))
    (d / "huge.md").write_text("# Huge\n\n" + "words " * 20_000)
    make_docx(d / "ratios.docx")
    report = kb.add([d, tmp_path / "no-such-file.md"])
    status = {Path(f.path).name: (f.status, f.message) for f in report.files}
    assert status["good.pdf"][0] == "added" and status["ratios.docx"][0] == "added"
    expect = {
        "corrupt.pdf": "not a readable PDF",
        "locked.pdf": "password-protected",
        "scan.pdf": "no text layer",
        "empty.md": "empty",
        "binary.md": "binary",
        "latin1.txt": "not UTF-8",
        "huge.md": "over the",
        "no-such-file.md": "does not exist",
    }
    for name, needle in expect.items():
        st, msg = status[name]
        assert st == "error" and needle in msg, (name, msg)
    assert not report.ok and len(report.errors) == len(expect)
    ids = {doc.doc_id for doc in kb.list_documents()}
    assert kept_id in ids and len(ids) == 3
    assert kb.store.check() == []
    pdf_hit = kb.search("evaporation water vapour", k=1)[0]
    assert pdf_hit.pages == [1] and pdf_hit.citation == "Water — Evaporation, p. 1"


def test_same_content_from_another_path_is_a_duplicate(tmp_path: Path) -> None:
    a = write_course(tmp_path / "a", {"notes.md": "# Notes\n\nSame words.\n"})
    b = write_course(tmp_path / "b", {"notes.md": "# Notes\n\nSame words.\n"})
    kb = open_kb(tmp_path / "kb")
    kb.add(a)
    r = kb.add(b)
    assert r.files[0].status == "skipped" and "already stored" in r.files[0].message
    assert len(kb.list_documents()) == 1


def test_uploads_as_bytes_replace_by_name(tmp_path: Path) -> None:
    kb = open_kb(tmp_path / "kb")
    seen: list[tuple[int, int, str]] = []
    r = kb.add(
        [("unit1.md", b"# Unit 1\n\nRatios compare quantities.\n")],
        progress=lambda done, total, msg: seen.append((done, total, msg)),
    )
    assert r.files[0].status == "added"
    assert kb.list_documents()[0].source == "upload:unit1.md"
    assert seen[0] == (0, 1, "reading unit1.md") and seen[-1] == (1, 1, "done")
    assert any(msg == "embedding" for _, _, msg in seen)
    r = kb.add(("unit1.md", b"# Unit 1\n\nRates compare different units.\n"))
    assert r.files[0].status == "replaced"
    assert len(kb.list_documents()) == 1


def test_checkpoints_commit_in_several_transactions(tmp_path: Path) -> None:
    course = write_course(
        tmp_path / "c", {f"doc{i}.md": f"# Doc {i}\n\nText number {i}.\n" for i in range(6)}
    )
    kb = open_kb(tmp_path / "kb", checkpoint_chunks=2)
    kb.add(course)
    gen = kb.store.collections()[0].generation
    assert gen == 3  # 6 one-chunk documents, committed two at a time
    assert kb.store.check() == []


def test_embedder_mismatch_is_refused(tmp_path: Path) -> None:
    kb = open_kb(tmp_path / "kb", HashEmbedder(64, name="model-a"))
    kb.add(write_course(tmp_path / "c"))
    kb.close()
    with pytest.raises(EmbedderMismatchError, match="built with the embedder 'model-a'") as e:
        open_kb(tmp_path / "kb", HashEmbedder(64, name="model-b"))
    assert "--set kb.embedder=model-a" in str(e.value)
    with pytest.raises(EmbedderMismatchError, match="32-dimensional"):
        open_kb(tmp_path / "kb", HashEmbedder(32, name="model-a"))

    class Liar(HashEmbedder):  # claims 64 dimensions, returns 32
        def encode(self, texts):  # type: ignore[no-untyped-def]
            return super().encode(texts)[:, :32]

    kb = open_kb(tmp_path / "kb", Liar(64, name="model-a"))
    with pytest.raises(EmbedderMismatchError):
        kb.search("fractions")
    # without an embedder, listing still works; adding does not
    kb = KnowledgeBase.open(tmp_path / "kb")
    assert len(kb.list_documents()) == 3
    with pytest.raises(InputError, match="without an embedder"):
        kb.add(write_course(tmp_path / "d", {"x.md": "# X\n\nnew\n"}))


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_add_search_remove(tmp_path: Path, kind: str) -> None:
    files = {
        f"t{i}.md": f"# Topic {i}\n\nword{i} alpha{i % 7} beta{i % 5} gamma{i % 3}.\n"
        for i in range(120)
    }
    course = write_course(tmp_path / "c", files)
    opts = {"index": "auto", "ann_threshold": 100} if kind == "ivf" else {"index": "hnsw"}
    kb = open_kb(tmp_path / "kb", HashEmbedder(4096), **opts)
    kb.add(course)
    assert kb.collections()[0].index_kind == kind
    hit = kb.search("word17 alpha3 beta2", k=1, mode="dense")[0]
    assert hit.title == "Topic 17"
    victim = next(d for d in kb.list_documents() if d.title == "Topic 17")
    kb.remove(victim.doc_id)
    assert all(p.title != "Topic 17" for p in kb.search("word17 alpha3 beta2", k=5))
    assert kb.store.check() == []
    assert kb.collections()[0].vectors == 119


def test_auto_switches_back_to_flat_when_small(tmp_path: Path) -> None:
    files = {f"t{i}.md": f"# T{i}\n\nw{i} a{i % 7}.\n" for i in range(100)}
    course = write_course(tmp_path / "c", files)
    kb = open_kb(tmp_path / "kb", HashEmbedder(32), ann_threshold=100)
    kb.add(course)
    assert kb.collections()[0].index_kind == "ivf"
    for d in kb.list_documents()[:60]:
        kb.remove(d.doc_id)
    assert kb.collections()[0].index_kind == "flat"
    assert kb.store.check() == []


def test_reader_sees_another_writers_commit(tmp_path: Path) -> None:
    course = write_course(tmp_path / "c")
    writer = open_kb(tmp_path / "kb")
    reader = open_kb(tmp_path / "kb")  # separate connection and index cache
    writer.add(course / "fractions.md")
    assert [p.title for p in reader.search("fraction numerators", k=3)] == ["Fractions"] * 2
    writer.add(course / "percents.md")
    titles = {p.title for p in reader.search("percent discount price", k=3)}
    assert "Percents" in titles
    writer.remove(writer.list_documents()[0].doc_id)
    assert reader.store.check() == []


def test_a_second_writer_waits_then_gives_a_clear_error(tmp_path: Path) -> None:
    kb = open_kb(tmp_path / "kb", lock_timeout=0.3)
    other = Store(tmp_path / "kb")
    with other._write_lock(), pytest.raises(StoreError, match="another process is writing"):
        kb.add(write_course(tmp_path / "c"))


def test_chunk_ids_are_never_reused(tmp_path: Path) -> None:
    course = write_course(tmp_path / "c", {"a.md": "# A\n\nalpha\n"})
    kb = open_kb(tmp_path / "kb")
    kb.add(course)
    first = kb.store.chunk_ids(kb.list_documents()[0].doc_id)
    kb.remove(kb.list_documents()[0].doc_id)
    kb.add(course)
    second = kb.store.chunk_ids(kb.list_documents()[0].doc_id)
    assert second.min() > first.max()


def test_invalid_collection_names_and_options(tmp_path: Path) -> None:
    kb = open_kb(tmp_path / "kb")
    with pytest.raises(InputError, match="collection name"):
        kb.add(write_course(tmp_path / "c"), collection="../etc")
    with pytest.raises(InputError, match="unknown knowledge-base option"):
        open_kb(tmp_path / "kb", chunk_tokenz=3)
    from tutor.errors import ConfigError

    with pytest.raises(ConfigError, match="kb.chunk_tokens"):
        open_kb(tmp_path / "kb", chunk_tokens=4)


def test_store_files_layout_and_stale_files_cleanup(tmp_path: Path) -> None:
    kb = open_kb(tmp_path / "kb")
    course = write_course(tmp_path / "c")
    for name in TOPICS:
        kb.add(course / name)
    idx = sorted(p.name for p in (tmp_path / "kb" / "index").iterdir())
    assert idx == ["default.2.faiss", "default.3.faiss"]  # current + previous generation
    vecs = np.stack(
        [
            kb.store.index("default").reconstruct(int(i))
            for i in kb.store.chunk_ids(kb.list_documents()[0].doc_id)
        ]
    )
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_new_chunk_settings_rechunk_unchanged_files(tmp_path: Path) -> None:
    course = write_course(tmp_path / "c", {"long.md": "# Long\n\n" + "Fractions are parts. " * 80})
    kb = open_kb(tmp_path / "kb", chunk_tokens=200, chunk_overlap=20)
    first = kb.add(course).files[0]
    kb = open_kb(tmp_path / "kb", chunk_tokens=200, chunk_overlap=20)
    assert kb.add(course).files[0].status == "skipped"
    kb = open_kb(tmp_path / "kb", chunk_tokens=60, chunk_overlap=10)
    again = kb.add(course).files[0]
    assert again.status == "replaced" and again.message == "re-chunked (chunk settings changed)"
    assert again.doc_id == first.doc_id and again.chunks > first.chunks
    assert kb.list_documents()[0].n_chunks == again.chunks
    assert kb.store.check() == []


def test_a_store_from_the_first_schema_is_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import knowledge_base.store as store_mod

    full = list(store_mod.MIGRATIONS)
    monkeypatch.setattr(store_mod, "MIGRATIONS", full[:1])
    old = Store(tmp_path / "kb")  # a store as the first release wrote it
    old._conn.execute("INSERT INTO collections(name, created_at) VALUES ('default', 0)")
    old._conn.execute(
        "INSERT INTO documents VALUES ('a-1', 'default', '/x/a.md', 'a.md', 'A', 'md', 'h', 1, 0, "
        "0, 0)"
    )
    old.close()
    monkeypatch.setattr(store_mod, "MIGRATIONS", full)
    kb = open_kb(tmp_path / "kb")
    applied = [r[0] for r in kb.store._conn.execute("SELECT name FROM migrations ORDER BY name")]
    assert applied == [name for name, _ in full]
    (doc,) = kb.list_documents()
    assert doc.doc_id == "a-1" and doc.chunking == ""  # unknown: re-chunked on the next add
    r = kb.add(write_course(tmp_path / "c", {"b.md": "# B\n\nbeta\n"}))
    assert r.files[0].status == "added"
    assert kb.store.document(r.files[0].doc_id).chunking.startswith("v1 tokens=")


# The full-text index of the schemas before 0003: one FTS5 table over every collection.
OLD_GLOBAL_FTS = """
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, section, title, content='chunks', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, section, title)
    VALUES (new.id, new.text, new.section, new.title);
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, section, title)
    VALUES ('delete', old.id, old.text, old.section, old.title);
END;
INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');
"""


def test_a_store_with_one_bm25_index_for_all_collections_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    from knowledge_base import fts

    kb = open_kb(tmp_path / "kb")
    kb.add(write_course(tmp_path / "a"), "A")
    kb.add(write_course(tmp_path / "b", {"w.md": "# Water\n\nwater water rain clouds\n"}), "B")
    queries = ["water rain", "fractions numerators", "percent discount"]
    want = {
        (q, c): [(p.chunk_id, p.bm25) for p in kb.search(q, k=5, collection=c, mode="bm25")]
        for q in queries
        for c in ("A", "B")
    }
    kb.close()
    # Turn it back into a store as 0002 left it: one full-text index, kept by triggers.
    conn = sqlite3.connect(tmp_path / "kb" / "kb.sqlite")
    for name in ("A", "B"):
        conn.execute(f"DROP TABLE {fts.table_name(name)}")
    conn.executescript(OLD_GLOBAL_FTS)
    conn.execute("DELETE FROM migrations WHERE name = '0003_bm25_per_collection'")
    conn.commit()
    conn.close()

    kb = open_kb(tmp_path / "kb")  # migrates on open
    tables = {r[0] for r in kb.store._conn.execute("SELECT name FROM sqlite_master")}
    assert "chunks_fts" not in tables and not {"chunks_ai", "chunks_ad"} & tables
    assert {fts.table_name("A"), fts.table_name("B")} <= tables
    assert kb.store.check() == []
    got = {
        (q, c): [(p.chunk_id, p.bm25) for p in kb.search(q, k=5, collection=c, mode="bm25")]
        for q in queries
        for c in ("A", "B")
    }
    assert got == want and got["water rain", "A"] and got["water rain", "B"]
    # and it keeps working: removing a document forgets its words
    water = next(d for d in kb.list_documents("A") if d.title == "The Water Cycle")
    kb.remove(water.doc_id)
    assert kb.search("evaporates", k=5, collection="A", mode="bm25") == []
    assert kb.store.check() == []


def test_check_reports_a_collection_whose_bm25_index_lost_rows(tmp_path: Path) -> None:
    from knowledge_base import fts

    kb = open_kb(tmp_path / "kb")
    kb.add(write_course(tmp_path / "a"), "A")
    c = kb.store._conn
    fts.unindex_rows(c, "A", "ordinal = 0", [])
    (problem,) = kb.store.check()
    assert "collection 'A': full-text index has" in problem
