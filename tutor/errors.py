"""Typed errors. Library code raises these with the bad value and the fix; only the CLI and
the UI turn them into messages for people (one line, no stack trace).

The base classes are defined in ``knowledge_base.errors`` (the ground-floor library, which
imports nothing from ``tutor``) and re-exported here, so ``except InputError`` anywhere in the
tutor also catches the knowledge base's errors.
"""

from __future__ import annotations

from knowledge_base.errors import (
    ConfigError,
    InputError,
    MissingDependencyError,
    ModelNotFoundError,
    NotFoundError,
    TutorError,
)

__all__ = [
    "BackendError",
    "ConfigError",
    "ContextOverflowError",
    "InputError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "NotFoundError",
    "PermissionDeniedError",
    "TutorError",
]


class BackendError(TutorError):
    """The LM backend failed (server refused, dropped the stream, timed out, ...)."""


class ContextOverflowError(InputError):
    """The prompt cannot be made to fit the model's context window."""


class PermissionDeniedError(TutorError):
    """The signed-in user's role does not allow this action."""
