"""DPO from the verifiers (issue 15, item 5): contexts from an SFT run's training side, the checks
that reject a candidate, the pairs file and its errors, and a DPO run on a tiny random Llama
that saves an adapter the project's loaders, held-out split and CLI take."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from finetune.dpo import DPOSettings, run_dpo, split_pairs
from finetune.errors import RunExistsError
from finetune.heldout import heldout_records, run_split
from finetune.pairs import (
    PairContext,
    build_pairs,
    pair_contexts,
    read_pairs,
    rejection,
    write_pairs,
)
from finetune.recipe import run_finetune
from tests.test_finetune_train import make_config
from tutor.errors import InputError
from tutor.testing.tiny_llama import save_tiny_llama

PROBLEM = "Ann has 3 bags of 4 apples. How many apples does she have?"


def dialogue(i: int, *, telling: bool = False) -> dict[str, Any]:
    return {
        "id": f"d{i}",
        "problem": f"{PROBLEM} (case {i})",
        "ground_truth": "3 bags of 4 is 3 * 4 = 12\n 12",
        "messages": [
            {"role": "teacher", "content": "Hi, walk me through it.", "move": "generic"},
            {"role": "student", "content": "I added 3 and 4 to get 7."},
            {
                "role": "teacher",
                "content": "She has 12 apples." if telling else "What does 3 bags of 4 mean?",
                "move": "telling" if telling else "probing",
            },
            {"role": "student", "content": "Oh, 3 times 4."},
        ],
    }


def write_dialogues(path: Path, n: int) -> Path:
    rows = [dialogue(i, telling=(i % 4 == 3)) for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def context(chosen: str = "What does 3 bags of 4 mean?", answer: str = "12") -> PairContext:
    return PairContext(
        messages=[{"role": "system", "content": "guide"}, {"role": "user", "content": "7?"}],
        chosen=chosen,
        problem=PROBLEM,
        student="I added 3 and 4 to get 7.",
        answer=answer,
        group="g",
        source="f:1",
    )


class Recorder:
    """Returns the scripted replies in turn and records each call's options."""

    name, context_window = "recorder", 4096

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies, self.options = list(replies), []

    def count_tokens(self, messages: Sequence[Any]) -> int:
        return 1

    def stream(
        self, messages: Sequence[Any], *, cancel: threading.Event | None = None, **kw: Any
    ) -> Iterator[str]:
        self.options.append(kw)
        yield self.replies[(len(self.options) - 1) % len(self.replies)]


# -- contexts and checks ---------------------------------------------------------------------------
def test_contexts_take_learned_teacher_turns_after_a_student_turn(tmp_path: Path) -> None:
    from finetune.data import apply_telling, load_files

    examples, _ = load_files([str(write_dialogues(tmp_path / "d.jsonl", 4))])
    examples, _ = apply_telling(examples, "drop")
    ctxs = pair_contexts(examples, per_example=3)
    # the opening turn follows no student turn; the telling turn of d3 is not a target
    assert [c.chosen for c in ctxs] == ["What does 3 bags of 4 mean?"] * 3
    assert all(c.answer == "12" and c.student.startswith("I added") for c in ctxs)
    assert all(c.messages[-1]["role"] == "user" and c.messages[0]["role"] == "system" for c in ctxs)
    assert pair_contexts(examples, seed=1) == pair_contexts(examples, seed=1)


def test_a_limit_draws_contexts_from_every_file_in_order() -> None:
    from finetune.pairs import sample_contexts

    ctxs = [context(chosen=f"c{i}") for i in range(40)]
    drawn = sample_contexts(ctxs, 10, seed=2)
    assert len(drawn) == 10 and drawn == sorted(drawn, key=ctxs.index)
    assert drawn[-1] != ctxs[9]  # not just the first ten
    assert sample_contexts(ctxs, 0) == ctxs and sample_contexts(ctxs, 99) == ctxs


@pytest.mark.parametrize(
    ("reply", "move", "reason"),
    [
        ("So she has 12 apples in all.", "", "reveal"),
        ("Remember that 3 * 4 = 11.", "", "false_arithmetic"),
        ("That's right! Well done.", "", "judgement"),
        ("Multiply the bags by the apples in each.", "telling", "telling"),
        ("Okay.", "generic", "generic"),
        ("   ", "", "generic"),
        ("What does 3 bags of 4 mean?", "probing", None),
        ("Remember that 3 * 4 = 12.", "", "reveal"),
        ("Remember that 2 * 5 = 10.", "focus", None),
    ],
)
def test_rejection_names_the_first_check_a_reply_fails(
    reply: str, move: str, reason: str | None
) -> None:
    assert rejection(reply, context(), move) == reason


def test_without_a_known_answer_a_reply_cannot_be_a_reveal() -> None:
    assert rejection("So she has 12 apples in all.", context(answer=""), "") is None


# -- building pairs --------------------------------------------------------------------------------
def test_pairs_keep_the_first_rejected_candidate_and_sample_after_the_greedy_one() -> None:
    gen = Recorder(["Well done, that is right!", "So she has 12 apples."])
    pairs, stats = build_pairs(gen, [context(), context()], candidates=2)
    assert stats.contexts == 2 and stats.candidates == 4 and stats.pairs == 2
    assert pairs[0]["rejected"] == "Well done, that is right!" and pairs[0]["reason"] == "judgement"
    assert dict(stats.rejected) == {"judgement": 2, "reveal": 2}
    assert gen.options[0]["temperature"] == 0.0 and "seed" not in gen.options[0]
    assert gen.options[1]["seed"] == 1 and gen.options[1]["temperature"] > 0


def test_no_pair_when_every_candidate_passes_or_the_human_turn_fails() -> None:
    _, passing = build_pairs(Recorder(["What is 3 bags of 4?"]), [context()], candidates=1)
    assert passing.pairs == 0 and not passing.rejected
    human_reveals = context(chosen="She has 12 apples.")
    _, failing = build_pairs(Recorder(["Okay, so it is 12."]), [human_reveals], candidates=1)
    assert failing.pairs == 0 and dict(failing.chosen_failed) == {"reveal": 1}


def test_the_classifier_labels_the_human_turn_and_each_candidate() -> None:
    seen: list[list[str]] = []

    def moves(ctx: PairContext, replies: Sequence[str]) -> list[str]:
        seen.append(list(replies))
        return ["probing"] + ["generic"] * (len(replies) - 1)

    pairs, _ = build_pairs(Recorder(["Okay then."]), [context()], candidates=1, moves=moves)
    assert seen == [["What does 3 bags of 4 mean?", "Okay then."]]
    assert pairs[0]["reason"] == "generic"
    with pytest.raises(InputError, match="at least 1"):
        build_pairs(Recorder(["x"]), [context()], candidates=0)


# -- the pairs file --------------------------------------------------------------------------------
def good_pair(**over: Any) -> dict[str, Any]:
    p = {
        "prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "chosen": "What do you notice?",
        "rejected": "The answer is 12.",
        "reason": "reveal",
        "group": "g",
    }
    return {**p, **over}


def test_pairs_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    write_pairs(path, [good_pair(), good_pair(group="")])
    back = read_pairs(path)
    assert back[0] == good_pair() and back[1]["group"] == f"{path}:2"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"p.jsonl:2: not valid JSON"),
        ("[1, 2]", r"p.jsonl:2: must be a JSON object"),
        (json.dumps(good_pair(prompt=[])), r"p.jsonl:2: field 'prompt' must be a non-empty"),
        (
            json.dumps(good_pair(prompt=[{"role": "bot", "content": "x"}])),
            r"field 'prompt\[0\]\.role' must be one of system, user, assistant",
        ),
        (
            json.dumps(good_pair(prompt=[{"role": "assistant", "content": "x"}])),
            r"must end with a user turn",
        ),
        (json.dumps(good_pair(rejected="")), r"field 'rejected' must be non-empty text"),
        (json.dumps(good_pair(rejected="What do you notice?")), r"are the same reply"),
        (json.dumps(good_pair(reason="rude")), r"field 'reason' is 'rude'"),
    ],
)
def test_bad_pairs_name_the_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(good_pair()) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_pairs(path)


def test_an_empty_or_missing_pairs_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="has no pairs"):
        read_pairs(tmp_path / "empty.jsonl")
    with pytest.raises(InputError, match="no such pairs file"):
        read_pairs(tmp_path / "nope.jsonl")


def test_the_pair_split_holds_out_whole_problems() -> None:
    pairs = [good_pair(group=f"g{i % 5}", chosen=f"c{i}") for i in range(20)]
    train, val = split_pairs(pairs, 0.2, seed=3)
    assert len(train) + len(val) == 20 and val
    assert not {p["group"] for p in train} & {p["group"] for p in val}
    assert split_pairs(pairs, 0.0, 3) == (pairs, [])


def test_a_long_prompt_loses_its_oldest_turns_not_the_system_prompt_or_the_last(
    tiny_llama_dir: Path,
) -> None:
    from transformers import AutoTokenizer

    from finetune.dpo import fit_prompt

    tok = AutoTokenizer.from_pretrained(str(tiny_llama_dir))
    turns = [{"role": "system", "content": "be kind"}]
    for i in range(6):
        turns += [{"role": "user", "content": f"a b c {i} " * 8}]
        turns += [{"role": "assistant", "content": f"d e f {i} " * 8}]
    turns.append({"role": "user", "content": "last one"})
    fitted, dropped = fit_prompt(turns, ["ok then", "no"], tok, 120)
    assert dropped > 0 and fitted[0] == turns[0] and fitted[-1] == turns[-1]
    assert fitted[1:] == turns[1 + dropped :]
    text = tok.apply_chat_template(
        [*fitted, {"role": "assistant", "content": "ok then"}], tokenize=False
    )
    assert len(tok(text, add_special_tokens=False)["input_ids"]) <= 120
    assert fit_prompt(turns, ["ok"], tok, 10_000) == (turns, 0)
    tiny_budget, _ = fit_prompt(turns, ["ok"], tok, 5)
    assert tiny_budget == [turns[0], turns[-1]]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InputError, match="beta"):
        DPOSettings(beta=0)
    with pytest.raises(InputError, match="eval_fraction"):
        DPOSettings(eval_fraction=1.0)


# -- a DPO run on a tiny model ---------------------------------------------------------------------
@pytest.fixture
def sft_run(tmp_path: Path) -> tuple[Any, Path, Path]:
    tiny = save_tiny_llama(tmp_path / "tiny")
    data = write_dialogues(tmp_path / "dialogues.jsonl", 12)
    config = make_config(tmp_path / "home", tiny, [data], max_steps=2, eval_fraction=0.25)
    result = run_finetune(config)
    return config, result.run_dir, data


def lora_tensors(adapter: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(adapter / "adapter_model.safetensors"))


def test_dpo_trains_the_sft_adapter_on_pairs_and_keeps_the_split(
    tmp_path: Path, sft_run: tuple[Any, Path, Path]
) -> None:
    config, sft_dir, _ = sft_run
    _, train, val = run_split(sft_dir)
    held = {ex.group for ex in val}
    ctxs = pair_contexts(train)
    assert ctxs and not {c.group for c in ctxs} & held  # held-out problems stay out
    pairs = [
        good_pair(prompt=c.messages, chosen=c.chosen, rejected="She has 12 apples.", group=c.group)
        for c in ctxs
    ]
    path = tmp_path / "pairs.jsonl"
    write_pairs(path, pairs)
    settings = DPOSettings(
        learning_rate=5e-2,
        max_steps=4,
        batch_size=2,
        grad_accum=1,
        eval_steps=2,
        max_length=256,
        dtype="float32",  # the same on CPUs with and without native bf16
    )
    result = run_dpo(config, sft_run=sft_dir, pairs_file=path, run_name="dpo", settings=settings)
    m = result.metrics
    assert m["global_step"] == 4 and m["pairs"] == len(pairs) and m["eval_pairs"] > 0
    assert m["eval_after"]["rewards/margins"] > m["eval_before"]["rewards/margins"]
    assert json.loads((result.adapter_dir / "adapter_config.json").read_text())["r"] == 8
    before, after = lora_tensors(sft_dir / "adapter"), lora_tensors(result.adapter_dir)
    assert before.keys() == after.keys()  # the "ref" copy is not saved
    assert any((before[k] - after[k]).abs().sum() > 0 for k in before)
    assert heldout_records(result.run_dir) == heldout_records(sft_dir)
    assert "DPO run dpo" in (result.run_dir / "card.md").read_text()
    assert not (result.run_dir / "checkpoints").exists()
    with pytest.raises(RunExistsError, match="--overwrite"):
        run_dpo(config, sft_run=sft_dir, pairs_file=path, run_name="dpo", settings=settings)
    short = DPOSettings(max_length=64, dtype="float32")
    with pytest.raises(InputError, match="raise --max-length"):
        run_dpo(config, sft_run=sft_dir, pairs_file=path, run_name="d2", settings=short)
    with pytest.raises(InputError, match="SFT run itself"):
        run_dpo(config, sft_run=sft_dir, pairs_file=path, run_name=sft_dir.name, settings=settings)


def test_the_pairs_command_reads_the_run_and_writes_a_file(
    sft_run: tuple[Any, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from tutor.cli import main

    config, sft_dir, data = sft_run
    _, train, _ = run_split(sft_dir)
    own = len(pair_contexts(train))
    home = str(config.paths.home)
    code = main(
        ["--home", home, "finetune", "pairs", "--run", sft_dir.name, "--limit", "2",
         "--candidates", "1", "--max-new-tokens", "4", "--no-classifier"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and out.strip() == str(sft_dir / "pairs.jsonl")
    assert json.loads(err.strip().splitlines()[-1])["contexts"] == 2
    assert (sft_dir / "pairs.jsonl").is_file()
    # --data: every dialogue of the run's files again, the held-out problems left out
    code = main(
        ["--home", home, "finetune", "pairs", "--run", sft_dir.name, "--data", str(data),
         "--candidates", "1", "--max-new-tokens", "4", "--no-classifier", "--out",
         str(sft_dir / "more.jsonl")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0 and json.loads(err.strip().splitlines()[-1])["contexts"] == 2 * own


def test_a_stopped_dpo_run_resumes_from_its_checkpoint(
    tmp_path: Path, sft_run: tuple[Any, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import finetune.dpo as dpo
    from finetune.errors import TrainingInterrupted
    from finetune.trainer import StopOnSignal
    from tutor.errors import NotFoundError

    class CtrlCAtStep2(StopOnSignal):  # as if Ctrl-C came during step 2
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            self.requested = self.requested or state.global_step >= 2
            return super().on_step_end(args, state, control, **kw)

    config, sft_dir, _ = sft_run
    _, train, _ = run_split(sft_dir)
    pairs = [
        good_pair(prompt=c.messages, chosen=c.chosen, rejected="It is 12.", group=c.group)
        for c in pair_contexts(train)
    ]
    path = tmp_path / "pairs.jsonl"
    write_pairs(path, pairs)
    settings = DPOSettings(
        max_steps=4, batch_size=2, grad_accum=1, eval_steps=2, max_length=256, dtype="float32"
    )
    kw = {"sft_run": sft_dir, "pairs_file": path, "run_name": "dpo", "settings": settings}
    with pytest.raises(NotFoundError, match="nothing to resume"):
        run_dpo(config, resume=True, **kw)
    monkeypatch.setattr(dpo, "StopOnSignal", CtrlCAtStep2)
    with pytest.raises(TrainingInterrupted, match="--resume"):
        run_dpo(config, **kw)
    monkeypatch.undo()
    run = config.paths.runs_dir / "dpo"
    assert (run / "checkpoints" / "checkpoint-2").is_dir() and not (run / "adapter").exists()
    before = json.loads((run / "eval_before.json").read_text())
    result = run_dpo(config, resume=True, **kw)
    assert result.metrics["global_step"] == 4 and (run / "adapter").is_dir()
    assert result.metrics["eval_before"]["loss"] == round(before["eval_loss"], 4)
