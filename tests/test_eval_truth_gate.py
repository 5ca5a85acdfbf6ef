"""``tutor eval compare --metric @truth``: issue 13's measures gated at once (false affirmation,
false arithmetic, wrong-answer reveal, step telling, mistake located, key-fact correctness)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.compare import TRUTH_METRICS, compare
from evals.report import load_report
from tests.test_eval_cli import fake_report
from tutor.cli import main
from tutor.errors import InputError

BASE = {
    "pedagogy/agent/false_affirmation": (0.0, False),
    "pedagogy/agent/false_arithmetic": (0.0, False),
    "pedagogy/agent/mistake_located": (0.8, True),
    "keyfacts/in_course_correct": (0.9, True),
    "keyfacts/openstax/out_of_course_made_up": (0.0, False),
    "retrieval/qa/hybrid/recall@5": (0.9, True),
}


def reports(tmp_path: Path, changed: dict[str, tuple[float, bool | None]]) -> tuple[str, str]:
    b = {**BASE, **changed}
    return str(fake_report(tmp_path / "a", BASE)), str(fake_report(tmp_path / "b", b))


def test_the_preset_gates_every_truth_metric_in_the_reports(tmp_path: Path) -> None:
    a, b = reports(tmp_path, {})
    cmp = compare(load_report(a), load_report(b), patterns=["@truth"])
    gated = {r.name for r in cmp.rows if r.gated}
    assert gated == set(BASE) - {"retrieval/qa/hybrid/recall@5"} and cmp.ok
    assert "simulation/agent/mistake_located" in TRUTH_METRICS


@pytest.mark.parametrize(
    "changed",
    [
        {"pedagogy/agent/false_affirmation": (0.1, False)},
        {"pedagogy/agent/mistake_located": (0.5, True)},  # fewer mistakes located
        {"keyfacts/in_course_correct": (0.7, True)},
        {"keyfacts/openstax/out_of_course_made_up": (0.2, False)},
    ],
)
def test_a_truth_regression_fails_the_gate(tmp_path: Path, capsys, changed) -> None:
    a, b = reports(tmp_path, changed)
    assert main(["eval", "compare", a, b, "--metric", "@truth"]) == 1
    assert "Gate FAILED" in capsys.readouterr().out


def test_improvements_and_other_suites_pass(tmp_path: Path, capsys) -> None:
    a, b = reports(
        tmp_path,
        {
            "pedagogy/agent/mistake_located": (0.9, True),
            "retrieval/qa/hybrid/recall@5": (0.1, True),  # not a truth metric: not gated
        },
    )
    assert main(["eval", "compare", a, b, "--metric", "@truth"]) == 0
    assert "Gate passed" in capsys.readouterr().out


def test_the_preset_must_match_something(tmp_path: Path) -> None:
    a = fake_report(tmp_path / "a", {"retrieval/qa/hybrid/recall@5": (0.9, True)})
    with pytest.raises(InputError, match="@truth matches no metric"):
        compare(load_report(a), load_report(a), patterns=["@truth"])
