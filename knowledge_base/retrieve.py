"""Retrieval pieces: ``Passage`` (what the tutor gets), citation labels, BM25 query terms,
reciprocal rank fusion and maximal marginal relevance.

``KnowledgeBase.search`` runs them: dense top-N from FAISS and BM25 top-N from SQLite FTS5 are
fused by reciprocal rank fusion (each list contributes ``1 / (rrf_k + rank)``), optionally
re-ordered by MMR for diversity, then the first ``k`` become ``Passage`` objects.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from knowledge_base.chunk import section_label


@dataclass
class Passage:
    """One retrieved chunk, ready to show and cite.

    ``score`` is the ranking score of the search mode (RRF for ``hybrid``, cosine for
    ``dense``, BM25 for ``bm25``); passages come best first. ``similarity`` is the cosine
    similarity to the query (None in ``bm25`` mode), comparable to ``kb.min_score``.
    """

    chunk_id: str  # "<doc_id>:<ordinal>", stable for a given document version
    doc_id: str
    title: str
    section: str  # heading path, "Fractions > Adding fractions"
    pages: list[int]
    text: str
    score: float
    citation: str  # "Title — Section, p. N"
    source: str = ""  # file path (or "upload:NAME")
    char_start: int = 0
    char_end: int = 0
    collection: str = ""
    similarity: float | None = None
    bm25: float | None = None
    dense_rank: int | None = None  # 1-based rank in each retriever's list
    bm25_rank: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pages_label(pages: Sequence[int]) -> str:
    ps = sorted(set(pages))
    if not ps:
        return ""
    if len(ps) == 1:
        return f"p. {ps[0]}"
    if ps == list(range(ps[0], ps[-1] + 1)):
        return f"pp. {ps[0]}–{ps[-1]}"
    return "pp. " + ", ".join(str(p) for p in ps)


def citation_label(title: str, section: str, pages: Sequence[int] = ()) -> str:
    """``Title — Section, p. N``; parts that are unknown are left out."""
    label = title.strip()
    sec = section_label(title, section)
    if sec:
        label = f"{label} — {sec}" if label else sec
    pl = pages_label(pages)
    if pl:
        label = f"{label}, {pl}" if label else pl
    return label


# A small English stop list: function words that carry no topic (BM25 also discounts them,
# but dropping them keeps FTS queries fast on large stores).
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves tell explain describe please show give""".split()
)
_TERM = re.compile(r"[^\W_]+", re.UNICODE)


def query_terms(query: str, max_terms: int = 32) -> list[str]:
    """Lower-cased word tokens of ``query`` minus stop words, in order, without repeats."""
    out: list[str] = []
    for t in _TERM.findall(query.lower()):
        if t in STOPWORDS or t in out:
            continue
        out.append(t)
    return out[:max_terms]


def rrf(rankings: Sequence[Sequence[int]], k: int = 60) -> dict[int, float]:
    """Reciprocal rank fusion: ``sum(1 / (k + rank))`` over the lists an id appears in."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return scores


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_: float = 0.7) -> list[int]:
    """Maximal marginal relevance: indices of ``k`` items trading relevance for novelty.

    ``relevance`` is scaled to 0..1 first, so the trade-off is the same whatever the scores'
    units; similarity between items is the cosine of their (normalized) vectors.
    """
    n = len(relevance)
    if n == 0 or k <= 0:
        return []
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    sim = np.asarray(vectors, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T
    chosen: list[int] = [int(np.argmax(rel))]
    max_sim = sim[chosen[0]].copy()
    while len(chosen) < min(k, n):
        score = lambda_ * rel - (1 - lambda_) * max_sim
        score[chosen] = -np.inf
        nxt = int(np.argmax(score))
        chosen.append(nxt)
        max_sim = np.maximum(max_sim, sim[nxt])
    return chosen
