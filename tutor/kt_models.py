"""Learner models side by side on an ``AnswerLog``: BKT (fitted per skill), PFA, Best-LR and the
simple baselines, all predicting P(correct) of every answer from earlier answers only; and the
choice of the predictor the tutor uses (by held-out AUC).

Used by ``tutor learners fit-kt --attempts``, the ``learner-model`` eval and the benchmark.
BKT stays the interpretable mastery display whatever predictor is chosen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tutor import kt, kt_lr
from tutor.kt_data import AnswerLog

BKT_NAME = "BKT"
BEST_LR_NAME = "Best-LR"
PFA_NAME = "PFA"


def _fit_one(args: tuple[list[list[int]], kt.BKTParams | None, dict[str, Any]]) -> kt.FitResult:
    seqs, init, kwargs = args
    return kt.fit_skill(seqs, init=init, **kwargs)


def fit_bkt(
    log: AnswerLog,
    *,
    defaults: kt.BKTParams | None = None,
    min_observations: int = 20,
    workers: int = 1,
    progress: Callable[[Iterable[Any], int, str], Iterable[Any]] | None = None,
    **kwargs: Any,
) -> dict[str, kt.FitResult]:
    """BKT by EM per skill with at least ``min_observations`` answers (multi-skill answers count
    on each skill). ``workers`` > 1 fits skills in parallel processes; ``progress`` wraps the
    per-skill loop (the eval's progress bar)."""
    seqs = log.skill_sequences()
    jobs = [
        (s, [q for q in d.values() if q])
        for s, d in sorted(seqs.items())
        if sum(len(q) for q in d.values()) >= min_observations
    ]
    out: dict[str, kt.FitResult] = {}
    args = [(q, defaults, kwargs) for _, q in jobs]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            results: Iterable[kt.FitResult] = ex.map(_fit_one, args)
            if progress:
                results = progress(results, len(jobs), "BKT per skill")
            for (s, _), r in zip(jobs, results, strict=True):
                out[s] = r
        return out
    it: Iterable[Any] = zip(jobs, args, strict=True)
    if progress:
        it = progress(it, len(jobs), "BKT per skill")
    for (s, _), a in it:
        out[s] = _fit_one(a)
    return out


def bkt_predict(
    log: AnswerLog, params: Mapping[str, kt.BKTParams], default: kt.BKTParams
) -> np.ndarray:
    """BKT's P(correct) of every answer (a multi-skill answer: the mean over its skills)."""
    n = len(log)
    if n == 0:
        return np.zeros(0)
    pl = log.learner[log.pair_answer]
    order = np.lexsort((log.pair_answer, pl, log.pair_skill))
    pred = np.zeros(len(order))
    ps, pls = log.pair_skill[order], pl[order]
    cut = np.nonzero(ps[1:] != ps[:-1])[0] + 1
    for block in np.split(np.arange(len(order)), cut):
        skill = log.skills[ps[block[0]]]
        lcut = np.nonzero(pls[block][1:] != pls[block][:-1])[0] + 1
        runs = np.split(block, lcut)
        seqs = [log.correct[log.pair_answer[order[r]]].tolist() for r in runs]
        for r, p in zip(runs, kt.predict_sequences(seqs, params.get(skill, default)), strict=True):
            pred[order[r]] = p
    return mean_over_pairs(log, pred)


def mean_over_pairs(log: AnswerLog, per_pair: np.ndarray) -> np.ndarray:
    n = len(log)
    k = np.bincount(log.pair_answer, minlength=n)
    return np.bincount(log.pair_answer, per_pair, minlength=n) / np.maximum(k, 1)


def running_rate(log: AnswerLog) -> np.ndarray:
    """The learner's own correct rate so far on the answer's skills (Laplace-smoothed)."""
    pa = log.pair_answer
    key = log.learner[pa] * (len(log.skills) + 1) + log.pair_skill
    g = kt_lr.group_prior(key, log.correct[pa])
    return mean_over_pairs(log, (g["wins"] + 1.0) / (g["count"] + 2.0))


def skill_rates(train: AnswerLog) -> tuple[dict[str, float], float]:
    pa = train.pair_answer
    y = train.correct[pa].astype(float)
    n = np.bincount(train.pair_skill, minlength=len(train.skills))
    w = np.bincount(train.pair_skill, y, minlength=len(train.skills))
    overall = float(train.correct.mean()) if len(train) else 0.5
    return {s: float(w[i] / n[i]) for i, s in enumerate(train.skills) if n[i]}, overall


def skill_rate_predict(log: AnswerLog, rates: Mapping[str, float], overall: float) -> np.ndarray:
    per = np.array([rates.get(s, overall) for s in log.skills])
    return mean_over_pairs(log, per[log.pair_skill])


@dataclass
class Comparison:
    """Every model's held-out predictions, fit times and fitted objects."""

    y: np.ndarray
    preds: dict[str, np.ndarray]
    fit_seconds: dict[str, float]
    bkt: dict[str, kt.FitResult]
    lr: dict[str, kt_lr.LRModel] = field(default_factory=dict)


def compare(
    train: AnswerLog,
    test: AnswerLog,
    defaults: kt.BKTParams,
    *,
    min_observations: int = 20,
    workers: int = 1,
    progress: Callable[[Iterable[Any], int, str], Iterable[Any]] | None = None,
    bank_difficulty: Mapping[str, int] | None = None,
) -> Comparison:
    """Fit every model on ``train`` and predict ``test`` (held-out learners)."""
    times: dict[str, float] = {}
    t0 = time.process_time()
    fits = fit_bkt(
        train,
        defaults=defaults,
        min_observations=min_observations,
        workers=workers,
        progress=progress,
    )
    times["BKT fitted (EM)"] = time.process_time() - t0
    lrs: dict[str, kt_lr.LRModel] = {}
    for name, spec in ((PFA_NAME, kt_lr.PFA), (BEST_LR_NAME, kt_lr.BEST_LR)):
        t0 = time.process_time()
        lrs[name] = kt_lr.fit(train, spec, name=name, bank_difficulty=bank_difficulty)
        times[name] = time.process_time() - t0
    rates, overall = skill_rates(train)
    preds = {
        "BKT fitted (EM)": bkt_predict(test, {s: r.params for s, r in fits.items()}, defaults),
        "BKT defaults": bkt_predict(test, {}, defaults),
        PFA_NAME: lrs[PFA_NAME].predict(test),
        BEST_LR_NAME: lrs[BEST_LR_NAME].predict(test),
        "learner running rate": running_rate(test),
        "per-skill rate": skill_rate_predict(test, rates, overall),
    }
    return Comparison(test.correct.astype(np.int64), preds, times, fits, lrs)


def choose(aucs: Mapping[str, float]) -> str:
    """The predictor the tutor uses: Best-LR when its held-out AUC is higher than BKT's, else
    BKT (a tie, e.g. a held-out set with one class only, keeps the interpretable model)."""
    return BEST_LR_NAME if aucs.get(BEST_LR_NAME, 0.0) > aucs.get(BKT_NAME, 0.0) else BKT_NAME
