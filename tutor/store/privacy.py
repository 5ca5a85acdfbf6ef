"""Privacy: export everything stored about one learner (no password hashes) and delete it, in
every table that holds learner data (``schema.LEARNER_TABLES`` and ``LEARNER_LINKED_TABLES``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import sqlalchemy as sa

from tutor.store import schema as S
from tutor.store.base import StoreBase
from tutor.store.records import EXPORT_FORMAT, EXPORT_VERSION, learner_from_row, now_iso


class PrivacyMixin(StoreBase):
    """Export and deletion of one learner's data (part of ``LearnerStore``)."""

    def export_learner(self, learner_id: int) -> dict[str, Any]:
        """Everything stored about one learner, as JSON-serialisable data (no password hashes).

        ``tables`` has one entry per table in ``LEARNER_TABLES``: the learner's rows.
        """
        tables: dict[str, list[dict[str, Any]]] = {}
        with self._read() as conn:
            learner = self._require_learner(conn, learner_id)
            for name in S.LEARNER_TABLES:
                t = S.metadata.tables[name]
                col = t.c.id if name == "learners" else t.c.learner_id
                order = list(t.primary_key.columns)
                rows = conn.execute(sa.select(t).where(col == learner_id).order_by(*order)).all()
                tables[name] = _visible(name, rows)
            for name, where in _linked_rows(learner_id).items():
                t = S.metadata.tables[name]
                rows = conn.execute(sa.select(t).where(where).order_by(*t.primary_key)).all()
                tables[name] = _visible(name, rows)
        return {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": now_iso(),
            "learner": asdict(learner_from_row(learner)),
            "tables": tables,
        }

    def delete_learner(self, learner_id: int) -> dict[str, int]:
        """Delete every row of one learner in every learner table; returns rows per table."""
        _check_learner_tables()
        counts: dict[str, int] = {}
        with self._write() as conn:
            self._require_learner(conn, learner_id)
            for name, where in _linked_rows(learner_id).items():
                t = S.metadata.tables[name]
                counts[name] = int(conn.execute(sa.delete(t).where(where)).rowcount)
            for name in S.LEARNER_TABLES:
                t = S.metadata.tables[name]
                col = t.c.id if name == "learners" else t.c.learner_id
                counts[name] = int(conn.execute(sa.delete(t).where(col == learner_id)).rowcount)
        return counts


def _visible(table: str, rows: Any) -> list[dict[str, Any]]:
    """The rows as dicts without the table's secret columns (``schema.SECRET_COLUMNS``)."""
    hidden = S.SECRET_COLUMNS.get(table, ())
    return [{k: v for k, v in r._mapping.items() if k not in hidden} for r in rows]


def _linked_rows(learner_id: int) -> dict[str, Any]:
    """For each table in LEARNER_LINKED_TABLES, the condition selecting one learner's rows."""
    out: dict[str, Any] = {}
    for name, (column, parent) in S.LEARNER_LINKED_TABLES.items():
        t, pt = S.metadata.tables[name], S.metadata.tables[parent]
        out[name] = t.c[column].in_(sa.select(pt.c.id).where(pt.c.learner_id == learner_id))
    return out


def _check_learner_tables() -> None:
    """Every table with a ``learner_id`` column must be in LEARNER_TABLES (export/delete)."""
    holding = {t.name for t in S.metadata.sorted_tables if "learner_id" in t.c} | {"learners"}
    missing = holding - set(S.LEARNER_TABLES)
    assert not missing, f"tables with learner data missing from LEARNER_TABLES: {missing}"
    # ... and every other table pointing into one of them in LEARNER_LINKED_TABLES
    linked = {
        t.name
        for t in S.metadata.sorted_tables
        if t.name not in holding and any(fk.column.table.name in holding for fk in t.foreign_keys)
    }
    missing = linked - set(S.LEARNER_LINKED_TABLES)
    assert not missing, f"tables with learner data missing from LEARNER_LINKED_TABLES: {missing}"
