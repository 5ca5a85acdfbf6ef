"""What the knowledge base reports: per-file ingest results, the ingest report, statistics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from knowledge_base.records import CollectionInfo

Status = Literal["added", "skipped", "replaced", "error"]


@dataclass
class FileResult:
    path: str
    status: Status
    doc_id: str | None = None
    title: str | None = None
    chunks: int = 0
    message: str = ""
    replaced: str | None = None  # the old doc id, when status == "replaced"


@dataclass
class IngestReport:
    collection: str
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0

    def _with(self, status: Status) -> list[FileResult]:
        return [f for f in self.files if f.status == status]

    @property
    def added(self) -> list[FileResult]:
        return self._with("added")

    @property
    def skipped(self) -> list[FileResult]:
        return self._with("skipped")

    @property
    def replaced(self) -> list[FileResult]:
        return self._with("replaced")

    @property
    def errors(self) -> list[FileResult]:
        return self._with("error")

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files if f.status in ("added", "replaced"))

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.replaced)} replaced, {len(self.skipped)} "
            f"unchanged, {len(self.errors)} failed; {self.chunks} chunks in "
            f"{self.seconds:.1f}s (collection {self.collection!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["summary"] = self.summary()
        return d


@dataclass
class KBStats:
    path: str
    embedder: str | None
    dimension: int | None
    documents: int
    chunks: int
    disk_bytes: int
    collections: list[CollectionInfo]
    formats: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
