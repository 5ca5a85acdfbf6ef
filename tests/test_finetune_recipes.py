"""The checked-in GPU recipe on the shipped data: its evaluation / checkpoint cadence fires
often enough for early stopping to act. The step count is computed from the real data and the
SmolLM2 tokenizer (shared by 135M and 1.7B), without loading the 1.7B model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from finetune.data import prepare_examples
from finetune.recipe import eval_every, steps_per_epoch
from finetune.tokens import tokenize_splits
from tutor.config import load_config

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_gpu_recipe_evaluates_several_times_on_the_shipped_data(
    shared_data: Path, bundled_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoTokenizer

    monkeypatch.chdir(REPO)  # the recipe's paths are relative to the repository root
    cfg = load_config(REPO / "configs" / "gpu-qlora-1.7b.toml", env={}).finetune
    # the recipe names ../shared/data; the shared data may sit elsewhere (TUTOR_SHARED_DATA)
    cfg.data = [
        str(shared_data / d.split("shared/data/", 1)[1]) if "shared/data/" in d else d
        for d in cfg.data
    ]
    assert "SmolLM2-1.7B" in cfg.base_model
    train, val, stats = prepare_examples(cfg)
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_dir))
    rows, val_rows = tokenize_splits(cfg, tokenizer, train, val, stats)
    assert val_rows and cfg.early_stopping_patience > 0
    total = math.ceil(steps_per_epoch(cfg, len(rows)) * cfg.epochs)
    every = eval_every(cfg, len(rows))
    evaluations = total // every
    # enough evaluations for early stopping (patience 3) to see a plateau and stop before the end
    assert evaluations >= cfg.early_stopping_patience + 2, (total, every)
    # the old fixed cadence never fired before the last step
    assert total < 50
