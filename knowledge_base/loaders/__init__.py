"""Load documents: .md, .txt, .pdf, .docx, .html -> a ``Document`` made of structural blocks.

The file type is detected from the content first (PDF and zip magic, HTML markup, binary
bytes) and from the extension second, so a PDF named ``.txt`` still loads as a PDF and a
binary file named ``.md`` is refused. Every loader produces the document's plain ``text`` plus
``blocks`` (heading, paragraph, list item, table row, math, code) with character offsets into
that text and, for PDFs, page numbers. For Markdown and plain text the text *is* the file, so
offsets point into the file itself.

Bad input never raises anything but ``LoadError`` with the file and the reason.

One module per format (``markdown`` for .md and .txt, ``pdf``, ``docx``, ``html``), the shared
block model in ``blocks`` and type detection in ``detect``. To add a format: a
``parse_<format>(data, name) -> (text, blocks, title)`` module, its extension in
``detect.EXTENSIONS`` and its detection in ``detect_format``, and a branch in
``load_document``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from knowledge_base.errors import LoadError
from knowledge_base.loaders.blocks import (
    Block,
    BlockKind,
    Document,
    Format,
    content_hash,
    document_id,
    humanize_stem,
    slugify,
)
from knowledge_base.loaders.detect import (
    DEFAULT_MAX_BYTES,
    EXTENSIONS,
    decode_text,
    detect_format,
    normalize_newlines,
)
from knowledge_base.loaders.docx import parse_docx
from knowledge_base.loaders.html import MAX_HTML_DEPTH, parse_html
from knowledge_base.loaders.markdown import clean_inline, parse_markdown, parse_text
from knowledge_base.loaders.pdf import parse_pdf

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EXTENSIONS",
    "MAX_HTML_DEPTH",
    "Block",
    "BlockKind",
    "Document",
    "Format",
    "clean_inline",
    "content_hash",
    "decode_text",
    "detect_format",
    "document_id",
    "humanize_stem",
    "iter_files",
    "load_document",
    "parse_docx",
    "parse_html",
    "parse_markdown",
    "parse_pdf",
    "parse_text",
    "read_file",
    "slugify",
]

# A lone surrogate (a broken PDF font map can yield one) cannot be stored as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")


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
            text, blocks, title = parse[fmt](normalize_newlines(decode_text(data, name)))
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
