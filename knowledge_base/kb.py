"""``KnowledgeBase``: the one object the tutor, the CLI and the UI use.

    kb = KnowledgeBase.open(kb_dir, embedder)          # embedder: anything with encode/name/dimension
    report = kb.add(["notes/", "unit1.pdf"], collection="grade6")
    passages = kb.search("how do I add fractions?", k=4, collection="grade6")

``add`` walks directories, skips files whose content is already stored (by hash, before parsing
and without loading the embedder), replaces changed files, and records a per-file error for bad
input while the rest of the batch still loads. New chunks are embedded in batches (longest
first, like sentence-transformers does, so padding is small) and written atomically; a long
ingest commits every ``kb.checkpoint_chunks`` chunks, at file boundaries.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base import index as ix
from knowledge_base.chunk import CHUNKER_VERSION, Chunk, chunk_document
from knowledge_base.embed import embed_texts, embedder_max_tokens, token_counter
from knowledge_base.errors import (
    DocumentNotFoundError,
    EmbedderMismatchError,
    InputError,
    LoadError,
    StoreError,
)
from knowledge_base.loaders import (
    content_hash,
    document_id,
    load_document,
    read_file,
)
from knowledge_base.options import KBOptions, Mode, mmr_lambda, search_args
from knowledge_base.reports import FileResult, IngestReport, KBStats, Status
from knowledge_base.retrieve import Passage, citation_label, query_terms, rrf
from knowledge_base.retrieve import mmr as mmr_select
from knowledge_base.store import (
    CollectionInfo,
    DocumentInfo,
    NewDocument,
    Store,
    validate_collection,
)
from knowledge_base.targets import expand_targets, upload_name

__all__ = [
    "FileResult",
    "IngestReport",
    "KBStats",
    "KnowledgeBase",
    "Mode",
    "ProgressFn",
    "upload_name",
]

log = logging.getLogger(__name__)

# progress(done, total, message): ``done/total`` is the fraction of the current phase
# (reading files, embedding chunks, saving); ``message`` names the phase and the file.
ProgressFn = Callable[[int, int, str], None]


@dataclass
class _Pending:
    result: FileResult
    doc: Any
    chunks: list[Chunk]


class KnowledgeBase:
    """Load -> chunk -> embed -> store, and hybrid search with citations. Thread-safe."""

    def __init__(self, store: Store, embedder: Any | None, options: KBOptions) -> None:
        self.store = store
        self.embedder = embedder
        self.options = options
        self.show_progress: bool | None = None
        # collections whose vector index failed to load: searched by keywords only (warned once)
        self.damaged: dict[str, str] = {}

    # ------------------------------------------------------------------ construction

    @classmethod
    def open(
        cls,
        kb_dir: str | Path,
        embedder: Any | None = None,
        *,
        options: KBOptions | None = None,
        show_progress: bool | None = None,
        lock_timeout: float = 30.0,
        **overrides: Any,
    ) -> KnowledgeBase:
        """Open (or create) the knowledge base in ``kb_dir``.

        ``embedder``: an ``Embedder`` (None allows only listing, stats and removal).
        ``options``/``overrides``: ``KBOptions`` fields (``chunk_tokens=200``, ``mode="dense"``...).
        Raises ``EmbedderMismatchError`` when the store was built with another embedder.
        """
        base = options or KBOptions()
        try:
            opts = dataclasses.replace(base, **overrides) if overrides else base
        except TypeError as e:
            known = ", ".join(f.name for f in dataclasses.fields(KBOptions))
            raise InputError(f"unknown knowledge-base option ({e}); known: {known}") from None
        store = Store(kb_dir, lock_timeout=lock_timeout)
        kb = cls(store, embedder, opts)
        kb.show_progress = show_progress
        if embedder is not None:
            kb._check_embedder()
        return kb

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_embedder(self, vectors_dim: int | None = None) -> None:
        info = self.store.embedder_info()
        if info is None or self.embedder is None:
            return
        name, dim = info
        mine = str(getattr(self.embedder, "name", type(self.embedder).__name__))
        if mine != name:
            raise EmbedderMismatchError(
                f"the knowledge base in {self.store.dir} was built with the embedder {name!r} "
                f"({dim} dimensions), not {mine!r}: its vectors cannot be compared. Use the same "
                f"embedder (--set kb.embedder={name}), or keep a separate knowledge base for the "
                "new one (another --home / TUTOR_HOME) and add the documents there"
            )
        got = vectors_dim if vectors_dim is not None else _dimension(self.embedder)
        if got is not None and got != dim:
            raise EmbedderMismatchError(
                f"the embedder {mine!r} gives {got}-dimensional vectors but the knowledge base in "
                f"{self.store.dir} holds {dim}-dimensional ones; use the embedder it was built "
                "with, or a separate knowledge base (another --home)"
            )

    def _need_embedder(self) -> Any:
        if self.embedder is None:
            raise InputError(
                "this knowledge base was opened without an embedder; pass one to "
                "KnowledgeBase.open(kb_dir, embedder) to add or search documents"
            )
        return self.embedder

    def _index_options(self) -> ix.IndexOptions:
        o = self.options
        return ix.IndexOptions(
            index=o.index,
            ann_threshold=o.ann_threshold,
            ivf_nlist=o.ivf_nlist,
            ivf_nprobe=o.ivf_nprobe,
            hnsw_m=o.hnsw_m,
            hnsw_ef_construction=o.hnsw_ef_construction,
            hnsw_ef_search=o.hnsw_ef_search,
        )

    def _progress_enabled(self) -> bool:
        if self.show_progress is not None:
            return self.show_progress
        return logging.getLogger("knowledge_base").getEffectiveLevel() <= logging.INFO

    # ------------------------------------------------------------------ ingest

    def chunking_signature(self) -> str:
        """How documents are chunked now; a stored document chunked otherwise is re-chunked."""
        tokens, overlap = self.max_chunk_tokens(), self.options.chunk_overlap
        return f"v{CHUNKER_VERSION} tokens={tokens} overlap={overlap}"

    def max_chunk_tokens(self) -> int:
        """The chunk budget: ``kb.chunk_tokens``, capped at what the embedder takes whole."""
        cap = embedder_max_tokens(self.embedder) if self.embedder is not None else None
        return min(self.options.chunk_tokens, cap) if cap else self.options.chunk_tokens

    def add(
        self,
        paths: str | Path | tuple[str, bytes] | Iterable[str | Path | tuple[str, bytes]],
        collection: str | None = None,
        *,
        progress: ProgressFn | None = None,
    ) -> IngestReport:
        """Add files, directories (walked) or uploads (``(name, bytes)``) to ``collection``.

        Per file: ``added``, ``skipped`` (unchanged or duplicate content), ``replaced`` (the
        same source with new content; the old chunks go) or ``error`` with the reason. Only
        bad input becomes a per-file error; a failing embedder or disk raises.
        """
        t0 = time.perf_counter()
        coll = validate_collection(collection or self.options.collection)
        report = IngestReport(collection=coll)
        targets = expand_targets(paths, report)

        max_bytes = int(self.options.max_file_mb * 1024 * 1024)
        pending: list[_Pending] = []
        n_pending = 0
        for i, (display, path, data) in enumerate(targets):
            if progress:
                progress(i, len(targets), f"reading {Path(display).name}")
            res = FileResult(display, "error")
            report.files.append(res)
            item = self._prepare(coll, res, path, data, pending, max_bytes)
            if item is not None:
                pending.append(item)
                n_pending += len(item.chunks)
            if n_pending >= self.options.checkpoint_chunks:
                report.embed_seconds += self._flush(coll, pending, progress)
                pending, n_pending = [], 0
        if pending:
            report.embed_seconds += self._flush(coll, pending, progress)
        if progress:
            progress(len(targets), len(targets), "done")
        report.seconds = time.perf_counter() - t0
        log.debug("%s", report.summary())
        return report

    def _prepare(
        self,
        coll: str,
        res: FileResult,
        path: Path | None,
        data: bytes | None,
        pending: Sequence[_Pending],
        max_bytes: int,
    ) -> _Pending | None:
        """Read, load and chunk one file or upload; None when it is skipped (``res`` says why:
        unchanged, a duplicate, or bad input)."""
        display = res.path
        try:
            if data is None:
                assert path is not None
                data = read_file(path, max_bytes)
                source = str(path.resolve())
                name = path.name
            else:
                name = Path(display).name
                source = f"upload:{name}"
            digest = content_hash(data)
            existing = self.store.document_by_source(coll, source)
            if existing is not None and existing.content_hash == digest:
                if existing.chunking == self.chunking_signature():
                    _set(res, "skipped", existing.doc_id, existing.title, existing.n_chunks)
                    res.message = "unchanged"
                    return None
            doc_id = document_id(coll, name, digest)
            same = self.store.document(doc_id)
            rechunk = same is not None and existing is not None and same.doc_id == existing.doc_id
            if (same is not None and not rechunk) or any(q.doc.doc_id == doc_id for q in pending):
                where = same.source if same is not None else "earlier in this batch"
                _set(res, "skipped", doc_id, same.title if same else None, 0)
                res.message = f"same content already stored as {doc_id} (from {where})"
                return None
            self._need_embedder()
            doc = load_document(
                Path(source) if path is not None else None,
                data=data,
                name=name,
                collection=coll,
                max_bytes=max_bytes,
            )
            chunks = chunk_document(
                doc,
                max_tokens=self.max_chunk_tokens(),
                overlap=self.options.chunk_overlap,
                count_tokens=token_counter(self.embedder),
            )
            if not chunks:
                raise LoadError(display, "contains no text to index")
            _set(res, "added", doc.doc_id, doc.title, len(chunks))
            res.message = "pending"
            return _Pending(res, doc, chunks)
        except LoadError as e:
            res.status = "error"
            res.message = e.reason
            log.warning("skipped %s: %s", display, e.reason)
            return None

    def _flush(
        self, collection: str, pending: list[_Pending], progress: ProgressFn | None
    ) -> float:
        """Embed the pending documents' chunks and write them in one atomic commit."""
        embedder = self._need_embedder()
        texts = [c.embedding_text() for p in pending for c in p.chunks]
        t0 = time.perf_counter()
        vectors = self._embed(texts, progress)
        embed_s = time.perf_counter() - t0
        self._check_embedder(vectors.shape[1])
        new: list[NewDocument] = []
        pos = 0
        sig = self.chunking_signature()
        for p in pending:
            n = len(p.chunks)
            new.append(NewDocument(p.doc, p.chunks, vectors[pos : pos + n], chunking=sig))
            pos += n
        if progress:
            progress(0, 1, f"saving {len(texts)} chunks")
        result = self.store.write(
            collection,
            new,
            options=self._index_options(),
            embedder=(str(embedder.name), int(vectors.shape[1])),
        )
        for p in pending:
            r = p.result
            r.message = ""
            did = p.doc.doc_id
            if did in result.duplicates:
                r.status, r.chunks, r.message = "skipped", 0, result.duplicates[did]
            elif did in result.replaced:
                r.status, r.replaced = "replaced", result.replaced[did]
                r.message = (
                    "re-chunked (chunk settings changed)"
                    if r.replaced == did
                    else f"replaced {r.replaced}"
                )
        return embed_s

    def _embed(
        self, texts: Sequence[str], progress: ProgressFn | None = None, *, bar: bool = True
    ) -> np.ndarray:
        """Vectors for ``texts``: batched (longest first, little padding), normalized."""
        return embed_texts(
            self._need_embedder(),
            texts,
            self.options.batch_size,
            progress,
            bar=bar and self._progress_enabled(),
        )

    # ------------------------------------------------------------------ management

    def remove(self, doc_id: str) -> DocumentInfo:
        """Remove one document (its rows and vectors). Raises ``DocumentNotFoundError``."""
        return self.store.remove_documents([doc_id], self._index_options())[0]

    def remove_collection(self, name: str) -> CollectionInfo:
        return self.store.drop_collection(name)

    def list_documents(self, collection: str | None = None) -> list[DocumentInfo]:
        return self.store.documents(collection)

    def collections(self) -> list[CollectionInfo]:
        return self.store.collections()

    def stats(self) -> KBStats:
        info = self.store.embedder_info()
        docs = self.store.documents()
        formats: dict[str, int] = {}
        for d in docs:
            formats[d.format] = formats.get(d.format, 0) + 1
        colls = self.store.collections()
        return KBStats(
            path=str(self.store.dir),
            embedder=info[0] if info else None,
            dimension=info[1] if info else None,
            documents=len(docs),
            chunks=sum(c.chunks for c in colls),
            disk_bytes=self.store.disk_bytes(),
            collections=colls,
            formats=formats,
        )

    # ------------------------------------------------------------------ search

    def search(
        self,
        query: str,
        k: int | None = None,
        collection: str | None = None,
        document: str | None = None,
        mmr: bool | float | None = None,
        *,
        mode: Mode | None = None,
        min_score: float | None = None,
    ) -> list[Passage]:
        """The ``k`` best passages for ``query``, best first, each with its citation.

        ``collection``/``document``: restrict to one collection or one document (id). An
        unknown collection gives no passages (and a warning); an unknown document raises.
        ``mmr``: True (``kb.mmr_lambda``) or a lambda in 0..1 re-ranks for diversity; None
        uses ``kb.mmr``. ``mode``: ``hybrid`` (default), ``dense`` or ``bm25``.
        ``min_score``: passages less similar (cosine) than this are dropped unless BM25 found
        them too; None uses ``kb.min_score``.
        """
        k, mode, min_score = search_args(query, k, mode, min_score, self.options)
        lam = mmr_lambda(mmr, self.options)
        colls = self._targets(collection, document)
        if not colls:
            return []
        n_cand = max(self.options.candidates, k)
        opts = self._index_options()
        qv, dense, sparse = self._retrieve(query, mode, colls, document, n_cand, opts)
        mode = mode if qv is not None else "bm25"  # asked, or the vector index is damaged
        dense_rank = {cid: r for r, (cid, _) in enumerate(dense, start=1)}
        bm25_rank = {cid: r for r, (cid, _) in enumerate(sparse, start=1)}
        sims = dict(dense)
        bm25_score = dict(sparse)
        if mode == "hybrid":
            fused = rrf([[c for c, _ in dense], [c for c, _ in sparse]], self.options.rrf_k)
            ranked = sorted(fused, key=lambda c: (-fused[c], -sims.get(c, -1.0)))
            score = fused
        elif mode == "dense":
            ranked = [c for c, _ in dense]
            score = sims
        else:
            ranked = [c for c, _ in sparse]
            score = bm25_score

        pool = ranked[: max(4 * k, 20)] if lam is not None else ranked[: max(2 * k, 10)]
        rows = self.store.chunks(pool)
        pool = [c for c in pool if c in rows]  # removed meanwhile by another process
        vecs: np.ndarray | None = None
        if qv is not None and pool:
            vecs = self._vectors(pool, rows)
            for c, v in zip(pool, vecs, strict=True):
                sims[c] = float(v @ qv[0])
        if qv is not None:
            keep = [i for i, c in enumerate(pool) if sims[c] >= min_score or c in bm25_rank]
            pool = [pool[i] for i in keep]
            vecs = vecs[keep] if vecs is not None else None
        if lam is not None and vecs is not None and len(pool) > 1:
            order = mmr_select(np.array([score[c] for c in pool]), vecs, k, lam)
            pool = [pool[i] for i in order]
        return [
            Passage(
                chunk_id=rows[c].chunk_key,
                doc_id=rows[c].doc_id,
                title=rows[c].title,
                section=rows[c].section,
                pages=list(rows[c].pages),
                text=rows[c].text,
                score=float(score[c]),
                citation=citation_label(rows[c].title, rows[c].section, rows[c].pages),
                source=rows[c].source,
                char_start=rows[c].char_start,
                char_end=rows[c].char_end,
                collection=rows[c].collection,
                similarity=sims.get(c) if qv is not None else None,
                bm25=bm25_score.get(c),
                dense_rank=dense_rank.get(c),
                bm25_rank=bm25_rank.get(c),
            )
            for c in pool[:k]
        ]

    def _retrieve(
        self,
        query: str,
        mode: Mode,
        colls: list[str],
        document: str | None,
        n: int,
        opts: ix.IndexOptions,
    ) -> tuple[np.ndarray | None, list[tuple[int, float]], list[tuple[int, float]]]:
        """(query vector, dense hits, BM25 hits) for ``mode``: each list (chunk id, score),
        best first, ``n`` at most."""
        qv: np.ndarray | None = None
        dense: list[tuple[int, float]] = []
        if mode != "bm25":
            qv = self._embed([query.strip()], bar=False)
            self._check_embedder(qv.shape[1])
            try:
                dense = self._dense(qv, colls, document, n, opts)
                for c in colls:
                    self.damaged.pop(c, None)
            except StoreError as e:  # a damaged or missing index file: keywords still work
                qv = None
                if not all(c in self.damaged for c in colls):
                    log.warning("searching %s by keywords only: %s", ", ".join(colls), e)
                self.damaged.update(dict.fromkeys(colls, str(e)))
        sparse: list[tuple[int, float]] = []
        if mode != "dense" or qv is None:
            sparse = self.store.bm25(query_terms(query), n, colls, document)
        return qv, dense, sparse

    def index_problem(self, collection: str) -> str | None:
        """Why ``collection``'s vector index cannot be used (then search ranks by keywords
        only), or None. Loads the index when it is not loaded yet."""
        if not any(c.name == collection and c.vectors > 0 for c in self.store.collections()):
            return None
        try:
            self.store.index(collection)
        except StoreError as e:
            self.damaged[collection] = str(e)
            return str(e)
        self.damaged.pop(collection, None)
        return None

    def _targets(self, collection: str | None, document: str | None) -> list[str]:
        if document is not None:
            info = self.store.document(document)
            if info is None:
                raise DocumentNotFoundError(
                    f"no document with id {document!r}; `tutor kb list` shows the ids"
                )
            if collection is not None and info.collection != collection:
                raise DocumentNotFoundError(
                    f"document {document!r} is in collection {info.collection!r}, "
                    f"not {collection!r}"
                )
            return [info.collection]
        colls = self.store.collections()
        if collection is not None:
            if not any(c.name == collection for c in colls):
                # A course with no material loaded yet is a normal state for the tutor: no
                # passages. (``tutor kb search`` checks the name and reports a typo.)
                log.warning(
                    "no collection named %r (collections: %s); add documents with: "
                    "tutor kb add PATH --collection %s",
                    collection,
                    ", ".join(c.name for c in colls) or "none yet",
                    collection,
                )
                return []
            return [c.name for c in colls if c.name == collection and c.vectors > 0]
        return [c.name for c in colls if c.vectors > 0]

    def _dense(
        self,
        qv: np.ndarray,
        colls: list[str],
        document: str | None,
        n: int,
        opts: ix.IndexOptions,
    ) -> list[tuple[int, float]]:
        if document is not None:
            # One document: exact scores over its own vectors (any index kind).
            ids = self.store.chunk_ids(document)
            if len(ids) == 0:
                return []
            vecs = ix.reconstruct(self.store.index(colls[0]), ids)
            s = vecs @ qv[0]
            top = np.argsort(-s)[:n]
            return [(int(ids[i]), float(s[i])) for i in top]
        hits: list[tuple[int, float]] = []
        for coll in colls:
            scores, ids = ix.search(self.store.index(coll), qv, n, opts)
            hits += [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]
        hits.sort(key=lambda h: -h[1])
        return hits[:n]

    def _vectors(self, ids: list[int], rows: dict[int, Any]) -> np.ndarray:
        dim = self.store.index(rows[ids[0]].collection).d
        out = np.zeros((len(ids), dim), dtype=np.float32)
        by_coll: dict[str, list[int]] = {}
        for pos, c in enumerate(ids):
            by_coll.setdefault(rows[c].collection, []).append(pos)
        for coll, positions in by_coll.items():
            index = self.store.index(coll)
            present = [p for p in positions if _has_id(index, ids[p])]
            if present:
                out[present] = ix.reconstruct(index, np.array([ids[p] for p in present]))
        return out


def _has_id(index: Any, i: int) -> bool:
    try:
        index.reconstruct(int(i))
        return True
    except RuntimeError:
        return False


def _dimension(embedder: Any) -> int | None:
    try:
        d = embedder.dimension
        return int(d) if d else None
    except (AttributeError, TypeError, ValueError):
        return None


def _set(res: FileResult, status: Status, doc_id: str | None, title: str | None, n: int) -> None:
    res.status, res.doc_id, res.title, res.chunks = status, doc_id, title, n
