"""The store: SQLite rows (documents, chunks) + one BM25 full-text index and one FAISS index
per collection.

Layout of a knowledge-base directory::

    kb.sqlite                  documents, chunks, collections, meta; an FTS5 table per
                               collection for BM25 (``knowledge_base.fts``)
    index/<collection>.<generation>.faiss
    write.lock                 held by the one process writing

Atomic writes. A write builds the collection's next index in memory, writes it to a *new*
file (temp file, fsync, rename) named by the next generation, and only then commits one SQLite
transaction that changes the rows and points the collection at that generation. The commit is
the single moment the change happens: killed before it, the database still names the old
index file, which is still on disk; killed after it, the new file is complete. Index files no
longer named by the database are deleted by the next writer (the previous generation is kept
a little longer for readers in other processes). Chunk ids are never reused, so a reader
holding an older index can never map an id to somebody else's row.

Readers check the collection's generation on every search and reload the index when another
process has committed, so a long-running server sees new documents.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base import fts
from knowledge_base import index as ix
from knowledge_base.diskspace import disk_full_message, no_space
from knowledge_base.errors import DiskFullError, DocumentNotFoundError, StoreError
from knowledge_base.filelock import FileLock
from knowledge_base.records import (
    COLLECTION_RE,
    ChunkRow,
    CollectionInfo,
    DocumentInfo,
    NewDocument,
    WriteResult,
    validate_collection,
)
from knowledge_base.rows import reconcile, rollback, write_meta, write_rows
from knowledge_base.schema import MIGRATIONS, statements

__all__ = [
    "COLLECTION_RE",
    "MIGRATIONS",
    "ChunkRow",
    "CollectionInfo",
    "DocumentInfo",
    "NewDocument",
    "Store",
    "WriteResult",
    "disk_full_message",
    "no_space",
    "validate_collection",
]

log = logging.getLogger(__name__)

DB_NAME = "kb.sqlite"
INDEX_DIR = "index"
LOCK_NAME = "write.lock"


class Store:
    """Rows in SQLite and vectors in FAISS, kept in agreement. Thread-safe; one writer process."""

    # Test seam: called with a point name during a write ("index_written", "rows_written",
    # "committed"), so tests can kill the process at exactly that moment.
    fault_hook: Callable[[str], None] | None = None

    def __init__(self, directory: str | Path, *, lock_timeout: float = 30.0) -> None:
        self.dir = Path(directory).expanduser().resolve()
        try:
            (self.dir / INDEX_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            if no_space(e, self.dir):
                raise DiskFullError(disk_full_message(self.dir)) from e
            raise StoreError(f"cannot create the knowledge-base directory {self.dir}: {e}") from e
        self.db_path = self.dir / DB_NAME
        self.lock_timeout = lock_timeout
        self._lock = threading.RLock()
        self._indexes: dict[str, tuple[int, Any]] = {}
        # A directory this process cannot write (a replica's read-only mount of the course):
        # SQLite cannot create the WAL's -shm file there, so the database is opened immutable,
        # which holds while nobody changes it; restart the process after the KB is updated.
        self.read_only = self.db_path.exists() and not os.access(self.dir, os.W_OK)
        try:
            if self.read_only:
                self._conn = sqlite3.connect(
                    f"{self.db_path.as_uri()}?mode=ro&immutable=1",
                    uri=True,
                    check_same_thread=False,
                    isolation_level=None,
                )
                log.info("knowledge base %s is read-only here: searching only", self.dir)
            else:
                self._conn = sqlite3.connect(
                    self.db_path, check_same_thread=False, isolation_level=None, timeout=30.0
                )
            self._conn.row_factory = sqlite3.Row
            if not self.read_only:
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            if no_space(e, self.dir):
                raise DiskFullError(disk_full_message(self.dir)) from e
            raise StoreError(
                f"{self.db_path} is not a usable knowledge-base database ({e}); "
                "move it away and add the documents again"
            ) from e

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        with self._lock:
            self._indexes.clear()
            self._conn.close()

    def _migrate(self) -> None:
        c = self._conn
        if not self.read_only:
            c.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)"
            )
        done = {r[0] for r in c.execute("SELECT name FROM migrations")}
        known = {name for name, _ in MIGRATIONS}
        if done - known:
            raise StoreError(
                f"{self.db_path} was written by a newer version of the tutor "
                f"(migrations {sorted(done - known)}); upgrade the tutor to open it"
            )
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            with self._write_lock():
                if c.execute("SELECT 1 FROM migrations WHERE name=?", (name,)).fetchone():
                    continue
                c.execute("BEGIN IMMEDIATE")
                try:
                    if callable(sql):
                        sql(c)
                    else:
                        for stmt in statements(sql):
                            c.execute(stmt)
                    c.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
                    c.execute("COMMIT")
                except BaseException:
                    rollback(c)
                    raise
                log.debug("applied migration %s", name)

    def _write_lock(self) -> FileLock:
        if self.read_only:
            raise StoreError(
                f"the knowledge base in {self.dir} is read-only for this process: add or remove "
                "documents where it is writable (the machine that holds it), then restart the "
                "servers that read this copy"
            )
        return FileLock(self.dir / LOCK_NAME, self.lock_timeout)

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several reads."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    def _hook(self, point: str) -> None:
        hook = type(self).fault_hook
        if hook is not None:
            hook(point)

    def _index_path(self, collection: str, generation: int) -> Path:
        return self.dir / INDEX_DIR / f"{collection}.{generation}.faiss"

    # ------------------------------------------------------------------ meta

    def embedder_info(self) -> tuple[str, int] | None:
        """(name, dimension) of the embedder the store was built with; None when never set."""
        with self._read() as c:
            rows = dict(c.execute("SELECT key, value FROM meta WHERE key LIKE 'embedder_%'"))
        if "embedder_name" not in rows:
            return None
        return rows["embedder_name"], int(rows["embedder_dimension"])

    # ------------------------------------------------------------------ reads

    def collections(self) -> list[CollectionInfo]:
        with self._read() as c:
            rows = c.execute(
                """SELECT co.name, co.generation, co.index_kind, co.ntotal,
                          (SELECT COUNT(*) FROM documents d WHERE d.collection = co.name),
                          (SELECT COUNT(*) FROM chunks k WHERE k.collection = co.name)
                   FROM collections co ORDER BY co.name"""
            ).fetchall()
        return [
            CollectionInfo(
                name=r[0],
                generation=r[1],
                index_kind=r[2],
                vectors=r[3],
                documents=r[4],
                chunks=r[5],
            )
            for r in rows
        ]

    def documents(self, collection: str | None = None) -> list[DocumentInfo]:
        sql = "SELECT * FROM documents"
        args: tuple[Any, ...] = ()
        if collection is not None:
            sql += " WHERE collection=?"
            args = (collection,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY collection, title, doc_id", args).fetchall()
        return [DocumentInfo(**dict(r)) for r in rows]

    def document(self, doc_id: str) -> DocumentInfo | None:
        with self._lock:
            r = self._conn.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return DocumentInfo(**dict(r)) if r else None

    def document_by_source(self, collection: str, source: str) -> DocumentInfo | None:
        with self._lock:
            r = self._conn.execute(
                "SELECT * FROM documents WHERE collection=? AND source=?", (collection, source)
            ).fetchone()
        return DocumentInfo(**dict(r)) if r else None

    def chunk_ids(self, doc_id: str) -> np.ndarray:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id FROM chunks WHERE doc_id=? ORDER BY id", (doc_id,)
            ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def chunks(self, ids: Sequence[int] | np.ndarray) -> dict[int, ChunkRow]:
        """Rows for ``ids`` (missing ids, e.g. removed meanwhile, are left out)."""
        out: dict[int, ChunkRow] = {}
        ids = [int(i) for i in ids]
        with self._lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                q = ",".join("?" * len(part))
                for r in self._conn.execute(
                    f"""SELECT c.*, d.source FROM chunks c JOIN documents d USING (doc_id)
                        WHERE c.id IN ({q})""",
                    part,
                ):
                    d = dict(r)
                    d["pages"] = json.loads(d["pages"])
                    out[d["id"]] = ChunkRow(**d)
        return out

    def doc_chunks(self, doc_id: str) -> list[ChunkRow]:
        ids = self.chunk_ids(doc_id)
        rows = self.chunks(ids)
        return sorted(rows.values(), key=lambda r: r.ordinal)

    def bm25(
        self,
        terms: Sequence[str],
        limit: int,
        collections: Sequence[str] | None = None,
        doc_id: str | None = None,
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score; higher is better) for chunks matching any of ``terms``.

        Each collection is scored with its own statistics (``knowledge_base.fts``); None
        searches every collection.
        """
        with self._lock:
            if collections is None:
                collections = [r[0] for r in self._conn.execute("SELECT name FROM collections")]
            return fts.search(self._conn, collections, terms, limit, doc_id)

    # ------------------------------------------------------------------ indexes

    def index(self, collection: str) -> Any:
        """The collection's FAISS index at the generation the database names (cached)."""
        for _ in range(20):
            with self._lock:
                row = self._conn.execute(
                    "SELECT generation, ntotal FROM collections WHERE name=?", (collection,)
                ).fetchone()
                if row is None:
                    raise DocumentNotFoundError(f"no collection named {collection!r}")
                gen, ntotal = int(row[0]), int(row[1])
                cached = self._indexes.get(collection)
                if cached is not None and cached[0] == gen:
                    return cached[1]
                path = self._index_path(collection, gen)
                try:
                    index = ix.read(path)
                except RuntimeError:
                    if path.exists():
                        raise StoreError(
                            f"the index file {path} is damaged; remove the collection's "
                            "documents and add them again"
                        ) from None
                    # A writer in another process moved on and removed it: re-read the row.
                    index = None
                if index is not None:
                    if index.ntotal != ntotal:
                        raise StoreError(
                            f"the index file {path} holds {index.ntotal} vectors but the database "
                            f"expects {ntotal}; remove the collection and add its documents again"
                        )
                    self._indexes[collection] = (gen, index)
                    return index
            time.sleep(0.05)
        raise StoreError(f"the index file for collection {collection!r} is missing")

    def check(self) -> list[str]:
        """Problems found comparing every index with the rows (empty when consistent)."""
        problems = []
        for info in self.collections():
            try:
                index = self.index(info.name)
            except StoreError as e:
                problems.append(str(e))
                continue
            ids, _ = ix.all_vectors(index)
            with self._lock:
                rows = {
                    r[0]
                    for r in self._conn.execute(
                        "SELECT id FROM chunks WHERE collection=?", (info.name,)
                    )
                }
            if set(ids.tolist()) != rows:
                problems.append(
                    f"collection {info.name!r}: {len(set(ids.tolist()) - rows)} vectors without "
                    f"rows, {len(rows - set(ids.tolist()))} rows without vectors"
                )
        with self._lock:
            orphans = self._conn.execute(
                "SELECT COUNT(*) FROM chunks c LEFT JOIN documents d USING (doc_id) "
                "WHERE d.doc_id IS NULL"
            ).fetchone()[0]
            unindexed = [
                (name, n, fts.count(self._conn, name))
                for name, n in self._conn.execute(
                    "SELECT collection, COUNT(*) FROM chunks GROUP BY collection"
                )
            ]
            bad_counts = self._conn.execute(
                "SELECT COUNT(*) FROM documents d WHERE n_chunks != "
                "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.doc_id)"
            ).fetchone()[0]
        if orphans:
            problems.append(f"{orphans} chunks without a document")
        for name, n, indexed in unindexed:
            if indexed != n:
                problems.append(
                    f"collection {name!r}: full-text index has {indexed} rows for {n} chunks"
                )
        if bad_counts:
            problems.append(f"{bad_counts} documents whose chunk count does not match")
        return problems

    # ------------------------------------------------------------------ writes

    def write(
        self,
        collection: str,
        new: Sequence[NewDocument],
        *,
        remove: Sequence[str] = (),
        options: ix.IndexOptions | None = None,
        embedder: tuple[str, int] | None = None,
    ) -> WriteResult:
        """Add ``new`` documents and remove ``remove`` (doc ids) in ``collection``, atomically.

        Under the write lock the request is reconciled with what is stored *now* (another
        process may have written since the caller looked): a new document whose source is
        already stored replaces it; one whose id is already stored is skipped as a duplicate.
        """
        validate_collection(collection)
        opts = options or ix.IndexOptions()
        with self._lock, self._write_lock():
            self._cleanup_files()
            c = self._conn
            result, to_add, remove_ids = reconcile(c, collection, new, remove)
            if not to_add and not remove_ids:
                return result
            dim = embedder[1] if embedder else None
            for nd in to_add:
                v = nd.vectors
                if v.ndim != 2 or v.shape[0] != len(nd.chunks) or (dim and v.shape[1] != dim):
                    raise ValueError(
                        f"{nd.doc.name}: {len(nd.chunks)} chunks of dimension {dim} "
                        f"but vectors of shape {v.shape}"
                    )
                dim = dim or v.shape[1]
            try:
                self._apply(collection, to_add, sorted(remove_ids), opts, embedder, dim)
            except (OSError, RuntimeError, sqlite3.Error) as e:
                # The new index file is removed and the transaction rolled back (``_apply``):
                # readers still see the previous state, whole.
                if no_space(e, self.dir):
                    raise DiskFullError(disk_full_message(self.dir)) from e
                if isinstance(e, sqlite3.OperationalError) and "i/o error" in str(e).lower():
                    raise StoreError(
                        f"a disk I/O error stopped the write to {self.dir}: the knowledge base "
                        "was left as it was; check the disk and run the command again"
                    ) from e
                raise
            result.added = [nd.doc.doc_id for nd in to_add]
            result.removed = sorted(remove_ids)
            return result

    def _apply(
        self,
        collection: str,
        to_add: Sequence[NewDocument],
        remove_docs: Sequence[str],
        opts: ix.IndexOptions,
        embedder: tuple[str, int] | None,
        dim: int | None,
    ) -> None:
        c = self._conn
        row = c.execute(
            "SELECT generation, index_kind, ntotal, trained_n FROM collections WHERE name=?",
            (collection,),
        ).fetchone()
        gen = int(row[0]) if row else 0
        trained_n = int(row[3]) if row else 0
        if row is not None and gen > 0:
            # A private copy: searches in other threads keep using the live index meanwhile.
            index = ix.clone(self.index(collection))
        elif dim is not None:
            index = ix.new_index("flat", dim, opts)
        else:
            return
        new_path: Path | None = None
        try:
            # 1. the next index, in memory
            index, new_ids, next_id = self._next_index(index, to_add, remove_docs, opts)
            index, trained_n = self._maybe_rebuild(index, opts, trained_n)
            # 2. the next index, on disk under a new name
            new_gen = gen + 1
            new_path = self._index_path(collection, new_gen)
            ix.write_atomic(index, new_path)
            self._hook("index_written")
            # 3. the rows, and the pointer to the new index, in one transaction
            c.execute("BEGIN IMMEDIATE")
            try:
                write_rows(c, collection, to_add, new_ids, remove_docs)
                self._hook("rows_written")
                c.execute(
                    "UPDATE collections SET generation=?, index_kind=?, ntotal=?, trained_n=? "
                    "WHERE name=?",
                    (new_gen, ix.kind_of(index), int(index.ntotal), trained_n, collection),
                )
                write_meta(c, next_id, embedder, dim)
                c.execute("COMMIT")
            except BaseException:
                rollback(c)
                raise
            new_path = None  # committed: the file is live now
            self._hook("committed")
            self._indexes[collection] = (new_gen, index)
        finally:
            if new_path is not None:
                with contextlib.suppress(OSError):
                    new_path.unlink()
        self._cleanup_files()

    def _next_index(
        self,
        index: Any,
        to_add: Sequence[NewDocument],
        remove_docs: Sequence[str],
        opts: ix.IndexOptions,
    ) -> tuple[Any, list[np.ndarray], int]:
        """``index`` without ``remove_docs``' vectors and with ``to_add``'s, under new ids;
        returns (index, the new ids per document, the next free id)."""
        c = self._conn
        if remove_docs:
            q = ",".join("?" * len(remove_docs))
            old_ids = np.array(
                [
                    r[0]
                    for r in c.execute(
                        f"SELECT id FROM chunks WHERE doc_id IN ({q})", list(remove_docs)
                    )
                ],
                dtype=np.int64,
            )
            index = ix.remove(index, old_ids, opts)
        # Ids are never reused (see the module docstring).
        stored = c.execute("SELECT value FROM meta WHERE key='next_chunk_id'").fetchone()
        top = c.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM chunks").fetchone()[0]
        next_id = max(int(stored[0]) if stored else 1, int(top))
        new_ids: list[np.ndarray] = []
        for nd in to_add:
            ids = np.arange(next_id, next_id + len(nd.chunks), dtype=np.int64)
            next_id += len(nd.chunks)
            new_ids.append(ids)
            ix.add(index, ids, nd.vectors)
        return index, new_ids, next_id

    def _maybe_rebuild(self, index: Any, opts: ix.IndexOptions, trained_n: int) -> tuple[Any, int]:
        """Switch kind (flat <-> IVF, or as configured) or retrain IVF after 4x growth."""
        n = int(index.ntotal)
        kind = ix.kind_of(index)
        want = opts.kind_for(n, kind)
        if want == kind and not (kind == "ivf" and n > 4 * max(trained_n, 1)):
            return index, trained_n
        log.info("rebuilding a %s index of %d vectors as %s", kind, n, want)
        ids, vecs = ix.all_vectors(index)
        new = ix.build(want, index.d, ids, vecs, opts)
        return new, (n if want == "ivf" else 0)

    def remove_documents(
        self, doc_ids: Sequence[str], options: ix.IndexOptions | None = None
    ) -> list[DocumentInfo]:
        """Remove documents (possibly in several collections); unknown ids raise first."""
        infos = []
        for doc_id in doc_ids:
            info = self.document(doc_id)
            if info is None:
                raise DocumentNotFoundError(
                    f"no document with id {doc_id!r}; `tutor kb list` shows the ids"
                )
            infos.append(info)
        by_coll: dict[str, list[str]] = {}
        for info in infos:
            by_coll.setdefault(info.collection, []).append(info.doc_id)
        for coll, ids in by_coll.items():
            self.write(coll, [], remove=ids, options=options)
        return infos

    def drop_collection(self, name: str) -> CollectionInfo:
        with self._lock, self._write_lock():
            info = next((x for x in self.collections() if x.name == name), None)
            if info is None:
                raise DocumentNotFoundError(f"no collection named {name!r}")
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                fts.drop(c, name)
                c.execute("DELETE FROM chunks WHERE collection=?", (name,))
                c.execute("DELETE FROM documents WHERE collection=?", (name,))
                c.execute("DELETE FROM collections WHERE name=?", (name,))
                c.execute("COMMIT")
            except BaseException:
                rollback(c)
                raise
            self._indexes.pop(name, None)
            self._cleanup_files()
        return info

    def _cleanup_files(self) -> None:
        """Delete index files the database no longer names (keeping the previous generation,
        which readers in other processes may still be loading). Called under the write lock."""
        live = {
            r[0]: int(r[1]) for r in self._conn.execute("SELECT name, generation FROM collections")
        }
        for f in (self.dir / INDEX_DIR).iterdir():
            m = re.match(r"^(.*)\.(\d+)\.faiss$", f.name)
            stale = False
            if f.name.startswith(".") and f.name.endswith(".tmp"):
                stale = True  # a temp file of a killed writer (we hold the lock)
            elif m:
                coll, gen = m.group(1), int(m.group(2))
                cur = live.get(coll)
                stale = cur is None or gen > cur or gen < cur - 1
            if stale:
                with contextlib.suppress(OSError):
                    f.unlink()

    def disk_bytes(self) -> int:
        total = 0
        for f in [*self.dir.glob(DB_NAME + "*"), *(self.dir / INDEX_DIR).glob("*.faiss")]:
            with contextlib.suppress(OSError):
                total += f.stat().st_size
        return total
