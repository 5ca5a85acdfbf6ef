"""Side-by-side pedagogy table from several ``tutor eval`` reports (raw vs agent vs adapter).

Runs nothing itself: point it at report directories written by ``tutor eval pedagogy`` /
``simulation`` / ``all`` (see docs/evals.md for the exact commands) and it prints, per report
and tutor system, every MRBench dimension the report scored (rules and, when present, the LM
judge), the telling rate, questions asked, length, and success@k / telling@k of simulated
tutoring, plus the wall time of each report.

    python benchmarks/eval_table.py reports/bench-base reports/bench-adapter
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import Recorder  # noqa: E402

from evals.dimensions import DIMENSIONS  # noqa: E402
from evals.pedagogy import SHORT  # noqa: E402
from evals.report import load_report  # noqa: E402
from tutor.lm.bundled_lora import short_name  # noqa: E402


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def label(report: dict, system: str) -> str:
    if system == "reference":
        return "human tutor (dataset's next turn)"
    model = Path(report["model"]).name
    if report.get("adapter"):
        model += " + LoRA " + short_name(report["adapter"])  # "tutoring": the shipped LoRA
    return f"{system}: {model}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", help="report directories (or report.json files)")
    ap.add_argument("--tag", default="", help="result file suffix (results/eval_table-TAG.json)")
    args = ap.parse_args()
    rec = Recorder("eval_table", args, tag=args.tag)
    reports = [load_report(p) for p in args.reports]
    rec.meta(
        reports=[
            {k: rep.get(k) for k in ("model", "adapter", "created", "commit", "seed") if k in rep}
            for rep in reports
        ]
    )
    pedagogy(reports, rec)
    simulation(reports, rec)
    rows = []
    for path, rep in zip(args.reports, reports, strict=True):
        per = ", ".join(f"{n} {s['seconds']:.0f} s" for n, s in rep["suites"].items())
        total = sum(s["seconds"] for s in rep["suites"].values())
        rows.append([Path(path).name, per, f"{total:.0f} s"])
    columns = ["report", "time per suite (new items only, when resumed)", "sum"]
    print()
    print(rec.table("time", columns, rows, align="llr"))
    rec.write()


def pedagogy(reports: list[dict], rec: Recorder) -> None:
    """The pedagogy table: one row per report and tutor system."""
    columns = ["tutor", "responses", "telling rate", "asks a question", "words"]
    columns += [SHORT[d] for d in DIMENSIONS]
    table = []
    seen: set[str] = set()
    for rep in reports:
        systems = rep["suites"].get("pedagogy", {}).get("summary", {}).get("systems", {})
        for system, s in systems.items():
            name = label(rep, system)
            if name in seen:
                continue
            seen.add(name)
            cells = []
            for d in DIMENSIONS:
                if d in s.get("judge", {}):
                    cells.append(f"{pct(s['judge'][d]['desired'])} (j)")
                elif d in s.get("rules", {}):
                    cells.append(pct(s["rules"][d]["desired"]))
                else:
                    cells.append("–")
            words = "–" if s["words"] is None else f"{s['words']:.0f}"
            row = [name, s["n"], pct(s["telling_rate"]), pct(s["asks_question"]), words]
            table.append(row + cells)
    print(rec.table("pedagogy", columns, table, align="l" + "r" * (len(columns) - 1)))


def simulation(reports: list[dict], rec: Recorder) -> None:
    """Simulated tutoring: success@k and telling@k per report and tutor system."""
    rows = []
    for rep in reports:
        sim = rep["suites"].get("simulation", {}).get("summary", {})
        for system, s in sim.get("systems", {}).items():
            last = s["curve"][-1]
            rows.append(
                [
                    label(rep, system),
                    s["n"],
                    pct(last["success"]),
                    pct(last["telling"]),
                    pct(last["success_without_telling"]),
                ]
            )
    if rows:
        k = reports[0]["suites"].get("simulation", {}).get("summary", {}).get("max_turns", "k")
        columns = ["tutor", "dialogues", f"success@{k}", f"telling@{k}"]
        columns.append(f"success without telling@{k}")
        print()
        print(rec.table("simulation", columns, rows, align="lrrrr"))


if __name__ == "__main__":
    main()
