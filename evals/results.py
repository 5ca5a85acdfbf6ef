"""Compact eval results kept in the repository: ``evals/results/<name>.json``.

A run directory's ``report.json`` holds every item (responses, LM outputs, per-question ranks)
and is too big to commit. ``export`` keeps what the tables in docs/evals.md are made of: per
suite its summary, tables, notes, seconds and ``run`` record (commit, date, machine: CPU model,
cores, load average before and after), the flat metrics, the model and the options that size
the run. ``evals.tables`` renders the doc tables from these files.

    python -m evals.results RUN_DIR NAME     # writes evals/results/NAME.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
FORMAT = "tutor-eval-result/1"

# the options that say how big a run was and what it ran on
SIZE_OPTIONS = (
    "suites",
    "seed",
    "systems",
    "limit",
    "sim_limit",
    "max_turns",
    "student",
    "qa_limit",
    "grounding_limit",
    "keyfacts_limit",
    "sim_learners",
    "max_new_tokens",
    "exclude_runs",
)


def _name(path: str) -> str:
    """A data file or ``QA=DIR`` spec without the machine's absolute paths."""
    return "=".join(Path(part).name for part in str(path).split("="))


def _adapter_name(adapter: str | None) -> str | None:
    """``.../runs/NAME/adapter`` -> ``runs/NAME/adapter``: the run, not the machine's path."""
    return "/".join(Path(adapter).parts[-3:]) if adapter else adapter


_ABS_PATH = re.compile(r"/[^\s:'\"=]+/([^/\s:'\"=]+)")


def _strip_paths(text: str) -> str:
    """``/tmp/x/data/file.jsonl:301`` -> ``file.jsonl:301``: no machine's paths in the repo."""
    return _ABS_PATH.sub(r"\1", text)


def compact(report: dict[str, Any], name: str) -> dict[str, Any]:
    """The committed form of a ``report.json`` (see module docstring); no per-item results."""
    opts = report.get("options", {})
    options = {k: opts[k] for k in SIZE_OPTIONS if k in opts}
    for key in ("data", "sim_data", "qa", "attempts"):
        if opts.get(key):
            options[key] = [_name(p) for p in opts[key]]
    suites = {}
    for suite, s in report.get("suites", {}).items():
        suites[suite] = {k: s.get(k) for k in ("run", "seconds", "items", "summary", "tables")}
        suites[suite]["notes"] = [_strip_paths(n) for n in s.get("notes") or []]
        suites[suite]["skipped"] = {
            _strip_paths(k): _strip_paths(v) for k, v in (s.get("skipped") or {}).items()
        }
    return {
        "format": FORMAT,
        "name": name,
        "complete": report.get("complete"),
        "commit": report.get("code_version"),
        "created": report.get("created"),
        "machine": report.get("machine"),
        "model": report.get("model"),
        "adapter": _adapter_name(report.get("adapter")),
        "backend": report.get("backend"),
        "generation": {
            k: report.get("config", {}).get("lm", {}).get(k)
            for k in ("dtype", "temperature", "threads")
        },
        "options": options,
        "suites": suites,
        "metrics": report.get("metrics", {}),
    }


def export(run_dir: str | Path, name: str, out_dir: Path = RESULTS_DIR) -> Path:
    """Write ``out_dir/<name>.json`` from the report in ``run_dir``; returns its path."""
    from evals.report import load_report

    data = compact(load_report(run_dir), name)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_results(out_dir: Path = RESULTS_DIR) -> dict[str, dict[str, Any]]:
    """Every result file in ``out_dir`` by name."""
    found = {}
    for path in sorted(out_dir.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") == FORMAT:
            found[data["name"]] = data
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.results", description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", help="an eval run directory (holding report.json)")
    ap.add_argument("name", help="result name: evals/results/NAME.json")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    print(export(args.run_dir, args.name, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
