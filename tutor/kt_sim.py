"""Simulated learners that resemble real ones (not drawn from BKT): for tests, benchmarks and the
default learner-model eval, so that BKT is not judged only on data BKT generated.

The generating model (a logistic "additive factors" learner with forgetting):

    P(correct) = guess + (1 - guess) * sigmoid(ability + knowledge(skill) - difficulty(item))

- ``ability``: the learner's general ability, N(0, ``ability_sd``), shared by every skill;
- ``difficulty``: each item's own difficulty, N(the skill's mean, ``item_sd``);
- ``knowledge``: grows with practice, ``rate(skill) * log(1 + practice)`` (diminishing
  returns; a right answer teaches more than a wrong one), and decays between sessions: the
  practice counter shrinks by ``exp(-gap / forget_tau)`` (forgetting in time);
- sessions: each learner works a few sessions hours to days apart, each on one or two skills
  (about ``multi_skill`` of the items are tagged with two skills: shared credit);
- ``guess``: a floor (multiple-choice items).

BKT sees none of ability, item difficulty or time, so a predictor that uses them (Best-LR)
should win clearly; the true P(correct) of every answer is kept as the ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tutor.kt_data import Answer, AnswerLog


@dataclass(frozen=True)
class SimConfig:
    n_learners: int = 400
    n_skills: int = 8
    items_per_skill: int = 25
    sessions: tuple[int, int] = (3, 9)  # sessions per learner (low, high)
    answers_per_session: tuple[int, int] = (4, 13)
    ability_sd: float = 1.0
    item_sd: float = 0.8
    skill_mean_sd: float = 0.6
    rate: tuple[float, float] = (0.3, 0.9)  # knowledge gain per log-practice, per skill
    forget_tau_days: float = 4.0
    multi_skill: float = 0.1
    guess: float = 0.1
    start_knowledge: float = -1.0  # knowledge before any practice (on the logit scale)


@dataclass(frozen=True)
class SimData:
    log: AnswerLog
    p_true: np.ndarray  # the generating P(correct) of every answer (the ceiling)
    difficulty: dict[str, float]  # item -> difficulty
    bank_difficulty: dict[str, int]  # item -> 1..5 (quintiles of difficulty, like a bank)


def _sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-x))


def simulate(cfg: SimConfig = SimConfig(), seed: int = 0) -> SimData:
    """Draw one population of learners; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    skills = [f"skill-{k}" for k in range(cfg.n_skills)]
    skill_mean = rng.normal(0.0, cfg.skill_mean_sd, cfg.n_skills)
    rate = rng.uniform(*cfg.rate, cfg.n_skills)
    items: list[tuple[str, tuple[int, ...], float]] = []
    for k in range(cfg.n_skills):
        for j in range(cfg.items_per_skill):
            sk: tuple[int, ...] = (k,)
            if rng.random() < cfg.multi_skill and cfg.n_skills > 1:
                sk = (k, int((k + 1 + rng.integers(cfg.n_skills - 1)) % cfg.n_skills))
            items.append((f"i{k}-{j}", sk, float(rng.normal(skill_mean[k], cfg.item_sd))))
    by_skill = {k: [i for i, it in enumerate(items) if it[1][0] == k] for k in range(cfg.n_skills)}
    answers: list[Answer] = []
    p_true: list[float] = []
    tau = cfg.forget_tau_days * 86400.0
    for n in range(cfg.n_learners):
        ability = rng.normal(0.0, cfg.ability_sd)
        practice = np.zeros(cfg.n_skills)
        last = np.zeros(cfg.n_skills)
        t = float(rng.uniform(0, 7 * 86400))
        cursor = int(rng.integers(cfg.n_skills))
        for _ in range(int(rng.integers(*cfg.sessions))):
            t += float(rng.exponential(1.5 * 86400)) + 3600
            focus = [cursor % cfg.n_skills, (cursor + 1) % cfg.n_skills]
            cursor += int(rng.random() < 0.6)
            for _ in range(int(rng.integers(*cfg.answers_per_session))):
                t += float(rng.uniform(30, 240))
                it = items[
                    by_skill[focus[int(rng.random() < 0.3)]][rng.integers(cfg.items_per_skill)]
                ]
                sk = it[1]
                for s in sk:  # forgetting since the skill was last practised
                    practice[s] *= np.exp(-(t - last[s]) / tau) if last[s] else 1.0
                know = float(
                    np.mean([cfg.start_knowledge + rate[s] * np.log1p(practice[s]) for s in sk])
                )
                p = cfg.guess + (1 - cfg.guess) * float(_sigmoid(ability + know - it[2]))
                ok = bool(rng.random() < p)
                for s in sk:
                    practice[s] += 1.0 if ok else 0.6
                    last[s] = t
                answers.append(Answer(f"sim-{n}", tuple(skills[s] for s in sk), ok, it[0], t))
                p_true.append(p)
    diffs = {name: d for name, _, d in items}
    q = np.quantile(list(diffs.values()), [0.2, 0.4, 0.6, 0.8])
    bank = {name: 1 + int(np.searchsorted(q, d)) for name, d in diffs.items()}
    return SimData(AnswerLog.from_answers(answers), np.asarray(p_true), diffs, bank)
