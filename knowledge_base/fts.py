"""BM25 full-text search: one SQLite FTS5 index per collection.

Each collection has its own FTS5 table (``fts_<hex of the name>``; hex because SQLite table
names ignore case while collection names do not), an external-content index over its rows of
``chunks``. BM25's statistics (number of chunks, document frequency of each term, average
length) therefore come from that collection alone: a teacher adding or removing another
course never changes this course's scores or rankings.

The store keeps the index in step with the rows inside its own write transaction:
``index_rows`` after inserting chunks, ``unindex_rows`` before deleting them, ``drop`` with
the collection. A search over several collections runs each collection's query and merges
the hits by score.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

log = logging.getLogger(__name__)

TOKENIZE = "porter unicode61 remove_diacritics 2"
# BM25 column weights: chunk text, section path, title.
BM25_WEIGHTS = (1.0, 0.5, 0.25)


def table_name(collection: str) -> str:
    """The FTS5 table of ``collection`` (letters, digits and ``_`` only: safe in SQL)."""
    return "fts_" + collection.encode("utf-8").hex()


def exists(c: sqlite3.Connection, collection: str) -> bool:
    row = c.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table_name(collection),)
    ).fetchone()
    return row is not None


def create(c: sqlite3.Connection, collection: str) -> None:
    """Create the collection's (empty) index if it has none."""
    c.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {table_name(collection)} USING fts5("
        "text, section, title, content='chunks', content_rowid='id', "
        f"tokenize='{TOKENIZE}')"
    )


def _rows_sql(where: str) -> str:
    return f"SELECT id, text, section, title FROM chunks WHERE collection=? AND ({where})"


def index_rows(c: sqlite3.Connection, collection: str, where: str, args: Sequence[object]) -> None:
    """Add the collection's chunk rows matching ``where`` (SQL on ``chunks``) to its index."""
    t = table_name(collection)
    c.execute(
        f"INSERT INTO {t}(rowid, text, section, title) {_rows_sql(where)}",
        [collection, *args],
    )


def unindex_rows(
    c: sqlite3.Connection, collection: str, where: str, args: Sequence[object]
) -> None:
    """Remove rows matching ``where`` from the index; call it before deleting the rows (an
    external-content index is told the old values to forget)."""
    t = table_name(collection)
    c.execute(
        f"INSERT INTO {t}({t}, rowid, text, section, title) "
        f"SELECT 'delete', id, text, section, title FROM ({_rows_sql(where)})",
        [collection, *args],
    )


def drop(c: sqlite3.Connection, collection: str) -> None:
    c.execute(f"DROP TABLE IF EXISTS {table_name(collection)}")


def count(c: sqlite3.Connection, collection: str) -> int:
    """Rows in the collection's index (its docsize table: a scan of an external-content table
    would read the content table instead)."""
    if not exists(c, collection):
        return 0
    return int(c.execute(f"SELECT COUNT(*) FROM {table_name(collection)}_docsize").fetchone()[0])


def match_expression(terms: Sequence[str]) -> str:
    """An FTS5 query matching any of ``terms`` (each quoted, so no term is an operator)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def search(
    c: sqlite3.Connection,
    collections: Sequence[str],
    terms: Sequence[str],
    limit: int,
    doc_id: str | None = None,
) -> list[tuple[int, float]]:
    """(chunk id, BM25 score; higher is better), best first, over ``collections``.

    Each collection is scored by its own index; the lists are merged by score (a stable sort,
    so one collection's order is exactly its own ranking).
    """
    if not terms or limit <= 0:
        return []
    match = match_expression(terms)
    w = ", ".join(str(x) for x in BM25_WEIGHTS)
    hits: list[tuple[int, float]] = []
    for coll in collections:
        if not exists(c, coll):
            continue
        t = table_name(coll)
        sql = f"SELECT {t}.rowid, bm25({t}, {w}) AS s FROM {t} WHERE {t} MATCH ?"
        args: list[object] = [match]
        if doc_id is not None:
            sql += f" AND {t}.rowid IN (SELECT id FROM chunks WHERE doc_id = ?)"
            args.append(doc_id)
        sql += " ORDER BY s LIMIT ?"
        args.append(int(limit))
        hits += [(int(r[0]), -float(r[1])) for r in c.execute(sql, args)]
    hits.sort(key=lambda h: -h[1])
    return hits[:limit]


def rebuild_all(c: sqlite3.Connection) -> None:
    """Migration: replace the one index of every collection (``chunks_fts`` and its triggers,
    from the first schema) by one index per collection. Runs inside the caller's transaction,
    so a store is either wholly migrated or left as it was."""
    c.execute("DROP TRIGGER IF EXISTS chunks_ai")
    c.execute("DROP TRIGGER IF EXISTS chunks_ad")
    c.execute("DROP TABLE IF EXISTS chunks_fts")
    names = [r[0] for r in c.execute("SELECT name FROM collections ORDER BY name")]
    names += [
        r[0]
        for r in c.execute("SELECT DISTINCT collection FROM chunks ORDER BY collection")
        if r[0] not in names
    ]
    total = c.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    if total:
        log.info(
            "building a BM25 index per collection (%d collections, %d chunks)", len(names), total
        )
    done = 0
    for name in names:
        create(c, name)
        index_rows(c, name, "1", [])
        done += count(c, name)
        if total:
            log.info("BM25 index of %r built (%d/%d chunks)", name, done, total)
