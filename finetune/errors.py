"""Typed errors of the fine-tuning pipeline (the CLI turns them into one-line messages)."""

from __future__ import annotations

from tutor.errors import InputError, TutorError


class DataError(InputError):
    """A training data file or record is unusable; the message names file, line and field."""


class RunExistsError(TutorError):
    """The run directory already holds a run; resume it, overwrite it or pick another name."""


class DiskFullError(TutorError):
    """The disk (or the file-size limit) ran out while saving a checkpoint, the adapter or the
    run's files; the last complete checkpoint is kept and ``--resume`` continues from it."""


class TrainingInterrupted(TutorError):
    """Training was stopped (Ctrl-C) after saving a resumable checkpoint."""

    exit_code = 130
