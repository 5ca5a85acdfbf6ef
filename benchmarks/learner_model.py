"""Learner-performance prediction on held-out simulated learners: BKT, PFA, Best-LR, baselines.

Part 1 (tables ``models``, ``parameters``) simulates several skills from known BKT parameters (different prior/learn/guess/slip, and
different sequence lengths per learner), fits BKT per skill by EM on the training learners,
and scores the prediction of each next answer for held-out learners (online: every prediction
uses only the learner's earlier answers). Side by side:

- majority: the most frequent outcome in training, a constant (AUC 0.5 by construction);
- per-skill rate: each skill's correct rate in training;
- learner running rate: the learner's own correct rate so far on the skill (Laplace-smoothed);
- BKT (defaults): the untrained ``[tutor]`` defaults;
- BKT (fitted): EM per skill, as ``tutor learners fit-kt`` does;
- BKT (true params): the generating model, the ceiling.

Part 2 (tables ``realistic``, ``fit_cpu``): learners that are *not* BKT (``tutor.kt_sim``:
ability, item difficulty, learning with diminishing returns, forgetting in time, multi-skill
items), about 500k answers (``--sim-learners``), split 80/20 by learner. Every model is fitted
on the training learners and predicts the held-out learners' answers online; then Best-LR and
BKT's EM are fitted once more on all answers, timing the CPU (process time, one process).

Run: ``python benchmarks/learner_model.py [--learners 500] [--sim-learners 11500] [--seed 0]``;
prints Markdown tables.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from results import Recorder  # noqa: E402

from tutor import kt, kt_lr, kt_models, kt_sim  # noqa: E402

SKILLS: dict[str, kt.BKTParams] = {
    "fractions": kt.BKTParams(prior=0.25, learn=0.12, guess=0.2, slip=0.1),
    "decimals": kt.BKTParams(prior=0.4, learn=0.2, guess=0.25, slip=0.08),
    "ratios-percents": kt.BKTParams(prior=0.1, learn=0.1, guess=0.15, slip=0.12),
    "linear-equations": kt.BKTParams(prior=0.15, learn=0.25, guess=0.1, slip=0.05),
    "water-cycle": kt.BKTParams(prior=0.5, learn=0.15, guess=0.3, slip=0.1),
}


def simulate_skill(p: kt.BKTParams, n: int, rng: np.random.Generator) -> list[list[int]]:
    lengths = rng.integers(5, 31, n)
    sim = kt.simulate(p, n, int(lengths.max()), rng=rng)
    return [list(map(int, row[:k])) for row, k in zip(sim.correct, lengths, strict=True)]


def running_rate(seqs: list[list[int]]) -> list[np.ndarray]:
    out = []
    for s in seqs:
        c = np.cumsum([0, *s[:-1]])
        k = np.arange(len(s))
        out.append((c + 1) / (k + 2))
    return out


def metrics(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    return kt.auc(y, p), float(((p >= 0.5) == y).mean()), float(np.sqrt(((p - y) ** 2).mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--learners", type=int, default=500, help="learners per split and skill")
    ap.add_argument(
        "--sim-learners", type=int, default=11500, help="part 2 learners (~44 answers each)"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rec = Recorder("learner_model", args)
    bkt_part(args, rec)
    realistic_part(args, rec)
    rec.write()


def bkt_part(args: argparse.Namespace, rec: Recorder) -> None:
    rng = np.random.default_rng(args.seed)
    defaults = kt.BKTParams()
    train = {s: simulate_skill(p, args.learners, rng) for s, p in SKILLS.items()}
    test = {s: simulate_skill(p, args.learners, rng) for s, p in SKILLS.items()}

    t0 = time.perf_counter()
    fitted = {s: kt.fit_skill(seqs, init=defaults) for s, seqs in train.items()}
    fit_s = time.perf_counter() - t0

    all_train = np.concatenate([np.concatenate([np.asarray(x) for x in v]) for v in train.values()])
    majority = float(all_train.mean() >= 0.5)
    rate = {s: float(np.concatenate([np.asarray(x) for x in v]).mean()) for s, v in train.items()}

    y_parts, preds = [], {name: [] for name in MODELS}
    for s, seqs in test.items():
        y_parts.append(np.concatenate([np.asarray(x) for x in seqs]))
        n = len(y_parts[-1])
        preds["majority"].append(np.full(n, majority))
        preds["per-skill rate"].append(np.full(n, rate[s]))
        preds["learner running rate"].append(np.concatenate(running_rate(seqs)))
        preds["BKT (defaults)"].append(np.concatenate(kt.predict_sequences(seqs, defaults)))
        preds["BKT (fitted, EM)"].append(
            np.concatenate(kt.predict_sequences(seqs, fitted[s].params))
        )
        preds["BKT (true params)"].append(np.concatenate(kt.predict_sequences(seqs, SKILLS[s])))
    y = np.concatenate(y_parts)
    n_train = sum(len(x) for v in train.values() for x in v)
    print(
        f"{len(SKILLS)} skills; {args.learners} training and {args.learners} held-out learners per "
        f"skill; {n_train} training and {len(y)} held-out answers (5-30 per learner); seed {args.seed}; "
        f"EM fit of all skills {fit_s:.2f} s\n"
    )
    rec.meta(
        skills=len(SKILLS), train_answers=n_train, heldout_answers=len(y), fit_s=round(fit_s, 2)
    )
    rows = []
    for name in MODELS:
        a, acc, rmse = metrics(y, np.concatenate(preds[name]))
        rows.append([name, f"{a:.3f}", f"{acc:.3f}", f"{rmse:.3f}"])
    print(rec.table("models", ["model", "AUC", "accuracy", "RMSE"], rows, align="lrrr"))
    print("\nFitted vs true parameters (prior / learn / guess / slip):\n")
    rows = []
    for s, p in SKILLS.items():
        f = fitted[s].params
        rows.append(
            [
                s,
                f"{p.prior:.2f} / {p.learn:.2f} / {p.guess:.2f} / {p.slip:.2f}",
                f"{f.prior:.2f} / {f.learn:.2f} / {f.guess:.2f} / {f.slip:.2f}",
            ]
        )
    print(rec.table("parameters", ["skill", "true", "fitted"], rows))


def realistic_part(args: argparse.Namespace, rec: Recorder) -> None:
    data = kt_sim.simulate(kt_sim.SimConfig(n_learners=args.sim_learners), seed=args.seed)
    train, test = data.log.split(args.seed)
    comp = kt_models.compare(train, test, kt.BKTParams(), bank_difficulty=data.bank_difficulty)
    held = np.isin(data.log.learner, [data.log.learners.index(n) for n in test.learners])
    preds = {**comp.preds, "simulator's P(correct) (ceiling)": data.p_true[held]}
    print(
        f"\nRealistic simulated learners: {len(data.log)} answers of {len(data.log.learners)} "
        f"learners on {len(data.log.skills)} skills and {len(data.log.items)} items; "
        f"{len(train)} training and {len(test)} held-out answers\n"
    )
    rows = []
    for name, p in preds.items():
        a, acc, rmse = metrics(comp.y, np.asarray(p))
        fit_s = comp.fit_seconds.get(name)
        rows.append(
            [name, f"{a:.3f}", f"{acc:.3f}", f"{rmse:.3f}", f"{fit_s:.1f}" if fit_s else "-"]
        )
    print(
        rec.table(
            "realistic", ["model", "AUC", "accuracy", "RMSE", "fit CPU s"], rows, align="lrrrr"
        )
    )
    t0 = time.process_time()
    kt_lr.fit(data.log, bank_difficulty=data.bank_difficulty)
    lr_s = time.process_time() - t0
    t0 = time.process_time()
    fits = kt_models.fit_bkt(data.log)
    bkt_s = time.process_time() - t0
    rows = [
        ["Best-LR (L-BFGS, sparse)", len(data.log), f"{lr_s:.1f}"],
        [f"BKT EM ({len(fits)} skills, 5 starts each)", len(data.log), f"{bkt_s:.1f}"],
    ]
    print("\nFitting on all answers (CPU seconds, one process):\n")
    print(rec.table("fit_cpu", ["model", "answers", "CPU s"], rows, align="lrr"))
    rows = []
    for skill, r in sorted(fits.items()):
        p = r.params
        bound = [n for n, v in (("guess", p.guess), ("slip", p.slip)) if v >= kt.MAX_GUESS - 1e-9]
        rows.append(
            [
                skill,
                f"{p.prior:.2f} / {p.learn:.3f} / {p.guess:.2f} / {p.slip:.2f}",
                ", ".join(bound) or "-",
            ]
        )
    print("\nBKT fitted on these learners (prior / learn / guess / slip):\n")
    print(rec.table("realistic_params", ["skill", "fitted", "at the 0.3 bound"], rows))
    rec.meta(
        sim_answers=len(data.log),
        sim_learners=len(data.log.learners),
        sim_items=len(data.log.items),
        best_lr_fit_cpu_s=round(lr_s, 2),
        bkt_em_fit_cpu_s=round(bkt_s, 2),
    )


MODELS = (
    "majority",
    "per-skill rate",
    "learner running rate",
    "BKT (defaults)",
    "BKT (fitted, EM)",
    "BKT (true params)",
)

if __name__ == "__main__":
    main()
