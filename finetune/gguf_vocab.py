"""The tokenizer half of a GGUF export: the ``tokenizer.*`` keys llama.cpp reads.

Two sources, as ``convert_hf_to_gguf.py`` would produce them:

- a base model that came from a GGUF file (the bundled SmolLM2): its own ``tokenizer.*`` keys
  are copied as they are, so llama.cpp splits text exactly as it does for the original file
  (the transformers tokenizer rebuilt from a GGUF does not keep the ``smollm`` pre-tokenizer);
- a transformers tokenizer: a byte-level BPE vocabulary (``tokenizer.ggml.model = "gpt2"``)
  with token types, merges and special ids (``gguf.SpecialVocab``) and the chat template.

SentencePiece vocabularies (Llama 2, TinyLlama) are refused with the reason.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from tutor.errors import ConfigError

log = logging.getLogger(__name__)

# llama.cpp's names for the pre-tokenizers (how text is split before BPE) we recognise in a
# tokenizer.json; anything else is written as "default" with a warning.
_GPT2 = {"type": "ByteLevel", "use_regex": True}
_DIGITS = {"type": "Digits", "individual_digits": True}


def copy_gguf_vocab(writer: Any, source: Path, chat_template: str | None, n_vocab: int) -> bool:
    """Copy every ``tokenizer.*`` key of the GGUF file ``source`` when its vocabulary has
    ``n_vocab`` tokens (else write nothing and return False). ``chat_template`` (when given)
    replaces the file's template."""
    import gguf

    reader = gguf.GGUFReader(source)
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    if tokens is None or len(tokens.data) != n_vocab:
        log.info(
            "%s has another vocabulary than the model: tokenizer taken from transformers", source
        )
        return False
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        if key == "tokenizer.chat_template" and chat_template:
            continue
        vtype = field.types[0]
        value = field.contents()
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, value, vtype, sub_type=field.types[-1])
        else:
            writer.add_key_value(key, value, vtype)
    if chat_template:
        writer.add_chat_template(chat_template)
    return True


def _pre_tokenizer_name(pre: dict[str, Any] | None) -> str:
    def like(step: dict[str, Any], want: dict[str, Any]) -> bool:
        return all(step.get(k) == v for k, v in want.items())

    steps = (pre or {}).get("pretokenizers", [pre]) if pre else []
    if len(steps) == 1 and like(steps[0], _GPT2):
        return "gpt-2"
    if len(steps) == 2 and like(steps[0], _DIGITS) and like(steps[1], _GPT2):
        return "smollm"
    if (
        len(steps) == 2
        and steps[0].get("type") == "Split"
        and "\\p{N}{1,3}" in json.dumps(steps[0].get("pattern", {}))
        and like(steps[1], {"type": "ByteLevel", "use_regex": False})
    ):
        return "llama-bpe"
    log.warning(
        "unrecognised pre-tokenizer %s: written as 'default'; llama.cpp may split text "
        "(digits, punctuation) differently from transformers",
        json.dumps(pre)[:200],
    )
    return "default"


def _token_types(tokenizer: Any, n_vocab: int) -> tuple[list[str], list[int]]:
    """Tokens by id and their types, as ``convert_hf_to_gguf.py``'s ``get_vocab_base``."""
    import gguf

    by_id = {i: t for t, i in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for i in range(n_vocab):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(by_id[i])
            special = added[i].special or (by_id[i].startswith("<|") and by_id[i].endswith("|>"))
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def add_hf_vocab(writer: Any, tokenizer: Any, n_vocab: int) -> None:
    """Write a transformers byte-level BPE tokenizer as llama.cpp's ``gpt2`` vocabulary."""
    import gguf

    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"the tokenizer ({type(tokenizer).__name__}) is not a fast tokenizer; GGUF export "
            f"needs a tokenizer.json with a byte-level BPE vocabulary"
        )
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model_type = spec.get("model", {}).get("type")
    byte_level = "ByteLevel" in json.dumps(spec.get("pre_tokenizer")) or "ByteLevel" in json.dumps(
        spec.get("decoder")
    )
    if model_type != "BPE" or not byte_level:
        raise ConfigError(
            f"GGUF export supports byte-level BPE tokenizers (SmolLM, Llama 3, GPT-2 style); this "
            f"one is {model_type} without byte-level pre-tokenization. Convert it with llama.cpp's "
            f"convert_hf_to_gguf.py after `tutor finetune merge`"
        )
    if len(tokenizer) > n_vocab:
        raise ConfigError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's embedding only "
            f"{n_vocab} rows; resize the embeddings before exporting"
        )
    tokens, types = _token_types(tokenizer, n_vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer_name(spec.get("pre_tokenizer")))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        special = gguf.SpecialVocab(Path(tmp), load_merges=True, n_vocab=n_vocab)
    if "bos" not in special.add_special_token and tokenizer.bos_token_id is not None:
        ids = tokenizer("a", add_special_tokens=True)["input_ids"]
        special.add_special_token["bos"] = bool(ids) and ids[0] == tokenizer.bos_token_id
    if tokenizer.chat_template:
        special.chat_template = tokenizer.chat_template
    special.add_to_gguf(writer, quiet=True)
