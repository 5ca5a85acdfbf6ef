"""Retrieval quality: recall@k and MRR of a knowledge base over a QA set.

A QA set is JSONL, one question a line::

    {"question": "...", "document": "fractions.md", "section": "Fractions > Adding fractions"}

``document`` is the file name (or its trailing path, ``book/file.md``); ``section`` the heading path of the chunk that answers it, or a
list of acceptable paths. A retrieved passage is a hit when its file name and its section path
match exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge_base.errors import LoadError
from knowledge_base.retrieve import Passage


@dataclass
class QAItem:
    question: str
    document: str
    sections: list[str]


@dataclass
class RetrievalMetrics:
    mode: str
    k: int
    questions: int
    recall: float  # share of questions with a hit in the top k
    mrr: float  # mean reciprocal rank of the first hit (0 when none in the top k)
    misses: list[dict[str, Any]] = field(default_factory=list)
    ranks: list[int | None] = field(default_factory=list)  # first-hit rank per question

    def recall_at(self, k: int) -> float:
        """Recall at a cut-off ``k`` <= the evaluated ``k``."""
        if k > self.k:
            raise ValueError(f"evaluated at k={self.k}; cannot report recall@{k}")
        return sum(1 for r in self.ranks if r is not None and r <= k) / max(len(self.ranks), 1)


def load_qa(path: str | Path) -> list[QAItem]:
    items = []
    p = Path(path)
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            sec = d["section"]
            items.append(
                QAItem(
                    question=str(d["question"]),
                    document=str(d["document"]),
                    sections=[sec] if isinstance(sec, str) else list(sec),
                )
            )
        except (ValueError, KeyError, TypeError) as e:
            raise LoadError(f"{p}:{n}", f"is not a QA record ({e})") from None
    return items


def is_hit(p: Passage, item: QAItem) -> bool:
    """Same file (``name.md`` or a trailing path such as ``book/name.md``) and same section."""
    source = Path(p.source.removeprefix("upload:")).as_posix()
    same_file = source == item.document or source.endswith("/" + item.document)
    return same_file and p.section in item.sections


def evaluate_retrieval(
    kb: Any,
    items: list[QAItem],
    *,
    k: int = 5,
    mode: str = "hybrid",
    collection: str | None = None,
) -> RetrievalMetrics:
    hits = 0
    rr = 0.0
    misses = []
    ranks: list[int | None] = []
    for item in items:
        passages = kb.search(item.question, k=k, collection=collection, mode=mode, min_score=-1.0)
        rank = next((r for r, p in enumerate(passages, start=1) if is_hit(p, item)), None)
        ranks.append(rank)
        if rank is None:
            misses.append(
                {
                    "question": item.question,
                    "want": f"{item.document}: {' | '.join(item.sections)}",
                    "got": [p.citation for p in passages[:3]],
                }
            )
            continue
        hits += 1
        rr += 1.0 / rank
    n = max(len(items), 1)
    return RetrievalMetrics(
        mode=mode,
        k=k,
        questions=len(items),
        recall=hits / n,
        mrr=rr / n,
        misses=misses,
        ranks=ranks,
    )
