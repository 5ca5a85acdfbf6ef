"""docs/benchmarks.md's tables are what the result files in benchmarks/results/ give
(``benchmarks/tables.py --check``), and the check catches a figure edited by hand."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"


def _module(name: str):  # type: ignore[no-untyped-def]
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tables = _module("tables")
results = _module("results")


def test_docs_tables_match_their_result_files() -> None:
    doc = REPO / "docs" / "benchmarks.md"
    blocks = tables.BLOCK.findall(doc.read_text(encoding="utf-8"))
    assert len(blocks) >= 10, "docs/benchmarks.md lost its generated tables"
    for _, stem, _, _, _ in blocks:
        path = REPO / "benchmarks" / "results" / f"{stem}.json"
        if stem != "qlora_gpu":  # the GPU table stays pending until a GPU run
            assert path.is_file(), f"{path} missing"
    assert tables.main(["--check"]) == 0


def test_check_fails_on_a_hand_edited_figure(tmp_path: Path) -> None:
    rec = results.Recorder("demo", {"n": 3})
    rec.latency("turn", [0.010, 0.020, 0.030], scale=1000)
    rec.table("t", ["kind", "p50 ms"], [["all", "20.0"]], align="lr")
    path = rec.write(tmp_path)
    data = json.loads(path.read_text())
    assert data["latency"]["turn"]["n"] == 3 and data["latency"]["turn"]["p50"] == 20.0
    assert data["git"]["commit"] and "cpu" in data["machine"] and data["load_before"]

    doc = tmp_path / "doc.md"
    doc.write_text("Intro.\n\n<!-- table:demo/t -->\nold\n<!-- /table -->\n\nEnd.\n")
    args = ["--doc", str(doc), "--results", str(tmp_path)]
    assert tables.main([*args, "--check"]) == 1
    assert tables.main(args) == 0
    text = doc.read_text()
    assert "| all | 20.0 |" in text and "demo.json" in text and text.endswith("End.\n")
    assert tables.main([*args, "--check"]) == 0
    doc.write_text(text.replace("| all | 20.0 |", "| all | 19.0 |"))
    assert tables.main([*args, "--check"]) == 1


def test_dirty_files_keep_their_first_letter(monkeypatch) -> None:
    """``git status --porcelain`` starts a line with a space for a change not staged; stripping
    the output cut the first file's name ("enchmarks/...")."""
    import subprocess

    from benchmarks import results

    def run(cmd, **kw):  # type: ignore[no-untyped-def]
        out = " M benchmarks/results/x.json\nM  tutor/y.py\n" if "status" in cmd else "abc\n"
        return subprocess.CompletedProcess(cmd, 0, stdout=out, stderr="")

    monkeypatch.setattr(results.subprocess, "run", run)
    info = results.git_info()
    assert info["dirty"] and info["dirty_files"] == ["benchmarks/results/x.json", "tutor/y.py"]
