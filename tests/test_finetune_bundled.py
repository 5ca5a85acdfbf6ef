"""The real bundled SmolLM2 (slow): label masking with its tokenizer and chat template, and a
one-step LoRA run that reloads through the tutor's resolver."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from finetune.tokens import IGNORE_INDEX, ChatEncoder

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "You are a patient tutor."},
    {"role": "assistant", "content": "Hi! How did you start?"},
    {"role": "user", "content": "I added 1/2 and 1/3 and got 2/5."},
    {"role": "assistant", "content": "Is 2/5 bigger or smaller than 1/2?"},
    {"role": "user", "content": "Smaller. Oh."},
    {"role": "assistant", "content": "Right. What could both 2 and 3 divide into?"},
]


def test_labels_with_the_bundled_tokenizer(bundled_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(bundled_model_dir))
    enc = ChatEncoder(tok, max_length=1024).encode(MESSAGES)
    runs, cur = [], []
    for i, lab in zip(enc.input_ids, enc.labels, strict=True):
        if lab == IGNORE_INDEX:
            if cur:
                runs.append(cur)
            cur = []
        else:
            assert lab == i
            cur.append(i)
    runs += [cur] if cur else []
    answers = [m["content"] for m in MESSAGES if m["role"] == "assistant"]
    assert [tok.decode(r) for r in runs] == [a + "<|im_end|>" for a in answers]
    assert all(r[-1] == tok.eos_token_id for r in runs)  # <|im_end|>: the model learns to stop


def test_one_lora_step_on_the_bundled_model(tmp_path: Path, bundled_model_dir: Path) -> None:
    import torch

    from finetune.recipe import run_finetune
    from tutor.config import load_config
    from tutor.lm.resolve import load_causal_lm

    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "smollm2-135m-instruct").symlink_to(bundled_model_dir)
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"messages": MESSAGES[1:4]}) + "\n")
    config = load_config(
        env={},
        file_values={
            "paths": {"home": str(home)},
            "finetune": {
                "data": [str(data)],
                "base_model": "smollm2-135m-instruct",
                "max_steps": 1,
                "eval_fraction": 0.0,
                "batch_size": 1,
                "max_length": 256,
                "dtype": "float32",
                "device": "cpu",
                "learning_rate": 1e-3,
                "warmup_ratio": 0.0,
                "target_modules": ["q_proj", "v_proj"],
            },
        },
    )
    result = run_finetune(config)
    assert result.metrics["global_step"] == 1 and math.isfinite(result.metrics["train_loss"])
    model, tok = load_causal_lm(
        "smollm2-135m-instruct",
        models_dir=home / "models",
        dtype="float32",
        device="cpu",
        adapter=str(result.adapter_dir),
    )
    ids = tok.apply_chat_template(
        MESSAGES[:3],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )["input_ids"]
    with torch.no_grad():
        tuned = model(input_ids=ids).logits
        with model.disable_adapter():
            base = model(input_ids=ids).logits
    assert torch.isfinite(tuned).all() and not torch.allclose(tuned, base)
    shutil.rmtree(home / "runs")
