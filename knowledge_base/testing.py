"""Tiny deterministic embedders for tests (no model, no torch): pass them to
``KnowledgeBase.open(kb_dir, HashEmbedder())``.

``HashEmbedder`` hashes words (and, optionally, known topic words only) into a fixed number of
dimensions: texts that share words get similar vectors, which is enough to test retrieval
plumbing with real FAISS and SQLite.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

import numpy as np

_WORD = re.compile(r"[^\W_]+")


def _bucket(word: str, dim: int) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little") % dim


class HashEmbedder:
    """Bag of words hashed into ``dimension`` buckets, L2-normalized.

    ``vocabulary``: when given, only these words count (a "dense model" that knows topics but
    not rare terms such as codes or names: what BM25 is for). ``calls`` counts ``encode`` calls.
    """

    def __init__(
        self,
        dimension: int = 128,
        name: str = "hash-embedder",
        vocabulary: Iterable[str] | None = None,
    ) -> None:
        self.dimension = dimension
        self.name = name
        self.vocabulary = {w.lower() for w in vocabulary} if vocabulary is not None else None
        self.max_seq_length = 512
        self.calls = 0

    def _words(self, text: str) -> list[str]:
        words = [
            w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _WORD.findall(text.lower())
        ]
        if self.vocabulary is not None:
            words = [w for w in words if w in self.vocabulary]
        return words

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) + len(re.findall(r"[^\w\s]", t)) for t in texts]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in self._words(t):
                out[i, _bucket(w, self.dimension)] += 1.0
            if not out[i].any():
                out[i, _bucket("<empty>", self.dimension)] = 1e-3
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)
