"""Fine-tuning data: every adapter, its errors (file, line, field), dedupe, split, recipes."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from finetune.data import dedupe, load_file, prepare_examples, split_by_problem
from finetune.errors import DataError
from finetune.formats import detect_format, gsm8k_answer, parse_mathdial_conversation
from tutor.config import FinetuneConfig, load_config
from tutor.errors import ConfigError
from tutor.prompts import HINT_LADDER, ProblemState, PromptPassage, system_prompt

REPO = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def one(path: Path, **kw) -> list[dict]:
    examples, _ = load_file(path, **kw)
    assert len(examples) == 1
    return examples[0].messages


GUIDE = system_prompt("guide", problem=ProblemState(problem="What is 1/2 + 1/4?"))
SOLUTION = system_prompt(
    "guide", problem=ProblemState(problem="What is 2 + 2?", hint_level=len(HINT_LADDER) - 1)
)


# -- adapters --------------------------------------------------------------------------------------
def test_openai_messages_keep_own_system_and_flatten_content_parts(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "What is 2 + 2?"}]},
                    {"role": "assistant", "content": "4"},
                    {"role": "user", "content": "thanks"},  # trailing user turn: dropped
                ]
            }
        ],
    )
    assert one(f) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4"},
    ]


def test_openai_without_system_gets_the_prompt_builders(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": "What is 2 + 2?"},
                    {"role": "assistant", "content": "4"},
                ]
            },
            {
                "problem": "What is 1/2 + 1/4?",
                "messages": [
                    {"role": "user", "content": "2/6?"},
                    {"role": "assistant", "content": "Not quite."},
                ],
            },
        ],
    )
    examples, report = load_file(f)
    assert report.format == "openai"
    assert examples[0].messages[0] == {"role": "system", "content": SOLUTION}
    assert examples[1].messages[0] == {"role": "system", "content": GUIDE}


def test_sharegpt_roles_are_mapped(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {
                "conversations": [
                    {"from": "human", "value": "What is 2 + 2?"},
                    {"from": "gpt", "value": "4"},
                ]
            }
        ],
    )
    msgs = one(f)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
    assert msgs[0]["content"] == SOLUTION and msgs[2]["content"] == "4"


def test_alpaca_joins_instruction_and_input(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "al.jsonl",
        [{"instruction": "Add the numbers.", "input": "3 and 4", "output": "7"}],
    )
    msgs = one(f)
    assert msgs[1] == {"role": "user", "content": "Add the numbers.\n\n3 and 4"}
    assert msgs[2] == {"role": "assistant", "content": "7"}


def test_qa_with_passages_uses_explain_mode_with_numbered_sources(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {
                "prompt": "What is a fraction?",
                "response": "A part of a whole [1].",
                "context": "A fraction names a part of a whole.",
            }
        ],
    )
    msgs = one(f)
    passages = [PromptPassage(1, "reference", "A fraction names a part of a whole.")]
    assert msgs[0]["content"] == system_prompt("explain", passages=passages)
    # qa_mode=explain without passages is the builder's no-sources explain prompt
    g = write_jsonl(tmp_path / "qa2.jsonl", [{"question": "What is 2 + 2?", "answer": "4"}])
    assert one(g, qa_mode="explain")[0]["content"] == system_prompt("explain")
    assert one(g)[0]["content"] == SOLUTION


def test_gsm8k_drops_calculator_notes_and_states_the_answer(tmp_path: Path) -> None:
    answer = "She sold 48/2 = <<48/2=24>>24 in May.\nIn all 48+24 = <<48+24=72>>72.\n#### 72"
    assert (
        gsm8k_answer(answer) == "She sold 48/2 = 24 in May.\nIn all 48+24 = 72.\nThe answer is 72."
    )
    f = write_jsonl(tmp_path / "g.jsonl", [{"question": "How many clips?", "answer": answer}])
    examples, report = load_file(f)
    assert report.format == "gsm8k"
    assert examples[0].messages[2]["content"].endswith("The answer is 72.")


def test_dialogue_teacher_turns_become_assistant_turns(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {
                "id": "d1",
                "problem": "What is 1/2 + 1/4?",
                "messages": [
                    {"role": "teacher", "content": "Hi, how did you start?", "move": "generic"},
                    {"role": "student", "content": "I added the tops."},
                    {"role": "student", "content": "And the bottoms."},
                    {"role": "teacher", "content": "What size are the pieces?", "move": "probing"},
                    {"role": "teacher", "content": "Look at the denominators."},
                    {"role": "student", "content": "Quarters!"},
                ],
            }
        ],
    )
    examples, report = load_file(f)
    ex = examples[0]
    assert report.format == "dialogue" and ex.id == "d1"
    assert ex.messages == [
        {"role": "system", "content": GUIDE},
        {"role": "assistant", "content": "Hi, how did you start?"},
        {"role": "user", "content": "I added the tops.\nAnd the bottoms."},
        {"role": "assistant", "content": "What size are the pieces?\nLook at the denominators."},
    ]
    assert ex.moves == ("generic", "probing")


TELLING_DIALOGUE = {
    "problem": "What is 1/2 + 1/4?",
    "messages": [
        {"role": "teacher", "content": "How did you start?", "move": "generic"},
        {"role": "student", "content": "I added the tops."},
        {"role": "teacher", "content": "What size are the pieces?", "move": "probing"},
        {"role": "student", "content": "I do not know."},
        {"role": "teacher", "content": "Make them quarters: 2/4 + 1/4.", "move": "telling"},
        {"role": "student", "content": "3/4!"},
        {"role": "teacher", "content": "Why quarters?", "move": "focus"},
    ],
}


@pytest.mark.parametrize("policy", ["drop", "prompt", "keep"])
def test_telling_turns_are_not_learned_under_the_never_tell_prompt(tmp_path: Path, policy) -> None:
    f = write_jsonl(tmp_path / "d.jsonl", [TELLING_DIALOGUE])
    cfg = FinetuneConfig(data=[str(f)], eval_fraction=0, telling_turns=policy)
    train, _, stats = prepare_examples(cfg)
    assert stats.telling == 1 and stats.moves["telling"] == 1
    learned = {
        (ex.messages[0]["content"], ex.messages[i]["content"])
        for ex in train
        for i in (ex.targets if ex.targets is not None else range(len(ex.messages)))
        if ex.messages[i]["role"] == "assistant"
    }
    tell = "Make them quarters: 2/4 + 1/4."
    guided = {text for prompt, text in learned if prompt == GUIDE}
    assert guided >= {"How did you start?", "What size are the pieces?", "Why quarters?"}
    assert (tell in guided) == (policy == "keep")
    step = system_prompt("guide", problem=ProblemState("What is 1/2 + 1/4?", hint_level=2))
    assert "Show one worked step" in step
    assert {text for prompt, text in learned if prompt == step} == (
        {tell} if policy == "prompt" else set()
    )
    # the telling turn stays in every copy as context
    assert all(any(m["content"] == tell for m in ex.messages) for ex in train)
    assert FinetuneConfig().telling_turns == "drop"


def test_mathdial_original_json_and_csv_columns(tmp_path: Path) -> None:
    conv = (
        "Teacher: (generic)Hi Sam, talk me through it|EOM|Sam: I got 2/6.|EOM|"
        "Teacher: (focus)|EOM|Teacher: (probing)Are the pieces the same size?|EOM|Sam: No."
    )
    assert parse_mathdial_conversation(conv) == [
        ("assistant", "Hi Sam, talk me through it", "generic"),
        ("user", "I got 2/6.", ""),
        ("assistant", "Are the pieces the same size?", "probing"),
        ("user", "No.", ""),
    ]
    row = {
        "qid": "7",
        "scenario": "1",
        "question": "What is 1/2 + 1/4?",
        "ground_truth": "3/4",
        "student_incorrect_solution": "2/6",
        "self-correctness": "Yes",
        "conversation": conv,
    }
    j = write_jsonl(tmp_path / "m.jsonl", [row])
    c = tmp_path / "m.csv"
    with c.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
    for path in (j, c):
        examples, report = load_file(path)
        assert report.format == "mathdial"
        assert examples[0].messages[0] == {"role": "system", "content": GUIDE}
        assert [m["role"] for m in examples[0].messages] == [
            "system",
            "assistant",
            "user",
            "assistant",
        ]
        assert examples[0].moves == ("generic", "probing")
        assert examples[0].id == "7"


def test_json_array_files_report_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    f.write_text(
        '[\n  {"question": "q1", "answer": "a1"},\n  {"question": "q2",\n   "answer": 5}\n]\n'
    )
    with pytest.raises(DataError, match=r"a\.json:3: answer: must be text, got int"):
        load_file(f)


def test_detect_format() -> None:
    assert detect_format({"messages": [{"role": "teacher", "content": "x"}]}) == "dialogue"
    assert detect_format({"messages": [{"role": "user", "content": "x"}]}) == "openai"
    assert detect_format({"conversations": []}) == "sharegpt"
    assert detect_format({"instruction": "x", "output": "y"}) == "alpaca"
    assert detect_format({"question": "x", "answer": "y\n#### 3"}) == "gsm8k"
    assert detect_format({"question": "x", "answer": "y"}) == "qa"
    assert detect_format({"question": "x", "conversation": "Teacher: hi"}) == "mathdial"
    assert detect_format({"text": "x"}) is None


# -- errors name file, line and field ---------------------------------------------------------------
@pytest.mark.parametrize(
    "record, fmt, pattern",
    [
        (
            {"messages": [{"role": "bot", "content": "hi"}]},
            "auto",
            r"messages\[0\]\.role: unknown role 'bot'",
        ),
        ({"messages": [{"role": "user", "content": "hi"}]}, "auto", r"messages: has no assistant"),
        (
            {"messages": [{"role": "student", "content": "hi"}]},
            "auto",
            r"messages: has no assistant \(teacher\)",
        ),
        (
            {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]},
            "auto",
            r"messages\[0\]\.content: is empty",
        ),
        (
            {"conversations": [{"from": "alien", "value": "x"}]},
            "auto",
            r"conversations\[0\]\.from: unknown role 'alien'",
        ),
        ({"instruction": "x", "output": None}, "alpaca", r"output: is missing"),
        ({"question": "x"}, "qa", r"answer: is missing"),
        ({"question": "x", "answer": "no final line"}, "gsm8k", r"answer: has no final '####"),
        (
            {"question": "x", "conversation": "no speaker here"},
            "mathdial",
            r"conversation \(turn 1\): no 'Speaker:'",
        ),
        ({"problem": 3, "messages": []}, "dialogue", r"problem: must be text"),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path: Path, record, fmt, pattern) -> None:
    f = write_jsonl(tmp_path / "bad.jsonl", [record])
    with pytest.raises(DataError, match=r"bad\.jsonl:1: " + pattern):
        load_file(f, data_format=fmt)


def test_file_level_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="empty.jsonl is empty"):
        load_file(empty)
    with pytest.raises(DataError, match="does not exist"):
        load_file(tmp_path / "missing.jsonl")
    txt = tmp_path / "data.txt"
    txt.write_text("hello")
    with pytest.raises(DataError, match=r"unsupported file type \.txt"):
        load_file(txt)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "a", "answer": "b"}\n{"question": \n')
    with pytest.raises(DataError, match=r"broken\.jsonl:2: not valid JSON"):
        load_file(broken)
    unknown = write_jsonl(tmp_path / "unknown.jsonl", [{"text": "plain text"}])
    with pytest.raises(DataError, match=r"unknown\.jsonl:1: cannot tell the data format .*text"):
        load_file(unknown)
    with pytest.raises(DataError, match="no training data"):
        prepare_examples(FinetuneConfig())


def test_wrong_format_names_the_missing_field_and_the_format(tmp_path: Path) -> None:
    chats = write_jsonl(
        tmp_path / "chats.jsonl",
        [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}],
    )
    with pytest.raises(DataError, match=r"chats\.jsonl:1: instruction: is missing \(alpaca"):
        load_file(chats, data_format="alpaca")
    with pytest.raises(DataError, match=r"chats\.jsonl:1: question: is missing \(gsm8k"):
        load_file(chats, data_format="gsm8k")
    alpaca = write_jsonl(tmp_path / "alpaca.jsonl", [{"instruction": "a", "output": "b"}])
    with pytest.raises(
        DataError, match=r"alpaca\.jsonl:1: messages: must be a list of turns \(openai"
    ):
        load_file(alpaca, data_format="openai")


def test_skip_invalid_counts_and_keeps_the_good_records(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"question": "q1", "answer": "a1"},
            {"question": "q2"},
            {"question": "q3", "answer": "a3"},
        ],
    )
    examples, report = load_file(f, skip_invalid=True)
    assert len(examples) == 2 and report.invalid == 1
    assert report.first_error.startswith(f"{f}:2: answer: is missing")
    bad = write_jsonl(tmp_path / "allbad.jsonl", [{"question": "q2"}])
    with pytest.raises(DataError, match="no usable example"):
        load_file(bad, data_format="qa", skip_invalid=True)


def test_skip_invalid_skips_lines_that_are_not_json_or_have_extra_cells(tmp_path: Path) -> None:
    f = tmp_path / "broken.jsonl"
    good = json.dumps({"question": "q1", "answer": "a1"})
    f.write_text(f'{{"question": \n{good}\nnot json at all\n{good.replace("1", "3")}\n')
    with pytest.raises(DataError, match=r"broken\.jsonl:1: not valid JSON .*skip_invalid"):
        load_file(f)
    examples, report = load_file(f, skip_invalid=True)
    assert [e.messages[1]["content"] for e in examples] == ["q1", "q3"]
    assert report.records == 4 and report.invalid == 2 and report.examples == 2
    assert report.first_error.startswith(f"{f}:1: not valid JSON")
    rows = tmp_path / "rows.csv"
    rows.write_text("question,answer\nq1,a1\nq2,a2,extra\nq3,a3\n")
    examples, report = load_file(rows, skip_invalid=True)
    assert len(examples) == 2 and report.invalid == 1
    assert report.first_error == f"{rows}:3: more cells than header columns"


def test_max_examples_takes_the_first_n(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "q.jsonl", [{"question": f"q{i}", "answer": "a"} for i in range(9)])
    examples, _ = load_file(f, max_examples=3)
    assert [e.messages[1]["content"] for e in examples] == ["q0", "q1", "q2"]


# -- dedupe and split ------------------------------------------------------------------------------
def test_dedupe_ignores_whitespace_and_keeps_the_first(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "q.jsonl",
        [
            {"question": "What is  2+2?", "answer": "4"},
            {"question": "What is 2+2?", "answer": "4 "},
            {"question": "What is 2+2?", "answer": "four"},
        ],
    )
    examples, _ = load_file(f)
    unique, dropped = dedupe(examples)
    assert dropped == 1 and [e.source for e in unique] == [f"{f}:1", f"{f}:3"]


def test_split_by_problem_never_leaks_a_problem(tmp_path: Path) -> None:
    # The same word problem as a GSM8K pair and a tutoring dialogue (MathDial uses GSM8K
    # problems): both must land on the same side.
    records = []
    for i in range(30):
        records.append({"question": f"Problem number {i}?", "answer": f"Work.\n#### {i}"})
    dialogues = [
        {
            "problem": f"problem   number {i}?",
            "messages": [
                {"role": "student", "content": "help"},
                {"role": "teacher", "content": f"hint {k}"},
            ],
        }
        for i in range(30)
        for k in range(2)
    ]
    g = write_jsonl(tmp_path / "g.jsonl", records)
    d = write_jsonl(tmp_path / "d.jsonl", dialogues)
    cfg = FinetuneConfig(data=[str(g), str(d)], eval_fraction=0.2, seed=1)
    train, val, stats = prepare_examples(cfg)
    assert {e.group for e in train}.isdisjoint({e.group for e in val})
    assert stats.eval_groups == 6 and stats.train_groups == 24
    assert len(val) == 6 * 3 and len(train) == 24 * 3
    # stable: the same seed gives the same split
    assert [e.source for e in prepare_examples(cfg)[1]] == [e.source for e in val]


def test_split_needs_two_problems(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "q.jsonl", [{"question": "same", "answer": str(i)} for i in range(4)]
    )
    examples, _ = load_file(f)
    with pytest.raises(DataError, match="share one problem"):
        split_by_problem(examples, 0.1, 0)
    assert split_by_problem(examples, 0.0, 0) == (examples, [])


def test_eval_files_remove_overlapping_problems_from_train(tmp_path: Path) -> None:
    tr = write_jsonl(
        tmp_path / "train.jsonl",
        [{"question": f"q{i}", "answer": "a"} for i in range(5)]
        + [{"question": "held out", "answer": "another answer"}],
    )
    ev = write_jsonl(
        tmp_path / "eval.jsonl",
        [{"question": "held out", "answer": "x"}, {"question": "q0", "answer": "a"}],
    )
    train, val, stats = prepare_examples(FinetuneConfig(data=[str(tr)], eval_data=[str(ev)]))
    assert len(val) == 2 and stats.duplicates == 1 and stats.leaked == 1
    assert {e.messages[1]["content"] for e in train} == {"q1", "q2", "q3", "q4"}
    assert "1 duplicates dropped, 1 train examples dropped" in stats.render()


# -- real data ---------------------------------------------------------------------------------------
def test_shared_and_project_data_load(shared_data: Path) -> None:
    expected = {
        "dialogues/mathdial_sample.jsonl": "dialogue",
        "dialogues/bridge_train_sample.jsonl": "dialogue",
        "dialogues/cima_sample.jsonl": "dialogue",
        "qa/gsm8k_train_sample.jsonl": "gsm8k",
    }
    for rel, fmt in expected.items():
        examples, report = load_file(shared_data / rel)
        assert report.format == fmt and report.invalid == 0
        assert report.examples == report.records == len(examples)
        assert all(e.messages[0]["role"] == "system" and e.assistant_turns for e in examples)
    examples, report = load_file(REPO / "data/dialogues/tutoring_sample.jsonl")
    assert report.format == "dialogue" and len(examples) >= 20
    assert all(e.moves for e in examples)


# -- config ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_checked_in_recipes_load(path: Path) -> None:
    cfg = load_config(path, env={})
    ft = cfg.finetune
    assert ft.run_name and ft.data and ft.base_model
    if "qlora" in path.name:
        assert ft.qlora and ft.gradient_checkpointing and ft.dtype == "bfloat16"
    else:
        assert not ft.qlora
        assert all((REPO / p).is_file() for p in ft.data)


def test_both_recipes_exist() -> None:
    names = {p.name for p in (REPO / "configs").glob("*.toml")}
    assert {"cpu-smollm2-lora.toml", "gpu-qlora-1.7b.toml"} <= names


def test_recipe_file_names_state_the_model_size() -> None:
    """A recipe named for a size (``-1.7b``) trains a model of that size."""
    for path in (REPO / "configs").glob("*.toml"):
        size = re.search(r"-(\d+(?:\.\d+)?[bm])\.toml$", path.name)
        if size:
            model = load_config(path, env={}).finetune.base_model.lower()
            assert f"-{size.group(1)}" in model, (path.name, model)


@pytest.mark.parametrize(
    "values, pattern",
    [
        ({"lora_r": 0}, "finetune.lora_r must be > 0, got 0"),
        ({"run_name": "a/b"}, "finetune.run_name must be .* got 'a/b'"),
        ({"lora_dropout": 1.5}, "finetune.lora_dropout must be within 0..1, got 1.5"),
        ({"max_steps": 0}, "finetune.max_steps must be -1 .* got 0"),
        ({"eval_fraction": 1.0}, "finetune.eval_fraction must be within 0..1, got 1.0"),
        ({"max_length": 8}, "finetune.max_length must be >= 16, got 8"),
        ({"resume": True, "overwrite": True}, "cannot both be true"),
        ({"data_format": "csv"}, "finetune.data_format .* must be one of"),
    ],
)
def test_config_checks_name_the_bad_value(values, pattern) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(env={}, file_values={"finetune": values})


def test_cli_overrides_reach_the_finetune_section() -> None:
    from tutor.cli import build_parser, resolve_config

    args = build_parser().parse_args(
        [
            "finetune",
            "train",
            "--data",
            "a.jsonl",
            "b.jsonl",
            "--qlora",
            "--max-steps",
            "5",
            "--no-packing",
        ]
    )
    cfg = resolve_config(args)
    assert cfg.finetune.data == ["a.jsonl", "b.jsonl"]
    assert cfg.finetune.qlora is True and cfg.finetune.packing is False
    assert cfg.finetune.max_steps == 5


def test_stats_render_is_readable() -> None:
    from finetune.data import DataStats, FileReport

    s = DataStats(files=[FileReport("x.jsonl", "dialogue", "0" * 64, 3, 3)], moves={"focus": 2})
    s.train_tokens, s.train_label_tokens = 100, 25
    text = s.render()
    assert "x.jsonl (dialogue): 3 records -> 3 examples" in text and "25% labelled" in text
