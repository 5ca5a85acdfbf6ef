"""Coverage: does the explain path tell a question its course covers from one it does not?

``tutor.verify.grounding`` calls a question covered when a sentence of the retrieved passages
is close to it (cosine of the bundled all-MiniLM-L6-v2, ``[tutor] cover_threshold``). This
script measures that rule on two question sets, with the eval knowledge base's collections
(the sample course, ``data/curriculum``, and the OpenStax chapters, ``../shared/data``):

- **dev** (where 0.52 was chosen): in course, the retrieval QA sets (``data/curriculum/qa.jsonl``,
  56; ``evals/data/openstax_qa.jsonl``, 86); out of course, ``evals/data/coverage_dev.jsonl``
  (40 questions written for this check, 20 per corpus);
- **keyfacts** (not used to choose it): the 158 questions of ``evals/data/keyfacts.jsonl``
  (140 in course, 18 out of course). Its two off-point out-of-course answers motivated the
  topic rule (a definitional question's term must be discussed), so for that rule it is seen;
- **topic** (held out for the topic rule): ``evals/data/coverage_topic.jsonl``, 40 "What is X?"
  questions, 20 in course and 20 whose term the corpus names in passing or not at all.

Each set is scored twice: by the cosine threshold alone, and by ``Grounding.covered`` (the
threshold and the topic rule), the decision explain mode makes.

Per set: the share of in-course questions called covered (sensitivity), of out-of-course ones
called not covered (specificity), and the dev set's best threshold by balanced accuracy.
What it cannot see: whether the passage sentence that made a question "covered" answers it
(the keyfacts suite scores the answer itself); non-definitional questions ("How does a battery
produce electricity?") get no topic check.

    python benchmarks/coverage.py [--threshold 0.52]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from results import Recorder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def questions() -> dict[str, list[tuple[str, str, bool]]]:
    """set name -> (corpus, question, covered)."""

    def jsonl(path: Path) -> list[dict[str, Any]]:
        return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]

    dev = [("course", r["question"], True) for r in jsonl(ROOT / "data/curriculum/qa.jsonl")]
    dev += [("openstax", r["question"], True) for r in jsonl(ROOT / "evals/data/openstax_qa.jsonl")]
    dev += [
        (r["corpus"], r["question"], False) for r in jsonl(ROOT / "evals/data/coverage_dev.jsonl")
    ]
    kf = [
        (r["corpus"], r["question"], bool(r["covered"]))
        for r in jsonl(ROOT / "evals/data/keyfacts.jsonl")
    ]
    topic = [
        (r["corpus"], r["question"], bool(r["covered"]))
        for r in jsonl(ROOT / "evals/data/coverage_topic.jsonl")
    ]
    return {"dev": dev, "keyfacts": kf, "topic": topic}


def rates(scores: list[tuple[float, bool]], t: float) -> tuple[float, float]:
    ins = [s for s, c in scores if c]
    outs = [s for s, c in scores if not c]
    return (
        sum(s >= t for s in ins) / max(len(ins), 1),
        sum(s < t for s in outs) / max(len(outs), 1),
    )


def decided(calls: list[tuple[bool, bool]]) -> tuple[float, float]:
    """(in course called covered, out of course called not covered) of (decision, truth)."""
    ins = [d for d, c in calls if c]
    outs = [d for d, c in calls if not c]
    return sum(ins) / max(len(ins), 1), sum(not d for d in outs) / max(len(outs), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threshold", type=float, default=0.52)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from evals.keyfacts import CORPORA
    from evals.retrieval import collection_name, corpus_files
    from knowledge_base import KnowledgeBase
    from tutor.builders import build_embedder
    from tutor.config import load_config
    from tutor.verify.grounding import Grounding

    rec = Recorder("coverage", args)
    config = load_config()
    embedder = build_embedder(config)
    home = config.paths.home_dir / "eval-kb" / "bench-coverage"
    kb = KnowledgeBase.open(home, embedder, options=config.kb, show_progress=False)
    colls = {}
    for corpus, (qa, docs) in CORPORA.items():
        colls[corpus] = collection_name(qa)
        kb.add(corpus_files(docs), collection=colls[corpus])
    rows, detail = [], {}
    best_dev = (0.0, args.threshold)
    for name, qs in questions().items():
        scores, calls = [], []
        for corpus, q, covered in qs:
            found = kb.search(q, k=config.kb.top_k, collection=colls[corpus])
            g = Grounding(
                q, [p.text for p in found], embedder.encode, cover_threshold=args.threshold
            )
            scores.append((round(g.best, 4), covered))
            calls.append((g.covered, covered))
        detail[name] = [
            [q, c, s, d] for (_, q, c), (s, _), (d, _) in zip(qs, scores, calls, strict=True)
        ]
        sens, spec = rates(scores, args.threshold)
        sens2, spec2 = decided(calls)
        n_in = sum(c for _, c in scores)
        for rule, a, b in (("cosine only", sens, spec), ("cosine + topic", sens2, spec2)):
            rows.append([name, rule, n_in, len(scores) - n_in, f"{a:.1%}", f"{b:.1%}"])
        if name == "dev":
            for t in sorted({s for s, _ in scores}):
                a, b = rates(scores, t)
                if (a + b) / 2 > best_dev[0]:
                    best_dev = ((a + b) / 2, t)
        print(
            f"{name}: in {n_in}, out {len(scores) - n_in}: {sens:.1%}/{spec:.1%} -> {sens2:.1%}/{spec2:.1%}"
        )
    rec.samples("scores", detail)
    rec.meta(threshold=args.threshold, best_dev_threshold=best_dev[1], best_dev_bacc=best_dev[0])
    print(
        rec.table(
            "rates",
            [
                "question set",
                "rule",
                "in course",
                "out of course",
                "in course called covered",
                "out of course called not covered",
            ],
            rows,
            align="llrrrr",
        )
    )
    print(f"dev: best balanced accuracy {best_dev[0]:.3f} at {best_dev[1]}")
    kb.close()
    rec.write()


if __name__ == "__main__":
    main()
