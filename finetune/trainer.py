"""The transformers ``Trainer`` as the recipe uses it, plus its callbacks.

``FinetuneTrainer`` changes one thing: the loss. Only assistant tokens carry labels (about a
quarter of a tutoring dialogue), so the LM head, a ``hidden x vocab`` matmul whose output is the
biggest activation of a small model (49k-token vocabulary), is computed for the labelled
positions only, inside the model's own forward (a pre-hook on the output embedding, so DDP,
autocast and checkpointing see an ordinary forward). The loss is the same cross-entropy over the
same tokens, normalised like the stock Trainer: by the number of labelled tokens in the whole
accumulated batch when the Trainer provides it, else per batch.

Imported lazily by the recipe (it imports transformers).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainerCallback

from finetune.tokens import IGNORE_INDEX

log = logging.getLogger(__name__)


class FinetuneTrainer(Trainer):
    """``Trainer`` whose loss runs the LM head on labelled positions only."""

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        labels = inputs.pop("labels")
        n_real = inputs.pop("num_real_tokens", None)
        if model.training and n_real is not None:
            self.train_tokens = getattr(self, "train_tokens", 0) + int(n_real)
        targets = labels[:, 1:]
        keep = targets != IGNORE_INDEX
        # position t predicts token t+1: select positions whose next token is labelled
        select = F.pad(keep, (0, 1), value=False)
        head = self.accelerator.unwrap_model(model).get_output_embeddings()
        handle = head.register_forward_pre_hook(
            lambda module, args: (args[0][select].unsqueeze(0), *args[1:])
        )
        try:
            outputs = model(**inputs)
        finally:
            handle.remove()
        logits = outputs.logits
        n_selected = int(select.sum())
        if logits.shape[:2] != (1, n_selected):  # a model whose head ignores the hook
            logits = logits[:, :-1][keep].unsqueeze(0)
        loss = F.cross_entropy(
            logits[0].float(), targets[keep], reduction="sum"
        )  # same tokens as the stock loss
        if num_items_in_batch is not None and model.training:
            loss = loss / num_items_in_batch
            if self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients
            self.loss_is_scaled_for_ga = True
        else:
            if not model.training:  # evaluation: the loss is the mean over all its tokens
                self._eval_sum = getattr(self, "_eval_sum", 0.0) + float(loss.detach())
                self._eval_tokens = getattr(self, "_eval_tokens", 0) + n_selected
            loss = loss / max(1, n_selected)
            self.loss_is_scaled_for_ga = False
        return (loss, outputs) if return_outputs else loss

    def evaluation_loop(self, *args: Any, **kwargs: Any) -> Any:
        """The stock loop averages per-batch means; report the token-weighted mean instead."""
        self._eval_sum, self._eval_tokens = 0.0, 0
        out = super().evaluation_loop(*args, **kwargs)
        totals = torch.tensor([self._eval_sum, float(self._eval_tokens)], device=self.args.device)
        if self.accelerator.num_processes > 1:
            totals = self.accelerator.reduce(totals, reduction="sum")
        prefix = kwargs.get("metric_key_prefix", "eval")
        if totals[1] > 0 and out.metrics is not None and f"{prefix}_loss" in out.metrics:
            out.metrics[f"{prefix}_loss"] = float(totals[0] / totals[1])
        return out


class StopOnSignal(TrainerCallback):
    """First Ctrl-C: finish the current step, save a checkpoint, stop. Second: abort now."""

    def __init__(self) -> None:
        self.requested = False
        self.stopped = False
        self._previous: Any = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            self.uninstall()
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stopping after this step and saving a checkpoint (Ctrl-C again aborts now)")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        requested = self.requested
        if args.world_size > 1:  # every rank must stop at the same step
            import torch.distributed as dist

            flag = torch.tensor([int(requested)], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            requested = bool(flag.item())
        if requested:
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        return control


class EvaluateAtEnd(TrainerCallback):
    """Evaluate and checkpoint the last step too, so the final loss is always measured."""

    def __init__(self, has_eval: bool) -> None:
        self.has_eval = has_eval

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_save = True
            control.should_evaluate = self.has_eval
        if control.should_save or control.should_training_stop:
            control.should_log = True  # every step's loss is in the log (the card's train loss)
        return control


class TimeBudget(TrainerCallback):
    """Stop (evaluating and checkpointing first) once training has run ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._start = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        import time

        self._start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        import time

        if not control.should_training_stop and time.perf_counter() - self._start > self.seconds:
            self.fired = True
            control.should_training_stop = True
            control.should_save = True
            control.should_log = True
            control.should_evaluate = args.eval_strategy != "no"
        return control


class SaveFingerprint(TrainerCallback):
    """Writes what the run trains on (data hashes, settings) into every checkpoint, so a resume
    with other data or settings is refused (``finetune.checkpoints.fingerprint``)."""

    def __init__(self, fingerprint: dict[str, Any], progress: Any = None) -> None:
        self.fingerprint = fingerprint
        self.progress = progress  # () -> the run's totals so far (time, tokens), kept beside it

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        import json
        from pathlib import Path

        from finetune.checkpoints import FINGERPRINT_FILE

        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if ckpt.is_dir():
            text = json.dumps(self.fingerprint, indent=2, default=str) + "\n"
            (ckpt / FINGERPRINT_FILE).write_text(text, encoding="utf-8")
            if self.progress is not None:
                text = json.dumps(self.progress(), indent=2) + "\n"
                (ckpt / "progress.json").write_text(text, encoding="utf-8")
        return control
