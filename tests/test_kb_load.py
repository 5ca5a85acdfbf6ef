"""Loaders: each format from real small files made here, type sniffing, and bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from knowledge_base.errors import LoadError
from knowledge_base.load import detect_format, document_id, iter_files, load_document

# ----------------------------------------------------------------------------- file makers


def make_pdf(path: Path, pages: list[tuple[str, list[str]]], *, title: str = "") -> Path:
    """A real PDF: one page per (heading, lines), each heading also an outline entry."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    if title:
        c.setTitle(title)
    for n, (heading, lines) in enumerate(pages):
        key = f"p{n}"
        c.bookmarkPage(key)
        c.addOutlineEntry(heading, key, level=0)
        y = 780
        c.setFont("Helvetica-Bold", 16)
        c.drawString(72, y, heading)
        y -= 28
        c.setFont("Helvetica", 11)
        for line in lines:
            if line:
                c.drawString(72, y, line)
            y -= 15
        c.drawString(290, 40, str(n + 1))  # a page number in the footer
        c.showPage()
    c.save()
    return path


def make_image_pdf(path: Path) -> Path:
    """A PDF whose page has only shapes: no text layer (like a scan)."""
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path))
    c.rect(100, 100, 300, 400, fill=1)
    c.circle(250, 600, 50)
    c.showPage()
    c.save()
    return path


def make_encrypted_pdf(src: Path, dst: Path, password: str = "s3cret") -> Path:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=str(src))
    writer.encrypt(user_password=password, owner_password=password)
    with open(dst, "wb") as f:
        writer.write(f)
    return dst


def make_docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    d.core_properties.title = "Ratios and Rates"
    d.add_heading("Ratios and Rates", level=1)
    d.add_paragraph("A ratio compares two quantities by division.")
    d.add_heading("Unit rates", level=2)
    d.add_paragraph("A unit rate is a rate for one unit, such as kilometres per hour.")
    d.add_paragraph("Divide the first quantity by the second.", style="List Number")
    d.add_paragraph("Write the units of the answer.", style="List Number")
    t = d.add_table(rows=2, cols=3)
    for j, v in enumerate(["distance", "time", "speed"]):
        t.cell(0, j).text = v
    for j, v in enumerate(["150 km", "3 h", "50 km/h"]):
        t.cell(1, j).text = v
    d.add_page_break()
    d.add_heading("Percents", level=2)
    d.add_paragraph("Percent means per hundred.")
    d.save(str(path))
    return path


PDF_PAGES = [
    (
        "Evaporation",
        [
            "Heat from the Sun turns liquid water in lakes and oceans into",
            "water vapour that rises into the air.",
            "",
            "Wind and warm weather make evaporation faster.",
        ],
    ),
    (
        "Condensation",
        [
            "Rising vapour cools and condenses into droplets that form clouds.",
            "• droplets collide and grow",
            "• heavy drops fall as rain",
        ],
    ),
]

# ----------------------------------------------------------------------------- formats


def test_markdown_blocks_headings_and_offsets(tmp_path: Path) -> None:
    src = (
        "# Fractions\n\nA fraction names a part\nof a whole.\n\n## Adding fractions\n\n"
        "1. Find a common denominator.\n2. Add the numerators\n   and keep the denominator.\n\n"
        "$$\n\\frac{1}{2} + \\frac{1}{3} = \\frac{5}{6}\n$$\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode here\n```\n"
    )
    f = tmp_path / "fractions.md"
    f.write_text(src, encoding="utf-8")
    doc = load_document(f)
    assert doc.format == "md" and doc.title == "Fractions"
    assert doc.text == src  # offsets point into the file itself
    kinds = [(b.kind, doc.text[b.start : b.end]) for b in doc.blocks]
    assert kinds == [
        ("heading", "# Fractions"),
        ("paragraph", "A fraction names a part\nof a whole."),
        ("heading", "## Adding fractions"),
        ("list_item", "1. Find a common denominator."),
        ("list_item", "2. Add the numerators\n   and keep the denominator."),
        ("math", "$$\n\\frac{1}{2} + \\frac{1}{3} = \\frac{5}{6}\n$$"),
        ("table_row", "| a | b |\n|---|---|"),
        ("table_row", "| 1 | 2 |"),
        ("code", "```\ncode here\n```"),
    ]
    assert [b.heading for b in doc.blocks if b.kind == "heading"] == [
        "Fractions",
        "Adding fractions",
    ]
    assert [b.level for b in doc.blocks if b.kind == "heading"] == [1, 2]


def test_markdown_front_matter_setext_and_crlf(tmp_path: Path) -> None:
    f = tmp_path / "notes.md"
    f.write_bytes(b"---\r\ntitle: My Notes\r\n---\r\nIntro\r\n=====\r\n\r\nBody text.\r\n")
    doc = load_document(f)
    assert doc.title == "My Notes"
    assert "\r" not in doc.text
    assert [(b.kind, b.heading) for b in doc.blocks] == [("heading", "Intro"), ("paragraph", "")]


def test_plain_text_title_paragraphs_and_lists(tmp_path: Path) -> None:
    f = tmp_path / "water.txt"
    f.write_text(
        "The Water Cycle\n\nWater moves between sea,\nair and land.\n\n- evaporation\n- rain\n",
        encoding="utf-8",
    )
    doc = load_document(f)
    assert doc.format == "txt" and doc.title == "The Water Cycle"
    assert [b.kind for b in doc.blocks] == ["heading", "paragraph", "list_item", "list_item"]


def test_txt_without_title_line_uses_file_name(tmp_path: Path) -> None:
    f = tmp_path / "long-division_notes.txt"
    f.write_text("Divide, multiply, subtract, bring down.\nRepeat.\n", encoding="utf-8")
    doc = load_document(f)
    assert doc.title == "Long division notes"
    assert [b.kind for b in doc.blocks] == ["paragraph"]


def test_pdf_two_pages_keeps_page_numbers_and_outline_headings(tmp_path: Path) -> None:
    f = make_pdf(tmp_path / "water.pdf", PDF_PAGES, title="Water Cycle Notes")
    doc = load_document(f)
    assert doc.format == "pdf" and doc.pages == 2 and doc.title == "Water Cycle Notes"
    blocks = [(b.kind, b.page, doc.text[b.start : b.end]) for b in doc.blocks]
    assert blocks[0] == ("heading", 1, "Evaporation")
    assert (
        "paragraph",
        1,
        "Heat from the Sun turns liquid water in lakes and oceans into water vapour that rises "
        "into the air.",
    ) in blocks
    assert ("heading", 2, "Condensation") in blocks
    assert ("list_item", 2, "• heavy drops fall as rain") in blocks
    # the footer page numbers are not text of the document
    assert not any(t.strip() in ("1", "2") for _, _, t in blocks)
    assert {b.page for b in doc.blocks} == {1, 2}


def test_docx_headings_lists_tables_and_page_breaks(tmp_path: Path) -> None:
    doc = load_document(make_docx(tmp_path / "ratios.docx"))
    assert doc.format == "docx" and doc.title == "Ratios and Rates"
    got = [(b.kind, b.level, b.page, doc.text[b.start : b.end]) for b in doc.blocks]
    assert got[0] == ("heading", 1, 1, "Ratios and Rates")
    assert ("heading", 2, 1, "Unit rates") in got
    assert ("list_item", 0, 1, "Divide the first quantity by the second.") in got
    assert ("table_row", 0, 1, "| distance | time | speed |") in got
    assert ("table_row", 0, 1, "| 150 km | 3 h | 50 km/h |") in got
    assert ("heading", 2, 2, "Percents") in got  # after the page break
    assert ("paragraph", 0, 2, "Percent means per hundred.") in got


def test_html_main_text_only_with_headings_lists_tables(tmp_path: Path) -> None:
    f = tmp_path / "photo.html"
    f.write_text(
        "<!DOCTYPE html><html><head><title>Photosynthesis</title><style>p{}</style></head>"
        "<body><nav><a href='/'>Home</a> Menu</nav><header>Site banner</header><main>"
        "<h1>Photosynthesis</h1><p>Plants make <em>sugar</em> from light.</p>"
        "<h2>Inputs</h2><ul><li>Water<ul><li>from the roots</li></ul></li><li>Carbon dioxide</li></ul>"
        "<table><tr><th>in</th><th>out</th></tr><tr><td>CO2</td><td>O2</td></tr></table>"
        "<p>Formula: <math alttext='6CO_2 + 6H_2O'><mi>x</mi></math> here.</p>"
        "<script>var tracking = 1;</script></main><footer>copyright notice</footer></body></html>",
        encoding="utf-8",
    )
    doc = load_document(f)
    assert doc.format == "html" and doc.title == "Photosynthesis"
    got = [(b.kind, doc.text[b.start : b.end]) for b in doc.blocks]
    assert got == [
        ("heading", "Photosynthesis"),
        ("paragraph", "Plants make sugar from light."),
        ("heading", "Inputs"),
        ("list_item", "Water"),
        ("list_item", "from the roots"),
        ("list_item", "Carbon dioxide"),
        ("table_row", "| in | out |"),
        ("table_row", "| CO2 | O2 |"),
        ("paragraph", "Formula: 6CO_2 + 6H_2O here."),
    ]
    for junk in ("Home", "Site banner", "tracking", "copyright"):
        assert junk not in doc.text


def test_type_detected_from_content_not_only_extension(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", PDF_PAGES[:1]).read_bytes()
    (tmp_path / "really-a-pdf.txt").write_bytes(pdf)
    assert load_document(tmp_path / "really-a-pdf.txt").format == "pdf"
    docx_bytes = make_docx(tmp_path / "r.docx").read_bytes()
    (tmp_path / "upload.bin").write_bytes(docx_bytes)
    assert load_document(tmp_path / "upload.bin").format == "docx"
    (tmp_path / "page.txt").write_text("<!doctype html><html><body><p>Hi there</p></body></html>")
    assert load_document(tmp_path / "page.txt").format == "html"
    assert detect_format(b"# Title\n\ntext", "notes") == "md"
    assert detect_format(b"just some words", "notes") == "txt"


def test_uploaded_bytes_get_an_upload_source(tmp_path: Path) -> None:
    doc = load_document(data=b"# T\n\nbody", name="notes.md")
    assert doc.source == "upload:notes.md" and doc.name == "notes.md"


def test_doc_id_is_stable_and_depends_on_content_name_and_collection(tmp_path: Path) -> None:
    a = tmp_path / "a" / "fractions.md"
    b = tmp_path / "b" / "fractions.md"
    for p in (a, b):
        p.parent.mkdir()
        p.write_text("# Fractions\n\nHalf is one of two equal parts.\n", encoding="utf-8")
    da, db = load_document(a), load_document(b)
    assert da.doc_id == db.doc_id  # same name and bytes: same id wherever the file lives
    assert da.doc_id.startswith("fractions-")
    assert load_document(a, collection="other").doc_id != da.doc_id
    a.write_text("# Fractions\n\nChanged.\n", encoding="utf-8")
    assert load_document(a).doc_id != da.doc_id
    assert document_id("c", "x.md", "0" * 64) == document_id("c", "x.md", "0" * 64)


def test_directory_walk_skips_hidden_and_unsupported(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    for name in ["b.md", "a.txt", "sub/c.html", ".hidden.md", ".git/x.md", "qa.jsonl", "pic.png"]:
        (tmp_path / name).write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in iter_files(tmp_path)] == [
        "a.txt",
        "b.md",
        "sub/c.html",
    ]


# ----------------------------------------------------------------------------- bad input


def _reason(path: Path, **kw: object) -> str:
    with pytest.raises(LoadError) as e:
        load_document(path, **kw)  # type: ignore[arg-type]
    assert str(path.name) in str(e.value)
    return e.value.reason


def test_bad_inputs_raise_clear_load_errors(tmp_path: Path) -> None:
    good = make_pdf(tmp_path / "good.pdf", PDF_PAGES)

    corrupt = tmp_path / "corrupt.pdf"
    corrupt.write_bytes(good.read_bytes()[:300])
    assert "not a readable PDF" in _reason(corrupt)

    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 4)
    assert "not a readable PDF" in _reason(garbage) or "no text layer" in _reason(garbage)

    locked = make_encrypted_pdf(good, tmp_path / "locked.pdf")
    assert "password-protected" in _reason(locked)

    scan = make_image_pdf(tmp_path / "scan.pdf")
    assert "no text layer" in _reason(scan)

    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    assert "empty" in _reason(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text("   \n\n  ")
    assert "empty" in _reason(blank)

    binary = tmp_path / "binary.md"
    binary.write_bytes(bytes(range(256)) * 8)
    assert "binary" in _reason(binary)
    png = tmp_path / "image.md"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    assert "PNG image" in _reason(png)

    latin = tmp_path / "latin1.txt"
    latin.write_bytes("Température: 20 °C, café".encode("latin-1"))
    r = _reason(latin)
    assert "not UTF-8" in r and "re-save it as UTF-8" in r

    big = tmp_path / "big.md"
    big.write_text("# Big\n\n" + "word " * 5000)
    r = _reason(big, max_bytes=10_000)
    assert "over the" in r and "kb.max_file_mb" in r

    assert "does not exist" in _reason(tmp_path / "missing.md")

    fake_docx = tmp_path / "fake.docx"
    fake_docx.write_text("plain words in a file named docx")
    assert "not a DOCX" in _reason(fake_docx)

    headings_only = tmp_path / "headings.md"
    headings_only.write_text("# Title\n\n## Section\n")
    assert "no text" in _reason(headings_only)


def test_utf16_with_bom_is_text(tmp_path: Path) -> None:
    f = tmp_path / "u16.txt"
    f.write_bytes("Plants need light.".encode("utf-16"))
    assert load_document(f).text == "Plants need light."


def test_pdf_made_in_memory_by_pypdf_roundtrip() -> None:
    # A PDF without text (pypdf blank page) from bytes: a clear error, not a crash.
    import pypdf

    w = pypdf.PdfWriter()
    w.add_blank_page(200, 200)
    buf = io.BytesIO()
    w.write(buf)
    with pytest.raises(LoadError, match="no text layer"):
        load_document(data=buf.getvalue(), name="blank.pdf")
