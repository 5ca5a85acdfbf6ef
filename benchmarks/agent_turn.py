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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--learners", type=int, default=1000)
    ap.add_argument("--attempts-per-learner", type=int, default=5)
    ap.add_argument("--turns", type=int, default=300)
    ap.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    ap.add_argument("--dir", default="", help="work dir (kept; default: a temp dir)")
    args = ap.parse_args()
    rec = Recorder("agent_turn", args)

    from knowledge_base import KnowledgeBase
    from tutor.agent import AgentSettings, TutorAgent
    from tutor.grading import grade
    from tutor.items import load_default_bank
    from tutor.store import LearnerStore

    root = Path(args.dir or tempfile.mkdtemp(prefix="agent-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    if args.embedder == "hash":
        from knowledge_base.testing import HashEmbedder

        embedder = HashEmbedder(384)
    else:
        from tutor.builders import build_embedder
        from tutor.config import load_config

        embedder = build_embedder(load_config(file_values={}, env={}))
    kb = KnowledgeBase.open(root / "kb", embedder)
    t0 = time.perf_counter()
    if not (root / "course").exists():
        make_course(root, args.chunks)
    report = kb.add([root / "course"], collection="default")
    ingest_s = time.perf_counter() - t0
    print(f"course: {len(report.added)} files added, ingest {ingest_s:.0f} s")

    store = LearnerStore(f"sqlite:///{root / 'learners.sqlite'}", fallback_bank=load_default_bank)
    bank = store.bank("default")
    rng = random.Random(1)
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
    rec.meta(
        files_added=len(report.added),
        chunks=kb.stats().chunks,
        ingest_s=ingest_s,
        store_setup_s=setup_s,
        warmup_turns=10,
    )

    from tutor.testing.fake_lm import ScriptedGenerator

    instant = ScriptedGenerator(INSTANT_REPLY, context_window=8192)
    agent = TutorAgent(instant, store, kb, AgentSettings())
    results: dict[str, list[float]] = {}
    breakdown: dict[str, list[float]] = {}
    sessions = {}
    for t in range(args.turns):
        lr = rng.choice(learners)
        sess = sessions.get(lr.id) or agent.start_session(lr)
        sessions[lr.id] = sess
        state = store.get_state(sess.id)
        if state.item_id:
            item = store.get_item("default", state.item_id)
            msg, kind = (
                (item.answer.value, "answer") if rng.random() < 0.5 else ("hint please", "hint")
            )
        else:
            msg, kind = (
                (rng.choice(QUESTIONS), "explain")
                if rng.random() < 0.6
                else ("give me a problem", "practice")
            )
        done = None
        for ev in agent.respond(lr, sess, msg):
            if ev.kind == "done":
                done = ev
        if t < 10:  # warm-up: embedder, FAISS and SQLite caches
            continue
        results.setdefault(kind, []).append(done.timings["total_ms"])
        for k, v in done.timings.items():
            breakdown.setdefault(k, []).append(v)

    print(
        f"\nTurn overhead with an instant generator: {args.chunks} chunks, {args.learners} learners, embedder {args.embedder}\n"
    )
    rows = []
    all_ms: list[float] = []
    for kind, xs in sorted(results.items()):
        all_ms += xs
        rec.latency(f"turn.{kind}", xs)
        rows.append([kind, len(xs), f"{statistics.median(xs):.1f}", f"{percentile(xs, 0.95):.1f}"])
    rec.latency("turn.all", all_ms)
    rows.append(
        ["all", len(all_ms), f"{statistics.median(all_ms):.1f}", f"{percentile(all_ms, 0.95):.1f}"]
    )
    print(rec.table("turns", ["turn kind", "n", "p50 ms", "p95 ms"], rows, align="lrrr"))
    rows = []
    for k, xs in sorted(breakdown.items()):
        if k in ("total_ms", "overhead_ms"):
            continue
        rec.latency(f"stage.{k}", xs)
        rows.append([k, len(xs), f"{statistics.median(xs):.1f}", f"{percentile(xs, 0.95):.1f}"])
    print()
    print(rec.table("stages", ["stage", "n", "p50 ms", "p95 ms"], rows, align="lrrr"))
    rec.write()


if __name__ == "__main__":
    main()
