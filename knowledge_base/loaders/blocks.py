"""The document model every loader produces: ``Block``s with character offsets into a
``Document``'s text, document ids, and ``Builder`` for loaders that assemble a text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

BlockKind = Literal["heading", "paragraph", "list_item", "table_row", "math", "code"]
Format = Literal["md", "txt", "pdf", "docx", "html"]


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


class Builder:
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


def collapse(text: str) -> str:
    return re.sub(r"[ \t\r\f\v\u00a0]+", " ", text.replace("\n", " ")).strip()


def para_kind(text: str) -> BlockKind:
    return "math" if text.startswith(("$$", "\\[")) else "paragraph"
