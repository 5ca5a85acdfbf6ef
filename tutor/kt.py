"""Bayesian Knowledge Tracing: mastery per skill, predictions, fitting, simulation, next item.

The model (Corbett & Anderson, 1995), per skill: a learner is in the *unknown* or the
*learned* state; ``prior`` is P(learned) before any practice, ``learn`` P(unknown -> learned)
after each practice opportunity, ``guess`` P(correct | unknown), ``slip`` P(wrong | learned),
and ``forget`` P(learned -> unknown) (0 in standard BKT).

- ``update(p, correct, params)``: the posterior after one graded attempt, then the transition.
- ``p_correct(p, params)``: P(correct on the next item), the learner-performance prediction.
- ``fit_skill(sequences)``: EM (Baum-Welch) on the attempt sequences of one skill, vectorised
  with numpy, several starts (with ``fit_forget``, every start has forget > 0: EM cannot move a
  transition probability off 0), guess and slip bounded by ``MAX_GUESS``/``MAX_SLIP`` (0.3).
- ``simulate(params, ...)``: attempt sequences drawn from known parameters (tests, benchmarks).
- ``select_next_item(...)``: the unmastered skill with the lowest mastery whose prerequisites are
  mastered, and an item of it whose difficulty matches the predicted P(correct) (or, with a
  performance predictor, whose predicted P(correct) is nearest a target such as 0.7).

Why guess and slip are bounded by 0.3: with both free, BKT is not identifiable: a skill whose
learners answer 60% right fits equally well as "most know it, slip 0.4" or "few know it, guess
0.6", and EM drifts to whichever bound is nearest (with the old bounds of 0.45, 13-35% of the
skills of the ASSISTments logs ended at guess 0.45, where mastery means little). At <= 0.3 the
learned state answers right at least 70% and the unknown state at most 30%, so the two states
are always 40 points apart and P(mastery) stays interpretable; Corbett & Anderson (1995) used
similar ceilings (guess 0.3, slip 0.1), and Baker, Corbett & Aleven (2008) showed that guess or
slip above 0.5 gives "degenerate" models.

Multi-skill answers (shared credit): an answer tagged with several skills is an observation on
*each* of them: a right answer credits every skill, a wrong one counts against every skill, and
mastery of every skill is updated (``tutor.store.rules``). This is the usual treatment of the
ASSISTments logs (one row per skill). To *predict* such an answer, BKT uses the mean of its
skills' P(correct) (``p_correct_multi``), and the learner-model eval scores every answer once,
not once per skill. Best-LR (``tutor.kt_lr``) sums the features of the answer's skills.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tutor.errors import InputError

if TYPE_CHECKING:
    from tutor.items import Item, Skill

# Bounds used by the fit (see the module docstring for why 0.3). BKTParams accepts anything
# below 0.5, so parameters stored by an older fit still load.
MAX_GUESS = 0.3
MAX_SLIP = 0.3
# The forget rate every EM start uses when forgetting is fitted (EM keeps a 0 at 0).
FORGET_START = 0.05
_EPS = 1e-4


@dataclass(frozen=True)
class BKTParams:
    """The four (five) BKT parameters of one skill."""

    prior: float = 0.2
    learn: float = 0.15
    guess: float = 0.2
    slip: float = 0.1
    forget: float = 0.0

    def __post_init__(self) -> None:
        for name in ("prior", "learn", "guess", "slip", "forget"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0) or math.isnan(v):
                raise InputError(f"BKT {name} must be a probability within 0..1, got {v!r}")
        if self.guess >= 0.5 or self.slip >= 0.5:
            raise InputError(
                f"BKT guess and slip must be < 0.5 (got guess={self.guess}, slip={self.slip}); "
                "otherwise the 'learned' state would not mean more correct answers"
            )

    @classmethod
    def from_config(cls, tutor_config: Any) -> BKTParams:
        """The defaults from the ``[tutor]`` config section (``bkt_prior`` ...)."""
        return cls(
            prior=tutor_config.bkt_prior,
            learn=tutor_config.bkt_learn,
            guess=tutor_config.bkt_guess,
            slip=tutor_config.bkt_slip,
        )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


ParamsLike = BKTParams | Mapping[str, BKTParams]


def params_for(params: ParamsLike, skill: str, default: BKTParams | None = None) -> BKTParams:
    if isinstance(params, BKTParams):
        return params
    return params.get(skill) or default or BKTParams()


def p_correct(p_mastery: float, params: BKTParams) -> float:
    """P(correct on the next attempt) given P(learned)."""
    return p_mastery * (1.0 - params.slip) + (1.0 - p_mastery) * params.guess


def p_correct_multi(p_mastery: Mapping[str, float], params: ParamsLike) -> float:
    """P(correct) on an answer tagged with several skills: the mean of the skills' predictions
    (shared credit; see the module docstring). ``p_mastery``: skill -> P(learned)."""
    if not p_mastery:
        raise InputError("an answer needs at least one skill")
    return sum(p_correct(pm, params_for(params, s)) for s, pm in p_mastery.items()) / len(p_mastery)


def posterior(p_mastery: float, correct: bool, params: BKTParams) -> float:
    """P(learned | this attempt's outcome), before the learning transition."""
    if correct:
        num = p_mastery * (1.0 - params.slip)
        den = num + (1.0 - p_mastery) * params.guess
    else:
        num = p_mastery * params.slip
        den = num + (1.0 - p_mastery) * (1.0 - params.guess)
    return num / den if den > 0 else p_mastery


def update(p_mastery: float, correct: bool, params: BKTParams) -> float:
    """P(learned) after one graded attempt: the posterior, then the chance to learn (or forget)."""
    post = posterior(p_mastery, correct, params)
    return post * (1.0 - params.forget) + (1.0 - post) * params.learn


def trace(observations: Iterable[bool | int], params: BKTParams) -> tuple[list[float], list[float]]:
    """For a sequence of outcomes: P(correct) predicted before each one, and P(learned) after."""
    p = params.prior
    preds, masteries = [], []
    for obs in observations:
        preds.append(p_correct(p, params))
        p = update(p, bool(obs), params)
        masteries.append(p)
    return preds, masteries


# --------------------------------------------------------------------------------------------
# Vectorised forward-backward and EM


def _pad(sequences: Sequence[Sequence[int | bool]]) -> tuple[np.ndarray, np.ndarray]:
    n = len(sequences)
    t = max((len(s) for s in sequences), default=0)
    obs = np.zeros((n, t), dtype=np.float64)
    mask = np.zeros((n, t), dtype=bool)
    for i, s in enumerate(sequences):
        obs[i, : len(s)] = np.asarray(s, dtype=np.float64)
        mask[i, : len(s)] = True
    return obs, mask


def predict_sequences(
    sequences: Sequence[Sequence[int | bool]], params: BKTParams
) -> list[np.ndarray]:
    """P(correct) before each observation of each sequence (the model's online prediction)."""
    obs, mask = _pad(sequences)
    n, t = obs.shape
    p = np.full(n, params.prior)
    out = np.zeros((n, t))
    for k in range(t):
        out[:, k] = p * (1 - params.slip) + (1 - p) * params.guess
        o = obs[:, k]
        num = np.where(o > 0, p * (1 - params.slip), p * params.slip)
        den = num + np.where(o > 0, (1 - p) * params.guess, (1 - p) * (1 - params.guess))
        post = num / np.maximum(den, 1e-300)
        nxt = post * (1 - params.forget) + (1 - post) * params.learn
        p = np.where(mask[:, k], nxt, p)
    return [out[i, : len(s)] for i, s in enumerate(sequences)]


def _emissions(obs: np.ndarray, mask: np.ndarray, guess: float, slip: float) -> np.ndarray:
    """(N, T, 2) emission probabilities for states (unknown, learned); 1 where masked."""
    e = np.empty(obs.shape + (2,))
    e[..., 0] = np.where(obs > 0, guess, 1 - guess)
    e[..., 1] = np.where(obs > 0, 1 - slip, slip)
    e[~mask] = 1.0
    return e


def _forward_backward(
    obs: np.ndarray, mask: np.ndarray, p: BKTParams
) -> tuple[np.ndarray, np.ndarray, float]:
    """Posterior state marginals gamma (N,T,2), transition counts xi (2,2) and log-likelihood."""
    n, t = obs.shape
    e = _emissions(obs, mask, p.guess, p.slip)
    a = np.array([[1 - p.learn, p.learn], [p.forget, 1 - p.forget]])
    alpha = np.zeros((n, t, 2))
    c = np.ones((n, t))
    alpha[:, 0] = np.array([1 - p.prior, p.prior]) * e[:, 0]
    c[:, 0] = alpha[:, 0].sum(1)
    alpha[:, 0] /= c[:, 0, None]
    for k in range(1, t):
        alpha[:, k] = (alpha[:, k - 1] @ a) * e[:, k]
        c[:, k] = alpha[:, k].sum(1)
        alpha[:, k] /= np.maximum(c[:, k, None], 1e-300)
    beta = np.ones((n, t, 2))
    for k in range(t - 2, -1, -1):
        beta[:, k] = ((e[:, k + 1] * beta[:, k + 1]) @ a.T) / np.maximum(c[:, k + 1, None], 1e-300)
    gamma = alpha * beta
    gamma /= np.maximum(gamma.sum(2, keepdims=True), 1e-300)
    # expected transitions between consecutive valid steps
    pair = mask[:, :-1] & mask[:, 1:]
    xi = (
        alpha[:, :-1, :, None]
        * a[None, None]
        * (e[:, 1:] * beta[:, 1:])[:, :, None, :]
        / np.maximum(c[:, 1:, None, None], 1e-300)
    )
    xi_sum = (xi * pair[:, :, None, None]).sum((0, 1))
    ll = float(np.log(np.maximum(c, 1e-300))[mask].sum())
    return gamma, xi_sum, ll


def log_likelihood(sequences: Sequence[Sequence[int | bool]], params: BKTParams) -> float:
    obs, mask = _pad(sequences)
    if obs.size == 0:
        return 0.0
    return _forward_backward(obs, mask, params)[2]


@dataclass(frozen=True)
class FitResult:
    """Fitted parameters of one skill and how they were obtained."""

    params: BKTParams
    log_likelihood: float
    n_sequences: int
    n_observations: int
    iterations: int
    converged: bool


def _buckets(
    sequences: Sequence[Sequence[int | bool]], ratio: float = 1.5
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Padded (obs, mask) arrays of sequences of similar length: padding every sequence to the
    longest one costs time in proportion to the longest (a learner with 200 answers on a skill
    among thousands with 5 made EM 10x slower)."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    out = []
    start = 0
    while start < len(order):
        lo = max(1, len(sequences[order[start]]))
        end = start
        while end < len(order) and len(sequences[order[end]]) <= lo * ratio + 1:
            end += 1
        out.append(_pad([sequences[i] for i in order[start:end]]))
        start = end
    return out


def _suff_stats(obs: np.ndarray, mask: np.ndarray, p: BKTParams) -> np.ndarray:
    """EM's expected counts on one bucket: [sum P(learned at 1), sequences, from unknown,
    from learned, unknown->learned, learned->unknown, unknown, unknown & right, learned,
    learned & wrong, log-likelihood]."""
    gamma, xi, ll = _forward_backward(obs, mask, p)
    pair = mask[:, :-1] & mask[:, 1:]
    gu = gamma[..., 0][mask]
    gl = gamma[..., 1][mask]
    o = obs[mask]
    return np.array(
        [
            gamma[:, 0, 1].sum(),
            len(obs),
            gamma[:, :-1, 0][pair].sum(),
            gamma[:, :-1, 1][pair].sum(),
            xi[0, 1],
            xi[1, 0],
            gu.sum(),
            (gu * o).sum(),
            gl.sum(),
            (gl * (1 - o)).sum(),
            ll,
        ]
    )


def _em(
    buckets: list[tuple[np.ndarray, np.ndarray]],
    init: BKTParams,
    *,
    max_iter: int,
    tol: float,
    fit_forget: bool,
) -> tuple[BKTParams, float, int, bool]:
    p = init
    prev = -math.inf
    ll = -math.inf
    for it in range(1, max_iter + 1):
        st = np.sum([_suff_stats(o, m, p) for o, m in buckets], axis=0)
        g0, n_seq, from_u, from_l, x01, x10, su, su_o, sl, sl_w, ll = st
        learn = x01 / from_u if from_u > 0 else p.learn
        forget = (x10 / from_l if from_l > 0 else 0.0) if fit_forget else 0.0
        guess = su_o / su if su > 0 else p.guess
        slip = sl_w / sl if sl > 0 else p.slip
        p = BKTParams(
            prior=float(np.clip(g0 / n_seq, _EPS, 1 - _EPS)),
            learn=float(np.clip(learn, _EPS, 1 - _EPS)),
            guess=float(np.clip(guess, _EPS, MAX_GUESS)),
            slip=float(np.clip(slip, _EPS, MAX_SLIP)),
            forget=float(np.clip(forget, 0.0, 1 - _EPS)),
        )
        if abs(ll - prev) < tol * max(1.0, abs(ll)):
            return p, float(ll), it, True
        prev = ll
    return p, float(ll), max_iter, False


def fit_skill(
    sequences: Sequence[Sequence[int | bool]],
    *,
    init: BKTParams | None = None,
    restarts: int = 4,
    max_iter: int = 200,
    tol: float = 1e-7,
    fit_forget: bool = False,
    seed: int = 0,
) -> FitResult:
    """Fit BKT to one skill's attempt sequences (one per learner, in time order) by EM.

    Starts from ``init`` (the defaults) and ``restarts`` other points; keeps the fit with the
    highest log-likelihood. With ``fit_forget`` every start has forget >= ``FORGET_START`` (a
    start at 0 would stay at 0). Raises ``InputError`` when there is no observation at all.
    """
    seqs = [list(s) for s in sequences if len(s) > 0]
    if not seqs:
        raise InputError("no attempts to fit BKT parameters from")
    buckets = _buckets(seqs)
    n_obs = sum(len(q) for q in seqs)
    rng = np.random.default_rng(seed)
    starts = [init or BKTParams()]
    grid = [(0.3, 0.1, 0.15, 0.1), (0.1, 0.3, 0.25, 0.05), (0.5, 0.05, 0.1, 0.2)]
    for k in range(restarts):
        if k < len(grid):
            pr, le, gu, sl = grid[k]
        else:
            pr, le = rng.uniform(0.05, 0.9), rng.uniform(0.02, 0.5)
            gu, sl = rng.uniform(0.02, MAX_GUESS), rng.uniform(0.02, MAX_SLIP)
        starts.append(BKTParams(pr, le, gu, sl))
    if fit_forget:
        starts = [
            BKTParams(
                s.prior,
                s.learn,
                min(s.guess, MAX_GUESS),
                min(s.slip, MAX_SLIP),
                max(s.forget, FORGET_START * (1 + k % 3)),
            )
            for k, s in enumerate(starts)
        ]
    best: tuple[BKTParams, float, int, bool] | None = None
    for s in starts:
        res = _em(buckets, s, max_iter=max_iter, tol=tol, fit_forget=fit_forget)
        if best is None or res[1] > best[1] + 1e-9:
            best = res
    assert best is not None
    p, ll, iters, conv = best
    return FitResult(p, ll, len(seqs), n_obs, iters, conv)


def group_sequences(
    attempts: Iterable[tuple[Any, str, bool]],
) -> dict[str, list[list[int]]]:
    """``(learner, skill, correct)`` records in time order -> per skill, one sequence a learner."""
    by_skill: dict[str, dict[Any, list[int]]] = {}
    for learner, skill, correct in attempts:
        by_skill.setdefault(skill, {}).setdefault(learner, []).append(int(bool(correct)))
    return {s: list(d.values()) for s, d in by_skill.items()}


def fit(
    attempts: Iterable[tuple[Any, str, bool]],
    *,
    defaults: BKTParams | None = None,
    min_observations: int = 20,
    **kwargs: Any,
) -> dict[str, FitResult]:
    """Fit every skill with at least ``min_observations`` attempts (the rest keep the defaults)."""
    out: dict[str, FitResult] = {}
    for skill, seqs in group_sequences(attempts).items():
        if sum(len(s) for s in seqs) < min_observations:
            continue
        out[skill] = fit_skill(seqs, init=defaults, **kwargs)
    return out


# --------------------------------------------------------------------------------------------
# Simulation and evaluation


@dataclass(frozen=True)
class Simulation:
    """``correct[i, t]``: learner i's outcome at step t; ``learned[i, t]``: the true state."""

    correct: np.ndarray
    learned: np.ndarray

    def sequences(self) -> list[list[int]]:
        return [list(map(int, row)) for row in self.correct]


def simulate(
    params: BKTParams,
    n_learners: int,
    n_steps: int,
    *,
    rng: np.random.Generator | int | None = None,
    lengths: Sequence[int] | None = None,
) -> Simulation:
    """Draw attempt sequences from a BKT model with known parameters."""
    r = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    learned = np.zeros((n_learners, n_steps), dtype=bool)
    correct = np.zeros((n_learners, n_steps), dtype=np.int8)
    state = r.random(n_learners) < params.prior
    for t in range(n_steps):
        learned[:, t] = state
        pc = np.where(state, 1 - params.slip, params.guess)
        correct[:, t] = r.random(n_learners) < pc
        learn = r.random(n_learners) < params.learn
        forget = r.random(n_learners) < params.forget
        state = np.where(state, ~forget, learn)
    sim = Simulation(correct, learned)
    if lengths is not None:
        # variable-length sequences: cut each row (the rest is not observed)
        return Simulation(
            np.array([row[:n] for row, n in zip(correct, lengths, strict=True)], dtype=object),
            learned,
        )
    return sim


def auc(y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); 0.5 when one class only."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    # average ranks for ties (vectorised: one pass over the runs of equal scores)
    new_run = np.ones(len(s), dtype=bool)
    new_run[1:] = sorted_s[1:] != sorted_s[:-1]
    starts = np.nonzero(new_run)[0]
    ends = np.append(starts[1:], len(s))
    ranks = np.empty(len(s))
    ranks[order] = ((starts + ends - 1) / 2 + 1)[np.cumsum(new_run) - 1]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# --------------------------------------------------------------------------------------------
# Next-item selection


@dataclass(frozen=True)
class Selection:
    """The next item to practise and why."""

    item: Item
    skill: str
    p_mastery: float
    p_correct: float
    target_difficulty: int
    reason: str  # "lowest mastery, prerequisites mastered" | "review" | ...
    predictor: str = "BKT"  # what p_correct comes from ("Best-LR": the item's own prediction)


def target_difficulty(p_correct_next: float, params: BKTParams) -> int:
    """Difficulty 1..5 matched to the prediction: the likelier a success, the harder the item."""
    lo, hi = params.guess, 1.0 - params.slip
    x = (p_correct_next - lo) / (hi - lo) if hi > lo else 0.5
    return 1 + round(4 * min(1.0, max(0.0, x)))


def mastered(p_mastery: float, threshold: float) -> bool:
    return p_mastery >= threshold


def select_next_item(
    items: Sequence[Item],
    skills: Mapping[str, Skill],
    mastery: Mapping[str, float],
    params: ParamsLike,
    *,
    threshold: float = 0.95,
    exclude: Collection[str] = (),
    default: BKTParams | None = None,
    score_items: Callable[[list[Item]], list[float]] | None = None,
    target_p_correct: float = 0.7,
) -> Selection | None:
    """Choose the next practice item.

    The skill: among skills with items, the unmastered one (P(learned) < ``threshold``) with the
    lowest mastery whose prerequisites are all mastered (a prerequisite without any item cannot
    be practised and does not block); ties go to the order of ``skills``. When every skill is
    mastered: the least mastered one, for review. The item: not in ``exclude`` (recent items)
    when possible, with the difficulty closest to ``target_difficulty(P(correct))``; with
    ``score_items`` (a predictor's P(correct) of each candidate item for this learner), the item
    whose predicted P(correct) is nearest ``target_p_correct`` (a desirable difficulty).
    ``mastery`` maps skill -> P(learned); a missing skill starts at its prior.
    """
    if not items:
        return None
    sel = _select(items, skills, mastery, params, threshold, set(exclude), default)
    if sel is None and exclude:
        sel = _select(items, skills, mastery, params, threshold, set(), default)
    if sel is None or score_items is None:
        return sel
    ex = set(exclude)
    cands = [it for it in items if sel.skill in it.skills and it.id not in ex] or [
        it for it in items if sel.skill in it.skills
    ]
    ps = score_items(cands)
    k = min(
        range(len(cands)),
        key=lambda i: (abs(ps[i] - target_p_correct), cands[i].difficulty, i),
    )
    reason = f"{sel.reason}; item: predicted P(correct) nearest {target_p_correct:.2f}"
    return Selection(
        cands[k], sel.skill, sel.p_mastery, ps[k], sel.target_difficulty, reason, "Best-LR"
    )


def _select(
    items: Sequence[Item],
    skills: Mapping[str, Skill],
    mastery: Mapping[str, float],
    params: ParamsLike,
    threshold: float,
    exclude: set[str],
    default: BKTParams | None,
) -> Selection | None:
    available = [it for it in items if it.id not in exclude]
    if not available:
        return None
    order = list(skills) + sorted({s for it in items for s in it.skills} - set(skills))
    practisable = {s for it in items for s in it.skills}

    def pm(s: str) -> float:
        return mastery.get(s, params_for(params, s, default).prior)

    with_items = [s for s in order if any(s in it.skills for it in available)]
    if not with_items:
        return None

    def prereqs_ok(s: str) -> bool:
        sk = skills.get(s)
        return all(
            mastered(pm(p), threshold) for p in (sk.prerequisites if sk else ()) if p in practisable
        )

    open_skills = [s for s in with_items if not mastered(pm(s), threshold)]
    ready = [s for s in open_skills if prereqs_ok(s)]
    if ready:
        skill = min(ready, key=lambda s: (pm(s), order.index(s)))
        reason = "lowest mastery among skills whose prerequisites are mastered"
    elif open_skills:
        skill = min(open_skills, key=lambda s: (pm(s), order.index(s)))
        reason = "lowest mastery (its prerequisites have no available items)"
    else:
        skill = min(with_items, key=lambda s: (pm(s), order.index(s)))
        reason = "review: every skill is mastered"
    p = params_for(params, skill, default)
    pc = p_correct(pm(skill), p)
    target = target_difficulty(pc, p)
    candidates = [it for it in available if skill in it.skills]
    best = min(
        enumerate(candidates),
        key=lambda ic: (abs(ic[1].difficulty - target), ic[1].difficulty, ic[0]),
    )[1]
    return Selection(best, skill, pm(skill), pc, target, reason)
