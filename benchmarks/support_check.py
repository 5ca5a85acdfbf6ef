"""Does explain mode's support check keep false model sentences out? Precision on hand labels.

Explain mode shows a sentence the LM wrote only when ``Grounding.support`` finds a course
sentence that supports it. This script replays the model sentences of
``evals/data/support_labels.jsonl`` (every sentence the check admitted before ``restates`` was
added, in a ``tutor eval keyfacts --keyfacts-limit 0`` run and a ``tutor eval grounding`` run
with the bundled model; each labelled by hand: is it true, and does the course say it?)
through the real pipeline: the corpus is loaded into a scratch knowledge base with the
configured embedder and chunking, the question retrieves its passages as the agent's does
(``kb.top_k``), and ``Grounding.support`` decides, once with closeness alone (cosine, numbers,
words in the passage: the check as it was) and once with ``restates`` as well (the check as
it is).

Per rule and label set: sentences admitted, how many of them are faithful (precision), the
false ones admitted, and how many of all faithful sentences it keeps. The "tuning" rows are the
ones ``NEW_WORDS_SHARE`` was chosen on; "check" rows were labelled after the choice.

What it cannot see: sentences the check refused both before and after (never labelled), a
false sentence that uses only its source's words in another order (``restates`` is lexical),
and whether a kept sentence helps the learner. The labels are one person's.

    python benchmarks/support_check.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from results import Recorder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TUTOR_SHARED_DATA") or ROOT.parent / "shared" / "data")
CORPORA = {"course": ROOT / "data" / "curriculum", "openstax": SHARED / "curriculum"}


def _decide(rows: list[dict[str, Any]], top_k: int) -> list[dict[str, Any]]:
    """Each row with ``before`` and ``after``: whether the check admits its sentence."""
    from evals.retrieval import corpus_files
    from knowledge_base import KnowledgeBase
    from tutor.builders import build_embedder
    from tutor.config import load_config
    from tutor.explain import ExplainSettings, calibrated
    from tutor.verify import grounding

    config = load_config()
    embedder = build_embedder(config)
    encode, cover, support = calibrated(embedder, ExplainSettings())
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase.open(Path(tmp) / "kb", embedder, options=config.kb, show_progress=False)
        for corpus in sorted({r["corpus"] for r in rows}):
            kb.add(corpus_files(CORPORA[corpus]), collection=corpus)
        for r in rows:
            found = kb.search(r["question"], k=top_k, collection=r["corpus"])
            g = grounding.Grounding(
                r["question"],
                [p.text for p in found],
                encode,
                cover_threshold=cover,
                support_threshold=support,
            )
            after = g.support(r["statement"]) is not None
            kept = grounding.restates
            grounding.restates = lambda *a, **k: True  # the check as it was
            try:
                before = g.support(r["statement"]) is not None
            finally:
                grounding.restates = kept
            out.append({**r, "before": before, "after": after})
        kb.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", default=str(ROOT / "evals" / "data" / "support_labels.jsonl"))
    ap.add_argument("--top-k", type=int, default=0, help="passages per question (0: kb.top_k)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tutor.config import load_config

    rows = [json.loads(x) for x in Path(args.labels).read_text().splitlines() if x.strip()]
    top_k = args.top_k or load_config().kb.top_k
    rec = Recorder("support_check", args)
    decided = _decide(rows, top_k)
    table = []
    for part in ("tuning", "check", "all"):
        group = [r for r in decided if part in ("all", r["set"])]
        faithful = sum(r["faithful"] for r in group)
        for rule in ("before", "after"):
            admitted = [r for r in group if r[rule]]
            good = sum(r["faithful"] for r in admitted)
            bad = len(admitted) - good
            name = "closeness alone" if rule == "before" else "closeness + restates"
            table.append(
                [
                    part,
                    name,
                    str(len(group)),
                    str(len(admitted)),
                    f"{good / len(admitted):.0%}" if admitted else "–",
                    str(bad),
                    f"{good}/{faithful}",
                ]
            )
            rec.samples(f"{part}/{rule}", [r["id"] for r in admitted])
    rec.meta(labelled=len(rows), top_k=top_k, faithful=sum(r["faithful"] for r in rows))
    cols = ["labels", "rule", "sentences", "admitted", "precision", "false admitted"]
    cols.append("faithful kept")
    print(rec.table("support", cols, table, align="llrrrrr"))
    rec.write()


if __name__ == "__main__":
    main()
