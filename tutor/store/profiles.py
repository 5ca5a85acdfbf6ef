"""Learners and their profiles: create, find and list learners (with activity counts), read and
edit the free-text profile (``teacher_notes`` only by a teacher)."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tutor.errors import InputError, NotFoundError, PermissionDeniedError
from tutor.store import schema as S
from tutor.store.base import StoreBase, insert_learner
from tutor.store.records import (
    MAX_PROFILE_VALUE_CHARS,
    PROFILE_FIELDS,
    TEACHER_ONLY_FIELDS,
    Editor,
    Learner,
    LearnerStats,
    Profile,
    check_name,
    check_text,
    learner_from_row,
    now_iso,
    profile_from_row,
)


class LearnersMixin(StoreBase):
    """Learners and profiles (part of ``LearnerStore``)."""

    # -- learners ----------------------------------------------------------------------------

    def add_learner(self, name: str, *, display_name: str = "") -> Learner:
        name = check_name(name)
        ts = now_iso()
        try:
            with self._write() as conn:
                lid = insert_learner(conn, name, display_name, ts)
        except IntegrityError:
            raise InputError(
                f"a learner named {name!r} already exists; pick another name"
            ) from None
        return Learner(lid, name, display_name or "", ts)

    def get_or_create_learner(self, name: str, *, display_name: str = "") -> Learner:
        try:
            return self.find_learner(name)
        except NotFoundError:
            try:
                return self.add_learner(name, display_name=display_name)
            except InputError:
                return self.find_learner(name)  # created meanwhile by another writer

    def get_learner(self, learner_id: int) -> Learner:
        with self._read() as conn:
            row = conn.execute(sa.select(S.learners).where(S.learners.c.id == learner_id)).first()
        if row is None:
            raise NotFoundError(
                f"no learner with id {learner_id}; `tutor learners list` shows them"
            )
        return learner_from_row(row)

    def find_learner(self, name: str) -> Learner:
        with self._read() as conn:
            row = conn.execute(sa.select(S.learners).where(S.learners.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no learner named {name!r}; `tutor learners list` shows them")
        return learner_from_row(row)

    def list_learners(self) -> list[LearnerStats]:
        with self._read() as conn:
            rows = conn.execute(sa.select(S.learners).order_by(S.learners.c.name)).all()

            def counts(table: sa.Table) -> dict[int, int]:
                q = sa.select(table.c.learner_id, sa.func.count()).group_by(table.c.learner_id)
                return {int(r[0]): int(r[1]) for r in conn.execute(q)}

            ns, nm, na = counts(S.sessions), counts(S.messages), counts(S.attempts)
            last = dict(
                conn.execute(
                    sa.select(
                        S.sessions.c.learner_id, sa.func.max(S.sessions.c.last_active_at)
                    ).group_by(S.sessions.c.learner_id)
                ).all()
            )
        return [
            LearnerStats(
                learner_from_row(r),
                ns.get(r.id, 0),
                nm.get(r.id, 0),
                na.get(r.id, 0),
                last.get(r.id),
            )
            for r in rows
        ]

    # -- profiles ----------------------------------------------------------------------------

    def get_profile(self, learner_id: int) -> Profile:
        with self._read() as conn:
            self._require_learner(conn, learner_id)
            row = conn.execute(
                sa.select(S.profiles).where(S.profiles.c.learner_id == learner_id)
            ).first()
        return profile_from_row(learner_id, row)

    def update_profile(
        self, learner_id: int, changes: Mapping[str, str], *, editor: Editor = "learner"
    ) -> Profile:
        """Change profile fields. A learner may not edit teacher-only fields (``teacher_notes``)."""
        _check_profile_changes(changes, editor)

        def tx(conn: sa.Connection) -> Profile:
            self._require_learner(conn, learner_id)
            row = conn.execute(
                sa.select(S.profiles).where(S.profiles.c.learner_id == learner_id)
            ).first()
            data = dict(row.data) if row is not None else {}
            data.update({k: v.strip() for k, v in changes.items()})
            ts = now_iso()
            if row is None:
                conn.execute(
                    sa.insert(S.profiles).values(
                        learner_id=learner_id, data=data, updated_at=ts, updated_by=editor
                    )
                )
            else:
                conn.execute(
                    sa.update(S.profiles)
                    .where(S.profiles.c.learner_id == learner_id)
                    .values(data=data, updated_at=ts, updated_by=editor)
                )
            return Profile(
                learner_id,
                **{k: data.get(k, "") for k in PROFILE_FIELDS},
                updated_at=ts,
                updated_by=editor,
            )

        return self._retry(tx)


def _check_profile_changes(changes: Mapping[str, str], editor: str) -> None:
    if editor not in ("learner", "teacher"):
        raise InputError(f"editor must be 'learner' or 'teacher', got {editor!r}")
    for k, v in changes.items():
        if k not in PROFILE_FIELDS:
            raise InputError(f"unknown profile field {k!r}; use one of {', '.join(PROFILE_FIELDS)}")
        if k in TEACHER_ONLY_FIELDS and editor != "teacher":
            raise PermissionDeniedError(f"only a teacher may edit the profile field {k!r}")
        if not isinstance(v, str) or len(v) > MAX_PROFILE_VALUE_CHARS:
            raise InputError(
                f"profile field {k!r} must be text of at most {MAX_PROFILE_VALUE_CHARS} characters"
            )
        check_text(v, f"profile field {k!r}")
