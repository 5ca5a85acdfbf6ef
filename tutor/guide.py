"""Guide mode that locates the mistake (issue 13, item 4): a deterministic move, filled from a
template with quantities the tutor has checked, instead of an LM reply.

When the solution of the open problem is known (a bank item's worked ``solution``, a problem
the tutor solved itself, or a dataset problem's worked solution kept in the session state as
``extra["solution"]``), ``guide_reply`` reads the learner's message into steps
(``tutor.verify.steps``), finds the first step that leaves the solution and picks a move:

- ``focus``: a calculation of the learner's is false: name it and ask them to work it out again
  (the tutor never writes the false equation back, and never the right value);
- ``probe``: a quantity the learner wrote is neither given nor a value of the solution: quote the
  learner's words and ask where it comes from (or, when the learner computed it, what it
  stands for);
- ``hint``: the same quantity was already probed in the tutor's last turn, or the learner asked
  for help (``help_reply``, when the problem has no hint of its own in the bank): say that it does not come from the problem's numbers and give the next step of the
  solution as an operation on numbers the learner already has ("work out 40 × .05"), never
  its value;
- ``plan``: no quantity to check: what the question asks, which numbers, which operation first.

For a problem with no known answer (``state.problem`` without ``state.answer``, or a word
problem the learner poses in guide mode, ``is_word_problem``) the reply says that the tutor
cannot check the final answer, checks the arithmetic of each calculation the learner wrote, and
asks planning questions; while that reply is among the tutor's last three turns, each message
with calculations gets their verdicts and "what will you work out next?" (other messages go to
the LM, through the sentence gate).

A move never states the final answer or a value of the solution the learner has not written
(the leak check of ``tutor.grading`` runs on it as well); it only repeats the learner's own words
and numbers, the problem's numbers and verdicts on the learner's arithmetic computed here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from tutor.modes import is_word_problem
from tutor.verify.steps import (
    Divergence,
    Step,
    Work,
    equation_steps,
    first_divergence,
    fmt,
    givens,
    number,
    parse_work,
    solution_steps,
)

if TYPE_CHECKING:
    from tutor.store.records import SessionState
    from tutor.turns import OpenProblem

MAX_QUOTE = 140
NO_PROBLEM_REPLY = (
    'There\'s no problem open right now, so there is nothing to check or hint on. Say "next" '
    "for a practice problem, or type the problem you're working on, like: solve 2x + 3 = 11."
)
CANNOT_CHECK = (
    "I can't check the final answer to this problem myself, but I can check each calculation "
    "you write."
)
PLAN = (
    "Let's plan it first. What does the question ask you to find? Which numbers from the "
    "problem will you need, and what would you do with them first?"
)
NEXT = "What will you work out next, and why does the question need it?"


@dataclass(frozen=True)
class Move:
    """A guide move: ``kind`` (focus, probe, hint, plan, check), its ``text`` and the learner's
    quantity it names ("" for none)."""

    kind: str
    text: str
    quantity: str = ""
    plain: str = ""  # the move without the learner's numbers, for when they state the answer


def _quote(clause: str, written: str) -> str:
    """The learner's clause, cut to ``MAX_QUOTE`` characters around ``written``."""
    c = re.sub(r"\s+", " ", clause).strip().rstrip(".,;")
    if len(c) > MAX_QUOTE:
        at = max(c.find(written), 0)
        start = max(0, min(at - MAX_QUOTE // 2, len(c) - MAX_QUOTE))
        c = ("…" if start else "") + c[start : start + MAX_QUOTE].strip() + "…"
    return c


def _said(work: Work, problem: str, history: Sequence[Any]) -> set[Fraction]:
    """Every number the learner or the problem has already put on the table."""
    said = givens(problem) | set(work.values)
    for m in history:
        said |= set(parse_work(str(m.get("content", ""))).values)
    return said


def next_step(solution: list[Step], work: Work, said: set[Fraction]) -> Step | None:
    """The first step of the solution the learner has not reached whose operands are all on the
    table (so naming the operation tells no value of the solution)."""
    reached = set(work.values)
    for step in solution:
        if step.value in reached:
            continue
        if step.operands and all(op in said for op in step.operands):
            return step
    return None


def _try_step(step: Step | None) -> str:
    if step is None:
        return (
            "Read the question again: which quantity does it ask for, and which numbers from "
            "the problem lead to it?"
        )
    return f"Try this step: work out {show_expression(step.expression)}. What does that number stand for in the problem?"


def show_expression(expression: str) -> str:
    """``10*2`` -> ``10 × 2``."""
    spaced = re.sub(r"\s*([-+*/])\s*", r" \1 ", expression).strip()
    return spaced.replace("*", "×").replace("/", "÷")


def _located(
    d: Divergence, solution: list[Step], work: Work, said: set[Fraction], escalate: bool
) -> Move:
    quote = f'In your work you wrote: "{_quote(d.clause, d.written)}". '
    if not all(s.holds for s in parse_work(d.clause).steps):
        quote = ""  # never write a false equation back, not even as a quote
    if d.kind == "arithmetic" and d.step is not None:
        expr = show_expression(d.step.expression)
        ask = f"Let's check one calculation in your work: {expr}. Work it out again, one step at a time."
        return Move(
            "focus",
            f"{ask} What do you get, and does it match the {d.written} you wrote?",
            d.written,
            f"{ask} What do you get?",
        )
    if escalate:
        return Move(
            "hint",
            f"{quote}The {d.written} doesn't come from the problem's numbers or from a step of its "
            f"solution. {_try_step(next_step(solution, work, said))}",
            d.written,
        )
    if d.step is not None and d.step.value == d.quantity:
        return Move(
            "probe",
            f"{quote}You worked out {show_expression(d.step.expression)} and got {d.written}. What does the "
            f"{d.written} stand for in the problem, and does the question need it?",
            d.written,
        )
    return Move(
        "probe",
        f"{quote}Where does the {d.written} come from? Which numbers from the problem did you "
        "use to get it, and why?",
        d.written,
    )


def _probed_before(history: Sequence[Any], written: str) -> bool:
    """Whether the tutor's last turn already asked about this quantity."""
    last = next((m for m in reversed(history) if m.get("role") == "assistant"), None)
    text = str(last.get("content", "")) if last is not None else ""
    return f"the {written} come from" in text or f"the {written} stand for" in text


def choose_move(
    problem: str,
    solution: list[Step],
    learner_text: str,
    history: Sequence[Any] = (),
    *,
    asked_help: bool = False,
) -> Move:
    """The move for a learner's message on a problem whose solution is ``solution`` (module
    docstring)."""
    work = parse_work(learner_text)
    said = _said(work, problem, history)
    d = first_divergence(solution, work, givens(problem))
    if d is not None:
        escalate = asked_help or _probed_before(history, d.written)
        return _located(d, solution, work, said, escalate)
    step = next_step(solution, work, said)
    if work.items:
        return Move(
            "hint",
            "Every number in your work so far fits the problem. " + _try_step(step),
        )
    if step is not None and (asked_help or len(history) > 2):
        return Move("hint", _try_step(step))
    return Move("plan", PLAN)


def is_other_question(text: str) -> bool:
    """A question that shows no work on the open problem ("why is the sky blue?"): it ends
    with a question mark and has no number or calculation in it. A move on the problem would
    leave it unanswered; help requests ("what do I do first?") are the hint path's."""
    return (text or "").rstrip().endswith("?") and not parse_work(text).items


def reply_mode(mode: str, action: str, text: str, problem_open: bool) -> str:
    """The mode that writes the reply. A question asked in guide or practice mode while a
    problem is open that shows no work on it ("why is the sky blue?") is answered in explain
    mode: from the course, grounded by construction (tutor.explain), not from the LM's own
    facts. The problem stays open; help requests and answers keep their own paths."""
    if (
        mode in ("guide", "practice")
        and problem_open
        and action not in ("grade", "hint", "solution")
        and is_other_question(text)
    ):
        return "explain"
    return mode


def _in_word_problem(history: Sequence[Any]) -> bool:
    """Whether the tutor said, in its last three turns, that it cannot check this problem."""
    said = [m for m in history if m.get("role") == "assistant"][-3:]
    return any(str(m.get("content", "")).startswith(CANNOT_CHECK) for m in said)


def check_work(learner_text: str, *, first: bool = True) -> Move:
    """The reply for a problem with no known answer: (on the first turn) that the tutor cannot
    check the final answer, the verdict on each calculation the learner wrote (computed here),
    then the planning questions (on later turns: what to work out next)."""
    lines = [CANNOT_CHECK] if first else []
    for step in parse_work(learner_text).steps:
        expr = show_expression(step.expression)
        stated = fmt(step.stated if step.stated is not None else step.value)
        if step.holds:
            lines.append(f"Your calculation {expr} = {stated} checks out.")
        else:
            lines.append(f"Check {expr} again: it doesn't give {stated}.")
    lines.append(PLAN if first else NEXT)
    return Move("check", " ".join(lines))


def word_problem_help(state: SessionState) -> str | None:
    """Help on an open word problem whose answer is unknown: the planning questions."""
    if state.problem and not state.answer and not state.item_id:
        return f"{CANNOT_CHECK} {PLAN}"
    return None


def known_solution(opened: OpenProblem | None, state: SessionState) -> list[Step]:
    """The steps of the open problem's solution: the session's ``extra["solution"]`` (a
    dataset problem; only its final answer when it states no calculation), a bank item's worked
    solution, or the steps of a problem the tutor solved; [] when none is known."""
    extra = state.extra.get("solution") if state.extra else None
    if opened is None:
        return []
    if isinstance(extra, str) and extra.strip():
        steps = solution_steps(extra)
    elif opened.from_bank:
        steps = solution_steps(opened.item.solution)
    else:
        steps = equation_steps(opened.expression)
    final = number(str(opened.item.answer.value))
    if not steps and extra and final is not None:
        # a worked solution whose steps are not written as calculations ("7:50 + 30 minutes =
        # 8:20"): its final answer is still a value of the solution
        steps = [Step("", final)]
    return steps


def guide_reply(
    opened: OpenProblem | None,
    state: SessionState,
    learner_text: str,
    history: Sequence[Any] = (),
    *,
    graded: bool = False,
    asked_help: bool = False,
) -> str | None:
    """The guide move's text for this turn, or None (then the agent keeps its other paths:
    the bank's hint, or the LM). On a problem the learner brought, only a located mistake
    is a move; the LM guides the rest of the way there. ``graded``: the message was graded wrong already (an answer
    without a calculation gets the bank's hint, not a move)."""
    if opened is None:
        if state.problem and not state.answer and not state.item_id:
            work = parse_work(learner_text)
            if work.steps or (work.items and not _in_word_problem(history)):
                return check_work(learner_text, first=not _in_word_problem(history)).text
            if work.items:  # a bare result ("72"): it cannot be judged, only planned
                return f"{CANNOT_CHECK} {PLAN}"
            return None  # words only: the (gated) LM guides on
        if is_word_problem(learner_text):  # a word problem the tutor cannot solve
            return check_work(learner_text).text
        if _in_word_problem(history) and parse_work(learner_text).steps:
            return check_work(learner_text, first=False).text
        return None
    solution = known_solution(opened, state)
    if not solution:
        return None
    if not asked_help and not graded and is_other_question(learner_text):
        return None  # a question, not work on the problem: the (gated) LM answers; it stays open
    if graded and not parse_work(learner_text).steps:
        return None  # a bare answer: the grader's verdict and the hint ladder say enough
    move = choose_move(opened.item.prompt, solution, learner_text, history, asked_help=asked_help)
    if not move.quantity and not opened.from_bank and not state.extra.get("solution"):
        return None  # the learner's own problem, nothing to locate: the (gated) LM guides on
    from tutor.grading import mentions_answer

    for text in (move.text, move.plain):
        if text and not mentions_answer(text, opened.item):
            return text
    return None  # e.g. the learner's quoted words state the answer: the ladder instead


def help_reply(
    opened: OpenProblem | None,
    state: SessionState,
    learner_text: str,
    history: Sequence[Any],
    bank_hint: str,
) -> str:
    """What a request for help on an open problem gets: the bank's hint (``"Hint: ..."``) when
    there is one, else the guide move escalated to the next step of the solution, else ""."""
    if bank_hint:
        return f"Hint: {bank_hint}"
    return guide_reply(opened, state, learner_text, history, asked_help=True) or ""
