"""What the store reads and writes: documents, collections, chunk rows, write requests."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from knowledge_base.chunk import Chunk
from knowledge_base.errors import InputError
from knowledge_base.loaders import Document

COLLECTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass
class DocumentInfo:
    doc_id: str
    collection: str
    title: str
    source: str
    name: str
    format: str
    content_hash: str
    bytes: int
    pages: int
    n_chunks: int
    added_at: float
    chunking: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CollectionInfo:
    name: str
    documents: int
    chunks: int
    vectors: int
    index_kind: str
    generation: int


@dataclass
class ChunkRow:
    id: int
    chunk_key: str
    doc_id: str
    collection: str
    ordinal: int
    title: str
    section: str
    pages: list[int]
    char_start: int
    char_end: int
    n_tokens: int
    text: str
    source: str


@dataclass
class NewDocument:
    """A loaded, chunked and embedded document waiting to be written."""

    doc: Document
    chunks: list[Chunk]
    vectors: np.ndarray
    chunking: str = ""


@dataclass
class WriteResult:
    added: list[str]  # doc ids
    replaced: dict[str, str]  # new doc id -> old doc id
    duplicates: dict[str, str]  # doc id of a skipped document -> why
    removed: list[str]


def validate_collection(name: str) -> str:
    if not isinstance(name, str) or not COLLECTION_RE.match(name):
        raise InputError(
            f"collection name {name!r} is not valid; use 1-64 letters, digits, '.', '_' or '-' "
            "starting with a letter or digit (e.g. 'grade6-math')"
        )
    return name
