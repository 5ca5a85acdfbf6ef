"""The pedagogy suite with the real bundled SmolLM2 (slow: loads the model, a few short turns)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.api import run_eval
from evals.run import EvalOptions
from tests.test_eval_run import DIALOGUES
from tutor.config import load_config

pytestmark = pytest.mark.slow


def test_agent_and_raw_model_next_turn_with_the_bundled_model(
    bundled_model_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "smollm2-135m-instruct").symlink_to(bundled_model_dir)
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps(DIALOGUES[0]) + "\n")
    config = load_config(None, {}, {"paths": {"home": str(home)}, "lm": {"max_new_tokens": "16"}})
    o = EvalOptions(
        suites=("pedagogy",),
        out=tmp_path / "out",
        data=[str(data)],
        limit=1,
        systems=("agent", "raw"),
        progress=False,
        plots=False,
    )
    rep = run_eval(o, config)
    recs = {r["system"]: r for r in rep["items"]["pedagogy"]}
    assert set(recs) == {"agent", "raw"}
    for r in recs.values():
        assert r["response"].strip() and 1 <= r["features"]["words"] <= 60
        assert r["labels"]["revealing_answer"] in ("No", "Yes (correct)")
    # "I got 3/8." is graded first (deterministic), then the LM writes the hint
    assert recs["agent"]["mode"] == "guide" and recs["agent"]["response"].startswith("Not quite")
    assert recs["agent"]["lm_outputs"] and recs["agent"]["lm_outputs"][0].strip()
