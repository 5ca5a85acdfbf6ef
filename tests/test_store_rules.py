"""The store's practice rules as pure functions (``tutor.store.rules``): which attempt counts and
how one moves counts and BKT mastery; that the store applies them (live and on replay); and that
``LearnerStore`` satisfies the Protocols the agent and the UI are typed against."""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path

import pytest

from tutor import kt
from tutor.grading import grade
from tutor.items import load_default_bank
from tutor.store import LearnerStore, LearnerStoreLike, TutorStore
from tutor.store.rules import SkillStanding, apply_attempt, attempt_counts

P = kt.BKTParams(prior=0.3, learn=0.1, guess=0.2, slip=0.1, forget=0.0)


def test_only_the_first_attempt_at_an_item_in_a_session_counts() -> None:
    assert attempt_counts(in_session=True, earlier_in_session=0)
    assert not attempt_counts(in_session=True, earlier_in_session=1)
    assert not attempt_counts(in_session=True, earlier_in_session=5)
    # outside a session every attempt counts
    assert attempt_counts(in_session=False, earlier_in_session=0)
    assert attempt_counts(in_session=False, earlier_in_session=3)


def test_a_first_correct_attempt_starts_from_the_prior() -> None:
    after = apply_attempt(None, correct=True, counted=True, params=P)
    # posterior 0.3*0.9 / (0.3*0.9 + 0.7*0.2) = 0.27/0.41, then learn 0.1 of the rest
    post = 0.27 / 0.41
    assert after == SkillStanding(pytest.approx(post + (1 - post) * 0.1), 1, 1)
    assert after.p_mastery == pytest.approx(0.6926829, abs=1e-6)


def test_a_wrong_attempt_lowers_mastery_and_counts_no_correct() -> None:
    before = SkillStanding(0.6, n_attempts=4, n_correct=3)
    after = apply_attempt(before, correct=False, counted=True, params=P)
    post = 0.6 * 0.1 / (0.6 * 0.1 + 0.4 * 0.8)
    assert after.p_mastery == pytest.approx(post + (1 - post) * 0.1)
    assert after.p_mastery < before.p_mastery
    assert (after.n_attempts, after.n_correct) == (5, 3)


def test_an_uncounted_attempt_changes_nothing() -> None:
    before = SkillStanding(0.42, n_attempts=2, n_correct=1)
    assert apply_attempt(before, correct=True, counted=False, params=P) == before
    # never practised and not counted: the prior, no attempts
    assert apply_attempt(None, correct=True, counted=False, params=P) == SkillStanding(0.3, 0, 0)


def test_forgetting_pulls_a_mastered_skill_down() -> None:
    forgetful = kt.BKTParams(prior=0.3, learn=0.1, guess=0.2, slip=0.1, forget=0.2)
    after = apply_attempt(SkillStanding(0.99), correct=True, counted=True, params=forgetful)
    assert after.p_mastery < 0.99
    assert after.p_mastery == pytest.approx(kt.update(0.99, True, forgetful))


def test_folding_attempts_matches_the_bkt_trace() -> None:
    outcomes = [False, True, True, False, True, True, True]
    standing: SkillStanding | None = None
    for ok in outcomes:
        standing = apply_attempt(standing, correct=ok, counted=True, params=P)
    _, masteries = kt.trace(outcomes, P)
    assert standing is not None
    assert standing.p_mastery == pytest.approx(masteries[-1])
    assert (standing.n_attempts, standing.n_correct) == (7, 5)


def test_the_store_applies_the_rule_live_and_on_replay(tmp_path: Path) -> None:
    bank = load_default_bank()
    it = bank.item("rp-02")  # skills: ratios-percents and fractions
    assert it is not None
    with LearnerStore(f"sqlite:///{tmp_path / 'l.sqlite'}", bkt_defaults=P, kdf_n=2**8) as store:
        lr = store.add_learner("ana")
        s = store.start_session(lr.id)
        first = store.record_attempt(lr.id, it, "60%", grade(it, "60%"), session_id=s.id)
        retry = store.record_attempt(lr.id, it, "50%", grade(it, "50%"), session_id=s.id)
        expected = apply_attempt(None, correct=True, counted=True, params=P)
        assert first.counted and not retry.counted
        for skill in it.skills:
            assert first.mastery_before[skill] == P.prior
            assert first.mastery_after[skill] == pytest.approx(expected.p_mastery)
            assert retry.mastery_after[skill] == first.mastery_after[skill]
        m = store.mastery(lr.id)
        assert {(m[k].n_attempts, m[k].n_correct) for k in it.skills} == {(1, 1)}
        # a replay of the log gives the same standing (the live row's time is the retry's)
        assert store.recompute_mastery() == len(it.skills)
        replayed = store.mastery(lr.id)
        assert {k: replace(v, updated_at="") for k, v in replayed.items()} == {
            k: replace(v, updated_at="") for k, v in m.items()
        }
        assert replayed[it.skills[0]].updated_at == first.attempt.created_at


def test_learner_store_has_every_protocol_method_with_its_signature(tmp_path: Path) -> None:
    names = {n for proto in (TutorStore, LearnerStoreLike) for n in vars(proto) if n[0] != "_"}
    assert {"record_attempt", "next_item", "authenticate", "export_learner"} <= names
    for name in sorted(names):
        want = inspect.signature(getattr(LearnerStoreLike, name))
        got = inspect.signature(getattr(LearnerStore, name))
        assert got == want, f"{name}: store {got} != protocol {want}"
    with LearnerStore(f"sqlite:///{tmp_path / 'p.sqlite'}") as store:
        assert isinstance(store, LearnerStoreLike) and isinstance(store, TutorStore)
    assert not isinstance(object(), TutorStore)
