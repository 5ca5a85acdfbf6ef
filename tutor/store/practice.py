"""Practice: graded attempts, mastery per learner and skill (BKT), predictions, fitted BKT
parameters, and the choice of the next item. The rules of counting and mastery live in
``tutor.store.rules`` (pure); this module reads and writes around them in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from tutor import kt
from tutor.errors import InputError
from tutor.grading import GradeResult
from tutor.items import Item
from tutor.store import schema as S
from tutor.store.base import inserted_id
from tutor.store.predictors import PredictorsMixin
from tutor.store.records import (
    DEFAULT_COLLECTION,
    MAX_MESSAGE_CHARS,
    Attempt,
    AttemptOutcome,
    Prediction,
    SkillMastery,
    attempt_from_row,
    check_text,
    now_iso,
)
from tutor.store.rules import SkillStanding, apply_attempt, attempt_counts


class PracticeMixin(PredictorsMixin):
    """Attempts, mastery and knowledge tracing (part of ``LearnerStore``; built on the banks,
    which hold the items and skills practised, and the course's predictor)."""

    # -- attempts and mastery ----------------------------------------------------------------

    def record_attempt(
        self,
        learner_id: int,
        item: Item,
        response: str,
        result: GradeResult,
        *,
        session_id: str | None = None,
        collection: str | None = None,
        hint_level: int = 0,
    ) -> AttemptOutcome:
        """Store a graded attempt and update mastery of the item's skills (BKT), atomically.

        Only the first graded attempt at an item within a session moves mastery (``counted``):
        retries after feedback would otherwise inflate it. Mastery changes only here.
        """
        if not isinstance(result, GradeResult):
            raise InputError("record_attempt needs the checker's GradeResult (tutor.grading.grade)")
        check_text(response, "the answer")
        ts = now_iso()

        def tx(conn: sa.Connection) -> AttemptOutcome:
            coll = collection
            earlier = 0
            if session_id is not None:
                srow = self._session_row(conn, session_id, learner_id)
                coll = coll or srow.collection
                earlier = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(S.attempts)
                    .where(S.attempts.c.session_id == session_id, S.attempts.c.item_id == item.id)
                ).scalar_one()
            else:
                self._require_learner(conn, learner_id)
            counted = attempt_counts(in_session=session_id is not None, earlier_in_session=earlier)
            attempt = Attempt(
                0,
                learner_id,
                session_id,
                coll or DEFAULT_COLLECTION,
                item.id,
                tuple(item.skills),
                response[:MAX_MESSAGE_CHARS],
                bool(result.correct),
                result.code,
                result.normalized,
                int(hint_level),
                counted,
                ts,
            )
            attempt = _insert_attempt(conn, attempt)
            before, after = self._update_mastery(conn, attempt)
            if session_id is not None:
                conn.execute(
                    sa.update(S.sessions)
                    .where(S.sessions.c.id == session_id)
                    .values(last_active_at=ts)
                )
            return AttemptOutcome(attempt, counted, before, after)

        return self._retry(tx)

    def _update_mastery(
        self, conn: sa.Connection, attempt: Attempt
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Apply one stored attempt to its skills' mastery rows (locked while read); returns
        P(mastery) per skill before and after."""
        before: dict[str, float] = {}
        after: dict[str, float] = {}
        params = self._params(conn)
        lid = attempt.learner_id
        for skill in attempt.skills:
            p = kt.params_for(params, skill, self.bkt_defaults)
            where = (S.mastery.c.learner_id == lid, S.mastery.c.skill == skill)
            row = conn.execute(sa.select(S.mastery).where(*where).with_for_update()).first()
            old = (
                SkillStanding(float(row.p_mastery), row.n_attempts, row.n_correct)
                if row is not None
                else None
            )
            new = apply_attempt(old, correct=attempt.correct, counted=attempt.counted, params=p)
            before[skill] = old.p_mastery if old is not None else p.prior
            after[skill] = new.p_mastery
            values = dict(
                p_mastery=new.p_mastery,
                n_attempts=new.n_attempts,
                n_correct=new.n_correct,
                updated_at=attempt.created_at,
            )
            if row is None:
                conn.execute(sa.insert(S.mastery).values(learner_id=lid, skill=skill, **values))
            else:
                conn.execute(sa.update(S.mastery).where(*where).values(**values))
        return before, after

    def attempts(
        self,
        learner_id: int | None = None,
        *,
        skill: str | None = None,
        item_id: str | None = None,
        session_id: str | None = None,
        counted_only: bool = False,
    ) -> list[Attempt]:
        """Attempts in time order, filtered."""
        q = sa.select(S.attempts).order_by(S.attempts.c.id)
        if learner_id is not None:
            q = q.where(S.attempts.c.learner_id == learner_id)
        if item_id is not None:
            q = q.where(S.attempts.c.item_id == item_id)
        if session_id is not None:
            q = q.where(S.attempts.c.session_id == session_id)
        if counted_only:
            q = q.where(S.attempts.c.counted == sa.true())
        with self._read() as conn:
            rows = conn.execute(q).all()
        out = [attempt_from_row(r) for r in rows]
        return [a for a in out if skill is None or skill in a.skills]

    def mastery(
        self, learner_id: int, skills: Iterable[str] | None = None
    ) -> dict[str, SkillMastery]:
        """Mastery per skill: the learner's stored rows, plus ``skills`` (at their prior)."""
        with self._read() as conn:
            self._require_learner(conn, learner_id)
            rows = conn.execute(
                sa.select(S.mastery).where(S.mastery.c.learner_id == learner_id)
            ).all()
            params = self._params(conn)
        out: dict[str, SkillMastery] = {}
        for r in rows:
            out[r.skill] = self._skill_mastery(
                r.skill, float(r.p_mastery), r.n_attempts, r.n_correct, r.updated_at, params
            )
        for s in skills or ():
            if s not in out:
                p = kt.params_for(params, s, self.bkt_defaults)
                out[s] = self._skill_mastery(s, p.prior, 0, 0, None, params)
        return out

    def _skill_mastery(
        self,
        skill: str,
        pm: float,
        n: int,
        c: int,
        ts: str | None,
        params: Mapping[str, kt.BKTParams],
    ) -> SkillMastery:
        p = kt.params_for(params, skill, self.bkt_defaults)
        return SkillMastery(
            skill, pm, kt.p_correct(pm, p), int(n), int(c), pm >= self.mastery_threshold, ts
        )

    def predictions(self, skills: Iterable[str] | None = None) -> list[Prediction]:
        """P(mastery) and P(correct on the next item) for every learner x skill.

        Skills: ``skills`` when given, else every skill of any stored collection, any skill with
        fitted parameters and any skill with mastery rows (and the fallback bank's skills).
        """
        with self._read() as conn:
            learners_ = conn.execute(sa.select(S.learners).order_by(S.learners.c.name)).all()
            rows = conn.execute(sa.select(S.mastery)).all()
            params = self._params(conn)
            if skills is None:
                names = {r[0] for r in conn.execute(sa.select(S.skills.c.skill_id))}
                names |= set(params) | {r.skill for r in rows}
        if skills is None:
            names |= set(self._fallback_skills())
            skill_list = sorted(names)
        else:
            skill_list = list(skills)
        stored = {(r.learner_id, r.skill): float(r.p_mastery) for r in rows}
        out = []
        for lr in learners_:
            for s in skill_list:
                p = kt.params_for(params, s, self.bkt_defaults)
                pm = stored.get((lr.id, s), p.prior)
                out.append(Prediction(lr.id, lr.name, s, pm, kt.p_correct(pm, p)))
        return out

    # -- knowledge-tracing parameters ----------------------------------------------------------

    def kt_params(self) -> dict[str, kt.BKTParams]:
        """Fitted BKT parameters per skill (skills without a fit use ``bkt_defaults``)."""
        with self._read() as conn:
            return self._params(conn)

    def params_for(self, skill: str) -> kt.BKTParams:
        return kt.params_for(self.kt_params(), skill, self.bkt_defaults)

    def _params(self, conn: sa.Connection) -> dict[str, kt.BKTParams]:
        rows = conn.execute(sa.select(S.kt_params)).all()
        return {r.skill: kt.BKTParams(r.prior, r.learn, r.guess, r.slip, r.forget) for r in rows}

    def set_kt_params(
        self, skill: str, params: kt.BKTParams, *, fit: kt.FitResult | None = None
    ) -> None:
        values = dict(
            prior=params.prior,
            learn=params.learn,
            guess=params.guess,
            slip=params.slip,
            forget=params.forget,
            n_sequences=fit.n_sequences if fit else 0,
            n_observations=fit.n_observations if fit else 0,
            log_likelihood=fit.log_likelihood if fit else 0.0,
            fitted_at=now_iso(),
        )

        def tx(conn: sa.Connection) -> None:
            exists = conn.execute(
                sa.select(S.kt_params.c.skill).where(S.kt_params.c.skill == skill)
            ).first()
            if exists:
                conn.execute(
                    sa.update(S.kt_params).where(S.kt_params.c.skill == skill).values(**values)
                )
            else:
                conn.execute(sa.insert(S.kt_params).values(skill=skill, **values))

        self._retry(tx)

    def fit_kt(self, *, min_observations: int = 20, **fit_kwargs: Any) -> dict[str, kt.FitResult]:
        """Fit BKT per skill from the attempts log (counted attempts, in time order), store the
        parameters and recompute every learner's mastery with them. Skills with fewer than
        ``min_observations`` attempts keep their current parameters."""
        records = [
            (a.learner_id, s, a.correct) for a in self.attempts(counted_only=True) for s in a.skills
        ]
        fits = kt.fit(
            records, defaults=self.bkt_defaults, min_observations=min_observations, **fit_kwargs
        )
        for skill, res in fits.items():
            self.set_kt_params(skill, res.params, fit=res)
        if fits:
            self.recompute_mastery()
        return fits

    def recompute_mastery(self) -> int:
        """Replay every learner's counted attempts with the current parameters; returns rows."""
        attempts = self.attempts(counted_only=True)
        state: dict[tuple[int, str], tuple[SkillStanding, str]] = {}
        with self._read() as conn:
            params = self._params(conn)
        for a in attempts:
            for s in a.skills:
                p = kt.params_for(params, s, self.bkt_defaults)
                old = state.get((a.learner_id, s))
                new = apply_attempt(
                    old[0] if old else None, correct=a.correct, counted=True, params=p
                )
                state[(a.learner_id, s)] = (new, a.created_at)

        def tx(conn: sa.Connection) -> int:
            for (lid, s), (st, ts) in state.items():
                values = dict(
                    p_mastery=st.p_mastery,
                    n_attempts=st.n_attempts,
                    n_correct=st.n_correct,
                    updated_at=ts,
                )
                res = conn.execute(
                    sa.update(S.mastery)
                    .where(S.mastery.c.learner_id == lid, S.mastery.c.skill == s)
                    .values(**values)
                )
                if res.rowcount == 0:
                    conn.execute(sa.insert(S.mastery).values(learner_id=lid, skill=s, **values))
            return len(state)

        return self._retry(tx)

    # -- the next item -------------------------------------------------------------------------

    def next_item(
        self,
        learner_id: int,
        collection: str = DEFAULT_COLLECTION,
        *,
        exclude: Iterable[str] | None = None,
        recent: int = 5,
    ) -> kt.Selection | None:
        """The next practice item for the learner (``kt.select_next_item``). By default the
        items of the learner's last ``recent`` attempts are avoided when others fit. When the
        course's chosen predictor is Best-LR (``tutor learners fit-kt``), the item is the one
        whose predicted P(correct) is nearest ``target_p_correct`` (``[tutor]``)."""
        bank = self.bank(collection)
        if exclude is None:
            last = self.attempts(learner_id)[-recent:] if recent else []
            exclude = {a.item_id for a in last}
        m = self.mastery(learner_id)
        pred = self.predictor(collection)
        lr = pred.lr if pred is not None else None
        return kt.select_next_item(
            bank.items,
            bank.skills,
            {s: v.p_mastery for s, v in m.items()},
            self.kt_params(),
            threshold=self.mastery_threshold,
            exclude=set(exclude),
            default=self.bkt_defaults,
            score_items=(lambda its: self.item_p_correct(learner_id, its, lr)) if lr else None,
            target_p_correct=self.target_p_correct,
        )


def _insert_attempt(conn: sa.Connection, a: Attempt) -> Attempt:
    """Insert an attempt (its ``id`` ignored); returns it with the id the database gave it."""
    aid = inserted_id(
        conn.execute(
            sa.insert(S.attempts).values(
                learner_id=a.learner_id,
                session_id=a.session_id,
                collection=a.collection,
                item_id=a.item_id,
                skills=list(a.skills),
                response=a.response,
                correct=a.correct,
                code=a.code,
                normalized=a.normalized,
                hint_level=a.hint_level,
                counted=a.counted,
                created_at=a.created_at,
            )
        )
    )
    return replace(a, id=aid)
