"""Word .docx -> blocks (python-docx): heading styles, lists, tables, math."""

from __future__ import annotations

import io
import re
from typing import Any

from knowledge_base.errors import LoadError
from knowledge_base.loaders.blocks import Block, BlockKind, Builder, collapse

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_M = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"


def parse_docx(data: bytes, name: str) -> tuple[str, list[Block], str]:
    """Word .docx -> blocks: ``Heading N`` / ``Title`` styles become headings, list paragraphs
    list items, table rows table rows; page numbers where the file records page breaks."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError

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
