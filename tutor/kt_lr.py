"""Logistic-regression learner models on an ``AnswerLog``: Best-LR and PFA.

Best-LR (Gervet, Koedinger, Schneider & Mitchell, 2020, "When is deep learning the best
approach to knowledge tracing?") is a logistic regression over count features of the learner's
*earlier* answers; on the ASSISTments logs it matches or beats DKT. PFA (Pavlik, Cen &
Koedinger, 2009) is its small ancestor: per skill, an easiness and weights on the learner's
earlier successes and failures on it. Both predict P(correct) of the next answer, like BKT.

Features of an answer (every count uses only earlier answers of the same learner; for a
multi-skill answer the per-skill features of its skills are summed, shared credit):

- ``skills``: one-hot of the answer's skills (easiness per skill);
- ``skill_counts``: per skill, earlier right and wrong answers on it (``log1p``; PFA: raw/10);
- ``items``: one-hot of the item (when the log has items);
- ``totals``: earlier right and wrong answers overall, and on this very item (``log1p``);
- ``difficulty``: the item's difficulty as seen in training (smoothed logit of its correct
  rate, leave-one-out on the training rows) and the bank's difficulty 1..5 when given;
- ``windows`` (when the log has times): earlier answers and right answers on the skill within
  the last hour, day, week and month (``log1p``), hours since the skill was last practised
  (``log1p``) and a first-time flag.

Fitted with scikit-learn's L2 logistic regression (L-BFGS) on a sparse matrix: 500k answers in
a few seconds (``benchmarks/learner_model.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from tutor.errors import InputError
from tutor.kt_data import Answer, AnswerLog

WINDOWS_S = (3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0)
_SMOOTH = 5.0  # pseudo-answers at the overall rate in an item's difficulty


@dataclass(frozen=True)
class FeatureSpec:
    skills: bool = True
    skill_counts: str = "log"  # "log" | "raw" | ""
    items: bool = True
    totals: bool = True
    difficulty: bool = True
    windows: bool = True


BEST_LR = FeatureSpec()
PFA = FeatureSpec(skill_counts="raw", items=False, totals=False, difficulty=False, windows=False)


def group_prior(keys: np.ndarray, y: np.ndarray, t: np.ndarray | None = None) -> dict[str, Any]:
    """For rows in time order with group ``keys``: earlier rows and earlier 1s of the same group;
    with times ``t`` also per window and the gap since the group's previous row (NaN: none)."""
    n = len(keys)
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    yy = y[order].astype(np.int64)
    idx = np.arange(n)
    start = np.ones(n, dtype=bool)
    start[1:] = k[1:] != k[:-1]
    first = np.maximum.accumulate(np.where(start, idx, 0))
    cs = np.concatenate([[0], np.cumsum(yy)])
    out: dict[str, Any] = {}

    def back(v: np.ndarray) -> np.ndarray:
        r = np.empty_like(v)
        r[order] = v
        return r

    out["count"] = back(idx - first)
    out["wins"] = back(cs[idx] - cs[first])
    if t is not None:
        tt = t[order]
        base = np.nanmin(tt) if n else 0.0
        ts = np.rint(np.nan_to_num(tt - base)).astype(np.int64)
        comp = k.astype(np.int64) * (1 << 34) + ts
        gap = np.full(n, np.nan)
        gap[~start] = (tt[1:] - tt[:-1])[~start[1:]]
        out["gap"] = back(gap)
        for w in WINDOWS_S:
            j = np.searchsorted(comp, comp - int(w), side="left")
            j = np.maximum(j, first)
            out[f"count_{int(w)}"] = back(idx - j)
            out[f"wins_{int(w)}"] = back(cs[idx] - cs[j])
    return out


def _logit(p: np.ndarray | float) -> np.ndarray | float:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


@dataclass
class LRModel:
    """A fitted logistic-regression learner model (JSON-serialisable with ``to_dict``)."""

    name: str
    spec: FeatureSpec
    skills: list[str]
    items: list[str]
    coef: np.ndarray
    intercept: float
    item_logit: np.ndarray  # per model item: smoothed logit of its training correct rate
    prior_logit: float
    bank_difficulty: dict[str, int] = field(default_factory=dict)
    uses_time: bool = False
    # the dense features are divided by these (their training standard deviations): L-BFGS
    # converges in far fewer iterations on features of one scale
    dense_scale: np.ndarray = field(default_factory=lambda: np.zeros(0))

    # -- features --------------------------------------------------------------------------

    def _dense_names(self) -> list[str]:
        s = self.spec
        names: list[str] = []
        if s.totals:
            names += ["total_wins", "total_fails", "item_wins", "item_fails"]
        if s.difficulty:
            names += ["item_difficulty", "bank_difficulty"]
        if s.windows and self.uses_time:
            names += [f"{kind}_{int(w)}" for w in WINDOWS_S for kind in ("count", "wins")]
            names += ["hours_since_skill", "first_on_skill"]
        return names

    def n_features(self) -> int:
        s = self.spec
        n_s = len(self.skills)
        return (
            (n_s if s.skills else 0)
            + (2 * n_s if s.skill_counts else 0)
            + (len(self.items) if s.items else 0)
            + len(self._dense_names())
        )

    def features(self, log: AnswerLog, *, loo: bool = False) -> Any:
        """The sparse feature matrix (one row per answer of ``log``). ``loo``: training rows
        (an item's difficulty leaves the row itself out)."""
        from scipy import sparse

        s = self.spec
        n = len(log)
        smap = {x: i for i, x in enumerate(self.skills)}
        imap = {x: i for i, x in enumerate(self.items)}
        pskill = np.array([smap.get(x, -1) for x in log.skills], dtype=np.int64)[log.pair_skill]
        pitem_of_answer = np.array([imap.get(x, -1) for x in log.items] + [-1], dtype=np.int64)[
            log.item
        ]
        pa = log.pair_answer
        y = log.correct.astype(np.int64)
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        off = 0
        known = pskill >= 0
        n_s = len(self.skills)
        if s.skills:
            rows.append(pa[known])
            cols.append(off + pskill[known])
            vals.append(np.ones(int(known.sum())))
            off += n_s
        key = log.learner[pa] * (len(log.skills) + 1) + log.pair_skill
        uses_t = s.windows and self.uses_time and log.has_time
        g = group_prior(key, y[pa], log.time[pa] if uses_t else None)
        if s.skill_counts:
            w, f = g["wins"], g["count"] - g["wins"]
            tf = np.log1p if s.skill_counts == "log" else (lambda v: v / 10.0)
            rows += [pa[known], pa[known]]
            cols += [off + pskill[known], off + n_s + pskill[known]]
            vals += [tf(w[known]), tf(f[known])]
            off += 2 * n_s
        if s.items:
            has = pitem_of_answer >= 0
            rows.append(np.nonzero(has)[0])
            cols.append(off + pitem_of_answer[has])
            vals.append(np.ones(int(has.sum())))
            off += len(self.items)
        dense = self._dense(log, pitem_of_answer, g, uses_t, loo)
        if len(self.dense_scale) == dense.shape[1]:
            dense = dense / self.dense_scale
        if dense.shape[1]:
            r, c = np.nonzero(dense)
            rows.append(r)
            cols.append(off + c)
            vals.append(dense[r, c])
        m = sparse.coo_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, self.n_features()),
        )
        return m.tocsr()

    def _dense(
        self, log: AnswerLog, item_idx: np.ndarray, g: dict[str, Any], uses_t: bool, loo: bool
    ) -> np.ndarray:
        s = self.spec
        n = len(log)
        names = self._dense_names()
        out = np.zeros((n, len(names)))
        y = log.correct.astype(np.int64)
        col = 0
        if s.totals:
            t = group_prior(log.learner, y)
            it = group_prior(log.learner * (len(log.items) + 1) + log.item, y)
            has_item = log.item >= 0
            out[:, 0] = np.log1p(t["wins"])
            out[:, 1] = np.log1p(t["count"] - t["wins"])
            out[:, 2] = np.where(has_item, np.log1p(it["wins"]), 0.0)
            out[:, 3] = np.where(has_item, np.log1p(it["count"] - it["wins"]), 0.0)
            col = 4
        if s.difficulty:
            d = np.full(n, self.prior_logit)
            has = item_idx >= 0
            d[has] = self.item_logit[item_idx[has]]
            if loo and has.any():
                d[has] = self._loo_logit(item_idx[has], y[has])
            out[:, col] = d - self.prior_logit
            names_ = [log.items[i] if i >= 0 else "" for i in log.item]
            out[:, col + 1] = [(self.bank_difficulty.get(x, 3) - 3) / 2.0 for x in names_]
            col += 2
        if s.windows and self.uses_time:
            if uses_t:
                pa = log.pair_answer
                for w in WINDOWS_S:
                    for kind in ("count", "wins"):
                        out[:, col] = np.bincount(pa, np.log1p(g[f"{kind}_{int(w)}"]), n)
                        col += 1
                gap = g["gap"]
                hours = np.where(np.isnan(gap), 0.0, np.log1p(np.nan_to_num(gap) / 3600.0))
                out[:, col] = np.bincount(pa, hours, n)
                out[:, col + 1] = np.bincount(pa, np.isnan(gap).astype(float), n)
        return out

    def _loo_logit(self, idx: np.ndarray, y: np.ndarray) -> np.ndarray:
        n_i = np.bincount(idx, minlength=len(self.items)).astype(float)
        w_i = np.bincount(idx, y, minlength=len(self.items))
        p0 = 1.0 / (1.0 + np.exp(-self.prior_logit))
        rate = (w_i[idx] - y + _SMOOTH * p0) / (n_i[idx] - 1 + _SMOOTH)
        return np.asarray(_logit(rate))

    # -- prediction ------------------------------------------------------------------------

    def predict(self, log: AnswerLog) -> np.ndarray:
        """P(correct) of every answer of ``log`` from the learner's earlier answers only."""
        if len(log) == 0:
            return np.zeros(0)
        z = self.features(log) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.asarray(z).ravel()))

    def predict_next(self, history: list[Answer], candidates: list[Answer]) -> list[float]:
        """P(correct) of each candidate answer (same learner) right after ``history``."""
        return self.predict_next_batch([(history, c) for c in candidates])

    def predict_next_batch(self, cases: list[tuple[list[Answer], Answer]]) -> list[float]:
        """P(correct) of each case's candidate right after its history, in one matrix: every
        case becomes its own learner (history, then the candidate)."""
        if not cases:
            return []
        rows: list[Answer] = []
        for k, (hist, cand) in enumerate(cases):
            rows += [replace(a, learner=f"case-{k}") for a in hist]
            rows.append(replace(cand, learner=f"case-{k}"))
        log = AnswerLog.from_answers(rows)
        ends = log.learner_bounds()[1:] - 1
        return [float(x) for x in self.predict(log)[ends]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": asdict(self.spec),
            "skills": self.skills,
            "items": self.items,
            "coef": [round(float(x), 6) for x in self.coef],
            "intercept": float(self.intercept),
            "item_logit": [round(float(x), 6) for x in self.item_logit],
            "prior_logit": float(self.prior_logit),
            "bank_difficulty": self.bank_difficulty,
            "uses_time": self.uses_time,
            "dense_scale": [float(x) for x in self.dense_scale],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LRModel:
        try:
            m = cls(
                str(d["name"]),
                FeatureSpec(**d["spec"]),
                list(d["skills"]),
                list(d["items"]),
                np.asarray(d["coef"], dtype=np.float64),
                float(d["intercept"]),
                np.asarray(d["item_logit"], dtype=np.float64),
                float(d["prior_logit"]),
                {str(k): int(v) for k, v in d.get("bank_difficulty", {}).items()},
                bool(d.get("uses_time", False)),
                np.asarray(d.get("dense_scale", []), dtype=np.float64),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"stored learner model is malformed ({e})") from None
        if len(m.coef) != m.n_features():
            raise InputError(
                f"stored learner model has {len(m.coef)} weights for {m.n_features()} features"
            )
        return m


def fit(
    log: AnswerLog,
    spec: FeatureSpec = BEST_LR,
    *,
    name: str = "Best-LR",
    C: float = 1.0,
    bank_difficulty: Mapping[str, int] | None = None,
    max_iter: int = 300,
) -> LRModel:
    """Fit the logistic regression on a training log (every answer is a training row)."""
    from sklearn.linear_model import LogisticRegression

    if len(log) == 0:
        raise InputError("no answers to fit a learner model on")
    y = log.correct.astype(np.int64)
    p0 = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
    n_i = np.bincount(log.item[log.item >= 0], minlength=len(log.items)).astype(float)
    w_i = np.bincount(log.item[log.item >= 0], y[log.item >= 0], minlength=len(log.items))
    item_logit = np.asarray(_logit((w_i + _SMOOTH * p0) / (n_i + _SMOOTH)), dtype=np.float64)
    model = LRModel(
        name,
        spec,
        list(log.skills),
        list(log.items) if spec.items or spec.difficulty else [],
        np.zeros(0),
        0.0,
        item_logit if spec.items or spec.difficulty else np.zeros(0),
        float(_logit(p0)),
        dict(bank_difficulty or {}),
        uses_time=spec.windows and log.has_time,
    )
    x = model.features(log, loo=True)  # unscaled: dense_scale is not set yet
    nd = len(model._dense_names())
    if nd:
        from scipy import sparse

        sd = x[:, x.shape[1] - nd :].toarray().std(axis=0)
        model.dense_scale = np.where(sd > 1e-9, sd, 1.0)
        col = np.ones(x.shape[1])
        col[x.shape[1] - nd :] = 1.0 / model.dense_scale
        x = (x @ sparse.diags(col)).tocsr()
    if len(np.unique(y)) < 2:
        model.coef = np.zeros(x.shape[1])
        model.intercept = float(_logit(p0))
        return model
    clf = LogisticRegression(C=C, max_iter=max_iter, solver="lbfgs")
    clf.fit(x, y)
    model.coef = clf.coef_.ravel().astype(np.float64)
    model.intercept = float(clf.intercept_[0])
    return model
