"""Typed errors of the knowledge base. Each message names the bad value and the fix."""

from __future__ import annotations

from tutor.errors import ConfigError, InputError, NotFoundError, TutorError


class LoadError(InputError):
    """One file cannot be read as a document (missing, empty, corrupt, encrypted, binary...).

    Raised per file; ``KnowledgeBase.add`` records it in the report and goes on with the batch.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class EmbedderMismatchError(ConfigError):
    """The store was built with another embedder (name or dimension) than the one given."""


class DocumentNotFoundError(NotFoundError):
    """No document with that id (or no collection with that name)."""


class StoreError(TutorError):
    """The store on disk is unusable (locked by another writer, damaged, newer schema)."""


class DiskFullError(StoreError):
    """The disk (or the file-size limit) ran out while writing the store; nothing was changed."""
