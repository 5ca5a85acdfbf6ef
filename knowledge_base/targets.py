"""What ``KnowledgeBase.add`` was given, as the files and uploads to read.

Paths are walked (directories) and checked (missing paths, empty directories become per-item
errors in the report); uploads (``(name, bytes)``) get a safe display name.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from knowledge_base.loaders import iter_files
from knowledge_base.reports import FileResult, IngestReport

# (what the report shows, the file to read or None, the upload's bytes or None)
Target = tuple[str, Path | None, bytes | None]


def expand_targets(paths: Any, report: IngestReport) -> list[Target]:
    """The files under ``paths`` and the uploads among them; bad paths go to ``report``."""
    targets: list[Target] = []
    for item in as_items(paths):
        if isinstance(item, tuple):
            name, data = item
            targets.append((upload_name(str(name)), None, bytes(data)))
            continue
        p = Path(item).expanduser()
        if not p.exists():
            report.files.append(
                FileResult(str(item), "error", message="does not exist; check the path")
            )
            continue
        found = list(iter_files(p))
        if p.is_dir() and not found:
            report.files.append(
                FileResult(
                    str(item),
                    "error",
                    message="directory has no .md, .txt, .pdf, .docx or .html files",
                )
            )
        targets += [(str(f), f, None) for f in found]
    return targets


def upload_name(name: str) -> str:
    """The name an upload is stored and reported under: the last part of the name as given
    (after ``/`` or ``\\``), without control characters or lone surrogates (SQLite cannot store
    them), at most 200 characters (keeping the extension); ``upload`` when nothing is left.

    Uploads are never written to disk under this name (the store keeps ``upload:NAME`` as the
    document's source), so ``../`` or an absolute path cannot reach outside the data dir; this
    keeps the name printable and storable.
    """
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch) not in ("Cc", "Cs")).strip()
    if base in ("", ".", ".."):
        return "upload"
    if len(base) > 200:
        suffix = Path(base).suffix if len(Path(base).suffix) <= 16 else ""
        base = base[: 200 - len(suffix)] + suffix
    return base


def as_items(paths: Any) -> list[Any]:
    if isinstance(paths, (str, Path)):
        return [paths]
    if isinstance(paths, tuple) and len(paths) == 2 and isinstance(paths[1], (bytes, bytearray)):
        return [paths]
    return list(paths)
