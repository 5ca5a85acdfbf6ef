"""Retrieval quality: recall@1/5/10 and MRR@10 of dense, BM25 and hybrid retrieval.

Two QA sets: ``evals/data/openstax_qa.jsonl`` (86 questions we wrote over the OpenStax
Prealgebra 2e and Chemistry 2e chapters in ``../shared/data/curriculum``) and the sample
course's ``data/curriculum/qa.jsonl`` (56 questions). Each set is loaded into its own
collection with the bundled embedder; a hit is a passage from the right file and section.

    python benchmarks/kb_quality.py
    python benchmarks/kb_quality.py --store /tmp/kb-bench   # keep the store between runs
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from results import Recorder  # noqa: E402

from knowledge_base import KnowledgeBase, SentenceTransformerEmbedder  # noqa: E402
from knowledge_base.evaluate import evaluate_retrieval, load_qa  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "curriculum"


def run(
    kb: KnowledgeBase,
    name: str,
    qa_path: Path,
    collection: str,
    show_misses: bool,
    rec: Recorder,
) -> None:
    items = load_qa(qa_path)
    print(f"\n### {name}: {len(items)} questions ({qa_path.relative_to(REPO)})\n")
    rows = []
    for mode in ("dense", "bm25", "hybrid"):
        m = evaluate_retrieval(kb, items, k=10, mode=mode, collection=collection)
        rows.append(
            [
                mode,
                f"{m.recall_at(1):.3f}",
                f"{m.recall_at(5):.3f}",
                f"{m.recall:.3f}",
                f"{m.mrr:.3f}",
            ]
        )
        rec.samples(f"{collection}.{mode}.misses", [str(x) for x in m.misses])
        if show_misses:
            for miss in m.misses:
                print(f"    miss ({mode}): {miss}", file=sys.stderr)
    rec.meta(
        **{
            f"{collection}_questions": len(items),
            f"{collection}_qa": str(qa_path.relative_to(REPO)),
        }
    )
    columns = ["retrieval", "recall@1", "recall@5", "recall@10", "MRR@10"]
    print(rec.table(collection, columns, rows, align="lrrrr"), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--store", type=Path, default=None, help="knowledge-base dir to (re)use")
    ap.add_argument("--embedder", default="all-minilm-l6-v2")
    ap.add_argument("--misses", action="store_true", help="print the misses to stderr")
    args = ap.parse_args()
    rec = Recorder("kb_quality", args)

    tmp = None
    store = args.store
    if store is None:
        tmp = tempfile.TemporaryDirectory()
        store = Path(tmp.name)
    kb = KnowledgeBase.open(store, SentenceTransformerEmbedder(args.embedder))
    print(f"# embedder {kb.embedder.name}; chunk budget {kb.max_chunk_tokens()} tokens")
    if args.data.is_dir():
        books = [d for d in sorted(args.data.iterdir()) if d.is_dir()]
        r = kb.add(books, collection="openstax")
        print(f"# openstax: {r.summary()}")
        rec.meta(openstax_files=len(r.added), openstax_chunks=r.chunks)
        run(
            kb,
            "OpenStax chapters",
            REPO / "evals" / "data" / "openstax_qa.jsonl",
            "openstax",
            args.misses,
            rec,
        )
    else:
        print(f"# {args.data} not found: skipping the OpenStax set")
    r = kb.add(REPO / "data" / "curriculum", collection="sample")
    print(f"# sample: {r.summary()}")
    rec.meta(sample_files=len(r.added), sample_chunks=r.chunks)
    run(kb, "Sample course", REPO / "data" / "curriculum" / "qa.jsonl", "sample", args.misses, rec)
    kb.close()
    rec.write()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
