"""The move classifier (tutor.judge): data loading and its errors, the split by problem, the
cached-bottom training path, training and inference plumbing on a tiny random BERT built here,
save/load, the CLI, the eval report; and (slow) the shipped weights on obvious replies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tutor.errors import InputError, ModelNotFoundError
from tutor.judge.data import (
    MOVES,
    MoveExample,
    check_classes,
    final_answer,
    load_moves,
    split_by_problem,
)

WORDS = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] answer student problem what is the a next step check your "
    "work again hello hi how are you today it 4 5 2 + = ? . , : so equals because good bye "
    "(no message yet) look at first number why did"
).split()

# one reply per move, each unmistakable for a tiny model
REPLIES = {
    "focus": "check your work again , look at the first number .",
    "probing": "why did you do it ? what is the next step ?",
    "telling": "the answer is 4 because 2 + 2 = 4 .",
    "generic": "hello , how are you today ?",
}


def tiny_encoder(tmp_path: Path) -> Path:
    """A 2-layer random BERT and a word-level BERT tokenizer saved to ``tmp_path/enc``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    d = tmp_path / "enc"
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(str(d))
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(cfg, add_pooling_layer=False).save_pretrained(str(d))
    return d


def dialogue(qid: str, moves: list[str], answer: str = "4") -> dict:
    messages = []
    for i, m in enumerate(moves):
        messages.append({"role": "student", "content": f"it is {i}"})
        messages.append({"role": "teacher", "content": REPLIES[m], "move": m})
    return {
        "id": f"d-{qid}",
        "qid": qid,
        "problem": "what is 2 + 2 ?",
        "ground_truth": f"2 + 2 = 4\n {answer}",
        "messages": messages,
    }


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def toy_file(tmp_path: Path, problems: int = 40) -> Path:
    records = [dialogue(f"q{i}", list(MOVES)) for i in range(problems)]
    return write_jsonl(tmp_path / "toy.jsonl", records)


# -- data ------------------------------------------------------------------------------------


def test_load_moves_sees_the_students_last_turn_and_the_final_answer(tmp_path: Path) -> None:
    rec = dialogue("q1", ["generic", "telling"])
    rec["messages"].insert(0, {"role": "teacher", "content": "unlabelled opener"})
    ex = load_moves(write_jsonl(tmp_path / "d.jsonl", [rec]))
    assert [e.label for e in ex] == ["generic", "telling"]
    assert [e.student for e in ex] == ["it is 0", "it is 1"]
    assert ex[1].answer == "4" and ex[1].group == "q1" and ex[1].where.endswith("d.jsonl:1")
    assert final_answer("step\n\n 42 \n") == "42" and final_answer(None) == ""


def test_unknown_label_names_the_file_line_and_field(tmp_path: Path) -> None:
    rec = dialogue("q1", ["generic"])
    rec["messages"][1]["move"] = "lecturing"
    path = write_jsonl(tmp_path / "bad.jsonl", [dialogue("q0", ["focus"]), rec])
    with pytest.raises(
        InputError, match=r"bad\.jsonl:2: field 'messages\[1\]\.move' is 'lecturing'"
    ):
        load_moves(path)


def test_files_without_labels_or_with_bad_json_are_refused(tmp_path: Path) -> None:
    rec = dialogue("q1", ["generic"])
    del rec["messages"][1]["move"]
    with pytest.raises(InputError, match=r"nolabels\.jsonl: no teacher turn has a 'move'"):
        load_moves(write_jsonl(tmp_path / "nolabels.jsonl", [rec]))
    (tmp_path / "broken.jsonl").write_text('{"messages": [\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.jsonl:1: not valid JSON"):
        load_moves(tmp_path / "broken.jsonl")
    with pytest.raises(InputError, match="no such file"):
        load_moves(tmp_path / "missing.jsonl")


def test_split_is_by_problem_and_fixed_by_the_seed(tmp_path: Path) -> None:
    ex = load_moves(toy_file(tmp_path, problems=20))
    train, held = split_by_problem(ex, 0.25, seed=3)
    assert not {e.group for e in train} & {e.group for e in held}
    assert len({e.group for e in held}) == 5 and len(train) + len(held) == len(ex)
    assert split_by_problem(ex, 0.25, seed=3) == (train, held)
    assert split_by_problem(ex, 0.25, seed=4) != (train, held)
    with pytest.raises(InputError, match="between 0 and 1"):
        split_by_problem(ex, 1.0, seed=0)


def test_empty_split_and_missing_class_are_named(tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"held-out split of x\.jsonl is empty.*messages\[\]\.move"
    ):
        check_classes([], "the held-out split of x.jsonl")
    ex = load_moves(write_jsonl(tmp_path / "d.jsonl", [dialogue("q", ["focus", "generic"])]))
    with pytest.raises(
        InputError, match=r"no example of probing, telling in field 'messages\[\]\.move'"
    ):
        check_classes(ex, "the training split")


# -- model -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "top"), [("lora", 0), ("lora", 1), ("top", 1)])
def test_cached_bottom_plus_top_equals_the_full_forward(
    tmp_path: Path, method: str, top: int
) -> None:
    import torch

    from tutor.judge.model import JudgeSpec, MoveClassifier

    enc = tiny_encoder(tmp_path)
    model = MoveClassifier(JudgeSpec(base=str(enc), method=method, top_layers=top))
    ex = load_moves(toy_file(tmp_path, problems=2))
    model.net.eval()
    with torch.no_grad():
        full = model.logits(ex)
        cached = model.top_logits(model.cache(ex))
    assert torch.allclose(full, cached, atol=1e-5)
    tuned = {n.split(".")[0] for n, p in model.net.named_parameters() if p.requires_grad}
    assert tuned == {"encoder", "head"}


def test_spec_checks_name_the_bad_value() -> None:
    from tutor.judge.model import JudgeSpec

    with pytest.raises(InputError, match="'full'"):
        JudgeSpec(method="full")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="top_layers"):
        JudgeSpec(method="top", top_layers=0)


def test_derived_judgements_follow_the_documented_mapping() -> None:
    from tutor.judge.model import derive

    d = derive({"focus": 0.1, "probing": 0.2, "telling": 0.6, "generic": 0.1})
    assert d == {
        "tells": 0.6,
        "gives_guidance": 0.9,
        "identifies_mistake": 0.9,
        "is_actionable": pytest.approx(0.3),
    }


def test_training_learns_toy_moves_and_the_saved_weights_reload(tmp_path: Path) -> None:
    from tutor.judge.model import JudgeSpec, MoveClassifier
    from tutor.judge.train import TrainOptions, train

    enc = tiny_encoder(tmp_path)
    ex = load_moves(toy_file(tmp_path))
    opts = TrainOptions(epochs=8, batch_size=8, lr=3e-3, head_lr=1e-2, patience=8, threads=1)
    seen: list[dict] = []
    model = train(
        ex, JudgeSpec(base=str(enc), lora_r=4), opts, show_progress=False, on_epoch=seen.append
    )
    assert seen and seen[-1]["epoch"] <= 8 and model.record["val_macro_f1"] > 0.9
    j = model.judge(REPLIES["telling"], problem="what is 2 + 2 ?", student="it is 5", answer="4")
    assert j.move == "telling" and sum(j.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert set(j.derived) == {"tells", "gives_guidance", "identifies_mistake", "is_actionable"}
    path = model.save(tmp_path / "w" / "moves.json")
    again = MoveClassifier.load(path)
    assert again.spec == model.spec and again.record["best_epoch"] == model.record["best_epoch"]
    np.testing.assert_allclose(again.probabilities(ex[:8]), model.probabilities(ex[:8]), atol=1e-5)


def test_training_refuses_a_class_with_no_examples(tmp_path: Path) -> None:
    from tutor.judge.model import JudgeSpec
    from tutor.judge.train import train

    recs = [dialogue(f"q{i}", ["focus", "probing", "generic"]) for i in range(6)]
    ex = load_moves(write_jsonl(tmp_path / "notelling.jsonl", recs))
    with pytest.raises(InputError, match=r"notelling\.jsonl has no example of telling"):
        train(ex, JudgeSpec(base=str(tiny_encoder(tmp_path))), show_progress=False)


def test_loading_missing_or_foreign_weights_says_what_to_do(tmp_path: Path) -> None:
    from tutor.judge.model import MoveClassifier

    with pytest.raises(ModelNotFoundError, match="tutor judge train"):
        MoveClassifier.load(tmp_path / "none.json")
    (tmp_path / "x.json").write_text('{"format": "other"}', encoding="utf-8")
    (tmp_path / "x.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match="field 'format'"):
        MoveClassifier.load(tmp_path / "x.json")


# -- report and CLI --------------------------------------------------------------------------


def test_report_scores_the_classifier_cue_rules_and_majority() -> None:
    from evals.moves import cue_move, evaluate, tables

    def ex(reply: str, label: str) -> MoveExample:
        return MoveExample("What is 2 + 2?", "5", "4", reply, label, "g")

    held = [
        ex("The answer is 4.", "telling"),
        ex("Check your work again.", "focus"),
        ex("What do we do first?", "probing"),
        ex("Hello there", "generic"),
    ]
    assert [cue_move(e) for e in held] == ["telling", "focus", "probing", "generic"]
    probs = np.eye(4)[[2, 0, 1, 3]] * 0.7 + 0.075
    report = evaluate(probs, held, held[:1] + held[1:2] * 3, MOVES)
    assert report["systems"]["classifier"]["macro_f1"] == 1.0
    assert report["systems"]["majority (focus)"]["per_label"]["focus"] == pytest.approx(0.4)
    assert report["telling"]["final-answer check misses"] == 0
    assert report["ece"] == pytest.approx(0.225, abs=1e-3)
    moves_table, telling_table = tables(report, MOVES)
    assert moves_table["rows"][0][0] == "classifier" and len(telling_table["rows"]) == 2


def test_cli_trains_and_scores_with_a_tiny_encoder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tutor.cli import main

    enc, data = tiny_encoder(tmp_path), toy_file(tmp_path)
    out = tmp_path / "w" / "moves.json"
    common = ["--data", str(data), "--result", "", "--heldout", "0.25"]
    rc = main(
        [
            "judge",
            "train",
            *common,
            "--base",
            str(enc),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--threads",
            "1",
            "--quiet",
        ]
    )
    assert rc == 0 and out.is_file() and out.with_suffix(".safetensors").is_file()
    assert "classifier" in capsys.readouterr().out
    assert main(["judge", "eval", *common, "--model", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 40 and report["problems"] == 10
    assert set(report["systems"]) == {"classifier", "cue rules", "majority (focus)"}


def test_cli_names_the_file_for_unknown_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tutor.cli import main

    rec = dialogue("q1", ["generic"])
    rec["messages"][1]["move"] = "shouting"
    bad = write_jsonl(tmp_path / "bad.jsonl", [rec])
    assert main(["judge", "eval", "--data", str(bad), "--result", ""]) != 0
    assert "bad.jsonl:1: field 'messages[1].move' is 'shouting'" in capsys.readouterr().err


# -- the shipped weights ---------------------------------------------------------------------


@pytest.mark.slow
def test_shipped_weights_load_and_judge_obvious_replies() -> None:
    from tutor.judge.model import SHIPPED, MoveClassifier

    model = MoveClassifier.load(SHIPPED)
    problem = "Billy buys 4 pounds of candy at $1.5 a pound. How much does he spend?"
    student = "He spends 4 + 1.5 = 5.5 dollars."
    told = model.judge(
        "No. He spends 4 x 1.5 = 6 dollars, so the answer is 6.", problem, student, "6"
    )
    hello = model.judge(
        "Hi! Thanks for joining me today, see you next time.", problem, student, "6"
    )
    assert told.move == "telling" and told.derived["tells"] > 0.5
    assert hello.move == "generic" and hello.derived["gives_guidance"] < 0.5


def test_number_features_see_told_results() -> None:
    from tutor.judge.features import FEATURE_NAMES, features, numbers

    assert numbers("He pays $1,200.50 and 3.0 kg, 7") == {"1200.5", "3", "7"}
    told = MoveExample(
        "Billy has 10 and buys 40 at .05", "I got 3", "4", "So 10 - 6 = 4.", "telling", "g"
    )
    f = dict(zip(FEATURE_NAMES, features(told), strict=True))
    assert f["states_final_answer"] == 1.0 and f["has_equation"] == 1.0
    assert f["new_numbers"] == pytest.approx(np.log1p(2)) and f["asks_question"] == 0.0
    asked = MoveExample("Billy has 10", "I got 3", "4", "Why 3?", "probing", "g")
    f = dict(zip(FEATURE_NAMES, features(asked), strict=True))
    assert f["asks_question"] == 1.0 and f["new_numbers"] == 0.0 and f["states_final_answer"] == 0.0


def test_a_reply_longer_than_the_input_is_judged_by_its_end(tmp_path: Path) -> None:
    """Truncation cuts only the context and raised for a reply that alone fills the input."""
    from tutor.judge.model import JudgeSpec, MoveClassifier

    model = MoveClassifier(JudgeSpec(base=str(tiny_encoder(tmp_path)), max_length=32))
    long = " ".join(["step"] * 200) + " What do you get?"
    fitted = model.fit_reply(long)
    assert fitted.endswith("?") and len(fitted) < len(long)  # its end, closing question kept
    assert model.fit_reply("What do you get?") == "What do you get?"  # short ones untouched
    judged = model.judge(long, problem="2 + 3", student="6")
    assert abs(sum(judged.probabilities.values()) - 1) < 1e-3
