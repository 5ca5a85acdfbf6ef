"""The store: SQLite rows (documents, chunks, BM25 full-text index) + one FAISS index per collection.

Layout of a knowledge-base directory::

    kb.sqlite                  documents, chunks, collections, meta; FTS5 table for BM25
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
import errno
import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base import index as ix
from knowledge_base.chunk import Chunk
from knowledge_base.errors import DiskFullError, DocumentNotFoundError, StoreError
from knowledge_base.load import Document
from tutor.errors import InputError

log = logging.getLogger(__name__)

DB_NAME = "kb.sqlite"
INDEX_DIR = "index"
LOCK_NAME = "write.lock"
COLLECTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

# Named migrations, applied once each, in order (recorded in ``migrations``).
MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE collections (
            name TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            generation INTEGER NOT NULL DEFAULT 0,
            index_kind TEXT NOT NULL DEFAULT 'flat',
            ntotal INTEGER NOT NULL DEFAULT 0,
            trained_n INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE documents (
            doc_id TEXT PRIMARY KEY,
            collection TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
            source TEXT NOT NULL,
            name TEXT NOT NULL,
            title TEXT NOT NULL,
            format TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            pages INTEGER NOT NULL DEFAULT 0,
            n_chunks INTEGER NOT NULL,
            added_at REAL NOT NULL,
            UNIQUE (collection, source)
        );
        CREATE INDEX documents_hash ON documents(collection, content_hash);
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,
            chunk_key TEXT NOT NULL UNIQUE,
            doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
            collection TEXT NOT NULL,
            ordinal INTEGER NOT NULL,
            title TEXT NOT NULL,
            section TEXT NOT NULL,
            pages TEXT NOT NULL,
            char_start INTEGER NOT NULL,
            char_end INTEGER NOT NULL,
            n_tokens INTEGER NOT NULL,
            text TEXT NOT NULL
        );
        CREATE INDEX chunks_doc ON chunks(doc_id);
        CREATE INDEX chunks_collection ON chunks(collection);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, section, title,
            content='chunks', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text, section, title)
            VALUES (new.id, new.text, new.section, new.title);
        END;
        CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text, section, title)
            VALUES ('delete', old.id, old.text, old.section, old.title);
        END;
        """,
    ),
    (
        # How a document was chunked (budget, overlap, chunker version): re-adding an unchanged
        # file with other chunk settings re-chunks it instead of skipping it.
        "0002_chunking_signature",
        "ALTER TABLE documents ADD COLUMN chunking TEXT NOT NULL DEFAULT ''",
    ),
]

# BM25 column weights: chunk text, section path, title.
BM25_WEIGHTS = (1.0, 0.5, 0.25)


@dataclass
class DocumentInfo:
    doc_id: str
    collection: str
    title: str
    source: str
    name: str
    format: str
    content_hash: str
    bytes: int
    pages: int
    n_chunks: int
    added_at: float
    chunking: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CollectionInfo:
    name: str
    documents: int
    chunks: int
    vectors: int
    index_kind: str
    generation: int


@dataclass
class ChunkRow:
    id: int
    chunk_key: str
    doc_id: str
    collection: str
    ordinal: int
    title: str
    section: str
    pages: list[int]
    char_start: int
    char_end: int
    n_tokens: int
    text: str
    source: str


@dataclass
class NewDocument:
    """A loaded, chunked and embedded document waiting to be written."""

    doc: Document
    chunks: list[Chunk]
    vectors: np.ndarray
    chunking: str = ""


@dataclass
class WriteResult:
    added: list[str]  # doc ids
    replaced: dict[str, str]  # new doc id -> old doc id
    duplicates: dict[str, str]  # doc id of a skipped document -> why
    removed: list[str]


def validate_collection(name: str) -> str:
    if not isinstance(name, str) or not COLLECTION_RE.match(name):
        raise InputError(
            f"collection name {name!r} is not valid; use 1-64 letters, digits, '.', '_' or '-' "
            "starting with a letter or digit (e.g. 'grade6-math')"
        )
    return name


class _FileLock:
    """An exclusive inter-process lock on a file (fcntl on POSIX, msvcrt on Windows)."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._fh: Any = None

    def __enter__(self) -> _FileLock:
        self._fh = open(self.path, "a+b")  # noqa: SIM115 - held until __exit__
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if os.name == "nt":  # pragma: no cover
                    import msvcrt

                    msvcrt.locking(self._fh.fileno(), msvcrt.LK_NBLCK, 1)
                else:
                    import fcntl

                    fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError:
                if time.monotonic() >= deadline:
                    self._fh.close()
                    raise StoreError(
                        f"another process is writing to the knowledge base ({self.path.parent}); "
                        "wait for it to finish (or stop it) and try again"
                    ) from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        try:
            if os.name == "nt":  # pragma: no cover
                import msvcrt

                msvcrt.locking(self._fh.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        finally:
            self._fh.close()


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
                    for stmt in _statements(sql):
                        c.execute(stmt)
                    c.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
                    c.execute("COMMIT")
                except BaseException:
                    _rollback(c)
                    raise
                log.debug("applied migration %s", name)

    def _write_lock(self) -> _FileLock:
        if self.read_only:
            raise StoreError(
                f"the knowledge base in {self.dir} is read-only for this process: add or remove "
                "documents where it is writable (the machine that holds it), then restart the "
                "servers that read this copy"
            )
        return _FileLock(self.dir / LOCK_NAME, self.lock_timeout)

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

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
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
        """(chunk id, BM25 score; higher is better) for chunks matching any of ``terms``."""
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        w = ", ".join(str(x) for x in BM25_WEIGHTS)
        sql = (
            f"SELECT c.id, bm25(chunks_fts, {w}) AS s FROM chunks_fts "
            "JOIN chunks c ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH ?"
        )
        args: list[Any] = [match]
        if collections is not None:
            sql += f" AND c.collection IN ({','.join('?' * len(collections))})"
            args += list(collections)
        if doc_id is not None:
            sql += " AND c.doc_id = ?"
            args.append(doc_id)
        sql += " ORDER BY s LIMIT ?"
        args.append(int(limit))
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]

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
            fts = self._conn.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0]
            n = self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            bad_counts = self._conn.execute(
                "SELECT COUNT(*) FROM documents d WHERE n_chunks != "
                "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.doc_id)"
            ).fetchone()[0]
        if orphans:
            problems.append(f"{orphans} chunks without a document")
        if fts != n:
            problems.append(f"full-text index has {fts} rows for {n} chunks")
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
            result = WriteResult(added=[], replaced={}, duplicates={}, removed=[])
            remove_ids = set(remove)
            to_add: list[NewDocument] = []
            seen: set[str] = set()
            for nd in new:
                d = nd.doc
                if d.doc_id in seen:
                    result.duplicates[d.doc_id] = "listed twice in this batch"
                    continue
                old = c.execute(
                    "SELECT doc_id FROM documents WHERE collection=? AND source=?",
                    (collection, d.source),
                ).fetchone()
                existing = c.execute(
                    "SELECT doc_id, source FROM documents WHERE doc_id=?", (d.doc_id,)
                ).fetchone()
                # The same id stored from another source: a duplicate. (From the same source it
                # is this document re-chunked, replaced below.)
                if (
                    existing is not None
                    and existing["doc_id"] not in remove_ids
                    and (old is None or old[0] != existing["doc_id"])
                ):
                    result.duplicates[d.doc_id] = (
                        f"the same content is already stored as {existing['doc_id']} "
                        f"(from {existing['source']})"
                    )
                    continue
                if old is not None:
                    remove_ids.add(old[0])
                    result.replaced[d.doc_id] = old[0]
                seen.add(d.doc_id)
                to_add.append(nd)
            if remove_ids:
                placeholders = ",".join("?" * len(remove_ids))
                rows = c.execute(
                    f"SELECT doc_id, collection FROM documents WHERE doc_id IN ({placeholders})",
                    list(remove_ids),
                ).fetchall()
                other = [r[0] for r in rows if r[1] != collection]
                if other:
                    raise InputError(
                        f"documents {other} are not in collection {collection!r}; remove them "
                        "from their own collection"
                    )
                remove_ids = {r[0] for r in rows}
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
            index, trained_n = self._maybe_rebuild(index, opts, trained_n)
            # 2. the next index, on disk under a new name
            new_gen = gen + 1
            new_path = self._index_path(collection, new_gen)
            ix.write_atomic(index, new_path)
            self._hook("index_written")
            # 3. the rows, and the pointer to the new index, in one transaction
            c.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                c.execute(
                    "INSERT OR IGNORE INTO collections(name, created_at) VALUES (?, ?)",
                    (collection, now),
                )
                if remove_docs:
                    q = ",".join("?" * len(remove_docs))
                    c.execute(f"DELETE FROM chunks WHERE doc_id IN ({q})", list(remove_docs))
                    c.execute(f"DELETE FROM documents WHERE doc_id IN ({q})", list(remove_docs))
                for nd, ids in zip(to_add, new_ids, strict=True):
                    d = nd.doc
                    c.execute(
                        "INSERT INTO documents (doc_id, collection, source, name, title, format, "
                        "content_hash, bytes, pages, n_chunks, added_at, chunking) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            d.doc_id,
                            collection,
                            d.source,
                            d.name,
                            d.title,
                            d.format,
                            d.content_hash,
                            d.size,
                            d.pages,
                            len(nd.chunks),
                            now,
                            nd.chunking,
                        ),
                    )
                    c.executemany(
                        "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        [
                            (
                                int(i),
                                ch.chunk_id,
                                d.doc_id,
                                collection,
                                ch.ordinal,
                                ch.title,
                                ch.section,
                                json.dumps(ch.pages),
                                ch.char_start,
                                ch.char_end,
                                ch.n_tokens,
                                ch.text,
                            )
                            for i, ch in zip(ids, nd.chunks, strict=True)
                        ],
                    )
                self._hook("rows_written")
                c.execute(
                    "UPDATE collections SET generation=?, index_kind=?, ntotal=?, trained_n=? "
                    "WHERE name=?",
                    (new_gen, ix.kind_of(index), int(index.ntotal), trained_n, collection),
                )
                c.execute(
                    "INSERT INTO meta VALUES ('next_chunk_id', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (str(next_id),),
                )
                if embedder is not None or dim is not None:
                    name, edim = embedder if embedder else ("unknown", dim)
                    c.execute("INSERT OR IGNORE INTO meta VALUES ('embedder_name', ?)", (name,))
                    c.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('embedder_dimension', ?)", (str(edim),)
                    )
                c.execute("COMMIT")
            except BaseException:
                _rollback(c)
                raise
            new_path = None  # committed: the file is live now
            self._hook("committed")
            self._indexes[collection] = (new_gen, index)
        finally:
            if new_path is not None:
                with contextlib.suppress(OSError):
                    new_path.unlink()
        self._cleanup_files()

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
                c.execute("DELETE FROM chunks WHERE collection=?", (name,))
                c.execute("DELETE FROM documents WHERE collection=?", (name,))
                c.execute("DELETE FROM collections WHERE name=?", (name,))
                c.execute("COMMIT")
            except BaseException:
                _rollback(c)
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


def _rollback(c: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any. SQLite may already have rolled it back itself
    (it does on "database or disk is full"); a second ROLLBACK would then raise "no transaction
    is active" and hide the real error."""
    if c.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            c.execute("ROLLBACK")


# errno values that mean "no room": disk full, file-size limit (ulimit -f), disk quota.
_NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def no_space(e: BaseException, directory: Path | None = None) -> bool:
    """Whether ``e`` (or an error it wraps) says the disk or the file-size limit ran out.

    SQLite reports a write refused for the file-size limit (EFBIG) only as "disk I/O error":
    that counts when a limit is set or ``directory``'s disk is nearly full.
    """
    seen: set[int] = set()
    err: BaseException | None = e
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _NO_SPACE_ERRNOS:
            return True
        msg = str(err).lower()
        if isinstance(err, sqlite3.Error) and ("disk is full" in msg or "file too large" in msg):
            return True
        # faiss reports a failed fwrite without the errno: "write error in PATH"
        if isinstance(err, RuntimeError) and "write error" in msg:
            return True
        if isinstance(err, sqlite3.Error) and "disk i/o error" in msg:
            return _file_size_limited() or _nearly_full(directory)
        err = err.__cause__ or err.__context__
    return False


def _file_size_limited() -> bool:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return False
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    return soft != resource.RLIM_INFINITY


def _nearly_full(directory: Path | None, margin: int = 64 * 2**20) -> bool:
    if directory is None:
        return False
    try:
        return shutil.disk_usage(directory).free < margin
    except OSError:
        return False


def disk_full_message(directory: Path) -> str:
    try:
        free = f"{shutil.disk_usage(directory).free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    return (
        f"no room left to save the knowledge base in {directory} ({free}, or the file-size "
        "limit was reached): the knowledge base was left as it was. Free some disk space (or "
        "set TUTOR_HOME to a bigger disk) and run the command again"
    )


def _statements(sql: str) -> list[str]:
    """Split a migration script into statements (trigger bodies keep their inner ';')."""
    out: list[str] = []
    buf = ""
    for part in sql.split(";"):
        buf += part
        if sqlite3.complete_statement(buf + ";"):
            if buf.strip():
                out.append(buf.strip() + ";")
            buf = ""
        else:
            buf += ";"
    if buf.strip():
        out.append(buf.strip())
    return out
