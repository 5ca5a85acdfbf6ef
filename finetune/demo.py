"""``make finetune-demo``: LoRA-tune the bundled SmolLM2-135M-Instruct on a small slice of
tutoring dialogues on this CPU, then show the validation loss and one tutor answer before and
after. Runs the same recipe as ``tutor finetune train --config configs/cpu-smollm2-lora.toml``.

    python -m finetune.demo [--data FILE ...] [--max-examples N] [--minutes M]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

DEFAULT_DATA = "data/dialogues/tutoring_sample.jsonl"


def _wrap(label: str, text: str) -> str:
    body = textwrap.fill(" ".join(text.split()), width=96, subsequent_indent=" " * 12)
    return f"{label:<11} {body}"


def pick_prompt(val: list) -> tuple[list[dict[str, str]], str]:
    """A validation dialogue cut before its last teacher turn: (messages, the teacher's turn)."""
    for ex in val:
        msgs = ex.messages
        last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
        if last >= 2 and msgs[last - 1]["role"] == "user":
            return msgs[:last], msgs[last]["content"]
    msgs = val[0].messages if val else []
    raise SystemExit(
        f"no validation dialogue ends with a student turn then a teacher turn ({msgs})"
    )


def answer(model: Any, tokenizer: Any, messages: list[dict[str, str]], max_new_tokens: int) -> str:
    from tutor.lm.base import GenerationOptions
    from tutor.lm.hf import HFGenerator

    gen = HFGenerator(
        model,
        tokenizer,
        # Plain greedy decoding. A repetition penalty would also push down <|im_end|>, which
        # ends every earlier turn of the prompt, and keep a tuned model from stopping.
        defaults=GenerationOptions(max_new_tokens=max_new_tokens, repetition_penalty=1.0),
    )
    return "".join(gen.stream(messages)).strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m finetune.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/cpu-smollm2-lora.toml")
    ap.add_argument("--data", nargs="+", default=None, help=f"default: {DEFAULT_DATA}")
    ap.add_argument("--max-examples", type=int, default=40, help="per data file")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--minutes", type=float, default=9.0, help="training time budget")
    ap.add_argument("--run-name", default="finetune-demo")
    ap.add_argument("--max-new-tokens", type=int, default=60)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("finetune").setLevel(logging.INFO)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

    from finetune.data import prepare_examples
    from finetune.recipe import run_finetune
    from finetune.trainer import TimeBudget
    from tutor.config import load_config
    from tutor.lm.resolve import load_causal_lm

    t0 = time.perf_counter()
    data = args.data or [DEFAULT_DATA]
    overrides = {
        "finetune": {
            "data": data,
            "run_name": args.run_name,
            "overwrite": True,
            "max_examples": args.max_examples,
            "epochs": args.epochs,
        }
    }
    config = load_config(args.config, os.environ, overrides)
    _, val, _ = prepare_examples(config.finetune)
    prompt, reference = pick_prompt(val)

    budget = TimeBudget(args.minutes * 60)
    result = run_finetune(config, callbacks=[budget])
    m = result.metrics

    model, tokenizer = load_causal_lm(
        m["base_model"],
        models_dir=config.paths.models_dir,
        dtype=config.finetune.dtype,
        device="cpu",
        adapter=str(result.adapter_dir),
    )
    with model.disable_adapter():
        before = answer(model, tokenizer, prompt, args.max_new_tokens)
    after = answer(model, tokenizer, prompt, args.max_new_tokens)

    stats = result.stats
    names = ", ".join(Path(p).name for p in data)
    print()
    print(f"== finetune demo: {m['base_model']} + LoRA, {m['device']} ({m['compute_dtype']}) ==")
    print(
        f"data        {names}: {stats.train_examples} train / {stats.eval_examples} validation "
        f"dialogues, {stats.train_tokens} train tokens"
    )
    print(
        f"training    {m['global_step']} steps in {m['train_seconds'] / 60:.1f} min, "
        f"{m['tokens_per_second']} tokens/s, peak RSS {m['peak_memory_mb']:.0f} MiB"
        + (" (stopped by the time budget)" if budget.fired else "")
    )
    print(
        f"eval loss   before {m['eval_loss_before']:.4f}  ->  after {m['best_eval_loss']:.4f} "
        f"(best, step {m['best_step']}; final {m['final_eval_loss']:.4f})"
    )
    print(_wrap("student", prompt[-1]["content"]))
    print(_wrap("teacher", reference + "   [the dataset's own answer]"))
    print(f"answers     greedy, up to {args.max_new_tokens} new tokens")
    print(_wrap("before", before or "(empty)"))
    print(_wrap("after", after or "(empty)"))
    print(f"run         {result.run_dir}  (whole demo {(time.perf_counter() - t0) / 60:.1f} min)")
    print(f"try it      tutor chat --adapter {result.adapter_dir}")
    return 0


if __name__ == "__main__":
    from tutor.errors import TutorError

    try:
        sys.exit(main())
    except TutorError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
