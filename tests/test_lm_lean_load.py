"""The lean cached start (tutor.lm.lean_load): the remembered int4 path without transformers'
modelling code gives the very model the full load gives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tutor.lm.resolve import load_causal_lm

ALIAS = "smollm2-135m-instruct"
# the remembered decode path is what these tests set up: the real cache, no fixed ranking
pytestmark = pytest.mark.real_decode_timer


def _models_with_choice(bundled_model_dir: Path, tmp_path: Path, dtype: str, quantize: str) -> Path:
    """A models dir holding the bundled cache (linked) and a remembered decode path."""
    from tutor.lm.speed import PathChoice, choice_key, model_key, save_choice

    models = tmp_path / "models"
    models.mkdir(parents=True)
    (models / ALIAS).symlink_to(bundled_model_dir)
    # the full float32 load packs the int4 layers and saves them beside the cache, if not yet
    load_causal_lm(ALIAS, models_dir=models, dtype="float32", device="cpu", quantize="auto")
    for native in (False, True):  # whether lm.native_decode allows the native step or not
        key = choice_key(model_key(str(models / ALIAS), ""), "auto", native)
        save_choice(models, PathChoice(dtype, quantize, "set by the test", key=key))
    return models


def _greedy(model, ids, n: int = 24) -> list[int]:
    import torch

    from tutor.lm.fast import LlamaDecoder

    decoder = LlamaDecoder(model, 512)
    with torch.inference_mode():
        return decoder.generate(torch.tensor([ids]), max_new_tokens=n)[0].tolist()


@pytest.mark.slow
def test_lean_start_gives_the_full_loads_model(bundled_model_dir: Path, tmp_path: Path):
    import torch

    models = _models_with_choice(bundled_model_dir, tmp_path, "float32", "int4")
    lean, tok = load_causal_lm(ALIAS, models_dir=models, device="cpu", quantize="auto", lean=True)
    assert type(lean).__name__ == "LeanLlama" and type(tok).__name__ == "LeanTokenizer"
    assert lean.tutor_decode_path.label == "float32 + int4"
    full, full_tok = load_causal_lm(
        ALIAS, models_dir=models, dtype="float32", device="cpu", quantize="auto"
    )
    assert type(full).__name__ == "LlamaForCausalLM"
    for text in ("Why do plants need sunlight?", "What is 3/4 of 20?"):
        msgs = [{"role": "user", "content": text}]
        ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_dict=False)
        assert list(ids) == list(
            full_tok.apply_chat_template(msgs, add_generation_prompt=True, return_dict=False)
        )
        from tutor.lm.fast import LlamaDecoder

        a, b = LlamaDecoder(lean, 256), LlamaDecoder(full, 256)
        with torch.inference_mode():
            a.reset(len(ids))
            b.reset(len(ids))
            assert torch.equal(a.forward(torch.tensor(ids)), b.forward(torch.tensor(ids)))
        assert _greedy(lean, list(ids)) == _greedy(full, list(ids))


@pytest.mark.slow
def test_lean_start_only_where_the_remembered_path_is_int4(bundled_model_dir: Path, tmp_path):
    models = _models_with_choice(bundled_model_dir, tmp_path, "bfloat16", "none")
    model, _ = load_causal_lm(ALIAS, models_dir=models, device="cpu", quantize="auto", lean=True)
    assert type(model).__name__ == "LlamaForCausalLM"  # the full load, which applies the choice
    assert str(model.dtype) == "torch.bfloat16"
    # and never for a caller that may need generate() (lean not asked for)
    models2 = _models_with_choice(bundled_model_dir, tmp_path / "b", "float32", "int4")
    model, _ = load_causal_lm(ALIAS, models_dir=models2, device="cpu", quantize="auto")
    assert type(model).__name__ == "LlamaForCausalLM"


@pytest.mark.slow
def test_lean_start_does_not_import_the_modelling_code(bundled_model_dir: Path, tmp_path: Path):
    import torch

    models = _models_with_choice(bundled_model_dir, tmp_path, "float32", "int4")
    # the remembered choice is keyed by the thread count, which other tests may have changed
    code = (
        "import sys, torch\n"
        f"torch.set_num_threads({torch.get_num_threads()})\n"
        "from pathlib import Path\n"
        "from tutor.config import LMConfig\n"
        "from tutor.lm.hf import HFGenerator\n"
        f"gen = HFGenerator.from_config(LMConfig(), Path({str(models)!r}))\n"
        "text = ''.join(gen.stream([{'role': 'user', 'content': 'Hi!'}], max_new_tokens=4))\n"
        "print(type(gen.model).__name__, gen.decode_path,\n"
        "      'transformers.modeling_utils' in sys.modules, 'torch._dynamo' in sys.modules,\n"
        "      'transformers' in sys.modules, type(gen.tokenizer).__name__)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    # not even transformers itself: the tokenizer, the streamer and the greedy loop are lean
    assert out.stdout.split() == ["LeanLlama", "lean", "False", "False", "False", "LeanTokenizer"]


@pytest.mark.slow
def test_lean_start_serves_an_adapter_unmerged(bundled_model_dir: Path, tmp_path: Path):
    import torch
    from peft import LoraConfig, get_peft_model

    models = _models_with_choice(bundled_model_dir, tmp_path, "float32", "int4")
    base, _ = load_causal_lm(ALIAS, models_dir=models, dtype="float32", quantize="none")
    torch.manual_seed(0)
    peft_model = get_peft_model(base, LoraConfig(r=8, target_modules=["q_proj", "down_proj"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    peft_model.save_pretrained(tmp_path / "adapter")
    kw = {"models_dir": models, "device": "cpu", "quantize": "auto", "merge_adapter": True}
    lean, tok = load_causal_lm(ALIAS, adapter=str(tmp_path / "adapter"), lean=True, **kw)
    full, _ = load_causal_lm(ALIAS, adapter=str(tmp_path / "adapter"), dtype="float32", **kw)
    plain, _ = load_causal_lm(ALIAS, lean=True, **{**kw, "merge_adapter": False})
    assert type(lean).__name__ == "LeanLlama" and "unmerged" in lean.tutor_adapter
    msgs = [{"role": "user", "content": "How do I add 1/3 and 1/6?"}]
    ids = list(tok.apply_chat_template(msgs, add_generation_prompt=True, return_dict=False))
    with_adapter = _greedy(lean, ids, 32)
    assert with_adapter == _greedy(full, ids, 32)
    assert with_adapter != _greedy(plain, ids, 32)  # the adapter does change the answer
