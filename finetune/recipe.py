"""The LoRA recipe: ``setup -> train -> cleanup`` (torchtune style). QLoRA is the same recipe
with ``quantize_base=True``: the base is loaded 4-bit NF4 (double quant, bf16 compute on CUDA)
through bitsandbytes and prepared for k-bit training; nothing else changes.

``setup`` does every check that can fail (config, run directory, data, chat template, lengths,
base model, bitsandbytes) before the first step. ``train`` runs the transformers ``Trainer``
(evaluation every N steps, early stopping, best checkpoint kept, resume, seeds, progress bar,
optional TensorBoard) and writes the run directory::

    <paths.home>/runs/<run_name>/
        adapter/       the LoRA adapter (safetensors) + tokenizer and chat template
        checkpoints/   the best and the last Trainer checkpoints (resumable)
        config.toml    the resolved configuration
        metrics.json   losses, speed, memory, the full log history
        card.md        the training card (card.json: the same as data)

Ctrl-C stops after the current step and saves a resumable checkpoint (press it twice to abort
at once). The same code runs under ``accelerate launch`` (DDP): only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import math
import os
import resource
import shutil
import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from finetune.checkpoints import (
    FINGERPRINT_FILE,
    checkpoint_step,
    disk_full_message,
    fingerprint,
    fingerprint_differences,
    last_complete_checkpoint,
    no_space,
    read_fingerprint,
    read_progress,
    remove_incomplete_checkpoints,
    run_train_loss,
)
from finetune.data import DataStats, prepare_examples
from finetune.errors import DiskFullError, RunExistsError, TrainingInterrupted
from finetune.tokens import Collator, load_base_tokenizer, tokenize_splits
from knowledge_base.atomic import atomic_dir, write_atomic
from tutor.config import Config
from tutor.errors import ConfigError, MissingDependencyError, NotFoundError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    adapter_dir: Path | None
    metrics: dict[str, Any]
    stats: DataStats
    interrupted: bool = False


def world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the launcher's environment."""
    env = os.environ
    return (
        int(env.get("RANK", "0")),
        int(env.get("LOCAL_RANK", "0")),
        int(env.get("WORLD_SIZE", "1")),
    )


def steps_per_epoch(cfg: Any, rows: int, world_size: int = 1) -> int:
    """Optimizer steps in one epoch of ``rows`` training rows (as the Trainer counts them)."""
    batches = math.ceil(rows / (cfg.batch_size * world_size))
    return max(1, math.ceil(batches / cfg.grad_accum))


def eval_every(cfg: Any, rows: int, world_size: int = 1) -> int:
    """The evaluation / checkpoint cadence in steps: ``eval_steps``, or with ``evals_per_epoch``
    that many evaluations per epoch of this data."""
    if cfg.evals_per_epoch > 0:
        return max(1, steps_per_epoch(cfg, rows, world_size) // cfg.evals_per_epoch)
    return int(cfg.eval_steps)


def run_dir_for(config: Config) -> Path:
    return config.paths.runs_dir / config.finetune.run_name


def check_4bit(device: str) -> None:
    """Fail before training when bitsandbytes cannot do NF4 on ``device``."""
    if importlib.util.find_spec("bitsandbytes") is None:
        raise MissingDependencyError(
            "finetune.qlora needs bitsandbytes; install the GPU extra (pip install "
            "'offline-tutor[gpu]') or train plain LoRA with finetune.qlora=false"
        )
    try:
        import bitsandbytes.functional as bnbf
        import torch

        x = torch.randn(64, 64, device=device)
        q, state = bnbf.quantize_4bit(x, quant_type="nf4")
        y = bnbf.dequantize_4bit(q, state)
        if not torch.isfinite(y).all():
            raise RuntimeError("4-bit round trip produced non-finite values")
    except Exception as e:
        raise MissingDependencyError(
            f"bitsandbytes cannot run 4-bit NF4 on {device} here ({type(e).__name__}: {e}); use "
            f"a CUDA GPU, or train plain LoRA with finetune.qlora=false"
        ) from e


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- the recipe ---------------------------------------------------------------------------------
class LoRARecipe:
    """LoRA (or, with ``quantize_base=True``, QLoRA) fine-tuning of a causal LM."""

    def __init__(
        self,
        config: Config,
        *,
        quantize_base: bool = False,
        callbacks: Sequence[Any] = (),
    ) -> None:
        self.config = config
        self.cfg = config.finetune
        self.quantize_base = quantize_base
        self.extra_callbacks = list(callbacks)
        self.rank, self.local_rank, self.world_size = world()
        self.run_dir = run_dir_for(config)
        self.base_model = self.cfg.base_model or config.lm.model
        self.trainer: Any = None
        self.stats = DataStats()
        self.eval_loss_before: float | None = None
        self.resume_from: str | None = None
        self._stop: Any = None
        self._t0 = 0.0
        self.fingerprint: dict[str, Any] = {}
        self._prior = {"train_seconds": 0.0, "train_tokens": 0.0}
        self._segment_t0 = 0.0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- setup ----------------------------------------------------------------------------------
    def _check_run_dir(self) -> None:
        ckpt_dir = self.run_dir / "checkpoints"
        if self.cfg.resume:
            # the newest checkpoint written to the end: one cut short by a kill or a full disk
            # (no trainer_state.json) is skipped, and removed so the next save starts clean
            last = last_complete_checkpoint(ckpt_dir)
            if last is None:
                raise NotFoundError(
                    f"nothing to resume: run '{self.cfg.run_name}' has no complete checkpoint "
                    f"in {ckpt_dir}; start it without --resume (or with --overwrite)"
                )
            if self.is_main:
                for name in remove_incomplete_checkpoints(ckpt_dir):
                    log.warning("removed %s: it was not written to the end", name)
            self._check_not_finished(last)
            self.resume_from = str(last)
            return
        if self.cfg.overwrite:
            if self.is_main and self.run_dir.exists():
                log.warning("removing the previous run at %s (overwrite)", self.run_dir)
                shutil.rmtree(self.run_dir)
            return
        done = ("adapter", "metrics.json", "card.json")
        if any((self.run_dir / name).exists() for name in done) or any(
            ckpt_dir.glob("checkpoint-*")
        ):
            raise RunExistsError(
                f"run '{self.cfg.run_name}' already exists at {self.run_dir}; pass --resume "
                f"to continue it, --overwrite to start over, or --run-name NEW"
            )

    def _check_not_finished(self, checkpoint: Path) -> None:
        """Resuming a checkpoint that already reached the run's last step would train one step
        past it (the Trainer does not stop at once): say so instead."""
        import json

        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        step = int(state.get("global_step") or 0)
        if self.cfg.max_steps and self.cfg.max_steps > 0:
            target = self.cfg.max_steps
        elif state.get("num_train_epochs") == self.cfg.epochs and state.get("max_steps"):
            target = int(state["max_steps"])  # same epochs (and data): the same number of steps
        else:
            return
        if step >= target:
            raise RunExistsError(
                f"run '{self.cfg.run_name}' already reached step {step} of {target} "
                f"({checkpoint.name}); nothing to resume. To train further, pass --resume with a "
                f"larger --max-steps or --epochs; to start over, --overwrite"
            )

    def _check_fingerprint(self, checkpoint: Path) -> None:
        """Refuse to resume a checkpoint trained on other data or with other settings."""
        saved = read_fingerprint(checkpoint)
        if saved is None:
            log.warning("%s has no %s: cannot check its data", checkpoint.name, FINGERPRINT_FILE)
            return
        diff = fingerprint_differences(saved, self.fingerprint)
        if diff:
            raise RunExistsError(
                f"cannot resume run '{self.cfg.run_name}' from {checkpoint.name}: it was trained "
                f"on other data or settings: {'; '.join(diff)}. Resume with the same data and "
                f"settings, or start a new run (--run-name NEW, or --overwrite to replace it)"
            )

    def _device(self) -> str:
        from tutor.lm.resolve import pick_device

        try:
            device = pick_device(self.cfg.device)
        except ConfigError as e:  # it names lm.device; the key here is finetune.device
            fix = "--device cpu" + (" --no-qlora (plain LoRA)" if self.quantize_base else "")
            raise ConfigError(
                f"finetune.device={self.cfg.device} but CUDA is not available here; train on a "
                f"CUDA GPU, or on this CPU with {fix}"
            ) from e
        if device == "cuda" and self.world_size > 1:
            device = f"cuda:{self.local_rank}"
        return device

    def _compute_dtype(self, device: str) -> Any:
        import torch

        from tutor.lm.resolve import pick_dtype

        dtype = pick_dtype(self.cfg.dtype, device)
        if self.quantize_base and device.startswith("cuda") and dtype == torch.float32:
            dtype = torch.bfloat16  # as the resolver's 4-bit config does
        return dtype

    def _load_model(self, device: str) -> Any:
        from tutor.lm.resolve import load_causal_lm

        model, _ = load_causal_lm(
            self.base_model,
            models_dir=self.config.paths.models_dir,
            dtype=self.cfg.dtype,
            device=device,
            load_in_4bit=self.quantize_base,
            chat_template=self.config.lm.chat_template,
            training=True,
        )
        model.config.use_cache = False
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

        if self.quantize_base:
            # Casts norms/embeddings to fp32; checkpointing is switched on by the Trainer.
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        targets = self.cfg.target_modules
        lora = LoraConfig(
            r=self.cfg.lora_r,
            lora_alpha=self.cfg.lora_alpha,
            lora_dropout=self.cfg.lora_dropout,
            target_modules="all-linear" if targets == ["all-linear"] else list(targets),
            task_type="CAUSAL_LM",
        )
        try:
            model = get_peft_model(model, lora)
        except ValueError as e:
            raise ConfigError(f"finetune.target_modules={targets!r}: {e}") from e
        self.compute_dtype = self._compute_dtype(device)
        return model

    def setup(self) -> None:
        """Everything that can fail, before the first training step."""
        cfg = self.cfg
        self._t0 = time.perf_counter()
        self._check_run_dir()
        device = self._device()
        if self.quantize_base:
            check_4bit(device)
        train, val, self.stats = prepare_examples(cfg)
        self.fingerprint = fingerprint(cfg, self.stats.files + self.stats.eval_files)
        if self.resume_from:
            self._check_fingerprint(Path(self.resume_from))
        tokenizer = load_base_tokenizer(self.config)
        train_f, val_f = tokenize_splits(cfg, tokenizer, train, val, self.stats)
        if self.is_main:
            for line in self.stats.render().splitlines():
                log.info("%s", line)
        if cfg.eval_fraction > 0 or cfg.eval_data:
            if not val_f:
                log.warning("no validation example left; evaluation and early stopping are off")
        from transformers import set_seed

        set_seed(cfg.seed)  # LoRA's initial A matrices; the Trainer seeds the data order
        model = self._load_model(device)
        if self.is_main:
            n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
            n_all = sum(p.numel() for p in model.parameters())
            log.info(
                "%s %s on %s: %d trainable of %d parameters (%.2f%%)",
                "QLoRA" if self.quantize_base else "LoRA",
                self.base_model,
                device,
                n_train,
                n_all,
                100 * n_train / max(1, n_all),
            )
        self.device = device
        self.trainer = self._build_trainer(model, tokenizer, train_f, val_f, device)

    def _training_args(self, has_eval: bool, device: str, rows: int) -> Any:
        import torch
        from transformers import TrainingArguments

        cfg = self.cfg
        optim = cfg.optim
        if optim == "auto":
            on_cuda = device.startswith("cuda")
            optim = "paged_adamw_8bit" if self.quantize_base and on_cuda else "adamw_torch_fused"
        bf16 = self.compute_dtype == torch.bfloat16
        fp16 = self.compute_dtype == torch.float16
        progress = log.isEnabledFor(logging.INFO) and self.is_main
        every = eval_every(cfg, rows, self.world_size)
        if self.is_main and cfg.evals_per_epoch > 0:
            log.info("evaluating and checkpointing every %d steps", every)
        return TrainingArguments(
            output_dir=str(self.run_dir / "checkpoints"),
            per_device_train_batch_size=cfg.batch_size,
            per_device_eval_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.grad_accum,
            num_train_epochs=cfg.epochs,
            max_steps=cfg.max_steps,
            learning_rate=cfg.learning_rate,
            lr_scheduler_type=cfg.lr_scheduler,
            warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of all steps
            weight_decay=cfg.weight_decay,
            max_grad_norm=cfg.max_grad_norm,
            optim=optim,
            bf16=bf16,
            fp16=fp16,
            use_cpu=device == "cpu",
            eval_strategy="steps" if has_eval else "no",
            eval_steps=every,
            save_strategy="steps",
            save_steps=every,
            save_total_limit=2,  # the best and the last
            load_best_model_at_end=has_eval,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
            logging_steps=cfg.logging_steps,
            logging_first_step=True,
            seed=cfg.seed,
            data_seed=cfg.seed,
            activation_checkpointing=cfg.gradient_checkpointing,
            activation_checkpointing_kwargs={"use_reentrant": False},
            train_sampling_strategy=(
                "group_by_length" if cfg.group_by_length and not cfg.packing else "random"
            ),
            remove_unused_columns=False,
            prediction_loss_only=True,  # evaluation keeps the loss, not every logit
            report_to="none",
            disable_tqdm=not progress,
            ddp_find_unused_parameters=False,
            ddp_backend="gloo" if device == "cpu" and self.world_size > 1 else None,
            dataloader_num_workers=0,
        )

    def _build_trainer(
        self, model: Any, tokenizer: Any, train_f: list, val_f: list, device: str
    ) -> Any:
        from transformers import EarlyStoppingCallback

        from finetune.trainer import (
            EvaluateAtEnd,
            FinetuneTrainer,
            SaveFingerprint,
            StopOnSignal,
        )

        cfg = self.cfg
        has_eval = bool(val_f)
        self._stop = StopOnSignal()
        callbacks: list[Any] = [self._stop, EvaluateAtEnd(has_eval)]
        if self.is_main:
            callbacks.append(SaveFingerprint(self.fingerprint, self._progress))
        if has_eval and cfg.early_stopping_patience > 0:
            callbacks.append(
                EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)
            )
        if cfg.tensorboard and self.is_main:
            from torch.utils.tensorboard import SummaryWriter
            from transformers.integrations import TensorBoardCallback

            tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
            callbacks.append(TensorBoardCallback(tb_writer=tb))
        callbacks += self.extra_callbacks
        self.collator = Collator(tokenizer.pad_token_id)
        self.tokenizer = tokenizer
        return FinetuneTrainer(
            model=model,
            args=self._training_args(has_eval, device, len(train_f)),
            train_dataset=train_f,
            eval_dataset=val_f or None,
            data_collator=self.collator,
            processing_class=tokenizer,
            callbacks=callbacks,
        )

    # -- train ----------------------------------------------------------------------------------
    def train(self) -> RunResult:
        if self.trainer is None:
            raise RuntimeError("call setup() before train()")
        trainer, cfg = self.trainer, self.cfg
        if cfg.eval_before and trainer.eval_dataset is not None and not self.resume_from:
            self.eval_loss_before = float(trainer.evaluate()["eval_loss"])
            if self.is_main:
                log.info("eval loss before training: %.4f", self.eval_loss_before)
        elif self.resume_from:
            self.eval_loss_before = self._previous_eval_loss_before()
        if self.is_main:
            with self._saving("the run's configuration"):
                self.run_dir.mkdir(parents=True, exist_ok=True)
                write_atomic(self.run_dir / "config.toml", self.resolved_config().to_toml())
        self._stop.install()
        self._prior = read_progress(self.resume_from)
        self._segment_t0 = time.perf_counter()
        try:
            with self._saving("a training checkpoint"):
                output = trainer.train(resume_from_checkpoint=self.resume_from)
        finally:
            self._stop.uninstall()
        metrics = self._metrics(output, self._progress())
        interrupted = self._stop.stopped
        adapter_dir = None
        if self.is_main:
            from finetune.card import write_card

            with self._saving("the adapter and the run's files"):
                if not interrupted:
                    adapter_dir = self._save_adapter()
                write_atomic(self.run_dir / "metrics.json", _json(metrics))
                write_card(
                    self.run_dir,
                    config=self.resolved_config(),
                    stats=self.stats,
                    metrics=metrics,
                    quantize_base=self.quantize_base,
                )
        if interrupted:
            last = trainer.state.global_step
            raise TrainingInterrupted(
                f"stopped at step {last}; a checkpoint was saved in {self.run_dir / 'checkpoints'}"
                f". Resume with: tutor finetune train --config ... --run-name {cfg.run_name} --resume"
            )
        return RunResult(self.run_dir, adapter_dir, metrics, self.stats)

    def _previous_eval_loss_before(self) -> float | None:
        """The "before" loss the interrupted run measured (kept in its metrics.json)."""
        import json

        try:
            value = json.loads((self.run_dir / "metrics.json").read_text(encoding="utf-8"))
            return float(value["eval_loss_before"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @contextlib.contextmanager
    def _saving(self, what: str) -> Iterator[None]:
        """A write that finds the disk (or the file-size limit) full raises ``DiskFullError``
        (one line: what is kept, what to do); a checkpoint it cut short is removed."""
        try:
            yield
        except Exception as e:
            if not no_space(e, self.run_dir):
                raise
            _close_progress_bars(self.trainer)  # the error line comes last, not under a bar
            if self.is_main:
                remove_incomplete_checkpoints(self.run_dir / "checkpoints")
            raise DiskFullError(disk_full_message(self.run_dir, self.cfg.run_name, what)) from e

    def resolved_config(self) -> Config:
        ft = dataclasses.replace(self.cfg, base_model=self.base_model, qlora=self.quantize_base)
        return dataclasses.replace(self.config, finetune=ft)

    def _progress(self) -> dict[str, float]:
        """The whole run's training time and tokens so far, earlier segments included (the
        resumed checkpoint's ``progress.json``); evaluation batches are not counted."""
        tokens = getattr(self.trainer, "train_tokens", 0) * self.world_size
        return {
            "train_seconds": self._prior["train_seconds"] + time.perf_counter() - self._segment_t0,
            "train_tokens": self._prior["train_tokens"] + tokens,
        }

    def _metrics(self, output: Any, progress: dict[str, float]) -> dict[str, Any]:
        state = self.trainer.state
        evals = [h for h in state.log_history if "eval_loss" in h]
        train_seconds, tokens = progress["train_seconds"], int(progress["train_tokens"])
        if self._stop.stopped:
            stop_reason = "interrupted"
        elif any(getattr(cb, "fired", False) for cb in self.extra_callbacks):
            stop_reason = "time_budget"
        elif state.max_steps and state.global_step < state.max_steps:
            stop_reason = "early_stopping"
        else:
            stop_reason = "max_steps"
        return {
            "status": "interrupted" if self._stop.stopped else "completed",
            "stop_reason": stop_reason,
            "base_model": self.base_model,
            "method": "qlora" if self.quantize_base else "lora",
            "device": self.device,
            "compute_dtype": str(self.compute_dtype).replace("torch.", ""),
            "world_size": self.world_size,
            "global_step": state.global_step,
            "max_steps": state.max_steps,
            "epoch": state.epoch,
            "stopped_early": stop_reason == "early_stopping",
            "resumed_from": self.resume_from,
            "train_loss": run_train_loss(state.log_history, output.training_loss),
            "eval_loss_before": self.eval_loss_before,
            "final_eval_loss": evals[-1]["eval_loss"] if evals else None,
            "best_eval_loss": state.best_metric,
            "best_step": checkpoint_step(state.best_model_checkpoint),
            "best_checkpoint": state.best_model_checkpoint,
            "train_seconds": round(train_seconds, 2),
            "total_seconds": round(time.perf_counter() - self._t0, 2),
            "train_tokens_seen": tokens,
            "tokens_per_second": round(tokens / train_seconds, 1) if train_seconds else None,
            "peak_memory_mb": round(peak_memory_mb(self.device), 1),
            "log_history": state.log_history,
        }

    def _save_adapter(self) -> Path:
        """The (best, when evaluated) adapter + tokenizer, written atomically."""
        target = self.run_dir / "adapter"
        with atomic_dir(target) as tmp:
            self.trainer.model.save_pretrained(str(tmp), safe_serialization=True)
            self.tokenizer.save_pretrained(str(tmp))
        log.info("adapter saved to %s", target)
        return target

    # -- cleanup --------------------------------------------------------------------------------
    def cleanup(self) -> None:
        if self._stop is not None:
            self._stop.uninstall()
        self.trainer = None
        import gc

        gc.collect()


def _close_progress_bars(trainer: Any) -> None:
    """Close the Trainer's tqdm bars left open by an exception (it closes them only at the end)."""
    for cb in getattr(getattr(trainer, "callback_handler", None), "callbacks", []):
        for name in ("prediction_bar", "training_bar"):
            bar = getattr(cb, name, None)
            if bar is not None and hasattr(bar, "close"):
                bar.close()
                setattr(cb, name, None)


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, default=str) + "\n"


lora_recipe = partial(LoRARecipe, quantize_base=False)
qlora_recipe = partial(LoRARecipe, quantize_base=True)


def run_finetune(config: Config, *, callbacks: Sequence[Any] = ()) -> RunResult:
    """Fine-tune as ``config.finetune`` says: LoRA, or QLoRA when ``finetune.qlora``."""
    recipe = (qlora_recipe if config.finetune.qlora else lora_recipe)(config, callbacks=callbacks)
    try:
        recipe.setup()
        return recipe.train()
    finally:
        recipe.cleanup()
