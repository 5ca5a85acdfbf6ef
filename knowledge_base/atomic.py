"""Atomic file and directory writes, the one copy for the whole project.

A reader (or a process restarted after a crash, a SIGKILL or a full disk) sees either the old
file or the new one, never a torn one: the data goes to a temp file in the same directory, is
fsynced, then ``os.replace``d over the target, and the directory entry is fsynced too. On any
failure the temp file is removed at once, so a full disk gets its space back.

* ``write_atomic(path, text_or_bytes)``: write a whole file.
* ``atomic_path(path)``: a context manager yielding a temp path for writers that want a file
  name (FAISS, safetensors, ``json.dump`` to an open file...); replaced on success.
* ``atomic_dir(path)``: the same for a directory (a saved model, an adapter).

Temp names start with ``.`` and end with ``.tmp`` (``.{name}.{random}.tmp``), so a leftover
from a killed process is easy to recognise and clean up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_dir", "atomic_path", "fsync_dir", "write_atomic"]


def fsync_dir(d: str | os.PathLike[str]) -> None:
    """Flush a directory entry (a rename) to disk; a no-op where directories can't be opened."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _fsync_file(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, mode: int | None = None, suffix: str = ".tmp"
) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it is fsynced and renamed onto ``path``.

    The temp file exists (empty) when yielded; the caller may overwrite or replace it. On an
    exception it is removed and the exception propagates; ``path`` is untouched. ``mode`` (e.g.
    ``0o600``) sets the permissions of the new file. ``suffix`` ends the temp name (keep
    ``.tmp`` unless the writer insists on an extension).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    tmp = Path(name)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        os.close(fd)
        fd = -1
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def write_atomic(
    path: str | os.PathLike[str],
    data: str | bytes,
    *,
    encoding: str = "utf-8",
    mode: int | None = None,
) -> None:
    """Write ``data`` (text in ``encoding``, or bytes) to ``path`` atomically."""
    raw = data.encode(encoding) if isinstance(data, str) else bytes(data)
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(raw)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a new empty temp directory beside ``path``; on success it replaces ``path``.

    An existing ``path`` is removed just before the rename (a directory can't be renamed over a
    non-empty one), so the window without it is one ``rmtree``; on an exception the temp
    directory is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    fsync_dir(target.parent)
