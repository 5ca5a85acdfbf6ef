"""Why `generate` in a worker thread decodes slower than on the main thread (2 threads, 2 cores).

Plain ``model.generate`` on the bundled model (fp32, greedy, a fixed number of tokens), or with
``--lean`` the default path (the int4 repack, the lean decode loop of ``tutor.lm.fast``), median
gap between tokens, in these setups, interleaved over rounds:

- ``main``: on the main thread, tokens timed by a streamer (the baseline of generation.py);
- ``worker+handoff``: in a new thread, tokens handed to the main thread through
  ``TextIteratorStreamer`` (what the ``hf`` backend does);
- ``worker``: in a new thread that the main thread only joins (no per-token hand-off);
- ``persistent worker``: in one long-lived thread.

The first ``main`` round runs before any other thread has touched torch. Every thread that runs
torch ops gets its own OpenMP team; on two cores two teams compete, and ``main`` slows down as
soon as another team exists. Run with ``OMP_WAIT_POLICY=PASSIVE`` to compare.
``--decode-threads 2,1`` runs every setup at each of those torch thread counts for the decode
steps (the lean loop's ``threads``; with ``generate``, the whole call).

    python benchmarks/omp_threads.py [--tokens 64] [--rounds 3] [--lean] [--decode-threads 2,1]
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from results import Recorder  # noqa: E402


def median_gap(stamps: list[float]) -> float:
    gaps = [b - a for a, b in zip(stamps[1:], stamps[2:], strict=False)]  # skip the prompt
    return statistics.median(gaps) * 1000


class Setups:
    """The four ways of running the same ``generate`` call; each returns median ms/token."""

    def __init__(self, model: Any, tok: Any, ids: Any, kw: dict[str, Any], lean: bool) -> None:
        from transformers import TextStreamer

        from tutor.lm.fast import LlamaDecoder

        self.model, self.tok, self.ids, self.kw = model, tok, ids, kw
        self.decoder = LlamaDecoder(model, ids.shape[1] + kw["max_new_tokens"]) if lean else None
        self.threads = 0  # decode threads (0: torch's)

        class Timed(TextStreamer):
            def __init__(self) -> None:
                super().__init__(tok, skip_prompt=True)
                self.stamps: list[float] = []

            def put(self, value: Any) -> None:
                self.stamps.append(time.perf_counter())
                super().put(value)

            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                pass

        self.timed = Timed
        self.jobs: queue.Queue[tuple[Callable[[], float], queue.Queue[float]]] = queue.Queue()

    def start_persistent(self) -> None:
        """Start the long-lived worker thread (it runs no torch op until a job comes)."""

        def serve() -> None:
            while True:
                fn, box = self.jobs.get()
                box.put(fn())

        threading.Thread(target=serve, daemon=True).start()

    def _generate(self, streamer: Any) -> None:
        import torch

        from tutor.lm.fast import decode_threads

        with torch.inference_mode():
            if self.decoder is not None:
                self.decoder.threads = self.threads
                self.decoder.generate(
                    self.ids, max_new_tokens=self.kw["max_new_tokens"], streamer=streamer
                )
                return
            with decode_threads(self.threads):
                self.model.generate(self.ids, streamer=streamer, **self.kw)

    def on_main(self) -> float:
        s = self.timed()
        self._generate(s)
        return median_gap(s.stamps)

    def worker_handoff(self) -> float:
        from transformers import TextIteratorStreamer

        s = TextIteratorStreamer(self.tok, skip_prompt=True)
        stamps: list[float] = []

        def run() -> None:
            self._generate(s)

        th = threading.Thread(target=run)
        th.start()
        stamps.append(time.perf_counter())
        for _ in s:
            stamps.append(time.perf_counter())
        th.join()
        return median_gap(stamps)

    def worker(self) -> float:
        out: list[float] = []
        th = threading.Thread(target=lambda: out.append(self.on_main()))
        th.start()
        th.join()
        return out[0]

    def persistent(self) -> float:
        box: queue.Queue[float] = queue.Queue()
        self.jobs.put((self.on_main, box))
        return box.get()


def _load(tokens: int, lean: bool) -> tuple[Any, Setups]:
    """The config's model in fp32 (``lean``: packed int4 where lossless, as the defaults on
    this machine), the prompt and the fixed-length greedy settings (the lean loop: no
    repetition penalty, no minimum length; an end token is not expected in 64 tokens)."""
    import torch

    from tutor.config import load_config
    from tutor.lm.resolve import load_causal_lm

    cfg = load_config()
    model, tok = load_causal_lm(
        cfg.lm.model,
        models_dir=cfg.paths.models_dir,
        dtype="float32",
        device="cpu",
        quantize="auto" if lean else "none",
    )
    model.eval()
    messages = [{"role": "user", "content": "Explain what a fraction is to a 10 year old."}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    if not isinstance(ids, torch.Tensor):
        ids = ids["input_ids"]
    kw = dict(
        max_new_tokens=tokens,
        min_new_tokens=tokens,
        do_sample=False,
        repetition_penalty=1.1,
    )
    return cfg, Setups(model, tok, ids, kw, lean)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lean", action="store_true", help="int4 + the lean loop (the defaults)")
    ap.add_argument("--decode-threads", default="", help="e.g. 2,1 (default: torch's)")
    ap.add_argument("--tag", default="", help="result file suffix")
    args = ap.parse_args()
    rec = Recorder("omp_threads" + (f"-{args.tag}" if args.tag else ""), args)

    import torch

    counts = [int(x) for x in args.decode_threads.split(",") if x.strip()] or [0]
    cfg, s = _load(args.tokens, args.lean)
    s.start_persistent()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.tokens} tokens")
    first = s.on_main()
    print(f"main, before any other thread ran torch: {first:.1f} ms/token")
    base = {
        "main": s.on_main,
        "worker+handoff": s.worker_handoff,
        "worker": s.worker,
        "persistent worker": s.persistent,
    }
    setups = {
        (f"{name} @ {n} thread{'s' if n > 1 else ''}" if n else name): (fn, n)
        for n in counts
        for name, fn in base.items()
    }
    results: dict[str, list[float]] = {k: [] for k in setups}
    for _ in range(args.rounds):
        for name, (fn, n) in setups.items():
            s.threads = n
            results[name].append(fn())
    path = "float32 + int4, lean loop" if args.lean else "torch.float32, generate"
    rec.meta(dtype=path, model=cfg.lm.model, new_tokens=args.tokens)
    rec.samples("main_before_other_threads", [first])
    rows = [["main, before any other thread ran torch", f"{first:.1f}"]]
    for name, xs in results.items():
        rec.samples(name, xs)
        rows.append([name, ", ".join(f"{x:.1f}" for x in xs)])
    print()
    print(rec.table("setups", ["setup", "median ms/token per round"], rows))
    rec.write()


if __name__ == "__main__":
    main()
