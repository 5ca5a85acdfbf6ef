"""The knowledge base's options: loading, chunking, embedding, indexing, retrieval.

``KBOptions`` is the ``kb`` section of the tutor's config (``tutor.config.KBConfig`` is this
class), and what ``KnowledgeBase.open(..., options=..., **overrides)`` takes. It lives here so
the knowledge base needs nothing from ``tutor``. Bad values raise ``ConfigError`` naming the
``kb.`` key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from knowledge_base.errors import ConfigError, InputError

Mode = Literal["hybrid", "dense", "bm25"]


@dataclass
class KBOptions:
    """Knowledge base: loading, chunking, embedding, indexing, retrieval."""

    embedder: str = "all-minilm-l6-v2"  # bundled alias, sentence-transformers name or path
    device: str = "auto"  # embedder device: auto | cpu | cuda | cuda:N | mps
    collection: str = "default"
    # Chunk budget in tokens of the embedder's tokenizer; capped at the embedder's max sequence
    # length (256 for MiniLM) so no chunk is silently truncated when it is embedded.
    chunk_tokens: int = 300
    chunk_overlap: int = 40
    batch_size: int = 64
    max_file_mb: float = 50.0
    # Commit (atomically) every this many new chunks, so a killed long ingest keeps its progress.
    checkpoint_chunks: int = 2000
    index: Literal["auto", "flat", "ivf", "hnsw"] = "auto"
    # ``auto`` switches from flat to an approximate index (IVF) past this many vectors.
    ann_threshold: int = 100_000
    ivf_nlist: int = 0  # 0 = about 4 * sqrt(vectors)
    ivf_nprobe: int = 128  # recall@10 ~0.97 at 1M vectors (docs/benchmarks.md)
    hnsw_m: int = 32
    hnsw_ef_construction: int = 40
    hnsw_ef_search: int = 64
    top_k: int = 4
    # Retrieval: ``hybrid`` fuses dense (FAISS) and BM25 ranks by reciprocal rank fusion.
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    candidates: int = 50  # how many each retriever proposes before fusion
    rrf_k: int = 60
    mmr: bool = False
    mmr_lambda: float = 0.7
    # Passages scoring below this cosine similarity are not treated as relevant
    # (BM25 hits are kept: they share words with the query).
    min_score: float = 0.25

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16:
            raise ConfigError(f"kb.chunk_tokens must be >= 16, got {self.chunk_tokens}")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise ConfigError(
                f"kb.chunk_overlap must be within 0..chunk_tokens-1, got {self.chunk_overlap}"
            )
        if self.top_k <= 0:
            raise ConfigError(f"kb.top_k must be > 0, got {self.top_k}")
        positive = (
            "batch_size",
            "checkpoint_chunks",
            "ann_threshold",
            "ivf_nprobe",
            "hnsw_m",
            "hnsw_ef_construction",
            "hnsw_ef_search",
            "candidates",
            "rrf_k",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"kb.{name} must be > 0, got {getattr(self, name)}")
        if self.ivf_nlist < 0:
            raise ConfigError(f"kb.ivf_nlist must be >= 0 (0 = automatic), got {self.ivf_nlist}")
        if self.max_file_mb <= 0:
            raise ConfigError(f"kb.max_file_mb must be > 0, got {self.max_file_mb}")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ConfigError(f"kb.mmr_lambda must be within 0..1, got {self.mmr_lambda}")
        if not -1.0 <= self.min_score <= 1.0:
            raise ConfigError(f"kb.min_score must be a cosine within -1..1, got {self.min_score}")
        if not self.embedder.strip():
            raise ConfigError("kb.embedder is empty; use 'all-minilm-l6-v2' or a model name/path")


def search_args(
    query: object, k: int | None, mode: Mode | None, min_score: float | None, o: KBOptions
) -> tuple[int, Mode, float]:
    """``KnowledgeBase.search``'s (k, mode, min_score), the options' defaults filled in; bad
    values raise."""
    if not isinstance(query, str) or not query.strip():
        raise InputError("the search query is empty; pass some words to search for")
    k = o.top_k if k is None else int(k)
    if k <= 0:
        raise InputError(f"k must be > 0, got {k}")
    mode = mode or o.mode
    if mode not in ("hybrid", "dense", "bm25"):
        raise InputError(f"search mode must be 'hybrid', 'dense' or 'bm25', got {mode!r}")
    return k, mode, o.min_score if min_score is None else float(min_score)


def mmr_lambda(mmr: bool | float | None, o: KBOptions) -> float | None:
    """The MMR lambda a search uses (None: no MMR), from its ``mmr`` argument and the options."""
    if mmr is None:
        return o.mmr_lambda if o.mmr else None
    if isinstance(mmr, bool):
        return o.mmr_lambda if mmr else None
    lam = float(mmr)
    if not 0.0 <= lam <= 1.0:
        raise InputError(f"mmr lambda must be within 0..1, got {mmr}")
    return lam
