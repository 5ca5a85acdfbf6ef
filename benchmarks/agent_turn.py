"""Turn overhead of the tutor agent: everything but LM decoding.

Setup: a course of ~10k chunks (synthetic sections embedded with the bundled MiniLM, or the
hashing test embedder with ``--embedder hash``), a learner store with 1,000 learners and a few
graded attempts each, and a generator that returns a fixed reply instantly, so a turn's wall
time is the agent's own overhead: profile and mastery loads, retrieval (dense + BM25 fused),
prompt building, citation filter, leak guard, grading, BKT update and persistence.

    python benchmarks/agent_turn.py [--chunks 10000] [--learners 1000] [--turns 300]

Prints p50/p95 per turn kind and overall (target: p95 < 150 ms on the 2-core CPU).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import Recorder, percentile  # noqa: E402

TOPICS = {
    "fractions": "numerator denominator common denominator equivalent fraction simplify mixed number improper",
    "decimals": "place value tenths hundredths rounding decimal point convert fraction",
    "ratios": "ratio rate unit rate percent of a number percent change proportion",
    "equations": "variable solve both sides inverse operation one-step two-step equation",
    "geometry": "area perimeter rectangle triangle circle radius composite shape square units",
    "water": "evaporation condensation precipitation collection runoff groundwater vapour clouds",
    "plants": "photosynthesis chlorophyll glucose carbon dioxide oxygen light energy leaves stomata",
}
QUESTIONS = [
    "How do I add fractions with different denominators?",
    "What is place value in a decimal?",
    "How do you work out a percent change?",
    "What does it mean to solve an equation?",
    "How do I find the area of a triangle?",
    "What happens during evaporation?",
    "Why do plants need light?",
]


def make_course(root: Path, n_chunks: int, seed: int = 0) -> Path:
    """Markdown files whose sections are short paragraphs: one section ≈ one chunk."""
    rng = random.Random(seed)
    docs = root / "course"
    docs.mkdir(parents=True)
    per_doc = 50
    for d in range(max(1, n_chunks // per_doc)):
        topic = rng.choice(list(TOPICS))
        words = TOPICS[topic].split() + "the a of and to is in we can find this when you".split()
        lines = [f"# {topic.title()} notes {d}", ""]
        for s in range(per_doc):
            lines += [
                f"## Part {s} of {topic} {d}",
                "",
                " ".join(rng.choice(words) for _ in range(45)) + ".",
                "",
            ]
        (docs / f"{topic}-{d:04d}.md").write_text("\n".join(lines))
    return docs


# the LM answers instantly, so a turn's time is the agent's own work
INSTANT_REPLY = (
    "Good question. Think about what the passage says [1], then tell me what you notice first? " * 2
)


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--learners", type=int, default=1000)
    ap.add_argument("--attempts-per-learner", type=int, default=5)
    ap.add_argument("--turns", type=int, default=300)
    ap.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    ap.add_argument("--dir", default="", help="work dir (kept; default: a temp dir)")
    return ap.parse_args()


def _embedder(kind: str) -> Any:
    if kind == "hash":
        from knowledge_base.testing import HashEmbedder

        return HashEmbedder(384)
    from tutor.builders import build_embedder
    from tutor.config import load_config

    return build_embedder(load_config(file_values={}, env={}))


def _ingest(kb: Any, root: Path, n_chunks: int) -> tuple[Any, float]:
    """Add the synthetic course (written once per work dir); the report and the seconds."""
    t0 = time.perf_counter()
    if not (root / "course").exists():
        make_course(root, n_chunks)
    report = kb.add([root / "course"], collection="default")
    ingest_s = time.perf_counter() - t0
    print(f"course: {len(report.added)} files added, ingest {ingest_s:.0f} s")
    return report, ingest_s


def _populate(store: Any, args: argparse.Namespace, rng: random.Random) -> tuple[list[Any], float]:
    """The learners, each new one with a few graded attempts; the learners and the seconds."""
    from tutor.grading import grade

    bank = store.bank("default")
    existing = {s.learner.name for s in store.list_learners()}
    t0 = time.perf_counter()
    learners = []
    for i in range(args.learners):
        name = f"learner{i:04d}"
        lr = store.get_or_create_learner(name)
        learners.append(lr)
        if name in existing:
            continue
        for _ in range(args.attempts_per_learner):
            item = rng.choice(bank.items)
            answer = item.answer.value if rng.random() < 0.6 else "12345"
            store.record_attempt(lr.id, item, answer, grade(item, answer))
    setup_s = time.perf_counter() - t0
    print(f"store: {len(learners)} learners, setup {setup_s:.0f} s")
    return learners, setup_s


def _next_message(store: Any, state: Any, rng: random.Random) -> tuple[str, str]:
    """A student's next message and its turn kind: answer or hint on an open item, else a
    question or a practice request."""
    if state.item_id:
        item = store.get_item("default", state.item_id)
        return (item.answer.value, "answer") if rng.random() < 0.5 else ("hint please", "hint")
    return (
        (rng.choice(QUESTIONS), "explain")
        if rng.random() < 0.6
        else ("give me a problem", "practice")
    )


def _run_turns(
    agent: Any, store: Any, learners: list[Any], rng: random.Random, turns: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Turn times per kind and per stage (ms), after 10 warm-up turns."""
    results: dict[str, list[float]] = {}
    breakdown: dict[str, list[float]] = {}
    sessions = {}
    for t in range(turns):
        lr = rng.choice(learners)
        sess = sessions.get(lr.id) or agent.start_session(lr)
        sessions[lr.id] = sess
        msg, kind = _next_message(store, store.get_state(sess.id), rng)
        done = None
        for ev in agent.respond(lr, sess, msg):
            if ev.kind == "done":
                done = ev
        if t < 10:  # warm-up: embedder, FAISS and SQLite caches
            continue
        results.setdefault(kind, []).append(done.timings["total_ms"])
        for k, v in done.timings.items():
            breakdown.setdefault(k, []).append(v)
    return results, breakdown


def _row(name: str, xs: list[float]) -> list[Any]:
    return [name, len(xs), f"{statistics.median(xs):.1f}", f"{percentile(xs, 0.95):.1f}"]


def _print_tables(
    rec: Recorder, results: dict[str, list[float]], breakdown: dict[str, list[float]]
) -> None:
    rows = []
    all_ms: list[float] = []
    for kind, xs in sorted(results.items()):
        all_ms += xs
        rec.latency(f"turn.{kind}", xs)
        rows.append(_row(kind, xs))
    rec.latency("turn.all", all_ms)
    rows.append(_row("all", all_ms))
    print(rec.table("turns", ["turn kind", "n", "p50 ms", "p95 ms"], rows, align="lrrr"))
    rows = []
    for k, xs in sorted(breakdown.items()):
        if k in ("total_ms", "overhead_ms"):
            continue
        rec.latency(f"stage.{k}", xs)
        rows.append(_row(k, xs))
    print()
    print(rec.table("stages", ["stage", "n", "p50 ms", "p95 ms"], rows, align="lrrr"))


def main() -> None:
    args = _parse_args()
    rec = Recorder("agent_turn", args)

    from knowledge_base import KnowledgeBase
    from tutor.agent import AgentSettings, TutorAgent
    from tutor.items import load_default_bank
    from tutor.store import LearnerStore
    from tutor.testing.fake_lm import ScriptedGenerator

    root = Path(args.dir or tempfile.mkdtemp(prefix="agent-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    kb = KnowledgeBase.open(root / "kb", _embedder(args.embedder))
    report, ingest_s = _ingest(kb, root, args.chunks)
    store = LearnerStore(f"sqlite:///{root / 'learners.sqlite'}", fallback_bank=load_default_bank)
    rng = random.Random(1)
    learners, setup_s = _populate(store, args, rng)
    rec.meta(
        files_added=len(report.added),
        chunks=kb.stats().chunks,
        ingest_s=ingest_s,
        store_setup_s=setup_s,
        warmup_turns=10,
    )
    instant = ScriptedGenerator(INSTANT_REPLY, context_window=8192)
    agent = TutorAgent(instant, store, kb, AgentSettings())
    results, breakdown = _run_turns(agent, store, learners, rng, args.turns)
    print(
        f"\nTurn overhead with an instant generator: {args.chunks} chunks, {args.learners} learners, embedder {args.embedder}\n"
    )
    _print_tables(rec, results, breakdown)
    rec.write()


if __name__ == "__main__":
    main()
