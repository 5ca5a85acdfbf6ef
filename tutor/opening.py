"""A turn's context, and opening the problem a learner brings.

``TurnContext`` is what every action of a turn works on. A problem the learner types is opened
when the tutor can solve it (the answer kept, never shown; its first scaffold step asked), or,
for a word problem it cannot solve, opened without an answer: it is then never graded, and the
reply says that the tutor cannot check the final answer and asks the planning questions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tutor.guide import check_work
from tutor.lm.base import Message
from tutor.modes import computable_problem, is_word_problem
from tutor.problems import scaffold, solve
from tutor.turns import OpenProblem, Turn, answer_value, problem_item

if TYPE_CHECKING:
    from tutor.store.records import Learner, Session, SessionState


@dataclass
class TurnContext:
    """What every action of a turn works on: the learner, the session, the message and the
    conversation so far (``state`` and ``opened`` move as the turn goes)."""

    turn: Turn
    lrn: Learner
    sess: Session
    state: SessionState
    opened: OpenProblem | None
    text: str
    history: list[Message]
    cancel: threading.Event | None


def word_problem_open(state: SessionState) -> bool:
    """Whether the session has a word problem open whose answer the tutor does not know."""
    return bool(state.problem) and not state.answer and not state.item_id


def open_word_problem(store: Any, ctx: TurnContext) -> str | None:
    """Open a pasted word problem the tutor cannot solve (its answer unknown, so never
    graded): the reply says so and asks the planning questions. None for anything else."""
    if not is_word_problem(ctx.text) or computable_problem(ctx.text):
        return None
    ctx.state = store.set_state(
        ctx.sess.id, ctx.state.with_item(None, problem=ctx.text), learner_id=ctx.lrn.id
    )
    ctx.opened = None
    ctx.turn.meta["problem"] = ctx.text
    return check_work(ctx.text).text


def open_own_problem(store: Any, ctx: TurnContext) -> str | None:
    """Open the learner's own problem when the tutor can solve it; its first scaffold step
    (None when it has no scaffold or was not solved: the LM guides or explains then)."""
    expr = computable_problem(ctx.text)
    known = solve(expr, ctx.text) if expr else None
    if known is None:
        return None
    fresh = ctx.state.with_item(None, problem=ctx.text, answer=answer_value(known.answer))
    ctx.state = store.set_state(
        ctx.sess.id,
        replace(fresh, extra={"expression": known.expression}),
        learner_id=ctx.lrn.id,
    )
    steps = scaffold(known.expression)
    ctx.opened = OpenProblem(
        problem_item(ctx.text, known.answer, steps),
        from_bank=False,
        expression=known.expression,
    )
    ctx.turn.meta["problem"] = ctx.text
    return steps[0] if steps else None
