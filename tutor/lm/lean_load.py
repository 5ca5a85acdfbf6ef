"""A cached start without transformers' modelling code: the remembered int4 path, loaded bare.

Once a first start has measured the decode paths (``tutor.lm.speed``), chosen the int4 repack
and saved the packed layers (``tutor.lm.quant``), a later start needs only those layers, the
norms and the embedding. ``load_lean`` builds exactly that: plain ``torch.nn`` modules named
and shaped like ``LlamaForCausalLM``'s (so the packed-layer cache, LoRA adapters and the lean
decode loop of ``tutor.lm.fast`` apply unchanged), the embedding a copy-on-write map of the
cached safetensors file. It never imports ``transformers.modeling_utils`` (with it torch's
compiler and distributed packages), which is most of a start's time and ~100 MB of its memory.

It applies only where the result is the model the full load would give: the bundled model's
cache directory, a Llama with the default RoPE, ``lm.dtype = "auto"`` on a CPU with a
remembered float32 + int4 choice for this machine, and a fresh packed-layer file. Anything
else returns None and the caller loads the usual way. ``LlamaDecoder`` runs it; the ``generate``
path does not exist here, and the caller only takes this route when the lean loop applies.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import torch
from torch import nn

log = logging.getLogger(__name__)

REQUIRED = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")


class _Norm(nn.Module):
    def __init__(self, weight: torch.Tensor, eps: float):
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.variance_epsilon = eps


class _Rope(nn.Module):
    """``LlamaRotaryEmbedding``'s tables for the default RoPE (same arithmetic)."""

    inv_freq: torch.Tensor

    def __init__(self, dim: int, theta: float):
        super().__init__()
        steps = torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float)
        self.register_buffer("inv_freq", 1.0 / (theta ** (steps / dim)), persistent=False)
        self.attention_scaling = 1.0


class LeanLlama(nn.Module):
    """The parts of a ``LlamaForCausalLM`` the lean decode loop reads, and nothing else."""

    def __init__(self, cfg: SimpleNamespace, generation: SimpleNamespace):
        super().__init__()
        self.config = cfg
        self.generation_config = generation
        self.model = nn.Module()
        self.model.layers = nn.ModuleList()
        hd = cfg.head_dim
        shapes = {
            "self_attn.q_proj": (cfg.num_attention_heads * hd, cfg.hidden_size),
            "self_attn.k_proj": (cfg.num_key_value_heads * hd, cfg.hidden_size),
            "self_attn.v_proj": (cfg.num_key_value_heads * hd, cfg.hidden_size),
            "self_attn.o_proj": (cfg.hidden_size, cfg.num_attention_heads * hd),
            "mlp.gate_proj": (cfg.intermediate_size, cfg.hidden_size),
            "mlp.up_proj": (cfg.intermediate_size, cfg.hidden_size),
            "mlp.down_proj": (cfg.hidden_size, cfg.intermediate_size),
        }
        for _ in range(cfg.num_hidden_layers):
            layer = nn.Module()
            layer.self_attn, layer.mlp = nn.Module(), nn.Module()
            for name, (out, inp) in shapes.items():
                part, attr = name.split(".")
                # placeholders without memory: the packed-layer cache replaces every one
                setattr(getattr(layer, part), attr, nn.Linear(inp, out, bias=False, device="meta"))
            self.model.layers.append(layer)
        self.lm_head: nn.Module = nn.Linear(
            cfg.hidden_size, cfg.vocab_size, bias=False, device="meta"
        )

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head


def _config(model_dir: Path) -> SimpleNamespace | None:
    try:
        raw = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    rope = raw.get("rope_parameters") or {
        "rope_type": "default",
        "rope_theta": raw.get("rope_theta"),
    }
    if (
        raw.get("model_type") != "llama"
        or any(k not in raw for k in REQUIRED)
        or rope.get("rope_type", "default") != "default"
        or not rope.get("rope_theta")
        or raw.get("attention_bias")
        or raw.get("mlp_bias")
        or raw.get("hidden_act", "silu") != "silu"
        or raw.get("pretraining_tp", 1) != 1
    ):
        return None
    cfg = SimpleNamespace(**raw)
    cfg.rope_parameters = dict(rope)
    cfg.num_key_value_heads = raw.get("num_key_value_heads", raw["num_attention_heads"])
    cfg.head_dim = raw.get("head_dim") or raw["hidden_size"] // raw["num_attention_heads"]
    cfg.rms_norm_eps = raw.get("rms_norm_eps", 1e-6)
    cfg.max_position_embeddings = raw.get("max_position_embeddings", 2048)
    cfg.quantization_config = None
    cfg._attn_implementation = "sdpa"
    return cfg


def _generation(model_dir: Path, cfg: SimpleNamespace) -> SimpleNamespace:
    try:
        raw = json.loads((model_dir / "generation_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = {}
    return SimpleNamespace(
        eos_token_id=raw.get("eos_token_id", getattr(cfg, "eos_token_id", None)),
        top_k=raw.get("top_k"),
    )


def load_lean(model_dir: Path, packed_file: Path, stamp: str) -> LeanLlama | None:
    """The model from ``model_dir``'s config, its safetensors file (norms, embedding) and the
    packed layers in ``packed_file``; None when any part does not fit."""
    from safetensors import safe_open

    from tutor.lm.quant import load_quantized

    cfg = _config(model_dir)
    if cfg is None or not packed_file.is_file():
        return None
    model = LeanLlama(cfg, _generation(model_dir, cfg))
    try:
        with safe_open(str(model_dir / "model.safetensors"), framework="pt") as f:
            embed = f.get_tensor("model.embed_tokens.weight")  # mapped, not read
            model.model.embed_tokens = nn.Embedding.from_pretrained(embed, freeze=True)
            eps = float(cfg.rms_norm_eps)
            for i, layer in enumerate(cast(nn.ModuleList, model.model.layers)):
                pre = f"model.layers.{i}."
                layer.input_layernorm = _Norm(f.get_tensor(pre + "input_layernorm.weight"), eps)
                layer.post_attention_layernorm = _Norm(
                    f.get_tensor(pre + "post_attention_layernorm.weight"), eps
                )
            model.model.norm = _Norm(f.get_tensor("model.norm.weight"), eps)
            if "lm_head.weight" in f.keys():
                head = f.get_tensor("lm_head.weight")
            else:
                head = embed
    except (OSError, KeyError, ValueError) as e:
        log.info("lean load of %s not possible (%s); loading with transformers", model_dir, e)
        return None
    model.model.rotary_emb = _Rope(cfg.head_dim, float(cfg.rope_parameters["rope_theta"]))
    if not load_quantized(model, packed_file, stamp):
        return None
    if any(
        m.weight.is_meta for m in model.modules() if type(m) is nn.Linear and m is not model.lm_head
    ):
        return None  # a layer the cache does not hold: the full load packs it
    if type(model.lm_head) is nn.Linear:  # the head was not on the 8-bit grid: dense, tied
        model.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        model.lm_head.weight = nn.Parameter(head, requires_grad=False)
    model.eval()
    return model
