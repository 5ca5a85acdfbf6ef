"""Retrieval: RRF, MMR, citation labels, hybrid vs dense on a keyword query, filters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge_base import KnowledgeBase
from knowledge_base.errors import DocumentNotFoundError
from knowledge_base.retrieve import citation_label, mmr, pages_label, query_terms, rrf
from knowledge_base.testing import HashEmbedder
from tests.test_kb_store import write_course
from tutor.errors import InputError


def test_rrf_sums_reciprocal_ranks() -> None:
    s = rrf([[1, 2, 3], [3, 1]], k=60)
    assert s[1] == pytest.approx(1 / 61 + 1 / 62)
    assert s[2] == pytest.approx(1 / 62)
    assert s[3] == pytest.approx(1 / 63 + 1 / 61)
    assert sorted(s, key=lambda i: -s[i]) == [1, 3, 2]


def test_mmr_prefers_novel_items() -> None:
    v = np.array([[1, 0, 0], [0.99, 0.14, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    rel = np.array([1.0, 0.95, 0.6, 0.5])
    assert mmr(rel, v, 3, lambda_=1.0) == [0, 1, 2]  # pure relevance
    assert mmr(rel, v, 3, lambda_=0.5) == [0, 2, 3]  # the near-duplicate goes last
    assert mmr(rel, v, 10, 0.5)[:1] == [0] and len(mmr(rel, v, 10, 0.5)) == 4


def test_citation_labels() -> None:
    assert citation_label("Fractions", "Fractions > Adding", [3]) == "Fractions — Adding, p. 3"
    assert citation_label("Notes", "Unit 1 > Ratios", [2, 3]) == "Notes — Unit 1 > Ratios, pp. 2–3"
    assert citation_label("Fractions", "Fractions", []) == "Fractions"
    assert citation_label("Water", "", [1, 4]) == "Water, pp. 1, 4"
    assert pages_label([]) == ""


def test_query_terms_drop_stop_words() -> None:
    assert query_terms("What is the LCD of 4 and 6?") == ["lcd", "4", "6"]
    assert query_terms("the the of") == []
    assert query_terms('x_1 "quoted" E-4471') == ["x", "1", "quoted", "e", "4471"]


# A "dense model" that understands topic words but not rare terms (codes, names): exactly the
# gap BM25 fills.
TOPIC_WORDS = "fraction fractions numerator denominator add adding part parts whole equal".split()
KEYWORD_COURSE = {
    "adding.md": "# Adding fractions\n\nTo add fractions, add the numerators when the "
    "denominators are equal. Fractions name equal parts of a whole.\n",
    "parts.md": "# Parts of a whole\n\nA fraction has a numerator and a denominator; "
    "the denominator counts the equal parts of the whole.\n",
    "equal.md": "# Equal fractions\n\nEqual fractions name the same part of a whole: "
    "multiply numerator and denominator by the same number.\n",
    "compare.md": "# Comparing fractions\n\nWith equal denominators, the fraction with the "
    "larger numerator is larger.\n",
    "unit.md": "# Unit fractions\n\nA unit fraction has numerator one: one equal part.\n",
    "mixed.md": "# Mixed numbers\n\nA mixed number is a whole number and a fraction.\n",
    "egypt.md": "# History\n\nThe Rhind papyrus, copied by the scribe Ahmes, shows how "
    "Egyptian scribes split a whole into equal parts.\n",
}


def _kb(tmp_path: Path, files: dict[str, str], **kw: object) -> KnowledgeBase:
    kb = KnowledgeBase.open(
        tmp_path / "kb", HashEmbedder(256, vocabulary=TOPIC_WORDS), show_progress=False, **kw
    )
    kb.add(write_course(tmp_path / "c", files))
    return kb


def test_hybrid_beats_dense_on_a_keyword_query(tmp_path: Path) -> None:
    kb = _kb(tmp_path, KEYWORD_COURSE)
    q = "What did the Rhind papyrus say about fractions?"
    k = 4
    dense = [p.title for p in kb.search(q, k=10, mode="dense", min_score=-1)]
    hybrid = kb.search(q, k=10, mode="hybrid", min_score=-1)
    bm25 = kb.search(q, k=k, mode="bm25")
    assert bm25[0].title == "History"
    # the embedder cannot see "Rhind papyrus": the passage is last for dense retrieval ...
    assert dense.index("History") >= k
    # ... while hybrid retrieval brings it into the top k
    titles = [p.title for p in hybrid]
    assert titles.index("History") < k
    assert titles.index("History") < dense.index("History")
    top = hybrid[titles.index("History")]
    assert top.bm25_rank == 1 and top.dense_rank == dense.index("History") + 1
    assert top.similarity is not None and top.bm25 is not None and top.bm25 > 0
    assert [p.score for p in hybrid] == sorted((p.score for p in hybrid), reverse=True)


def test_hybrid_ranks_a_pure_keyword_match_first(tmp_path: Path) -> None:
    kb = _kb(tmp_path, KEYWORD_COURSE)
    hits = kb.search("Ahmes papyrus", k=3)
    assert hits[0].title == "History" and hits[0].bm25_rank == 1
    assert kb.search("Ahmes papyrus", k=3, mode="dense", min_score=0.5) == []


def test_passage_fields_and_citation(tmp_path: Path) -> None:
    kb = _kb(tmp_path, KEYWORD_COURSE)
    p = kb.search("papyrus", k=1)[0]
    doc = next(d for d in kb.list_documents() if d.title == "History")
    assert p.doc_id == doc.doc_id and p.chunk_id == f"{doc.doc_id}:0"
    assert p.section == "History" and p.citation == "History" and p.pages == []
    assert p.source == doc.source and p.collection == "default"
    src = Path(p.source).read_text(encoding="utf-8")
    assert src[p.char_start : p.char_end] == p.text
    assert p.to_dict()["citation"] == "History"


def test_filters_by_collection_and_document(tmp_path: Path) -> None:
    kb = _kb(tmp_path, KEYWORD_COURSE)
    kb.add(write_course(tmp_path / "sci", {"rain.md": "# Rain\n\nClouds make rain.\n"}), "science")
    assert {p.collection for p in kb.search("fractions rain clouds", k=10)} == {
        "default",
        "science",
    }
    assert {p.title for p in kb.search("rain clouds", k=10, collection="science")} == {"Rain"}
    egypt = next(d for d in kb.list_documents() if d.title == "History")
    hits = kb.search("fractions", k=10, document=egypt.doc_id, min_score=-1)
    assert hits and {p.doc_id for p in hits} == {egypt.doc_id}
    assert kb.search("fractions", collection="nope") == []  # a course with nothing loaded yet
    with pytest.raises(DocumentNotFoundError):
        kb.search("x", document="missing-123")
    with pytest.raises(DocumentNotFoundError, match="is in collection 'default'"):
        kb.search("x", document=egypt.doc_id, collection="science")


def test_bad_queries_and_empty_store(tmp_path: Path) -> None:
    kb = KnowledgeBase.open(tmp_path / "kb", HashEmbedder(), show_progress=False)
    assert kb.search("anything") == []  # nothing stored yet
    for bad in ("", "   "):
        with pytest.raises(InputError, match="empty"):
            kb.search(bad)
    with pytest.raises(InputError, match="k must be"):
        kb.search("x", k=0)
    with pytest.raises(InputError, match="mode"):
        kb.search("x", mode="sparse")  # type: ignore[arg-type]


def test_min_score_drops_unrelated_dense_hits_but_keeps_keyword_hits(tmp_path: Path) -> None:
    kb = _kb(tmp_path, KEYWORD_COURSE)
    assert kb.search("weather tomorrow", k=4, min_score=0.5) == []
    kept = kb.search("papyrus", k=4, min_score=0.99)
    assert [p.title for p in kept] == ["History"]  # BM25 found it, so it stays
    assert len(kb.search("papyrus", k=4, min_score=-1)) == 4


def test_mmr_diversifies_near_duplicates(tmp_path: Path) -> None:
    files = {
        f"dup{i}.md": "# Adding fractions\n\nAdd the numerators of fractions with equal "
        f"denominators, version {i}.\n"
        for i in range(4)
    }
    files["parts.md"] = KEYWORD_COURSE["parts.md"]
    kb = KnowledgeBase.open(tmp_path / "kb", HashEmbedder(512), show_progress=False)
    kb.add(write_course(tmp_path / "c", files))
    q = "adding fractions numerators denominators"
    plain = [p.title for p in kb.search(q, k=3, mode="dense")]
    diverse = [p.title for p in kb.search(q, k=3, mode="dense", mmr=0.3, min_score=-1)]
    assert plain == ["Adding fractions"] * 3
    assert "Parts of a whole" in diverse
    assert kb.search(q, k=3, mmr=True)  # kb.mmr_lambda
    with pytest.raises(InputError, match="mmr"):
        kb.search(q, mmr=1.5)


# Another course that shares course A's words, in other proportions: in one index for all
# collections, its documents would change A's document frequencies and average length.
SKEWING_COURSE = {
    f"b{i}.md": f"# Papyrus {i}\n\nThe papyrus scroll {i} by a scribe: papyrus, papyrus, "
    + ("numerator " if i % 5 == 0 else "")
    + "ink and reed pens on papyrus, with many more words about writing materials "
    "and the long history of the scroll.\n"
    for i in range(30)
}
BM25_QUERIES = [
    "Rhind papyrus numerator",
    "scribe equal parts of a whole",
    "numerator denominator",
    "papyrus fractions",
    "mixed number whole",
]


def _rankings(kb: KnowledgeBase, collection: str) -> dict[tuple[str, str], list[tuple]]:
    out: dict[tuple[str, str], list[tuple]] = {}
    for q in BM25_QUERIES:
        for mode in ("bm25", "hybrid"):
            hits = kb.search(q, k=10, mode=mode, collection=collection, min_score=-1)
            out[q, mode] = [(p.chunk_id, p.score, p.bm25, p.bm25_rank) for p in hits]
    return out


def test_another_collection_leaves_a_collections_bm25_and_hybrid_rankings_unchanged(
    tmp_path: Path,
) -> None:
    kb = _kb(tmp_path, KEYWORD_COURSE)
    before = _rankings(kb, "default")
    assert all(before[q, "bm25"] for q in BM25_QUERIES)
    kb.add(write_course(tmp_path / "b", SKEWING_COURSE), "history")
    assert kb.search("papyrus scroll", k=3, collection="history", mode="bm25")
    assert _rankings(kb, "default") == before  # chunk ids, order and the scores themselves
    kb.remove_collection("history")
    assert _rankings(kb, "default") == before
    # a search over every collection ranks each collection's passages by its own statistics
    kb.add(write_course(tmp_path / "b", SKEWING_COURSE), "history")
    everywhere = kb.search("Rhind papyrus numerator", k=50, mode="bm25")
    mine = [(p.chunk_id, p.bm25) for p in everywhere if p.collection == "default"]
    assert mine == [(c, b) for c, _, b, _ in before["Rhind papyrus numerator", "bm25"]]
