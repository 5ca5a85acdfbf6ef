"""CPU training throughput and peak RSS: the fine-tuning recipe vs a plain Trainer baseline.

Same model (the bundled SmolLM2-135M-Instruct, fp32), same LoRA (r=16, alpha=32, all linear
layers), the same examples encoded the same way (labels on assistant turns), the same batch size,
learning rate, seed and one epoch, measured in the same run. Variants:

- ``baseline``: ``transformers.Trainer`` with the stock padding collator
  (``DataCollatorForSeq2Seq``), random batches, the model's own loss (LM head on every token);
- ``ours``: ``finetune.recipe`` (length-grouped batches, LM head on labelled tokens only);
- ``ours+packing``: the same with ``packing = true``.

Each variant runs in its own process, so its peak RSS is its own. Tokens/s counts real (non-pad)
tokens: the epoch's tokens divided by the wall time spent in ``train()``. "Tokens per CPU-s"
divides by the process's CPU time instead: on a machine shared with other jobs the wall-clock
ratio moves with their load, the CPU-time ratio much less.

Default data: the first 8 records of each shared file (MathDial, GSM8K, BRIDGE, CIMA), a mix of
short and long examples as in a real run, with the default ``max_length`` of 1024.

    .venv/bin/python benchmarks/train_cpu.py [--examples 8] [--max-length 1024] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "benchmarks"))

from results import Recorder  # noqa: E402

VARIANTS = ("baseline", "ours", "ours+packing")
ALIAS = "smollm2-135m-instruct"


def default_data() -> list[str]:
    files = [
        SHARED / "dialogues/mathdial_sample.jsonl",
        SHARED / "qa/gsm8k_train_sample.jsonl",
        SHARED / "dialogues/bridge_train_sample.jsonl",
        SHARED / "dialogues/cima_sample.jsonl",
    ]
    if all(f.is_file() for f in files):
        return [str(f) for f in files]
    return [str(REPO / "data/dialogues/tutoring_sample.jsonl")]


def make_config(args: argparse.Namespace, home: Path, packing: bool):
    from tutor.config import load_config

    return load_config(
        env={},
        file_values={
            "paths": {"home": str(home)},
            "finetune": {
                "run_name": "bench",
                "base_model": ALIAS,
                "data": args.data,
                "max_examples": args.examples,
                "eval_fraction": 0.0,
                "eval_before": False,
                "max_length": args.max_length,
                "packing": packing,
                "epochs": 1.0,
                "batch_size": args.batch_size,
                "learning_rate": 2e-4,
                "lr_scheduler": "constant",
                "warmup_ratio": 0.0,
                "lora_r": 16,
                "lora_alpha": 32,
                "lora_dropout": 0.05,
                "dtype": "float32",
                "device": "cpu",
                "logging_steps": 1000,
                "overwrite": True,
            },
        },
    )


def clock():
    """A callback timing ``train()``: wall seconds and this process's CPU seconds."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def _now(self) -> tuple[float, float]:
            ru = resource.getrusage(resource.RUSAGE_SELF)
            return time.perf_counter(), ru.ru_utime + ru.ru_stime

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = self._now()

        def on_train_end(self, args, state, control, **kwargs):
            end = self._now()
            self.wall, self.cpu = end[0] - self.start[0], end[1] - self.start[1]

    return Clock()


def run_baseline(args: argparse.Namespace, home: Path) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from finetune.data import prepare_examples
    from finetune.recipe import load_base_tokenizer, tokenize_splits
    from tutor.lm.resolve import load_causal_lm

    config = make_config(args, home, packing=False)
    cfg = config.finetune
    train, val, stats = prepare_examples(cfg)
    tokenizer = load_base_tokenizer(config)
    features, _ = tokenize_splits(cfg, tokenizer, train, val, stats)
    model, _ = load_causal_lm(
        ALIAS, models_dir=config.paths.models_dir, dtype="float32", device="cpu"
    )
    model.config.use_cache = False
    model = get_peft_model(
        model,
        LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=0.05,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
    )
    targs = TrainingArguments(
        output_dir=str(home / "baseline"),
        per_device_train_batch_size=cfg.batch_size,
        num_train_epochs=1,
        learning_rate=2e-4,
        lr_scheduler_type="constant",
        seed=cfg.seed,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1000,
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    timer = clock()
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=features,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        callbacks=[timer],
    )
    trainer.train()
    return {
        "tokens": stats.train_tokens,
        "seconds": timer.wall,
        "cpu_seconds": timer.cpu,
        "steps": trainer.state.global_step,
    }


def run_ours(args: argparse.Namespace, home: Path, packing: bool) -> dict:
    from finetune.recipe import run_finetune

    timer = clock()
    result = run_finetune(make_config(args, home, packing), callbacks=[timer])
    return {
        "tokens": result.stats.train_tokens,
        "seconds": timer.wall,
        "cpu_seconds": timer.cpu,
        "steps": result.metrics["global_step"],
    }


def child(args: argparse.Namespace) -> None:
    import torch

    torch.manual_seed(0)
    home = Path(args.home)
    if args.variant == "baseline":
        out = run_baseline(args, home)
    else:
        out = run_ours(args, home, packing=args.variant == "ours+packing")
    out["variant"] = args.variant
    out["tokens_per_s"] = out["tokens"] / out["seconds"]
    out["tokens_per_cpu_s"] = out["tokens"] / out["cpu_seconds"]
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(out), flush=True)


def parent(args: argparse.Namespace) -> None:
    from tutor.lm.resolve import ensure_bundled_cache

    rec = Recorder("train_cpu", args)
    models = ensure_bundled_cache(ALIAS, REPO / ".tutor" / "models")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for variant in VARIANTS:
            home = Path(tmp) / variant.replace("+", "-")
            (home / "models").mkdir(parents=True)
            (home / "models" / ALIAS).symlink_to(models)
            cmd = [
                sys.executable, __file__, "--child", "--variant", variant, "--home", str(home),
                "--examples", str(args.examples), "--batch-size", str(args.batch_size),
                "--max-length", str(args.max_length), "--data", *args.data,
            ]  # fmt: skip
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
            print(f"running {variant} ...", file=sys.stderr, flush=True)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if proc.returncode != 0 or line is None:
                sys.exit(f"{variant} failed:\n{proc.stderr[-3000:]}")
            rows.append(json.loads(line[len("RESULT ") :]))
    base = rows[0]["tokens_per_s"]
    names = ", ".join(Path(p).name for p in args.data)
    print(
        f"\nLoRA r=16 on {ALIAS} (fp32, CPU, {rows[0]['threads']} threads), {names}: "
        f"{args.examples} examples per file, {rows[0]['tokens']} tokens, batch {args.batch_size}, "
        f"max_length {args.max_length}, 1 epoch\n"
    )
    base_cpu = rows[0]["tokens_per_cpu_s"]
    columns = ["variant", "steps", "train s", "tokens/s", "vs baseline", "tokens per CPU-s"]
    columns += ["vs baseline (CPU)", "peak RSS MiB"]
    table = [
        [
            r["variant"],
            r["steps"],
            f"{r['seconds']:.1f}",
            f"{r['tokens_per_s']:.1f}",
            f"{r['tokens_per_s'] / base:.2f}x",
            f"{r['tokens_per_cpu_s']:.1f}",
            f"{r['tokens_per_cpu_s'] / base_cpu:.2f}x",
            f"{r['peak_rss_mib']:.0f}",
        ]
        for r in rows
    ]
    rec.meta(model=ALIAS, dtype="torch.float32", data=names, tokens=rows[0]["tokens"])
    rec.samples("variants", rows)
    print(rec.table("variants", columns, table, align="lrrrrrrr"))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    rec.write()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=8, help="first N examples of each data file")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--data", nargs="+", default=default_data())
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--home", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
