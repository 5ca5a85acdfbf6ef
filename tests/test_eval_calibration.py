"""judge-calibration on human-labelled MRBench-form files: V1 (``annotation``) and the V2 /
BEA-2025 form (``tutor_responses`` with ``annotations``, several annotators' labels, repeated
``conversation_id``s). Labels are never dropped silently: unknown fields are counted by name,
a response with no readable label makes the report not complete, bad labels are errors that
name file, line and field. The rules need no model; no LM judge runs here."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from evals.api import run_eval
from evals.datasets import DatasetError, load_contexts
from evals.labels import LabelError, read_labels
from tests.test_eval_run import config, dialogues, opts  # noqa: F401 (fixtures)
from tutor.cli import main
from tutor.testing.fake_lm import ScriptedGenerator

HISTORY = "Tutor: What is 1/2 + 1/4?\nStudent: 2/6"


def v2_record(cid: str, responses: dict) -> dict:
    return {
        "conversation_id": cid,
        "conversation_history": HISTORY,
        "Ground_Truth_Solution": "1/2 = 2/4, 2/4 + 1/4 = 3/4",
        "tutor_responses": responses,
    }


# three records share conversation_id "c1"; labels in every accepted shape
V2 = [
    v2_record(
        "c1",
        {
            "Sonnet": {
                "response": "Not quite. What is 1/2 in quarters?",
                "annotations": {
                    "Mistake_Identification": ["Yes", "Yes", "No"],  # majority Yes
                    "Providing_Guidance": ["Yes", "To some extent"],  # tie: no label
                    "Actionability": "Yes",
                },
            },
            "Expert": {
                "response": "Great job!",
                "annotations": [  # one object per annotator
                    {"Mistake_Identification": "No", "Actionability": "No"},
                    {"Mistake_Identification": "No", "Actionability": "No"},
                ],
            },
        },
    ),
    v2_record(
        "c1",
        {
            "Sonnet": {
                "response": "Check your denominators.",
                "annotation": {"Mistake_Location": "Yes"},
            }
        },
    ),
    v2_record(
        "c1",
        {"Sonnet": {"response": "Check the 2/6.", "Annotations": {"Mistake_Location": "No"}}},
    ),
]


def write(path: Path, records: list) -> Path:
    path.write_text(json.dumps(records, indent=1))
    return path


def test_v2_form_repeated_ids_and_several_annotators(tmp_path: Path) -> None:
    a, b, c = load_contexts(write(tmp_path / "v2.json", V2))
    assert [x.id for x in (a, b, c)] == ["c1", "c1#2", "c1#3"]
    assert {x.meta["conversation_id"] for x in (a, b, c)} == {"c1"}
    assert a.meta["line"] < b.meta["line"] < c.meta["line"]
    sonnet, expert = a.responses
    assert sonnet.labels == {"mistake_identification": "Yes", "actionability": "Yes"}
    assert sonnet.votes["mistake_identification"] == ["Yes", "Yes", "No"]
    assert sonnet.ties == ["providing_guidance"] and sonnet.annotation_field == "annotations"
    assert expert.labels == {"mistake_identification": "No", "actionability": "No"}
    assert expert.votes["actionability"] == ["No", "No"]
    assert b.responses[0].labels == c.responses[0].labels | {"mistake_location": "Yes"}
    assert c.responses[0].labels == {"mistake_location": "No"}
    # a literal "c1#2" later in the file does not collide with the generated one
    more = [*V2[:2], v2_record("c1#2", V2[1]["tutor_responses"])]
    assert [x.id for x in load_contexts(write(tmp_path / "v2b.json", more))] == [
        "c1",
        "c1#2",
        "c1#2#2",
    ]


def test_read_labels_counts_unknown_fields() -> None:
    r = read_labels({"Mistake_Identification": "yes", "Explanation": "x", "Notes": 1}, "a")
    assert r.labels == {"mistake_identification": "Yes"} and r.unknown == ["Explanation", "Notes"]
    with pytest.raises(LabelError, match=r"a\[1\] must be an object"):
        read_labels([{"Coherence": "Yes"}, "Yes"], "a")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"annotations": {"Mistake_Identification": ["Yes", "Maybe"]}},
            "annotations.Mistake_Identification",
        ),
        ({"annotations": {"Mistake_Identification": []}}, "annotations.Mistake_Identification"),
        ({"annotations": "Yes"}, "annotations"),
        ({"annotation": {}, "annotations": {}}, ""),
        (
            {"annotation": {"Revealing_of_the_Answer": "No", "Revealing_Answer": "No"}},
            "annotation.Revealing_Answer",
        ),
        (
            {"annotations": [{"Coherence": "Yes"}, {"Coherence": {"a": 1}}]},
            "annotations[1].Coherence",
        ),
    ],
)
def test_bad_labels_name_file_line_and_field(tmp_path: Path, body: dict, field: str) -> None:
    recs = [V2[1], v2_record("c9", {"T": {"response": "Hm.", **body}})]
    p = write(tmp_path / "bad.json", recs)
    line = p.read_text().splitlines().index(" {", 2) + 1  # the second record's first line
    with pytest.raises(DatasetError) as e:
        load_contexts(p)
    full = "tutor_responses.T" + (f".{field}" if field else "")
    assert f"{p}:{line}: field '{full}'" in str(e.value)


def test_both_response_keys_is_an_error(tmp_path: Path) -> None:
    rec = dict(V2[1], anno_llm_responses=V2[1]["tutor_responses"])
    with pytest.raises(DatasetError, match=r"v\.json:2: field 'tutor_responses' and"):
        load_contexts(write(tmp_path / "v.json", [rec]))


def calibrate(tmp_path: Path, data: Path, config: Any, out: str = "run") -> dict:  # noqa: F811
    o = opts(
        tmp_path / out,
        data,
        suites=("judge-calibration",),
        calibration_data=[str(data)],
    )
    return run_eval(o, config, generator=ScriptedGenerator("unused"))


def test_calibration_on_the_v2_form_resumes_per_record(tmp_path: Path, config: Any) -> None:  # noqa: F811
    data = write(tmp_path / "v2.json", V2)
    rep = calibrate(tmp_path, data, config)
    items = rep["items"]["judge-calibration"]
    # every labelled response of every record is its own item, repeated ids included
    assert sorted((r["context_id"], r["tutor"]) for r in items) == [
        ("c1", "Expert"),
        ("c1", "Sonnet"),
        ("c1#2", "Sonnet"),
        ("c1#3", "Sonnet"),
    ]
    assert {r["conversation_id"] for r in items} == {"c1"}
    assert rep["complete"] is True and rep["interrupted"] is False
    s = rep["suites"]["judge-calibration"]
    read = s["summary"]["read"]["v2.json"]
    assert read["records"] == 3 and read["responses"] == 4 and read["repeated_ids"] == 2
    dims = read["dimensions"]
    assert dims["mistake_identification"] == {
        "labels": 2,
        "several": 2,
        "unanimous": 1,
        "ties": 0,
        "without": 2,
    }
    assert dims["providing_guidance"]["ties"] == 1 and dims["providing_guidance"]["labels"] == 0
    assert dims["mistake_location"]["labels"] == 2
    # the rules' MI agreement counts both MI labels: "Not quite" -> Yes, "Great job!" -> No
    assert s["summary"]["rules"]["mistake_identification"]["n"] == 2
    assert s["summary"]["rules"]["mistake_identification"]["accuracy"] == 1.0
    table = next(t for t in s["tables"] if t["title"] == "Human labels read")
    assert ["v2.json", "Mistake identification", 2, 2, 1, 0, 2] in table["rows"]
    # the same command again: every item resumes, nothing collapses
    again = calibrate(tmp_path, data, config)
    assert again["resumed_items"] == 4 and again["items"] == rep["items"]


def test_unread_labels_make_the_report_incomplete(
    tmp_path: Path,
    config: Any,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    recs = [
        V2[1],
        v2_record(
            "c2", {"Typo": {"response": "Hm.", "annotations": {"Mistake_Identifcation": "Yes"}}}
        ),
        v2_record("c3", {"Bare": {"response": "Try again."}}),
    ]
    data = write(tmp_path / "partial.json", recs)
    with caplog.at_level(logging.WARNING, logger="evals.calibration"):
        rep = calibrate(tmp_path, data, config)
    assert rep["complete"] is False and rep["interrupted"] is False
    unread = rep["suites"]["judge-calibration"]["incomplete"]
    assert len(unread) == 2
    assert (
        "partial.json:" in unread[0]
        and "Typo: annotations fields Mistake_Identifcation" in unread[0]
    )
    assert "Bare: has no 'annotation' or 'annotations' field" in unread[1]
    read = rep["suites"]["judge-calibration"]["summary"]["read"]["partial.json"]
    assert read["unknown_fields"] == {"Mistake_Identifcation": 1}
    assert "Mistake_Identifcation (1)" in caplog.text
    # the readable record is still calibrated; the report says why it is not complete
    assert [r["context_id"] for r in rep["items"]["judge-calibration"]] == ["c1"]
    md = (tmp_path / "run" / "report.md").read_text()
    assert "**complete**: NO (input not read: judge-calibration: 2" in md
    assert "- **not read**" in md and "Mistake_Identifcation" in md


def test_cli_exits_1_when_labels_were_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = v2_record("c3", {"Bare": {"response": "Try again.", "annotation": {}}})
    data = write(tmp_path / "bare.json", [V2[1], bare])
    argv = ["eval", "judge-calibration", "--calibration-data", str(data), "--no-plots"]
    rc = main([*argv, "--home", str(tmp_path / "h"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1 and "Bare: annotation has no labels" in err and "not complete" in err


def test_a_later_command_keeps_an_incomplete_suite_incomplete(tmp_path: Path) -> None:
    from evals.report import keep_earlier_suites

    cal = {"incomplete": ["f.json: labels not read: f.json:3 T: ..."]}
    old = {"config_hash": "h", "complete": False, "interrupted": False}
    old |= {"suites": {"judge-calibration": cal}, "items": {}, "metrics": {}}
    path = write(tmp_path / "report.json", old)  # type: ignore[arg-type]

    def new() -> dict:
        return {"config_hash": "h", "complete": True, "suites": {}, "items": {}, "metrics": {}}

    merged = new()
    keep_earlier_suites(merged, path)
    assert merged["suites"] == {"judge-calibration": cal} and merged["complete"] is False
    # an interrupted earlier run (or an old report without 'interrupted') is not merged
    without_flag = {k: v for k, v in old.items() if k != "interrupted"}
    for earlier in (old | {"interrupted": True}, without_flag):
        write(path, earlier)  # type: ignore[arg-type]
        merged = new()
        keep_earlier_suites(merged, path)
        assert merged["suites"] == {} and merged["complete"] is True
