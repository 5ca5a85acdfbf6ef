"""The retrieval QA sets point at sections that exist (no embedder needed)."""

from __future__ import annotations

from pathlib import Path

from knowledge_base.chunk import _sections
from knowledge_base.evaluate import QAItem, is_hit, load_qa
from knowledge_base.load import iter_files, load_document
from knowledge_base.retrieve import Passage

REPO = Path(__file__).resolve().parents[1]


def _section_index(root: Path) -> dict[str, set[str]]:
    """Relative file path -> heading paths of its chunkable sections."""
    out = {}
    for f in iter_files(root):
        doc = load_document(f)
        out[f.relative_to(root).as_posix()] = {" > ".join(p) for p, _ in _sections(doc)}
    return out


def _check(items: list[QAItem], sections: dict[str, set[str]]) -> None:
    for q in items:
        assert q.question.strip().endswith("?"), q
        assert q.document in sections, q
        assert any(s in sections[q.document] for s in q.sections), (q, sections[q.document])


def test_sample_course_qa_targets_exist() -> None:
    items = load_qa(REPO / "data" / "curriculum" / "qa.jsonl")
    assert len(items) >= 40
    _check(items, _section_index(REPO / "data" / "curriculum"))
    per_doc = {q.document for q in items}
    assert len(per_doc) == 8


def test_openstax_qa_targets_exist(shared_data: Path) -> None:
    items = load_qa(REPO / "evals" / "data" / "openstax_qa.jsonl")
    assert len(items) >= 80
    _check(items, _section_index(shared_data / "curriculum"))
    assert {q.document.split("/")[0] for q in items} == {"prealgebra-2e", "chemistry-2e"}
    # questions are ours, not copied sentences from the chapters
    text = " ".join(load_document(shared_data / "curriculum" / q.document).text for q in items[:10])
    assert not any(q.question in text for q in items[:10])


def test_is_hit_matches_file_and_section() -> None:
    item = QAItem("q?", "prealgebra-2e/ch01.md", ["A > B"])
    p = Passage("c:0", "d", "A", "A > B", [], "t", 0.1, "A — B", source="/x/prealgebra-2e/ch01.md")
    assert is_hit(p, item)
    p.section = "A > C"
    assert not is_hit(p, item)
    p.section, p.source = "A > B", "/x/chemistry-2e/ch01.md"
    assert not is_hit(p, item)
