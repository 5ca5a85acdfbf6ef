"""Word .docx -> blocks (python-docx): heading styles, lists, tables, math."""

from __future__ import annotations

import io
import re
from typing import Any

from knowledge_base.errors import LoadError
from knowledge_base.loaders.blocks import Block, BlockKind, Builder, collapse

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_M = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"

# Zip bombs (issue 16, V5): a 31 KB .docx unpacked to hundreds of MB of XML and cost a minute of
# CPU. A .docx is read only when its zip directory keeps within these (real documents, pictures
# included, are far inside them). Python's zipfile stops a member at its declared size, so the
# declared sizes bound what is unpacked.
MAX_ZIP_MEMBERS = 2000
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024  # all members together
MAX_XML_BYTES = 32 * 1024 * 1024  # one XML part (the document's text is one)
MAX_RATIO = 100  # unpacked / packed, for members over RATIO_FLOOR
RATIO_FLOOR = 1024 * 1024


def check_zip(data: bytes, name: str) -> None:
    """Refuse a zip-based file that would unpack to too much: LoadError with the limit."""
    import zipfile

    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise LoadError(name, f"is not a readable .docx file ({e})") from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise LoadError(
            name,
            f"has {len(infos)} parts inside, over the {MAX_ZIP_MEMBERS} a document may have; "
            "it looks like a zip bomb, not a Word document",
        )
    total = sum(i.file_size for i in infos)
    if total > MAX_UNZIPPED_BYTES:
        raise LoadError(
            name,
            f"unpacks to {total / 2**20:.0f} MB, over the {MAX_UNZIPPED_BYTES / 2**20:.0f} MB "
            "limit for a .docx; split the document",
        )
    for i in infos:
        if i.filename.lower().endswith((".xml", ".rels")) and i.file_size > MAX_XML_BYTES:
            raise LoadError(
                name,
                f"has a {i.file_size / 2**20:.0f} MB part ({i.filename}), over the "
                f"{MAX_XML_BYTES / 2**20:.0f} MB limit for one part of a .docx; split the document",
            )
        if i.file_size > RATIO_FLOOR and i.file_size > MAX_RATIO * max(1, i.compress_size):
            raise LoadError(
                name,
                f"has a part ({i.filename}) compressed {i.file_size // max(1, i.compress_size)} "
                f"to 1, over the {MAX_RATIO} to 1 a document has; it looks like a zip bomb",
            )


def parse_docx(data: bytes, name: str) -> tuple[str, list[Block], str]:
    """Word .docx -> blocks: ``Heading N`` / ``Title`` styles become headings, list paragraphs
    list items, table rows table rows; page numbers where the file records page breaks.

    The zip is checked first (``check_zip``): a zip bomb is refused before anything is unpacked.
    """
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    check_zip(data, name)
    try:
        d = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError) as e:
        raise LoadError(name, f"is not a readable .docx file ({e})") from None
    except Exception as e:  # noqa: BLE001 - lxml/zip errors on damaged files
        raise LoadError(name, f"is not a readable .docx file ({type(e).__name__}: {e})") from None
    try:
        return _docx_blocks(d)
    except Exception as e:  # noqa: BLE001 - a well-formed zip whose XML is not a Word document
        raise LoadError(name, f"is not a readable .docx file ({type(e).__name__}: {e})") from None


def _docx_blocks(d: Any) -> tuple[str, list[Block], str]:
    body = d.element.body
    has_breaks = any(
        el.tag == f"{_W}lastRenderedPageBreak"
        or (el.tag == f"{_W}br" and el.get(f"{_W}type") == "page")
        or el.tag == f"{_W}pageBreakBefore"
        for el in body.iter()
    )
    page = 1 if has_breaks else None
    b = Builder()
    title = ""
    try:
        title = d.core_properties.title or ""
    except Exception:  # noqa: BLE001
        title = ""
    styles = {s.style_id: s.name for s in d.styles if getattr(s, "style_id", None)}
    for el in body.iterchildren():
        if el.tag == f"{_W}p":
            text, breaks_before, breaks_after = _docx_paragraph_text(el)
            if page is not None:
                page += breaks_before
            style = _docx_style(el, styles)
            kind: BlockKind = "paragraph"
            level = 0
            hm = re.match(r"(?i)^heading\s*(\d)$", style)
            if style.lower() == "title":
                kind, level = "heading", 1
                title = title or collapse(text)
            elif hm:
                kind, level = "heading", int(hm.group(1))
            elif style.lower().startswith("list") or el.find(f"{_W}pPr/{_W}numPr") is not None:
                kind = "list_item"
            elif el.find(f".//{_M}oMathPara") is not None and not re.search(r"[A-Za-z]{4,}", text):
                kind = "math"
            b.add(kind, collapse(text), level=level, page=page)
            if page is not None:
                page += breaks_after
        elif el.tag == f"{_W}tbl":
            for row in el.iter(f"{_W}tr"):
                cells: list[str] = []
                for tc in row.iter(f"{_W}tc"):
                    ctext = " ".join(_docx_paragraph_text(p)[0] for p in tc.iter(f"{_W}p")).strip()
                    if not cells or cells[-1] != ctext or not ctext:
                        cells.append(collapse(ctext))
                if any(cells):
                    b.add("table_row", "| " + " | ".join(cells) + " |", page=page)
    if not title:
        first = next((bl for bl in b.blocks if bl.kind == "heading" and bl.level == 1), None)
        title = first.heading if first else ""
    return b.text, b.blocks, title


def _docx_style(p: object, styles: dict[str, str]) -> str:
    ps = p.find(f"{_W}pPr/{_W}pStyle")  # type: ignore[attr-defined]
    if ps is None:
        return ""
    sid = ps.get(f"{_W}val", "")
    return styles.get(sid, sid)


def _docx_paragraph_text(p: object) -> tuple[str, int, int]:
    """Text of a paragraph including math (``m:t``), and page breaks before/after its text."""
    parts: list[str] = []
    before = after = 0
    seen_text = False
    ppr = p.find(f"{_W}pPr")  # type: ignore[attr-defined]
    if ppr is not None and ppr.find(f"{_W}pageBreakBefore") is not None:
        before += 1
    for el in p.iter():  # type: ignore[attr-defined]
        tag = el.tag
        if tag in (f"{_W}t", f"{_M}t"):
            if el.text:
                parts.append(el.text)
                seen_text = True
        elif tag == f"{_W}tab":
            parts.append("\t")
        elif tag in (f"{_W}br", f"{_W}cr"):
            if el.get(f"{_W}type") == "page":
                if seen_text:
                    after += 1
                else:
                    before += 1
            else:
                parts.append("\n")
        elif tag == f"{_W}lastRenderedPageBreak":
            if seen_text:
                after += 0  # a rendered break inside a paragraph: page changes mid-paragraph
            else:
                before += 1
    return "".join(parts), before, after
