"""The move classifier as the evals' offline judge (``tutor eval --judge classifier``): the
dimensions it labels, the ones it leaves alone, and how the CLI and the eval run find it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.datasets import DialogueContext, Turn
from tests.test_judge import tiny_encoder


class FixedModel:
    """A classifier stand-in with fixed move probabilities."""

    def __init__(self, probs: dict[str, float]) -> None:
        self.probs = probs
        self.seen: list[tuple[str, str, str, str]] = []

    def judge(self, reply: str, problem: str = "", student: str = "", answer: str = "") -> object:
        from tutor.judge.model import Judgement, derive

        self.seen.append((reply, problem, student, answer))
        return Judgement(
            max(self.probs, key=self.probs.__getitem__), self.probs, derive(self.probs)
        )


def ctx() -> DialogueContext:
    history = [Turn("teacher", "What is 2 + 2?"), Turn("student", "It is 5.")]
    return DialogueContext(id="c", source="t", history=history, problem="2 + 2?", answer="4")


def test_classifier_judge_labels_only_the_dimensions_its_moves_map_to() -> None:
    from evals.move_judge import ClassifierJudge

    probing = FixedModel({"focus": 0.2, "probing": 0.6, "telling": 0.1, "generic": 0.1})
    labels = ClassifierJudge(probing).label_all(ctx(), "What do you get if you add again?")
    assert labels == {
        "mistake_identification": "Yes",
        "providing_guidance": "Yes",
        "actionability": "Yes",
    }
    assert probing.seen == [("What do you get if you add again?", "2 + 2?", "It is 5.", "4")]
    generic = FixedModel({"focus": 0.1, "probing": 0.1, "telling": 0.1, "generic": 0.7})
    judge = ClassifierJudge(generic)
    assert set(judge.label_all(ctx(), "Hello!").values()) == {"No"}
    assert judge.label_all(ctx(), "Hi", ("actionability", "coherence")) == {"actionability": "No"}
    assert judge.available and judge.calls == 2


def test_eval_cli_builds_the_classifier_judge_spec(tmp_path: Path) -> None:
    from tutor.cli import build_parser
    from tutor.cli.eval import options_from_args
    from tutor.config import load_config

    config = load_config(None, {}, {"paths": {"home": str(tmp_path / "home")}})
    args = build_parser().parse_args(
        ["eval", "pedagogy", "--judge", "classifier", "--judge-weights", "w/moves.json"]
    )
    opts = options_from_args(args, config)
    assert opts.judge["backend"] == "classifier"
    assert opts.judge["weights"] == str((Path("w") / "moves.json").resolve())


def test_eval_run_loads_the_classifier_judge_from_weights(tmp_path: Path) -> None:
    from evals.move_judge import ClassifierJudge
    from evals.run import EvalOptions, EvalRun
    from tutor.config import load_config
    from tutor.judge.model import JudgeSpec, MoveClassifier

    model = MoveClassifier(JudgeSpec(base=str(tiny_encoder(tmp_path)), lora_r=2))
    weights = model.save(tmp_path / "w" / "moves.json")
    config = load_config(None, {}, {"paths": {"home": str(tmp_path / "home")}})
    judge = {"model": "classifier", "backend": "classifier", "weights": str(weights)}
    run = EvalRun(EvalOptions(suites=("pedagogy",), out=tmp_path / "r", judge=judge), config)
    try:
        assert isinstance(run.judge, ClassifierJudge)
        labels = run.judge.label_all(ctx(), "check your work again .")
        assert set(labels) == {"mistake_identification", "providing_guidance", "actionability"}
    finally:
        run.close()


@pytest.mark.parametrize("name", ["classifier", "other"])
def test_tables_name_the_judge_that_labelled(name: str) -> None:
    from evals.pedagogy import judge_title

    class Run:
        judge = type("J", (), {"name": name})()

    assert judge_title(Run()) == ("move classifier" if name == "classifier" else "LM judge")  # type: ignore[arg-type]


def test_result_file_renders_the_doc_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    import evals.results
    from evals.moves import evaluate, write_result
    from evals.tables import render
    from tutor.judge.data import MOVES, MoveExample
    from tutor.judge.model import JudgeSpec

    class Model:
        spec = JudgeSpec(lora_r=4, temperature=1.3)
        record = {
            "seconds": 12.0,
            "best_epoch": 2,
            "history": [{}, {}, {}],
            "val_macro_f1": 0.5,
            "trained_params": 1234,
            "load_before": [0.5, 0.4, 0.3],
        }

    held = [
        MoveExample("p", "s", "4", r, lab, "g")
        for r, lab in [
            ("The answer is 4.", "telling"),
            ("Hello", "generic"),
            ("Check it", "focus"),
            ("What next?", "probing"),
        ]
    ]
    report = evaluate(np.full((4, 4), 0.25), held, held, MOVES)
    report["inference_ms_per_turn"] = 3.0
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x" * 2_000_000)
    monkeypatch.setattr(evals.results, "RESULTS_DIR", tmp_path / "results")
    path = write_result(report, Model(), "judge-moves", "/somewhere/mathdial.jsonl", 0.1, weights)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "/somewhere" not in path.read_text(encoding="utf-8")
    assert data["suites"]["judge"]["run"]["machine"]["load_before"] == [0.5, 0.4, 0.3]
    results = {"judge-moves": data}
    assert "| classifier |" in render("judge-moves", results)
    assert "| 2.0 MB | 12 s | 2 of 3 |" in render("judge-training", results)
    assert "AMD" in render("judge-runs", results) or "cores" in render("judge-runs", results)
    assert "final-answer check" in render("judge-telling", results)


def test_judge_commit_is_dirty_only_for_the_judges_own_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import subprocess

    import evals.report
    from evals.moves import judge_commit

    monkeypatch.setattr(evals.report, "code_version", lambda: "abc1234+dirty")

    def status(lines: str) -> None:
        out = subprocess.CompletedProcess([], 0, stdout=lines, stderr="")
        monkeypatch.setattr(subprocess, "run", lambda *a, **k: out)

    status(" M finetune/recipe.py\n M docs/evals.md\n")
    assert judge_commit() == ("abc1234", ["docs/evals.md", "finetune/recipe.py"])
    status(" M tutor/judge/model.py\n")
    assert judge_commit() == ("abc1234+dirty", ["tutor/judge/model.py"])
    monkeypatch.setattr(evals.report, "code_version", lambda: "abc1234")
    assert judge_commit() == ("abc1234", [])
