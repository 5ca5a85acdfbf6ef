"""SQL of the store's write path: reconciling a request with the stored rows, writing the rows
and their BM25 index, and rolling back. Each function runs in the caller's transaction."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Sequence

import numpy as np

from knowledge_base import fts
from knowledge_base.errors import InputError
from knowledge_base.records import NewDocument, WriteResult


def reconcile(
    c: sqlite3.Connection, collection: str, new: Sequence[NewDocument], remove: Sequence[str]
) -> tuple[WriteResult, list[NewDocument], set[str]]:
    """What a write request means against the rows stored now: (the result so far, the
    documents to add, the doc ids to remove). A new document whose source is stored replaces
    it; one whose id is stored from another source is a duplicate and skipped."""
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
    return result, to_add, remove_ids


def write_rows(
    c: sqlite3.Connection,
    collection: str,
    to_add: Sequence[NewDocument],
    new_ids: Sequence[np.ndarray],
    remove_docs: Sequence[str],
) -> None:
    """Delete ``remove_docs`` and insert ``to_add`` (rows and BM25 index), in the open
    transaction."""
    now = time.time()
    c.execute(
        "INSERT OR IGNORE INTO collections(name, created_at) VALUES (?, ?)", (collection, now)
    )
    fts.create(c, collection)
    if remove_docs:
        q = ",".join("?" * len(remove_docs))
        fts.unindex_rows(c, collection, f"doc_id IN ({q})", list(remove_docs))
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
        fts.index_rows(c, collection, "doc_id = ?", [d.doc_id])


def write_meta(
    c: sqlite3.Connection, next_id: int, embedder: tuple[str, int] | None, dim: int | None
) -> None:
    c.execute(
        "INSERT INTO meta VALUES ('next_chunk_id', ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (str(next_id),),
    )
    if embedder is not None or dim is not None:
        name, edim = embedder if embedder else ("unknown", dim)
        c.execute("INSERT OR IGNORE INTO meta VALUES ('embedder_name', ?)", (name,))
        c.execute("INSERT OR IGNORE INTO meta VALUES ('embedder_dimension', ?)", (str(edim),))


def rollback(c: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any. SQLite may already have rolled it back itself
    (it does on "database or disk is full"); a second ROLLBACK would then raise "no transaction
    is active" and hide the real error."""
    if c.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            c.execute("ROLLBACK")
