"""Progress reports from the learner store: one learner's skills, and the class at a glance.

``learner_progress`` is what a learner's "my progress" shows (mastery and the predicted chance of
getting the next item right, per skill of the course); ``class_overview`` is the teacher's
learner x skill grid with the learners at risk: those whose predicted success on a skill they
have practised is low. Skills never practised are not a risk signal: every learner starts at
the prior, which is low by design.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_RISK_THRESHOLD = 0.5  # P(correct on the next item) below this on a practised skill


@dataclass(frozen=True)
class SkillProgress:
    skill: str
    name: str
    p_mastery: float
    p_correct: float  # predicted chance of answering the next item right ("readiness")
    n_attempts: int
    n_correct: int
    mastered: bool

    @property
    def practised(self) -> bool:
        return self.n_attempts > 0


@dataclass(frozen=True)
class AtRisk:
    learner_id: int
    name: str
    weak: list[SkillProgress]  # practised skills below the threshold, weakest first
    mean_p_correct: float  # over practised skills
    last_active_at: str | None


@dataclass
class ClassOverview:
    collection: str
    skills: list[tuple[str, str]]  # (id, name) in the course's order
    learners: list[tuple[int, str, str | None]]  # (id, name, last active)
    cells: dict[tuple[int, str], SkillProgress] = field(default_factory=dict)
    at_risk: list[AtRisk] = field(default_factory=list)
    threshold: float = DEFAULT_RISK_THRESHOLD
    # what "predicted success" comes from: BKT, or the predictor fit-kt chose (and why)
    predictor: str = "BKT"


def learner_progress(store: Any, learner_id: int, collection: str) -> list[SkillProgress]:
    """Every skill of the collection (course order), then any other skill the learner practised."""
    skills = store.skills(collection)
    mastery = store.mastery(learner_id, list(skills))
    order = list(skills) + sorted(s for s in mastery if s not in skills)
    out = []
    for s in order:
        m = mastery[s]
        name = skills[s].name if s in skills else s
        out.append(
            SkillProgress(s, name, m.p_mastery, m.p_correct, m.n_attempts, m.n_correct, m.mastered)
        )
    return out


def class_overview(
    store: Any, collection: str, *, threshold: float = DEFAULT_RISK_THRESHOLD
) -> ClassOverview:
    """Mastery of every learner on every skill of the collection, and who is at risk.

    Predicted success on a practised skill comes from the course's chosen predictor when
    ``tutor learners fit-kt`` chose Best-LR (P(correct) on a next item of the skill), else from
    BKT; ``ClassOverview.predictor`` says which. Mastery is always BKT's.
    """
    skills = store.skills(collection)
    ov = ClassOverview(collection, [(s.id, s.name) for s in skills.values()], [], {}, [], threshold)
    stored = store.predictor(collection) if hasattr(store, "predictor") else None
    lr = stored.lr if stored is not None else None
    ov.predictor = stored.label if stored is not None else "BKT (no predictor fitted yet)"
    per_learner = []
    for stats in store.list_learners():
        lr_ = stats.learner
        ov.learners.append((lr_.id, lr_.display_name or lr_.name, stats.last_active_at))
        per_learner.append((stats, learner_progress(store, lr_.id, collection)))
    if lr is not None:
        practised = {
            st.learner.id: [r.skill for r in rows if r.practised] for st, rows in per_learner
        }
        ps = store.skill_p_correct({k: v for k, v in practised.items() if v}, lr)
        per_learner = [
            (
                st,
                [
                    replace(r, p_correct=ps[(st.learner.id, r.skill)]) if r.practised else r
                    for r in rows
                ],
            )
            for st, rows in per_learner
        ]
    for stats, rows in per_learner:
        lid = stats.learner.id
        name = stats.learner.display_name or stats.learner.name
        for r in rows:
            ov.cells[(lid, r.skill)] = r
        done = [r for r in rows if r.practised]
        weak = sorted((r for r in done if r.p_correct < threshold), key=lambda r: r.p_correct)
        if weak:
            mean = sum(r.p_correct for r in done) / len(done)
            ov.at_risk.append(AtRisk(lid, name, weak, mean, stats.last_active_at))
    ov.at_risk.sort(key=lambda a: (a.weak[0].p_correct, a.mean_p_correct))
    return ov
