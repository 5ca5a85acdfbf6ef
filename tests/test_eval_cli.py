"""``tutor eval``: the compare gate, bad input at the CLI boundary, and a whole `eval all` run
through the command line with the model builders swapped for a MockModel and the hashing
embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.compare import compare
from evals.report import FORMAT
from knowledge_base.testing import HashEmbedder
from tests.test_eval_run import DIALOGUES, SAMPLE_QA
from tutor.cli import main
from tutor.testing.fake_lm import ScriptedGenerator


def fake_report(
    path: Path, metrics: dict[str, tuple[float, bool | None]], model: str = "m"
) -> Path:
    path.mkdir(parents=True)
    data = {
        "format": FORMAT,
        "model": model,
        "adapter": "",
        "metrics": {k: {"value": v, "higher_is_better": h} for k, (v, h) in metrics.items()},
    }
    (path / "report.json").write_text(json.dumps(data))
    return path


@pytest.fixture
def two_reports(tmp_path: Path) -> tuple[Path, Path]:
    a = fake_report(
        tmp_path / "a",
        {
            "pedagogy/agent/telling_rate": (0.10, False),
            "retrieval/qa/hybrid/recall@5": (0.90, True),
            "pedagogy/agent/words": (30.0, None),
            "grounding/citation_validity": (1.0, True),
        },
    )
    b = fake_report(
        tmp_path / "b",
        {
            "pedagogy/agent/telling_rate": (0.14, False),  # worse by 0.04
            "retrieval/qa/hybrid/recall@5": (0.93, True),  # better
            "pedagogy/agent/words": (41.0, None),  # no direction
            "learner-model/simulated/bkt-fitted/auc": (0.84, True),  # new
        },
        model="m+adapter",
    )
    return a, b


def test_compare_marks_differences(two_reports) -> None:
    from evals.report import load_report

    a, b = (load_report(p) for p in two_reports)
    cmp = compare(a, b)
    marks = {r.name: r.mark for r in cmp.rows}
    assert marks == {
        "pedagogy/agent/telling_rate": "▼",
        "retrieval/qa/hybrid/recall@5": "▲",
        "pedagogy/agent/words": "·",
        "learner-model/simulated/bkt-fitted/auc": "new",
        "grounding/citation_validity": "gone",
    }
    assert cmp.ok  # nothing gated


def test_compare_gate_exit_codes(two_reports, capsys) -> None:
    a, b = (str(p) for p in two_reports)
    # lower is better: 0.10 -> 0.14 is a regression beyond 0.02 ...
    assert (
        main(
            [
                "eval",
                "compare",
                a,
                b,
                "--metric",
                "pedagogy/agent/telling_rate",
                "--threshold",
                "0.02",
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    assert (
        "REGRESSION" in out
        and "Gate FAILED" in out
        and "| pedagogy/agent/telling_rate | 0.1 | 0.14 | +0.04 |" in out
    )
    # ... but not beyond 0.05
    assert (
        main(
            [
                "eval",
                "compare",
                a,
                b,
                "--metric",
                "pedagogy/agent/telling_rate",
                "--threshold",
                "0.05",
            ]
        )
        == 0
    )
    assert "Gate passed" in capsys.readouterr().out
    # higher is better and it improved; globs work (metric names have no glob characters)
    assert main(["eval", "compare", a, b, "--metric", "retrieval/*/recall@5"]) == 0
    assert main(["eval", "compare", a, b, "--metric", "pedagogy/agent/*"]) == 1
    # a gated metric missing from B fails; a pattern matching nothing is an error
    assert main(["eval", "compare", a, b, "--metric", "grounding/*"]) == 1
    capsys.readouterr()
    assert main(["eval", "compare", a, b, "--metric", "pedagogy/agent/telling_rte"]) == 2
    assert "matches no metric" in capsys.readouterr().err
    # swapping A and B turns the regression into an improvement
    assert (
        main(
            ["eval", "compare", b, a, "--metric", "pedagogy/agent/telling_rate", "--threshold", "0"]
        )
        == 0
    )


def test_compare_rejects_what_is_not_a_report(tmp_path: Path, capsys) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "report.json").write_text('{"hello": 1}')
    assert main(["eval", "compare", str(tmp_path / "x"), str(tmp_path / "nope")]) == 2
    assert "not a tutor eval report" in capsys.readouterr().err


def test_unknown_suite_and_missing_calibration_data(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["eval", "pedagogics"])
    assert e.value.code == 2 and "invalid choice: 'pedagogics'" in capsys.readouterr().err
    rc = main(["eval", "judge-calibration", "--home", str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 2 and "--calibration-data FILE" in capsys.readouterr().err


def test_bad_dataset_fails_before_any_model_loads(tmp_path: Path, capsys, monkeypatch) -> None:
    import tutor.builders

    def no_model(*a, **k):
        raise AssertionError("the model must not load before the inputs are checked")

    monkeypatch.setattr(tutor.builders, "build_generator", no_model)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(DIALOGUES[0])
        + "\n"
        + json.dumps({"id": "x", "messages": [{"role": "pupil", "content": "hi"}]})
        + "\n"
    )
    rc = main(
        [
            "eval",
            "pedagogy",
            "--home",
            str(tmp_path),
            "--data",
            str(bad),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and f"{bad}:2: field 'messages[0].role'" in err


@pytest.fixture
def fake_models(monkeypatch):
    import tutor.builders

    gen = ScriptedGenerator("Not quite. Look at the bottom numbers: what do you notice?")
    monkeypatch.setattr(tutor.builders, "build_generator", lambda config: gen)
    monkeypatch.setattr(tutor.builders, "build_embedder", lambda config: HashEmbedder())
    return gen


def test_eval_all_through_the_cli(tmp_path: Path, capsys, fake_models) -> None:
    data = tmp_path / "dialogues.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in DIALOGUES))
    args = [
        "eval", "all", "--home", str(tmp_path / "home"),
        "--data", str(data), "--sim-data", str(data), "--qa", SAMPLE_QA,
        "--limit", "2", "--sim-limit", "1", "--max-turns", "2", "--qa-limit", "4",
        "--grounding-limit", "1", "--keyfacts-limit", "1", "--sim-learners", "10", "--no-plots",
        "--set", "kb.min_score=0.05",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    for title in (
        "retrieval: Retrieval",
        "pedagogy: Tutor responses",
        "simulation: Simulated",
        "grounding: Grounding",
        "keyfacts: Explain key-fact correctness",
        "learner-model: P(correct)",
    ):
        assert title in out
    run_dir = tmp_path / "home" / "reports" / "all-smollm2-135m-instruct-tutoring"  # default LoRA
    report = json.loads((run_dir / "report.json").read_text())
    assert list(report["suites"]) == [
        "retrieval",
        "pedagogy",
        "simulation",
        "grounding",
        "keyfacts",
        "learner-model",
    ]
    assert report["config"]["lm"]["max_new_tokens"] == 60  # the eval's own short default
    # every metric can be named exactly in a --metric glob
    assert report["metrics"] and not any(set(n) & set("[]*?") for n in report["metrics"])
    calls = len(fake_models.calls)
    # the same command again resumes: nothing is generated twice
    assert main(args) == 0
    assert len(fake_models.calls) == calls
