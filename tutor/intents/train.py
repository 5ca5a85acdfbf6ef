"""Fit and score the intent classifier (``tutor intents train|eval``).

Training: the regularisation strength and the n-grams' weight are chosen on a stratified fifth
of the training file (never on the held-out file), then the model is refitted on the whole
training file. Scoring:
accuracy, macro-F1 and per-label precision/recall/F1 on a labelled file, for the model and for
the rules it replaces (``tutor.modes.detect_intent`` in auto mode, its rule mapped to a label),
on the same messages.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from tutor.intents.features import FEATURE_NAMES, LABELS, feature_rows
from tutor.intents.model import FORMAT, Example, IntentModel, hashed

log = logging.getLogger(__name__)

C_GRID = (0.1, 0.3, 1.0, 3.0)
NGRAM_WEIGHTS = (6.0, 10.0, 15.0)  # how much the n-grams count next to the standardised vector
# detect_intent's rule -> the label it stands for (the rules have no "meta")
RULE_LABEL = {
    "unsafe": "offtopic",
    "solution": "solution",
    "hint": "hint",
    "practice": "practice",
    "greeting": "greeting",
    "work": "step",
    "attempt": "answer",
    "problem": "new_problem",
    "offtopic": "offtopic",
    "question": "question",
}


def _fit_lr(x: np.ndarray, y: np.ndarray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000).fit(x, y)


def fit(
    examples: Sequence[Example], embedder: Any, *, seed: int = 0, progress: bool = True
) -> dict[str, Any]:
    """The weights (a JSON-able dict) of the classifier fitted on ``examples``."""
    from scipy import sparse
    from sklearn.model_selection import train_test_split

    t0 = time.perf_counter()
    texts = [e.text for e in examples]
    vecs = np.asarray(embedder.encode(texts), dtype=np.float32)
    x = np.hstack([vecs, feature_rows(texts, [e.state for e in examples])])
    ngrams = hashed(texts)
    y = np.array([LABELS.index(e.label) for e in examples])
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    xs = sparse.csr_matrix((x - mean) / scale)
    tr, va = train_test_split(np.arange(len(y)), test_size=0.2, random_state=seed, stratify=y)
    scores: dict[str, float] = {}
    for w in NGRAM_WEIGHTS:
        both = sparse.hstack([xs, w * ngrams]).tocsr()
        for c in C_GRID:
            clf = _fit_lr(both[tr], y[tr], c)
            scores[f"{w:g}/{c:g}"] = float((clf.predict(both[va]) == y[va]).mean())
            if progress:
                log.info(
                    "intent model: n-gram weight %g, C=%g: validation accuracy %.3f",
                    w,
                    c,
                    scores[f"{w:g}/{c:g}"],
                )
    best = max(scores, key=lambda k: (scores[k], -float(k.split("/")[1])))
    w, c = (float(v) for v in best.split("/"))
    clf = _fit_lr(sparse.hstack([xs, w * ngrams]).tocsr(), y, c)
    n_dense = x.shape[1]
    coef = np.zeros((len(LABELS), clf.coef_.shape[1]), dtype=np.float64)
    intercept = np.full(len(LABELS), -30.0)  # a label absent from the data is never predicted
    for row, cls in enumerate(clf.classes_):
        coef[cls], intercept[cls] = clf.coef_[row], clf.intercept_[row]
    return {
        "format": FORMAT,
        "embedder": getattr(embedder, "name", ""),
        "labels": list(LABELS),
        "features": list(FEATURE_NAMES),
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "coef": [[round(float(v), 5) for v in r[:n_dense]] for r in coef],
        "intercept": [round(float(v), 5) for v in intercept],
        "ngram_weight": w,
        "ngram_coef": [[round(float(v), 4) for v in r[n_dense:]] for r in coef],
        "training": {
            "examples": len(examples),
            "per_label": dict(Counter(e.label for e in examples)),
            "C": c,
            "ngram_weight": w,
            "validation_accuracy": scores,
            "fit_s": round(time.perf_counter() - t0, 1),
        },
    }


def scores(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the labels present in ``gold``, and per-label P/R/F1."""
    per: dict[str, dict[str, float]] = {}
    for lab in LABELS:
        tp = sum(g == lab and p == lab for g, p in zip(gold, pred, strict=True))
        fp = sum(g != lab and p == lab for g, p in zip(gold, pred, strict=True))
        fn = sum(g == lab and p != lab for g, p in zip(gold, pred, strict=True))
        if tp + fn == 0:
            continue
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[lab] = {"precision": prec, "recall": rec, "f1": f1, "support": tp + fn}
    acc = sum(g == p for g, p in zip(gold, pred, strict=True)) / max(1, len(gold))
    macro = sum(v["f1"] for v in per.values()) / max(1, len(per))
    return {"accuracy": acc, "macro_f1": macro, "per_label": per, "n": len(gold)}


def rules_labels(examples: Sequence[Example]) -> list[str]:
    """What the rule cascade (``detect_intent`` in auto mode) says each message is."""
    from tutor.modes import rule_intent

    return [
        RULE_LABEL[rule_intent(e.text, problem_open=e.state.problem_open).rule] for e in examples
    ]


def evaluate(model: IntentModel, examples: Sequence[Example]) -> dict[str, Any]:
    """The model and the rules scored on ``examples``, with the errors the model made."""
    gold = [e.label for e in examples]
    pred = model.predict_many([e.text for e in examples], [e.state for e in examples])
    rules = rules_labels(examples)
    errors = [
        {"text": e.text[:200], "gold": g, "predicted": p, "problem_open": e.state.problem_open}
        for e, g, p in zip(examples, gold, pred, strict=True)
        if g != p
    ]
    confusion = Counter(f"{g} -> {p}" for g, p in zip(gold, pred, strict=True) if g != p)
    return {
        "model": scores(gold, pred),
        "rules": scores(gold, rules),
        "errors": errors,
        "confusion": dict(confusion.most_common()),
    }
