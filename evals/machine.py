"""The machine an eval ran on, for the record: CPU model, cores, load average before and after.

Eval figures on a shared CPU depend on what else ran; ``report.json`` keeps these facts per suite
so that a table in docs/evals.md can say what it was measured on.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """``model name`` of /proc/cpuinfo, else ``platform.processor()``, else "unknown"."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(load_before: list[float] | None) -> dict[str, Any]:
    """CPU model, logical cores, platform, and the load average before the run and now."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_before": load_before,
        "load_after": load_average(),
    }
