"""FAISS vector indexes: exact flat inner product, IVF and HNSW, keyed by chunk row ids.

Vectors are L2-normalized, so inner product is cosine similarity. The trade-off (measured in
``docs/benchmarks.md``, ``benchmarks/kb_index.py``):

* ``flat`` (``IndexIDMap2(IndexFlatIP)``): exact, no training, adds and removes are cheap;
  query time grows linearly (~8 ms at 100k x 384 on 2 cores, ~10x that at 1M). The default
  below ``kb.ann_threshold`` vectors (100k).
* ``ivf`` (``IndexIVFFlat``, ``nlist`` ~ 4 sqrt(N) k-means cells, ``nprobe`` cells searched):
  approximate; trained on the collection's own vectors (seconds at 1M), supports removal; recall
  depends on ``nprobe`` (higher = better recall, slower). ``auto`` switches to it past the
  threshold and retrains when the collection has grown 4x since training.
* ``hnsw`` (``IndexHNSWFlat`` in an ID map, ``M`` links per node): the fastest queries at high
  recall and no training, but the slowest to build (minutes per million vectors on 2 cores),
  ~``2*M*4`` extra bytes per vector, and no in-place removal: removing documents rebuilds it.

Each file carries a SHA-256 checksum trailer written with it and checked on every read
(``verify``), so a file damaged on disk is refused instead of searched.

All functions import faiss lazily.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from knowledge_base.atomic import atomic_path

log = logging.getLogger(__name__)

IndexKind = Literal["flat", "ivf", "hnsw"]


def _faiss() -> Any:
    import faiss

    return faiss


@dataclass(frozen=True)
class IndexOptions:
    index: Literal["auto", "flat", "ivf", "hnsw"] = "auto"
    ann_threshold: int = 100_000
    ivf_nlist: int = 0  # 0 = auto
    ivf_nprobe: int = 128
    hnsw_m: int = 32
    hnsw_ef_construction: int = 40
    hnsw_ef_search: int = 64

    def kind_for(self, n: int, current: IndexKind | None = None) -> IndexKind:
        """The index kind a collection of ``n`` vectors should have."""
        if self.index != "auto":
            if self.index == "ivf" and n < 2 * 39:
                return "flat"  # too few vectors to train even a tiny IVF
            return self.index
        if n >= self.ann_threshold:
            return "ivf"
        # Hysteresis: an IVF collection shrinking a little below the threshold stays IVF.
        if current == "ivf" and n >= self.ann_threshold // 2:
            return "ivf"
        return "flat"

    def nlist_for(self, n: int) -> int:
        nlist = self.ivf_nlist or int(4 * math.sqrt(max(n, 1)))
        return max(1, min(nlist, n // 39 if n >= 39 else 1, 65536))


def kind_of(index: Any) -> IndexKind:
    faiss = _faiss()
    inner = index.index if isinstance(index, faiss.IndexIDMap) else index
    inner = faiss.downcast_index(inner)
    if isinstance(inner, faiss.IndexIVF):
        return "ivf"
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    return "flat"


def new_index(
    kind: IndexKind, dim: int, opts: IndexOptions, train: np.ndarray | None = None
) -> Any:
    """An empty index of ``kind`` (IVF is trained on ``train``)."""
    faiss = _faiss()
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, opts.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = opts.hnsw_ef_construction
        inner.hnsw.efSearch = opts.hnsw_ef_search
        return faiss.IndexIDMap2(inner)
    if kind == "ivf":
        if train is None or len(train) == 0:
            raise ValueError("an IVF index needs training vectors")
        nlist = opts.nlist_for(len(train))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10
        index.cp.max_points_per_centroid = 64  # caps the training sample at 64 * nlist
        index.cp.seed = 1234
        sample = train
        if len(train) > 64 * nlist:
            rng = np.random.default_rng(1234)
            sample = train[rng.choice(len(train), 64 * nlist, replace=False)]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        index.nprobe = opts.ivf_nprobe
        quantizer.this.disown()
        index.quantizer = quantizer
        return index
    raise ValueError(f"unknown index kind {kind!r}")


def build(kind: IndexKind, dim: int, ids: np.ndarray, vecs: np.ndarray, opts: IndexOptions) -> Any:
    index = new_index(kind, dim, opts, train=vecs if kind == "ivf" else None)
    if len(ids):
        add(index, ids, vecs)
    return index


def add(index: Any, ids: np.ndarray, vecs: np.ndarray) -> None:
    if len(ids) == 0:
        return
    index.add_with_ids(
        np.ascontiguousarray(vecs, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64)
    )


def all_vectors(index: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every (id, vector) stored in ``index`` (all our index kinds store raw vectors)."""
    faiss = _faiss()
    d = index.d
    if index.ntotal == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, d), dtype=np.float32)
    if isinstance(index, faiss.IndexIDMap):
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        vecs = index.index.reconstruct_n(0, index.ntotal)
        return ids, np.asarray(vecs, dtype=np.float32)
    ivf = faiss.extract_index_ivf(index)
    invlists = ivf.invlists
    id_parts = []
    vec_parts = []
    for lst in range(ivf.nlist):
        size = invlists.list_size(lst)
        if size == 0:
            continue
        ids = faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy()
        codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * ivf.code_size).copy()
        id_parts.append(ids.astype(np.int64))
        vec_parts.append(codes.view(np.float32).reshape(size, d))
    return np.concatenate(id_parts), np.concatenate(vec_parts)


def clone(index: Any) -> Any:
    return _faiss().clone_index(index)


def reconstruct(index: Any, ids: np.ndarray) -> np.ndarray:
    """Stored vectors for ``ids`` (all must be present)."""
    out = np.zeros((len(ids), index.d), dtype=np.float32)
    for k, i in enumerate(ids):
        out[k] = index.reconstruct(int(i))
    return out


def remove(index: Any, ids: np.ndarray, opts: IndexOptions) -> Any:
    """Index without ``ids``; HNSW cannot delete in place, so it is rebuilt."""
    faiss = _faiss()
    if len(ids) == 0 or index.ntotal == 0:
        return index
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if kind_of(index) == "hnsw":
        all_ids, vecs = all_vectors(index)
        keep = ~np.isin(all_ids, ids)
        return build("hnsw", index.d, all_ids[keep], vecs[keep], opts)
    if kind_of(index) == "ivf":
        # An IVF direct map (hashtable) removes only through an array selector.
        index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))
    else:
        index.remove_ids(faiss.IDSelectorBatch(ids))
    return index


def search(
    index: Any, queries: np.ndarray, k: int, opts: IndexOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (scores, ids) per query; ids of -1 mark empty slots."""
    faiss = _faiss()
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if index.ntotal == 0 or k <= 0:
        return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    k = min(k, index.ntotal)
    kind = kind_of(index)
    params = None
    if kind == "ivf":
        params = faiss.SearchParametersIVF(nprobe=opts.ivf_nprobe)
    elif kind == "hnsw":
        params = faiss.SearchParametersHNSW(efSearch=max(opts.hnsw_ef_search, k))
    if params is not None:
        return index.search(q, k, params=params)
    return index.search(q, k)


# Every index file ends with a checksum trailer: MAGIC + the SHA-256 of everything before it.
# FAISS reads what it needs and ignores the bytes after the index. Random bytes in the middle of
# a flat index still loaded (searches then scored 4e37); with the trailer such a file is refused.
CHECKSUM_MAGIC = b"TUTORSUM"
_TRAILER = len(CHECKSUM_MAGIC) + 32


class IndexChecksumError(RuntimeError):
    """An index file whose bytes no longer match the checksum written with it.

    A ``RuntimeError`` like FAISS's own read errors, so callers treat both as a damaged file.
    """


def write_atomic(index: Any, path: Path) -> None:
    """Write to a temp file with its checksum trailer, fsync, then rename: the file at ``path``
    is always whole."""
    with atomic_path(path) as tmp:
        _faiss().write_index(index, str(tmp))
        digest = _sha256(tmp, tmp.stat().st_size)
        with open(tmp, "ab") as f:
            f.write(CHECKSUM_MAGIC + digest)


def verify(path: Path) -> bool:
    """Check ``path`` against its checksum trailer: True when it matches, False for a file
    written before checksums (no trailer: nothing to check); ``IndexChecksumError`` when the
    bytes changed."""
    try:
        size = path.stat().st_size
        if size < _TRAILER:
            raise IndexChecksumError(f"{path}: {size} bytes, too short to be an index")
        with open(path, "rb") as f:
            f.seek(size - _TRAILER)
            trailer = f.read(_TRAILER)
        if not trailer.startswith(CHECKSUM_MAGIC):
            log.info("%s has no checksum (written before checksums); not verified", path.name)
            return False
        digest = _sha256(path, size - _TRAILER)
    except FileNotFoundError:
        # removed meanwhile (a writer in another process moved on): a read error, like FAISS's
        raise IndexChecksumError(f"{path}: no such file") from None
    if digest != trailer[len(CHECKSUM_MAGIC) :]:
        raise IndexChecksumError(f"{path}: the bytes do not match the checksum written with them")
    return True


def _sha256(path: Path, n: int) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = n
        while left > 0:
            block = f.read(min(left, 1 << 20))
            if not block:
                raise IndexChecksumError(f"{path}: shorter than {n} bytes")
            h.update(block)
            left -= len(block)
    return h.digest()


def read(path: Path) -> Any:
    """The index in ``path``, after checking its checksum (``IndexChecksumError``)."""
    verify(path)
    return _faiss().read_index(str(path))
