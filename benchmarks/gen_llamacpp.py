"""The llama.cpp row of ``benchmarks/generation.py``: the same GGUF run by llama-cpp-python.

Added when ``llama_cpp`` is installed (``pip install ".[llamacpp]"``). It decodes the very
prompt ids the other variants get (the HF tokenizer's), greedy, with the same repetition
penalty value; llama.cpp applies it to the generated tokens only (transformers also to the
prompt's), and keeps going past the end-of-turn token like the others. Each run starts from an
empty KV cache (``llm.reset()``), so llama.cpp's prefix reuse does not shorten its TTFT. The
model is the bundled GGUF as shipped (Q4_1 layers, Q8_0 head), in the tutor's own
``LlamaCppGenerator`` (``lm.backend = "llamacpp"``) with the run's torch thread count.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from typing import Any

LABEL = "llama.cpp backend (llama-cpp-python, the shipped GGUF)"


def add_llamacpp(b: Any, run_cls: Any, gaps: Any) -> None:
    """Register the llama.cpp variant on the benchmark ``b`` (a ``generation.Bench``)."""
    if importlib.util.find_spec("llama_cpp") is None:
        print("llama_cpp is not installed: no llama.cpp row", file=sys.stderr)
        return
    import torch

    from tutor.config import LMConfig
    from tutor.lm.llamacpp import LlamaCppGenerator

    t = time.perf_counter()
    lm = LMConfig(backend="llamacpp", model=b.alias)
    gen = LlamaCppGenerator.from_config(lm, n_threads=torch.get_num_threads())
    b.loads.append(("llama.cpp backend: the shipped GGUF, no conversion", time.perf_counter() - t))
    llm = gen.llm

    def run(i: int) -> Any:
        ids = b.encoded[i] if i >= 0 else b.warm_ids
        n = b.n_new if i >= 0 else 2
        llm.reset()  # a cold prefill every run, as the other variants do
        stamps: list[float] = []
        tokens: list[int] = []
        t0 = time.perf_counter()
        for token in llm.generate(
            ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=b.penalty, reset=True
        ):
            stamps.append(time.perf_counter())
            tokens.append(int(token))
            if len(tokens) >= n:
                break
        total = time.perf_counter() - t0
        return run_cls(tokens, stamps[0] - t0, gaps(stamps), total)

    b.add(LABEL, run, dtype="GGUF Q4_1 / Q8_0 (llama.cpp kernels)")
