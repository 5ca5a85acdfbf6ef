"""Load documents: the public names of ``knowledge_base.loaders``, kept importable from here.

The loaders live in ``knowledge_base/loaders/`` (one module per format plus the shared block
model); ``from knowledge_base.load import load_document, Document, ...`` keeps working.
"""

from __future__ import annotations

from knowledge_base.loaders import (
    DEFAULT_MAX_BYTES,
    EXTENSIONS,
    MAX_HTML_DEPTH,
    Block,
    BlockKind,
    Document,
    Format,
    clean_inline,
    content_hash,
    decode_text,
    detect_format,
    document_id,
    humanize_stem,
    iter_files,
    load_document,
    parse_docx,
    parse_html,
    parse_markdown,
    parse_pdf,
    parse_text,
    read_file,
    slugify,
)

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
