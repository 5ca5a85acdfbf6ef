"""Best-of-N turns: what N candidates buy in quality and cost in time (issue 15, item 3).

The real agent (bundled LM, guide mode) answers the last student turn of held-out BRIDGE
contexts (``../shared/data/dialogues/bridge_train_sample.jsonl``: no problem statement, so guide
mode hands the turn to the LM), each seeded as the pedagogy eval seeds it
(``evals.tutors.AgentConversation``). Per context the agent runs twice: at N = 1 and at the
largest N. Candidate i is the same at every N (greedy first, then sampled with seed = i), so
N = 2 and 4 replay the first 2 or 4 candidates of the largest-N turn through the agent's own
chooser (``tutor.candidates``); where every one of them failed a check, the turn would have
fallen back to the single-reply tries, whose reply and time the N = 1 run gives. Turn time at
N = k is the largest-N turn's time less the candidates it did not need.

Per N: the classifier's goal score (P(probing) + P(focus)) of the shown reply, the share that
asks a question, the evals' own verified-turn measures (``evals.unguarded.score_unguarded``,
independent of the agent's gate), mean and p90 turn time and time to first text, as ratios
to N = 1 in the same run.

    python benchmarks/best_of_n.py [--contexts 20] [--max-n 8] [--tokens 256]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import ROOT, Recorder, percentile  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "dialogues" / "bridge_train_sample.jsonl"
MEASURES = ("false_judgement", "false_arithmetic", "ends_mid_sentence", "repeats_sentence")


def run_turn(agent: Any, ctx: Any, key: str) -> dict[str, Any]:
    """One agent turn on ``ctx``: shown text, turn and first-text seconds, candidate meta."""
    from evals.tutors import AgentConversation
    from tutor.events import Done, TextDelta, TextReset

    conv = AgentConversation(agent, ctx, key=key)
    t0 = time.perf_counter()
    first: float | None = None
    text, done = "", None
    for ev in agent.respond(conv.learner, conv.session, ctx.last_student, mode="guide"):
        if isinstance(ev, TextDelta) and ev.text.strip():
            first = time.perf_counter() - t0 if first is None else first
            text += ev.text
        elif isinstance(ev, TextReset):
            text = ""
        elif isinstance(ev, Done):
            done = ev
    seconds = time.perf_counter() - t0
    store = agent.store
    meta = store.messages(conv.session.id, learner_id=conv.learner.id)[-1].meta
    return {
        "text": (done.text if done is not None else text).strip(),
        "seconds": seconds,
        "first_s": first if first is not None else seconds,
        "candidates": meta.get("candidates"),
        "mode": meta.get("answered_as") or "guide",
    }


def replay(one: dict[str, Any], big: dict[str, Any], k: int) -> dict[str, Any]:
    """The turn at N = ``k`` from the first ``k`` candidates of the largest-N turn ``big``."""
    meta = big["candidates"]
    if meta is None:  # the turn never reached the LM's reply (a template move)
        return {"text": big["text"], "seconds": big["seconds"], "first_s": big["first_s"]}
    cands = meta["candidates"]
    spent = sum(c["seconds"] for c in cands)
    head = cands[:k]
    kept = [c for c in head if c["outcome"] == "ok"]
    base = sum(c["seconds"] for c in head)
    if not kept and head[0]["outcome"] == "judgement" and head[0]["text"].strip():
        return {  # the greedy candidate, its judgements withdrawn: what one reply shows
            "text": head[0]["text"].strip(),
            "seconds": big["seconds"] - spent + base,
            "first_s": big["first_s"] - spent + base,
            "fallback": True,
        }
    if not kept:  # every candidate failed: the single-reply tries (the N = 1 run) follow
        return {
            "text": one["text"],
            "seconds": big["seconds"] - spent + base + one["seconds"],
            "first_s": big["first_s"] - spent + base + one["first_s"],
            "fallback": True,
        }
    best = max(kept, key=lambda c: (c["withheld"] == 0, c["score"], -c["withheld"], -c["index"]))
    return {
        "text": best["text"].strip(),
        "seconds": big["seconds"] - spent + base,
        "first_s": big["first_s"] - spent + base,
        "chosen": best["index"],
    }


def _share(rows: list[dict[str, Any]], key: str) -> str:
    known = [r["unguarded"][key] for r in rows if r["unguarded"][key] is not None]
    return f"{sum(map(bool, known))}/{len(known)}" if known else "–"


def summarize(
    rec: Recorder, turns: list[dict[str, Any]], contexts: list[Any], ranker: Any, max_n: int
) -> str:
    """The shown reply per N and context, scored; the table (kept in ``rec``)."""
    from evals.scorers import asks_question
    from evals.unguarded import score_unguarded
    from tutor.candidates import OPEN_GOAL

    ns = sorted({n for n in (1, 2, 4) if n < max_n} | {max_n})
    per_n: dict[int, list[dict[str, Any]]] = {}
    for n in ns:
        rows = []
        for t, ctx in zip(turns, contexts, strict=True):
            if n == 1:
                r = dict(t["one"])
            elif n == max_n:
                r = dict(t["big"])
                r["fallback"] = bool(r["candidates"] and "fallback" in r["candidates"])
            else:
                r = replay(t["one"], t["big"], n)
            r["goal"] = ranker.scores(
                [r["text"]], ctx.problem, ctx.last_student, ctx.answer, OPEN_GOAL
            )[0]
            r["asks"] = bool(asks_question(r["text"]))
            r["unguarded"] = score_unguarded(r["text"], ctx)
            rows.append(r)
        per_n[n] = rows
    rec.samples("per_n", {str(n): rows for n, rows in per_n.items()})
    base_t = statistics.mean(r["seconds"] for r in per_n[1])
    base_f = statistics.mean(r["first_s"] for r in per_n[1])
    table = []
    for n in ns:
        rows = per_n[n]
        secs = [r["seconds"] for r in rows]
        first = [r["first_s"] for r in rows]
        table.append(
            [
                f"{n}" + ("" if n in (1, max_n) else " (replayed)"),
                f"{statistics.mean(r['goal'] for r in rows):.3f}",
                f"{sum(r['asks'] for r in rows)}/{len(rows)}",
                *(_share(rows, m) for m in MEASURES),
                f"{sum(bool(r.get('fallback')) for r in rows)}/{len(rows)}",
                f"{statistics.mean(secs):.1f} s (×{statistics.mean(secs) / base_t:.2f})",
                f"{percentile(secs, 0.9):.1f} s",
                f"{statistics.mean(first):.1f} s (×{statistics.mean(first) / base_f:.2f})",
            ]
        )
    columns = [
        "N",
        "goal score",
        "asks a question",
        "false judgement",
        "false arithmetic",
        "ends mid-sentence",
        "repeats a sentence",
        "all failed",
        "turn time (vs N=1)",
        "p90 turn",
        "first text (vs N=1)",
    ]
    return rec.table("quality_time", columns, table, align="lrrrrrrrrrr")


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contexts", type=int, default=20)
    ap.add_argument("--max-n", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=0, help="max_new_tokens (0 = the config's)")
    ap.add_argument("--data", default=str(DATA))
    return ap.parse_args()


def main() -> None:
    args = _parse_args()
    rec = Recorder("best_of_n", args)
    from evals.datasets import load_contexts
    from tutor.agent import AgentSettings, TutorAgent
    from tutor.builders import build_generator
    from tutor.candidates import default_ranker
    from tutor.config import load_config
    from tutor.store import LearnerStore

    overrides = {"lm": {"max_new_tokens": args.tokens}} if args.tokens else None
    cfg = load_config(env={}, overrides=overrides)
    gen = build_generator(cfg)
    ranker = default_ranker()  # loaded before any timing (once per process in the tutor too)
    contexts = [c for c in load_contexts(args.data, skipped=[]) if c.ends_with_student][
        : args.contexts
    ]
    tmp = Path(tempfile.mkdtemp(prefix="best-of-n-"))
    store = LearnerStore(f"sqlite:///{tmp / 'learners.sqlite'}")
    settings = AgentSettings.from_config(cfg)
    agents = {
        n: TutorAgent(gen, store, None, dataclasses.replace(settings, candidates=n))
        for n in (1, args.max_n)
    }
    rec.meta(
        model=gen.name,
        contexts=len(contexts),
        ranker=ranker.name,
        data=args.data,
        max_new_tokens=cfg.lm.max_new_tokens,
        ns=sorted({n for n in (1, 2, 4) if n < args.max_n} | {args.max_n}),
    )
    run_turn(agents[1], contexts[0], "warm")  # the LM's first call pays one-off costs
    turns: list[dict[str, Any]] = []
    for i, ctx in enumerate(contexts):
        one = run_turn(agents[1], ctx, f"n1-{i}")
        big = run_turn(agents[args.max_n], ctx, f"n{args.max_n}-{i}")
        turns.append({"context": ctx.id, "one": one, "big": big})
        print(
            f"context {i + 1}/{len(contexts)}: {one['seconds']:.1f} s / {big['seconds']:.1f} s",
            flush=True,
        )
    rec.samples("turns", turns)
    print(summarize(rec, turns, contexts, ranker, args.max_n))
    print(rec.write())


if __name__ == "__main__":
    main()
