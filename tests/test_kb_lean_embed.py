"""knowledge_base.lean_embed: the bundled embedder without importing sentence-transformers gives
the vectors sentence-transformers gives (the knowledge base's index stays valid)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from knowledge_base.embed import SentenceTransformerEmbedder, bundled_model_path
from knowledge_base.lean_embed import MeanPoolingEncoder, supported

pytestmark = pytest.mark.slow

TEXTS = [
    "How do I add fractions with different denominators?",
    "Plants make glucose from carbon dioxide and water using light energy.",
    "x",
    "",
    "Ünïcödé, émojis 🙂 and 数学 mixed with 3/4 + 1/8 = 7/8.",
    " ".join(["a long passage about ratios and rates"] * 80),  # far over 256 tokens: truncated
    "Short.",
]


def test_the_vectors_equal_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    path = bundled_model_path()
    assert supported(path)
    ref = SentenceTransformer(str(path), device="cpu").encode(
        TEXTS, batch_size=3, convert_to_numpy=True, normalize_embeddings=True
    )
    lean = MeanPoolingEncoder(path).encode(TEXTS, batch_size=3)
    assert lean.shape == ref.shape == (len(TEXTS), 384) and lean.dtype == np.float32
    assert np.abs(lean - ref).max() < 1e-5
    assert np.allclose(np.linalg.norm(lean, axis=1), 1.0, atol=1e-5)


def test_other_layouts_and_the_switch_use_sentence_transformers(tmp_path, monkeypatch):
    path = bundled_model_path()
    other = Path(shutil.copytree(path, tmp_path / "cls"))
    cfg = json.loads((other / "1_Pooling" / "config.json").read_text())
    cfg.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (other / "1_Pooling" / "config.json").write_text(json.dumps(cfg))
    assert not supported(other) and MeanPoolingEncoder.load(other) is None
    assert MeanPoolingEncoder.load(None) is None
    monkeypatch.setenv("TUTOR_EMBEDDER_BACKEND", "sentence-transformers")
    assert MeanPoolingEncoder.load(path) is None
    emb = SentenceTransformerEmbedder()
    assert type(emb.model).__name__ == "SentenceTransformer"


def test_the_bundled_embedder_does_not_import_sentence_transformers():
    code = (
        "import sys\n"
        "from knowledge_base.embed import SentenceTransformerEmbedder\n"
        "e = SentenceTransformerEmbedder()\n"
        "v = e.encode(['How do I add fractions?', 'Two texts'])\n"
        "assert v.shape == (2, e.dimension == 384 and 384), v.shape\n"
        "print(type(e.model).__name__, type(e.model.forward).__name__,\n"
        "      'sentence_transformers' in sys.modules, 'transformers.modeling_utils' in sys.modules,\n"
        "      'transformers' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    # neither sentence-transformers nor transformers (BERT runs in LeanBert, the tokenizer in
    # the tokenizers library)
    words = out.stdout.split()
    assert words == ["MeanPoolingEncoder", "LeanBert", "False", "False", "False"], out.stderr[
        -2000:
    ]


def test_the_tokenizer_gives_autotokenizers_batches():
    from transformers import AutoTokenizer

    path = bundled_model_path()
    lean = MeanPoolingEncoder(path).tokenizer
    auto = AutoTokenizer.from_pretrained(str(path))
    for batch in (TEXTS, TEXTS[:1], TEXTS[2:4]):
        want = auto(
            batch, padding=True, truncation="longest_first", max_length=256, return_tensors="pt"
        )
        got = lean(batch)
        assert set(got) == {"input_ids", "token_type_ids", "attention_mask"}
        for key in got:
            assert got[key].tolist() == want[key].tolist(), key
    one = auto(TEXTS[0], add_special_tokens=False)["input_ids"]
    assert lean(TEXTS[0], add_special_tokens=False)["input_ids"] == one
