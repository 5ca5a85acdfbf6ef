"""A mean-pooling sentence encoder without sentence-transformers, for models that are exactly
Transformer -> mean Pooling -> Normalize (the bundled all-MiniLM-L6-v2 is). A plain BERT runs
in ``LeanBert`` (torch ops on the mapped weights, no transformers modelling code); other
transformers run through ``AutoModel``.

Importing sentence-transformers costs a serving process ~3-4 s and ~250 MB on a 2-core machine
(it pulls in scikit-learn, peft and, where installed, bitsandbytes), all for what is, for such a
model, a tokenizer, one BERT forward, a masked mean and an L2 norm. ``MeanPoolingEncoder`` does
those with the same tokenizer settings (padding, truncation at ``max_seq_length``) and gives the
same vectors (``tests/test_kb_lean_embed.py`` compares it with ``SentenceTransformer`` on the
bundled model). Any other model layout returns ``None`` from ``load`` and sentence-transformers
is used as before; ``TUTOR_EMBEDDER_BACKEND=sentence-transformers`` forces it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

LAYOUT = [
    ("", "sentence_transformers.models.Transformer"),
    ("1_Pooling", "sentence_transformers.models.Pooling"),
    ("2_Normalize", "sentence_transformers.models.Normalize"),
]


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def supported(directory: Path) -> bool:
    """Whether ``directory`` holds a Transformer -> mean Pooling -> Normalize model."""
    modules = _json(directory / "modules.json")
    if not isinstance(modules, list):
        return False
    layout = [(str(m.get("path", "")), str(m.get("type", ""))) for m in modules]
    if layout != LAYOUT:
        return False
    pooling = _json(directory / "1_Pooling" / "config.json") or {}
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    cfg = _json(directory / "sentence_bert_config.json") or {}
    return (
        modes == {"pooling_mode_mean_tokens"}
        and not cfg.get("do_lower_case", False)
        and int(cfg.get("max_seq_length") or 0) > 0
        and (directory / "config.json").is_file()
        and (directory / "tokenizer.json").is_file()
    )


class LeanBert:
    """``BertModel``'s forward for a plain BERT (absolute positions, exact GELU, LayerNorm after
    each block) in torch ops, on the safetensors weights mapped from disk: no transformers
    modelling code to import (torch's compiler and distributed packages come with it)."""

    def __init__(self, directory: Path, cfg: dict[str, Any]) -> None:
        from safetensors import safe_open

        with safe_open(str(directory / "model.safetensors"), framework="pt") as f:
            self.w = {k: f.get_tensor(k) for k in f.keys()}
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.hidden = int(cfg["hidden_size"])

    @classmethod
    def load(cls, directory: Path) -> LeanBert | None:
        cfg = _json(directory / "config.json") or {}
        plain = (
            cfg.get("model_type") == "bert"
            and cfg.get("hidden_act") == "gelu"
            and cfg.get("position_embedding_type", "absolute") == "absolute"
            and (directory / "model.safetensors").is_file()
        )
        if not plain:
            return None
        lean = cls(directory, cfg)
        return lean if "embeddings.word_embeddings.weight" in lean.w else None

    def _norm(self, x: Any, name: str) -> Any:
        import torch.nn.functional as F

        w = self.w
        return F.layer_norm(x, (self.hidden,), w[name + ".weight"], w[name + ".bias"], self.eps)

    def _linear(self, x: Any, name: str) -> Any:
        import torch.nn.functional as F

        return F.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
        """The last hidden state, (batch, tokens, hidden)."""
        import torch
        import torch.nn.functional as F

        w, (b, n) = self.w, input_ids.shape
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        h = F.embedding(input_ids, w["embeddings.word_embeddings.weight"])
        h = h + F.embedding(token_type_ids, w["embeddings.token_type_embeddings.weight"])
        h = h + F.embedding(torch.arange(n), w["embeddings.position_embeddings.weight"])[None]
        h = self._norm(h, "embeddings.LayerNorm")
        mask = attention_mask[:, None, None, :].bool()
        hd = self.hidden // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (
                self._linear(h, p + f"attention.self.{part}")
                .view(b, n, self.heads, hd)
                .transpose(1, 2)
                for part in ("query", "key", "value")
            )
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            a = a.transpose(1, 2).reshape(b, n, self.hidden)
            h = self._norm(
                self._linear(a, p + "attention.output.dense") + h, p + "attention.output.LayerNorm"
            )
            x = F.gelu(self._linear(h, p + "intermediate.dense"))
            h = self._norm(self._linear(x, p + "output.dense") + h, p + "output.LayerNorm")
        return h


class BatchTokenizer:
    """``tokenizer.json`` through the ``tokenizers`` library, as ``transformers``' fast
    tokenizer calls it here (``padding=True``, ``truncation="longest_first"``, ``max_length``):
    a batch padded to its longest text, as tensors ``input_ids``, ``token_type_ids``,
    ``attention_mask``. The tests compare it with the ``transformers`` call."""

    def __init__(self, directory: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self.backend = Tokenizer.from_file(str(directory / "tokenizer.json"))
        config = _json(directory / "tokenizer_config.json") or {}
        pad = config.get("pad_token") or "[PAD]"
        pad = pad.get("content", "[PAD]") if isinstance(pad, dict) else str(pad)
        pad_id = self.backend.token_to_id(pad)
        self.backend.enable_truncation(max_length=max_length, strategy="longest_first")
        self.backend.enable_padding(pad_id=pad_id if pad_id is not None else 0, pad_token=pad)

    def __call__(
        self, texts: str | Sequence[str], add_special_tokens: bool = True
    ) -> dict[str, Any]:
        """A batch as tensors; one text (a ``str``) as plain lists, as ``transformers`` gives
        without ``return_tensors``."""
        import torch

        single = isinstance(texts, str)
        batch = [texts] if isinstance(texts, str) else list(texts)
        encs = self.backend.encode_batch(batch, add_special_tokens=add_special_tokens)
        out = {
            "input_ids": [e.ids for e in encs],
            "token_type_ids": [e.type_ids for e in encs],
            "attention_mask": [e.attention_mask for e in encs],
        }
        if single:
            return {k: v[0] for k, v in out.items()}
        return {k: torch.tensor(v) for k, v in out.items()}


class MeanPoolingEncoder:
    """The subset of ``SentenceTransformer`` the knowledge base uses, for a mean-pooling model."""

    def __init__(self, directory: Path, device: str | None = None) -> None:
        import torch

        self.device = torch.device(device or "cpu")
        cfg = _json(directory / "sentence_bert_config.json") or {}
        self.max_seq_length = int(cfg["max_seq_length"])
        # tokenizer.json straight into the tokenizers library: no transformers import at all
        self.tokenizer = BatchTokenizer(directory, self.max_seq_length)
        lean = LeanBert.load(directory) if self.device.type == "cpu" else None
        if lean is not None:
            self.forward: Any = lean
            self.dimension = lean.hidden
        else:
            from transformers import AutoModel

            model = AutoModel.from_pretrained(str(directory), dtype=torch.float32)
            model.to(self.device).eval()
            self.forward = lambda **enc: model(**enc).last_hidden_state
            self.dimension = int(model.config.hidden_size)

    @classmethod
    def load(cls, directory: Path | None, device: str | None = None) -> MeanPoolingEncoder | None:
        if directory is None or not supported(directory):
            return None
        if os.environ.get("TUTOR_EMBEDDER_BACKEND", "") == "sentence-transformers":
            return None
        return cls(directory, device)

    def get_sentence_embedding_dimension(self) -> int:
        return self.dimension

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int = 32,
        show_progress_bar: bool = False,
        convert_to_numpy: bool = True,
        normalize_embeddings: bool = True,
    ) -> np.ndarray:
        """Vectors in input order, batched longest first (as sentence-transformers does)."""
        import torch

        del show_progress_bar, convert_to_numpy  # always numpy, never a bar
        texts = list(sentences)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                idx = order[start : start + batch_size]
                enc = {
                    k: v.to(self.device) for k, v in self.tokenizer([texts[i] for i in idx]).items()
                }
                tokens = self.forward(**enc)
                mask = enc["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                vecs = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                if normalize_embeddings:
                    vecs = torch.nn.functional.normalize(vecs, p=2, dim=1)
                out[idx] = vecs.float().cpu().numpy()
        return out
