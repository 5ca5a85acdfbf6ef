"""Load documents: .md, .txt, .pdf, .docx, .html -> a ``Document`` made of structural blocks.

The file type is detected from the content first (PDF and zip magic, HTML markup, binary
bytes) and from the extension second, so a PDF named ``.txt`` still loads as a PDF and a
binary file named ``.md`` is refused. Every loader produces the document's plain ``text`` plus
``blocks`` (heading, paragraph, list item, table row, math, code) with character offsets into
that text and, for PDFs, page numbers. For Markdown and plain text the text *is* the file, so
offsets point into the file itself.

Bad input never raises anything but ``LoadError`` with the file and the reason.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from knowledge_base.errors import LoadError

log = logging.getLogger(__name__)

BlockKind = Literal["heading", "paragraph", "list_item", "table_row", "math", "code"]
Format = Literal["md", "txt", "pdf", "docx", "html"]

# Extensions picked up when a directory is walked (files named explicitly are sniffed).
EXTENSIONS: dict[str, Format] = {
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
    ".text": "txt",
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
}
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Block:
    """A structural unit of a document: ``text[start:end]`` of its ``Document``."""

    kind: BlockKind
    start: int
    end: int
    level: int = 0  # heading level (1 = top)
    page: int | None = None  # 1-based page (PDF, and docx with page breaks)
    heading: str = ""  # clean heading text (no Markdown markers)


@dataclass
class Document:
    doc_id: str
    source: str  # absolute path, or ``upload:NAME``
    name: str  # file name
    title: str
    format: Format
    text: str
    blocks: list[Block]
    content_hash: str  # sha256 of the file's bytes
    size: int  # bytes
    pages: int = 0  # page count (PDF); 0 when unknown
    meta: dict[str, str] = field(default_factory=dict)

    def block_text(self, block: Block) -> str:
        return self.text[block.start : block.end]


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def slugify(text: str, max_len: int = 40) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].strip("-") or "doc"


def document_id(collection: str, name: str, digest: str) -> str:
    """Stable id from the collection, the file name and the content hash.

    The same file content under the same name gets the same id on every machine; a changed
    file gets a new id (and replaces the old document when re-added from the same source).
    """
    h = hashlib.sha256(f"{collection}\0{name}\0{digest}".encode()).hexdigest()[:10]
    return f"{slugify(Path(name).stem, 32)}-{h}"


def humanize_stem(name: str) -> str:
    stem = Path(name).stem
    words = re.sub(r"[_\-]+", " ", stem).strip()
    return (words[:1].upper() + words[1:]) if words else name


# --------------------------------------------------------------------------- type detection

_MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "a Windows executable"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg media file"),
    (b"SQLite format 3\x00", "an SQLite database"),
]


def detect_format(data: bytes, name: str) -> Format:
    """The format of ``data``, from its content first and its name second.

    Raises ``LoadError`` for empty and binary files and for formats that are not supported.
    """
    suffix = Path(name).suffix.lower()
    if not data.strip():
        raise LoadError(name, "the file is empty; add some text or remove it from the batch")
    head = data[:8192]
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data[:4] == b"PK\x03\x04":
        import zipfile

        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except zipfile.BadZipFile as e:
            raise LoadError(name, f"looks like a damaged zip/docx file ({e})") from None
        if "word/document.xml" in names:
            return "docx"
        raise LoadError(
            name, "is a zip archive, not a Word .docx; unzip it and add the documents inside"
        )
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise LoadError(name, "is an old binary Office file (.doc); save it as .docx or PDF first")
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise LoadError(name, f"is {what}, not a text document (expected {_supported()})")
    if _looks_binary(head):
        raise LoadError(
            name,
            f"looks like a binary file, not text (despite its name); expected {_supported()}",
        )
    text_head = _sniff_text(head).lstrip("\ufeff \t\r\n").lower()
    if text_head.startswith(("<!doctype html", "<html", "<?xml")) and (
        "<html" in text_head or "<body" in text_head
    ):
        return "html"
    if suffix in EXTENSIONS and EXTENSIONS[suffix] in ("md", "txt", "html"):
        fmt = EXTENSIONS[suffix]
        if fmt == "txt" and re.match(r"<(p|div|h[1-6]|body|head|section|article)\b", text_head):
            return "html"
        return fmt
    if suffix in (".pdf", ".docx"):
        raise LoadError(
            name,
            f"has the extension {suffix} but its content is not a {suffix[1:].upper()} file "
            "(damaged, or renamed from another format)",
        )
    # Unknown extension but text content: Markdown if it has headings, else plain text.
    if re.search(r"(?m)^#{1,6} \S", _sniff_text(head)):
        return "md"
    return "txt"


def _supported() -> str:
    return ".md, .txt, .pdf, .docx or .html"


def _looks_binary(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 BOM: text
        return False
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return control > max(4, len(head) // 50)


def _sniff_text(head: bytes) -> str:
    return head.decode("utf-8", errors="replace")


def decode_text(data: bytes, name: str) -> str:
    """Bytes -> str: UTF-8 (BOM allowed) or UTF-16 with a BOM; anything else is refused.

    Guessing a legacy encoding would silently garble symbols (°, ², ½), so the message asks
    for the file to be re-saved as UTF-8 instead.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise LoadError(name, f"is not valid UTF-16 text ({e.reason})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LoadError(
            name,
            f"is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "re-save it as UTF-8 (most editors: Save As > Encoding > UTF-8)",
        ) from None


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --------------------------------------------------------------------------- entry points


def iter_files(path: Path) -> Iterator[Path]:
    """A file itself, or the supported files under a directory (sorted; hidden ones skipped)."""
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
            for f in sorted(files):
                if f.startswith(".") or f.startswith("~$"):
                    continue
                if Path(f).suffix.lower() in EXTENSIONS:
                    yield Path(root) / f
    else:
        yield path


def read_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's bytes, refusing missing, unreadable and oversized files with a clear message."""
    name = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise LoadError(name, "does not exist; check the path") from None
    except OSError as e:
        raise LoadError(name, f"cannot be read ({e.strerror})") from None
    if path.is_dir():
        raise LoadError(name, "is a directory")
    if st.st_size > max_bytes:
        raise LoadError(
            name,
            f"is {st.st_size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit "
            "(kb.max_file_mb); split the file or raise the limit, e.g. --set kb.max_file_mb=200",
        )
    try:
        return path.read_bytes()
    except OSError as e:
        raise LoadError(name, f"cannot be read ({e.strerror})") from None


def load_document(
    path: str | Path | None = None,
    *,
    data: bytes | None = None,
    name: str | None = None,
    collection: str = "default",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Document:
    """Load one file (``path``) or in-memory bytes (``data`` + ``name``, e.g. an upload)."""
    if data is None:
        if path is None:
            raise ValueError("load_document needs a path or data")
        p = Path(path).expanduser()
        data = read_file(p, max_bytes)
        source = str(p.resolve())
        name = name or p.name
    else:
        if not name:
            raise ValueError("load_document(data=...) needs a name")
        if len(data) > max_bytes:
            raise LoadError(
                name,
                f"is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit "
                "(kb.max_file_mb)",
            )
        source = str(path) if path is not None else f"upload:{name}"
    digest = content_hash(data)
    fmt = detect_format(data, name)
    parse = {"md": parse_markdown, "txt": parse_text}
    pages = 0
    meta: dict[str, str] = {}
    if fmt == "pdf":
        text, blocks, title, pages = parse_pdf(data, name)
    elif fmt == "docx":
        text, blocks, title = parse_docx(data, name)
    else:
        if fmt == "html":
            text, blocks, title = parse_html(data, name)
        else:
            text, blocks, title = parse[fmt](_normalize_newlines(decode_text(data, name)))
    if not blocks or not any(b.kind != "heading" for b in blocks):
        raise LoadError(name, "contains no text to index")
    # A lone surrogate (a broken PDF font map can yield one) cannot be stored as UTF-8: each
    # becomes U+FFFD, one character for one, so block offsets stay valid.
    text = _SURROGATE.sub("\ufffd", text)
    blocks = [
        replace(b, heading=_SURROGATE.sub("\ufffd", b.heading)) if b.heading else b for b in blocks
    ]
    title = _SURROGATE.sub("\ufffd", (title or "").strip()) or humanize_stem(name)
    if fmt == "pdf" and pages:
        meta["pages"] = str(pages)
    return Document(
        doc_id=document_id(collection, name, digest),
        source=source,
        name=name,
        title=title,
        format=fmt,
        text=text,
        blocks=blocks,
        content_hash=digest,
        size=len(data),
        pages=pages,
        meta=meta,
    )


# --------------------------------------------------------------------------- markdown / text

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_ATX_EMPTY = re.compile(r"^ {0,3}(#{1,6})[ \t]*$")
_LIST = re.compile(r"^([ \t]*)([-*+•]|\d{1,3}[.)])[ \t]+\S")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HR = re.compile(r"^ {0,3}([-*_])([ \t]*\1){2,}[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def clean_inline(text: str) -> str:
    """Heading text without Markdown emphasis, links and trailing colons."""
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__|\*|_|`)(.+?)\1", r"\2", text)
    return re.sub(r"\s+", " ", text).strip()


def _lines(text: str) -> list[tuple[int, int, str]]:
    """(start, end-without-newline, line) for each line."""
    out = []
    pos = 0
    for line in text.split("\n"):
        out.append((pos, pos + len(line), line))
        pos += len(line) + 1
    return out


def parse_markdown(text: str) -> tuple[str, list[Block], str]:
    """Markdown -> blocks with offsets into ``text`` (which is returned unchanged)."""
    lines = _lines(text)
    blocks: list[Block] = []
    title = ""
    i = 0
    n = len(lines)
    # YAML front matter: skipped, but its title is used.
    if n and lines[0][2].strip() == "---":
        for j in range(1, min(n, 60)):
            if lines[j][2].strip() in ("---", "..."):
                for _, _, ln in lines[1:j]:
                    m = re.match(r"^title:\s*[\"']?(.*?)[\"']?\s*$", ln)
                    if m:
                        title = m.group(1)
                i = j + 1
                break

    para: list[tuple[int, int, str]] = []  # current paragraph lines

    def flush_para(kind: BlockKind = "paragraph") -> None:
        if para:
            first = para[0][2].lstrip()
            k: BlockKind = kind
            if kind == "paragraph" and (first.startswith("$$") or first.startswith("\\[")):
                k = "math"
            blocks.append(Block(k, para[0][0] + _indent(para[0][2]), para[-1][1]))
            para.clear()

    while i < n:
        start, end, line = lines[i]
        stripped = line.strip()
        if not stripped:
            flush_para()
            i += 1
            continue
        m = _FENCE.match(line)
        if m:
            flush_para()
            fence = m.group(1)
            j = i + 1
            while j < n and not lines[j][2].strip().startswith(fence[:3]):
                j += 1
            j = min(j, n - 1)
            blocks.append(Block("code", start, lines[j][1]))
            i = j + 1
            continue
        if stripped.startswith("$$") or stripped.startswith("\\["):
            flush_para()
            closer = "$$" if stripped.startswith("$$") else "\\]"
            rest = stripped[2:]
            j = i
            if closer not in rest:
                j = i + 1
                while j < n and closer not in lines[j][2]:
                    j += 1
                j = min(j, n - 1)
            blocks.append(Block("math", start + _indent(line), lines[j][1]))
            i = j + 1
            continue
        m = _ATX.match(line) or _ATX_EMPTY.match(line)
        if m:
            flush_para()
            level = len(m.group(1))
            heading = clean_inline(m.group(2)) if m.lastindex and m.lastindex >= 2 else ""
            if heading:
                blocks.append(Block("heading", start + _indent(line), end, level, heading=heading))
                if level == 1 and not title:
                    title = heading
            i += 1
            continue
        if (
            para
            and len(para) == 1
            and _SETEXT.match(line)
            and not _LIST.match(para[0][2])
            and not para[0][2].lstrip().startswith(("|", ">"))
        ):
            level = 1 if stripped.startswith("=") else 2
            heading = clean_inline(para[0][2])
            blocks.append(
                Block("heading", para[0][0] + _indent(para[0][2]), end, level, heading=heading)
            )
            if level == 1 and not title:
                title = heading
            para.clear()
            i += 1
            continue
        if _HR.match(line):
            flush_para()
            i += 1
            continue
        if stripped.startswith("|"):
            flush_para()
            # A table row; the header row absorbs the |---| separator under it.
            j = i
            if i + 1 < n and _TABLE_SEP.match(lines[i + 1][2]):
                j = i + 1
            blocks.append(Block("table_row", start + _indent(line), lines[j][1]))
            i = j + 1
            continue
        lm = _LIST.match(line)
        if lm:
            flush_para()
            indent = len(lm.group(1).expandtabs(4))
            j = i + 1
            # Continuation lines: non-blank, not a new item/heading/table, indented or lazy.
            while j < n:
                nxt = lines[j][2]
                if not nxt.strip() or _LIST.match(nxt) or _ATX.match(nxt) or _FENCE.match(nxt):
                    break
                if nxt.strip().startswith(("|", "$$")) and len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                j += 1
            # A blank line followed by an indented paragraph still belongs to the item.
            while (
                j + 1 < n
                and not lines[j][2].strip()
                and lines[j + 1][2].strip()
                and _indent(lines[j + 1][2]) > indent + 1
                and not _LIST.match(lines[j + 1][2])
            ):
                j += 2
                while j < n and lines[j][2].strip() and not _LIST.match(lines[j][2]):
                    j += 1
            blocks.append(Block("list_item", start + _indent(line), lines[j - 1][1]))
            i = j
            continue
        if stripped.startswith(">"):
            # A block quote: one paragraph per quote (until a blank line).
            para.append((start, end, line))
            i += 1
            continue
        para.append((start, end, line))
        i += 1
    flush_para()
    return text, blocks, title


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def parse_text(text: str) -> tuple[str, list[Block], str]:
    """Plain text: paragraphs split on blank lines; list lines and underlined headings kept.

    A short first line followed by a blank line is taken as the title.
    """
    lines = _lines(text)
    blocks: list[Block] = []
    title = ""
    para: list[tuple[int, int, str]] = []

    def flush() -> None:
        if para:
            blocks.append(Block("paragraph", para[0][0] + _indent(para[0][2]), para[-1][1]))
            para.clear()

    first_text = next((k for k, ln in enumerate(lines) if ln[2].strip()), None)
    for k, (start, end, line) in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            flush()
            continue
        if para and len(para) == 1 and _SETEXT.match(line) and len(stripped) >= 3:
            level = 1 if stripped.startswith("=") else 2
            heading = para[0][2].strip()
            blocks.append(
                Block("heading", para[0][0] + _indent(para[0][2]), end, level, heading=heading)
            )
            title = title or (heading if level == 1 else "")
            para.clear()
            continue
        if (
            k == first_text
            and len(stripped) <= 100
            and (k + 1 >= len(lines) or not lines[k + 1][2].strip())
            and not stripped.endswith((".", ",", ";"))
            and not _LIST.match(line)
        ):
            blocks.append(Block("heading", start + _indent(line), end, 1, heading=stripped))
            title = stripped
            continue
        if _LIST.match(line):
            flush()
            blocks.append(Block("list_item", start + _indent(line), end))
            continue
        if blocks and blocks[-1].kind == "list_item" and not para and _indent(line) > 0:
            # indented continuation of the previous list line
            prev = blocks.pop()
            blocks.append(Block("list_item", prev.start, end))
            continue
        para.append((start, end, line))
    flush()
    return text, blocks, title


# --------------------------------------------------------------------------- built documents


class _Builder:
    """Assembles a synthetic document text (PDF, docx, HTML) block by block, with offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.blocks: list[Block] = []

    def add(
        self,
        kind: BlockKind,
        text: str,
        *,
        level: int = 0,
        page: int | None = None,
    ) -> None:
        text = text.strip()
        if not text:
            return
        if self.parts:
            self.parts.append("\n\n")
            self.pos += 2
        heading = ""
        if kind == "heading":
            heading = re.sub(r"\s+", " ", text)
            text = heading
        self.parts.append(text)
        self.blocks.append(Block(kind, self.pos, self.pos + len(text), level, page, heading))
        self.pos += len(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _collapse(text: str) -> str:
    return re.sub(r"[ \t\r\f\v\u00a0]+", " ", text.replace("\n", " ")).strip()


# --------------------------------------------------------------------------- PDF

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
    b = _Builder()
    by_page: dict[int, list[tuple[int, str]]] = {}
    for level, heading, page in outline:
        by_page.setdefault(page, []).append((level, heading))
    for pno, raw in enumerate(page_texts, start=1):
        headings = list(by_page.get(pno, []))
        lines = [ln.rstrip() for ln in _normalize_newlines(raw).split("\n")]
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
    b: _Builder, lines: list[str], line_heading: dict[int, tuple[int, str]], page: int
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
            b.add(cur_kind, _collapse(text), page=page)
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


# --------------------------------------------------------------------------- DOCX

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
    b = _Builder()
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
                title = title or _collapse(text)
            elif hm:
                kind, level = "heading", int(hm.group(1))
            elif style.lower().startswith("list") or el.find(f"{_W}pPr/{_W}numPr") is not None:
                kind = "list_item"
            elif el.find(f".//{_M}oMathPara") is not None and not re.search(r"[A-Za-z]{4,}", text):
                kind = "math"
            b.add(kind, _collapse(text), level=level, page=page)
            if page is not None:
                page += breaks_after
        elif el.tag == f"{_W}tbl":
            for row in el.iter(f"{_W}tr"):
                cells: list[str] = []
                for tc in row.iter(f"{_W}tc"):
                    ctext = " ".join(_docx_paragraph_text(p)[0] for p in tc.iter(f"{_W}p")).strip()
                    if not cells or cells[-1] != ctext or not ctext:
                        cells.append(_collapse(ctext))
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


# --------------------------------------------------------------------------- HTML

_SKIP_TAGS = {
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "canvas",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "button",
    "select",
    "head",
    "object",
    "embed",
    "video",
    "audio",
}
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_CONTAINERS = {
    "html",
    "body",
    "main",
    "article",
    "section",
    "div",
    "ul",
    "ol",
    "dl",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "blockquote",
    "figure",
    "details",
    "center",
    "hgroup",
}
_LEAVES = {"p", "dt", "dd", "figcaption", "caption", "address", "summary", "legend"}
# Containers nested deeper than this are read as one paragraph each (real pages stay far below).
MAX_HTML_DEPTH = 100


def parse_html(data: bytes, name: str) -> tuple[str, list[Block], str]:
    """HTML -> blocks of the main text: navigation, headers, footers and scripts are dropped;
    ``<main>`` or a single ``<article>`` is preferred when present."""
    import warnings

    from bs4 import BeautifulSoup, Comment, NavigableString, Tag

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        soup = BeautifulSoup(data, "html.parser")
    title = ""
    if soup.title and soup.title.string:
        title = _collapse(soup.title.string)
    root = soup.find("main")
    if root is None:
        articles = soup.find_all("article")
        root = articles[0] if len(articles) == 1 else (soup.body or soup)
    # Drop elements hidden from readers and site chrome by role. (Not ``tag.decomposed``: on a
    # live tag bs4 4.x answers it by searching the tag's whole subtree, which made deeply
    # nested pages quadratic; a decomposed tag has the flag in its own __dict__.)
    for tag in root.find_all(True):
        if "_decomposed" in vars(tag):
            continue
        role = (tag.get("role") or "").lower() if tag.attrs else ""
        if (
            tag.name in _SKIP_TAGS
            or role in ("navigation", "banner", "contentinfo", "search")
            or (tag.attrs and tag.has_attr("hidden"))
            or (tag.attrs and tag.get("aria-hidden") == "true")
        ):
            tag.decompose()
    b = _Builder()
    h1 = ""

    # Every helper below visits each node once, with an explicit stack: a hostile page may nest
    # thousands of elements (recursion would overflow; per-node ancestor walks were cubic).
    def text_of(node: Tag, skip_lists: bool = False) -> str:
        """Readable text of an element; ``skip_lists`` leaves out nested lists (of an <li>)."""
        parts: list[str] = []
        in_math = node.name == "math"  # MathML is read from its alttext (see walk)
        stack = list(reversed(node.contents))
        while stack:
            d = stack.pop()
            if isinstance(d, Comment):
                continue
            if isinstance(d, NavigableString):
                if not in_math:
                    parts.append(str(d))
                continue
            if not isinstance(d, Tag):
                continue
            if d.name == "br":
                parts.append(" ")
            elif d.name == "math":
                parts.append(f" {d.get('alttext') or d.get_text(' ')} ")
                continue
            elif skip_lists and d.name in ("ul", "ol"):
                continue
            stack.extend(reversed(d.contents))
        return _collapse("".join(parts))

    def own_lists(li: Tag) -> list[Tag]:
        """The lists nested in ``li`` itself (not in a deeper <li>), in document order."""
        out: list[Tag] = []
        stack = list(reversed(li.contents))
        while stack:
            d = stack.pop()
            if not isinstance(d, Tag) or d.name == "li":
                continue
            if d.name in ("ul", "ol"):
                out.append(d)
            stack.extend(reversed(d.contents))
        return out

    def walk(node: Tag, depth: int = 0) -> None:
        nonlocal h1
        inline: list[str] = []

        def flush() -> None:
            text = _collapse("".join(inline))
            inline.clear()
            if text:
                b.add(_para_kind(text), text)

        for child in list(node.children):
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                inline.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            tag = child.name
            if tag in _HEADINGS:
                flush()
                text = text_of(child)
                if text:
                    b.add("heading", text, level=_HEADINGS[tag])
                    if _HEADINGS[tag] == 1 and not h1:
                        h1 = text
            elif tag == "li":
                flush()
                deep = depth >= MAX_HTML_DEPTH  # then the nested lists stay in the item's text
                text = text_of(child, skip_lists=not deep)
                if text:
                    b.add("list_item", text)
                for sub in [] if deep else own_lists(child):
                    walk(sub, depth + 1)
            elif tag == "tr":
                flush()
                cells = [text_of(c) for c in child.find_all(["td", "th"], recursive=False)]
                if any(cells):
                    b.add("table_row", "| " + " | ".join(cells) + " |")
            elif tag == "pre":
                flush()
                b.add("code", child.get_text())
            elif tag == "math" and child.get("display") == "block":
                flush()
                b.add("math", child.get("alttext") or text_of(child))
            elif tag in _LEAVES or (tag in _CONTAINERS and depth >= MAX_HTML_DEPTH):
                # (containers nested deeper than any real page become one paragraph)
                flush()
                text = text_of(child)
                if text:
                    b.add(_para_kind(text), text)
            elif tag in _CONTAINERS:
                flush()
                walk(child, depth + 1)
            elif tag == "br":
                inline.append(" ")
            elif tag == "math":
                inline.append(f" {child.get('alttext') or text_of(child)} ")
            else:
                inline.append(child.get_text())
        flush()

    walk(root)
    return b.text, b.blocks, title or h1


def _para_kind(text: str) -> BlockKind:
    return "math" if text.startswith(("$$", "\\[")) else "paragraph"
