"""Intent classifier: held-out accuracy, macro-F1 and per-label F1 against the rules it
replaces, and its latency per message on the CPU.

Scores the shipped weights (``tutor/intents/model.json``, fitted by ``tutor intents train`` on
``data/intents/train.jsonl``) on ``data/intents/heldout.jsonl``, which was written separately
and never trained on; the rules (``tutor.modes.rule_intent``, auto mode) are scored on the same
messages. Latency: one message at a time, as a turn classifies it; "features + model" is the
classifier given the sentence vector, "embed + classify" includes encoding the message with the
bundled MiniLM. What it cannot see: messages unlike the written data (real learners' wording).

    python benchmarks/intents.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from results import Recorder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / "data/intents/heldout.jsonl"))
    ap.add_argument("--rounds", type=int, default=3, help="latency passes over the messages")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np

    from tutor.builders import build_embedder
    from tutor.config import load_config
    from tutor.intents.features import feature_rows
    from tutor.intents.model import SHIPPED, IntentModel, file_sha, load_examples
    from tutor.intents.train import evaluate

    rec = Recorder("intents", args)
    embedder = build_embedder(load_config())
    model = IntentModel.load(SHIPPED, embedder)
    examples = load_examples(args.data)
    report = evaluate(model, examples)
    m, r = report["model"], report["rules"]
    rows = [
        [lab, f"{v['f1']:.3f}", f"{r['per_label'].get(lab, {}).get('f1', 0.0):.3f}", v["support"]]
        for lab, v in m["per_label"].items()
    ]
    rows.append(["**accuracy**", f"{m['accuracy']:.3f}", f"{r['accuracy']:.3f}", m["n"]])
    rows.append(["**macro-F1**", f"{m['macro_f1']:.3f}", f"{r['macro_f1']:.3f}", m["n"]])
    print(rec.table("heldout", ["label", "model F1", "rules F1", "messages"], rows, align="lrrr"))

    embed_ms, clf_ms = [], []
    for _ in range(args.rounds):
        for e in examples:
            getattr(embedder, "_recent", {}).clear()  # a new message: not in the embedder's cache
            t0 = time.perf_counter()
            vec = np.asarray(embedder.encode([e.text]), dtype=np.float32)
            t1 = time.perf_counter()
            x = np.hstack([vec, feature_rows([e.text], [e.state])])
            model.probabilities(x, [e.text])
            t2 = time.perf_counter()
            embed_ms.append((t2 - t0) * 1000)
            clf_ms.append((t2 - t1) * 1000)
    lat = {
        "features + model": rec.latency("classify_ms", clf_ms),
        "embed + classify": rec.latency("embed_classify_ms", embed_ms),
    }
    print(
        rec.table(
            "latency",
            ["per message", "p50 ms", "p95 ms", "n"],
            [[k, f"{v['p50']:.2f}", f"{v['p95']:.2f}", v["n"]] for k, v in lat.items()],
            align="lrrr",
        )
    )
    train = model.meta.get("training", {})
    rec.meta(
        heldout=len(examples),
        heldout_sha256=file_sha(args.data),
        train_examples=train.get("examples"),
        train_data=train.get("data"),
        model_sha256=file_sha(SHIPPED),
        C=train.get("C"),
        confusion=report["confusion"],
    )
    rec.samples("errors", report["errors"])
    rec.write()


if __name__ == "__main__":
    main()
