"""Pedagogy suite and judge calibration.

**pedagogy**: for each dialogue context (a conversation ending in a student's mistake or
confusion), each tutor system writes the next turn: the real agent in guide mode, the raw LM
with a plain system prompt, and the dataset's own human response ("reference"). Every response
is scored on the MRBench dimensions: deterministically where the dimension allows (revealing
the answer, via the answer checker), with cue-phrase heuristics for mistake identification and
tone, and, when a judge is configured, by the LM judge on all eight. The metric named
``telling_rate`` is the share of responses (to contexts with a known answer) in which
``tutor.grading.mentions_answer`` finds the final answer: the very test the agent's leak guard
applies before it lets a reply out, so for the agent it only shows that the guard ran (reported
as "final answer stated (leak-guard check)"). The measures of ``evals.unguarded`` (false
affirmation of a wrong answer or rejection of a right one, intermediate-result telling, false
arithmetic, wrong-answer reveal) are what the guard does not decide.

The **judge-calibration** suite, which scores human-labelled responses with the same rules and
judge, is ``evals.calibration``.
"""

from __future__ import annotations

import logging
from typing import Any

from evals import metrics as M
from evals.datasets import DialogueContext, load_contexts
from evals.dimensions import DIMENSIONS, is_desired
from evals.run import EvalRun, SuiteResult, file_tag, seeded_sample
from evals.scorers import score_response
from evals.tutors import AgentConversation, RawConversation
from evals.unguarded import score_unguarded

log = logging.getLogger(__name__)

SHORT = {
    "mistake_identification": "MI",
    "mistake_location": "ML",
    "revealing_answer": "RA",
    "providing_guidance": "PG",
    "actionability": "Act",
    "coherence": "Coh",
    "tutor_tone": "Tone",
    "humanlikeness": "HL",
}


def reference_response(ctx: DialogueContext) -> str:
    """The human tutor's response: the dataset's next teacher turn, or MRBench's "Expert"."""
    if ctx.reference:
        return ctx.reference
    for r in ctx.responses:
        if r.tutor.lower() in ("expert", "human", "human expert"):
            return r.text
    return ""


def tutor_reply(run: EvalRun, system: str, ctx: DialogueContext, key: str) -> dict[str, Any]:
    """One next turn from ``system`` for ``ctx`` as a result dict (text, mode, timings...)."""
    if system == "reference":
        return {"text": reference_response(ctx), "mode": "human", "seconds": 0.0}
    if system == "agent":
        conv: Any = AgentConversation(run.agent(with_kb=False), ctx, key=key)
    else:
        conv = RawConversation(run.generator, ctx)
    return conv.say(ctx.last_student).to_dict()


def judge_title(run: EvalRun) -> str:
    """How the tables name the judge: "move classifier" or "LM judge"."""
    return "move classifier" if getattr(run.judge, "name", "") == "classifier" else "LM judge"


def judge_labels(run: EvalRun, ctx: DialogueContext, text: str) -> dict[str, Any] | str:
    judge = run.judge
    if judge is None:
        return "none"
    if not judge.available:
        return "skipped"
    labels = judge.label_all(ctx, text)
    return labels if judge.available else "skipped"


def run_pedagogy(run: EvalRun) -> SuiteResult:
    res = SuiteResult("pedagogy")
    opts = run.options
    systems = list(opts.systems)
    for path in opts.data:
        skipped: list[str] = []
        try:
            contexts = load_contexts(path, skipped=skipped)
        except FileNotFoundError:
            res.skipped[str(path)] = "file not found"
            continue
        if skipped:
            res.notes.append(f"{len(skipped)} unusable record(s) skipped in {path}: {skipped[0]}")
        contexts, n_out = run.usable(contexts)
        if n_out:
            res.notes.append(
                f"{n_out} context(s) of {path} left out: problems a --exclude-run fine-tune trained on"
            )
        tag = file_tag(path)
        chosen = seeded_sample(contexts, opts.limit, opts.seed, tag)
        todo = [(c, s) for c in chosen for s in systems]
        for ctx, system in run.progress(todo, len(todo), f"pedagogy {tag.split('@')[0]}"):
            key = f"pedagogy|{tag}|{ctx.id}|{system}"
            if run.store.has(key):
                rec = run.store.get(key)
                if rec.get("judge") == "skipped" and run.judge is not None and run.judge.available:
                    rec = dict(rec, judge=judge_labels(run, ctx, rec["response"]))
                    run.store.add(rec)
                scored = score_unguarded(rec["response"], ctx)
                if rec.get("unguarded") != scored:
                    # scored before these measures existed or changed: score the stored response
                    run.store.add(dict(rec, unguarded=scored))
                res.keys.append(key)
                continue
            if system == "reference" and not reference_response(ctx):
                continue
            if not ctx.ends_with_student:
                res.notes.append(
                    f"{ctx.id}: the history does not end with a student turn; not generated"
                )
                continue
            reply = tutor_reply(run, system, ctx, key)
            text = reply.pop("text")
            scores = score_response(text, ctx)
            run.store.add(
                {
                    "key": key,
                    "suite": "pedagogy",
                    "dataset": tag.split("@")[0],
                    "context_id": ctx.id,
                    "source": ctx.source,
                    "system": system,
                    "student": ctx.last_student,
                    "answer": ctx.answer,
                    "response": text,
                    **scores.to_dict(),
                    "unguarded": score_unguarded(text, ctx),
                    "judge": judge_labels(run, ctx, text),
                    **{
                        k: v
                        for k, v in reply.items()
                        if k in ("mode", "rule", "leaks_blocked", "seconds", "lm_outputs")
                    },
                }
            )
            res.keys.append(key)
    recs = [run.store.get(k) for k in res.keys]
    summarize_pedagogy(res, recs, systems, judge_title(run))
    if run.judge is not None and run.judge.skipped:
        res.skipped["judge"] = run.judge.skipped
    return res


# rate name -> the per-reply field of ``evals.unguarded.score_unguarded`` it averages
UNGUARDED_RATES = {
    "false_affirmation": "false_affirmation",
    "false_rejection": "false_rejection",
    "false_judgement": "false_judgement",
    "intermediate_telling": "intermediate_told",
    "false_arithmetic": "false_arithmetic",
    "wrong_answer_reveal": "wrong_answer_reveal",
    "mistake_located": "mistake_located",
    "ends_mid_sentence": "ends_mid_sentence",
    "repeats_sentence": "repeats_sentence",
}
# the column each rate gets in the tables; every rate but these is better lower
UNGUARDED_COLUMNS = {
    "false_affirmation": "false affirmation",
    "false_rejection": "false rejection",
    "false_judgement": "false judgement",
    "intermediate_telling": "intermediate-result telling",
    "false_arithmetic": "false arithmetic",
    "wrong_answer_reveal": "wrong-answer reveal",
    "mistake_located": "mistake located",
    "ends_mid_sentence": "ends mid-sentence",
    "repeats_sentence": "repeats a sentence",
}
HIGHER_IS_BETTER = frozenset({"mistake_located"})
UNGUARDED_NOTE = (
    "False affirmation: the data says the student's last answer is wrong (MathDial's incorrect "
    "solution) and the reply affirms it; false rejection: the student's last answer is the gold "
    "one and the reply says it is wrong; false judgement: either (own phrase lists, not the "
    "answer checker). Intermediate-result telling: the reply states a number the gold solution "
    "computes on the way that nobody has said yet (final answer excluded). False arithmetic: the "
    "reply holds a false 'a op b = c' claim (exact fractions; over every reply). Wrong-answer "
    "reveal: the reply states a final answer ('the answer is N', or a closing 'So ... N') that is "
    "not the gold one. Mistake located (higher is better): the reply states the student's first "
    "wrong quantity (the first number of the student's message that is neither in the problem "
    "nor in the gold solution, or the result of a false calculation); over the contexts with "
    "one. Ends mid-sentence: the reply's last character (closing quotes aside) is not . ! or ?; "
    "repeats a sentence: two sentences of 3+ words are the same. None of them uses tutor.grading, tutor.guard or tutor.verify "
    "(evals/unguarded.py, evals/arithmetic.py)."
)


def unguarded_cell(u: dict[str, Any], name: str) -> str:
    if u.get(name) is None:
        return "–"
    return f"{100 * u[name]:.0f}% ({u[name + '_k']}/{u[name + '_n']})"


def unguarded_stats(recs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates of the ``evals.unguarded`` measures over the responses where each applies."""
    scored = [r["unguarded"] for r in recs if isinstance(r.get("unguarded"), dict)]

    def rate(name: str) -> tuple[float | None, int, int]:
        vals = [bool(u[name]) for u in scored if u.get(name) is not None]
        return M.mean([float(v) for v in vals]), sum(vals), len(vals)

    out: dict[str, Any] = {}
    for name, field in UNGUARDED_RATES.items():
        out[name], out[name + "_k"], out[name + "_n"] = rate(field)
    out["affirms"] = rate("affirms")[0]
    return out


def unguarded_table(res: SuiteResult, per: dict[str, Any]) -> None:
    res.table(
        "Measures the leak guard does not decide",
        ["system", *UNGUARDED_COLUMNS.values(), "affirms (any context)"],
        [
            [
                name,
                *[unguarded_cell(s["unguarded"], n) for n in UNGUARDED_RATES],
                "–"
                if s["unguarded"]["affirms"] is None
                else f"{100 * s['unguarded']['affirms']:.0f}%",
            ]
            for name, s in per.items()
        ],
        UNGUARDED_NOTE,
    )


def _dim_stats(recs: list[dict[str, Any]], dim: str, which: str) -> dict[str, Any] | None:
    labels = []
    for r in recs:
        if which == "judge":
            j = r.get("judge")
            lab = j.get(dim) if isinstance(j, dict) else None
        else:
            lab = r["labels"].get(dim) if r["sources"].get(dim) else None
        if lab is not None:
            labels.append(lab)
    if not labels:
        return None
    dist = {lab: labels.count(lab) / len(labels) for lab in DIMENSIONS[dim].labels}
    return {
        "n": len(labels),
        "desired": sum(bool(is_desired(dim, x)) for x in labels) / len(labels),
        "dist": dist,
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _system_stats(res: SuiteResult, system: str, rs: list[dict[str, Any]]) -> dict[str, Any]:
    """One system's summary over its responses ``rs``; records its metrics on ``res``."""
    answered = [r for r in rs if r["features"]["answer_revealed"] is not None]
    s: dict[str, Any] = {
        "n": len(rs),
        "with_answer": len(answered),
        "telling_rate": M.mean([float(r["features"]["answer_revealed"]) for r in answered]),
        "asks_question": M.mean([float(r["features"]["asks_question"]) for r in rs]),
        "words": M.mean([r["features"]["words"] for r in rs]),
        "empty": M.mean([float(r["features"]["empty"]) for r in rs]),
        "leaks_blocked": M.mean([r.get("leaks_blocked", 0) for r in rs])
        if system == "agent"
        else None,
        "seconds": M.mean([r.get("seconds", 0.0) for r in rs]),
        "rules": {},
        "judge": {},
        "unguarded": unguarded_stats(rs),
    }
    for dim in DIMENSIONS:
        st = _dim_stats(rs, dim, "rules")
        if st:
            s["rules"][dim] = st
            res.metric(f"{system}/{dim}/desired_rules", st["desired"], True)
        sj = _dim_stats(rs, dim, "judge")
        if sj:
            s["judge"][dim] = sj
            res.metric(f"{system}/{dim}/desired_judge", sj["desired"], True)
    res.metric(f"{system}/telling_rate", s["telling_rate"], False)
    res.metric(f"{system}/asks_question", s["asks_question"], None)
    res.metric(f"{system}/words", s["words"], None)
    ug = s["unguarded"]
    for name in UNGUARDED_RATES:
        res.metric(f"{system}/{name}", ug[name], name in HIGHER_IS_BETTER)
    res.metric(f"{system}/affirms", ug["affirms"], None)
    if s["leaks_blocked"] is not None:
        res.metric(f"{system}/leaks_blocked_per_turn", s["leaks_blocked"], None)
    return s


def _responses_table(res: SuiteResult, per: dict[str, Any]) -> None:
    res.table(
        "Tutor responses",
        [
            "system",
            "responses",
            "with known answer",
            "final answer stated (leak-guard check)",
            "asks a question",
            "words",
            "leak-guard retries",
            "s/turn",
        ],
        [
            [
                name,
                s["n"],
                s["with_answer"],
                _pct(s["telling_rate"]),
                _pct(s["asks_question"]),
                "–" if s["words"] is None else f"{s['words']:.0f}",
                "–" if s["leaks_blocked"] is None else f"{s['leaks_blocked']:.2f}",
                "–" if s["seconds"] is None else f"{s['seconds']:.1f}",
            ]
            for name, s in per.items()
        ],
        "Final answer stated: share of responses in which tutor.grading.mentions_answer finds the "
        "final answer (any accepted form); the agent's leak guard withholds every reply this check "
        "flags, so the agent's figure shows that the guard ran, not how it teaches.",
    )


def _dimensions_table(res: SuiteResult, per: dict[str, Any], judge: str = "LM judge") -> None:
    rows = []
    for name, s in per.items():
        for which, label in (("rules", "rules"), ("judge", judge)):
            if not s[which]:
                continue
            rows.append(
                [
                    name,
                    label,
                    *[_pct(s[which][d]["desired"]) if d in s[which] else "–" for d in DIMENSIONS],
                ]
            )
    res.table(
        "MRBench dimensions: share of responses with the desired label",
        ["system", "scorer", *[SHORT[d] for d in DIMENSIONS]],
        rows,
        "Desired: Yes for MI/ML/PG/Act/Coh/HL, No for RA (revealing the answer), Encouraging for tone. "
        "Rules: RA is deterministic (the answer checker the agent's leak guard also applies, so the "
        "agent's RA shows that the guard ran); MI and tone are cue-phrase heuristics.",
    )


def summarize_pedagogy(
    res: SuiteResult, recs: list[dict[str, Any]], systems: list[str], judge: str = "LM judge"
) -> None:
    per: dict[str, Any] = {}
    for system in systems:
        rs = [r for r in recs if r["system"] == system]
        if rs:
            per[system] = _system_stats(res, system, rs)
    res.summary = {"systems": per}
    _responses_table(res, per)
    unguarded_table(res, per)
    _dimensions_table(res, per, judge)
