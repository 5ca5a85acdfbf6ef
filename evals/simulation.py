"""Simulated tutoring: the tutor talks with a simulated student who holds a wrong solution (as in
MathDial) for up to k turns.

- success@k: share of dialogues where the student states the right answer within k tutor turns
  (the answer checker reads the student's message);
- telling@k: share where the tutor stated the answer itself within k turns, before the student
  got there;
- success without telling@k: success@k minus the dialogues where the tutor told.

Students:

- ``scripted`` (default, deterministic with the seed): restates the wrong answer unless the tutor
  helps. When the tutor states the answer, the student repeats it. Otherwise the student fixes
  the mistake with probability 0.5 if the tutor's turn points at a mistake or asks a guiding
  question, 0.6 if it does both, and 0.1 if it does neither. A crude proxy: it rewards the
  behaviours the heuristics detect, not real teaching quality.
- ``lm``: the run's LM plays the student, prompted with the problem and its wrong solution.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from typing import TYPE_CHECKING, Any

from evals import metrics as M
from evals.datasets import DialogueContext, Turn, load_contexts
from evals.pedagogy import (
    HIGHER_IS_BETTER,
    UNGUARDED_COLUMNS,
    UNGUARDED_NOTE,
    UNGUARDED_RATES,
    unguarded_cell,
    unguarded_stats,
)
from evals.run import EvalRun, SuiteResult, file_tag, seeded_sample
from evals.scorers import answer_revealed, asks_question, mistake_identification
from evals.tutors import AgentConversation, RawConversation
from evals.unguarded import score_unguarded

if TYPE_CHECKING:
    from tutor.lm.base import Generator

log = logging.getLogger(__name__)

STUDENT_SYSTEM = (
    "You are a school student talking with your teacher about a math problem. You solved it like "
    "this:\n{solution}\nYou believe your answer {wrong} is right. Reply to the teacher in one or "
    "two short sentences, as a student. Change your answer only if the teacher's message really "
    "helps you see your mistake."
)


def student_reached(ctx: DialogueContext, message: str) -> bool:
    """The student's message states the right final answer (answer checker)."""
    from tutor.errors import InputError
    from tutor.grading import AnswerSpec, grade, mentions_answer

    try:
        spec = AnswerSpec.infer(ctx.answer)
    except InputError:
        return False
    if grade(spec, message).correct:
        return True
    return bool(mentions_answer(message, spec, prompt=ctx.problem))


def _last_number(text: str) -> str:
    from tutor.grading import find_numbers

    nums = find_numbers(text)
    return nums[-1].canonical() if nums else ""


class ScriptedStudent:
    def __init__(self, ctx: DialogueContext, rng: random.Random) -> None:
        self.ctx = ctx
        self.rng = rng
        self.wrong = ctx.wrong_answer or _last_number(ctx.last_student) or "what I said"

    def reply(self, tutor_text: str) -> str:
        if answer_revealed(tutor_text, self.ctx):
            return f"Oh, so the answer is {self.ctx.answer}."
        points = mistake_identification(tutor_text) == "Yes"
        asks = asks_question(tutor_text)
        p = 0.6 if points and asks else 0.5 if points or asks else 0.1
        if self.rng.random() < p:
            return f"Oh, I see my mistake now. I worked it out again and the answer is {self.ctx.answer}."
        return f"I'm not sure. I still think the answer is {self.wrong}."


class LMStudent:
    def __init__(self, generator: Generator, ctx: DialogueContext) -> None:
        self.generator = generator
        system = STUDENT_SYSTEM.format(
            solution=ctx.wrong_solution or f"(answer: {ctx.wrong_answer})",
            wrong=ctx.wrong_answer or "?",
        )
        if ctx.problem:
            system = f"Problem: {ctx.problem}\n\n{system}"
        self.messages = [{"role": "system", "content": system}]
        # the student's view: the teacher speaks as "user", the student answers as "assistant"
        for t in ctx.history:
            self.messages.append(
                {"role": "assistant" if t.role == "student" else "user", "content": t.content}
            )

    def reply(self, tutor_text: str) -> str:
        from evals.tutors import _alternate

        self.messages.append({"role": "user", "content": tutor_text or "Go on."})
        text = "".join(self.generator.stream(_alternate(self.messages), max_new_tokens=48)).strip()
        text = text or "I don't know."
        self.messages.append({"role": "assistant", "content": text})
        return text


def run_simulation(run: EvalRun) -> SuiteResult:
    res = SuiteResult("simulation")
    opts = run.options
    systems = [s for s in opts.systems if s != "reference"]
    k = opts.max_turns
    for path in opts.sim_data:
        contexts = [c for c in load_contexts(path, skipped=[]) if c.answer and c.ends_with_student]
        if not contexts:
            res.skipped[str(path)] = "no dialogue with a known answer"
            continue
        contexts, n_out = run.usable(contexts)
        if n_out:
            res.notes.append(
                f"{n_out} dialogue(s) of {path} left out: problems a --exclude-run fine-tune trained on"
            )
        tag = file_tag(path)
        chosen = seeded_sample(contexts, opts.sim_limit, opts.seed, tag)
        todo = [(c, s) for c in chosen for s in systems]
        for ctx, system in run.progress(todo, len(todo), f"simulation {tag.split('@')[0]}"):
            key = f"simulation|{tag}|{ctx.id}|{system}"
            res.keys.append(key)
            if run.store.has(key):
                rec = run.store.get(key)
                turns = score_turns(ctx, rec["turns"])
                if turns != rec["turns"]:  # scored before these measures existed or changed
                    run.store.add(dict(rec, turns=turns))
                continue
            run.store.add(simulate_dialogue(run, ctx, system, key, k))
    recs = [run.store.get(key) for key in res.keys]
    summarize_simulation(res, recs, systems, k)
    return res


def score_turns(ctx: DialogueContext, turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``turns`` with each tutor turn scored by ``evals.unguarded`` against the conversation as
    the tutor saw it (the context's history, the earlier turns, the student's last message)."""
    history = list(ctx.history)
    out = []
    for t in turns:
        seen = dataclasses.replace(ctx, history=list(history))
        out.append(dict(t, unguarded=score_unguarded(t["tutor"], seen)))
        history += [Turn("teacher", t["tutor"]), Turn("student", t["student"])]
    return out


def simulate_dialogue(
    run: EvalRun, ctx: DialogueContext, system: str, key: str, k: int
) -> dict[str, Any]:
    if system == "agent":
        conv: Any = AgentConversation(run.agent(with_kb=False), ctx, key=key)
    else:
        conv = RawConversation(run.generator, ctx)
    if run.options.student == "lm":
        student: Any = LMStudent(run.generator, ctx)
    else:
        student = ScriptedStudent(ctx, random.Random(f"{run.options.seed}:{ctx.id}"))
    message = ctx.last_student
    turns = []
    success = told = None
    for t in range(1, k + 1):
        turn = conv.say(message)
        revealed = bool(answer_revealed(turn.text, ctx))
        if revealed and told is None:
            told = t
        message = student.reply(turn.text)
        reached = student_reached(ctx, message)
        turns.append(
            {
                "tutor": turn.text,
                "revealed": revealed,
                "student": message,
                "reached": reached,
                "mode": turn.mode,
            }
        )
        if reached:
            success = t
            break
    return {
        "key": key,
        "suite": "simulation",
        "context_id": ctx.id,
        "system": system,
        "student_kind": run.options.student,
        "answer": ctx.answer,
        "wrong_answer": ctx.wrong_answer,
        "turns": score_turns(ctx, turns),
        "success_turn": success,
        "told_turn": told,
    }


def summarize_simulation(
    res: SuiteResult, recs: list[dict[str, Any]], systems: list[str], k: int
) -> None:
    per: dict[str, Any] = {}
    for system in systems:
        rs = [r for r in recs if r["system"] == system]
        if not rs:
            continue
        curve = []
        for j in range(1, k + 1):
            succ = M.mean(
                [float(r["success_turn"] is not None and r["success_turn"] <= j) for r in rs]
            )
            tell = M.mean([float(r["told_turn"] is not None and r["told_turn"] <= j) for r in rs])
            clean = M.mean(
                [
                    float(
                        r["success_turn"] is not None
                        and r["success_turn"] <= j
                        and (r["told_turn"] is None or r["told_turn"] > j)
                    )
                    for r in rs
                ]
            )
            curve.append(
                {"k": j, "success": succ, "telling": tell, "success_without_telling": clean}
            )
        turns = [t for r in rs for t in r["turns"]]
        per[system] = {"n": len(rs), "curve": curve, "turns": len(turns)}
        per[system]["unguarded"] = ug = unguarded_stats(turns)
        for name in UNGUARDED_RATES:
            res.metric(f"{system}/{name}", ug[name], name in HIGHER_IS_BETTER)
        last = curve[-1]
        res.metric(f"{system}/success@{k}", last["success"], True)
        res.metric(f"{system}/telling@{k}", last["telling"], False)
        res.metric(f"{system}/success_without_telling@{k}", last["success_without_telling"], True)
    res.summary = {"systems": per, "max_turns": k}
    res.table(
        f"Simulated tutoring (up to {k} tutor turns)",
        [
            "system",
            "dialogues",
            *[f"success@{j}" for j in range(1, k + 1)],
            f"telling@{k}",
            f"success w/o telling@{k}",
        ],
        [
            [
                name,
                s["n"],
                *[f"{100 * c['success']:.0f}%" for c in s["curve"]],
                f"{100 * s['curve'][-1]['telling']:.0f}%",
                f"{100 * s['curve'][-1]['success_without_telling']:.0f}%",
            ]
            for name, s in per.items()
        ],
    )
    res.table(
        "Simulated tutoring: measures the leak guard does not decide, per tutor turn",
        ["system", "tutor turns", *UNGUARDED_COLUMNS.values()],
        [
            [name, s["turns"], *[unguarded_cell(s["unguarded"], n) for n in UNGUARDED_RATES]]
            for name, s in per.items()
        ],
        "Each tutor turn is scored against the conversation as the tutor saw it (the simulated "
        "student's previous message included). " + UNGUARDED_NOTE,
    )
