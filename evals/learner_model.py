"""Learner-model suite: how well each learner model's P(correct) predicts held-out answers.

Datasets (always the first two):

- ``simulated``: learners drawn from known BKT parameters (5 skills; ``--sim-learners`` per
  split and skill), with the generating model as a ceiling ("BKT true params");
- ``simulated-learners``: learners that are not BKT (``tutor.kt_sim``: ability, item
  difficulty, learning, forgetting in time, multi-skill items; 5 x ``--sim-learners``
  learners), with the simulator's own P(correct) as the ceiling;
- any attempts log the user passes: ``--attempts FILE`` (CSV or JSONL mapped with ``--columns
  learner=..,skill=..,correct=..[,order=..][,item=..][,time=..]``, or the three-line
  count/skills/responses format; see ``tutor.kt_data``), or ``--attempts store`` for the
  configured learner store's counted attempts.

Learners are split 80/20 (seeded). On the training learners: BKT by EM per skill (skills under
20 answers keep the ``[tutor]`` defaults), PFA and Best-LR (``tutor.kt_lr``), each skill's
correct rate. Every held-out answer is predicted from the learner's earlier answers only; a
multi-skill answer is scored once. Reported per model: AUC with a 95% bootstrap interval over
held-out learners, accuracy at 0.5, RMSE, expected calibration error, the reliability diagram,
the CPU time of the fit; and which predictor the tutor would choose (Best-LR or BKT, by AUC).
The report keeps a seeded sample of the held-out sequences, not all of them.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np

from evals import metrics as M
from evals.run import EvalRun, SuiteResult, file_tag
from tutor import kt, kt_models, kt_sim
from tutor.kt_data import Answer, AnswerLog, answers_from_store, load_answers

log = logging.getLogger(__name__)

SIM_SKILLS: dict[str, kt.BKTParams] = {
    "fractions": kt.BKTParams(prior=0.25, learn=0.12, guess=0.2, slip=0.1),
    "decimals": kt.BKTParams(prior=0.4, learn=0.2, guess=0.25, slip=0.08),
    "ratios-percents": kt.BKTParams(prior=0.1, learn=0.1, guess=0.15, slip=0.12),
    "linear-equations": kt.BKTParams(prior=0.15, learn=0.25, guess=0.1, slip=0.05),
    "water-cycle": kt.BKTParams(prior=0.5, learn=0.15, guess=0.3, slip=0.1),
}
MIN_OBSERVATIONS = 20
BOOTSTRAP = 200
SAMPLE_SEQUENCES = 10
SAMPLE_ANSWERS = 25


def simulated(n_learners: int, seed: int) -> tuple[AnswerLog, AnswerLog]:
    """BKT-generated learners: (train, test) logs, each learner practising every skill."""
    rng = np.random.default_rng(seed)
    split: dict[str, list[Answer]] = {"train": [], "test": []}
    for skill, p in SIM_SKILLS.items():
        for name, out in split.items():
            lengths = rng.integers(5, 31, n_learners)
            sim = kt.simulate(p, n_learners, int(lengths.max()), rng=rng)
            for i, (row, n) in enumerate(zip(sim.correct, lengths, strict=True)):
                out.extend(Answer(f"{name}-{i}", (skill,), bool(c)) for c in row[:n])
    train, test = (
        AnswerLog.from_answers(sorted(v, key=lambda a: a.learner)) for v in split.values()
    )
    return train, test


def _bootstrap_auc(
    y: np.ndarray, preds: dict[str, np.ndarray], bounds: np.ndarray, seed: int
) -> dict[str, list[float]]:
    """95% intervals of each model's AUC, resampling held-out learners with replacement."""
    rng = np.random.default_rng(seed)
    n_l = len(bounds) - 1
    lengths = np.diff(bounds)
    out: dict[str, list[float]] = {m: [] for m in preds}
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, n_l, n_l)
        starts = np.repeat(bounds[pick], lengths[pick])
        offs = np.arange(len(starts)) - np.repeat(
            np.cumsum(lengths[pick]) - lengths[pick], lengths[pick]
        )
        idx = starts + offs
        for m, p in preds.items():
            out[m].append(kt.auc(y[idx], p[idx]))
    return {m: [float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))] for m, v in out.items()}


def _sample_sequences(test: AnswerLog, preds: dict[str, np.ndarray], seed: int) -> list[Any]:
    """A seeded sample of held-out learners (their first answers), column-wise to stay small."""
    bounds = test.learner_bounds()
    picks = list(range(len(test.learners)))
    random.Random(seed).shuffle(picks)
    answers = test.answers()
    out = []
    for li in sorted(picks[:SAMPLE_SEQUENCES]):
        idx = range(int(bounds[li]), int(min(bounds[li + 1], bounds[li] + SAMPLE_ANSWERS)))
        out.append(
            {
                "learner": test.learners[li],
                "skills": ["+".join(answers[i].skills) for i in idx],
                "items": [answers[i].item for i in idx],
                "y": [int(test.correct[i]) for i in idx],
                "p": {m: [round(float(p[i]), 3) for i in idx] for m, p in preds.items()},
            }
        )
    return out


def evaluate(
    train: AnswerLog,
    test: AnswerLog,
    defaults: kt.BKTParams,
    *,
    run: EvalRun | None = None,
    extra: dict[str, np.ndarray] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every model fitted on ``train``, scored on ``test``; ``extra``: more predictions of the
    test answers (a ceiling)."""
    progress = run.progress if run is not None else None
    comp = kt_models.compare(
        train, test, defaults, min_observations=MIN_OBSERVATIONS, progress=progress
    )
    preds = {**comp.preds, **(extra or {})}
    y = comp.y
    cis = _bootstrap_auc(y, preds, test.learner_bounds(), seed)
    models: dict[str, dict[str, Any]] = {}
    for m, p in preds.items():
        bins = M.reliability(y, p)
        models[m] = {
            "auc": kt.auc(y, p),
            "auc_ci95": cis[m],
            "accuracy": M.binary_accuracy(y, p),
            "rmse": M.rmse(y, p),
            "ece": M.expected_calibration_error(bins),
            "reliability": bins,
            "fit_cpu_s": round(comp.fit_seconds.get(m, 0.0), 3),
        }
    fit_info = {
        s: {
            "params": r.params.to_dict(),
            "observations": r.n_observations,
            "converged": r.converged,
        }
        for s, r in comp.bkt.items()
    }
    chosen = kt_models.choose(
        {"Best-LR": models["Best-LR"]["auc"], "BKT": models["BKT fitted (EM)"]["auc"]}
    )
    chosen = "Best-LR" if chosen == "Best-LR" else "BKT fitted (EM)"
    return {
        "train_answers": len(train),
        "test_answers": len(test),
        "test_learners": len(test.learners),
        "skills": list(test.skills),
        "fit": fit_info,
        "models": models,
        "chosen_predictor": chosen,
        "sequences_sampled": _sample_sequences(test, preds, seed),
    }


def _true_bkt(test: AnswerLog) -> np.ndarray:
    return kt_models.bkt_predict(test, SIM_SKILLS, kt.BKTParams())


def _dataset(run: EvalRun, name: str, src: Any, defaults: kt.BKTParams) -> dict[str, Any] | str:
    """The result for one dataset, or why it was skipped."""
    opts = run.options
    if src == "sim-bkt":
        train, test = simulated(opts.sim_learners, opts.seed)
        return evaluate(
            train,
            test,
            defaults,
            run=run,
            extra={"BKT true params": _true_bkt(test)},
            seed=opts.seed,
        )
    if src == "sim-learners":
        data = kt_sim.simulate(kt_sim.SimConfig(n_learners=5 * opts.sim_learners), opts.seed)
        train, test = data.log.split(opts.seed, "sim")
        held = np.isin(data.log.learner, [data.log.learners.index(n) for n in test.learners])
        return evaluate(
            train,
            test,
            defaults,
            run=run,
            extra={"simulator (ceiling)": data.p_true[held]},
            seed=opts.seed,
        )
    if src == "store":
        from tutor.builders import build_learner_store

        store = build_learner_store(run.config)
        try:
            attempts = store.attempts(counted_only=True)
        finally:
            store.close()
        if not attempts:
            return "no attempts"
        answers = answers_from_store(attempts)
    else:
        answers = load_answers(src, opts.columns or None)
    train, test = answers.split(opts.seed, file_tag(src) if src != "store" else "store")
    if len(test) == 0 or len(train) == 0:
        return "too few learners to hold any out"
    return evaluate(train, test, defaults, run=run, seed=opts.seed)


def run_learner_model(run: EvalRun) -> SuiteResult:
    res = SuiteResult("learner-model")
    opts = run.options
    defaults = kt.BKTParams.from_config(run.config.tutor)
    datasets: list[tuple[str, str, Any]] = [
        ("simulated", f"simulated@{opts.sim_learners}", "sim-bkt"),
        ("simulated-learners", f"simulated-learners@{opts.sim_learners}", "sim-learners"),
    ]
    for src in opts.attempts:
        if src == "store":
            datasets.append(("learner store", f"store@{run.store.hash}", "store"))
        else:
            datasets.append((Path(src).stem, file_tag(src), src))
    results: dict[str, Any] = {}
    for i, (name, tag, src) in enumerate(datasets, 1):
        log.info("learner model: dataset %d/%d: %s", i, len(datasets), name)
        key = f"learner-model|v2|{tag}"
        res.keys.append(key)
        if run.store.has(key):
            rec = run.store.get(key)
            results[name] = {**rec["result"], "fit_cpu_s": rec.get("seconds", {})}
            continue
        result = _dataset(run, name, src, defaults)
        if isinstance(result, str):
            res.skipped[name] = result
            continue
        # fit times vary run to run: outside the result (a rerun must give the same items)
        times = {m: v.pop("fit_cpu_s") for m, v in result["models"].items()}
        run.store.add(
            {
                "key": key,
                "suite": "learner-model",
                "dataset": name,
                "result": result,
                "seconds": times,
            }
        )
        results[name] = {**result, "fit_cpu_s": times}
    # the sampled sequences stay in the items (report.json), out of the summary
    res.summary = {
        "datasets": {
            n: {k: v for k, v in r.items() if k != "sequences_sampled"} for n, r in results.items()
        }
    }
    _table(res, results)
    return res


def _table(res: SuiteResult, results: dict[str, Any]) -> None:
    rows: list[list[Any]] = []
    for name, r in results.items():
        for model, m in r["models"].items():
            lo, hi = m["auc_ci95"]
            rows.append(
                [
                    name,
                    model + (" ◀ chosen" if model == r["chosen_predictor"] else ""),
                    r["test_answers"],
                    f"{m['auc']:.3f} [{lo:.3f}, {hi:.3f}]",
                    f"{m['accuracy']:.3f}",
                    f"{m['rmse']:.3f}",
                    f"{m['ece']:.3f}",
                    f"{r['fit_cpu_s'][model]:.1f}" if r["fit_cpu_s"].get(model) else "-",
                ]
            )
            slug = model.split(" (")[0].lower().replace(" ", "-")
            res.metric(f"{name}/{slug}/auc", m["auc"], True)
            res.metric(f"{name}/{slug}/accuracy", m["accuracy"], True)
            res.metric(f"{name}/{slug}/rmse", m["rmse"], False)
            res.metric(f"{name}/{slug}/ece", m["ece"], False)
    res.table(
        "P(correct) on held-out learners",
        [
            "dataset",
            "model",
            "held-out answers",
            "AUC [95% CI]",
            "accuracy",
            "RMSE",
            "ECE",
            "fit CPU s",
        ],
        rows,
        "Each prediction uses only the learner's earlier answers; AUC intervals: bootstrap over "
        "held-out learners. ◀ chosen: the predictor the tutor would use (Best-LR or BKT, by AUC).",
    )
