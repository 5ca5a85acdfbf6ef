"""The move classifier as the evals' offline judge (``tutor eval --judge classifier``): the
dimensions it labels, the ones it leaves alone, and how the CLI and the eval run find it."""

from __future__ import annotations

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
