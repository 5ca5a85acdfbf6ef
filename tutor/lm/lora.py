"""Serving a LoRA adapter on CPU without giving up the packed int4 base.

Merging an adapter into the base (``W + s * B @ A``) moves every weight off the 4-bit grid the
bundled model ships on, so the int4 repack no longer applies and a merged model decodes on
dense weights, 2-3x slower. Here the adapter stays beside a packed (int4/int8) base instead:
each adapted layer computes ``base(x) + (x @ A.T) @ B.T`` with ``s`` folded into ``B`` and A, B
stored as int8 rows (``PackedLora``). On a dense path the adapter is merged in float32, which
costs nothing per token. The lean decode loop (``tutor.lm.fast``) fuses the adapters of q/k/v
and of gate/up as it fuses their bases. Figures: ``benchmarks/lora_decode.py``.

``read_lora`` reads a peft LoRA directory without peft (plain LoRA: no DoRA, no bias, no extra
trained modules); it returns None with the reason for any other adapter, which then goes
through peft's own merge as before.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

PEFT_PREFIX = "base_model.model."
KERNEL_BLOCK = 16  # _weight_int8pack_mm needs its inner dimension to be a multiple of this


@dataclass
class LoraPair:
    """One adapted layer: ``delta(x) = (x @ a.T) @ b.T``; ``b`` already holds the scaling."""

    a: torch.Tensor  # (r, in)
    b: torch.Tensor  # (out, r)

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])


@dataclass
class LoraWeights:
    pairs: dict[str, LoraPair]  # by module name in the base model ("model.layers.0.mlp.up_proj")
    rank: int
    path: str


def _unsupported(cfg: dict[str, Any]) -> str:
    if cfg.get("peft_type", "LORA") != "LORA":
        return f"peft_type {cfg.get('peft_type')!r}"
    for key, label in (
        ("use_dora", "DoRA"),
        ("fan_in_fan_out", "fan_in_fan_out"),
        ("lora_bias", "a LoRA bias"),
        ("modules_to_save", "extra trained modules (modules_to_save)"),
        ("layer_replication", "layer replication"),
        ("trainable_token_indices", "trained token embeddings"),
    ):
        if cfg.get(key):
            return label
    if cfg.get("bias", "none") != "none":
        return f"bias={cfg['bias']!r}"
    return ""


def _alpha_for(name: str, cfg: dict[str, Any]) -> float:
    """``lora_alpha``, or the ``alpha_pattern`` entry that matches ``name`` as peft matches it."""
    for pattern, alpha in (cfg.get("alpha_pattern") or {}).items():
        if re.match(rf"(.*\.)?{pattern}$", name):
            return float(alpha)
    return float(cfg.get("lora_alpha", 8))


def read_lora(adapter: str | Path) -> tuple[LoraWeights | None, str]:
    """The adapter's A/B pairs with the scaling folded into B, or None and why not."""
    path = Path(adapter).expanduser()
    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        return None, f"no adapter_model.safetensors in {path}"
    cfg = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    reason = _unsupported(cfg)
    if reason:
        return None, reason
    from safetensors.torch import load_file

    tensors = load_file(str(weights))
    pairs: dict[str, LoraPair] = {}
    for key, a in tensors.items():
        if not key.endswith(".lora_A.weight"):
            if not key.endswith(".lora_B.weight"):
                return None, f"a tensor that is not a LoRA A/B matrix ({key})"
            continue
        stem = key.removesuffix(".lora_A.weight")
        b = tensors.get(stem + ".lora_B.weight")
        if b is None or a.dim() != 2 or b.dim() != 2 or b.shape[1] != a.shape[0]:
            return None, f"{stem} has no matching lora_B of rank {a.shape[0]}"
        name = stem.removeprefix(PEFT_PREFIX)
        r = a.shape[0]
        alpha = _alpha_for(name, cfg)
        scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
        pairs[name] = LoraPair(a.to(torch.float32), b.to(torch.float32) * scale)
    if not pairs:
        return None, "no LoRA matrices"
    rank = max(p.rank for p in pairs.values())
    return LoraWeights(pairs, rank, str(path)), ""


def _int8_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per row with a bf16 scale, as ``_weight_int8pack_mm`` takes it."""
    scale = w.abs().amax(1).clamp(min=1e-12) / 127
    q = (w / scale[:, None]).round().clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scale.to(torch.bfloat16)


@dataclass
class PackedLora:
    """An adapter (or several side by side) as int8 rows: ``delta(xb) = mm8(mm8(xb, A), B)``
    for a bf16 input ``xb``. Concatenating parts is exact: every row keeps its own scale."""

    a_q: torch.Tensor  # (r, in) int8
    a_s: torch.Tensor  # (r,) bf16
    b_q: torch.Tensor  # (out, r) int8
    b_s: torch.Tensor  # (out,) bf16

    @classmethod
    def of(cls, pair: LoraPair) -> PackedLora:
        return cls(*_int8_rows(pair.a), *_int8_rows(pair.b)).padded()

    def padded(self) -> PackedLora:
        """The rank padded with zeros to a multiple of 16: the int8 kernel reads its inner
        dimension in blocks of 16 (other sizes gave garbage or crashed in torch 2.13)."""
        r = self.a_q.shape[0]
        extra = -r % KERNEL_BLOCK
        if not extra:
            return self
        return PackedLora(
            torch.cat([self.a_q, self.a_q.new_zeros(extra, self.a_q.shape[1])]),
            torch.cat([self.a_s, self.a_s.new_ones(extra)]),
            torch.cat([self.b_q, self.b_q.new_zeros(self.b_q.shape[0], extra)], 1).contiguous(),
            self.b_s,
        )

    def delta(self, xb: torch.Tensor) -> torch.Tensor:
        mm8 = torch.ops.aten._weight_int8pack_mm
        return mm8(mm8(xb, self.a_q, self.a_s), self.b_q, self.b_s)

    def delta_of(self, x: torch.Tensor) -> torch.Tensor:
        """``delta`` for any input: flattened to rows in bf16, back in ``x``'s shape and dtype."""
        d = self.delta(x.reshape(-1, x.shape[-1]).to(torch.bfloat16))
        return d.reshape(*x.shape[:-1], d.shape[-1]).to(x.dtype)


class LoraSwitch:
    """Whether a model's unmerged adapter runs: one per model, shared by its ``LoraLinear``
    layers and the lean loop's fused projections. Off, the packed base runs alone, at no cost
    (``GenerationOptions.adapter``: explain mode turns it off, tutoring turns keep it)."""

    def __init__(self) -> None:
        self.on = True


class LoraLinear(nn.Module):
    """A packed (int4/int8) linear layer with a LoRA adapter applied beside it, unmerged.

    The adapter's matrices are int8 per row and run in bf16 like the packed layers: on the
    CPU this was measured on, float32 ones cost half as much again per token (memory traffic).
    The rounding touches only the adapter's small correction (teacher-forced agreement with
    the merged float32 model: ``benchmarks/lora_decode.py``)."""

    def __init__(self, base: nn.Module, pair: LoraPair, switch: LoraSwitch | None = None):
        super().__init__()
        if pair.a.shape[1] % KERNEL_BLOCK:
            raise ValueError(
                f"an unmerged adapter needs an input size divisible by {KERNEL_BLOCK}, "
                f"got {pair.a.shape[1]}"
            )
        self.base = base
        self.lora = PackedLora.of(pair)
        self.rank = int(self.lora.a_q.shape[0])  # padded
        self.in_features = int(pair.a.shape[1])
        self.out_features = int(pair.b.shape[0])
        self.switch = switch if switch is not None else LoraSwitch()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        return y + self.lora.delta_of(x) if self.switch.on else y

    def extra_repr(self) -> str:
        return f"LoRA r={self.rank} (padded; unmerged, int8)"


def fused_adapter(parts: list[nn.Module]) -> PackedLora | None:
    """One adapter computing ``cat([delta_i(x)])`` for projections of the same input: A's rows
    are the parts' A rows, B is block-diagonal (zero blocks for parts without an adapter)."""
    if not any(isinstance(p, LoraLinear) for p in parts):
        return None
    outs = [int(getattr(p, "out_features", 0)) for p in parts]
    ranks = [p.rank if isinstance(p, LoraLinear) else 0 for p in parts]
    b_q = torch.zeros(sum(outs), sum(ranks), dtype=torch.int8)
    b_s = torch.ones(sum(outs), dtype=torch.bfloat16)
    a_q, a_s = [], []
    row = col = 0
    for p, n, r in zip(parts, outs, ranks, strict=True):
        if isinstance(p, LoraLinear):
            a_q.append(p.lora.a_q)
            a_s.append(p.lora.a_s)
            b_q[row : row + n, col : col + r] = p.lora.b_q
            b_s[row : row + n] = p.lora.b_s
        row, col = row + n, col + r
    return PackedLora(torch.cat(a_q), torch.cat(a_s), b_q, b_s).padded()


def apply_lora(model: Any, lora: LoraWeights) -> str:
    """Put the adapter on ``model`` in place: merged in float32 into dense weights, unmerged
    beside packed (int4/int8) ones. Returns how, for the log and ``tutor config show``."""
    modules = dict(model.named_modules())
    missing = [name for name in lora.pairs if name not in modules]
    if missing:
        from tutor.errors import ModelNotFoundError

        raise ModelNotFoundError(
            f"adapter {lora.path} does not fit this model: it adapts {missing[0]}, which the "
            f"model does not have ({len(missing)} such layer(s)); was it trained on another "
            f"base model? Pass the adapter of a fine-tune run of this model"
        )
    merged = wrapped = 0
    switch = LoraSwitch()
    for name, pair in lora.pairs.items():
        module = modules[name]
        if type(module) is nn.Linear:
            w = module.weight
            if tuple(w.shape) != (pair.b.shape[0], pair.a.shape[1]):
                from tutor.errors import ModelNotFoundError

                raise ModelNotFoundError(
                    f"adapter {lora.path} does not fit this model: its {name} is "
                    f"{pair.b.shape[0]}x{pair.a.shape[1]}, the model's {tuple(w.shape)}"
                )
            with torch.no_grad():
                w.copy_((w.to(torch.float32) + pair.b @ pair.a).to(w.dtype))
            merged += 1
            continue
        parent_name, _, attr = name.rpartition(".")
        setattr(modules[parent_name], attr, LoraLinear(module, pair, switch))
        wrapped += 1
    if wrapped and not merged:  # a half-merged adapter cannot be switched off
        model.tutor_lora_switch = switch  # HFGenerator turns it off per call (options.adapter)
    if wrapped and merged:
        return (
            f"LoRA r={lora.rank}: {wrapped} layers unmerged beside packed weights, {merged} merged"
        )
    if wrapped:
        return f"LoRA r={lora.rank} unmerged beside the packed weights ({wrapped} layers)"
    return f"LoRA r={lora.rank} merged into the weights ({merged} layers)"
