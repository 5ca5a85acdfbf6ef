"""Result files of the benchmarks: every script in ``benchmarks/`` records its run here.

A run writes ``benchmarks/results/<script>[-<tag>].json``: the script and its arguments, the
git commit (and whether tracked files differed from it), the UTC start and end, the machine
(CPU model, cores, RAM, avx512_bf16, torch version), the load average before and after, the raw
samples, latency summaries (n, p50, p95) and the summary tables the script printed. One file
per script and tag holds the latest run; older runs live in git history, and
``benchmarks/results/runs.jsonl`` gets one line per run (file, commit, date, load), so the
folder stays small. ``benchmarks/tables.py`` copies the tables into docs/benchmarks.md.

    rec = Recorder("kb_index", args)
    rec.latency("flat-10000", seconds_list, unit="ms", scale=1000)
    print(rec.table("latency", ["vectors", "index", "p50 ms"], rows, align="rlr"))
    rec.write()
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or ROOT / "benchmarks" / "results")
RUNS_LOG = "runs.jsonl"


def _git(*args: str, strip: bool = True) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if strip else out.stdout


def git_info() -> dict[str, Any]:
    """The checked-out commit and the tracked files that differ from it (a dirty tree)."""
    # "XY path" lines: not stripped, or the first path loses a letter when X is a space
    status = _git("status", "--porcelain", "--untracked-files=no", strip=False)
    dirty = [ln[3:] for ln in status.splitlines() if ln.strip()]
    return {
        "commit": _git("rev-parse", "HEAD") or None,
        "short": _git("rev-parse", "--short=7", "HEAD") or None,
        "dirty": bool(dirty),
        "dirty_files": dirty[:50],
    }


def _cpu() -> tuple[str, set[str]]:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), set()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    flags = next(
        (ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []
    )
    return model, set(flags)


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    return None


def _version(package: str) -> str | None:
    mod = sys.modules.get(package)
    if mod is not None and hasattr(mod, "__version__"):
        return str(mod.__version__)
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What the figures depend on: CPU model and flags, cores, RAM, Python and torch versions."""
    model, flags = _cpu()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    info: dict[str, Any] = {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "avx512_bf16": "avx512_bf16" in flags,
        "cpu_flags": [f for f in wanted if f in flags],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": _version("torch"),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    return info


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def percentile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..1), as numpy's default."""
    s = sorted(xs)
    if not s:
        raise ValueError("no samples")
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(xs: Sequence[float]) -> dict[str, float | int]:
    """n, p50, p95, mean, min and max of a list of samples."""
    return {
        "n": len(xs),
        "p50": percentile(xs, 0.5),
        "p95": percentile(xs, 0.95),
        "mean": sum(xs) / len(xs),
        "min": min(xs),
        "max": max(xs),
    }


def _plain(value: Any) -> Any:
    """JSON-friendly copy: numpy scalars and arrays, paths, tuples and sets."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if hasattr(value, "item"):
        return _plain(value.item())
    return str(value)


def markdown(columns: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r`` (default: l)."""
    align = align.ljust(len(columns), "l")
    lines = ["| " + " | ".join(columns) + " |"]
    lines.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


class Recorder:
    """Collects one run of a benchmark script and writes its result file."""

    def __init__(
        self,
        script: str,
        args: argparse.Namespace | dict[str, Any] | None = None,
        *,
        tag: str = "",
        kind: str = "full",
    ) -> None:
        self.script = script
        self.tag = tag
        self.started = dt.datetime.now(dt.UTC)
        self.data: dict[str, Any] = {
            "script": f"benchmarks/{script}.py",
            "args": vars(args) if isinstance(args, argparse.Namespace) else dict(args or {}),
            "argv": sys.argv[1:],
            "kind": kind,
            "git": git_info(),
            "started_utc": self.started.isoformat(timespec="seconds"),
            "load_before": load_average(),
            "machine": machine_info(),
            "meta": {},
            "latency": {},
            "samples": {},
            "tables": {},
        }

    @property
    def name(self) -> str:
        return f"{self.script}-{self.tag}" if self.tag else self.script

    def meta(self, **values: Any) -> None:
        """Facts of the run worth keeping (dtype used, data sizes, model, ...)."""
        self.data["meta"].update(values)

    def samples(self, name: str, values: Any) -> None:
        """Raw samples (a list, or any JSON-friendly structure)."""
        self.data["samples"][name] = values

    def latency(
        self, name: str, values: Sequence[float], *, unit: str = "ms", scale: float = 1.0
    ) -> dict[str, Any]:
        """Raw latency samples (multiplied by ``scale`` into ``unit``) and their n/p50/p95."""
        xs = [float(v) * scale for v in values]
        self.data["samples"][name] = xs
        out: dict[str, Any] = {"unit": unit, **summary(xs)} if xs else {"unit": unit, "n": 0}
        self.data["latency"][name] = out
        return out

    def table(
        self,
        name: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        align: str = "",
    ) -> str:
        """Keep a summary table (cells as printed) and return it as Markdown."""
        cells = [[str(c) for c in row] for row in rows]
        self.data["tables"][name] = {"columns": list(columns), "align": align, "rows": cells}
        return markdown(columns, cells, align)

    def write(self, directory: Path | None = None) -> Path:
        """Write the result file (and a line in runs.jsonl); returns its path."""
        if directory is None:
            directory = RESULTS
            under_test = "PYTEST_VERSION" in os.environ or "PYTEST_CURRENT_TEST" in os.environ
            if under_test and "BENCH_RESULTS_DIR" not in os.environ:
                # a test running a benchmark (also in a subprocess whose environment was copied
                # before the test started) must not replace the published results
                directory = Path(tempfile.gettempdir()) / "bench-results-under-test"
        directory.mkdir(parents=True, exist_ok=True)
        ended = dt.datetime.now(dt.UTC)
        self.data["ended_utc"] = ended.isoformat(timespec="seconds")
        self.data["duration_s"] = round((ended - self.started).total_seconds(), 1)
        self.data["load_after"] = load_average()
        machine = sys.modules.get("torch")
        if machine is not None:
            self.data["machine"]["torch"] = str(machine.__version__)
            self.data["machine"]["torch_threads"] = machine.get_num_threads()
        path = directory / f"{self.name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_plain(self.data), indent=1) + "\n")
        os.replace(tmp, path)
        line = {
            "file": path.name,
            "commit": self.data["git"]["short"],
            "dirty": self.data["git"]["dirty"],
            "started_utc": self.data["started_utc"],
            "duration_s": self.data["duration_s"],
            "load_before": self.data["load_before"],
            "load_after": self.data["load_after"],
            "kind": self.data["kind"],
            "argv": self.data["argv"],
        }
        with open(directory / RUNS_LOG, "a") as fh:
            fh.write(json.dumps(line) + "\n")
        print(
            f"# result written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}",
            file=sys.stderr,
        )
        return path
