"""``tutor eval SUITE`` and ``tutor eval compare A B``.

Suites: retrieval, pedagogy, simulation, grounding, keyfacts, learner-model, judge-calibration,
all.
The report goes to ``--out DIR`` (default ``<paths.reports_dir>/<suite>-<model>``); rerunning
the same command resumes an interrupted run. ``compare`` exits 1 when a metric chosen with
``--metric`` got worse by more than ``--threshold`` (a CI gate).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from tutor.cli.common import add_lm_options

SUITE_HELP = {
    "retrieval": "recall@k, MRR, nDCG@10 of dense/BM25/hybrid search on QA sets with gold sections",
    "pedagogy": "the tutor's next turn on dialogue contexts, scored on the MRBench dimensions",
    "simulation": "the tutor with a simulated student for up to k turns: success@k, telling@k",
    "grounding": "explain-mode answers: statements supported by cited passages, citation validity",
    "keyfacts": "explain-mode answers: key facts right (must/must_not patterns), honest 'not covered' out of course",
    "learner-model": "P(correct) of BKT, PFA, Best-LR and baselines on held-out learners: AUC "
    "(bootstrap CI), accuracy, RMSE, calibration",
    "judge-calibration": "agreement of the rules and the LM judge with human labels (MRBench form)",
    "all": "retrieval, pedagogy, simulation, grounding, keyfacts and learner-model (+ judge-calibration with --calibration-data)",
}


def _run_options(p: argparse.ArgumentParser) -> None:
    """The options of every eval suite, by group."""
    g = p.add_argument_group("run")
    g.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="report directory (default: <home>/reports/<suite>-<model>)",
    )
    g.add_argument("--seed", type=int, default=0, help="sampling and simulation seed (default 0)")
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh when --out holds a run with another config",
    )
    g.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    g.add_argument(
        "--systems",
        default="agent,raw,reference",
        help="tutors to compare: agent (the tutor), raw (same LM, plain prompt), reference (the dataset's human turn)",
    )
    _dialogue_options(p)
    _judge_options(p)
    _retrieval_options(p)
    _learner_model_options(p)


def _dialogue_options(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("pedagogy and simulation")
    d.add_argument(
        "--data",
        action="append",
        metavar="FILE",
        default=None,
        help="dialogue contexts: shared dialogue form (MathDial, BRIDGE, CIMA) or MRBench form; repeatable (default: the shared MathDial and BRIDGE samples)",
    )
    d.add_argument(
        "--limit", type=int, default=6, help="contexts per --data file (default 6; 0 = all)"
    )
    d.add_argument(
        "--sim-data",
        action="append",
        metavar="FILE",
        default=None,
        help="dialogues for simulated tutoring (default: the shared MathDial sample)",
    )
    d.add_argument(
        "--sim-limit", type=int, default=3, help="simulated dialogues per file (default 3)"
    )
    d.add_argument(
        "--max-turns", type=int, default=3, help="tutor turns per simulated dialogue, k (default 3)"
    )
    d.add_argument(
        "--student",
        choices=["scripted", "lm"],
        default="scripted",
        help="simulated student (default scripted)",
    )
    d.add_argument(
        "--exclude-run",
        action="append",
        metavar="RUN_DIR",
        default=None,
        help="leave out contexts on problems a fine-tune run trained on (runs/<name>; reads its "
        "config.toml); repeatable. Use the same for every run you compare",
    )


def _judge_options(p: argparse.ArgumentParser) -> None:
    j = p.add_argument_group("LM judge (optional; calibrate it first with judge-calibration)")
    j.add_argument(
        "--judge-model",
        default=None,
        help="judge model: an id/path for hf, the served name for openai, or 'self' (the tutor's LM)",
    )
    j.add_argument("--judge-backend", choices=["hf", "openai"], default=None)
    j.add_argument(
        "--judge",
        choices=["classifier"],
        default=None,
        help="classifier: the trained move classifier (tutor judge) labels MI, PG and Act",
    )
    j.add_argument(
        "--judge-weights",
        default=None,
        metavar="JSON",
        help="move classifier weights for --judge classifier (default: the shipped ones)",
    )
    j.add_argument(
        "--judge-base-url",
        default=None,
        help="OpenAI-compatible server of the judge (implies --judge-backend openai)",
    )
    j.add_argument(
        "--calibration-data",
        action="append",
        metavar="FILE",
        default=None,
        help="human-labelled responses in MRBench form, V1 or V2/BEA-2025 (judge-calibration)",
    )
    j.add_argument(
        "--calibration-limit", type=int, default=0, help="contexts per calibration file (0 = all)"
    )


def _retrieval_options(p: argparse.ArgumentParser) -> None:
    r = p.add_argument_group("retrieval and grounding")
    r.add_argument(
        "--qa",
        action="append",
        metavar="QA=DIR",
        default=None,
        help="QA set with gold sections and its documents' directory; repeatable (default: the sample course and the OpenStax chapters); grounding uses the first",
    )
    r.add_argument(
        "--qa-limit", type=int, default=0, help="questions per QA set for retrieval (0 = all)"
    )
    r.add_argument(
        "--grounding-limit",
        type=int,
        default=4,
        help="explain-mode answers for grounding (default 4)",
    )
    r.add_argument(
        "--keyfacts",
        metavar="FILE",
        default=None,
        help="key-fact question set (default: evals/data/keyfacts.jsonl)",
    )
    r.add_argument(
        "--keyfacts-limit",
        type=int,
        default=6,
        help="key-fact questions per kind, in course and out of course (default 6; 0 = all)",
    )
    r.add_argument(
        "--support-threshold",
        type=float,
        default=None,
        help="cosine at which a statement counts as supported (default: calibrated on the corpus)",
    )
    r.add_argument(
        "--embedder",
        dest="kb.embedder",
        default=None,
        help="embedder for the eval knowledge base (default kb.embedder)",
    )


def _learner_model_options(p: argparse.ArgumentParser) -> None:
    lm = p.add_argument_group("learner model")
    lm.add_argument(
        "--attempts",
        action="append",
        metavar="FILE",
        default=None,
        help="attempts log (CSV with header, JSONL, or the three-line count/skills/responses KT "
        "format), or 'store' for the learner store; repeatable",
    )
    lm.add_argument(
        "--columns",
        default="",
        help="column mapping, e.g. learner=user_id,skill=kc,correct=correct,order=timestamp"
        " (optional roles: item, time)",
    )
    lm.add_argument(
        "--sim-learners",
        type=int,
        default=100,
        help="simulated learners per split and skill (default 100)",
    )


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from evals.run import SUITES

    p = sub.add_parser(
        "eval",
        parents=[common],
        help="offline evals (retrieval, pedagogy, grounding, learner model) and report comparison",
        description="Run offline evals of the tutor and write a report (JSON, Markdown, HTML with plots).",
    )
    esub = p.add_subparsers(dest="eval_suite", metavar="SUITE", required=True)
    for name in (*SUITES, "all"):
        s = esub.add_parser(
            name, parents=[common], help=SUITE_HELP[name], description=SUITE_HELP[name]
        )
        _run_options(s)
        add_lm_options(s)
        s.set_defaults(func=cmd_run, suite=name)
    c = esub.add_parser(
        "compare",
        parents=[common],
        help="two reports side by side; exit 1 when a chosen metric regresses (CI gate)",
        description="Compare report A (baseline) with report B. Exit status 1 when a metric chosen "
        "with --metric got worse by more than --threshold, or is missing from B.",
    )
    c.add_argument("a", metavar="A", help="baseline report directory (or report.json)")
    c.add_argument("b", metavar="B", help="candidate report directory (or report.json)")
    c.add_argument(
        "--metric",
        action="append",
        metavar="PATTERN",
        default=None,
        help="gate on metrics matching this glob (repeatable), e.g. 'pedagogy/agent/false_affirmation'; "
        "'@truth' gates issue 13's measures (false affirmation, false arithmetic, wrong-answer reveal, "
        "step telling, mistake located, key-fact correctness)",
    )
    c.add_argument(
        "--threshold", type=float, default=0.01, help="allowed worsening, absolute (default 0.01)"
    )
    c.add_argument(
        "--only-changed",
        action="store_true",
        help="list only metrics of both reports that changed (and the gated ones)",
    )
    c.add_argument(
        "--out", metavar="FILE", default=None, help="also write the comparison as Markdown"
    )
    c.set_defaults(func=cmd_compare)


def options_from_args(args: argparse.Namespace, config: Any) -> Any:
    from evals.api import default_name
    from evals.run import ALL_SUITES, EvalOptions, default_dialogues, default_qa_sets

    suite = args.suite
    if suite == "all":
        suites: tuple[str, ...] = ALL_SUITES + (
            ("judge-calibration",) if args.calibration_data else ()
        )
    else:
        suites = (suite,)
    judge = None
    if args.judge == "classifier":
        judge = {"model": "classifier", "backend": "classifier", "base_url": ""}
        if args.judge_weights:
            judge["weights"] = str(Path(args.judge_weights).resolve())
    elif args.judge_model or args.judge_base_url:
        judge = {
            "model": args.judge_model or "",
            "backend": args.judge_backend or "",
            "base_url": args.judge_base_url or "",
        }
    out = Path(args.out) if args.out else config.paths.reports_dir / default_name(suite, config)
    return EvalOptions(
        suites=suites,
        out=out,
        seed=args.seed,
        systems=tuple(s.strip() for s in args.systems.split(",") if s.strip()),
        data=args.data or default_dialogues(),
        limit=args.limit,
        sim_data=args.sim_data or default_dialogues()[:1],
        sim_limit=args.sim_limit,
        max_turns=args.max_turns,
        student=args.student,
        qa=args.qa or default_qa_sets(),
        qa_limit=args.qa_limit,
        grounding_limit=args.grounding_limit,
        keyfacts_limit=args.keyfacts_limit,
        support_threshold=args.support_threshold,
        attempts=args.attempts or [],
        columns=args.columns,
        sim_learners=args.sim_learners,
        calibration_data=args.calibration_data or [],
        exclude_runs=args.exclude_run or [],
        calibration_limit=args.calibration_limit,
        judge=judge,
        max_new_tokens=config.lm.max_new_tokens,
        overwrite=args.overwrite,
        plots=not args.no_plots,
        **({"keyfacts": args.keyfacts} if args.keyfacts else {}),
    )


EVAL_MAX_NEW_TOKENS = 60


def cmd_run(args: argparse.Namespace, config: Any) -> int:
    from evals.api import run_eval

    if getattr(args, "lm.max_new_tokens", None) is None:
        # short tutor turns keep `tutor eval all` within minutes on a CPU
        config = dataclasses.replace(
            config, lm=dataclasses.replace(config.lm, max_new_tokens=EVAL_MAX_NEW_TOKENS)
        )
    options = options_from_args(args, config)
    try:
        report = run_eval(options, config)
    except KeyboardInterrupt:
        print(
            f"interrupted: finished items are kept in {options.out}; run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    for name, s in report["suites"].items():
        for t in s["tables"]:
            print(f"\n## {name}: {t['title']}\n")
            print("| " + " | ".join(str(c) for c in t["columns"]) + " |")
            print("|" + "|".join("---" for _ in t["columns"]) + "|")
            for row in t["rows"]:
                print("| " + " | ".join(str(c) for c in row) + " |")
        for what, why in s["skipped"].items():
            print(f"skipped {name}/{what}: {why}", file=sys.stderr)
        for what in s.get("incomplete", []):
            print(f"not read {name}: {what}", file=sys.stderr)
    print(f"\nreport: {options.out / 'report.html'} ({report['seconds']:.0f} s)", file=sys.stderr)
    if not report["complete"]:
        print("the report is not complete: some input was not read (above)", file=sys.stderr)
        return 1
    return 0


def cmd_compare(args: argparse.Namespace, config: Any) -> int:
    from evals.compare import compare, render
    from evals.report import load_report

    a, b = load_report(args.a), load_report(args.b)
    cmp = compare(a, b, patterns=args.metric, threshold=args.threshold)
    text = render(cmp, only_changed=args.only_changed)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0 if cmp.ok else 1
