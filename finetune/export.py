"""``tutor finetune export --gguf``: a fine-tune as a GGUF file for llama.cpp / Ollama.

Two kinds of file, laid out as llama.cpp's own converters write them:

- the merged model (base + adapter, merged by peft): Llama hyper-parameters, the tokenizer
  (``finetune.gguf_vocab``) and every tensor under its llama.cpp name, like
  ``convert_hf_to_gguf.py``;
- the adapter alone (``general.type = "adapter"``, ``adapter.lora.alpha``, tensors
  ``blk.N.attn_q.weight.lora_a`` / ``.lora_b``), like ``convert_lora_to_gguf.py``: load it on
  top of the base GGUF with ``llama-cli -m base.gguf --lora adapter.gguf``.

Transformers and GGUF order the rotary halves of the q/k projection rows differently, so those
rows are permuted (``permute`` below; for an adapter only ``lora_b``, whose rows are the output
rows). Only the Llama architecture is supported.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.errors import RunExistsError
from finetune.gguf_vocab import add_hf_vocab, copy_gguf_vocab
from finetune.merge import base_model_of, check_adapter, check_not_4bit, load_merged
from knowledge_base.atomic import atomic_path
from tutor.errors import ConfigError, InputError

log = logging.getLogger(__name__)

OUTTYPES = ("f32", "f16", "q8_0")
SUPPORTED = {"llama": "LlamaForCausalLM with a byte-level BPE tokenizer: SmolLM2, Llama 3, ..."}


@dataclass(frozen=True)
class Exported:
    path: Path
    tensors: int
    size_bytes: int
    seconds: float


def check_out(out: Path, outtype: str, overwrite: bool) -> None:
    if outtype not in OUTTYPES:
        raise ConfigError(f"--outtype must be one of {', '.join(OUTTYPES)}, got {outtype!r}")
    if not out.parent.is_dir():
        raise InputError(f"the folder of --out {out} does not exist; create it or pick another")
    if out.is_dir():
        raise InputError(f"--out {out} is a folder; give a file name such as {out}/model.gguf")
    if out.exists() and not overwrite:
        raise RunExistsError(f"{out} already exists; pass --overwrite or another --out")


def check_llama(config: Any, base: str) -> None:
    """Raise unless ``config`` describes a Llama model this exporter can write."""
    kind = getattr(config, "model_type", "?")
    if kind not in SUPPORTED:
        archs = ", ".join(getattr(config, "architectures", None) or [kind])
        raise ConfigError(
            f"GGUF export supports the Llama architecture only ({'; '.join(SUPPORTED.values())})"
            f"; the base model {base} is {archs}. Merge it with `tutor finetune merge` and "
            f"convert it with llama.cpp's convert_hf_to_gguf.py"
        )
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ConfigError(f"GGUF export does not write rope scaling {rope!r} (base {base})")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise ConfigError(f"GGUF export does not write attention/MLP biases (base {base})")


def permute(w: Any, n_head: int, n_head_kv: int | None = None) -> Any:
    """``convert_hf_to_gguf.py``'s ``LlamaModel.permute``: HF rotary-half row order -> GGUF."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = w.shape
    return w.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def unpermute(w: Any, n_head: int, n_head_kv: int | None = None) -> Any:
    """The inverse of ``permute`` (GGUF row order -> HF)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = w.shape
    return w.reshape(n_head, shape[0] // n_head // 2, 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def _file_type(outtype: str) -> int:
    import gguf

    return {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[outtype]


def encode_tensor(data: Any, outtype: str) -> tuple[Any, Any]:
    """``(array, raw_dtype)`` for ``GGUFWriter.add_tensor``: vectors stay float32 (as llama.cpp
    converters keep norms), matrices become f16 or Q8_0 (f16 where a row does not fill Q8_0
    blocks of 32)."""
    import gguf
    import numpy as np

    data = np.ascontiguousarray(data, dtype=np.float32)
    if outtype == "f32" or data.ndim <= 1:
        return data, None
    if outtype == "q8_0":
        try:
            q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            return q, gguf.GGMLQuantizationType.Q8_0
        except gguf.quants.QuantError:
            pass
    return data.astype(np.float16), None


def _hparams(writer: Any, config: Any) -> None:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope = getattr(config, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads or config.num_attention_heads)
    writer.add_rope_freq_base(float(theta))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(config.vocab_size)
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // config.num_attention_heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)


def gguf_name(hf_name: str, n_layers: int) -> str:
    """The llama.cpp name of a transformers Llama tensor (``model.layers.0.mlp.up_proj.weight``
    -> ``blk.0.ffn_up.weight``), through gguf's own name map."""
    import gguf

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    new = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if new is None:
        raise ConfigError(f"no llama.cpp name for the tensor {hf_name}")
    return new


def _qk_heads(gname: str, config: Any) -> tuple[int, int | None] | None:
    if gname.endswith("attn_q.weight"):
        return config.num_attention_heads, config.num_attention_heads
    if gname.endswith("attn_k.weight"):
        return config.num_attention_heads, config.num_key_value_heads
    return None


def _file_mode() -> int:
    """Permissions for the new file as ``open`` would give them (the temp file is 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _progress() -> bool:
    return log.isEnabledFor(logging.INFO)


def _write(writer: Any, out: Path) -> None:
    writer.write_header_to_file(path=out)
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=_progress())
    writer.close()


def _source_gguf(base: str, models_dir: Path | None) -> Path | None:
    """The GGUF file the base model came from (the bundled alias, a ``.gguf`` path), if any."""
    from tutor.lm.resolve import BUNDLED, bundled_gguf_path, resolve_source

    if base.lower() in BUNDLED:
        return bundled_gguf_path(BUNDLED[base.lower()])
    source = resolve_source(base, models_dir)
    return Path(source.path) / source.gguf_file if source.gguf_file else None


def _merged_tensors(writer: Any, model: Any, outtype: str) -> int:
    import torch
    from tqdm.auto import tqdm

    config = model.config
    tied = bool(getattr(config, "tie_word_embeddings", False))
    state = model.state_dict()
    names = [n for n in state if not n.endswith("rotary_emb.inv_freq")]
    if tied:
        names = [n for n in names if n != "lm_head.weight"]
    for name in tqdm(names, desc="converting tensors", unit="tensor", disable=not _progress()):
        gname = gguf_name(name, config.num_hidden_layers)
        data = state[name].detach().to(torch.float32).numpy()
        heads = _qk_heads(gname, config)
        if heads is not None:
            data = permute(data, *heads)
        array, raw_dtype = encode_tensor(data, outtype)
        writer.add_tensor(gname, array, raw_dtype=raw_dtype)
    return len(names)


def export_merged_gguf(
    adapter_dir: str | Path,
    out: str | Path,
    *,
    base_model: str = "",
    models_dir: Path | None = None,
    outtype: str = "f32",
    chat_template: str = "",
    overwrite: bool = False,
) -> Exported:
    """Write ``base + adapter`` as one GGUF model file at ``out`` (atomically)."""
    import gguf

    adapter = Path(adapter_dir).expanduser()
    target = Path(out).expanduser()
    check_adapter(adapter)
    check_out(target, outtype, overwrite)
    base = base_model or base_model_of(adapter)
    check_not_4bit(base, False)
    started = time.monotonic()
    model, tokenizer = load_merged(
        adapter,
        base,
        models_dir=models_dir,
        dtype="float32",
        chat_template=chat_template,
        check_model=lambda m: check_llama(m.config, base),
    )
    config = model.config
    with atomic_path(target, mode=_file_mode(), suffix=".gguf.tmp") as tmp:
        writer = gguf.GGUFWriter(tmp, "llama")
        writer.add_type(gguf.GGUFType.MODEL)
        writer.add_name(f"{Path(base).name} + {adapter.parent.name or adapter.name} (LoRA merged)")
        _hparams(writer, config)
        writer.add_file_type(_file_type(outtype))
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        source = _source_gguf(base, models_dir)
        template = tokenizer.chat_template
        if source is None or not copy_gguf_vocab(writer, source, template, config.vocab_size):
            add_hf_vocab(writer, tokenizer, config.vocab_size)
        count = _merged_tensors(writer, model, outtype)
        log.info("writing %s (%d tensors, %s)", target, count, outtype)
        _write(writer, tmp)
    took = time.monotonic() - started
    return Exported(target, count, target.stat().st_size, took)


def base_config(base: str, models_dir: Path | None) -> Any:
    """The base model's transformers config, without loading its weights."""
    from transformers import AutoConfig

    from tutor.lm.resolve import hub_offline, resolve_source

    source = resolve_source(base, models_dir)
    kwargs: dict[str, Any] = {"local_files_only": hub_offline()}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    return AutoConfig.from_pretrained(source.path, **kwargs)


def _lora_pairs(adapter: Path) -> tuple[dict[str, tuple[Any, Any]], float]:
    """``{module name: (A, B)}`` and the alpha to write. B stays as peft stored it unless the
    adapter scales modules differently (``alpha_pattern``, rsLoRA): llama.cpp applies
    ``alpha / rank`` to every module, so those differences are folded into B."""
    from safetensors.torch import load_file

    from tutor.lm.lora import PEFT_PREFIX, read_lora

    lora, reason = read_lora(adapter)
    if lora is None:
        raise ConfigError(f"cannot write {adapter} as a GGUF LoRA: {reason}")
    cfg = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    alpha = float(cfg.get("lora_alpha", 8))
    plain = not cfg.get("alpha_pattern") and not cfg.get("use_rslora")
    raw = load_file(str(adapter / "adapter_model.safetensors"))
    pairs: dict[str, tuple[Any, Any]] = {}
    for name, pair in lora.pairs.items():
        if plain:
            a = raw[f"{PEFT_PREFIX}{name}.lora_A.weight"]
            b = raw[f"{PEFT_PREFIX}{name}.lora_B.weight"]
        else:
            a, b = pair.a, pair.b * (pair.rank / alpha)
        pairs[name] = (a, b)
    return pairs, alpha


def export_lora_gguf(
    adapter_dir: str | Path,
    out: str | Path,
    *,
    base_model: str = "",
    models_dir: Path | None = None,
    outtype: str = "f32",
    overwrite: bool = False,
) -> Exported:
    """Write the adapter alone as a llama.cpp GGUF LoRA at ``out`` (atomically)."""
    import gguf
    import torch

    adapter = Path(adapter_dir).expanduser()
    target = Path(out).expanduser()
    check_adapter(adapter)
    check_out(target, outtype, overwrite)
    base = base_model or base_model_of(adapter)
    started = time.monotonic()
    config = base_config(base, models_dir)
    check_llama(config, base)
    pairs, alpha = _lora_pairs(adapter)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    with atomic_path(target, mode=_file_mode(), suffix=".gguf.tmp") as tmp:
        writer = gguf.GGUFWriter(tmp, "llama")
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_name(f"{Path(base).name} LoRA ({adapter.parent.name or adapter.name})")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_file_type(_file_type(outtype))
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for name, (a, b) in pairs.items():
            if name == "lm_head" and tied:
                raise ConfigError(
                    "the adapter trains lm_head, which this base ties to the embeddings; "
                    "llama.cpp cannot apply that as a LoRA: export the merged model instead"
                )
            gname = gguf_name(f"{name}.weight", config.num_hidden_layers)
            b = b.to(torch.float32).numpy()
            heads = _qk_heads(gname, config)
            if heads is not None:
                b = permute(b, *heads)
            for suffix, data in (("lora_a", a.to(torch.float32).numpy()), ("lora_b", b)):
                array, raw_dtype = encode_tensor(data, outtype)
                writer.add_tensor(f"{gname}.{suffix}", array, raw_dtype=raw_dtype)
        _write(writer, tmp)
    took = time.monotonic() - started
    return Exported(target, 2 * len(pairs), target.stat().st_size, took)
