"""``tutor intents train|eval``: fit the learner-message intent classifier on labelled
messages and score it (with the rules it replaces) on a held-out file.

Thin: parse, call ``tutor.intents.train``, render. Defaults are the project's data
(``data/intents/train.jsonl``, ``data/intents/heldout.jsonl``) and the shipped weights
(``tutor/intents/model.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tutor.errors import InputError

DATA = Path(__file__).resolve().parents[2] / "data" / "intents"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from tutor.intents.model import SHIPPED

    p = sub.add_parser(
        "intents", parents=[common], help="train or score the message intent classifier"
    )
    isub = p.add_subparsers(dest="intents_command", metavar="ACTION", required=True)
    x = isub.add_parser("train", parents=[common], help="fit the classifier on labelled messages")
    x.add_argument("--data", default=str(DATA / "train.jsonl"), help="labelled JSONL to fit on")
    x.add_argument("--out", default=str(SHIPPED), help="where the weights go (JSON)")
    x.set_defaults(func=cmd_train)
    x = isub.add_parser("eval", parents=[common], help="score the classifier and the rules")
    x.add_argument("--data", default=str(DATA / "heldout.jsonl"), help="labelled JSONL to score")
    x.add_argument("--model", default=str(SHIPPED), help="the weights to score")
    x.add_argument("--json", action="store_true", help="print the whole report as JSON")
    x.set_defaults(func=cmd_eval)


def _embedder(config: Any) -> Any:
    from tutor.builders import build_embedder

    return build_embedder(config)


def cmd_train(args: argparse.Namespace, config: Any) -> int:
    from tutor.intents.model import file_sha, load_examples
    from tutor.intents.train import fit

    examples = load_examples(args.data)
    print(f"fitting on {len(examples)} messages from {args.data}", file=sys.stderr)
    weights = fit(examples, _embedder(config))
    weights["training"]["data"] = {"file": Path(args.data).name, "sha256": file_sha(args.data)}
    out = Path(args.out)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(weights, separators=(",", ":")) + "\n", encoding="utf-8")
    tmp.replace(out)
    t = weights["training"]
    best = t["validation_accuracy"][f"{t['ngram_weight']:g}/{t['C']:g}"]
    print(f"wrote {out} (C={t['C']}, n-gram weight {t['ngram_weight']}, validation {best:.3f})")
    return 0


def cmd_eval(args: argparse.Namespace, config: Any) -> int:
    from tutor.intents.model import IntentModel, load_examples
    from tutor.intents.train import evaluate

    if not Path(args.model).is_file():
        raise InputError(f"{args.model}: no intent model; run `tutor intents train` first")
    model = IntentModel.load(args.model, _embedder(config))
    report = evaluate(model, load_examples(args.data))
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"{'label':<12} {'model F1':>9} {'rules F1':>9} {'support':>8}")
    for lab, v in report["model"]["per_label"].items():
        rules = report["rules"]["per_label"].get(lab, {}).get("f1", 0.0)
        print(f"{lab:<12} {v['f1']:>9.3f} {rules:>9.3f} {v['support']:>8}")
    for who in ("model", "rules"):
        r = report[who]
        print(f"{who}: accuracy {r['accuracy']:.3f}, macro-F1 {r['macro_f1']:.3f} (n={r['n']})")
    return 0
