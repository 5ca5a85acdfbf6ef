"""Shared by the hostile-input property tests: the per-call time bounds, the timing record and
its report, hypothesis settings, and the Markdown-ish text strategy that stresses every parser.

``tests/test_hostile_inputs.py`` feeds the document loaders, the chunker and the knowledge base;
``tests/test_hostile_tutor_inputs.py`` the answer checker, the solver, the intent rules and the
item-bank parser. The module docstring of the first says what the properties are.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Per-call time bounds (seconds) by target. Measured maxima are in docs/reliability.md.
BOUNDS = {
    "load": 5.0,  # one document of up to a few KB (random or mutated)
    "load-big": 30.0,  # the regression documents of 0.5-1 MB or 3,000 levels of nesting
    "chunk": 5.0,
    "kb-add": 10.0,
    "kb-search": 5.0,
    "grade": 2.0,
    "mentions": 2.0,
    "solve": 2.0,
    "intent": 2.0,
    "items": 5.0,
}
STATS: dict[str, list[float]] = defaultdict(list)
SURROGATE = re.compile("[\ud800-\udfff]")
BLOCK_KINDS = {"heading", "paragraph", "list_item", "table_row", "math", "code"}

FUZZ = settings(
    deadline=None,  # timing is asserted per call against BOUNDS instead (see the docstring)
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def fuzz(examples: int) -> settings:
    """``examples`` per property; ``TUTOR_FUZZ_SCALE=10`` runs ten times as many (a deep run)."""
    return settings(FUZZ, max_examples=examples * int(os.environ.get("TUTOR_FUZZ_SCALE", "1")))


def timed(target: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``, record its time under ``target`` and assert the bound (also when it raised)."""
    t0 = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        dt = time.perf_counter() - t0
        STATS[target].append(dt)
        assert dt <= BOUNDS[target], f"{target}: {dt:.2f}s > {BOUNDS[target]}s on {args!r:.300}"


def write_report() -> None:
    """Print the counts and maxima per target; with ``TUTOR_HOSTILE_REPORT=path.json`` also merge
    them into that file (each test module, and each xdist worker, adds its own targets)."""
    rows = {
        k: {
            "inputs": len(v),
            "max_s": round(max(v), 4),
            "mean_ms": round(1000 * sum(v) / len(v), 2),
        }
        for k, v in sorted(STATS.items())
    }
    out = os.environ.get("TUTOR_HOSTILE_REPORT")
    if out:
        path = Path(out)
        merged = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        merged.update(rows)
        path.write_text(json.dumps(dict(sorted(merged.items())), indent=2) + "\n", encoding="utf-8")
    print("\nhostile inputs:", json.dumps(rows))


# Text that stresses the parsers: Markdown structure, math, tables, odd Unicode, controls.
_PIECES = [
    "# ",
    "## ",
    "###### ",
    "\n",
    "\n\n",
    "$$",
    "$",
    "\\[",
    "\\]",
    "|",
    "| --- |",
    "- ",
    "* ",
    "1. ",
    "> ",
    "```",
    "~~~",
    "---",
    "===",
    "<",
    ">",
    "&amp;",
    "&#0;",
    "&#xd800;",
    "\t",
    "\r",
    "\r\n",
    "\x00",
    "\x1b[2J",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\u0301",
    "\U0001f600",
    "\u2028",
    "\u00a0",
    "e.g.",
    "Fig.",
    "3/4",
    "x^2",
    "\\frac{1}{2}",
    "A. ",
    "? ",
    "! ",
]
markup_text = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=12)), max_size=120).map(
    "".join
)
