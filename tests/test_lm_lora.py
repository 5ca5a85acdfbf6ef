"""Serving a LoRA adapter beside the int4 base (tutor.lm.lora) instead of merging it away."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_lm_hf import _tiny
from tutor.errors import ModelNotFoundError
from tutor.lm.base import GenerationOptions
from tutor.lm.hf import HFGenerator
from tutor.lm.resolve import load_causal_lm


def _adapter(model_dir: Path, out: Path, **lora_kwargs) -> Path:
    """A peft adapter with random (non-zero) A and B on a fresh copy of the model."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    base, _ = load_causal_lm(str(model_dir), dtype="float32", device="cpu")
    cfg = {"r": 8, "lora_alpha": 16, "target_modules": "all-linear", "init_lora_weights": False}
    peft_model = get_peft_model(base, LoraConfig(**{**cfg, **lora_kwargs}))
    with torch.no_grad():  # peft's random B is tiny; make the adapter change the answers
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.mul_(20)
    peft_model.save_pretrained(out)
    return out


def _peft_merged(model_dir: Path, adapter: Path):
    from peft import PeftModel

    base, _ = load_causal_lm(str(model_dir), dtype="float32", device="cpu")
    return PeftModel.from_pretrained(base, str(adapter)).merge_and_unload().eval()


def test_adapter_stays_beside_the_int4_base(tmp_path: Path):
    import torch

    from tutor.lm.lora import LoraLinear
    from tutor.lm.quant import Int4Linear

    grid_dir, _, tok = _tiny(tmp_path, "grid", on_int4_grid=True)
    adapter = _adapter(grid_dir, tmp_path / "adapter")
    served, tok = load_causal_lm(
        str(grid_dir),
        dtype="float32",
        device="cpu",
        quantize="auto",
        adapter=str(adapter),
        merge_adapter=True,
    )
    q_proj = served.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, LoraLinear) and isinstance(q_proj.base, Int4Linear)
    assert "unmerged" in served.tutor_adapter
    reference = _peft_merged(grid_dir, adapter)
    plain, _ = load_causal_lm(str(grid_dir), dtype="float32", device="cpu")
    ids = torch.tensor([[2, 5, 6, 7, 9, 11]])
    with torch.no_grad():
        want, got = reference(ids).logits, served(ids).logits
        # the adapter moves the logits far more than the int4 path (bf16) and the adapter's own
        # int8 rows round them
        assert (want - plain(ids).logits).abs().max() > 20 * (got - want).abs().max()
        torch.testing.assert_close(got, want, rtol=0, atol=6e-2 * float(want.abs().max()))
    gen = HFGenerator(served, tok, defaults=GenerationOptions(max_new_tokens=12))
    assert gen.decode_path == "lean"  # the fused loop runs the adapter too
    msgs = [{"role": "user", "content": "hello there"}]
    lean = gen._encode(msgs)
    prompt = torch.tensor([lean])
    with torch.inference_mode():
        by_generate = served.generate(prompt, max_new_tokens=12, do_sample=False)
        by_lean = gen.decoder.generate(prompt, max_new_tokens=12)
    assert by_lean[0].tolist() == by_generate[0].tolist()


def test_dense_path_merges_in_float32(tmp_path: Path):
    import torch

    from tutor.lm.lora import LoraLinear

    plain_dir, _, _ = _tiny(tmp_path, "plain")
    adapter = _adapter(plain_dir, tmp_path / "adapter", target_modules=["q_proj", "down_proj"])
    served, _ = load_causal_lm(
        str(plain_dir), dtype="float32", device="cpu", adapter=str(adapter), merge_adapter=True
    )
    assert not any(isinstance(m, LoraLinear) for m in served.modules())
    assert "merged" in served.tutor_adapter
    ids = torch.tensor([[2, 5, 6, 7]])
    with torch.no_grad():
        torch.testing.assert_close(
            served(ids).logits, _peft_merged(plain_dir, adapter)(ids).logits, atol=1e-5, rtol=0
        )


def test_q_and_v_only_fuse_with_zero_blocks(tmp_path: Path):
    """An adapter on some of the fused projections (q and v, not k) gives generate's tokens."""
    import torch

    grid_dir, _, _ = _tiny(tmp_path, "grid", on_int4_grid=True)
    adapter = _adapter(grid_dir, tmp_path / "qv", target_modules=["q_proj", "v_proj", "up_proj"])
    served, tok = load_causal_lm(
        str(grid_dir),
        dtype="float32",
        device="cpu",
        quantize="auto",
        adapter=str(adapter),
        merge_adapter=True,
    )
    gen = HFGenerator(served, tok, defaults=GenerationOptions(max_new_tokens=10))
    assert gen.decode_path == "lean"
    prompt = torch.tensor([gen._encode([{"role": "user", "content": "two words"}])])
    plain, _ = load_causal_lm(str(grid_dir), dtype="float32", device="cpu", quantize="auto")
    with torch.inference_mode():
        want = served.generate(prompt, max_new_tokens=10, do_sample=False)[0].tolist()
        assert gen.decoder.generate(prompt, max_new_tokens=10)[0].tolist() == want
        gen.decoder.reset(prompt.shape[1])
        lean_logits = gen.decoder.forward(prompt[0])[0]
        full = served(prompt).logits[0, -1]
        moved = (full - plain(prompt).logits[0, -1]).abs().max()
        assert (lean_logits - full).abs().max() < moved / 100


def test_adapters_only_peft_can_apply_are_merged_by_peft(tmp_path: Path):
    import torch

    from tutor.lm.lora import LoraLinear, read_lora

    plain_dir, _, _ = _tiny(tmp_path, "plain")
    adapter = _adapter(plain_dir, tmp_path / "dora", target_modules=["q_proj"], use_dora=True)
    lora, reason = read_lora(adapter)
    assert lora is None and reason == "DoRA"
    served, _ = load_causal_lm(
        str(plain_dir), dtype="float32", device="cpu", adapter=str(adapter), merge_adapter=True
    )
    assert type(served).__name__ == "LlamaForCausalLM"
    assert not any(isinstance(m, LoraLinear) for m in served.modules())
    ids = torch.tensor([[2, 5, 6, 7]])
    with torch.no_grad():
        torch.testing.assert_close(
            served(ids).logits, _peft_merged(plain_dir, adapter)(ids).logits, atol=1e-5, rtol=0
        )


def test_an_adapter_of_another_model_is_refused(tmp_path: Path):
    plain_dir, _, _ = _tiny(tmp_path, "plain")
    wide_dir, _, _ = _tiny(tmp_path, "wide", intermediate_size=96)
    adapter = _adapter(wide_dir, tmp_path / "wide-adapter", target_modules=["up_proj"])
    with pytest.raises(ModelNotFoundError, match="does not fit this model"):
        load_causal_lm(
            str(plain_dir), dtype="float32", device="cpu", adapter=str(adapter), merge_adapter=True
        )
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA"


def test_packed_adapter_of_any_rank_matches_float32():
    """The int8 kernel needs an inner size divisible by 16: ranks 4, 8, 24 are zero-padded."""
    import torch

    from tutor.lm.lora import LoraPair, PackedLora

    torch.manual_seed(0)
    x = torch.randn(5, 64)
    for r in (4, 8, 16, 24):
        a, b = torch.randn(r, 64) * 0.1, torch.randn(96, r) * 0.1
        packed = PackedLora.of(LoraPair(a, b))
        assert packed.a_q.shape[0] % 16 == 0 and packed.b_q.shape[1] == packed.a_q.shape[0]
        want = x @ a.T @ b.T
        got = packed.delta(x.to(torch.bfloat16)).float()
        torch.testing.assert_close(got, want, rtol=0, atol=3e-2 * float(want.abs().max()))


def test_the_adapter_switches_off_per_call_and_back(tmp_path: Path):
    """``adapter=False`` in a call's options: the packed base alone, token for token the same
    as the model loaded without the adapter, in the lean loop and in generate(); the next call
    runs the adapter again."""
    import torch

    grid_dir, _, tok = _tiny(tmp_path, "grid", on_int4_grid=True)
    adapter = _adapter(grid_dir, tmp_path / "adapter")
    kw = {"dtype": "float32", "device": "cpu", "quantize": "auto"}
    served, tok = load_causal_lm(str(grid_dir), adapter=str(adapter), merge_adapter=True, **kw)
    plain, _ = load_causal_lm(str(grid_dir), **kw)
    switch = served.tutor_lora_switch
    ids = torch.tensor([[2, 5, 6, 7, 9, 11]])
    with torch.no_grad():
        on = served(ids).logits
        switch.on = False
        torch.testing.assert_close(served(ids).logits, plain(ids).logits, rtol=0, atol=0)
        switch.on = True
        assert (served(ids).logits - on).abs().max() == 0 and (
            on - plain(ids).logits
        ).abs().max() > 0
    opts = GenerationOptions(max_new_tokens=12)
    gen, base = HFGenerator(served, tok, defaults=opts), HFGenerator(plain, tok, defaults=opts)
    assert gen.decode_path == "lean" == base.decode_path
    msgs = [{"role": "user", "content": "hello there"}]
    with_adapter = "".join(gen.stream(msgs))
    assert "".join(gen.stream(msgs, adapter=False)) == "".join(base.stream(msgs))
    assert with_adapter != "".join(base.stream(msgs))  # the lean loop ran the adapter
    assert switch.on is False  # left as the last call set it; every call sets it again
    assert "".join(gen.stream(msgs)) == with_adapter
    assert switch.on is True
