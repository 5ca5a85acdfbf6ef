"""The tables of docs/evals.md, generated from the result files in ``evals/results/``.

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table -->`` in the doc; ``TABLES``
says which result file, suite and report table it comes from. Every block ends with a source
line naming the result file, its commit and date, so a figure traces to a run.

    python -m evals.tables            # rewrite the blocks in docs/evals.md
    python -m evals.tables --check    # exit 1 when the doc differs from the result files
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from evals.results import RESULTS_DIR, load_results

DOC = Path(__file__).resolve().parents[1] / "docs" / "evals.md"

# NAME -> (result file, suite, title of the report table, or "runs" for the run record)
# the tables of one LoRA eval result: (name, suite, title)
LORA_TABLES = (
    ("pedagogy", "pedagogy", "Tutor responses"),
    ("unguarded", "pedagogy", "Measures the leak guard does not decide"),
    ("dimensions", "pedagogy", "MRBench dimensions: share of responses with the desired label"),
    ("simulation", "simulation", "Simulated tutoring (up to"),
    ("runs", "*", "runs"),
)

TABLES: dict[str, tuple[str, str, str]] = {
    "pedagogy": ("eval-base", "pedagogy", "Tutor responses"),
    "pedagogy-unguarded": ("eval-base", "pedagogy", "Measures the leak guard does not decide"),
    "pedagogy-dimensions": (
        "eval-base",
        "pedagogy",
        "MRBench dimensions: share of responses with the desired label",
    ),
    "simulation": ("eval-base", "simulation", "Simulated tutoring"),
    "retrieval": ("eval-base", "retrieval", "Retrieval: dense vs BM25 vs hybrid"),
    "grounding": ("eval-base", "grounding", "Grounding of explain-mode answers"),
    # issue 17: its own run (BKT, PFA, Best-LR, baselines; bootstrap intervals)
    "learner-model": ("eval-learner-model", "learner-model", "P(correct) on held-out learners"),
    "runs": ("eval-base", "*", "runs"),
    # issue 13's measures, on a small run of the pedagogy, simulation and keyfacts suites
    "issue13-pedagogy-unguarded": (
        "eval-issue13",
        "pedagogy",
        "Measures the leak guard does not decide",
    ),
    "issue13-simulation-unguarded": (
        "eval-issue13",
        "simulation",
        "Simulated tutoring: measures the leak guard does not decide",
    ),
    "issue13-keyfacts": ("eval-issue13", "keyfacts", "Explain key-fact correctness"),
    "issue13-runs": ("eval-issue13", "*", "runs"),
    # guide mode that locates the mistake (issue 13, item 4), pedagogy and simulation
    "guide-pedagogy-unguarded": (
        "eval-guide",
        "pedagogy",
        "Measures the leak guard does not decide",
    ),
    "guide-simulation": ("eval-guide", "simulation", "Simulated tutoring (up to"),
    "guide-simulation-unguarded": (
        "eval-guide",
        "simulation",
        "Simulated tutoring: measures the leak guard does not decide",
    ),
    "guide-runs": ("eval-guide", "*", "runs"),
    # explain mode grounded by construction (issue 13, item 3): keyfacts (all) and grounding
    "explain-keyfacts": ("eval-explain", "keyfacts", "Explain key-fact correctness"),
    "explain-grounding": ("eval-explain", "grounding", "Grounding of explain-mode answers"),
    "explain-runs": ("eval-explain", "*", "runs"),
    # the support check's restates rule: the same key-fact run again (docs/benchmarks.md)
    "support-keyfacts-before": ("eval-support-before", "keyfacts", "Explain key-fact correctness"),
    "support-keyfacts": ("eval-support", "keyfacts", "Explain key-fact correctness"),
    "support-runs": ("eval-support", "*", "runs"),
    # guide: the fixed move after a reply that says nothing ("Great try!" alone)
    "says-nothing-before": ("eval-says-nothing-before", "pedagogy", "Tutor responses"),
    "says-nothing-after": ("eval-says-nothing-after", "pedagogy", "Tutor responses"),
    "says-nothing-unguarded": (
        "eval-says-nothing-after",
        "pedagogy",
        "Measures the leak guard does not decide",
    ),
    # the tutoring LoRA (issue 15, items 4 and 5): base, adapter and adapter + DPO on held-out
    # contexts; "shipped" and "shipped-base": the shipped default adapter and the base model
    # (--adapter none), measured again side by side on one machine
    **{
        f"lora-{kind}-{name}": (f"eval-lora-{kind}", suite, title)
        for kind in ("base", "adapter", "dpo", "shipped", "shipped-base")
        for name, suite, title in LORA_TABLES
    },
    # key facts in explain mode, base model and the tutoring LoRA (issue 15, item 4)
    **{
        f"lora-keyfacts-{kind}{part}": (f"eval-lora-keyfacts-{kind}", suite, title)
        for kind in ("base", "adapter", "shipped", "shipped-base")
        for part, suite, title in (
            ("", "keyfacts", "Explain key-fact correctness"),
            ("-runs", "*", "runs"),
        )
    },
    # the move classifier (issue 15, item 1): `tutor judge train` writes its result file
    "judge-moves": ("judge-moves", "judge", "Move classifier on held-out MathDial problems"),
    "judge-telling": ("judge-moves", "judge", "Telling detection on held-out MathDial problems"),
    "judge-training": ("judge-moves", "judge", "Move classifier: training and size"),
    "judge-runs": ("judge-moves", "*", "runs"),
}

_BLOCK = re.compile(r"(<!-- table:([\w-]+) -->\n)(.*?)(<!-- /table -->)", re.S)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(columns: list[str], rows: list[list[Any]]) -> str:
    """A GitHub table; numbers and percentages right-aligned."""

    def numeric(i: int) -> bool:
        vals = [str(r[i]) for r in rows if i < len(r) and str(r[i]) not in ("–", "")]
        return bool(vals) and all(re.match(r"^[\d.,]+(%| \(| s$| of|$)", v) for v in vals)

    head = "| " + " | ".join(_cell(c) for c in columns) + " |"
    rule = "|" + "|".join("---:" if numeric(i) else "---" for i in range(len(columns))) + "|"
    body = ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def _find_table(suite: dict[str, Any], title: str) -> dict[str, Any]:
    for t in suite.get("tables", []):
        if t["title"].startswith(title):
            return t
    raise KeyError(f"no table {title!r} in the suite's results")


def runs_table(result: dict[str, Any]) -> str:
    """Per suite: seconds, items, commit, date, CPU, cores, load average before and after."""
    rows = []
    for name, s in result["suites"].items():
        run = s.get("run") or {}
        m = run.get("machine") or {}
        before, after = m.get("load_before") or ["?"], m.get("load_after") or ["?"]
        rows.append(
            [
                name,
                f"{s['seconds']:.0f} s",
                s["items"],
                run.get("commit", "?"),
                str(run.get("created", "?"))[:16].replace("T", " "),
                f"{m.get('cpu_model', '?')}, {m.get('cores', '?')} cores",
                f"{before[0]} → {after[0]}",
            ]
        )
    cols = [
        "suite",
        "wall time",
        "items",
        "commit",
        "date",
        "machine",
        "load (1 min) before → after",
    ]
    return markdown(cols, rows)


def render(name: str, results: dict[str, dict[str, Any]]) -> str:
    """The block body for ``name``: the table and its source line."""
    if name not in TABLES:
        raise KeyError(f"docs/evals.md names table {name!r}, which evals.tables does not know")
    file, suite, title = TABLES[name]
    if file not in results:
        raise KeyError(f"table {name!r} needs evals/results/{file}.json, which is missing")
    result = results[file]
    if title == "runs":
        body, commit, created = runs_table(result), result["commit"], result["created"]
    else:
        s = result["suites"].get(suite)
        if s is None:
            raise KeyError(f"evals/results/{file}.json has no {suite!r} suite")
        t = _find_table(s, title)
        body = markdown(t["columns"], t["rows"])
        run = s.get("run") or {}
        commit, created = run.get("commit", result["commit"]), run.get("created", "?")
    source = (
        f"<sub>Generated by `python -m evals.tables` from `evals/results/{file}.json` "
        f"(commit {commit}, {str(created)[:10]}).</sub>"
    )
    return f"{body}\n\n{source}\n"


def update(text: str, results: dict[str, dict[str, Any]]) -> str:
    """``text`` with every table block regenerated."""

    def repl(m: re.Match[str]) -> str:
        return m.group(1) + render(m.group(2), results) + m.group(4)

    return _BLOCK.sub(repl, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.tables", description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the doc is out of date")
    ap.add_argument("--doc", type=Path, default=DOC)
    ap.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    text = args.doc.read_text(encoding="utf-8")
    new = update(text, load_results(args.results))
    if args.check:
        if new != text:
            print(f"{args.doc} is out of date: run python -m evals.tables", file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.doc.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
