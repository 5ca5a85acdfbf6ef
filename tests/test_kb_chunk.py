"""Chunking: structure first, budget respected, atomic blocks kept whole, overlap, metadata."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from knowledge_base.chunk import (
    approx_token_counts,
    chunk_document,
    embedding_text,
    section_label,
    split_sentences,
)
from knowledge_base.load import load_document

SENT = "The numerator counts the equal parts we take from the whole."  # 12 approx tokens


def _doc(tmp_path: Path, text: str, name: str = "doc.md"):  # type: ignore[no-untyped-def]
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return load_document(f)


def _tok(text: str) -> int:
    return approx_token_counts([text])[0]


def test_one_chunk_per_small_section_with_section_paths(tmp_path: Path) -> None:
    doc = _doc(
        tmp_path,
        "# Fractions\n\nIntro text.\n\n## Adding fractions\n\nAdd numerators.\n\n"
        "### Unlike denominators\n\nFind the LCD.\n\n## Multiplying\n\nMultiply across.\n",
    )
    chunks = chunk_document(doc, max_tokens=100, overlap=10)
    assert [c.section for c in chunks] == [
        "Fractions",
        "Fractions > Adding fractions",
        "Fractions > Adding fractions > Unlike denominators",
        "Fractions > Multiplying",
    ]
    assert [c.ordinal for c in chunks] == [0, 1, 2, 3]
    assert chunks[1].text == "## Adding fractions\n\nAdd numerators."
    assert chunks[1].chunk_id == f"{doc.doc_id}:1"
    for c in chunks:
        assert doc.text[c.char_start : c.char_end] == c.text
        assert c.title == "Fractions" and c.doc_id == doc.doc_id
        assert c.n_tokens == _tok(c.embedding_text())


def test_heading_only_sections_make_no_chunk_but_stay_in_paths(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "# Unit 3\n\n## Ratios\n\n### Simplifying\n\nDivide by the GCF.\n")
    chunks = chunk_document(doc, max_tokens=100)
    assert [c.section for c in chunks] == ["Unit 3 > Ratios > Simplifying"]


def test_long_section_splits_at_budget_on_paragraph_boundaries(tmp_path: Path) -> None:
    paras = [" ".join([SENT] * 3) for _ in range(6)]  # ~36 tokens each
    doc = _doc(tmp_path, "# T\n\n## S\n\n" + "\n\n".join(paras) + "\n")
    budget = 90
    chunks = chunk_document(doc, max_tokens=budget, overlap=0)
    assert len(chunks) >= 3
    for c in chunks:
        assert c.n_tokens <= budget
        assert c.section == "T > S"
    # with no overlap, chunks tile the section and each starts and ends on a paragraph boundary
    para = [b for b in doc.blocks if b.kind == "paragraph"]
    starts = {b.start for b in para} | {doc.blocks[1].start}  # or the "## S" heading
    assert {c.char_end for c in chunks} <= {b.end for b in para}
    assert {c.char_start for c in chunks} <= starts
    assert chunks[-1].char_end == para[-1].end
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.char_end < b.char_start  # no overlap asked, none given


def test_overlap_repeats_trailing_sentences(tmp_path: Path) -> None:
    sents = [f"Sentence number {i} talks about fractions and parts." for i in range(40)]
    doc = _doc(tmp_path, "# T\n\n" + " ".join(sents) + "\n")
    chunks = chunk_document(doc, max_tokens=80, overlap=20)
    assert len(chunks) > 2
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.char_start < a.char_end  # overlapping ranges
        shared = doc.text[b.char_start : a.char_end]
        assert shared.strip().endswith(".") and _tok(shared) <= 20
        assert b.char_end > a.char_end  # progress
    covered = set()
    for c in chunks:
        covered.update(range(c.char_start, c.char_end))
    body_start = doc.text.index("Sentence number 0")
    assert set(range(body_start, len(doc.text.rstrip()))) <= covered


def test_math_table_rows_and_list_items_are_not_split(tmp_path: Path) -> None:
    math = "$$\n" + " + ".join(f"x_{i}" for i in range(12)) + "\n$$"
    rows = "\n".join(f"| row {i} | value {i} | note about row {i} |" for i in range(8))
    items = "\n".join(f"- item {i}: add the numerators and keep the denominator" for i in range(6))
    text = f"# T\n\n{SENT} {SENT}\n\n{math}\n\n{rows}\n\n{items}\n\n{SENT}\n"
    doc = _doc(tmp_path, text)
    chunks = chunk_document(doc, max_tokens=60, overlap=10)
    atomic = [b for b in doc.blocks if b.kind in ("math", "table_row", "list_item")]
    assert len(atomic) == 1 + 8 + 6
    for b in atomic:
        inside = [c for c in chunks if c.char_start <= b.start and b.end <= c.char_end]
        cut = [c for c in chunks if c.char_start < b.end and b.start < c.char_end]
        # every chunk touching an atomic block contains all of it
        assert inside and len(inside) == len(cut), doc.text[b.start : b.end]


def test_an_oversized_atomic_block_is_split_by_lines_then_words(tmp_path: Path) -> None:
    lines = "\n".join(f"y_{i} = {i} \\times x + {i}" for i in range(30))
    doc = _doc(tmp_path, f"# T\n\n$$\n{lines}\n$$\n")
    chunks = chunk_document(doc, max_tokens=50, overlap=0)
    assert len(chunks) > 1
    assert all(c.n_tokens <= 50 for c in chunks)
    # split between lines, never inside one
    for c in chunks:
        assert c.char_start == 0 or doc.text[c.char_start - 1] == "\n"
        assert c.char_end == len(doc.text) or doc.text[c.char_end] == "\n"


def test_pages_recorded_from_pdf_blocks(tmp_path: Path) -> None:
    from tests.test_kb_load import PDF_PAGES, make_pdf

    doc = load_document(make_pdf(tmp_path / "w.pdf", PDF_PAGES))
    chunks = chunk_document(doc, max_tokens=200)
    assert [(c.section, c.pages) for c in chunks] == [
        ("Evaporation", [1]),
        ("Condensation", [2]),
    ]
    one = chunk_document(doc, max_tokens=200)
    assert [c.text for c in one] == [c.text for c in chunks]  # deterministic


def test_budget_counts_the_title_header(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "# A Very Long Title For This Document\n\n" + " ".join([SENT] * 20))
    for c in chunk_document(doc, max_tokens=64, overlap=8):
        assert c.n_tokens <= 64
        assert c.embedding_text().startswith("A Very Long Title For This Document\n")


def test_sentence_split_keeps_inline_math_and_abbreviations() -> None:
    text = "Use $x = 1. Then$ compute e.g. the sum. Next step. Done!"
    spans = [text[a:b] for a, b in split_sentences(text)]
    assert spans == ["Use $x = 1. Then$ compute e.g. the sum.", "Next step.", "Done!"]


def test_labels() -> None:
    assert section_label("Fractions", "Fractions > Adding") == "Adding"
    assert section_label("Fractions", "Fractions") == ""
    assert section_label("Notes", "Unit 1 > Ratios") == "Unit 1 > Ratios"
    assert embedding_text("Fractions", "Fractions > Adding", "body") == "Fractions > Adding\nbody"
    assert embedding_text("Fractions", "", "body") == "Fractions\nbody"


_word = st.sampled_from(
    "fraction numerator denominator add the of $x$ 3/4 = + ratio percent. cloud rain. sum!".split()
)
_para = st.lists(_word, min_size=1, max_size=60).map(" ".join)
_block = st.one_of(
    _para,
    _para.map(lambda p: "- " + p),
    _para.map(lambda p: "| " + p + " |"),
    _para.map(lambda p: "## " + p[:40]),
    _para.map(lambda p: "$$\n" + p + "\n$$"),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blocks=st.lists(_block, min_size=1, max_size=12), budget=st.integers(24, 120))
@example(blocks=["## fraction $x$ $x$ $x$ $x$ fraction $x$", "fraction"], budget=24)
def test_chunk_invariants(tmp_path: Path, blocks: list[str], budget: int) -> None:
    text = "# Doc\n\nIntro words.\n\n" + "\n\n".join(blocks) + "\n"
    f = tmp_path / "prop.md"
    f.write_text(text, encoding="utf-8")
    doc = load_document(f)
    chunks = chunk_document(doc, max_tokens=budget, overlap=budget // 5)
    content = [b for b in doc.blocks if b.kind != "heading"]
    assert chunks, text
    for c in chunks:
        assert doc.text[c.char_start : c.char_end] == c.text
        # the header (title > section) is part of the budget, but a chunk keeps at least 8
        # tokens of text when a long heading leaves less (chunk_document's floor); separators
        # may add a token or two
        (header,) = approx_token_counts([embedding_text(doc.title, c.section, "")])
        assert c.n_tokens <= header + 1 + max(8, budget - header - 1) + 2
        assert c.text.strip() == c.text
    # every content character is in some chunk
    for b in content:
        for pos in (b.start, b.end - 1):
            assert any(c.char_start <= pos < c.char_end for c in chunks)
    # sections never mix: no heading starts inside a chunk (only at its very start)
    for c in chunks:
        for h in doc.blocks:
            if h.kind == "heading":
                assert not (c.char_start < h.start < c.char_end), (c.text, h)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
