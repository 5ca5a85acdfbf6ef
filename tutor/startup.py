"""Start-up of a serving process: the language model and the course's embedder load at once.

Before, ``tutor serve`` loaded the model, printed the address, and the embedder loaded at the
first question (7-10 s more for the first student on a busy 2-core machine). ``load_models``
loads both in two threads, says so in the terminal (``loading …``, ``model ready in 7.9 s``,
``ready in 8.0 s``), runs the embedder once so the first question pays nothing, and opens the
course's vector index (a damaged one is reported here, not at the first question).
``benchmarks/startup.py`` measures a cached start both ways.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from knowledge_base import KnowledgeBase
    from tutor.config import Config
    from tutor.lm.base import Generator

log = logging.getLogger(__name__)


def warm_knowledge_base(kb: KnowledgeBase, collection: str) -> None:
    """Load the embedder (one query embedded) and the collection's vector index."""
    if kb.embedder is not None:
        kb.embedder.encode(["warm up"])
    problem = kb.index_problem(collection)
    if problem:
        log.warning("course %r will be searched by keywords only: %s", collection, problem)


def load_threads() -> int:
    """Two loading threads on a machine with more than 2 cores, else one. On an idle 2-core
    machine the two loads in parallel (both mostly Python imports, under one GIL, and torch's
    own threads) took longer than one after the other: ``benchmarks/startup.py``, 5 rounds,
    median 9.7 s against 8.2 s to the first answered search."""
    return 2 if (os.cpu_count() or 1) > 2 else 1


def load_models(
    config: Config,
    *,
    collection: str | None = None,
    out: TextIO | None = None,
    build_generator: Callable[[Config], Generator] | None = None,
    build_knowledge_base: Callable[[Config], KnowledgeBase] | None = None,
) -> tuple[Generator, KnowledgeBase]:
    """The generator and the knowledge base, loaded in parallel, with progress on ``out``
    (stderr). A load that fails raises its error once the other has finished."""
    from tutor import builders

    out = out or sys.stderr
    make_generator = build_generator or builders.build_generator
    make_kb = build_knowledge_base or builders.build_knowledge_base
    coll = collection or config.ui.collection or config.kb.collection
    t0 = time.perf_counter()

    def model() -> Generator:
        return make_generator(config)

    def embedder() -> KnowledgeBase:
        kb = make_kb(config)
        warm_knowledge_base(kb, coll)
        return kb

    workers = load_threads()
    from tutor.lm.bundled_lora import adapter_label

    lora = adapter_label(config.lm)  # "tutoring": the shipped LoRA (lm.adapter = "auto")
    print(
        f"loading the model ({config.lm.backend}: {config.lm.model}"
        f"{f' + LoRA {lora}' if lora else ''}) and the embedder "
        f"({config.kb.embedder}){' at once' if workers > 1 else ''}…",
        file=out,
        flush=True,
    )
    done: dict[str, Any] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tutor-load") as pool:
        jobs: dict[Future[Any], str] = {
            pool.submit(model): "model",
            pool.submit(embedder): "embedder",
        }
        for job in as_completed(jobs):
            what = jobs[job]
            done[what] = job.result()
            choice = getattr(done[what], "path_choice", None) if what == "model" else None
            how = f" ({choice.label})" if choice is not None else ""
            print(f"  {what}{how} ready in {time.perf_counter() - t0:.1f} s", file=out, flush=True)
    print(f"ready in {time.perf_counter() - t0:.1f} s", file=out, flush=True)
    return done["model"], done["embedder"]
