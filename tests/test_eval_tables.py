"""docs/evals.md's tables come from the committed result files (``evals/results/*.json``), and
an eval run records its commit, date and machine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evals import tables as T
from evals.api import run_eval
from evals.results import FORMAT, compact, load_results
from evals.run import EvalOptions
from tutor.config import load_config

REPO = Path(__file__).resolve().parents[1]


def test_doc_tables_match_the_result_files() -> None:
    text = T.DOC.read_text(encoding="utf-8")
    names = re.findall(r"<!-- table:([\w-]+) -->\n", text)
    assert set(names) == set(T.TABLES), "every known table is in the doc, and only those"
    assert T.update(text, load_results()) == text, "run: python -m evals.tables"
    assert T.main(["--check"]) == 0


def test_result_files_record_commit_date_and_machine() -> None:
    results = load_results()
    assert {file for file, _, _ in T.TABLES.values()} <= set(results)
    for name, r in results.items():
        assert r["format"] == FORMAT and r["complete"] is True, name
        assert re.fullmatch(r"[0-9a-f]{7,40}", r["commit"]), f"{name}: commit {r['commit']}"
        for suite, s in r["suites"].items():
            run = s["run"]
            assert re.fullmatch(r"[0-9a-f]{7,40}", run["commit"]), f"{name}/{suite}: dirty tree"
            m = run["machine"]
            assert m["cpu_model"] and m["cores"] >= 1
            assert len(m["load_before"]) == 3 and len(m["load_after"]) == 3
        # compact: no per-item dumps, no absolute paths of the machine that ran it
        blob = json.dumps(r)
        assert '"items": {' not in blob and "/work/" not in blob and "/tmp/" not in blob
        assert (T.RESULTS_DIR / f"{name}.json").stat().st_size < 200_000


def test_check_fails_when_a_figure_differs(tmp_path: Path) -> None:
    result = {
        "format": FORMAT,
        "name": "eval-base",
        "commit": "abc1234",
        "created": "2026-12-04T16:00:00+0000",
        "suites": {
            "pedagogy": {
                "run": {"commit": "abc1234", "created": "2026-12-04T16:00:00+0000"},
                "tables": [
                    {
                        "title": "Tutor responses",
                        "columns": ["system", "n"],
                        "rows": [["agent", 40]],
                    }
                ],
            }
        },
    }
    (tmp_path / "eval-base.json").write_text(json.dumps(result))
    doc = tmp_path / "evals.md"
    doc.write_text("intro\n<!-- table:pedagogy -->\nold\n<!-- /table -->\nend\n")
    assert T.main(["--check", "--doc", str(doc), "--results", str(tmp_path)]) == 1
    assert T.main(["--doc", str(doc), "--results", str(tmp_path)]) == 0
    text = doc.read_text()
    assert "| agent | 40 |" in text and "commit abc1234, 2026-12-04" in text
    assert text.startswith("intro\n") and text.endswith("<!-- /table -->\nend\n")
    assert T.main(["--check", "--doc", str(doc), "--results", str(tmp_path)]) == 0
    result["suites"]["pedagogy"]["tables"][0]["rows"] = [["agent", 41]]
    (tmp_path / "eval-base.json").write_text(json.dumps(result))
    assert T.main(["--check", "--doc", str(doc), "--results", str(tmp_path)]) == 1


def test_unknown_table_or_missing_file_is_an_error() -> None:
    with pytest.raises(KeyError, match="does not know"):
        T.update("<!-- table:nope -->\n<!-- /table -->", {})
    with pytest.raises(KeyError, match="missing"):
        T.update("<!-- table:pedagogy -->\n<!-- /table -->", {})


def test_a_run_records_commit_date_and_machine(tmp_path: Path) -> None:
    config = load_config(None, {}, {"paths": {"home": str(tmp_path / "home")}})
    opts = EvalOptions(
        out=tmp_path / "out",
        suites=("learner-model",),
        sim_learners=10,
        progress=False,
        plots=False,
    )
    rep = run_eval(opts, config)
    m = rep["machine"]
    assert m["cores"] >= 1 and m["cpu_model"] and len(m["load_before"]) == 3
    run = rep["suites"]["learner-model"]["run"]
    assert run["machine"] == m and run["commit"] == rep["code_version"] != ""
    assert run["created"] == rep["created"]
    c = compact(rep, "x")
    assert c["machine"] == m and c["suites"]["learner-model"]["run"] == run
    # two simulated datasets: BKT-generated and tutor.kt_sim's learners
    assert "items" not in c and c["suites"]["learner-model"]["items"] == 2
    assert c["options"]["sim_learners"] == 10
