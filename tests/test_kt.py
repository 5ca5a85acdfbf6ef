"""Bayesian Knowledge Tracing: hand-computed updates, the E-step against brute force, fits that
recover known parameters, prediction AUC, and next-item selection."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tutor import kt
from tutor.errors import InputError
from tutor.items import Item, Skill, item_from_dict

P = kt.BKTParams(prior=0.2, learn=0.15, guess=0.2, slip=0.1)


def test_update_matches_hand_computed_values() -> None:
    # correct: posterior = .2*.9 / (.2*.9 + .8*.2) = .18/.34; then + (1 - post) * .15
    post = 0.18 / 0.34
    assert kt.posterior(0.2, True, P) == pytest.approx(post)
    assert kt.update(0.2, True, P) == pytest.approx(post + (1 - post) * 0.15)
    assert kt.update(0.2, True, P) == pytest.approx(0.6)
    # wrong: posterior = .2*.1 / (.2*.1 + .8*.8) = .02/.66
    post = 0.02 / 0.66
    assert kt.update(0.2, False, P) == pytest.approx(post + (1 - post) * 0.15)
    assert kt.update(0.2, False, P) == pytest.approx(0.1757575757)
    assert kt.p_correct(0.6, P) == pytest.approx(0.6 * 0.9 + 0.4 * 0.2)
    # forgetting moves learned mass back
    pf = kt.BKTParams(0.2, 0.15, 0.2, 0.1, forget=0.1)
    post = 0.18 / 0.34
    assert kt.update(0.2, True, pf) == pytest.approx(post * 0.9 + (1 - post) * 0.15)


def test_trace_of_a_short_sequence_by_hand() -> None:
    preds, mastery = kt.trace([1, 1, 0], P)
    p1 = 0.6
    post2 = p1 * 0.9 / (p1 * 0.9 + (1 - p1) * 0.2)
    p2 = post2 + (1 - post2) * 0.15
    post3 = p2 * 0.1 / (p2 * 0.1 + (1 - p2) * 0.8)
    p3 = post3 + (1 - post3) * 0.15
    assert mastery == pytest.approx([p1, p2, p3])
    assert preds == pytest.approx([kt.p_correct(0.2, P), kt.p_correct(p1, P), kt.p_correct(p2, P)])
    # the vectorised predictor agrees, sequences of different lengths included
    seqs = [[1, 1, 0], [0], [1, 0, 1, 1, 1]]
    for s, got in zip(seqs, kt.predict_sequences(seqs, P), strict=True):
        assert got == pytest.approx(kt.trace(s, P)[0])


def _brute_force_likelihood(seq: list[int], p: kt.BKTParams) -> float:
    total = 0.0
    for states in itertools.product([0, 1], repeat=len(seq)):
        pr = p.prior if states[0] else 1 - p.prior
        for t, s in enumerate(states):
            if t:
                prev = states[t - 1]
                pr *= (1 - p.forget if s else p.forget) if prev else (p.learn if s else 1 - p.learn)
            pc = 1 - p.slip if s else p.guess
            pr *= pc if seq[t] else 1 - pc
        total += pr
    return total


def test_forward_backward_likelihood_equals_brute_force() -> None:
    p = kt.BKTParams(prior=0.35, learn=0.2, guess=0.25, slip=0.15, forget=0.05)
    seqs = [[1, 0, 1, 1], [0, 0, 1], [1], [0, 1, 0, 0, 1]]
    want = sum(math.log(_brute_force_likelihood(s, p)) for s in seqs)
    assert kt.log_likelihood(seqs, p) == pytest.approx(want, rel=1e-10)


def test_params_are_validated() -> None:
    with pytest.raises(InputError, match="guess"):
        kt.BKTParams(guess=0.6)
    with pytest.raises(InputError, match="prior"):
        kt.BKTParams(prior=1.5)
    assert kt.BKTParams().to_dict()["learn"] == 0.15


def test_simulation_follows_its_parameters() -> None:
    true = kt.BKTParams(prior=0.3, learn=0.2, guess=0.2, slip=0.1)
    sim = kt.simulate(true, 2000, 15, rng=0)
    assert sim.correct.shape == (2000, 15)
    assert sim.learned[:, 0].mean() == pytest.approx(0.3, abs=0.03)
    # without forgetting, once learned always learned
    assert not np.any(sim.learned[:, :-1] & ~sim.learned[:, 1:])
    assert sim.correct[~sim.learned].mean() == pytest.approx(0.2, abs=0.02)
    assert sim.correct[sim.learned].mean() == pytest.approx(0.9, abs=0.02)


TRUTHS = [
    kt.BKTParams(prior=0.3, learn=0.15, guess=0.2, slip=0.1),
    kt.BKTParams(prior=0.1, learn=0.3, guess=0.25, slip=0.05),
]


@pytest.mark.parametrize("true", TRUTHS, ids=["typical", "fast-learners"])
def test_em_recovers_known_parameters_and_the_auc_of_the_true_model(true: kt.BKTParams) -> None:
    train = kt.simulate(true, 800, 20, rng=11).sequences()
    fit = kt.fit_skill(train, init=kt.BKTParams())
    p = fit.params
    assert fit.converged
    assert fit.n_sequences == 800 and fit.n_observations == 16000
    for name in ("prior", "learn", "guess", "slip"):
        assert getattr(p, name) == pytest.approx(getattr(true, name), abs=0.05), (name, p)
    # EM never ends below where it started
    assert fit.log_likelihood >= kt.log_likelihood(train, kt.BKTParams()) - 1e-6
    # prediction on held-out learners: within 0.02 AUC of the true model
    test = kt.simulate(true, 800, 20, rng=12).sequences()
    y = np.concatenate([np.asarray(s) for s in test])
    auc_true = kt.auc(y, np.concatenate(kt.predict_sequences(test, true)))
    auc_fit = kt.auc(y, np.concatenate(kt.predict_sequences(test, p)))
    assert auc_true > 0.7
    assert abs(auc_fit - auc_true) <= 0.02


def test_fit_respects_the_bounds_even_on_noise() -> None:
    rng = np.random.default_rng(3)
    noise = [list(rng.integers(0, 2, 12)) for _ in range(200)]
    p = kt.fit_skill(noise, max_iter=40, restarts=1).params
    assert p.guess <= kt.MAX_GUESS < 0.5 and p.slip <= kt.MAX_SLIP < 0.5
    with pytest.raises(InputError, match="no attempts"):
        kt.fit_skill([[], []])


def test_fit_groups_attempts_per_skill_and_skips_sparse_skills() -> None:
    true = kt.BKTParams(prior=0.3, learn=0.15, guess=0.2, slip=0.1)
    sim = kt.simulate(true, 300, 10, rng=5)
    records = [
        (learner, "fractions", bool(c)) for learner, row in enumerate(sim.correct) for c in row
    ] + [(0, "rare-skill", True), (1, "rare-skill", False)]
    fits = kt.fit(records, min_observations=20)
    assert set(fits) == {"fractions"}
    assert fits["fractions"].n_sequences == 300
    assert kt.group_sequences([(1, "a", True), (2, "a", False), (1, "a", False)]) == {
        "a": [[1, 0], [0]]
    }


def test_auc_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = np.round(rng.random(400) + 0.3 * y, 1)  # many ties
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    pairwise = ((pos > neg) + 0.5 * (pos == neg)).mean()  # P(score+ > score-), ties half
    assert kt.auc(y, s) == pytest.approx(pairwise)
    assert kt.auc([1, 1], [0.2, 0.3]) == 0.5
    assert kt.auc([0, 1], [0.2, 0.3]) == 1.0
    assert kt.auc([1, 0], [0.2, 0.3]) == 0.0


# --------------------------------------------------------------------------------------------
# Next-item selection

SKILLS = {
    "fractions": Skill("fractions", "Fractions"),
    "decimals": Skill("decimals", "Decimals"),
    "ratios-percents": Skill("ratios-percents", "Ratios", ("fractions", "decimals")),
}


def _item(iid: str, skill: str, difficulty: int) -> Item:
    return item_from_dict(
        {"id": iid, "skills": [skill], "prompt": "?", "answer": "1", "difficulty": difficulty}
    )


ITEMS = [
    _item(f"{s[:3]}-{d}", s, d)
    for s in ("fractions", "decimals", "ratios-percents")
    for d in (1, 3, 5)
]


def test_selection_targets_lowest_mastery_with_prerequisites_mastered() -> None:
    # ratios-percents has the lowest mastery but its prerequisites are not mastered
    m = {"fractions": 0.6, "decimals": 0.4, "ratios-percents": 0.1}
    sel = kt.select_next_item(ITEMS, SKILLS, m, P, threshold=0.95)
    assert sel is not None and sel.skill == "decimals"
    # once both prerequisites are mastered it is next
    m = {"fractions": 0.97, "decimals": 0.96, "ratios-percents": 0.1}
    sel = kt.select_next_item(ITEMS, SKILLS, m, P, threshold=0.95)
    assert sel is not None and sel.skill == "ratios-percents"
    assert sel.p_mastery == 0.1 and sel.p_correct == pytest.approx(kt.p_correct(0.1, P))
    # a skill without mastery data starts at its prior
    sel = kt.select_next_item(ITEMS, SKILLS, {"fractions": 0.5}, P)
    assert sel is not None and sel.skill == "decimals" and sel.p_mastery == P.prior


def test_selection_matches_difficulty_to_the_prediction() -> None:
    assert kt.target_difficulty(kt.p_correct(0.0, P), P) == 1
    assert kt.target_difficulty(kt.p_correct(1.0, P), P) == 5
    assert kt.target_difficulty(kt.p_correct(0.5, P), P) == 3
    low = kt.select_next_item(ITEMS, SKILLS, {"fractions": 0.05, "decimals": 0.9}, P)
    high = kt.select_next_item(ITEMS, SKILLS, {"fractions": 0.9, "decimals": 0.93}, P)
    assert low is not None and low.item.id == "fra-1"
    assert high is not None and high.item.id == "fra-5"


def test_selection_avoids_recent_items_and_reviews_when_all_mastered() -> None:
    m = {"fractions": 0.05, "decimals": 0.9}
    sel = kt.select_next_item(ITEMS, SKILLS, m, P, exclude={"fra-1"})
    assert sel is not None and sel.item.id == "fra-3"
    # every fractions item excluded: another skill rather than nothing
    sel = kt.select_next_item(ITEMS, SKILLS, m, P, exclude={"fra-1", "fra-3", "fra-5"})
    assert sel is not None and sel.skill == "decimals"
    all_mastered = {s: 0.99 for s in SKILLS}
    all_mastered["decimals"] = 0.96
    sel = kt.select_next_item(ITEMS, SKILLS, all_mastered, P)
    assert sel is not None and sel.skill == "decimals" and sel.reason.startswith("review")
    assert kt.select_next_item([], SKILLS, m, P) is None


def test_selection_uses_per_skill_parameters() -> None:
    params = {"decimals": kt.BKTParams(prior=0.9, learn=0.1, guess=0.2, slip=0.1)}
    sel = kt.select_next_item(ITEMS, SKILLS, {}, params, default=P)
    assert sel is not None and sel.skill == "fractions"  # prior .2 < decimals' .9


@pytest.mark.parametrize("forget", [0.1, 0.05])
def test_em_learns_a_known_forget_rate(forget: float) -> None:
    # every EM start used to have forget = 0, which EM can never leave: the fit returned 0.000
    true = kt.BKTParams(prior=0.3, learn=0.2, guess=0.2, slip=0.1, forget=forget)
    train = kt.simulate(true, 1000, 20, rng=5).sequences()
    fit = kt.fit_skill(train, fit_forget=True)
    assert fit.params.forget == pytest.approx(forget, abs=0.03)
    assert fit.params.learn == pytest.approx(true.learn, abs=0.05)
    # the fit with forgetting explains the data better than the best fit without it
    assert fit.log_likelihood > kt.fit_skill(train).log_likelihood
    # and without fit_forget the rate stays 0 (standard BKT)
    assert kt.fit_skill(train, restarts=1, max_iter=20).params.forget == 0.0


def test_guess_and_slip_bounds_keep_the_states_apart() -> None:
    assert kt.MAX_GUESS <= 0.3 and kt.MAX_SLIP <= 0.3
    # a skill answered right 60% of the time by everyone: no learning signal; the fit must not
    # park guess above 0.3 (the old bound, 0.45, was hit by 13-35% of real skills)
    rng = np.random.default_rng(8)
    flat = [list((rng.random(15) < 0.6).astype(int)) for _ in range(400)]
    p = kt.fit_skill(flat, max_iter=60).params
    assert p.guess <= 0.3 and p.slip <= 0.3
    assert (1 - p.slip) - p.guess >= 0.4 - 1e-9


def test_multi_skill_answer_prediction_is_the_mean_of_its_skills() -> None:
    a = kt.BKTParams(prior=0.2, learn=0.1, guess=0.2, slip=0.1)
    b = kt.BKTParams(prior=0.5, learn=0.1, guess=0.1, slip=0.2)
    got = kt.p_correct_multi({"a": 0.5, "b": 0.9}, {"a": a, "b": b})
    assert got == pytest.approx((kt.p_correct(0.5, a) + kt.p_correct(0.9, b)) / 2)
    with pytest.raises(InputError, match="at least one skill"):
        kt.p_correct_multi({}, a)
