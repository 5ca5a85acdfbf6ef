"""Learner-model suite: how well BKT's P(correct) predicts held-out answers.

Datasets: simulated learners drawn from known BKT parameters (always), and any attempts log
the user passes (``--attempts FILE`` with ``--columns learner=..,skill=..,correct=..,order=..``,
or ``--attempts store`` for the configured learner store's counted attempts).

Learners are split 80/20 (seeded) into training and held-out learners. BKT is fitted per skill
by EM on the training learners (``tutor.kt.fit_skill``; skills with fewer than 20 training
answers keep the ``[tutor]`` defaults); every held-out answer is predicted from the learner's
earlier answers only. Compared: BKT fitted, BKT with the ``[tutor]`` defaults, each skill's
training correct rate, and (simulated data) BKT with the true parameters. Reported: AUC,
accuracy at 0.5, RMSE, expected calibration error and the reliability diagram.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np

from evals import metrics as M
from evals.datasets import load_attempts
from evals.run import EvalRun, SuiteResult, file_tag
from tutor import kt

log = logging.getLogger(__name__)

SIM_SKILLS: dict[str, kt.BKTParams] = {
    "fractions": kt.BKTParams(prior=0.25, learn=0.12, guess=0.2, slip=0.1),
    "decimals": kt.BKTParams(prior=0.4, learn=0.2, guess=0.25, slip=0.08),
    "ratios-percents": kt.BKTParams(prior=0.1, learn=0.1, guess=0.15, slip=0.12),
    "linear-equations": kt.BKTParams(prior=0.15, learn=0.25, guess=0.1, slip=0.05),
    "water-cycle": kt.BKTParams(prior=0.5, learn=0.15, guess=0.3, slip=0.1),
}
MIN_OBSERVATIONS = 20

Sequences = dict[str, dict[str, list[int]]]  # skill -> learner -> outcomes in time order


def simulated(n_learners: int, seed: int) -> tuple[Sequences, Sequences]:
    rng = np.random.default_rng(seed)
    train: Sequences = {}
    test: Sequences = {}
    for skill, p in SIM_SKILLS.items():
        for split, out in (("train", train), ("test", test)):
            lengths = rng.integers(5, 31, n_learners)
            sim = kt.simulate(p, n_learners, int(lengths.max()), rng=rng)
            out[skill] = {
                f"{split}-{i}": list(map(int, row[:n]))
                for i, (row, n) in enumerate(zip(sim.correct, lengths, strict=True))
            }
    return train, test


def from_rows(
    rows: list[tuple[str, str, bool]], seed: int, salt: str
) -> tuple[Sequences, Sequences]:
    """Attempts in time order -> (train, test) split by learner (80/20, seeded)."""
    learners = sorted({r[0] for r in rows})
    random.Random(f"{seed}:{salt}").shuffle(learners)
    n_test = max(1, round(0.2 * len(learners))) if len(learners) > 1 else 0
    test_set = set(learners[:n_test])
    train: Sequences = {}
    test: Sequences = {}
    for learner, skill, correct in rows:
        out = test if learner in test_set else train
        out.setdefault(skill, {}).setdefault(learner, []).append(int(bool(correct)))
    return train, test


def store_rows(config: Any) -> list[tuple[str, str, bool]]:
    from tutor.builders import build_learner_store

    store = build_learner_store(config)
    try:
        rows = []
        for a in store.attempts(counted_only=True):
            for skill in a.skills:
                rows.append((str(a.learner_id), skill, a.correct))
        return rows
    finally:
        store.close()


def _fit_skills(
    train: Sequences, defaults: kt.BKTParams
) -> tuple[dict[str, kt.BKTParams], dict[str, Any]]:
    """BKT fitted by EM per skill with enough training answers; ``(fitted, fit report)``."""
    fitted: dict[str, kt.BKTParams] = {}
    fit_info: dict[str, Any] = {}
    for skill, by_learner in train.items():
        seqs = [s for s in by_learner.values() if s]
        n_obs = sum(len(s) for s in seqs)
        if n_obs >= MIN_OBSERVATIONS:
            r = kt.fit_skill(seqs, init=defaults)
            fitted[skill] = r.params
            fit_info[skill] = {
                "params": r.params.to_dict(),
                "observations": n_obs,
                "converged": r.converged,
            }
        else:
            fit_info[skill] = {
                "params": defaults.to_dict(),
                "observations": n_obs,
                "note": "too few answers; defaults",
            }
    return fitted, fit_info


def _training_rates(train: Sequences) -> tuple[dict[str, float], float]:
    """Each skill's training correct rate, and the overall one (0.5 without training data)."""
    rate = {
        s: float(np.mean([x for seq in d.values() for x in seq])) for s, d in train.items() if d
    }
    overall = (
        float(np.mean([x for d in train.values() for seq in d.values() for x in seq]))
        if train
        else 0.5
    )
    return rate, overall


def _score_models(ys: list[int], preds: dict[str, list[float]]) -> dict[str, Any]:
    """AUC, accuracy, RMSE, ECE and the reliability diagram of each model's predictions."""
    y = np.asarray(ys)
    out_models = {}
    for m, pred in preds.items():
        p = np.asarray(pred)
        bins = M.reliability(y, p)
        out_models[m] = {
            "auc": kt.auc(y, p),
            "accuracy": M.binary_accuracy(y, p),
            "rmse": M.rmse(y, p),
            "ece": M.expected_calibration_error(bins),
            "reliability": bins,
        }
    return out_models


def evaluate(
    train: Sequences,
    test: Sequences,
    defaults: kt.BKTParams,
    true: dict[str, kt.BKTParams] | None = None,
) -> dict[str, Any]:
    fitted, fit_info = _fit_skills(train, defaults)
    rate, overall = _training_rates(train)
    models = ["BKT fitted (EM)", "BKT defaults", "per-skill rate"] + (
        ["BKT true params"] if true else []
    )
    preds: dict[str, list[float]] = {m: [] for m in models}
    ys: list[int] = []
    sequences = []
    for skill, by_learner in sorted(test.items()):
        names = sorted(by_learner)
        seqs = [by_learner[n] for n in names]
        p_fit = kt.predict_sequences(seqs, fitted.get(skill, defaults))
        p_def = kt.predict_sequences(seqs, defaults)
        p_true = kt.predict_sequences(seqs, true[skill]) if true and skill in true else None
        for j, (name, seq) in enumerate(zip(names, seqs, strict=True)):
            ys.extend(seq)
            preds["BKT fitted (EM)"].extend(map(float, p_fit[j]))
            preds["BKT defaults"].extend(map(float, p_def[j]))
            preds["per-skill rate"].extend([rate.get(skill, overall)] * len(seq))
            if p_true is not None:
                preds["BKT true params"].extend(map(float, p_true[j]))
            sequences.append(
                {
                    "skill": skill,
                    "learner": name,
                    "y": seq,
                    "p": [round(float(x), 4) for x in p_fit[j]],
                }
            )
    return {
        "train_answers": int(sum(len(s) for d in train.values() for s in d.values())),
        "test_answers": len(ys),
        "test_sequences": len(sequences),
        "skills": sorted(test),
        "fit": fit_info,
        "models": _score_models(ys, preds),
        "sequences": sequences,
    }


def run_learner_model(run: EvalRun) -> SuiteResult:
    res = SuiteResult("learner-model")
    opts = run.options
    defaults = kt.BKTParams.from_config(run.config.tutor)
    datasets: list[tuple[str, str, Any]] = [("simulated", f"simulated@{opts.sim_learners}", None)]
    for src in opts.attempts:
        if src == "store":
            datasets.append(("learner store", f"store@{run.store.hash}", "store"))
        else:
            datasets.append((Path(src).stem, file_tag(src), src))
    results: dict[str, Any] = {}
    for name, tag, src in run.progress(datasets, len(datasets), "learner model"):
        key = f"learner-model|{tag}"
        res.keys.append(key)
        if run.store.has(key):
            results[name] = run.store.get(key)["result"]
            continue
        if src is None:
            train, test = simulated(opts.sim_learners, opts.seed)
            result = evaluate(train, test, defaults, SIM_SKILLS)
        else:
            rows = (
                store_rows(run.config)
                if src == "store"
                else [
                    (r.learner, r.skill, r.correct)
                    for r in load_attempts(src, opts.columns or None)
                ]
            )
            if not rows:
                res.skipped[name] = "no attempts"
                continue
            train, test = from_rows(rows, opts.seed, tag)
            if not test:
                res.skipped[name] = "too few learners to hold any out"
                continue
            result = evaluate(train, test, defaults)
        run.store.add({"key": key, "suite": "learner-model", "dataset": name, "result": result})
        results[name] = result
    res.summary = {
        "datasets": {
            n: {k: v for k, v in r.items() if k != "sequences"} for n, r in results.items()
        }
    }
    table_rows: list[list[Any]] = []
    for name, r in results.items():
        for model, m in r["models"].items():
            table_rows.append(
                [
                    name,
                    model,
                    r["test_answers"],
                    f"{m['auc']:.3f}",
                    f"{m['accuracy']:.3f}",
                    f"{m['rmse']:.3f}",
                    f"{m['ece']:.3f}",
                ]
            )
            slug = model.split(" (")[0].lower().replace(" ", "-")
            res.metric(f"{name}/{slug}/auc", m["auc"], True)
            res.metric(f"{name}/{slug}/accuracy", m["accuracy"], True)
            res.metric(f"{name}/{slug}/rmse", m["rmse"], False)
            res.metric(f"{name}/{slug}/ece", m["ece"], False)
    res.table(
        "P(correct) on held-out learners",
        ["dataset", "model", "held-out answers", "AUC", "accuracy", "RMSE", "ECE"],
        table_rows,
        "Each prediction uses only the learner's earlier answers on the skill.",
    )
    return res
