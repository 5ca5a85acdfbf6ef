"""The training card: what was trained on what, how, and how it went (``card.md`` for people,
``card.json`` for tools), written next to the adapter."""

from __future__ import annotations

import dataclasses
import json
import platform
from pathlib import Path
from typing import Any

from finetune.data import DataStats
from knowledge_base.atomic import write_atomic
from tutor.config import Config


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def _pct(d: dict[str, Any]) -> str:
    total = d.get("target_tokens") or 0
    return f"{d.get('trained_target_tokens', 0) / total:.1%}" if total else "n/a"


def card_data(
    config: Config, stats: DataStats, metrics: dict[str, Any], *, quantize_base: bool
) -> dict[str, Any]:
    ft = config.finetune
    hyper = {
        k: getattr(ft, k)
        for k in (
            "lora_r",
            "lora_alpha",
            "lora_dropout",
            "target_modules",
            "max_length",
            "packing",
            "epochs",
            "max_steps",
            "learning_rate",
            "lr_scheduler",
            "batch_size",
            "grad_accum",
            "warmup_ratio",
            "weight_decay",
            "eval_steps",
            "early_stopping_patience",
            "gradient_checkpointing",
            "optim",
            "seed",
            "dtype",
            "telling_turns",
        )
    }
    import peft
    import torch
    import transformers

    return {
        "run_name": ft.run_name,
        "status": metrics.get("status"),
        "base_model": ft.base_model,
        "method": "QLoRA (NF4 + double quant base)" if quantize_base else "LoRA",
        "data": {
            "train_files": [dataclasses.asdict(f) for f in stats.files],
            "eval_files": [dataclasses.asdict(f) for f in stats.eval_files],
            **{
                k: v
                for k, v in dataclasses.asdict(stats).items()
                if k not in ("files", "eval_files")
            },
        },
        "hyperparameters": hyper,
        "results": {k: v for k, v in metrics.items() if k != "log_history"},
        "software": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
    }


def render_card(card: dict[str, Any]) -> str:
    r, d = card["results"], card["data"]
    lines = [
        f"# Training card: {card['run_name']}",
        "",
        f"- **Base model**: `{card['base_model']}`",
        f"- **Method**: {card['method']}, on {r.get('device')} ({r.get('compute_dtype')}), "
        f"{r.get('world_size')} process(es)",
        f"- **Status**: {card['status']} at step {r.get('global_step')} of {r.get('max_steps')}"
        f" (stopped by {str(r.get('stop_reason')).replace('_', ' ')})",
        "",
        "## Results",
        "",
        "| eval loss before | final eval loss | best eval loss (step) | train loss |",
        "|---|---|---|---|",
        f"| {_fmt(r.get('eval_loss_before'))} | {_fmt(r.get('final_eval_loss'))} | "
        f"{_fmt(r.get('best_eval_loss'))} ({r.get('best_step')}) | {_fmt(r.get('train_loss'))} |",
        "",
        f"Training time {_fmt(r.get('train_seconds'), '.1f')} s (whole run "
        f"{_fmt(r.get('total_seconds'), '.1f')} s), {r.get('train_tokens_seen')} tokens, "
        f"{_fmt(r.get('tokens_per_second'), '.1f')} tokens/s, peak memory "
        f"{_fmt(r.get('peak_memory_mb'), '.0f')} MiB.",
        "",
        "## Data",
        "",
        "| split | file | format | records | examples | invalid | sha256 |",
        "|---|---|---|---|---|---|---|",
    ]
    for split, files in (("train", d["train_files"]), ("eval", d["eval_files"])):
        for f in files:
            lines.append(
                f"| {split} | `{f['path']}` | {f['format']} | {f['records']} | {f['examples']} | "
                f"{f['invalid']} | `{f['sha256'][:16]}…` |"
            )
    lines += [
        "",
        f"{d['train_examples']} train examples on {d['train_groups']} problems, "
        f"{d['eval_examples']} validation examples on {d['eval_groups']} problems (split by "
        f"problem); {d['duplicates']} duplicates dropped; {d['windowed']} long examples split "
        f"into {d['windows']} windows, {d['dropped_turns']} teacher turns too long to fit; "
        f"{_pct(d)} of the target teacher tokens trained on; {d['train_tokens']} train tokens, "
        f"{d['train_label_tokens']} of them labelled (assistant turns); telling turns: "
        f"{d['telling']} ({d['telling_policy']}).",
        "",
        "## Hyperparameters",
        "",
        "| name | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in card["hyperparameters"].items()],
        "",
        "Software: " + ", ".join(f"{k} {v}" for k, v in card["software"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


def write_card(
    run_dir: Path,
    *,
    config: Config,
    stats: DataStats,
    metrics: dict[str, Any],
    quantize_base: bool,
) -> dict[str, Any]:
    card = card_data(config, stats, metrics, quantize_base=quantize_base)
    write_atomic(run_dir / "card.json", json.dumps(card, indent=2, default=str) + "\n")
    write_atomic(run_dir / "card.md", render_card(card))
    return card
