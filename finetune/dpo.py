"""DPO on top of an SFT adapter (issue 15, item 5): ``tutor finetune dpo``.

The policy is the SFT run's adapter, trained further; the reference is a frozen copy of the same
adapter (TRL's ``DPOTrainer`` adds it as a second adapter, ``ref``), so the preference loss
moves the model away from the SFT model only where the pairs say. Reference log-probabilities
are computed once before training (``precompute_ref_log_probs``). Pairs come from
``tutor finetune pairs`` (``finetune.pairs``); whole problems are held out for validation
(``eval_fraction``), early stopping watches the validation loss, and the best checkpoint's
adapter is saved. A prompt too long for ``max_length`` loses its oldest turns (``fit_prompt``;
the system prompt and the student's last turn stay), never the replies.

The run directory holds what an SFT run's does: ``adapter/`` (the same base, so ``--adapter``,
``tutor finetune merge`` and ``export --gguf`` take it), ``config.toml`` (the SFT run's, so
``finetune.heldout`` rebuilds the same held-out problems), ``card.json`` / ``card.md`` and
``metrics.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from finetune.errors import RunExistsError, TrainingInterrupted
from finetune.pairs import read_pairs
from finetune.trainer import StopOnSignal
from tutor.errors import InputError, ModelNotFoundError, NotFoundError

log = logging.getLogger(__name__)


@dataclass
class DPOSettings:
    beta: float = 0.1
    learning_rate: float = 5e-5
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 2
    grad_accum: int = 4
    max_length: int = 512
    eval_fraction: float = 0.1
    eval_steps: int = 10
    early_stopping_patience: int = 3
    seed: int = 42
    dtype: str = "auto"

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise InputError(f"beta={self.beta}: must be above 0 (0.1 is usual)")
        if not 0 <= self.eval_fraction < 1:
            raise InputError(f"eval_fraction={self.eval_fraction}: must be in [0, 1)")


@dataclass
class DPOResult:
    run_dir: Path
    adapter_dir: Path
    metrics: dict[str, Any]


def split_pairs(
    pairs: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hold out whole problems (``group``), ordered by a seeded hash as the SFT split is."""
    groups = sorted(
        {p["group"] for p in pairs},
        key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest(),
    )
    if fraction <= 0 or len(groups) < 2:
        return pairs, []
    held = set(groups[: min(len(groups) - 1, max(1, round(fraction * len(groups))))])
    return [p for p in pairs if p["group"] not in held], [p for p in pairs if p["group"] in held]


def fit_prompt(
    prompt: list[dict[str, str]], replies: list[str], tokenizer: Any, max_length: int
) -> tuple[list[dict[str, str]], int]:
    """The prompt without its oldest turns (the system prompt and the last turn stay) until the
    longer reply fits in ``max_length`` tokens after it; (prompt, turns dropped)."""

    def length(msgs: list[dict[str, str]]) -> int:
        texts = [
            tokenizer.apply_chat_template(
                [*msgs, {"role": "assistant", "content": r}], tokenize=False
            )
            for r in replies
        ]
        return max(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)

    msgs, dropped = list(prompt), 0
    first = 1 if msgs and msgs[0]["role"] == "system" else 0
    while len(msgs) - first > 1 and length(msgs) > max_length:
        del msgs[first]
        dropped += 1
    return msgs, dropped


def fits(prompt: list[dict[str, str]], tokenizer: Any, max_length: int) -> bool:
    """Whether the prompt leaves room for a reply (TRL drops a row whose prompt fills it)."""
    text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) < max_length


def _dataset(pairs: list[dict[str, Any]], tokenizer: Any, max_length: int) -> tuple[Any, int]:
    """The pairs as TRL's conversational preference rows; (dataset, prompt turns dropped)."""
    from datasets import Dataset

    rows, dropped = [], 0
    for p in pairs:
        prompt, n = fit_prompt(p["prompt"], [p["chosen"], p["rejected"]], tokenizer, max_length)
        dropped += n
        if not fits(prompt, tokenizer, max_length):
            continue
        rows.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": p["chosen"]}],
                "rejected": [{"role": "assistant", "content": p["rejected"]}],
            }
        )
    if not rows:
        raise InputError(
            f"every pair's system prompt and last turn alone fill max_length={max_length} "
            f"tokens; raise --max-length"
        )
    return Dataset.from_list(rows), dropped


def _policy(config: Any, sft_adapter: Path, base: str, dtype: str) -> tuple[Any, Any]:
    from peft import PeftModel

    from tutor.lm.resolve import load_causal_lm

    model, tokenizer = load_causal_lm(
        base,
        models_dir=config.paths.models_dir,
        dtype=dtype,
        device="cpu",
        chat_template=config.lm.chat_template,
        training=True,
    )
    model.config.use_cache = False
    return PeftModel.from_pretrained(model, str(sft_adapter), is_trainable=True), tokenizer


def _args(s: DPOSettings, out: Path, has_eval: bool, bf16: bool) -> Any:
    from trl import DPOConfig

    return DPOConfig(
        output_dir=str(out / "checkpoints"),
        beta=s.beta,
        learning_rate=s.learning_rate,
        num_train_epochs=s.epochs,
        max_steps=s.max_steps,
        per_device_train_batch_size=s.batch_size,
        per_device_eval_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        max_length=s.max_length,
        precompute_ref_log_probs=True,
        lr_scheduler_type="cosine",
        warmup_steps=0.1,
        bf16=bf16,
        use_cpu=True,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=s.eval_steps,
        save_strategy="steps",
        save_steps=s.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=has_eval,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=5,
        logging_first_step=True,
        seed=s.seed,
        data_seed=s.seed,
        report_to="none",
        dataloader_num_workers=0,
    )


def run_dpo(
    config: Any,
    *,
    sft_run: Path,
    pairs_file: Path,
    run_name: str,
    settings: DPOSettings,
    overwrite: bool = False,
    resume: bool = False,
) -> DPOResult:
    """Train the SFT run's adapter on the pairs by DPO into ``<runs>/<run_name>``. Ctrl-C stops
    after the current step with a checkpoint (``TrainingInterrupted``); ``resume`` goes on from
    the run's last complete checkpoint."""
    import torch
    from transformers import EarlyStoppingCallback, set_seed
    from trl import DPOTrainer

    from finetune.merge import base_model_of, check_adapter
    from tutor.lm.resolve import pick_dtype

    sft_adapter = sft_run / "adapter"
    if not sft_adapter.is_dir():
        raise ModelNotFoundError(f"{sft_run}: no adapter/ there; pass a finished SFT run")
    check_adapter(sft_adapter)
    out = config.paths.runs_dir / run_name
    resume_from = _check_out(out, overwrite, resume, sft_run)
    pairs = read_pairs(pairs_file)
    train, val = split_pairs(pairs, settings.eval_fraction, settings.seed)
    base = base_model_of(sft_adapter)
    set_seed(settings.seed)
    model, tokenizer = _policy(config, sft_adapter, base, settings.dtype)
    bf16 = pick_dtype(settings.dtype, "cpu") == torch.bfloat16
    args = _args(settings, out, bool(val), bf16)
    stop = StopOnSignal()
    callbacks: list[Any] = [stop]
    if val and settings.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(settings.early_stopping_patience))
    t0 = time.perf_counter()
    train_set, cut = _dataset(train, tokenizer, settings.max_length)
    val_set, cut_val = _dataset(val, tokenizer, settings.max_length) if val else (None, 0)
    if cut + cut_val:
        log.info("dropped %d oldest prompt turns to fit max_length", cut + cut_val)
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=val_set,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    before = _before(trainer, out, bool(val), resume_from)
    stop.install()
    try:
        output = trainer.train(resume_from_checkpoint=resume_from)
    finally:
        stop.uninstall()
    if stop.stopped:
        raise TrainingInterrupted(
            f"stopped at step {trainer.state.global_step}; a checkpoint was saved in "
            f"{out / 'checkpoints'}. Resume with the same command plus --resume"
        )
    after = trainer.evaluate() if val else {}
    seconds = time.perf_counter() - t0
    adapter_dir = out / "adapter"
    policy: Any = trainer.model  # the PeftModel; its "ref" copy stays unsaved
    policy.save_pretrained(str(adapter_dir), selected_adapters=["default"])
    shutil.copyfile(sft_run / "config.toml", out / "config.toml")
    metrics = _metrics(settings, pairs, train, val, before, after, output, trainer, seconds)
    metrics.update(sft_run=sft_run.name, pairs_file=str(pairs_file), base_model=base)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    _write_card(out, metrics)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return DPOResult(out, adapter_dir, metrics)


def _before(trainer: Any, out: Path, has_eval: bool, resume_from: str | None) -> dict:
    """The validation metrics before training: measured on a fresh start (and kept in the
    run dir), read back on a resume."""
    path = out / "eval_before.json"
    if resume_from and path.is_file():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    before = trainer.evaluate() if has_eval else {}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(before) + "\n", encoding="utf-8")
    return dict(before)


def _check_out(out: Path, overwrite: bool, resume: bool, sft_run: Path) -> str | None:
    """Check the new run's directory; the checkpoint to resume from (with ``resume``)."""
    from finetune.checkpoints import last_complete_checkpoint

    if out.resolve() == sft_run.resolve():
        raise InputError(f"--run-name names the SFT run itself ({sft_run.name}); pick a new name")
    if resume:
        last = last_complete_checkpoint(out / "checkpoints")
        if last is None:
            raise NotFoundError(
                f"nothing to resume: run '{out.name}' has no complete checkpoint in "
                f"{out / 'checkpoints'}; start it without --resume"
            )
        return str(last)
    if out.exists():
        if not overwrite:
            raise RunExistsError(
                f"run '{out.name}' already exists at {out}; pass --overwrite or --run-name NEW"
            )
        shutil.rmtree(out)
    return None


def _metrics(
    s: DPOSettings,
    pairs: list,
    train: list,
    val: list,
    before: dict,
    after: dict,
    output: Any,
    trainer: Any,
    seconds: float,
) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    for p in pairs:
        reasons[p.get("reason") or "?"] = reasons.get(p.get("reason") or "?", 0) + 1

    def pick(d: dict) -> dict[str, float]:
        keys = ("eval_loss", "eval_rewards/accuracies", "eval_rewards/margins")
        return {k.removeprefix("eval_"): round(float(d[k]), 4) for k in keys if k in d}

    return {
        "method": "dpo",
        "settings": asdict(s),
        "pairs": len(pairs),
        "train_pairs": len(train),
        "eval_pairs": len(val),
        "reasons": reasons,
        "eval_before": pick(before),
        "eval_after": pick(after),
        "best_step": _best_step(trainer),
        "global_step": int(trainer.state.global_step),
        "train_loss": round(float(output.training_loss), 4),
        "train_seconds": round(seconds, 1),
    }


def _best_step(trainer: Any) -> int | None:
    best = trainer.state.best_model_checkpoint
    return int(best.rsplit("-", 1)[-1]) if best else None


def _write_card(out: Path, m: dict[str, Any]) -> None:
    b, a = m["eval_before"], m["eval_after"]
    lines = [
        f"# DPO run {out.name}",
        "",
        f"On top of the SFT run `{m['sft_run']}` (base `{m['base_model']}`), trained by DPO on "
        f"{m['train_pairs']} pairs ({m['eval_pairs']} held out by problem) from "
        f"`{m['pairs_file']}`.",
        "",
        f"- rejected replies by reason: {m['reasons']}",
        f"- settings: {m['settings']}",
        f"- steps: {m['global_step']} (best {m['best_step']}), {m['train_seconds']:.0f} s, "
        f"train loss {m['train_loss']}",
        f"- validation loss {b.get('loss')} -> {a.get('loss')}; chosen preferred "
        f"{b.get('rewards/accuracies')} -> {a.get('rewards/accuracies')}; margin "
        f"{b.get('rewards/margins')} -> {a.get('rewards/margins')}",
        "",
        "Data: the SFT run's training dialogues (MathDial is CC BY-SA 4.0; see its card).",
    ]
    (out / "card.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "card.json").write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")
