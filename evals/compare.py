"""``tutor eval compare A B``: two reports side by side, differences marked, and a CI gate.

Every flat metric of either report gets a row: A, B, B - A and a mark (``▲`` better, ``▼``
worse, ``=`` unchanged, ``·`` no preferred direction, ``new``/``gone``). Metrics chosen with
``--metric PATTERN`` (shell-style globs, e.g. ``'pedagogy/agent/telling_rate'`` or
``'retrieval/*/hybrid/recall@5'``) are gated: one that got worse by more than ``--threshold``
(absolute, in the metric's units) or is missing from B is a regression, and the command exits
with status 1. A pattern that matches no metric is an error (a typo must not pass the gate).

``--metric @truth`` gates the measures of issue 13 ("say only what is true") at once: the
agent's false affirmation, false rejection, false judgement, false arithmetic, wrong-answer
reveal, intermediate-result telling and mistake located in the pedagogy and simulation suites,
and the key-fact suite's in-course correctness and out-of-course made-up answers
(``TRUTH_METRICS``). Of a preset, only patterns that match a metric of either report are gated
(a run without the simulation suite still gates the rest); the preset must match something.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from tutor.errors import InputError

_TRUTH_RATES = (
    "false_affirmation",
    "false_rejection",
    "false_judgement",
    "false_arithmetic",
    "wrong_answer_reveal",
    "intermediate_telling",
    "mistake_located",
    "ends_mid_sentence",
    "repeats_sentence",
)
TRUTH_METRICS = (
    *(f"{suite}/agent/{rate}" for suite in ("pedagogy", "simulation") for rate in _TRUTH_RATES),
    "keyfacts/in_course_correct",
    "keyfacts/*/in_course_correct",
    "keyfacts/out_of_course_made_up",
    "keyfacts/*/out_of_course_made_up",
)
PRESETS = {"@truth": TRUTH_METRICS}


def expand_patterns(patterns: list[str], names: list[str]) -> list[str]:
    """``patterns`` with each preset (``@truth``) replaced by its patterns that match a metric
    in ``names``; a preset that matches none is an error."""
    out: list[str] = []
    for p in patterns:
        if p not in PRESETS:
            out.append(p)
            continue
        found = [q for q in PRESETS[p] if any(fnmatch.fnmatchcase(n, q) for n in names)]
        if not found:
            raise InputError(
                f"--metric {p} matches no metric in either report: run the pedagogy, simulation "
                "or keyfacts suite (tutor eval all) first"
            )
        out.extend(q for q in found if q not in out)
    return out


@dataclass
class Row:
    name: str
    a: float | None
    b: float | None
    higher_is_better: bool | None
    gated: bool = False
    regression: bool = False

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def mark(self) -> str:
        if self.a is None:
            return "new"
        if self.b is None:
            return "gone"
        d = self.delta or 0.0
        if abs(d) < 1e-12:
            return "="
        if self.higher_is_better is None:
            return "·"
        better = d > 0 if self.higher_is_better else d < 0
        return "▲" if better else "▼"


@dataclass
class Comparison:
    a_label: str
    b_label: str
    rows: list[Row] = field(default_factory=list)
    threshold: float = 0.0
    patterns: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # "A"/"B" when a run was interrupted

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.regression]

    @property
    def ok(self) -> bool:
        return not self.regressions


def _label(report: dict[str, Any]) -> str:
    return report.get("model", "?") + (f" + {report['adapter']}" if report.get("adapter") else "")


def compare(
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    patterns: list[str] | None = None,
    threshold: float = 0.0,
) -> Comparison:
    if threshold < 0:
        raise InputError(f"--threshold must be >= 0, got {threshold}")
    ma, mb = a.get("metrics", {}), b.get("metrics", {})
    names = sorted(set(ma) | set(mb))
    patterns = expand_patterns(list(patterns or []), names)
    for p in patterns:
        if not any(fnmatch.fnmatchcase(n, p) for n in names):
            raise InputError(
                f"--metric {p!r} matches no metric in either report; see the metric names in "
                f"report.json ('metrics'), e.g. {names[0] if names else 'none'}"
            )
    cmp = Comparison(_label(a), _label(b), threshold=threshold, patterns=patterns)
    cmp.incomplete = [n for n, r in (("A", a), ("B", b)) if r.get("complete") is False]
    for n in names:
        ra, rb = ma.get(n), mb.get(n)
        hib = (rb or ra or {}).get("higher_is_better")
        row = Row(n, ra["value"] if ra else None, rb["value"] if rb else None, hib)
        row.gated = any(fnmatch.fnmatchcase(n, p) for p in patterns)
        if row.gated:
            if row.b is None:
                row.regression = True
            elif row.a is not None and hib is not None:
                worse_by = (row.a - row.b) if hib else (row.b - row.a)
                row.regression = worse_by > threshold + 1e-12
        cmp.rows.append(row)
    return cmp


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def render(cmp: Comparison, *, only_changed: bool = False) -> str:
    lines = [
        f"A: {cmp.a_label}",
        f"B: {cmp.b_label}",
        "",
        *[f"warning: report {n} is from an interrupted run (partial)" for n in cmp.incomplete],
        "| metric | A | B | B − A | |",
        "|---|---:|---:|---:|---|",
    ]
    for r in cmp.rows:
        if only_changed and r.mark in ("=", "new", "gone") and not r.gated:
            continue
        mark = r.mark + (" **REGRESSION**" if r.regression else (" (gated)" if r.gated else ""))
        d = r.delta
        lines.append(
            f"| {r.name} | {_fmt(r.a)} | {_fmt(r.b)} | {'–' if d is None else f'{d:+.4g}'} | {mark} |"
        )
    lines.append("")
    if cmp.patterns:
        if cmp.ok:
            lines.append(f"Gate passed: no chosen metric got worse by more than {cmp.threshold:g}.")
        else:
            names = ", ".join(r.name for r in cmp.regressions)
            lines.append(
                f"Gate FAILED: {len(cmp.regressions)} chosen metric(s) regressed beyond {cmp.threshold:g}: {names}"
            )
    return "\n".join(lines)
