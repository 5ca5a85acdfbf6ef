"""Knowledge base: load -> chunk -> embed -> FAISS + SQLite store -> hybrid retrieval with citations.

Public API (imported lazily, so ``import knowledge_base`` stays instant)::

    from knowledge_base import KnowledgeBase, Passage, IngestReport, Embedder
    kb = KnowledgeBase.open(kb_dir, embedder)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from knowledge_base.embed import Embedder, SentenceTransformerEmbedder
    from knowledge_base.errors import (
        DiskFullError,
        DocumentNotFoundError,
        EmbedderMismatchError,
        LoadError,
        StoreError,
    )
    from knowledge_base.kb import FileResult, IngestReport, KBStats, KnowledgeBase
    from knowledge_base.options import KBOptions
    from knowledge_base.retrieve import Passage
    from knowledge_base.store import CollectionInfo, DocumentInfo

_EXPORTS = {
    "KnowledgeBase": "knowledge_base.kb",
    "IngestReport": "knowledge_base.kb",
    "FileResult": "knowledge_base.kb",
    "KBStats": "knowledge_base.kb",
    "KBOptions": "knowledge_base.options",
    "Passage": "knowledge_base.retrieve",
    "Embedder": "knowledge_base.embed",
    "SentenceTransformerEmbedder": "knowledge_base.embed",
    "DocumentInfo": "knowledge_base.store",
    "CollectionInfo": "knowledge_base.store",
    "LoadError": "knowledge_base.errors",
    "DiskFullError": "knowledge_base.errors",
    "EmbedderMismatchError": "knowledge_base.errors",
    "DocumentNotFoundError": "knowledge_base.errors",
    "StoreError": "knowledge_base.errors",
}

__all__ = [
    "CollectionInfo",
    "DiskFullError",
    "DocumentInfo",
    "DocumentNotFoundError",
    "Embedder",
    "EmbedderMismatchError",
    "FileResult",
    "IngestReport",
    "KBOptions",
    "KBStats",
    "KnowledgeBase",
    "LoadError",
    "Passage",
    "SentenceTransformerEmbedder",
    "StoreError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'knowledge_base' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
