"""An exclusive inter-process lock on a file: the knowledge base's one-writer rule."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from knowledge_base.errors import StoreError


class FileLock:
    """An exclusive inter-process lock on a file (fcntl on POSIX, msvcrt on Windows)."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._fh: Any = None

    def __enter__(self) -> FileLock:
        self._fh = open(self.path, "a+b")  # noqa: SIM115 - held until __exit__
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if sys.platform == "win32":  # pragma: no cover
                    import msvcrt

                    msvcrt.locking(self._fh.fileno(), msvcrt.LK_NBLCK, 1)
                else:
                    import fcntl

                    fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError:
                if time.monotonic() >= deadline:
                    self._fh.close()
                    raise StoreError(
                        f"another process is writing to the knowledge base ({self.path.parent}); "
                        "wait for it to finish (or stop it) and try again"
                    ) from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        try:
            if sys.platform == "win32":  # pragma: no cover
                import msvcrt

                msvcrt.locking(self._fh.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        finally:
            self._fh.close()
