"""``tutor judge train|eval``: build the pedagogical move classifier on MathDial's human labels
and score it on held-out problems against the cue rules and a majority baseline.

Thin: parse, call ``tutor.judge`` (training, inference) and ``evals.moves`` (scoring), render.
The default data is the shared MathDial sample (``TUTOR_SHARED_DATA`` or ``../shared/data``);
the default weights are the shipped ones (``tutor/judge/weights/moves.*``); the result file
goes to ``evals/results/<--result>.json``, where ``python -m evals.tables`` finds it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

RESULT = "judge-moves"


def _default_data() -> str:
    from evals.run import SHARED_DATA

    return str(Path(SHARED_DATA) / "dialogues" / "mathdial_sample.jsonl")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from tutor.judge.model import SHIPPED, JudgeSpec
    from tutor.judge.train import TrainOptions

    p = sub.add_parser("judge", parents=[common], help="train or score the tutor-move classifier")
    jsub = p.add_subparsers(dest="judge_command", metavar="ACTION", required=True)
    x = jsub.add_parser(
        "train", parents=[common], help="fine-tune the classifier on MathDial moves"
    )
    _data_options(x)
    x.add_argument("--out", default=str(SHIPPED), help="weights spec JSON (default: shipped)")
    x.add_argument("--method", choices=("lora", "top"), default="lora")
    x.add_argument(
        "--top-layers",
        type=int,
        default=JudgeSpec.top_layers,
        help="tune only the last N layers; the rest are run once and cached (0 = all)",
    )
    x.add_argument("--base", default=None, help="encoder directory (default: the bundled MiniLM)")
    x.add_argument("--epochs", type=int, default=TrainOptions.epochs)
    x.add_argument("--lr", type=float, default=TrainOptions.lr, help="adapter learning rate")
    x.add_argument(
        "--max-length", type=int, default=JudgeSpec.max_length, help="tokens of context + reply"
    )
    x.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    x.set_defaults(func=cmd_train)
    x = jsub.add_parser("eval", parents=[common], help="score the classifier on held-out problems")
    _data_options(x)
    x.add_argument("--model", default=str(SHIPPED), help="weights spec JSON (default: shipped)")
    x.add_argument("--json", action="store_true", help="print the whole report as JSON")
    x.set_defaults(func=cmd_eval)


def _data_options(x: argparse.ArgumentParser) -> None:
    x.add_argument("--data", default=None, help="MathDial-form dialogue JSONL with move labels")
    x.add_argument("--heldout", type=float, default=0.2, help="share of problems held out")
    x.add_argument("--seed", type=int, default=0, help="split and training seed")
    x.add_argument(
        "--result", default=RESULT, help="result name: evals/results/NAME.json ('' = none)"
    )


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _split(args: argparse.Namespace) -> tuple[str, list[Any], list[Any]]:
    from tutor.judge.data import check_classes, load_moves, split_by_problem

    data = args.data or _default_data()
    examples = load_moves(data)
    train, heldout = split_by_problem(examples, args.heldout, args.seed)
    check_classes(heldout, f"the held-out split of {data}")
    return data, train, heldout


def cmd_train(args: argparse.Namespace, config: Any) -> int:
    from tutor.judge.model import JudgeSpec
    from tutor.judge.train import TrainOptions, train

    data, train_set, heldout = _split(args)
    print(
        f"training on {len(train_set)} turns of {len({e.group for e in train_set})} problems "
        f"({Path(data).name}); {len(heldout)} held out",
        file=sys.stderr,
    )
    spec = JudgeSpec(method=args.method, max_length=args.max_length, top_layers=args.top_layers)
    if args.base:
        spec.base = args.base
    opts = TrainOptions(epochs=args.epochs, lr=args.lr, seed=args.seed, threads=args.threads)
    model = train(train_set, spec, opts, show_progress=not getattr(args, "quiet", False))
    model.record["data"] = {
        "file": Path(data).name,
        "sha256": _sha(data),
        "heldout": args.heldout,
        "seed": args.seed,
    }
    out = model.save(args.out)
    size = out.with_suffix(".safetensors").stat().st_size / 1e6
    print(f"wrote {out} and its weights ({size:.1f} MB) in {model.record['seconds']:.0f} s")
    return _score(model, args, data, train_set, heldout)


def cmd_eval(args: argparse.Namespace, config: Any) -> int:
    from tutor.judge.model import MoveClassifier

    data, train_set, heldout = _split(args)  # bad data is reported before the model loads
    model = MoveClassifier.load(args.model)
    rec = model.record.get("data") or {}
    if rec and (rec.get("heldout"), rec.get("seed")) != (args.heldout, args.seed):
        print(
            f"warning: the model was trained with --heldout {rec.get('heldout')} "
            f"--seed {rec.get('seed')}; other settings score it on problems it may have seen",
            file=sys.stderr,
        )
    return _score(model, args, data, train_set, heldout)


def _score(model: Any, args: argparse.Namespace, data: str, train_set: list, heldout: list) -> int:
    import time

    from evals import moves

    t0 = time.perf_counter()
    probs = model.probabilities(heldout)
    seconds = time.perf_counter() - t0
    report = moves.evaluate(probs, heldout, train_set, model.spec.labels)
    report["inference_ms_per_turn"] = round(1000 * seconds / max(1, len(heldout)), 1)
    if args.result:
        weights = Path(getattr(args, "out", None) or args.model).with_suffix(".safetensors")
        path = moves.write_result(report, model, args.result, data, seconds, weights)
        print(f"wrote {path}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps(report, indent=1))
        return 0
    for table in moves.tables(report, model.spec.labels):
        print(table["title"])
        print("  ".join(table["columns"]))
        for row in table["rows"]:
            print("  ".join(str(c) for c in row))
        print()
    return 0
