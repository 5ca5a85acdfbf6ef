"""Eval data readers: dialogue contexts (shared dialogue form, MRBench form), attempt logs, and
bad input named by file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.datasets import (
    DatasetError,
    final_answer,
    load_attempts,
    load_contexts,
    parse_columns,
    parse_history,
)
from tutor.errors import InputError

MRBENCH_FORM = [
    {
        "conversation_id": "hm-1",
        "conversation_history": "Tutor: What is 1/2 + 1/4?\nStudent: I think it is 2/6\nbecause I added both parts.",
        "Data": "Handmade",
        "Split": "test",
        "Topic": "fractions",
        "Ground_Truth_Solution": "1/2 is 2/4, and 2/4 + 1/4 = 3/4\n 3/4",
        "anno_llm_responses": {
            "Expert": {
                "response": "Nice try! What is 1/2 in quarters?",
                "annotation": {
                    "Mistake_Identification": "Yes",
                    "Mistake_Location": "To some extent",
                    "Revealing_of_the_Answer": "No",
                    "Providing_Guidance": "Yes",
                    "Actionability": "Yes",
                    "Coherence": "Yes",
                    "Tutor_Tone": "Encouraging",
                    "humanlikeness": "Yes",
                },
            },
            "TutorA": {
                "response": "The answer is 0.75.",
                "annotation": {
                    "Revealing_of_the_Answer": "Yes (and the revealed answer is correct)"
                },
            },
        },
    },
    {
        "conversation_id": "hm-2",
        "conversation_history": "Tutor: Name a 5-sided polygon.\nStudent: an octagon",
        "Data": "Handmade",
        "Ground_Truth_Solution": "Not Available",
        "tutor_responses": {"B": {"response": "Count the sides again.", "annotation": {}}},
    },
]


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_mathdial_context_cut_after_the_students_explanation(shared_data: Path) -> None:
    contexts = load_contexts(shared_data / "dialogues" / "mathdial_sample.jsonl")
    assert len(contexts) == 196
    c = next(x for x in contexts if x.id == "mathdial-test-L0005-q6000057")
    assert [t.role for t in c.history] == ["teacher", "student"]
    assert c.answer == "4" and c.wrong_answer == "2"
    assert "2 pounds of candy" in c.last_student
    assert c.reference.startswith("Okay - let's revisit")
    assert all(x.ends_with_student and x.answer for x in contexts)


def test_bridge_and_cima_cuts(shared_data: Path) -> None:
    skipped: list[str] = []
    bridge = load_contexts(shared_data / "dialogues" / "bridge_train_sample.jsonl", skipped=skipped)
    assert len(bridge) + len(skipped) == 336 and len(skipped) == 1
    assert ":301: field 'messages'" in skipped[0]
    assert all(c.ends_with_student and c.reference and not c.answer for c in bridge)
    with pytest.raises(DatasetError, match=r"bridge_train_sample.jsonl:301: field 'messages'"):
        load_contexts(shared_data / "dialogues" / "bridge_train_sample.jsonl")
    cima = load_contexts(shared_data / "dialogues" / "cima_sample.jsonl")
    assert all(c.ends_with_student and c.reference and c.answer for c in cima)


def test_expert_response_index_and_reference(tmp_path: Path) -> None:
    rec = {
        "id": "b1",
        "source": "bridge",
        "problem": None,
        "ground_truth": None,
        "expert_response_index": 2,
        "messages": [
            {"role": "teacher", "content": "What is 4 x 3?"},
            {"role": "student", "content": "7"},
            {"role": "teacher", "content": "Did you add or multiply?", "move": "ask_question"},
            {"role": "student", "content": "12"},
        ],
    }
    (c,) = load_contexts(write_jsonl(tmp_path / "b.jsonl", [rec]))
    assert c.last_student == "7" and c.reference == "Did you add or multiply?" and c.answer == ""


def test_mrbench_form_with_labels_and_line_numbers(tmp_path: Path) -> None:
    p = tmp_path / "mr.json"
    p.write_text(json.dumps(MRBENCH_FORM, indent=2))
    a, b = load_contexts(p)
    assert a.id == "hm-1" and a.source == "mrbench:handmade" and a.answer == "3/4"
    assert [t.role for t in a.history] == ["teacher", "student"]
    assert a.last_student == "I think it is 2/6\nbecause I added both parts."
    expert = a.responses[0]
    assert expert.tutor == "Expert" and expert.labels["mistake_location"] == "To some extent"
    assert expert.labels["humanlikeness"] == "Yes" and len(expert.labels) == 8
    assert a.responses[1].labels == {"revealing_answer": "Yes (correct)"}
    assert b.answer == "" and b.responses[0].text == "Count the sides again."
    assert b.meta["line"] > a.meta["line"] > 1
    # JSONL works the same
    assert [c.id for c in load_contexts(write_jsonl(tmp_path / "mr.jsonl", MRBENCH_FORM))] == [
        "hm-1",
        "hm-2",
    ]


def test_parse_history_speakers_and_continuations() -> None:
    turns = parse_history("Tutor: hi\nMariana: 3/8\nmore of it\nTeacher: why?")
    assert [(t.role, t.content) for t in turns] == [
        ("teacher", "hi"),
        ("student", "3/8\nmore of it"),
        ("teacher", "why?"),
    ]


@pytest.mark.parametrize(
    ("records", "where"),
    [
        (
            [{"id": "x", "messages": [{"role": "robot", "content": "hi"}]}],
            ":1: field 'messages[0].role'",
        ),
        ([{"id": "x", "messages": "hello"}], ":1: field 'messages'"),
        (
            [
                {"id": "ok", "messages": [{"role": "student", "content": "a"}]},
                {"id": "y", "messages": [{"role": "student", "content": 3}]},
            ],
            ":2: field 'messages[0].content'",
        ),
        ([{"id": "x", "conversation_history": 5}], ":1: field 'conversation_history'"),
        (
            [
                {
                    "conversation_history": "Student: 2/6",
                    "anno_llm_responses": {
                        "T": {"response": "x", "annotation": {"Mistake_Identification": "Maybe"}}
                    },
                }
            ],
            ":1: field 'anno_llm_responses.T.annotation.Mistake_Identification'",
        ),
        ([{"question": "not a dialogue"}], ":1: field '(record)'"),
        (
            [
                {"id": "d", "messages": [{"role": "student", "content": "a"}]},
                {"id": "d", "messages": [{"role": "student", "content": "b"}]},
            ],
            ":2: field 'id'",
        ),
    ],
)
def test_wrong_form_names_file_line_and_field(tmp_path: Path, records: list, where: str) -> None:
    p = write_jsonl(tmp_path / "bad.jsonl", records)
    with pytest.raises(DatasetError) as e:
        load_contexts(p)
    assert str(e.value).startswith(str(p)) and where in str(e.value)
    assert isinstance(e.value, InputError)  # the CLI turns it into a one-line message


def test_invalid_json_line_and_array(tmp_path: Path) -> None:
    p = tmp_path / "broken.jsonl"
    p.write_text('{"id": "a", "messages": [{"role": "student", "content": "hi"}]}\n{"id": \n')
    with pytest.raises(DatasetError, match=r"broken.jsonl:2: field '\(line\)' is not valid JSON"):
        load_contexts(p)
    q = tmp_path / "broken.json"
    q.write_text('[\n {"conversation_history": "Student: hi"},\n {"conversation_history": \n]')
    with pytest.raises(DatasetError, match=r"broken.json:4"):
        load_contexts(q)
    with pytest.raises(InputError, match="does not exist"):
        load_contexts(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    ("solution", "answer"),
    [
        ("He spent $2.\nHe bought 4 pounds\n 4", "4"),
        ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"),
        ("So the total is 1,250", "1250"),
        ("The answer is 3/4", "3/4"),
        ("Not Available", ""),
        ("", ""),
    ],
)
def test_final_answer(solution: str, answer: str) -> None:
    assert final_answer(solution) == answer


def test_attempt_log_with_column_mapping(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("user,kc,ok,ts\nu1,frac,1,2\nu1,frac,0,1\nu2,dec,true,5\n")
    rows = load_attempts(p, "learner=user,skill=kc,correct=ok,order=ts")
    assert [(r.learner, r.skill, r.correct) for r in rows] == [
        ("u1", "frac", False),  # ordered by ts within the learner
        ("u1", "frac", True),
        ("u2", "dec", True),
    ]
    j = tmp_path / "log.jsonl"
    j.write_text('{"learner": "a", "skill": "s", "correct": 1, "order": "2024-01-01T10:00:00"}\n')
    assert load_attempts(j)[0].correct is True


def test_attempt_log_errors(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("user,kc,ok\nu1,frac,maybe\n")
    with pytest.raises(DatasetError, match=r"log.csv:2: field 'ok' must be 0/1"):
        load_attempts(p, "learner=user,skill=kc,correct=ok")
    with pytest.raises(DatasetError, match=r"log.csv:1: field 'learner' is not a column"):
        load_attempts(p)
    with pytest.raises(InputError, match="unknown role 'student'"):
        parse_columns("student=user")
    assert parse_columns("")["skill"] == "skill"
