"""The judge-calibration suite: agreement of the rules and the judge with human labels.

Each human-labelled response of an MRBench-form file (V1, or V2 / BEA-2025: see
``evals.datasets`` and ``evals.labels``) is scored with the same rules and judge as the
pedagogy suite; the report gives agreement per dimension (accuracy, macro-F1, confusion), the
human labels' own per-tutor "desired label" shares, and what was read: per dimension the labels
read, how many came from several annotators, how many of those were unanimous and how many tied
(no majority label: left out of agreement). Annotation fields that name no dimension are
counted by name. A record or response with no label that could be read is listed, and the
suite is then ``incomplete`` (the report does not say complete: yes).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from evals import metrics as M
from evals.datasets import AnnotatedResponse, DialogueContext, load_contexts
from evals.dimensions import DIMENSIONS, is_desired
from evals.pedagogy import SHORT, judge_labels, judge_title
from evals.run import EvalRun, SuiteResult, file_tag, seeded_sample
from evals.scorers import score_response

log = logging.getLogger(__name__)


def _where(ctx: DialogueContext) -> str:
    return f"{ctx.meta.get('file', '?')}:{ctx.meta.get('line', '?')}"


def unread_reason(resp: AnnotatedResponse) -> str | None:
    """Why no label of ``resp`` could be read (None when at least one was, or tied)."""
    if resp.labels or resp.ties:
        return None
    if not resp.annotation_field:
        return "has no 'annotation' or 'annotations' field"
    if resp.unknown:
        return f"{resp.annotation_field} fields {', '.join(resp.unknown)} name no MRBench dimension"
    return f"{resp.annotation_field} has no labels"


def read_stats(contexts: list[DialogueContext], records: int) -> dict[str, Any]:
    """What was read from one file's chosen contexts: counts per dimension, unknown fields,
    repeated conversation ids, and the responses or records with no readable label."""
    responses = [(c, r) for c in contexts for r in c.responses]
    dims: dict[str, dict[str, int]] = {}
    for d in DIMENSIONS:
        row = {"labels": 0, "several": 0, "unanimous": 0, "ties": 0, "without": 0}
        for _c, r in responses:
            votes = r.votes.get(d, [])
            row["labels"] += d in r.labels
            row["several"] += bool(votes)
            row["unanimous"] += bool(votes) and len(set(votes)) == 1
            row["ties"] += d in r.ties
            row["without"] += d not in r.labels and d not in r.ties
        dims[d] = row
    unknown = Counter(f for _c, r in responses for f in r.unknown)
    unread = [
        f"{_where(c)} {r.tutor}: {why}"
        for c, r in responses
        if (why := unread_reason(r)) is not None
    ]
    unread += [
        f"{_where(c)}: no tutor responses (anno_llm_responses / tutor_responses)"
        for c in contexts
        if not c.responses
    ]
    return {
        "records": records,
        "contexts": len(contexts),
        "repeated_ids": sum(1 for c in contexts if c.id != c.meta.get("conversation_id", c.id)),
        "responses": len(responses),
        "dimensions": dims,
        "unknown_fields": dict(unknown),
        "unread": unread,
    }


def run_calibration(run: EvalRun) -> SuiteResult:
    res = SuiteResult("judge-calibration")
    opts = run.options
    if not opts.calibration_data:
        res.skipped["judge-calibration"] = (
            "no human-annotated file given (--calibration-data FILE, MRBench form); nothing to calibrate"
        )
        return res
    read: dict[str, Any] = {}
    for path in opts.calibration_data:
        contexts = load_contexts(path)
        tag = file_tag(path)
        chosen = seeded_sample(contexts, opts.calibration_limit, opts.seed, tag)
        read[tag.split("@")[0]] = stats = read_stats(chosen, len(contexts))
        _log_read(str(path), stats)
        res.incomplete += [f"{path}: labels not read: {u}" for u in stats["unread"]]
        todo = [(c, r) for c in chosen for r in c.responses if r.labels or r.ties]
        if not todo:
            res.skipped[str(path)] = "no human-labelled responses"
            continue
        for ctx, resp in run.progress(todo, len(todo), f"calibration {tag.split('@')[0]}"):
            key = f"judge-calibration|{tag}|{ctx.id}|{resp.tutor}"
            res.keys.append(key)
            _score(run, key, tag, ctx, resp)
    recs = [run.store.get(k) for k in res.keys]
    summarize_calibration(res, recs, judge_title(run))
    res.summary["read"] = read
    read_table(res, read)
    if run.judge is not None and run.judge.skipped:
        res.skipped["judge"] = run.judge.skipped
    return res


def _score(run: EvalRun, key: str, tag: str, ctx: DialogueContext, resp: AnnotatedResponse) -> None:
    if run.store.has(key):
        rec = run.store.get(key)
        if rec.get("human") != resp.labels:  # a reader change reaches a resumed run
            rec = dict(rec, human=resp.labels)
            run.store.add(rec)
        if rec.get("judge") == "skipped" and run.judge is not None and run.judge.available:
            run.store.add(dict(rec, judge=judge_labels(run, ctx, resp.text)))
        return
    scores = score_response(resp.text, ctx)
    run.store.add(
        {
            "key": key,
            "suite": "judge-calibration",
            "dataset": tag.split("@")[0],
            "context_id": ctx.id,
            "conversation_id": ctx.meta.get("conversation_id", ctx.id),
            "tutor": resp.tutor,
            "response": resp.text,
            "human": resp.labels,
            "human_votes": resp.votes,
            "human_ties": resp.ties,
            **scores.to_dict(),
            "judge": judge_labels(run, ctx, resp.text),
        }
    )


def _log_read(path: str, stats: dict[str, Any]) -> None:
    if stats["unknown_fields"]:
        fields = ", ".join(f"{k} ({v})" for k, v in stats["unknown_fields"].items())
        log.warning(
            "%s: annotation fields that name no MRBench dimension, not used: %s", path, fields
        )
    for u in stats["unread"]:
        log.warning("%s: labels not read: %s", path, u)


def agreement(recs: list[dict[str, Any]], dim: str, which: str) -> dict[str, Any] | None:
    gold, pred = [], []
    for r in recs:
        h = r["human"].get(dim)
        if h is None:
            continue
        if which == "judge":
            j = r.get("judge")
            p = j.get(dim) if isinstance(j, dict) else None
            if not isinstance(j, dict):
                continue
        else:
            if not r["sources"].get(dim):
                continue
            p = r["labels"].get(dim)
        if p is None and which != "judge":
            continue  # the rule does not apply (e.g. no known answer)
        gold.append(h)
        pred.append(p if p is not None else "unparsed")
    if not gold:
        return None
    labels = list(DIMENSIONS[dim].labels)
    return {
        "n": len(gold),
        "accuracy": M.accuracy(gold, pred),
        "macro_f1": M.macro_f1(gold, pred, labels),
        "confusion": M.confusion(gold, pred, labels),
    }


def summarize_calibration(
    res: SuiteResult, recs: list[dict[str, Any]], judge: str = "LM judge"
) -> None:
    out: dict[str, Any] = {"rules": {}, "judge": {}, "human_by_tutor": {}}
    for which in ("rules", "judge"):
        for dim in DIMENSIONS:
            a = agreement(recs, dim, which)
            if a:
                out[which][dim] = a
                res.metric(f"{which}/{dim}/accuracy", a["accuracy"], True)
                res.metric(f"{which}/{dim}/macro_f1", a["macro_f1"], True)
    for t in sorted({r["tutor"] for r in recs}):
        rs = [r for r in recs if r["tutor"] == t]
        row = {}
        for dim in DIMENSIONS:
            labs = [r["human"][dim] for r in rs if dim in r["human"]]
            if labs:
                row[dim] = sum(bool(is_desired(dim, x)) for x in labs) / len(labs)
        out["human_by_tutor"][t] = {"n": len(rs), "desired": row}
    res.summary = out
    rows = [
        [DIMENSIONS[dim].title, label, a["n"], f"{a['accuracy']:.3f}", f"{a['macro_f1']:.3f}"]
        for which, label in (("rules", "rules"), ("judge", judge))
        for dim, a in out[which].items()
    ]
    res.table(
        "Agreement with human labels",
        ["dimension", "scorer", "responses", "accuracy", "macro-F1"],
        rows,
        "Macro-F1 over the dimension's labels (3 classes); an unparsed judge answer counts as wrong.",
    )
    res.table(
        "Human labels: share of responses with the desired label, per tutor",
        ["tutor", "responses", *[SHORT[d] for d in DIMENSIONS]],
        [
            [
                t,
                v["n"],
                *[
                    f"{100 * v['desired'][d]:.0f}%" if d in v["desired"] else "–"
                    for d in DIMENSIONS
                ],
            ]
            for t, v in out["human_by_tutor"].items()
        ],
    )


def read_table(res: SuiteResult, read: dict[str, Any]) -> None:
    """The "Human labels read" table and a note per file (records, repeated ids, unknown
    fields, unread labels)."""
    rows = []
    for name, s in read.items():
        for d, c in s["dimensions"].items():
            if c["labels"] or c["ties"]:
                rows.append(
                    [name, DIMENSIONS[d].title, c["labels"], c["several"], c["unanimous"]]
                    + [c["ties"], c["without"]]
                )
        note = (
            f"{name}: {s['records']} records, {s['contexts']} calibrated "
            f"({s['repeated_ids']} whose conversation_id occurs earlier in the file, kept apart "
            "as <id>#2, <id>#3, ...), "
            f"{s['responses']} responses"
        )
        if s["unknown_fields"]:
            fields = ", ".join(f"{k} ({v})" for k, v in s["unknown_fields"].items())
            note += f"; annotation fields naming no MRBench dimension, not used: {fields}"
        if s["unread"]:
            note += f"; {len(s['unread'])} with no readable label (the report is not complete)"
        res.notes.append(note)
    res.table(
        "Human labels read",
        ["file", "dimension", "labels", "from 2+ annotators", "unanimous", "ties", "without"],
        rows,
        "labels: responses with a label for the dimension (the majority label when several "
        "annotators gave one); ties: annotators split evenly, no label, left out of agreement; "
        "without: responses with no label for the dimension.",
    )
