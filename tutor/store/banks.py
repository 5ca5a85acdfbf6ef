"""Item banks per collection: store a validated bank's skills and items, remove them, and read a
collection back as a ``Bank`` (cached until the collection changes), falling back to the shipped
sample bank (or ``tutor.item_bank``) for a collection with nothing stored."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from tutor.errors import InputError, NotFoundError
from tutor.items import Bank, Item, Skill, item_from_dict
from tutor.store import schema as S
from tutor.store.base import StoreBase
from tutor.store.records import DEFAULT_COLLECTION, AddItemsReport, check_collection, now_iso


class BanksMixin(StoreBase):
    """Item banks (part of ``LearnerStore``)."""

    def add_items(
        self, bank: Bank, *, collection: str = DEFAULT_COLLECTION, source_file: str = ""
    ) -> AddItemsReport:
        """Store a validated bank's skills and items in a collection (same id = replaced)."""
        collection = check_collection(collection)
        ts = now_iso()

        def tx(conn: sa.Connection) -> AddItemsReport:
            _upsert_skills(conn, collection, bank)
            replaced = _upsert_items(conn, collection, bank, source_file, ts)
            return AddItemsReport(collection, len(bank.items), len(bank.skills), replaced)

        report = self._retry(tx)
        self._bank_cache.pop(collection, None)
        return report

    def remove_items(self, collection: str, item_ids: Iterable[str] | None = None) -> int:
        """Remove some items (or all items and skills) of a collection; returns items removed."""
        with self._write() as conn:
            q = sa.delete(S.items).where(S.items.c.collection == collection)
            if item_ids is not None:
                q = q.where(S.items.c.item_id.in_(list(item_ids)))
            else:
                conn.execute(sa.delete(S.skills).where(S.skills.c.collection == collection))
            n = conn.execute(q).rowcount
        self._bank_cache.pop(collection, None)
        return int(n)

    def collections(self) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(sa.select(S.items.c.collection).distinct()).all()
        return sorted(r[0] for r in rows)

    def bank(self, collection: str = DEFAULT_COLLECTION) -> Bank:
        """The collection's skills and items; the fallback bank (the shipped sample, or
        ``tutor.item_bank``) when nothing is stored for it."""
        with self._read() as conn:
            version = tuple(
                conn.execute(
                    sa.select(sa.func.count(), sa.func.max(S.items.c.added_at)).where(
                        S.items.c.collection == collection
                    )
                ).one()
            ) + tuple(
                conn.execute(
                    sa.select(sa.func.count()).where(S.skills.c.collection == collection)
                ).one()
            )
            cached = self._bank_cache.get(collection)
            if cached is not None and cached[0] == version:
                return cached[1]
            if version[0] == 0:
                return self._fallback_bank_obj()
            sk_rows = conn.execute(
                sa.select(S.skills)
                .where(S.skills.c.collection == collection)
                .order_by(S.skills.c.position)
            ).all()
            it_rows = conn.execute(
                sa.select(S.items)
                .where(S.items.c.collection == collection)
                .order_by(S.items.c.position)
            ).all()
        bank = Bank(
            skills={
                r.skill_id: Skill(r.skill_id, r.name, tuple(r.prerequisites), r.description)
                for r in sk_rows
            },
            items=[item_from_dict(r.data, origin=f"{collection}/{r.item_id}") for r in it_rows],
        )
        self._bank_cache[collection] = (version, bank)
        return bank

    def _fallback_bank_obj(self) -> Bank:
        with self._lock:
            if self._fallback_bank is None:
                fb = self._fallback
                self._fallback_bank = fb() if callable(fb) else (fb or Bank())
            return self._fallback_bank

    def _fallback_skills(self) -> list[str]:
        try:
            return list(self._fallback_bank_obj().skills)
        except InputError:
            return []

    def stored_skills(self, collection: str) -> dict[str, Skill]:
        """The skills stored for a collection (no fallback), in their order."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(S.skills)
                .where(S.skills.c.collection == collection)
                .order_by(S.skills.c.position)
            ).all()
        return {
            r.skill_id: Skill(r.skill_id, r.name, tuple(r.prerequisites), r.description)
            for r in rows
        }

    def items(
        self, collection: str = DEFAULT_COLLECTION, *, skill: str | None = None
    ) -> list[Item]:
        b = self.bank(collection)
        return b.for_skill(skill) if skill else list(b.items)

    def get_item(self, collection: str, item_id: str) -> Item:
        it = self.bank(collection).item(item_id)
        if it is None:
            raise NotFoundError(
                f"no item {item_id!r} in collection {collection!r}; `tutor items list` shows them"
            )
        return it

    def skills(self, collection: str = DEFAULT_COLLECTION) -> dict[str, Skill]:
        return dict(self.bank(collection).skills)


def _upsert_skills(conn: sa.Connection, collection: str, bank: Bank) -> None:
    """Store the bank's skills: a known id is updated in place, a new one appended in order."""
    existing_sk = {
        r[0]: r[1]
        for r in conn.execute(
            sa.select(S.skills.c.skill_id, S.skills.c.position).where(
                S.skills.c.collection == collection
            )
        )
    }
    pos = max(existing_sk.values(), default=-1) + 1
    for sk in bank.skills.values():
        values = dict(
            name=sk.name, prerequisites=list(sk.prerequisites), description=sk.description
        )
        if sk.id in existing_sk:
            conn.execute(
                sa.update(S.skills)
                .where(S.skills.c.collection == collection, S.skills.c.skill_id == sk.id)
                .values(**values)
            )
        else:
            conn.execute(
                sa.insert(S.skills).values(
                    collection=collection, skill_id=sk.id, position=pos, **values
                )
            )
            pos += 1


def _upsert_items(
    conn: sa.Connection, collection: str, bank: Bank, source_file: str, ts: str
) -> int:
    """Store the bank's items (a known id replaced in place, a new one appended); returns how
    many were replaced."""
    existing = {
        r[0]: r[1]
        for r in conn.execute(
            sa.select(S.items.c.item_id, S.items.c.position).where(
                S.items.c.collection == collection
            )
        )
    }
    ipos = max(existing.values(), default=-1) + 1
    replaced = 0
    for it in bank.items:
        values = dict(
            skills=list(it.skills),
            difficulty=it.difficulty,
            data=it.to_dict(),
            source_file=source_file or it.origin.rsplit(":", 1)[0],
            added_at=ts,
        )
        if it.id in existing:
            replaced += 1
            conn.execute(
                sa.update(S.items)
                .where(S.items.c.collection == collection, S.items.c.item_id == it.id)
                .values(**values)
            )
        else:
            conn.execute(
                sa.insert(S.items).values(
                    collection=collection, item_id=it.id, position=ipos, **values
                )
            )
            ipos += 1
    return replaced
