"""Resuming: a checkpoint remembers its data and settings (a mismatching resume is refused), and
the card's time, tokens and train loss cover the whole run; eval loss is token-weighted."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from finetune.errors import RunExistsError, TrainingInterrupted
from finetune.recipe import LoRARecipe, run_finetune
from tests.test_finetune_train import make_config, write_chats
from tutor.testing.tiny_llama import save_tiny_llama


def test_resume_checks_data_and_config_and_the_card_covers_the_whole_run(tmp_path: Path) -> None:
    from transformers import TrainerCallback

    class CtrlCAtStep2(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                os.kill(os.getpid(), signal.SIGINT)

    tiny = save_tiny_llama(tmp_path / "tiny")
    data = write_chats(tmp_path / "chats.jsonl", 24, problems=12)
    opts = dict(max_steps=4, eval_fraction=0.25, eval_steps=1, batch_size=2)
    with pytest.raises(TrainingInterrupted):
        run_finetune(
            make_config(tmp_path / "home", tiny, [data], **opts), callbacks=[CtrlCAtStep2()]
        )
    ckpt = tmp_path / "home" / "runs" / "lora" / "checkpoints" / "checkpoint-3"
    first = json.loads((ckpt / "progress.json").read_text())
    assert json.loads((ckpt / "fingerprint.json").read_text())["config"]["lora_r"] == 8

    changed = write_chats(tmp_path / "chats.jsonl", 24, answer="no", problems=12)
    with pytest.raises(RunExistsError, match=r"chats\.jsonl changed .*same data.*--run-name"):
        run_finetune(make_config(tmp_path / "home", tiny, [changed], resume=True, **opts))
    write_chats(tmp_path / "chats.jsonl", 24, problems=12)  # back to the original data
    with pytest.raises(RunExistsError, match=r"finetune\.lora_r was 8, now 4"):
        run_finetune(make_config(tmp_path / "home", tiny, [data], resume=True, lora_r=4, **opts))

    recipe = LoRARecipe(make_config(tmp_path / "home", tiny, [data], resume=True, **opts))
    recipe.setup()
    m = recipe.train().metrics
    assert m["global_step"] == 4 and m["train_seconds"] > first["train_seconds"]
    # training tokens only (4 steps x 2 rows), none of the 6 validation rows evaluated 4 times
    rows = [len(r["input_ids"]) for r in recipe.trainer.train_dataset]
    assert 8 * min(rows) <= m["train_tokens_seen"] <= 8 * max(rows)
    assert m["train_tokens_seen"] > first["train_tokens"] > 0
    losses = {h["step"]: h["loss"] for h in m["log_history"] if "loss" in h}
    assert sorted(losses) == [1, 2, 3, 4]
    assert m["train_loss"] == pytest.approx(sum(losses.values()) / 4)

    # eval loss: the mean over all validation tokens, not a mean of per-batch means
    import torch
    import torch.nn.functional as F

    trainer = recipe.trainer
    model = trainer.model.eval()
    total = count = 0.0
    with torch.no_grad():
        for f in trainer.eval_dataset:
            ids, labels = torch.tensor([f["input_ids"]]), torch.tensor([f["labels"]])
            logits = model(input_ids=ids).logits[0, :-1]
            keep = labels[0, 1:] != -100
            total += float(F.cross_entropy(logits[keep], labels[0, 1:][keep], reduction="sum"))
            count += int(keep.sum())
    assert trainer.evaluate()["eval_loss"] == pytest.approx(total / count, rel=1e-4)
    recipe.cleanup()
