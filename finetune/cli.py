"""``tutor finetune {train,data,merge,export}``: thin commands over ``finetune.recipe`` /
``merge`` / ``export``.

Options with ``dest="finetune.KEY"`` are config overrides (they win over ``--config FILE``,
the environment and the defaults).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

FORMATS = ("auto", "openai", "sharegpt", "alpaca", "qa", "gsm8k", "dialogue", "mathdial")


def _data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", dest="finetune.data", nargs="+", metavar="FILE", default=None)
    g.add_argument(
        "--eval-data",
        dest="finetune.eval_data",
        nargs="+",
        metavar="FILE",
        default=None,
        help="validation files (default: hold out finetune.eval_fraction of the problems)",
    )
    g.add_argument("--format", dest="finetune.data_format", choices=FORMATS, default=None)
    g.add_argument(
        "--max-examples",
        dest="finetune.max_examples",
        metavar="N",
        type=int,
        default=None,
        help="use the first N valid records of each file",
    )
    g.add_argument("--max-length", dest="finetune.max_length", metavar="N", type=int, default=None)
    g.add_argument(
        "--base-model",
        metavar="MODEL",
        dest="finetune.base_model",
        default=None,
        help="HF id, directory or bundled alias (default: lm.model)",
    )
    g.add_argument(
        "--skip-invalid",
        dest="finetune.skip_invalid",
        action="store_const",
        const=True,
        default=None,
        help="skip bad records instead of stopping",
    )


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "finetune", parents=[common], help="LoRA / QLoRA fine-tuning on dialogues and QA"
    )
    fsub = p.add_subparsers(dest="finetune_command", metavar="ACTION", required=True)

    t = fsub.add_parser(
        "train",
        parents=[common],
        help="train a LoRA adapter (QLoRA with --qlora)",
        description="Train a LoRA adapter into <home>/runs/<run_name>/. Example: tutor finetune "
        "train --config configs/cpu-smollm2-lora.toml --max-steps 20",
    )
    _data_options(t)
    _training_options(t)
    t.set_defaults(func=cmd_train)

    d = fsub.add_parser(
        "data",
        parents=[common],
        help="check and count training data without training",
        description="Load, validate, dedupe and split the data; with the base model's "
        "tokenizer, also count tokens and truncation.",
    )
    _data_options(d)
    d.add_argument("--no-tokenize", action="store_true", help="skip the token counts")
    d.add_argument(
        "--show",
        type=int,
        default=0,
        metavar="N",
        help="print the first N training examples as JSON lines",
    )
    d.set_defaults(func=cmd_data)

    _merge_parser(fsub, common)
    _export_parser(fsub, common)
    _preference_parsers(fsub, common)


def _preference_parsers(fsub: Any, common: argparse.ArgumentParser) -> None:
    p = fsub.add_parser(
        "pairs",
        parents=[common],
        help="build DPO preference pairs: human turns against model replies a check rejects",
        description="For the training contexts of an SFT run, sample the run's model and pair "
        "the human teacher turn (chosen) with a candidate the verifiers or the move classifier "
        "reject. Example: tutor finetune pairs --run tutoring-lora --limit 300",
    )
    p.add_argument("--run", metavar="NAME", required=True, help="the SFT run in <home>/runs")
    p.add_argument(
        "--data",
        nargs="+",
        metavar="FILE",
        default=[],
        help="more dialogue files (e.g. from `tutor finetune synth`): their teacher turns are "
        "chosen replies too; problems the run held out are left out",
    )
    p.add_argument("--out", metavar="FILE", help="default: <run>/pairs.jsonl")
    p.add_argument("--candidates", type=int, default=2, metavar="N", help="replies per context")
    p.add_argument(
        "--limit", type=int, default=0, metavar="N", help="contexts drawn at random (0 = all)"
    )
    p.add_argument("--per-dialogue", type=int, default=1, metavar="N", help="turns per dialogue")
    p.add_argument("--max-new-tokens", type=int, default=60, metavar="N")
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.add_argument(
        "--no-classifier", action="store_true", help="verifiers only (no telling/generic check)"
    )
    p.set_defaults(func=cmd_pairs)

    s = fsub.add_parser(
        "synth",
        parents=[common],
        help="write tutoring dialogues from template moves: a planted mistake, located",
        description="Dialogues from the item bank (and GSM8K-form files): a student's work with "
        "one planted mistake and the tutor's template move that locates it. Example: tutor "
        "finetune synth --gsm8k ../shared/data/qa/gsm8k_train_sample.jsonl --out synth.jsonl",
    )
    s.add_argument("--out", metavar="FILE", required=True, help="the dialogue JSONL to write")
    s.add_argument("--items", nargs="+", metavar="PATH", default=[], help="default: the bank")
    s.add_argument("--no-items", action="store_true", help="leave the item bank out")
    s.add_argument("--gsm8k", nargs="+", metavar="FILE", default=[], help="GSM8K-form files")
    s.add_argument(
        "--limit",
        type=int,
        default=0,
        metavar="N",
        help="write at most N dialogues: the item bank's first, then a seeded sample of the "
        "GSM8K ones (default 0: all)",
    )
    s.add_argument("--seed", type=int, default=0, metavar="N")
    s.set_defaults(func=cmd_synth)

    d = fsub.add_parser(
        "dpo",
        parents=[common],
        help="train an SFT run's adapter further by DPO on preference pairs",
        description="Example: tutor finetune dpo --run tutoring-lora --pairs "
        ".tutor/runs/tutoring-lora/pairs.jsonl --run-name tutoring-dpo",
    )
    d.add_argument("--run", metavar="NAME", required=True, help="the SFT run in <home>/runs")
    d.add_argument("--pairs", metavar="FILE", help="default: <run>/pairs.jsonl")
    d.add_argument("--run-name", metavar="NAME", required=True, help="the new run's name")
    d.add_argument("--beta", type=float, default=0.1)
    d.add_argument("--lr", type=float, default=5e-5)
    d.add_argument("--epochs", type=float, default=1.0)
    d.add_argument("--max-steps", type=int, default=-1, metavar="N")
    d.add_argument("--max-length", type=int, default=512, metavar="N")
    d.add_argument("--eval-steps", type=int, default=10, metavar="N")
    d.add_argument("--eval-fraction", type=float, default=0.1, metavar="X")
    d.add_argument("--overwrite", action="store_true")
    d.add_argument(
        "--resume", action="store_true", help="continue the run from its last checkpoint"
    )
    d.set_defaults(func=cmd_dpo)


def _training_options(t: argparse.ArgumentParser) -> None:
    g = t.add_argument_group("training")
    g.add_argument("--run-name", dest="finetune.run_name", metavar="NAME", default=None)
    g.add_argument(
        "--qlora",
        dest="finetune.qlora",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="4-bit NF4 base through bitsandbytes",
    )
    g.add_argument(
        "--packing", dest="finetune.packing", action=argparse.BooleanOptionalAction, default=None
    )
    g.add_argument("--epochs", dest="finetune.epochs", metavar="X", type=float, default=None)
    g.add_argument("--max-steps", dest="finetune.max_steps", metavar="N", type=int, default=None)
    g.add_argument("--lr", dest="finetune.learning_rate", metavar="X", type=float, default=None)
    g.add_argument("--batch-size", dest="finetune.batch_size", metavar="N", type=int, default=None)
    g.add_argument("--grad-accum", dest="finetune.grad_accum", metavar="N", type=int, default=None)
    g.add_argument("--eval-steps", dest="finetune.eval_steps", metavar="N", type=int, default=None)
    g.add_argument("--lora-r", dest="finetune.lora_r", metavar="N", type=int, default=None)
    g.add_argument("--seed", dest="finetune.seed", metavar="N", type=int, default=None)
    g.add_argument(
        "--device", dest="finetune.device", metavar="DEV", default=None, help="auto, cpu, cuda"
    )
    g.add_argument(
        "--dtype",
        dest="finetune.dtype",
        choices=["auto", "float32", "bfloat16", "float16"],
        default=None,
    )
    g.add_argument(
        "--tensorboard",
        dest="finetune.tensorboard",
        action=argparse.BooleanOptionalAction,
        default=None,
    )
    g.add_argument(
        "--resume",
        dest="finetune.resume",
        action="store_const",
        const=True,
        default=None,
        help="continue the run from its last checkpoint",
    )
    g.add_argument(
        "--overwrite",
        dest="finetune.overwrite",
        action="store_const",
        const=True,
        default=None,
        help="delete an existing run of the same name first",
    )


def _merge_parser(fsub: Any, common: argparse.ArgumentParser) -> None:
    m = fsub.add_parser(
        "merge",
        parents=[common],
        help="merge an adapter into its base: a plain 16-bit model directory",
    )
    src = m.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", metavar="NAME", help="a run in <home>/runs")
    src.add_argument("--adapter", metavar="DIR", help="an adapter directory")
    m.add_argument("--out", metavar="DIR", help="default: <run>/merged")
    m.add_argument(
        "--model",
        metavar="BASE",
        default="",
        help="base model (default: the one the run was trained on)",
    )
    m.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16")
    m.add_argument(
        "--load-in-4bit",
        action="store_true",
        help="refused: merging into a 4-bit base loses the adapter",
    )
    m.add_argument("--overwrite", action="store_true")
    m.set_defaults(func=cmd_merge)


def _export_parser(fsub: Any, common: argparse.ArgumentParser) -> None:
    e = fsub.add_parser(
        "export",
        parents=[common],
        help="write a fine-tune as a GGUF file for llama.cpp / Ollama",
        description="Write base + adapter merged as one GGUF model file, or (--lora) the adapter "
        "alone as a llama.cpp GGUF LoRA. Examples: tutor finetune export --gguf "
        ".tutor/runs/my-run/adapter --out my-run.gguf; tutor finetune export --gguf --lora "
        ".tutor/runs/my-run/adapter --out my-run-lora.gguf",
    )
    e.add_argument("adapter", nargs="?", metavar="ADAPTER_DIR", help="an adapter directory")
    e.add_argument("--run", metavar="NAME", help="a run in <home>/runs (instead of ADAPTER_DIR)")
    e.add_argument(
        "--gguf", action="store_true", required=True, help="GGUF format (the only one for now)"
    )
    e.add_argument(
        "--lora",
        action="store_true",
        help="write the adapter alone (a GGUF LoRA for llama.cpp --lora), not the merged model",
    )
    e.add_argument(
        "--out",
        metavar="FILE",
        help="the .gguf file (default: <run>/merged-<outtype>.gguf or <run>/lora-<outtype>.gguf)",
    )
    e.add_argument("--outtype", default="f32", help="f32 (default), f16 or q8_0")
    e.add_argument(
        "--model", metavar="BASE", default="", help="base model (default: the run's base)"
    )
    e.add_argument("--overwrite", action="store_true")
    e.set_defaults(func=cmd_export)


def cmd_train(args: argparse.Namespace, config: Any) -> int:
    from finetune.recipe import run_finetune, world

    result = run_finetune(config)
    if world()[0] != 0:
        return 0  # under accelerate launch / torchrun only rank 0 reports
    m = result.metrics

    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.4f}"

    print(f"run:        {result.run_dir}")
    print(f"adapter:    {result.adapter_dir}")
    print(
        f"eval loss:  before {f(m['eval_loss_before'])}  final {f(m['final_eval_loss'])}  "
        f"best {f(m['best_eval_loss'])} (step {m['best_step']})"
    )
    print(
        f"steps:      {m['global_step']}{' (early stopping)' if m['stopped_early'] else ''}  "
        f"{m['train_seconds']:.0f} s  {m['tokens_per_second']} tokens/s  "
        f"peak {m['peak_memory_mb']:.0f} MiB"
    )
    base = m["base_model"]
    print(f"use it:     tutor chat --model {base} --adapter {result.adapter_dir}")
    return 0


def cmd_data(args: argparse.Namespace, config: Any) -> int:
    from finetune.data import prepare_examples

    train, val, stats = prepare_examples(config.finetune)
    if not args.no_tokenize:
        from finetune.tokens import load_base_tokenizer, tokenize_splits

        tokenize_splits(config.finetune, load_base_tokenizer(config), train, val, stats)
    print(stats.render())
    for ex in train[: args.show]:
        print(json.dumps({"source": ex.source, "messages": ex.messages}, ensure_ascii=False))
    return 0


def cmd_merge(args: argparse.Namespace, config: Any) -> int:
    from finetune.merge import merge_adapter

    if args.run:
        run_dir = config.paths.runs_dir / args.run
        adapter = run_dir / "adapter"
    else:
        adapter = Path(args.adapter)
        run_dir = adapter.parent
    out = Path(args.out) if args.out else run_dir / "merged"
    path = merge_adapter(
        adapter,
        out,
        base_model=args.model,
        models_dir=config.paths.models_dir,
        dtype=args.dtype,
        load_in_4bit=args.load_in_4bit or config.lm.load_in_4bit,
        chat_template=config.lm.chat_template,
        overwrite=args.overwrite,
    )
    print(path)
    print(f"use it:  tutor chat --model {path}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace, config: Any) -> int:
    from finetune.export import export_lora_gguf, export_merged_gguf
    from tutor.errors import InputError

    if bool(args.run) == bool(args.adapter):
        raise InputError("give either ADAPTER_DIR or --run NAME (one of them)")
    if args.run:
        run_dir = config.paths.runs_dir / args.run
        adapter = run_dir / "adapter"
    else:
        adapter = Path(args.adapter)
        run_dir = adapter.parent
    kind = "lora" if args.lora else "merged"
    out = Path(args.out) if args.out else run_dir / f"{kind}-{args.outtype}.gguf"
    common = dict(base_model=args.model, models_dir=config.paths.models_dir, outtype=args.outtype)
    if args.lora:
        done = export_lora_gguf(adapter, out, overwrite=args.overwrite, **common)
    else:
        done = export_merged_gguf(
            adapter, out, chat_template=config.lm.chat_template, overwrite=args.overwrite, **common
        )
    print(done.path)
    size = done.size_bytes / 2**20
    print(f"{done.tensors} tensors, {size:.1f} MiB, {done.seconds:.1f} s", file=sys.stderr)
    if args.lora:
        print(f"use it:  llama-cli -m BASE.gguf --lora {done.path}", file=sys.stderr)
    else:
        print(
            f"use it:  llama-cli -m {done.path}  (or an Ollama Modelfile: FROM {done.path})",
            file=sys.stderr,
        )
    return 0


def cmd_pairs(args: argparse.Namespace, config: Any) -> int:
    import dataclasses

    from finetune.heldout import run_split
    from finetune.merge import base_model_of
    from finetune.pairs import (
        build_pairs,
        classifier_moves,
        pair_contexts,
        sample_contexts,
        write_pairs,
    )
    from tutor.builders import build_generator

    run_dir = config.paths.runs_dir / args.run
    _, train, val = run_split(run_dir)
    contexts = pair_contexts(train, seed=args.seed, per_example=args.per_dialogue)
    contexts = sample_contexts(contexts, args.limit, args.seed)
    held = {ex.group for ex in val}
    for file in args.data:
        from finetune.data import apply_telling, load_files

        extra, _ = apply_telling(load_files([file])[0], "drop")
        more = pair_contexts(
            [ex for ex in extra if ex.group not in held],
            seed=args.seed,
            per_example=args.per_dialogue,
        )
        contexts += sample_contexts(more, args.limit, args.seed)
    adapter = run_dir / "adapter"
    lm = dataclasses.replace(config.lm, model=base_model_of(adapter), adapter=str(adapter))
    generator = build_generator(dataclasses.replace(config, lm=lm))
    moves = None
    if not args.no_classifier:
        from tutor.judge.model import MoveClassifier

        moves = classifier_moves(MoveClassifier.load())
    total = len(contexts)

    def progress(n: int, st: Any) -> None:
        if n % 10 == 0 or n == total:
            eta = st.seconds / n * (total - n)
            print(
                f"pairs: {n}/{total} contexts, {st.pairs} pairs, {st.seconds / n:.1f} s each, "
                f"{eta:.0f} s left",
                file=sys.stderr,
                flush=True,
            )

    pairs, stats = build_pairs(
        generator,
        contexts,
        candidates=args.candidates,
        max_new_tokens=args.max_new_tokens,
        moves=moves,
        progress=progress,
    )
    out = Path(args.out) if args.out else run_dir / "pairs.jsonl"
    write_pairs(out, pairs)
    print(out)
    print(json.dumps(stats.to_dict()), file=sys.stderr)
    return 0


def cmd_synth(args: argparse.Namespace, config: Any) -> int:
    from finetune.synth import bank_problems, gsm8k_problems, limit_dialogues, synthesize

    bank = [] if args.no_items else bank_problems(args.items)
    problems = list(bank)
    for file in args.gsm8k:
        problems += gsm8k_problems(file)
    dialogues, counts = synthesize(problems, seed=args.seed)
    if args.limit:
        first = {p.id for p in bank}
        dialogues = limit_dialogues(dialogues, args.limit, first, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in dialogues))
    print(out)
    print(
        f"{len(dialogues)} dialogues from {len(problems)} problems: {dict(counts)}", file=sys.stderr
    )
    return 0


def cmd_dpo(args: argparse.Namespace, config: Any) -> int:
    from finetune.dpo import DPOSettings, run_dpo

    sft = config.paths.runs_dir / args.run
    settings = DPOSettings(
        beta=args.beta,
        learning_rate=args.lr,
        epochs=args.epochs,
        max_steps=args.max_steps,
        max_length=args.max_length,
        eval_steps=args.eval_steps,
        eval_fraction=args.eval_fraction,
    )
    result = run_dpo(
        config,
        sft_run=sft,
        pairs_file=Path(args.pairs) if args.pairs else sft / "pairs.jsonl",
        run_name=args.run_name,
        settings=settings,
        overwrite=args.overwrite,
        resume=args.resume,
    )
    m = result.metrics
    print(f"run:        {result.run_dir}")
    print(f"adapter:    {result.adapter_dir}")
    print(f"validation: {m['eval_before']} -> {m['eval_after']}")
    print(f"steps:      {m['global_step']} (best {m['best_step']})  {m['train_seconds']:.0f} s")
    print(f"use it:     tutor chat --adapter {result.adapter_dir}")
    return 0
