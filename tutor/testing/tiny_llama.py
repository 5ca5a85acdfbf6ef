"""Tiny random models for fast offline tests: a 2-layer Llama and a word-level tokenizer with a
ChatML chat template. Built in-process in well under a second; nothing is downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIALS = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
WORDS = (
    "system user assistant the a an is are of to and what how why which in on for with "
    "fraction fractions half quarter third numerator denominator add subtract multiply divide "
    "equal equals answer hint step question try again correct wrong yes no please explain "
    "percent ratio equation solve x y area perimeter water cycle plant photosynthesis sun "
    "you your i my me we it this that think next first then so because "
    "hello tutor student teacher good great let us look at check"
).split()
PUNCT = list(".,?!:;()[]/+-*=%'\"")
DIGITS = [str(i) for i in range(10)]


def make_tokenizer(with_template: bool = True) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for word in SPECIALS + WORDS + PUNCT + DIGITS:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Punctuation(),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    if with_template:
        tok.chat_template = CHATML
    return tok


def make_model(vocab_size: int, seed: int = 0, **overrides: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=1,
        tie_word_embeddings=False,
    )
    cfg.update(overrides)
    return LlamaForCausalLM(LlamaConfig(**cfg))


def save_tiny_llama(
    directory: Path, *, with_template: bool = True, seed: int = 0, **overrides: Any
) -> Path:
    """Write a tiny random Llama + tokenizer to ``directory`` (a loadable model dir);
    ``vocab_size`` may exceed the tokenizer's (ids past it are never produced by encoding)."""
    tok = make_tokenizer(with_template=with_template)
    model = make_model(overrides.pop("vocab_size", len(tok)), seed=seed, **overrides)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory
