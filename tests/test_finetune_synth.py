"""Tutoring dialogues written from template moves (issue 15, item 4): a planted mistake, a move
that locates it and passes the verifiers, in the shared dialogue form the trainer reads."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from finetune.synth import (
    Problem,
    bank_problems,
    dialogue,
    gsm8k_problems,
    limit_dialogues,
    planted,
    synthesize,
)
from tutor.errors import InputError
from tutor.grading import mentions_answer
from tutor.verify.steps import parse_work

PROBLEM = Problem(
    "p1",
    "A shop sells pens at $3 each. Tom buys 4 pens and pays with $20. How much change does he get?",
    "4 pens cost 3*4 = <<3*4=12>>12 dollars.\nHis change is 20-12 = <<20-12=8>>8 dollars.",
    "8",
)


def test_a_slip_is_a_false_calculation_and_the_move_asks_to_redo_it() -> None:
    d = dialogue(PROBLEM, "slip", random.Random(1))
    assert d is not None and d["source"] == "synth" and d["problem"] == PROBLEM.text
    work = d["messages"][1]["content"]
    assert any(not s.holds for s in parse_work(work).steps)  # the planted mistake
    move = d["messages"][2]
    assert move["move"] == "focus" and "Work it out again" in move["content"]
    assert d["ground_truth"].endswith("\n8")


def test_a_wrong_operation_is_probed_with_the_students_own_number() -> None:
    d = dialogue(PROBLEM, "operation", random.Random(0))
    assert d is not None
    wrong = [s for s in parse_work(d["messages"][1]["content"]).steps if s.value not in (12, 8)]
    assert wrong and all(s.holds for s in wrong)  # worked out right, the wrong operation
    move = d["messages"][2]
    assert move["move"] == "probing" and f"the {wrong[0].value}" in move["content"]


def test_no_teacher_turn_states_the_answer_or_a_false_claim() -> None:
    from finetune.pairs import PairContext, rejection

    dialogues, counts = synthesize(bank_problems())
    assert len(dialogues) > 60 and counts["slip"] and counts["operation"]
    for d in dialogues:
        answer = d["ground_truth"].rsplit("\n", 1)[1]
        for i, m in enumerate(d["messages"]):
            if m["role"] != "teacher" or i == 0:
                continue
            assert not mentions_answer(m["content"], answer, prompt=d["problem"]), d["id"]
            ctx = PairContext([], m["content"], d["problem"], "", answer, "g", d["id"])
            assert rejection(m["content"], ctx, m["move"]) is None, d["id"]


def test_the_dialogues_load_as_training_data_and_as_labelled_moves(tmp_path: Path) -> None:
    from finetune.data import load_files
    from tutor.judge.data import load_moves

    dialogues, _ = synthesize(bank_problems()[:10])
    path = tmp_path / "synth.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in dialogues), encoding="utf-8")
    examples, reports = load_files([str(path)])
    assert reports[0].format == "dialogue" and len(examples) == len(dialogues)
    assert all(ex.problem and ex.moves[0] == "generic" for ex in examples)
    assert {m.label for m in load_moves(path)} <= {"focus", "probing", "generic"}


def test_a_solution_without_calculations_gets_no_dialogue() -> None:
    bare = Problem("p2", "Name the process by which plants make food.", "Photosynthesis.", "x")
    assert planted(bare, "slip", random.Random(0)) is None
    assert dialogue(bare, "operation", random.Random(0)) is None


def test_bad_gsm8k_records_name_the_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    good = {"question": "q?", "answer": "1+1 = <<1+1=2>>2\n#### 2"}
    for line, message in [
        ("{oops", "g.jsonl:2: not valid JSON"),
        (json.dumps({"answer": "#### 2"}), "g.jsonl:2: field 'question'"),
        (json.dumps({"question": "q", "answer": "2"}), "g.jsonl:2: field 'answer' must be"),
    ]:
        path.write_text(json.dumps(good) + "\n" + line + "\n", encoding="utf-8")
        with pytest.raises(InputError, match=message):
            gsm8k_problems(path)
    with pytest.raises(InputError, match="no such file"):
        gsm8k_problems(tmp_path / "none.jsonl")
    with pytest.raises(InputError, match="unknown mistake kind"):
        synthesize([PROBLEM], kinds=["typo"])


def test_the_synth_command_writes_dialogues(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tutor.cli import main

    g = tmp_path / "g.jsonl"
    g.write_text(
        json.dumps({"question": PROBLEM.text, "answer": PROBLEM.solution + "\n#### 8"}) + "\n"
    )
    out = tmp_path / "s.jsonl"
    assert main(["finetune", "synth", "--no-items", "--gsm8k", str(g), "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 2 and "2 dialogues from 1 problems" in capsys.readouterr().err


def test_limit_keeps_the_users_items_first_then_a_seeded_sample() -> None:
    dialogues = [{"id": f"d{i}", "problem_id": "own" if i % 5 == 0 else f"g{i}"} for i in range(20)]
    kept = limit_dialogues(dialogues, 6, {"own"}, seed=3)
    ids = [d["id"] for d in kept]
    assert len(ids) == 6 and {"d0", "d5", "d10", "d15"} <= set(ids)  # the 4 own ones
    assert ids == sorted(ids, key=lambda x: int(x[1:]))  # the input's order
    assert limit_dialogues(dialogues, 6, {"own"}, seed=3) == kept  # seeded
    assert limit_dialogues(dialogues, 6, {"own"}, seed=4) != kept
    assert limit_dialogues(dialogues, 0, {"own"}) == dialogues
    assert len(limit_dialogues(dialogues, 3, {"own"})) == 3  # fewer than the own ones
    with pytest.raises(InputError, match="--limit"):
        limit_dialogues(dialogues, -1, set())


def test_the_synth_command_limits_its_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tutor.cli import main

    out = tmp_path / "s.jsonl"
    assert main(["finetune", "synth", "--out", str(out), "--limit", "5"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 5 and all(r["problem_id"] for r in rows)
    assert "5 dialogues from" in capsys.readouterr().err
