"""The learner-performance predictor of a course: fitted by ``tutor learners fit-kt`` (from the
store's attempts or a school's past attempts log), chosen by held-out AUC between Best-LR and
BKT, stored per collection, and used for next-item difficulty and the teacher's at-risk list.

BKT's parameters are fitted and stored at the same time (``kt_params``, per skill); BKT stays
the mastery display whichever predictor is chosen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from tutor import kt, kt_lr, kt_models
from tutor.errors import InputError
from tutor.items import Item
from tutor.kt_data import Answer, AnswerLog, answers_from_store
from tutor.store import schema as S
from tutor.store.banks import BanksMixin
from tutor.store.records import DEFAULT_COLLECTION, now_iso

MIN_LEARNERS_TO_COMPARE = 5


@dataclass(frozen=True)
class StoredPredictor:
    collection: str
    chosen: str  # "Best-LR" | "BKT"
    model: kt_lr.LRModel | None
    heldout: dict[str, float]  # model -> held-out AUC at fitting time
    source: str
    n_answers: int
    fitted_at: str

    @property
    def label(self) -> str:
        """How the teacher view names it: the predictor and the evidence for choosing it."""
        if not self.heldout:
            return f"{self.chosen} (no held-out comparison: too few learners)"
        parts = ", ".join(f"{m} {a:.3f}" for m, a in sorted(self.heldout.items()))
        return f"{self.chosen} (chosen by held-out AUC: {parts})"

    @property
    def lr(self) -> kt_lr.LRModel | None:
        return self.model if self.chosen == kt_models.BEST_LR_NAME else None


@dataclass
class FitReport:
    bkt: dict[str, kt.FitResult]
    heldout: dict[str, float]
    chosen: str
    n_answers: int
    n_learners: int
    skills: list[str]
    unknown_skills: list[str] = field(default_factory=list)  # not in the course's bank


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class PredictorsMixin(BanksMixin):
    """Fitting, storing and using the course's predictor (part of ``LearnerStore``)."""

    target_p_correct: float = 0.7

    def predictor(self, collection: str = DEFAULT_COLLECTION) -> StoredPredictor | None:
        """The course's stored predictor (None: never fitted). The parsed model is cached per
        process until its ``fitted_at`` changes (a refit by any process)."""
        t = S.kt_predictors
        with self._read() as conn:
            stamp = conn.execute(
                sa.select(t.c.fitted_at).where(t.c.collection == collection)
            ).scalar_one_or_none()
            if stamp is None:
                return None
            cache: dict[str, StoredPredictor] = self.__dict__.setdefault("_predictor_cache", {})
            hit = cache.get(collection)
            if hit is not None and hit.fitted_at == stamp:
                return hit
            row = conn.execute(sa.select(t).where(t.c.collection == collection)).first()
        if row is None:
            return None
        model = kt_lr.LRModel.from_dict(row.model) if row.model else None
        cache[collection] = StoredPredictor(
            collection,
            row.chosen,
            model,
            dict(row.heldout),
            row.source,
            row.n_answers,
            row.fitted_at,
        )
        return cache[collection]

    def set_predictor(
        self,
        collection: str,
        chosen: str,
        model: kt_lr.LRModel | None,
        heldout: dict[str, float],
        *,
        source: str = "",
        n_answers: int = 0,
    ) -> None:
        if chosen not in (kt_models.BEST_LR_NAME, kt_models.BKT_NAME):
            raise InputError(f"unknown predictor {chosen!r}")
        values = dict(
            chosen=chosen,
            model=model.to_dict() if model is not None else None,
            heldout=heldout,
            source=source,
            n_answers=n_answers,
            fitted_at=now_iso(),
        )

        def tx(conn: sa.Connection) -> None:
            t = S.kt_predictors
            conn.execute(sa.delete(t).where(t.c.collection == collection))
            conn.execute(sa.insert(t).values(collection=collection, **values))

        self._retry(tx)

    def fit_learner_models(
        self,
        log: AnswerLog | None = None,
        *,
        collection: str = DEFAULT_COLLECTION,
        min_observations: int = 20,
        source: str = "",
        seed: int = 0,
    ) -> FitReport:
        """Fit BKT per skill and the predictor on ``log`` (default: the store's counted
        attempts), choose Best-LR or BKT by AUC on 20% held-out learners, refit on everything
        and store both (BKT parameters, then every learner's mastery recomputed)."""
        if log is None:
            log = answers_from_store(self.attempts(counted_only=True))  # type: ignore[attr-defined]
            source = source or "learner store"
        if len(log) == 0:
            raise InputError("no attempts to fit the learner models on")
        bank_diff = {it.id: it.difficulty for it in self.bank(collection).items}
        heldout: dict[str, float] = {}
        if len(log.learners) >= MIN_LEARNERS_TO_COMPARE:
            train, test = log.split(seed, "fit-kt")
            comp = kt_models.compare(
                train,
                test,
                self.bkt_defaults,
                min_observations=min_observations,
                bank_difficulty=bank_diff,
            )
            heldout = {
                kt_models.BKT_NAME: kt.auc(comp.y, comp.preds["BKT fitted (EM)"]),
                kt_models.BEST_LR_NAME: kt.auc(comp.y, comp.preds[kt_models.BEST_LR_NAME]),
            }
        chosen = kt_models.choose(heldout) if heldout else kt_models.BKT_NAME
        fits = kt_models.fit_bkt(log, defaults=self.bkt_defaults, min_observations=min_observations)
        for skill, res in fits.items():
            self.set_kt_params(skill, res.params, fit=res)  # type: ignore[attr-defined]
        if fits:
            self.recompute_mastery()  # type: ignore[attr-defined]
        model = kt_lr.fit(log, bank_difficulty=bank_diff)
        self.set_predictor(collection, chosen, model, heldout, source=source, n_answers=len(log))
        known = set(self.skills(collection))
        return FitReport(
            fits,
            heldout,
            chosen,
            len(log),
            len(log.learners),
            list(log.skills),
            sorted(s for s in log.skills if known and s not in known),
        )

    def _history(self, learner_id: int) -> list[Answer]:
        return [
            Answer(str(learner_id), tuple(a.skills), bool(a.correct), a.item_id, _ts(a.created_at))
            for a in self.attempts(learner_id, counted_only=True)  # type: ignore[attr-defined]
            if a.skills
        ]

    def item_p_correct(
        self, learner_id: int, items: list[Item], model: kt_lr.LRModel
    ) -> list[float]:
        """The predictor's P(correct) of the learner on each item, next."""
        now = time.time()
        hist = self._history(learner_id)
        return model.predict_next_batch(
            [(hist, Answer(str(learner_id), tuple(it.skills), False, it.id, now)) for it in items]
        )

    def skill_p_correct(
        self, learner_skills: dict[int, list[str]], model: kt_lr.LRModel
    ) -> dict[tuple[int, str], float]:
        """P(correct) on a typical next item of each skill (no item: its difficulty unknown)."""
        now = time.time()
        cases = []
        keys = []
        for lid, skills in learner_skills.items():
            hist = self._history(lid)
            for s in skills:
                cases.append((hist, Answer(str(lid), (s,), False, "", now)))
                keys.append((lid, s))
        return dict(zip(keys, model.predict_next_batch(cases), strict=True))
