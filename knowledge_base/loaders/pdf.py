"""PDF -> blocks with page numbers (pypdf): bullets, headers/footers and page numbers
handled, the outline used for headings.
"""

from __future__ import annotations

import io
import logging
import re

from knowledge_base.errors import LoadError
from knowledge_base.loaders.blocks import Block, BlockKind, Builder, collapse
from knowledge_base.loaders.detect import normalize_newlines

log = logging.getLogger(__name__)


# Bullet glyphs as PDF text layers spell them (fonts map "•" to odd code points).
_GLYPHS = "•◦▪‣∙·●○■□➢✓\x7f\uf0b7\uf0a7\uf076\uf0d8"
_BULLET = re.compile(rf"^\s*([{_GLYPHS}\-–*]|\(?\d{{1,3}}[.)]|\(?[a-z][.)])\s+")
_PAGE_NUMBER = re.compile(r"(?i)^\s*(page\s+)?\d{1,4}(\s+(of|/)\s+\d{1,4})?\s*$")
_SENT_END = re.compile(r"[.!?:;]['\")\]]?$")


def parse_pdf(data: bytes, name: str) -> tuple[str, list[Block], str, int]:
    """PDF text layer -> blocks with page numbers; headings from the outline (bookmarks)."""
    import pypdf
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            ok: object
            try:
                ok = reader.decrypt("")
            except Exception:  # noqa: BLE001 - pypdf raises several types for bad crypto
                ok = 0
            if not ok:
                raise LoadError(
                    name, "is password-protected; remove the password (print to PDF) and re-add it"
                )
        n_pages = len(reader.pages)
        page_texts = []
        for page in reader.pages:
            try:
                page_texts.append(page.extract_text() or "")
            except Exception as e:  # noqa: BLE001 - damaged content streams
                log.warning("%s: cannot extract text from a page (%s)", name, e)
                page_texts.append("")
        outline = _pdf_outline(reader)
        meta_title = ""
        try:
            meta_title = (reader.metadata.title or "") if reader.metadata else ""
        except Exception:  # noqa: BLE001
            meta_title = ""
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as e:
        raise LoadError(name, f"is not a readable PDF (damaged or truncated: {e})") from None
    except Exception as e:  # noqa: BLE001 - pypdf has many failure modes on broken files
        raise LoadError(name, f"is not a readable PDF ({type(e).__name__}: {e})") from None
    if n_pages == 0:
        raise LoadError(name, "is a PDF with no pages")
    if not any(t.strip() for t in page_texts):
        raise LoadError(
            name,
            f"has no text layer ({n_pages} page(s) of images, e.g. a scan); "
            "run OCR on it first (e.g. ocrmypdf) and add the result",
        )
    b = Builder()
    by_page: dict[int, list[tuple[int, str]]] = {}
    for level, heading, page_no in outline:
        by_page.setdefault(page_no, []).append((level, heading))
    for pno, raw in enumerate(page_texts, start=1):
        headings = list(by_page.get(pno, []))
        lines = [ln.rstrip() for ln in normalize_newlines(raw).split("\n")]
        # Running page numbers ("12", "Page 3 of 9") at the top or bottom of a page.
        while lines and (not lines[-1].strip() or _PAGE_NUMBER.match(lines[-1])):
            lines.pop()
        while lines and (not lines[0].strip() or _PAGE_NUMBER.match(lines[0])):
            lines.pop(0)
        # Outline headings found on this page are emitted where their line is.
        line_heading: dict[int, tuple[int, str]] = {}
        for level, heading in headings:
            key = _norm_key(heading)
            for k, ln in enumerate(lines):
                if k not in line_heading and _norm_key(ln) == key:
                    line_heading[k] = (level, heading)
                    break
            else:
                b.add("heading", heading, level=level, page=pno)
        _pdf_page_blocks(b, lines, line_heading, pno)
    title = meta_title.strip()
    if not title or re.match(r"(?i)^(untitled|microsoft word - |document\d*$)", title):
        title = outline[0][1] if outline else ""
    if not title:
        first = next((ln.strip() for ln in page_texts[0].split("\n") if ln.strip()), "")
        title = first if 0 < len(first) <= 80 else ""
    return b.text, b.blocks, title, n_pages


def _norm_key(text: str) -> str:
    return re.sub(r"\W+", "", text).lower()


def _pdf_outline(reader: object) -> list[tuple[int, str, int]]:
    """(level, title, page) for each bookmark, in order."""
    out: list[tuple[int, str, int]] = []

    def walk(items: object, level: int) -> None:
        for item in items:  # type: ignore[attr-defined]
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(item) + 1  # type: ignore[attr-defined]
                title = str(item.title).strip()
            except Exception:  # noqa: BLE001
                continue
            if title:
                out.append((level, title, page))

    try:
        walk(reader.outline, 1)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a broken outline just means no headings
        return []
    return out


def _pdf_page_blocks(
    b: Builder, lines: list[str], line_heading: dict[int, tuple[int, str]], page: int
) -> None:
    """Group a page's text lines into paragraphs and list items (pypdf gives lines only)."""
    width = max((len(ln) for ln in lines), default=0)
    cur: list[str] = []
    cur_kind: BlockKind = "paragraph"

    def flush() -> None:
        nonlocal cur, cur_kind
        if cur:
            text = cur[0]
            for ln in cur[1:]:
                if text.endswith("-") and ln[:1].islower():
                    text = text[:-1] + ln
                else:
                    text = text + " " + ln
            b.add(cur_kind, collapse(text), page=page)
        cur = []
        cur_kind = "paragraph"

    for k, raw in enumerate(lines):
        ln = raw.strip()
        if k in line_heading:
            flush()
            level, heading = line_heading[k]
            b.add("heading", heading, level=level, page=page)
            continue
        if not ln:
            flush()
            continue
        if _BULLET.match(ln):
            flush()
            cur_kind = "list_item"
            cur = [re.sub(r"^[\x7f\uf0b7\uf0a7\uf076\uf0d8]", "•", ln)]
            continue
        if cur:
            prev = cur[-1]
            short_prev = len(prev) < 0.7 * width
            if _SENT_END.search(prev) and short_prev:
                flush()
        cur.append(ln)
    flush()
