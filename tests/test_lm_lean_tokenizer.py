"""The lean start's pieces that replace transformers (issue 18: ``tutor ask`` without importing
it): the tokenizer and chat template, the text streamer, the repetition penalty and the
sampling top-k default, each checked against the transformers original."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tutor.lm.lean_tokenizer import LeanTokenizer, load_lean_tokenizer
from tutor.lm.streamer import TokenTextStreamer

CHATS = [
    [{"role": "user", "content": "hi"}],
    [
        {"role": "system", "content": "Be kind. Use $...$ for math."},
        {"role": "user", "content": "What is 3/4 of 8?\n\nI got 6 — ünïcode, 数学, 🙂"},
        {"role": "assistant", "content": "Let's see: 8 ÷ 4 = 2.\nThen?"},
        {"role": "user", "content": "  2 × 3 = 6  "},
    ],
]


def _pair(model_dir: Path) -> tuple[LeanTokenizer, object]:
    from transformers import PreTrainedTokenizerFast

    lean = load_lean_tokenizer(model_dir)
    assert lean is not None
    return lean, PreTrainedTokenizerFast.from_pretrained(str(model_dir))


def _same_tokenizer(lean: LeanTokenizer, full: object) -> None:
    for chat in CHATS:
        for prompt in (True, False):
            kw = {"add_generation_prompt": prompt}
            text = lean.apply_chat_template(chat, tokenize=False, **kw)
            assert text == full.apply_chat_template(chat, tokenize=False, **kw)  # type: ignore[attr-defined]
            ids = lean.apply_chat_template(chat, **kw)
            want = full.apply_chat_template(chat, return_dict=False, **kw)  # type: ignore[attr-defined]
            assert ids == list(want)
            assert lean.apply_chat_template(chat, return_dict=True, **kw) == {"input_ids": ids}
            for skip in (True, False):
                assert lean.decode(ids, skip_special_tokens=skip) == full.decode(  # type: ignore[attr-defined]
                    ids, skip_special_tokens=skip
                )
    for name in ("eos_token_id", "pad_token_id", "bos_token_id", "eos_token", "pad_token"):
        assert getattr(lean, name) == getattr(full, name), name
    assert len(lean) == len(full)  # type: ignore[arg-type]
    assert lean("3 + 4 = 7", add_special_tokens=False) == {
        "input_ids": full("3 + 4 = 7", add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    }


def test_the_lean_tokenizer_matches_transformers_on_a_tiny_model(tiny_llama_dir: Path) -> None:
    _same_tokenizer(*_pair(tiny_llama_dir))


@pytest.mark.slow
def test_the_lean_tokenizer_matches_transformers_on_the_bundled_model(
    bundled_model_dir: Path,
) -> None:
    _same_tokenizer(*_pair(bundled_model_dir))


def test_where_it_could_differ_the_full_tokenizer_is_used(tiny_llama_dir: Path, tmp_path: Path):
    import shutil

    assert load_lean_tokenizer(tmp_path) is None  # no tokenizer.json
    d = tmp_path / "m"
    shutil.copytree(tiny_llama_dir, d)
    (d / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["chat_template"] = (
        "{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}"
    )
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert load_lean_tokenizer(d) is None  # assistant-mask blocks: transformers' extension
    cfg["chat_template"] = "{% for m in messages %}{{ m.content }"  # does not compile
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert load_lean_tokenizer(d) is None
    cfg.pop("chat_template")
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert load_lean_tokenizer(d) is None  # no template at all, none configured
    lean = load_lean_tokenizer(d, "{% for m in messages %}[{{ m.content }}]{% endfor %}")
    assert lean is not None and lean.apply_chat_template(CHATS[0], tokenize=False) == "[hi]"


@pytest.mark.slow
def test_the_streamer_gives_transformers_chunks(bundled_model_dir: Path) -> None:
    import torch
    from transformers import PreTrainedTokenizerFast, TextIteratorStreamer

    full = PreTrainedTokenizerFast.from_pretrained(str(bundled_model_dir))
    lean = load_lean_tokenizer(bundled_model_dir)
    text = "Half of 8 is 4.\n\nNext: $3.50 × 2 = $7.00!\n数学 is fun 🙂<br>ok\n (a) x=5, y = -2…"
    ids = full(text, add_special_tokens=False)["input_ids"] + [full.eos_token_id]
    theirs = TextIteratorStreamer(full, skip_prompt=True, skip_special_tokens=True)
    ours = TokenTextStreamer(lean)
    for s in (theirs, ours):
        s.put(torch.tensor([[1, 2, 3]]))  # the prompt: skipped
        for i in ids:
            s.put(torch.tensor([i]))
        s.end()
    chunks = list(ours)
    assert chunks == list(theirs) and "".join(chunks) == text
    assert ours.new_tokens == len(ids)
    with pytest.raises(ValueError, match="batch size 1"):
        TokenTextStreamer(lean).put(torch.zeros(2, 3, dtype=torch.long))


def test_the_repetition_penalty_matches_transformers() -> None:
    import torch
    from transformers import RepetitionPenaltyLogitsProcessor

    from tutor.lm.fast import RepetitionPenalty

    g = torch.Generator().manual_seed(0)
    for penalty in (1.1, 0.8, 2.0):
        scores = torch.randn(1, 50, generator=g)
        ids = torch.randint(0, 60, (1, 30), generator=g)  # some past the vocab
        want = RepetitionPenaltyLogitsProcessor(penalty)(ids, scores.clone())
        assert torch.equal(RepetitionPenalty(penalty)(ids, scores.clone()), want)


def test_greedy_decoding_with_a_penalty_needs_no_transformers_processor() -> None:
    from tutor.lm.fast import RepetitionPenalty, _processors

    assert _processors(False, 1.0, None, 1.0, 1.0, 0) == []
    (only,) = _processors(False, 1.0, None, 1.0, 1.1, 0)
    assert isinstance(only, RepetitionPenalty)
    names = [type(p).__name__ for p in _processors(True, 0.7, 50, 0.9, 1.1, 3)]
    assert names == [
        "RepetitionPenaltyLogitsProcessor",
        "NoRepeatNGramLogitsProcessor",
        "TemperatureLogitsWarper",
        "TopKLogitsWarper",
        "TopPLogitsWarper",
    ]


def test_the_default_sampling_top_k_is_transformers_default() -> None:
    from transformers import GenerationConfig

    from tutor.lm.fast import DEFAULT_TOP_K

    defaults = getattr(GenerationConfig, "_get_default_generation_params", dict)()
    assert defaults.get("top_k", GenerationConfig().top_k) == DEFAULT_TOP_K
