"""Reports: ``report.json`` (every item, summaries, flat metrics, config), ``report.md`` and a
self-contained ``report.html`` (tables, plots embedded), and the plots in ``plots/``.

``report.json`` layout (``format: tutor-eval-report/1``): ``complete`` (False for an
interrupted run, ``interrupted: true``, or when a suite left input unread, listed in its
``suites.<name>.incomplete``), ``config_hash``, ``code_version`` (the commit), ``machine`` (CPU
model, cores, load average before and after), ``model``, ``adapter``, ``options``, ``config``,
``suites.<name>.{summary, tables, notes, skipped, incomplete, seconds, run}`` (``run``: that
suite's commit, date and machine, kept when later commands add suites to the directory),
``metrics`` (flat: ``"<suite>/<name>": {"value", "higher_is_better"}``, what ``tutor eval
compare`` reads) and ``items.<suite>`` (every per-item result, as in ``results.jsonl``).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evals.dimensions import DIMENSIONS
from evals.machine import machine_info
from evals.run import EvalRun, SuiteResult, _json_default
from knowledge_base.atomic import write_atomic
from tutor.lm.bundled_lora import adapter_label

log = logging.getLogger(__name__)

FORMAT = "tutor-eval-report/1"


def build_report(run: EvalRun, results: list[SuiteResult], *, complete: bool) -> dict[str, Any]:
    cfg = run.config
    metrics: dict[str, Any] = {}
    suites: dict[str, Any] = {}
    items: dict[str, list[dict[str, Any]]] = {}
    created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    commit = code_version()
    machine = machine_info(run.load_before)
    for r in results:
        metrics.update(r.metrics)
        suites[r.name] = {
            "summary": r.summary,
            "tables": r.tables,
            "notes": r.notes,
            "skipped": r.skipped,
            "incomplete": r.incomplete,
            "seconds": round(r.seconds, 2),
            "items": len(r.keys),
            # suites run into one directory by several commands keep their own record
            "run": {"commit": commit, "created": created, "machine": machine},
        }
        items[r.name] = [run.store.get(k) for k in dict.fromkeys(r.keys) if run.store.has(k)]
    return {
        "format": FORMAT,
        "created": created,
        # complete: not interrupted, and no suite left input unread (``suites.<name>.incomplete``)
        "complete": complete and not any(r.incomplete for r in results),
        "interrupted": not complete,
        "config_hash": run.store.hash,
        "code_version": commit,
        "machine": machine,
        "seconds": round(time.time() - run.started, 2),
        "resumed_items": run.store.resumed,
        "model": cfg.lm.model,
        "adapter": adapter_label(cfg.lm),
        "backend": cfg.lm.backend,
        "options": run.options.to_dict(),
        "config": cfg.to_dict(),
        "suites": suites,
        "metrics": metrics,
        "items": items,
    }


def code_version() -> str:
    """The checkout's commit (``+dirty`` with local changes), for the record: the config hash
    does not cover code, so compare reports of different commits knowingly."""
    import subprocess

    from evals.run import REPO_ROOT

    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def write_report(run: EvalRun, results: list[SuiteResult], *, complete: bool) -> dict[str, Any]:
    out = run.options.out
    report = build_report(run, results, complete=complete)
    keep_earlier_suites(report, out / "report.json")
    plots: dict[str, Path] = {}
    if run.options.plots:
        try:
            plots = make_plots(out / "plots", report)
        except ImportError:
            log.warning(
                "matplotlib is not installed (pip install 'offline-tutor[evals]'); no plots"
            )
        except Exception as e:  # a plot must never lose the results
            log.warning("plotting failed (%s); the report is written without plots", e)
    report["plots"] = {k: str(v.relative_to(out)) for k, v in plots.items()}
    write_atomic(
        out / "report.json", json.dumps(report, indent=1, default=_json_default, ensure_ascii=False)
    )
    write_atomic(out / "report.md", render_markdown(report, plots, out))
    write_atomic(out / "report.html", render_html(report, plots))
    return report


def keep_earlier_suites(report: dict[str, Any], previous: Path) -> None:
    """Suites run into the same directory by earlier commands with the same config stay in
    the report (``tutor eval pedagogy`` then ``tutor eval simulation`` -> one report)."""
    if not previous.is_file():
        return
    try:
        old = json.loads(previous.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return
    if old.get("config_hash") != report["config_hash"] or old.get(
        "interrupted", not old.get("complete")
    ):
        return
    for name, suite in old.get("suites", {}).items():
        if name in report["suites"]:
            continue
        report["suites"][name] = suite
        report["items"][name] = old.get("items", {}).get(name, [])
        report["metrics"].update(
            {k: v for k, v in old.get("metrics", {}).items() if k.startswith(name + "/")}
        )
        if suite.get("incomplete"):
            report["complete"] = False


def load_report(path: str | Path) -> dict[str, Any]:
    """A ``report.json`` (or a run directory holding one)."""
    from tutor.errors import InputError

    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    if not p.is_file():
        raise InputError(f"no eval report at {p}; pass a run directory or its report.json")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{p} is not a readable report ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "metrics" not in data:
        raise InputError(f"{p} is not a tutor eval report (format {FORMAT})")
    return data


# -- plots ---------------------------------------------------------------------------------------


def _pedagogy_plot(plt: Any, suites: dict[str, Any]) -> Any:
    ped = suites.get("pedagogy", {}).get("summary", {}).get("systems", {})
    if not ped:
        return None
    dims = list(DIMENSIONS)
    fig, ax = plt.subplots(figsize=(10, 4))
    series = []
    for name, s in ped.items():
        for which in ("judge", "rules"):
            if s.get(which):
                series.append((f"{name} ({'judge' if which == 'judge' else 'rules'})", s[which]))
    width = 0.8 / max(len(series), 1)
    for j, (label, stats) in enumerate(series):
        xs = [i + j * width for i in range(len(dims))]
        ys = [100 * stats[d]["desired"] if d in stats else 0 for d in dims]
        ax.bar(xs, ys, width=width, label=label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(dims))])
    ax.set_xticklabels([DIMENSIONS[d].title for d in dims], rotation=25, ha="right")
    ax.set_ylabel("% responses with the desired label")
    ax.set_ylim(0, 100)
    ax.set_title("Pedagogical dimensions (missing bar: no scorer for that dimension)")
    ax.legend(fontsize=8)
    return fig


def _reliability_plot(plt: Any, suites: dict[str, Any]) -> Any:
    lm = suites.get("learner-model", {}).get("summary", {}).get("datasets", {})
    if not lm:
        return None
    fig, axes = plt.subplots(1, len(lm), figsize=(4.2 * len(lm), 4), squeeze=False)
    for ax, (name, r) in zip(axes[0], lm.items(), strict=True):
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
        for model in ("BKT fitted (EM)", "BKT defaults", "Best-LR"):
            if model not in r["models"]:
                continue
            bins = [b for b in r["models"][model]["reliability"] if b["count"]]
            ax.plot([b["mean_p"] for b in bins], [b["observed"] for b in bins], "o-", label=model)
        ax.set_xlabel("predicted P(correct)")
        ax.set_ylabel("observed share correct")
        ax.set_title(f"Reliability: {name}")
        ax.legend(fontsize=8)
    return fig


def _retrieval_plot(plt: Any, suites: dict[str, Any]) -> Any:
    ret = suites.get("retrieval", {}).get("summary", {}).get("sets", {})
    if not ret:
        return None
    fig, axes = plt.subplots(1, len(ret), figsize=(4.2 * len(ret), 3.6), squeeze=False)
    for ax, (name, modes) in zip(axes[0], ret.items(), strict=True):
        for mode, s in modes.items():
            ax.plot(range(1, 11), s["curve"], "o-", ms=3, label=mode)
        ax.set_xlabel("k")
        ax.set_ylabel("recall@k")
        ax.set_ylim(0, 1.02)
        ax.set_title(name)
        ax.legend(fontsize=8)
    return fig


def _simulation_plot(plt: Any, suites: dict[str, Any]) -> Any:
    sim = suites.get("simulation", {}).get("summary", {}).get("systems", {})
    if not sim:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, s in sim.items():
        ks = [c["k"] for c in s["curve"]]
        ax.plot(ks, [c["success"] for c in s["curve"]], "o-", label=f"{name} success@k")
        ax.plot(ks, [c["telling"] for c in s["curve"]], "x--", label=f"{name} telling@k")
    ax.set_xlabel("tutor turns k")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("Simulated tutoring")
    return fig


def _calibration_plot(plt: Any, suites: dict[str, Any]) -> Any:
    cal = suites.get("judge-calibration", {}).get("summary", {})
    if not (cal and (cal.get("rules") or cal.get("judge"))):
        return None
    fig, ax = plt.subplots(figsize=(9, 3.6))
    dims = list(DIMENSIONS)
    series = [(w, cal[w]) for w in ("rules", "judge") if cal.get(w)]
    width = 0.8 / len(series)
    for j, (w, stats) in enumerate(series):
        xs = [i + j * width for i in range(len(dims))]
        ax.bar(
            xs,
            [stats[d]["macro_f1"] if d in stats else 0 for d in dims],
            width=width,
            label=f"{w} macro-F1",
        )
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(dims))])
    ax.set_xticklabels([DIMENSIONS[d].title for d in dims], rotation=25, ha="right")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Agreement with human labels")
    return fig


# Plot name -> the function drawing it (None when its suite has nothing to show), in this order.
PLOTTERS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "pedagogy_dimensions": _pedagogy_plot,
    "reliability": _reliability_plot,
    "retrieval_curves": _retrieval_plot,
    "simulation": _simulation_plot,
    "calibration": _calibration_plot,
}


def make_plots(directory: Path, report: dict[str, Any]) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    for name, plot in PLOTTERS.items():
        fig = plot(plt, report["suites"])
        if fig is None:
            continue
        path = directory / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made[name] = path
    return made


# -- text renderings -------------------------------------------------------------------------------

PLOTS_BY_SUITE = {
    "pedagogy": ["pedagogy_dimensions"],
    "learner-model": ["reliability"],
    "retrieval": ["retrieval_curves"],
    "simulation": ["simulation"],
    "judge-calibration": ["calibration"],
}


def _cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _complete_text(report: dict[str, Any]) -> str:
    if report["complete"]:
        return "yes"
    if report.get("interrupted", True):
        return "NO (interrupted; rerun the same command to resume)"
    unread = {n: len(s["incomplete"]) for n, s in report["suites"].items() if s.get("incomplete")}
    where = ", ".join(f"{n}: {k}" for n, k in unread.items())
    return f"NO (input not read: {where}; listed under the suite as 'not read')"


def _not_read(suite: dict[str, Any], limit: int = 20) -> list[str]:
    items = list(suite.get("incomplete") or [])
    more = [f"... and {len(items) - limit} more (report.json)"] if len(items) > limit else []
    return items[:limit] + more


def _header(report: dict[str, Any]) -> list[tuple[str, str]]:
    model = report["model"] + (f" + adapter {report['adapter']}" if report.get("adapter") else "")
    return [
        ("model", f"{model} ({report['backend']})"),
        ("created", report["created"]),
        ("complete", _complete_text(report)),
        ("config hash", report["config_hash"]),
        ("code", report.get("code_version", "unknown")),
        (
            "wall time",
            f"{report['seconds']:.0f} s"
            + (
                f" ({report['resumed_items']} items resumed)" if report.get("resumed_items") else ""
            ),
        ),
        ("seed", str(report["options"]["seed"])),
    ]


def render_markdown(report: dict[str, Any], plots: dict[str, Path], out: Path) -> str:
    lines = ["# Tutor eval report", ""]
    lines += [f"- **{k}**: {v}" for k, v in _header(report)]
    lines.append("")
    for name, s in report["suites"].items():
        lines += [f"## {name}", "", f"{s['items']} items, {s['seconds']:.0f} s.", ""]
        for t in s["tables"]:
            lines += [f"### {t['title']}", ""]
            lines.append("| " + " | ".join(_cell(c) for c in t["columns"]) + " |")
            lines.append("|" + "|".join("---" for _ in t["columns"]) + "|")
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t["rows"]]
            if t.get("note"):
                lines += ["", t["note"]]
            lines.append("")
        for plot in PLOTS_BY_SUITE.get(name, []):
            if plot in plots:
                lines += [f"![{plot}]({plots[plot].relative_to(out).as_posix()})", ""]
        for n in s["notes"]:
            lines.append(f"- note: {n}")
        for what, why in s["skipped"].items():
            lines.append(f"- **skipped** {what}: {why}")
        lines += [f"- **not read** {u}" for u in _not_read(s)]
        lines.append("")
    return "\n".join(lines)


def render_html(report: dict[str, Any], plots: dict[str, Path]) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Tutor eval report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.skip{color:#a40}img{max-width:100%}</style>",
        "</head><body><h1>Tutor eval report</h1><ul>",
    ]
    parts += [f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in _header(report)]
    parts.append("</ul>")
    for name, s in report["suites"].items():
        parts.append(f"<h2>{e(name)}</h2><p>{s['items']} items, {s['seconds']:.0f} s.</p>")
        for t in s["tables"]:
            parts.append(f"<h3>{e(t['title'])}</h3><table><tr>")
            parts += [f"<th>{e(str(c))}</th>" for c in t["columns"]]
            parts.append("</tr>")
            for row in t["rows"]:
                parts.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>")
            parts.append("</table>")
            if t.get("note"):
                parts.append(f"<p><small>{e(t['note'])}</small></p>")
        for plot in PLOTS_BY_SUITE.get(name, []):
            if plot in plots:
                data = base64.b64encode(plots[plot].read_bytes()).decode()
                parts.append(f"<img alt='{e(plot)}' src='data:image/png;base64,{data}'>")
        for n in s["notes"]:
            parts.append(f"<p>note: {e(n)}</p>")
        for what, why in s["skipped"].items():
            parts.append(f"<p class='skip'><b>skipped</b> {e(what)}: {e(why)}</p>")
        parts += [f"<p class='skip'><b>not read</b> {e(u)}</p>" for u in _not_read(s)]
    parts.append("</body></html>")
    return "\n".join(parts)
