"""The knowledge base's SQLite schema: named migrations, applied once each, in order.

A migration is SQL text or a function of the connection; ``Store`` runs each one in its own
transaction under the write lock and records its name in ``migrations``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from knowledge_base import fts

Migration = str | Callable[[sqlite3.Connection], None]

# Named migrations, applied once each, in order (recorded in ``migrations``).
MIGRATIONS: list[tuple[str, Migration]] = [
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
    # BM25 statistics per collection: one FTS5 table per collection replaces the one for all
    # (another course's documents no longer change this course's rankings).
    ("0003_bm25_per_collection", fts.rebuild_all),
]


def statements(sql: str) -> list[str]:
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
