"""A mean-pooling sentence encoder run with transformers alone, for models that are exactly
Transformer -> mean Pooling -> Normalize (the bundled all-MiniLM-L6-v2 is).

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


class MeanPoolingEncoder:
    """The subset of ``SentenceTransformer`` the knowledge base uses, for a mean-pooling model."""

    def __init__(self, directory: Path, device: str | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.device = torch.device(device or "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(str(directory))
        self.model = AutoModel.from_pretrained(str(directory), dtype=torch.float32)
        self.model.to(self.device).eval()
        cfg = _json(directory / "sentence_bert_config.json") or {}
        self.max_seq_length = int(cfg["max_seq_length"])
        self.dimension = int(self.model.config.hidden_size)

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
                enc = self.tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation="longest_first",
                    max_length=self.max_seq_length,
                    return_tensors="pt",
                ).to(self.device)
                tokens = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                vecs = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                if normalize_embeddings:
                    vecs = torch.nn.functional.normalize(vecs, p=2, dim=1)
                out[idx] = vecs.float().cpu().numpy()
        return out
