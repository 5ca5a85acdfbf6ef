"""Typed errors. Each message names the bad value and the fix.

The base classes (``TutorError`` and its general kinds) live here, in the ground-floor
library, and ``tutor.errors`` re-exports them: ``except InputError`` in the tutor, the UI or the
CLI catches the knowledge base's errors too. Library code raises these; only the CLI and the UI
turn them into messages for people (one line, no stack trace).
"""

from __future__ import annotations


class TutorError(Exception):
    """Base class: ``str(err)`` is a complete one-line message that says what to do."""

    exit_code = 2


class ConfigError(TutorError):
    """A config file, env variable or CLI override has a bad key or value."""


class InputError(TutorError):
    """A user-supplied message, file or argument is unusable (empty, too long, wrong form)."""


class NotFoundError(TutorError):
    """A learner, document, collection, item or run that was asked for does not exist."""


class ModelNotFoundError(TutorError):
    """A model id, path or bundled alias cannot be resolved to weights."""


class MissingDependencyError(TutorError):
    """An optional package is needed for the requested feature; the message names the extra."""


# -- the knowledge base's own ---------------------------------------------------------------


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
