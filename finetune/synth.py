"""Tutoring dialogues the project writes itself (issue 15, item 4): ``tutor finetune synth``.

Each dialogue takes a problem with a worked solution (an item of the bank, or a GSM8K-form
record, whose ``<<a*b=c>>`` steps the solution reader takes), plants one mistake in a student's
work and answers it with the tutor's own template move (``tutor.guide.choose_move``), so every
teacher turn is a move the verifiers allow: its quantities are the student's and the problem's,
it locates the mistake, it never states the answer or a value of the solution the student has
not written. The mistakes:

- ``slip``: one calculation of the solution with a wrong result (off by 1, 2 or 10; the
  template asks to work it out again: MathDial's *focus*);
- ``operation``: one calculation with the wrong operation, worked out right (the result comes
  from nowhere in the solution; the template asks what it stands for: *probing*).

When the student then writes the step right and the solution has a further step, a second
exchange follows: "every number fits", and the next step as an operation on numbers the student
has (*focus*). A dialogue is kept only when each teacher turn passes the leak check
(``tutor.grading.mentions_answer``) and the sentence gate's arithmetic check. The output is the
shared dialogue form (``{"id", "source": "synth", "problem", "ground_truth", "messages"}``),
which ``tutor finetune train --data`` and ``tutor finetune pairs --data`` read.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from tutor.errors import InputError
from tutor.guide import show_expression

OPENERS = (
    "Walk me through how you worked it out.",
    "Can you tell me what you did first?",
    "Talk me through your solution, step by step.",
)
# the template's kind -> the MathDial move it is
MOVE_OF = {"focus": "focus", "probe": "probing", "hint": "focus", "plan": "focus"}
OTHER_OP = {"*": "+", "+": "*", "-": "+", "/": "*"}


@dataclass(frozen=True)
class Problem:
    id: str
    text: str
    solution: str
    answer: str


def bank_problems(paths: Sequence[str | Path] = ()) -> list[Problem]:
    """The items (of ``paths``, default the bundled bank) with a worked solution."""
    from tutor.items.load import iter_items, load_bank, load_default_bank

    bank = load_bank(paths) if paths else load_default_bank()
    return [
        Problem(it.id, it.prompt, it.solution, str(it.answer.value))
        for it in iter_items([bank])
        if it.solution and it.answer.kind != "choice"
    ]


def gsm8k_problems(path: str | Path) -> list[Problem]:
    """GSM8K-form records (``question``, ``answer`` ending ``#### N``); errors name the line."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file; pass a GSM8K-form JSONL file")
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{p}:{n}: not valid JSON ({e.msg})") from e
        if not isinstance(d, dict) or not isinstance(d.get("question"), str):
            raise InputError(f"{p}:{n}: field 'question' must be text")
        answer = d.get("answer")
        if not isinstance(answer, str) or "####" not in answer:
            raise InputError(f"{p}:{n}: field 'answer' must be a solution ending '#### N'")
        work, _, final = answer.rpartition("####")
        out.append(Problem(str(d.get("id") or f"{p.name}:{n}"), d["question"], work, final.strip()))
    return out


def _fmt(value: Fraction) -> str:
    from tutor.verify.steps import fmt

    return fmt(value)


def _wrong_value(value: Fraction, taken: set[Fraction], rng: random.Random) -> Fraction | None:
    for d in rng.sample([1, -1, 2, 10], 4):
        v = value + d
        if v > 0 and v not in taken:
            return v
    return None


def planted(problem: Problem, kind: str, rng: random.Random) -> tuple[str, Any] | None:
    """(the student's work with one ``kind`` mistake, the step it is in); None when the
    solution has no calculation that fits."""
    from tutor.verify.steps import evaluate, solution_steps

    steps = solution_steps(problem.solution)
    taken = {s.value for s in steps}
    order = rng.sample(range(len(steps)), len(steps))
    for i in order:
        step = steps[i]
        before = " ".join(f"{show_expression(s.expression)} = {_fmt(s.value)}." for s in steps[:i])
        if kind == "slip":
            wrong = _wrong_value(step.value, taken, rng)
            if wrong is None:
                continue
            shown = f"{show_expression(step.expression)} = {_fmt(wrong)}"
        else:
            ops = [c for c in step.expression if c in OTHER_OP]
            if len(ops) != 1:
                continue
            expr = step.expression.replace(ops[0], OTHER_OP[ops[0]])
            value = evaluate(expr)
            if value is None or value <= 0 or value in taken:
                continue
            shown = f"{show_expression(expr)} = {_fmt(value)}"
        work = f"First, {before} Then I did {shown}." if before else f"I did {shown}."
        return f"{work} So my answer is {shown.rsplit('= ', 1)[1]}.", (i, step)
    return None


def _passes(text: str, problem: Problem) -> bool:
    """The checks a rejected DPO candidate fails (``finetune.pairs.rejection``), the
    classifier's aside: no reveal, no false or unverifiable arithmetic, no unbacked judgement."""
    from finetune.pairs import PairContext, rejection

    ctx = PairContext([], text, problem.text, "", problem.answer, problem.id, problem.id)
    return rejection(text, ctx) is None


def dialogue(problem: Problem, kind: str, rng: random.Random) -> dict[str, Any] | None:
    """One dialogue with a ``kind`` mistake (module docstring), or None when the templates
    cannot answer it with a move that passes the checks."""
    from tutor.guide import choose_move
    from tutor.verify.steps import solution_steps

    made = planted(problem, kind, rng)
    if made is None:
        return None
    work, (i, step) = made
    steps = solution_steps(problem.solution)
    history = [
        {"role": "assistant", "content": rng.choice(OPENERS)},
        {"role": "user", "content": work},
    ]
    move = choose_move(problem.text, steps, work, history[:1])
    if not move.quantity or not _passes(move.text, problem):
        return None  # no mistake located, or the move would say too much
    messages = [
        {"role": "teacher", "content": history[0]["content"], "move": "generic"},
        {"role": "student", "content": work},
        {"role": "teacher", "content": move.text, "move": MOVE_OF[move.kind]},
    ]
    if i + 1 < len(steps):
        fixed = f"Oh, {show_expression(step.expression)} = {_fmt(step.value)}."
        history += [{"role": "assistant", "content": move.text}, {"role": "user", "content": fixed}]
        nxt = choose_move(problem.text, steps, fixed, history[:-1])
        if nxt.kind == "hint" and _passes(nxt.text, problem):
            messages += [
                {"role": "student", "content": fixed},
                {"role": "teacher", "content": nxt.text, "move": MOVE_OF[nxt.kind]},
            ]
    return {
        "id": f"synth-{problem.id}-{kind}",
        "source": "synth",
        "problem_id": problem.id,
        "problem": problem.text,
        "ground_truth": f"{problem.solution.strip()}\n{problem.answer}",
        "messages": messages,
    }


def synthesize(
    problems: Iterable[Problem], *, kinds: Sequence[str] = ("slip", "operation"), seed: int = 0
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Every dialogue the templates can write for ``problems`` x ``kinds``; (dialogues, counts:
    made per kind and skipped)."""
    unknown = set(kinds) - {"slip", "operation"}
    if unknown:
        raise InputError(f"unknown mistake kind(s) {sorted(unknown)}; use slip, operation")
    out: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for p in problems:
        for kind in kinds:
            d = dialogue(p, kind, random.Random(f"{seed}:{p.id}:{kind}"))
            counts[kind if d else "skipped"] += 1
            if d:
                out.append(d)
    return out, counts


def limit_dialogues(
    dialogues: Sequence[dict[str, Any]], limit: int, first: set[str], *, seed: int = 0
) -> list[dict[str, Any]]:
    """At most ``limit`` of ``dialogues``: those on the problems in ``first`` (the user's own
    items) before a seeded sample of the rest; the output keeps the input's order."""
    if limit < 0:
        raise InputError(f"--limit must be 0 (all) or more, not {limit}")
    if not limit or limit >= len(dialogues):
        return list(dialogues)
    own = [i for i, d in enumerate(dialogues) if d["problem_id"] in first]
    rest = [i for i, d in enumerate(dialogues) if d["problem_id"] not in first]
    random.Random(seed).shuffle(rest)
    keep = set((own + rest)[:limit])
    return [d for i, d in enumerate(dialogues) if i in keep]
