"""A lean decode loop for Llama-architecture models on CPU (SmolLM2, Llama, TinyLlama, ...).

On a small model on CPU, ``model.generate`` spends as much time in Python and small-op overhead
(cache bookkeeping, masks, hooks, logits processing set-up) as in the matmuls. This runs the same
computation with the model's own weights and far fewer ops per token: fused q/k/v and gate/up
projections, a preallocated KV buffer written in place, a precomputed RoPE table, no masks (one
sequence, causal prefill). The operations and their order follow ``LlamaForCausalLM`` with SDPA
attention, so greedy tokens equal ``generate``'s (tested on a tiny model and reported by
``benchmarks/generation.py`` on the bundled one). Logits processing reuses transformers'
processors, so repetition penalty, n-gram blocking, temperature and top-p behave as in
``generate``.

``LlamaDecoder.unsupported_reason(model)`` says why a model must go through ``generate``
instead (another architecture, biases, dynamic RoPE, a peft adapter, a GPU...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from tutor.lm.lora import LoraLinear, LoraSwitch, PackedLora, fused_adapter
from tutor.lm.quant import COMPUTE_DTYPE, Int4Linear, Int8Linear

log = logging.getLogger(__name__)

STATIC_ROPE = ("default", "linear", "llama3")  # inv_freq does not depend on the sequence length


@contextmanager
def decode_threads(threads: int) -> Iterator[None]:
    """Run the block at ``threads`` torch threads (0 or torch's count: unchanged). Torch's count
    is process-wide: the decode loop holds the generator's lock while it runs, and the count is
    restored when the block ends."""
    before = torch.get_num_threads()
    if not threads or threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fuse(parts: Sequence[nn.Module]) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """One matmul for several projections of the same input, or None to call them one by one.

    Dense weights are concatenated and the original parameters re-pointed at slices of the
    fused tensor, so no memory is duplicated and ``generate`` still sees the same values.
    Unmerged LoRA adapters (``tutor.lm.lora``) fuse into one more pair of small matmuls.
    """
    adapter = fused_adapter(list(parts))
    if adapter is not None:
        switch = next(p.switch for p in parts if isinstance(p, LoraLinear))
        base = _fuse([p.base if isinstance(p, LoraLinear) else p for p in parts])
        return None if base is None else _with_adapter(base, adapter, switch)
    if all(type(p) is nn.Linear and p.bias is None for p in parts):
        dense = cast("list[nn.Linear]", list(parts))
        weights = [p.weight for p in dense]
        if len({(w.dtype, w.shape[1]) for w in weights}) != 1:
            return None
        with torch.no_grad():
            fused = torch.cat([w.detach() for w in weights])
            start = 0
            for p in dense:
                n = p.weight.shape[0]
                p.weight.data = fused[start : start + n]
                start += n
        return lambda x: F.linear(x, fused)
    if all(type(p) is Int4Linear for p in parts):
        return Int4Linear.concat(cast("list[Int4Linear]", list(parts)))
    if all(type(p) is Int8Linear for p in parts):
        return Int8Linear.concat(cast("list[Int8Linear]", list(parts)))
    return None


def _with_adapter(
    base: Callable[[torch.Tensor], torch.Tensor], lora: PackedLora, switch: LoraSwitch
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``base(x)`` plus the unmerged adapter while ``switch`` is on, without module calls
    around it (per token, the calls would cost as much as the adapter's two small matmuls).
    Over int4 layers the bf16 input is cast once for both."""
    if isinstance(base, Int4Linear):
        mm4 = torch.ops.aten._weight_int4pack_mm_for_cpu
        packed, group, sz = base.packed, base.group_size, base.scales_and_zeros

        def project(x: torch.Tensor) -> torch.Tensor:
            xb = x.reshape(-1, x.shape[-1]).to(COMPUTE_DTYPE)
            y = mm4(xb, packed, group, sz)
            if switch.on:
                y = y + lora.delta(xb)
            return y.reshape(*x.shape[:-1], y.shape[-1]).to(x.dtype)

        # what the native step (tutor.lm.native) reads instead of calling this
        project.tutor_base, project.tutor_lora, project.tutor_switch = (  # type: ignore[attr-defined]
            base,
            lora,
            switch,
        )
        return project

    return lambda x: base(x) + lora.delta_of(x) if switch.on else base(x)


def _single(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    if isinstance(module, LoraLinear):
        return _with_adapter(module.base, module.lora, module.switch)
    return module


DEFAULT_TOP_K = 50  # transformers' GenerationConfig default (a test holds them equal)


def sampling_top_k(model: Any) -> int | None:
    """The top-k ``generate`` applies when sampling: the model's generation config, else
    transformers' global default (50), so both decode paths sample alike."""
    top_k = getattr(getattr(model, "generation_config", None), "top_k", None)
    return DEFAULT_TOP_K if top_k is None else top_k


class _Layer:
    def __init__(self, layer: Any, split_qkv: list[int]):
        attn, mlp = layer.self_attn, layer.mlp
        self.norm_in = layer.input_layernorm.weight
        self.norm_post = layer.post_attention_layernorm.weight
        self.eps = layer.input_layernorm.variance_epsilon
        self.split = split_qkv
        qkv = _fuse([attn.q_proj, attn.k_proj, attn.v_proj])
        # fused: one matmul whose output is [q | k | v], so q and k are rotated in one go
        self.qkv_fused = qkv
        self.qkv: Callable[[torch.Tensor], Sequence[torch.Tensor]]
        self.gate_up: Callable[[torch.Tensor], Sequence[torch.Tensor]]
        if qkv is None:
            q, k, v = attn.q_proj, attn.k_proj, attn.v_proj
            self.qkv = lambda x: (q(x), k(x), v(x))
        else:
            self.qkv = lambda x: qkv(x).split(split_qkv, -1)
        gate_up = _fuse([mlp.gate_proj, mlp.up_proj])
        if gate_up is None:
            g, u = mlp.gate_proj, mlp.up_proj
            self.gate_up = lambda x: (g(x), u(x))
        else:
            self.gate_up = lambda x: gate_up(x).chunk(2, -1)
        self.gate_up_fused = gate_up
        self.o_proj = _single(attn.o_proj)
        self.down_proj = _single(mlp.down_proj)


class LlamaDecoder:
    """Prefill + token-by-token decode of one sequence over a ``LlamaForCausalLM``'s weights."""

    def __init__(self, model: Any, max_positions: int):
        reason = self.unsupported_reason(model)
        if reason:
            raise ValueError(f"LlamaDecoder cannot run this model: {reason}")
        cfg = model.config
        self.model = model
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.scaling = self.head_dim**-0.5
        inner = model.model
        self.dtype = inner.embed_tokens.weight.dtype
        self.embed = inner.embed_tokens
        self.norm = inner.norm.weight
        self.eps = inner.norm.variance_epsilon
        self.lm_head = model.lm_head
        split = [self.n_heads * self.head_dim, self.n_kv * self.head_dim, self.n_kv * self.head_dim]
        self.layers = [_Layer(layer, split) for layer in inner.layers]
        rope = inner.rotary_emb
        self.max_positions = max_positions
        # Same arithmetic as LlamaRotaryEmbedding.forward, done once for every position.
        pos = torch.arange(max_positions, dtype=torch.float32)
        freqs = pos[:, None] * rope.inv_freq.to(torch.float32)[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos = (emb.cos() * rope.attention_scaling).to(self.dtype)
        self.sin = (emb.sin() * rope.attention_scaling).to(self.dtype)
        self._kv: torch.Tensor | None = None
        self._len = 0
        self.threads = 0  # decode steps' torch threads (tutor.lm.speed's choice); 0: unchanged
        self.native = self._native_step(model)

    def _native_step(self, model: Any) -> Any:
        """The one-call C decode step (``tutor.lm.native``) where the decode path chose it
        (``model.tutor_native_dir`` set), else None; a model or machine it cannot serve logs why
        once and keeps the torch loop."""
        cache_dir = getattr(model, "tutor_native_dir", None)
        if cache_dir is None:
            return None
        from tutor.lm.native import Unsupported, native_step

        try:
            return native_step(self, cache_dir or None)
        except Unsupported as e:
            if getattr(model, "tutor_native_warned", None) != str(e):
                log.warning("native decode step not used: %s", e)
                model.tutor_native_warned = str(e)
            return None

    @staticmethod
    def unsupported_reason(model: Any) -> str | None:
        """None when the lean path computes exactly what the model's own forward does."""
        cfg = getattr(model, "config", None)
        if type(model).__name__ not in ("LlamaForCausalLM", "LeanLlama") or cfg is None:
            return f"{type(model).__name__} is not a LlamaForCausalLM"
        if getattr(cfg, "model_type", "") != "llama":
            return f"model_type {cfg.model_type!r}"
        if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False):
            return "biased projections"
        if getattr(cfg, "hidden_act", "silu") != "silu":
            return f"activation {cfg.hidden_act!r}"
        if getattr(cfg, "pretraining_tp", 1) != 1:
            return "pretraining_tp > 1"
        rope = (getattr(cfg, "rope_parameters", None) or {}).get("rope_type", "default")
        if rope not in STATIC_ROPE:
            return f"rope_type {rope!r} (length-dependent)"
        if getattr(cfg, "quantization_config", None) is not None:
            return "a quantization_config (bitsandbytes/GGUF-quantized weights)"
        if getattr(cfg, "_attn_implementation", "sdpa") not in ("sdpa", "eager", None):
            return f"attention implementation {cfg._attn_implementation!r}"
        if model.device.type != "cpu":
            return f"device {model.device} (the lean loop targets CPU decoding)"
        if model.dtype not in (torch.float32, torch.bfloat16):
            return f"dtype {model.dtype}"
        return None

    # -- forward ------------------------------------------------------------------------
    def _rms(self, h: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        if h.dtype == torch.float32:
            # one fused op; in float32 it gives LlamaRMSNorm's values bit for bit (tested)
            return F.rms_norm(h, (h.shape[-1],), weight, eps)
        # LlamaRMSNorm, op for op (it normalises in float32, then scales in h's dtype)
        x = h.to(torch.float32)
        var = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + eps)
        return weight * x.to(h.dtype)

    @staticmethod
    def _rotate_half(x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    def reset(self, total: int) -> None:
        """Start a new sequence that will hold at most ``total`` tokens."""
        if total > self.max_positions:
            raise ValueError(f"{total} tokens exceed the decoder's {self.max_positions} positions")
        n = len(self.layers)
        kv = self._kv
        if kv is None or kv.shape[3] < total:
            # (layer, k/v, kv head, position, head dim); empty: every slot is written before use
            self._kv = torch.empty(n, 2, self.n_kv, total, self.head_dim, dtype=self.dtype)
        self._len = 0

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Feed ``ids`` (1-D) after the tokens already seen; return the last position's logits
        as float32, like ``generate``'s scores."""
        assert self._kv is not None, "call reset() first"
        t = ids.shape[0]
        start, end = self._len, self._len + t
        if t == 1 and self.native is not None:
            logits = self.native(int(ids[0]), start, self._kv)
            self._len = end
            return logits
        h = self.embed(ids)  # (t, hidden)
        cos, sin = self.cos[start:end], self.sin[start:end]
        hd, nh, nkv = self.head_dim, self.n_heads, self.n_kv
        causal = t > 1
        mask = None
        if causal and start > 0:  # a chunk after earlier tokens: causal within the chunk
            mask = torch.arange(end)[None, :] <= torch.arange(start, end)[:, None]
        for i, layer in enumerate(self.layers):
            x = self._rms(h, layer.norm_in, layer.eps)
            if layer.qkv_fused is not None:
                out = layer.qkv_fused(x)  # (t, (nh + 2 nkv) hd): q, k, v heads side by side
                heads = out.view(t, nh + 2 * nkv, hd).transpose(0, 1)
                qk, v = heads[: nh + nkv], heads[nh + nkv :]
                qk = (qk * cos) + (self._rotate_half(qk) * sin)
                q, k = qk[:nh], qk[nh:]
            else:
                q, k, v = layer.qkv(x)
                q = q.view(t, nh, hd).transpose(0, 1)
                k = k.view(t, nkv, hd).transpose(0, 1)
                v = v.view(t, nkv, hd).transpose(0, 1)
                q = (q * cos) + (self._rotate_half(q) * sin)
                k = (k * cos) + (self._rotate_half(k) * sin)
            cache = self._kv[i]
            cache[0, :, start:end] = k
            cache[1, :, start:end] = v
            o = F.scaled_dot_product_attention(
                q[None],
                cache[0, :, :end][None],
                cache[1, :, :end][None],
                attn_mask=mask,
                is_causal=causal and mask is None,
                scale=self.scaling,
                enable_gqa=nh != nkv,
            )
            o = o.transpose(1, 2).reshape(t, nh * hd)
            h = h + layer.o_proj(o)
            x = self._rms(h, layer.norm_post, layer.eps)
            gate, up = layer.gate_up(x)
            h = h + layer.down_proj(F.silu(gate) * up)
        self._len = end
        h = self._rms(h[-1:], self.norm, self.eps)
        return self.lm_head(h).to(torch.float32)

    # -- decoding -----------------------------------------------------------------------
    @torch.inference_mode()
    def generate(
        self,
        input_ids: torch.Tensor,
        *,
        max_new_tokens: int,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0,
        eos_token_id: int | Sequence[int] | None = None,
        stopping_criteria: Any = None,
        streamer: Any = None,
    ) -> torch.Tensor:
        """``model.generate`` for one sequence: returns prompt + new tokens, shape (1, n).

        The streamer receives the prompt first, then each new token (``TextIteratorStreamer``
        protocol); ``stopping_criteria`` is called after every token as in ``generate``.
        """
        ids = input_ids.reshape(1, -1).to("cpu")
        processors = _processors(
            do_sample, temperature, top_k, top_p, repetition_penalty, no_repeat_ngram_size
        )
        if eos_token_id is None:
            eos: set[int] = set()
        elif isinstance(eos_token_id, int):
            eos = {eos_token_id}
        else:
            eos = set(eos_token_id)
        if streamer is not None:
            streamer.put(ids.cpu())
        self.reset(ids.shape[1] + max_new_tokens)
        logits = self.forward(ids[0])
        with decode_threads(self.threads):  # prefill used all of torch's threads
            for step in range(max_new_tokens):
                scores = logits
                for processor in processors:
                    scores = processor(ids, scores)
                if do_sample:
                    probs = F.softmax(scores, dim=-1)
                    nxt = torch.multinomial(probs, num_samples=1).squeeze(1)
                else:
                    nxt = torch.argmax(scores, dim=-1)
                ids = torch.cat([ids, nxt[:, None]], dim=-1)
                if streamer is not None:
                    streamer.put(nxt.cpu())
                if int(nxt) in eos or step == max_new_tokens - 1:
                    break
                if stopping_criteria is not None and bool(stopping_criteria(ids, scores).all()):
                    break
                logits = self.forward(nxt)
        if streamer is not None:
            streamer.end()
        return ids


class RepetitionPenalty:
    """transformers' ``RepetitionPenaltyLogitsProcessor`` for (batch, vocab) scores: every
    token already in ``input_ids`` has its score divided by ``penalty`` (multiplied where
    negative)."""

    def __init__(self, penalty: float) -> None:
        self.penalty = penalty

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        vocab = scores.shape[-1]
        ids = input_ids.clamp(max=vocab)  # ids past the vocab land on the padded column
        padded = F.pad(scores, (0, 1))
        score = padded.gather(1, ids)
        score = torch.where(score < 0, score * self.penalty, score / self.penalty)
        return padded.scatter(1, ids, score)[..., :vocab]


def _processors(
    do_sample: bool,
    temperature: float,
    top_k: int | None,
    top_p: float,
    repetition_penalty: float,
    no_repeat_ngram_size: int,
) -> list[Any]:
    """The logits processors for these options, in ``generate``'s order: transformers' own,
    except for greedy decoding with only a repetition penalty (the default), which gets
    ``RepetitionPenalty`` and no ``transformers`` import."""
    sampling = do_sample and (temperature != 1.0 or bool(top_k) or top_p < 1.0)
    if no_repeat_ngram_size <= 0 and not sampling:
        return [] if repetition_penalty == 1.0 else [RepetitionPenalty(repetition_penalty)]
    from transformers import (
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    out: list[Any] = []
    if repetition_penalty != 1.0:
        out.append(RepetitionPenaltyLogitsProcessor(penalty=repetition_penalty))
    if no_repeat_ngram_size > 0:
        out.append(NoRepeatNGramLogitsProcessor(no_repeat_ngram_size))
    if do_sample:  # the order of transformers' _get_logits_processor
        if temperature != 1.0:
            out.append(TemperatureLogitsWarper(temperature))
        if top_k:
            out.append(TopKLogitsWarper(top_k=top_k))
        if top_p < 1.0:
            out.append(TopPLogitsWarper(top_p=top_p))
    return out
