"""Plain metric functions (no model, no I/O): agreement, retrieval ranking, probability quality.

- agreement: ``accuracy``, ``macro_f1`` and ``confusion`` of predicted vs human labels;
- retrieval: ``recall_at``, ``reciprocal_rank``, ``ndcg_at`` from the 1-based ranks of the
  relevant passages in a result list;
- probabilities: ``rmse``, ``binary_accuracy``, ``reliability`` (bins for a reliability
  diagram) and ``expected_calibration_error``; AUC is ``tutor.kt.auc``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

# -- agreement ---------------------------------------------------------------------------------


def accuracy(gold: Sequence[Any], pred: Sequence[Any]) -> float:
    """Share of positions where ``pred`` equals ``gold`` (0.0 for no pairs)."""
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} labels but pred has {len(pred)}")
    if not gold:
        return 0.0
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)


def macro_f1(
    gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[Any] | None = None
) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: the classes seen in ``gold``).

    A class that never occurs in ``gold`` but is predicted counts with F1 = 0 when ``labels``
    includes it; a class absent from both is left out (it has no F1 to average).
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} labels but pred has {len(pred)}")
    classes = list(labels) if labels is not None else sorted(set(gold), key=str)
    scores = []
    for c in classes:
        tp = sum(g == c and p == c for g, p in zip(gold, pred, strict=True))
        fp = sum(g != c and p == c for g, p in zip(gold, pred, strict=True))
        fn = sum(g == c and p != c for g, p in zip(gold, pred, strict=True))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(sum(scores) / len(scores)) if scores else 0.0


def confusion(
    gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[Any]
) -> dict[str, dict[str, int]]:
    """``{gold_label: {pred_label: count}}`` over ``labels`` (other predictions under "other")."""
    out: dict[str, dict[str, int]] = {str(g): {str(p): 0 for p in labels} for g in labels}
    for g, p in zip(gold, pred, strict=True):
        row = out.setdefault(str(g), {str(x): 0 for x in labels})
        key = str(p) if str(p) in row else "other"
        row[key] = row.get(key, 0) + 1
    return out


# -- retrieval ---------------------------------------------------------------------------------


def recall_at(ranks: Sequence[int], k: int) -> float:
    """1.0 when a relevant passage is in the top ``k`` (``ranks`` are 1-based), else 0.0."""
    return 1.0 if any(r <= k for r in ranks) else 0.0


def reciprocal_rank(ranks: Sequence[int], k: int | None = None) -> float:
    """1 / rank of the first relevant passage (0 when none, or none within ``k``)."""
    hits = [r for r in ranks if k is None or r <= k]
    return 1.0 / min(hits) if hits else 0.0


def ndcg_at(ranks: Sequence[int], n_relevant: int, k: int = 10) -> float:
    """Binary-relevance nDCG@k: ``ranks`` of the relevant passages retrieved (1-based) and how
    many relevant passages exist in all (the ideal list puts them all first)."""
    if n_relevant <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(r + 1) for r in set(ranks) if r <= k)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(n_relevant, k) + 1))
    return dcg / ideal


# -- probabilities -----------------------------------------------------------------------------


def rmse(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> float:
    y_, p_ = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    return float(np.sqrt(((p_ - y_) ** 2).mean())) if len(y_) else 0.0


def binary_accuracy(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> float:
    """Accuracy of thresholding ``p`` at 0.5."""
    y_, p_ = np.asarray(y, dtype=bool), np.asarray(p, dtype=float)
    return float(((p_ >= 0.5) == y_).mean()) if len(y_) else 0.0


def reliability(
    y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray, bins: int = 10
) -> list[dict[str, float]]:
    """Equal-width bins of predicted probability: ``{lo, hi, count, mean_p, observed}`` each
    (``observed`` = share correct in the bin; empty bins are kept with count 0)."""
    y_, p_ = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p_, edges[1:-1], right=False), 0, bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        out.append(
            {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "count": n,
                "mean_p": float(p_[m].mean()) if n else 0.0,
                "observed": float(y_[m].mean()) if n else 0.0,
            }
        )
    return out


def expected_calibration_error(bins: Sequence[dict[str, float]]) -> float:
    """Count-weighted mean |observed - mean_p| over the bins of ``reliability``."""
    total = sum(b["count"] for b in bins)
    if not total:
        return 0.0
    return float(sum(b["count"] * abs(b["observed"] - b["mean_p"]) for b in bins) / total)


def mean(values: Sequence[float]) -> float | None:
    """Mean of the non-None values, None when there are none."""
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None
