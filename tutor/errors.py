"""Typed errors. Library code raises these with the bad value and the fix; only the CLI and
the UI turn them into messages for people (one line, no stack trace)."""

from __future__ import annotations


class TutorError(Exception):
    """Base class: ``str(err)`` is a complete one-line message that says what to do."""

    exit_code = 2


class ConfigError(TutorError):
    """A config file, env variable or CLI override has a bad key or value."""


class InputError(TutorError):
    """A user-supplied message, file or argument is unusable (empty, too long, wrong form)."""


class ModelNotFoundError(TutorError):
    """A model id, path or bundled alias cannot be resolved to weights."""


class MissingDependencyError(TutorError):
    """An optional package is needed for the requested feature; the message names the extra."""


class BackendError(TutorError):
    """The LM backend failed (server refused, dropped the stream, timed out, ...)."""


class ContextOverflowError(InputError):
    """The prompt cannot be made to fit the model's context window."""


class NotFoundError(TutorError):
    """A learner, document, collection, item or run that was asked for does not exist."""


class PermissionDeniedError(TutorError):
    """The signed-in user's role does not allow this action."""
