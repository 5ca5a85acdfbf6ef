"""The shipped tutoring LoRA: what ``lm.adapter`` resolves to, the bundle tool, the weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tutor.config import Config, LMConfig
from tutor.errors import ConfigError, InputError
from tutor.lm import bundled_lora
from tutor.lm.bundled_lora import (
    BUNDLED_MODEL,
    TUTORING_LORA,
    adapter_label,
    adapter_note,
    served_adapter,
)


@pytest.fixture
def fake_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for the shipped adapter directory, so these checks hold without it."""
    d = tmp_path / "tutoring-lora"
    d.mkdir()
    (d / "adapter_config.json").write_text("{}")
    (d / "adapter_model.safetensors").write_bytes(b"x")
    monkeypatch.setattr(bundled_lora, "TUTORING_LORA", d)
    return d


def test_the_default_is_auto(fake_shipped: Path):
    lm = Config().lm
    assert lm.adapter == "auto" and lm.model == BUNDLED_MODEL
    assert served_adapter(lm) == str(fake_shipped)
    assert adapter_label(lm) == "tutoring"
    assert "shipped tutoring LoRA" in adapter_note(lm) and "'none'" in adapter_note(lm)


@pytest.mark.parametrize(
    ("model", "backend", "why"),
    [
        ("/models/my-llama", "hf", "bundled model only"),
        (BUNDLED_MODEL, "llamacpp", "GGUF LoRA"),
    ],
)
def test_auto_runs_other_models_and_llamacpp_alone(fake_shipped, model, backend, why):
    lm = LMConfig(model=model, backend=backend)
    assert served_adapter(lm) == ""
    assert why in adapter_note(lm)


def test_none_and_paths(fake_shipped: Path, tmp_path: Path):
    assert served_adapter(LMConfig(adapter="none")) == ""
    assert served_adapter(LMConfig(adapter="")) == ""
    assert adapter_note(LMConfig(adapter="none")) == "# adapter: none"
    mine = str(tmp_path / "my-adapter")
    assert served_adapter(LMConfig(model="/models/x", adapter=mine)) == mine
    assert served_adapter(LMConfig(adapter="Tutoring")) == str(fake_shipped)


def test_tutoring_on_another_model_or_missing_says_what_to_set(
    fake_shipped: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    with pytest.raises(ConfigError, match="lm.adapter = 'none'"):
        served_adapter(LMConfig(model="/models/x", adapter="tutoring"))
    monkeypatch.setattr(bundled_lora, "TUTORING_LORA", tmp_path / "gone")
    assert served_adapter(LMConfig()) == ""  # auto: the base alone, said by the note
    assert "not installed" in adapter_note(LMConfig())
    with pytest.raises(ConfigError, match="missing"):
        served_adapter(LMConfig(adapter="tutoring"))


def test_bundle_writes_bf16_copy_keeps_readme_and_refuses_a_non_run(tmp_path: Path):
    import torch
    from safetensors.torch import load_file

    from finetune.bundle import bundle_adapter
    from tests.test_lm_hf import _tiny
    from tests.test_lm_lora import _adapter
    from tutor.lm.lora import read_lora

    model_dir, _, _ = _tiny(tmp_path, "m")
    run = tmp_path / "runs" / "r1"
    _adapter(model_dir, run / "adapter")
    best = str(run.resolve() / "checkpoints" / "checkpoint-4")
    card = {"base_model": "smollm2-135m-instruct", "best_checkpoint": best}
    (run / "card.json").write_text(json.dumps(card))
    (run / "card.md").write_text("# card\n")
    out = tmp_path / "shipped"
    out.mkdir()
    (out / "README.md").write_text("hand-written\n")
    (out / "stale.bin").write_text("old")

    info = bundle_adapter(run, out)

    assert (out / "README.md").read_text() == "hand-written\n"
    assert not (out / "stale.bin").exists() and (out / "card.md").is_file()
    assert json.loads((out / "bundle.json").read_text()) == info
    shipped_card = json.loads((out / "card.json").read_text())
    assert shipped_card["best_checkpoint"] == "r1/checkpoints/checkpoint-4"  # no local path
    assert {f.stat().st_mode & 0o777 for f in out.iterdir()} == {0o644}
    assert out.stat().st_mode & 0o777 == 0o755
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "smollm2-135m-instruct"
    src = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    got = load_file(str(out / "adapter_model.safetensors"))
    assert set(got) == set(src) and all(v.dtype == torch.bfloat16 for v in got.values())
    assert 0 < info["max_relative_rounding"] < 2**-8  # bf16 keeps 8 bits of mantissa
    for k, v in src.items():
        torch.testing.assert_close(got[k].float(), v.float(), rtol=2**-8, atol=0)
    weights, reason = read_lora(out)
    assert weights is not None, reason

    with pytest.raises(InputError, match="finished run directory"):
        bundle_adapter(tmp_path / "runs" / "nothing", tmp_path / "x")
    assert (out / "adapter_model.safetensors").is_file()  # a failure leaves the old copy


def test_the_shipped_adapter_is_a_plain_lora_for_the_bundled_model():
    from tutor.lm.lora import read_lora

    assert bundled_lora.shipped(), f"the tutoring LoRA is missing from {TUTORING_LORA}"
    weights, reason = read_lora(TUTORING_LORA)
    assert weights is not None, reason  # served beside the int4 base, not merged away
    assert weights.rank == 16
    # every linear layer of SmolLM2-135M's 30 blocks: q, k, v, o, gate, up, down
    assert len(weights.pairs) == 30 * 7
    assert weights.pairs["model.layers.0.self_attn.k_proj"].b.shape == (192, 16)
    cfg = json.loads((TUTORING_LORA / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == BUNDLED_MODEL
    for name in ("README.md", "LICENSE.md", "card.json", "bundle.json"):
        assert (TUTORING_LORA / name).is_file(), name
    licence = (TUTORING_LORA / "LICENSE.md").read_text()
    assert "CC BY-SA 4.0" in licence and "MathDial" in licence
    assert (TUTORING_LORA / "adapter_model.safetensors").stat().st_size < 12_000_000


def test_eval_names_and_tables_say_which_adapter_ran(fake_shipped: Path, tmp_path: Path):
    from benchmarks.eval_table import label
    from evals.api import default_name

    cfg = Config()
    assert default_name("pedagogy", cfg) == "pedagogy-smollm2-135m-instruct-tutoring"
    cfg.lm.adapter = "none"
    assert default_name("pedagogy", cfg) == "pedagogy-smollm2-135m-instruct"
    cfg.lm.adapter = str(tmp_path / "runs" / "mine" / "adapter")
    assert default_name("pedagogy", cfg) == "pedagogy-smollm2-135m-instruct-mine"
    report = {"model": BUNDLED_MODEL, "adapter": "tutoring"}
    assert label(report, "agent") == f"agent: {BUNDLED_MODEL} + LoRA tutoring"
    report["adapter"] = ".tutor/runs/mine/adapter"
    assert label(report, "agent") == f"agent: {BUNDLED_MODEL} + LoRA mine"


@pytest.mark.slow
def test_the_default_generator_serves_the_shipped_adapter_beside_int4(
    bundled_model_dir: Path, tmp_path: Path
):
    """``tutor serve`` with no settings: the bundled model with the tutoring LoRA, unmerged
    beside the int4 layers; ``--adapter none`` gives the base model, and the two differ."""
    import torch

    from tutor.config import load_config
    from tutor.lm.hf import HFGenerator

    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / BUNDLED_MODEL).symlink_to(bundled_model_dir)
    logits = {}
    for setting in ("auto", "none"):
        cfg = load_config(None, {}, {"paths": {"home": str(home)}, "lm": {"adapter": setting}})
        gen = HFGenerator.from_config(cfg.lm, cfg.paths.models_dir)
        assert gen.name == BUNDLED_MODEL + ("+tutoring" if setting == "auto" else "")
        assert hasattr(gen.model, "tutor_adapter") == (setting == "auto")
        ids = gen.tokenizer("Where did the student go wrong?", return_tensors="pt").input_ids
        with torch.no_grad():
            logits[setting] = gen.model(input_ids=ids).logits[0, -1].float()
    assert (logits["auto"] - logits["none"]).abs().max() > 0.1  # the adapter changes the model
