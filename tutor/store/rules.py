"""The practice rules, as pure functions (no database): which graded attempt counts, and how a
counted attempt moves a learner's standing on a skill (counts and BKT mastery).

``LearnerStore.record_attempt`` reads the stored standing, calls these and writes the result in
one transaction; ``recompute_mastery`` replays the attempts log through the same function, so
a live update and a replay cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from tutor import kt


@dataclass(frozen=True)
class SkillStanding:
    """A learner's standing on one skill: P(mastered) and the counted attempts behind it."""

    p_mastery: float
    n_attempts: int = 0
    n_correct: int = 0


def attempt_counts(*, in_session: bool, earlier_in_session: int) -> bool:
    """Whether a graded attempt moves mastery.

    Only the first graded attempt at an item within a session counts: retries after feedback
    would otherwise inflate mastery. An attempt outside any session always counts.
    ``earlier_in_session``: attempts already stored for this item in this session.
    """
    return earlier_in_session == 0 if in_session else True


def apply_attempt(
    before: SkillStanding | None, *, correct: bool, counted: bool, params: kt.BKTParams
) -> SkillStanding:
    """The standing after one attempt on the skill (``before`` None = never practised: the
    prior). A counted attempt adds to the counts and applies the BKT update; an uncounted one
    changes nothing."""
    start = before if before is not None else SkillStanding(params.prior)
    if not counted:
        return start
    return SkillStanding(
        kt.update(start.p_mastery, correct, params),
        start.n_attempts + 1,
        start.n_correct + (1 if correct else 0),
    )
