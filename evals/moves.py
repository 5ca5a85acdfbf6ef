"""Scoring the move classifier on held-out MathDial problems, against the baselines.

Three systems label every held-out teacher turn with one of the four moves:

- ``classifier``: the trained judge (``tutor.judge``);
- ``cue rules``: the project's model-free scorers (``evals.scorers``) mapped to moves: the
  final-answer check (``answer_revealed``) -> telling, else a mistake cue -> focus, else a
  question mark -> probing, else generic;
- ``majority``: the most frequent move of the training split, always.

For each: per-label F1, macro-F1, accuracy. For the classifier also the expected calibration
error (ECE, 10 bins, on the top move's probability) and the telling detector's F1 against the
final-answer check alone. ``suite_record`` packs it as an eval result suite (``evals.results``
format), so ``evals.tables`` renders its tables into docs/evals.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import numpy as np

from evals.datasets import DialogueContext
from evals.dimensions import YES
from evals.metrics import accuracy, expected_calibration_error, macro_f1, reliability
from evals.scorers import answer_revealed, asks_question, mistake_identification
from tutor.judge.data import MoveExample

TABLE_TITLE = "Move classifier on held-out MathDial problems"
TELLING_TITLE = "Telling detection on held-out MathDial problems"
TRAINING_TITLE = "Move classifier: training and size"


def f1_of(gold: Sequence[str], pred: Sequence[str], label: str) -> float:
    tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
    fp = sum(g != label and p == label for g, p in zip(gold, pred, strict=True))
    fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def cue_move(e: MoveExample) -> str:
    """The cue rules' move for one turn (see the module docstring)."""
    ctx = DialogueContext(id="", source="", history=[], problem=e.problem, answer=e.answer)
    if answer_revealed(e.reply, ctx):
        return "telling"
    if mistake_identification(e.reply) == YES:
        return "focus"
    if asks_question(e.reply):
        return "probing"
    return "generic"


def scores(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    return {
        "per_label": {lab: round(f1_of(gold, pred, lab), 4) for lab in labels},
        "macro_f1": round(macro_f1(gold, pred, labels), 4),
        "accuracy": round(accuracy(gold, pred), 4),
    }


def evaluate(
    probs: np.ndarray,
    heldout: Sequence[MoveExample],
    train: Sequence[MoveExample],
    labels: Sequence[str],
) -> dict[str, Any]:
    """The report: the three systems' scores, calibration and telling detection."""
    gold = [e.label for e in heldout]
    model = [labels[i] for i in probs.argmax(1)]
    cues = [cue_move(e) for e in heldout]
    major = Counter(e.label for e in train).most_common(1)[0][0]
    majority = [major] * len(heldout)
    correct = [float(m == g) for m, g in zip(model, gold, strict=True)]
    bins = reliability(correct, probs.max(1), bins=10)
    ctxs = [
        DialogueContext(id="", source="", history=[], problem=e.problem, answer=e.answer)
        for e in heldout
    ]
    revealed = [
        "telling" if answer_revealed(e.reply, c) else "other"
        for e, c in zip(heldout, ctxs, strict=True)
    ]
    telling_gold = [g if g == "telling" else "other" for g in gold]
    return {
        "n": len(heldout),
        "problems": len({e.group for e in heldout}),
        "support": {lab: gold.count(lab) for lab in labels},
        "systems": {
            "classifier": scores(gold, model, labels),
            "cue rules": scores(gold, cues, labels),
            f"majority ({major})": scores(gold, majority, labels),
        },
        "ece": round(expected_calibration_error(bins), 4),
        "reliability": bins,
        "telling": {
            "classifier": round(f1_of(gold, model, "telling"), 4),
            "final-answer check": round(f1_of(telling_gold, revealed, "telling"), 4),
            "final-answer check misses": sum(
                g == "telling" and r != "telling" for g, r in zip(gold, revealed, strict=True)
            ),
            "telling turns": gold.count("telling"),
        },
    }


def tables(report: dict[str, Any], labels: Sequence[str]) -> list[dict[str, Any]]:
    """The report's tables in the eval result form (``title``, ``columns``, ``rows``)."""
    rows = []
    for name, s in report["systems"].items():
        per = [f"{s['per_label'][lab]:.3f}" for lab in labels]
        rows.append([name, *per, f"{s['macro_f1']:.3f}", f"{s['accuracy']:.3f}"])
    support = ", ".join(f"{lab} {n}" for lab, n in report["support"].items())
    moves = {
        "title": f"{TABLE_TITLE} ({report['n']} turns, {report['problems']} problems: {support})",
        "columns": ["system", *[f"{lab} F1" for lab in labels], "macro-F1", "accuracy"],
        "rows": rows,
    }
    t = report["telling"]
    telling = {
        "title": f"{TELLING_TITLE} ({t['telling turns']} telling turns)",
        "columns": ["detector", "telling F1", "calibration (ECE, top move)"],
        "rows": [
            ["classifier", f"{t['classifier']:.3f}", f"{report['ece']:.3f}"],
            [
                f"final-answer check (misses {t['final-answer check misses']})",
                f"{t['final-answer check']:.3f}",
                "–",
            ],
        ],
    }
    out = [moves, telling]
    tr = report.get("training")
    if tr:
        out.append(
            {
                "title": TRAINING_TITLE,
                "columns": [
                    "method",
                    "trained params",
                    "weights",
                    "train time",
                    "best epoch",
                    "validation macro-F1",
                    "temperature",
                    "ms/turn (inference)",
                ],
                "rows": [
                    [
                        tr["method"],
                        f"{tr['trained_params']:,}",
                        f"{tr['weights_mb']:.1f} MB",
                        f"{tr['seconds']:.0f} s",
                        f"{tr['best_epoch']} of {tr['epochs_run']}",
                        f"{tr['val_macro_f1']:.3f}",
                        f"{tr['temperature']:.2f}",
                        f"{report['inference_ms_per_turn']:.0f}",
                    ]
                ],
            }
        )
    return out


def training_summary(model: Any, weights_mb: float) -> dict[str, Any]:
    """What the training table shows, from the model's spec and training record."""
    spec, rec = model.spec, model.record
    tuned = "all layers" if not spec.top_layers else f"top {spec.top_layers} layers"
    method = f"LoRA r={spec.lora_r}, {tuned}" if spec.method == "lora" else f"full, {tuned}"
    return {
        "method": f"MiniLM-L6 + {method} + linear head, max {spec.max_length} tokens",
        "trained_params": int(rec.get("trained_params", 0)),
        "weights_mb": weights_mb,
        "seconds": rec.get("seconds", 0.0),
        "best_epoch": rec.get("best_epoch", 0),
        "epochs_run": len(rec.get("history", [])),
        "val_macro_f1": rec.get("val_macro_f1", 0.0),
        "temperature": spec.temperature,
    }


# the code a judge result depends on: a tree dirty only elsewhere still names a clean commit
JUDGE_CODE = (
    "tutor/judge/",
    "tutor/cli/judge.py",
    "tutor/grading/",
    "evals/moves.py",
    "evals/metrics.py",
    "evals/scorers.py",
    "evals/datasets.py",
    "evals/dimensions.py",
    "knowledge_base/embed.py",
)


def judge_commit() -> tuple[str, list[str]]:
    """(commit, uncommitted files): ``+dirty`` only when the judge's own code has changes
    (other engineers' work in progress elsewhere in a shared tree does not change its figures)."""
    import subprocess

    from evals.report import code_version
    from evals.run import REPO_ROOT

    commit = code_version()
    if not commit.endswith("+dirty"):
        return commit, []
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return commit, []
    dirty = sorted(line[3:].strip() for line in out.splitlines() if line.strip())
    if any(path.startswith(JUDGE_CODE) for path in dirty):
        return commit, dirty
    return commit.removesuffix("+dirty"), dirty


def write_result(
    report: dict[str, Any], model: Any, name: str, data: str, seconds: float, weights: Any = None
) -> Any:
    """Write ``evals/results/<name>.json`` in the eval result format (one suite, "judge"):
    commit, machine and load, the training record, and the tables ``evals.tables`` renders."""
    import json
    from datetime import datetime
    from pathlib import Path

    from evals.machine import load_average, machine_info
    from evals.results import FORMAT, RESULTS_DIR

    labels = model.spec.labels
    if weights is not None:
        report = {**report, "training": training_summary(model, weights.stat().st_size / 1e6)}
    commit, dirty = judge_commit()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    training = {k: v for k, v in model.record.items() if k != "history"}
    summary = {k: v for k, v in report.items() if k != "reliability"}
    suite = {
        "run": {
            "commit": commit,
            "created": created,
            "machine": machine_info(model.record.get("load_before") or load_average()),
        },
        "seconds": round(seconds, 1),
        "items": report["n"],
        "summary": {**summary, "training": training, "spec": dict(vars(model.spec))},
        "tables": tables(report, labels),
        "notes": [
            f"data {Path(data).name}; split by problem (qid); the cue rules are evals.scorers",
            *(
                [f"uncommitted changes outside the judge's code: {len(dirty)} files"]
                if dirty and not commit.endswith("+dirty")
                else []
            ),
        ],
        "skipped": {},
    }
    result = {
        "format": FORMAT,
        "name": name,
        "complete": True,
        "commit": commit,
        "created": created,
        "machine": suite["run"]["machine"],
        "model": f"move judge ({model.spec.method}) on {model.spec.base}",
        "options": {"data": [Path(data).name]},
        "suites": {"judge": suite},
        "metrics": {
            "judge.macro_f1": report["systems"]["classifier"]["macro_f1"],
            "judge.telling_f1": report["telling"]["classifier"],
            "judge.ece": report["ece"],
        },
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
