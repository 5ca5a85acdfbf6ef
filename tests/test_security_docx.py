"""Zip bombs in .docx files (issue 16 V5, docs/reliability.md "Attacks tried"): a small file that
unpacks to megabytes of XML, one with thousands of parts, one whose parts add up past the limit.
Each is refused before anything is unpacked, with a clear error for that file alone.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from knowledge_base.errors import LoadError
from knowledge_base.loaders import docx as docx_loader
from knowledge_base.loaders import load_document

PARAGRAPH = "<w:p><w:r><w:t>Leaves make food from light.</w:t></w:r></w:p>"


def make_docx(paragraphs: int = 0, extra: dict[str, bytes] | None = None) -> bytes:
    """A real .docx (python-docx), with ``paragraphs`` more paragraphs in its body and ``extra``
    parts added to the zip."""
    import docx

    buf = io.BytesIO()
    d = docx.Document()
    d.add_heading("Leaves", 1)
    d.add_paragraph("Leaves make food from light.")
    d.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "word/document.xml" and paragraphs:
                data = data.replace(b"<w:sectPr", PARAGRAPH.encode() * paragraphs + b"<w:sectPr", 1)
            z.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return out.getvalue()


def test_a_normal_docx_still_loads() -> None:
    doc = load_document(data=make_docx(paragraphs=50), name="leaves.docx")
    assert "Leaves make food" in doc.text


def test_a_small_docx_that_unpacks_to_megabytes_is_refused() -> None:
    bomb = make_docx(paragraphs=200_000)  # ~12 MB of XML
    assert len(bomb) < 200_000
    with pytest.raises(LoadError, match=r"compressed \d+ to 1.*zip bomb") as e:
        load_document(data=bomb, name="bomb.docx")
    assert e.value.path == "bomb.docx"


def test_a_docx_with_thousands_of_parts_is_refused() -> None:
    parts = {f"word/media/x{i}.bin": b"" for i in range(docx_loader.MAX_ZIP_MEMBERS + 1)}
    with pytest.raises(LoadError, match="parts inside, over the"):
        load_document(data=make_docx(extra=parts), name="many.docx")


def test_parts_that_add_up_past_the_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docx_loader, "MAX_UNZIPPED_BYTES", 3 * 2**20)  # the bare docx is 0.8 MB
    picture = os.urandom(3 * 2**20 // 2)  # does not compress: no ratio to catch
    ok = make_docx(extra={"word/media/a.png": picture})
    assert "Leaves" in load_document(data=ok, name="one.docx").text
    big = make_docx(extra={"word/media/a.png": picture, "word/media/b.png": picture})
    with pytest.raises(LoadError, match="unpacks to 4 MB, over the 3 MB limit"):
        load_document(data=big, name="two.docx")


def test_one_xml_part_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docx_loader, "MAX_XML_BYTES", 64 * 1024)
    with pytest.raises(LoadError, match=r"word/document.xml\), over the 0 MB limit"):
        load_document(data=make_docx(paragraphs=2000), name="long.docx")


def test_the_course_gets_a_per_file_error_and_the_other_files(tmp_path: Path) -> None:
    from knowledge_base import KnowledgeBase
    from knowledge_base.testing import HashEmbedder

    kb = KnowledgeBase.open(tmp_path / "kb", HashEmbedder(), show_progress=False)
    report = kb.add(
        [("bomb.docx", make_docx(paragraphs=200_000)), ("leaves.docx", make_docx())],
        collection="default",
    )
    rows = {f.path: f for f in report.files}
    assert rows["bomb.docx"].status == "error" and "zip bomb" in rows["bomb.docx"].message
    assert rows["leaves.docx"].status == "added"
    assert [d.name for d in kb.list_documents("default")] == ["leaves.docx"]
