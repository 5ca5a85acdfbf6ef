"""Telling a full disk (or a file-size limit) from other write errors, and saying so."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

# errno values that mean "no room": disk full, file-size limit (ulimit -f), disk quota.
_NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def no_space(e: BaseException, directory: Path | None = None) -> bool:
    """Whether ``e`` (or an error it wraps) says the disk or the file-size limit ran out.

    SQLite reports a write refused for the file-size limit (EFBIG) only as "disk I/O error":
    that counts when a limit is set or ``directory``'s disk is nearly full.
    """
    seen: set[int] = set()
    err: BaseException | None = e
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _NO_SPACE_ERRNOS:
            return True
        msg = str(err).lower()
        if isinstance(err, sqlite3.Error) and ("disk is full" in msg or "file too large" in msg):
            return True
        # faiss reports a failed fwrite without the errno: "write error in PATH"
        if isinstance(err, RuntimeError) and "write error" in msg:
            return True
        if isinstance(err, sqlite3.Error) and "disk i/o error" in msg:
            return _file_size_limited() or _nearly_full(directory)
        err = err.__cause__ or err.__context__
    return False


def _file_size_limited() -> bool:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return False
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    return soft != resource.RLIM_INFINITY


def _nearly_full(directory: Path | None, margin: int = 64 * 2**20) -> bool:
    if directory is None:
        return False
    try:
        return shutil.disk_usage(directory).free < margin
    except OSError:
        return False


def disk_full_message(directory: Path) -> str:
    try:
        free = f"{shutil.disk_usage(directory).free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    return (
        f"no room left to save the knowledge base in {directory} ({free}, or the file-size "
        "limit was reached): the knowledge base was left as it was. Free some disk space (or "
        "set TUTOR_HOME to a bigger disk) and run the command again"
    )
