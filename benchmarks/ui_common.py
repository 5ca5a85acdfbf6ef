"""Shared setup of the web-UI benchmarks: the product's own pipeline (bundled MiniLM embedder over
the sample course, real scrypt accounts) with a chosen LM backend, and a generator wrapper that
records the backend's own time to first token for every turn."""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CURRICULUM = ROOT / "data" / "curriculum"
REPLY = (
    "Let us think about it step by step. The course says this depends on a few ideas [1]. "
    "What do you notice first about the numbers in the question, and which rule could you use?"
)


class TimedGenerator:
    """Wraps a generator; ``ttft`` gets the seconds from ``stream()`` to its first delta and
    ``started`` the ``perf_counter`` time of each ``stream()`` call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_window = getattr(inner, "context_window", 4096)
        self.ttft: list[float] = []
        self.started: list[float] = []
        self._lock = threading.Lock()

    def count_tokens(self, messages: Any) -> int:
        return self.inner.count_tokens(messages)

    def stream(self, messages: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        first = True
        for delta in self.inner.stream(messages, **kw):
            if first:
                with self._lock:
                    self.ttft.append(time.perf_counter() - t0)
                    self.started.append(t0)
                first = False
            yield delta


def time_turns(agent: Any) -> list[float]:
    """Record when each ``agent.respond`` call starts (``perf_counter``); returns the list."""
    calls: list[float] = []
    respond = agent.respond

    def timed(*a: Any, **k: Any) -> Any:
        calls.append(time.perf_counter())
        return respond(*a, **k)

    agent.respond = timed
    return calls


def questions(n: int) -> list[str]:
    import json

    rows = [json.loads(x) for x in (CURRICULUM / "qa.jsonl").read_text().splitlines() if x]
    qs = [r["question"] for r in rows]
    return [qs[i % len(qs)] for i in range(n)]


def build(root: Path, generator: Any, *, students: int = 2, embedder: str = "minilm") -> Any:
    """A UIContext like ``tutor serve`` builds, over ``data/curriculum``."""
    from ui.testing import sample_context

    emb = None
    if embedder == "minilm":
        from tutor.builders import build_embedder
        from tutor.config import load_config

        emb = build_embedder(load_config(env={}, file_values={}))
    t0 = time.perf_counter()
    users = (("mrs-k", "teacher"),) + tuple((f"s{i:02d}", "student") for i in range(students))
    ctx = sample_context(
        root, generator, docs_dir=CURRICULUM, embedder=emb, users=users, kdf_n=2**14
    )
    print(
        f"# course indexed and {students} accounts made in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )
    return ctx


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    from results import percentile

    return percentile(values, q)


def ms(x: float) -> str:
    return f"{x * 1000:.0f}"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
