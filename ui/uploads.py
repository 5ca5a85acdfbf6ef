"""Uploads: only files Gradio received, only from teachers, within a quota, and cleaned up.

Gradio keeps uploads in its upload folder (``tutor serve`` points it at ``paths.uploads_dir``).
Issue 16 found three holes, closed here:

- **Server paths** (V3). A handler is given file paths. Gradio checks that they lie in the upload
  folder only in an app it launched itself, not in one mounted as ours is, so a crafted request
  could name any server file. ``check_uploaded`` resolves the path (links included) and accepts
  it only inside the upload folder; the handlers' ``_paths`` calls it for every file.
- **Filling the disk** (V4). ``UploadGuard`` sits in front of ``POST /gradio_api/upload``: only
  a signed-in teacher may upload (students have no file inputs, so they get 403); the request
  must say its size (411 otherwise) and stay under ``MAX_FILES`` × ``ui.max_upload_mb`` (413);
  each user may send ``QUOTA_FACTOR`` × ``ui.max_upload_mb`` an hour (429 past it); and the
  upload folder as a whole stays under ``CAP_FACTOR`` × ``ui.max_upload_mb`` (507 past it).
  With the default 50 MB: 1 GB a request, 500 MB an hour per teacher, 1 GB on disk.
- **Leftovers.** The handlers delete the uploads they have read (``discard_uploads``); files
  older than ``KEEP_S`` (uploads already added or never used, the empty
  temporary files of rejected uploads) are deleted at start-up and, at most once a minute,
  before an upload.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tutor.errors import InputError, PermissionDeniedError

log = logging.getLogger(__name__)

UPLOAD_ROUTE = "/gradio_api/upload"
MAX_FILES = 20
QUOTA_FACTOR = 10
QUOTA_WINDOW_S = 3600.0
CAP_FACTOR = 20
KEEP_S = 2 * 3600.0
SWEEP_EVERY_S = 60.0
MB = 1024 * 1024


def upload_root() -> Path:
    """Gradio's upload folder (``GRADIO_TEMP_DIR``, else the system temp dir's ``gradio``)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def check_uploaded(path: str, root: Path | None = None) -> str:
    """``path`` when it lies inside the upload folder (after resolving links); else InputError,
    naming only the file, never the server's directories."""
    root = root or upload_root()
    real = Path(path).resolve()
    if root not in real.parents:
        log.warning("refused a file path outside the upload folder")
        raise InputError(
            f"not a file uploaded to this app: {Path(path).name}; choose it with the upload button"
        )
    return path


def discard_uploads(paths: list[str], root: Path | None = None) -> None:
    """Delete uploaded files a handler has used (only inside the upload folder), and their
    folders when left empty."""
    root = root or upload_root()
    for path in paths:
        p = Path(path)
        if root not in p.resolve().parents:
            continue
        try:
            p.unlink(missing_ok=True)
            if p.parent != root and not any(p.parent.iterdir()):
                p.parent.rmdir()
        except OSError:
            continue


def sweep(root: Path, keep_s: float = KEEP_S, now: float | None = None) -> int:
    """Delete files in ``root`` older than ``keep_s`` seconds, and the folders left empty;
    returns how many files went."""
    now = time.time() if now is None else now
    gone = 0
    if not root.is_dir():
        return 0
    for dirpath, _, filenames in os.walk(root, topdown=False):
        for name in filenames:
            p = Path(dirpath) / name
            try:
                if p.is_symlink() or now - p.stat().st_mtime > keep_s:
                    p.unlink()
                    gone += 1
            except OSError:
                continue
        if Path(dirpath) != root and not os.listdir(dirpath):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
    return gone


def folder_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            try:
                total += (Path(dirpath) / name).lstat().st_size
            except OSError:
                continue
    return total


class UploadGuard:
    """ASGI middleware in front of Gradio's upload route (see the module doc)."""

    def __init__(
        self,
        app: Any,
        signin: Any,
        max_upload_mb: float,
        root: Callable[[], Path] = upload_root,
    ) -> None:
        self.app = app
        self.signin = signin
        self.max_file = int(max_upload_mb * MB)
        self.per_request = MAX_FILES * self.max_file + MB  # and the multipart framing
        self.quota = QUOTA_FACTOR * self.max_file
        self.cap = CAP_FACTOR * self.max_file
        self.root = root
        self._sent: dict[str, list[tuple[float, int]]] = {}
        self._lock = threading.Lock()
        self._last_sweep = 0.0
        self.sweep()

    def sweep(self) -> None:
        self._last_sweep = time.monotonic()
        n = sweep(self.root())
        if n:
            log.info("removed %d old upload file(s)", n)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or scope.get("path", "").rstrip("/") != UPLOAD_ROUTE
        ):
            await self.app(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse

        refusal = await run_in_threadpool(self._check, Request(scope))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, text = refusal
        await PlainTextResponse(text, status_code=status)(scope, receive, send)

    def _check(self, request: Any) -> tuple[int, str] | None:
        """None when the upload may go on; else the status and message."""
        username = self.signin.user_for_request(request)
        if username is None:
            return None  # Gradio answers 401 itself
        try:
            p = self.signin.principal(username)
        except PermissionDeniedError:
            return None
        if not p.is_teacher:
            log.warning("refused an upload from a %s account", p.role)
            return 403, "Uploads are for teachers only."
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():
            return 411, "An upload must say its size (Content-Length)."
        size = int(declared)
        if size > self.per_request:
            return 413, f"At most {MAX_FILES} files of {self.max_file // MB} MB in one upload."
        if time.monotonic() - self._last_sweep > SWEEP_EVERY_S:
            self.sweep()
        if folder_bytes(self.root()) + size > self.cap:
            log.warning("upload refused: the upload folder is at its cap")
            return 507, (
                "The server's upload space is full; add the files already uploaded, or try later."
            )
        if not self._charge(username, size):
            return 429, (
                f"Upload limit reached: {self.quota // MB} MB an hour per user. Try again later."
            )
        return None

    def _charge(self, username: str, size: int) -> bool:
        now = time.monotonic()
        with self._lock:
            for name in list(self._sent):
                kept = [(t, n) for t, n in self._sent[name] if now - t < QUOTA_WINDOW_S]
                if kept:
                    self._sent[name] = kept
                else:
                    del self._sent[name]
            used = sum(n for _, n in self._sent.get(username, []))
            if used + size > self.quota:
                return False
            self._sent.setdefault(username, []).append((now, size))
            return True
