"""Training the move classifier: setup -> train -> calibrate.

The training problems are split again by problem into fit and validation parts; each epoch is
scored on validation (macro-F1) and the best epoch's weights are kept (early stopping with
``patience``). A temperature is then fitted on the validation logits (grid search on the
negative log-likelihood), so that the shipped probabilities are calibrated. Class weights
(inverse square root of frequency) keep the rarer moves from being drowned by "focus".
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tutor.judge.data import MoveExample, check_classes, source_of, split_by_problem
from tutor.judge.model import JudgeSpec, MoveClassifier

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    epochs: int = 8
    batch_size: int = 16
    lr: float = 2e-3  # adapter / top layers
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    validation: float = 0.15  # share of the training problems used to pick the epoch
    patience: int = 2
    seed: int = 0
    threads: int = 2


def macro_f1(gold: Sequence[int], pred: Sequence[int], n: int) -> float:
    scores = []
    for c in range(n):
        tp = sum(g == c and p == c for g, p in zip(gold, pred, strict=True))
        fp = sum(g != c and p == c for g, p in zip(gold, pred, strict=True))
        fn = sum(g == c and p != c for g, p in zip(gold, pred, strict=True))
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return float(sum(scores) / len(scores)) if scores else 0.0


def fit_temperature(logits: Any, gold: Sequence[int]) -> float:
    """The temperature in [0.5, 4] that minimises the NLL of ``logits`` (a grid, no gradients)."""
    import torch

    y = torch.tensor(list(gold))
    best, best_t = math.inf, 1.0
    for t in np.arange(0.5, 4.01, 0.05):
        nll = float(torch.nn.functional.cross_entropy(logits / float(t), y))
        if nll < best:
            best, best_t = nll, float(t)
    return round(best_t, 2)


def _optimizer(model: MoveClassifier, opts: TrainOptions) -> Any:
    import torch

    head: list[Any] = []
    body: list[Any] = []
    for name, p in model.net.named_parameters():
        if p.requires_grad:
            (head if name.startswith("head.") else body).append(p)
    groups = [{"params": head, "lr": opts.head_lr}, {"params": body, "lr": opts.lr}]
    return torch.optim.AdamW(groups, weight_decay=opts.weight_decay)


def _class_weights(labels: Sequence[str], train: Sequence[MoveExample]) -> Any:
    import torch

    counts = Counter(e.label for e in train)
    w = torch.tensor([1.0 / math.sqrt(counts[lab]) for lab in labels])
    return w / w.mean()


def _batches(cached: Sequence[Any], size: int, rng: np.random.Generator) -> list[list[int]]:
    """Batches of similar length (little padding), in random order; members shuffled by a
    random tie-break so batches differ between epochs."""
    noise = rng.random(len(cached))
    order = sorted(range(len(cached)), key=lambda i: (int(cached[i][0].shape[0]) // 8, noise[i]))
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _epoch(
    model: MoveClassifier,
    fit: Sequence[MoveExample],
    cached: Sequence[Any],
    opts: TrainOptions,
    optim: Any,
    sched: Any,
    loss_fn: Any,
    rng: np.random.Generator,
    progress: Any,
) -> float:
    import torch

    index = {lab: i for i, lab in enumerate(model.spec.labels)}
    model.net.train()
    total = 0.0
    for rows in _batches(cached, opts.batch_size, rng):
        y = torch.tensor([index[fit[j].label] for j in rows])
        loss = loss_fn(model.top_logits([cached[j] for j in rows]), y)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.net.parameters() if p.requires_grad], 1.0)
        optim.step()
        sched.step()
        total += loss.item() * len(rows)
        progress.update(len(rows))
        progress.set_postfix(loss=f"{loss.item():.3f}")
    return total / max(1, len(fit))


def _val_logits(model: MoveClassifier, cached: Sequence[Any], batch_size: int = 64) -> Any:
    import torch

    model.net.eval()
    with torch.inference_mode():
        parts = [
            model.top_logits(cached[i : i + batch_size]) for i in range(0, len(cached), batch_size)
        ]
    return torch.cat(parts)


def train(
    examples: Sequence[MoveExample],
    spec: JudgeSpec | None = None,
    opts: TrainOptions | None = None,
    directory: Any = None,
    show_progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> MoveClassifier:
    """A classifier trained on ``examples`` (all of them training data: hold out first)."""
    import torch
    from tqdm.auto import tqdm

    spec, opts = spec or JudgeSpec(), opts or TrainOptions()
    load_before = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    check_classes(examples, f"the training split of {source_of(examples)}", spec.labels)
    torch.set_num_threads(max(1, opts.threads))
    torch.manual_seed(opts.seed)
    fit, val = split_by_problem(examples, opts.validation, opts.seed + 1)
    check_classes(fit, f"the fit part of {source_of(examples)}", spec.labels)
    check_classes(val, f"the validation part of {source_of(examples)}", spec.labels)
    model = MoveClassifier(spec, directory)
    optim = _optimizer(model, opts)
    steps = opts.epochs * math.ceil(len(fit) / opts.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps)
    )
    loss_fn = torch.nn.CrossEntropyLoss(weight=_class_weights(spec.labels, fit))
    rng = np.random.default_rng(opts.seed)
    index = {lab: i for i, lab in enumerate(spec.labels)}
    gold_val = [index[e.label] for e in val]
    fit_cache, val_cache = model.cache(fit), model.cache(val)  # the frozen bottom, once
    log.info("cached the frozen bottom of %d + %d turns", len(fit), len(val))
    best: tuple[float, int, dict[str, Any]] = (-1.0, 0, model.trainable_state())
    history, t0 = [], time.perf_counter()
    for epoch in range(1, opts.epochs + 1):
        with tqdm(
            total=len(fit), desc=f"epoch {epoch}/{opts.epochs}", disable=not show_progress
        ) as bar:
            loss = _epoch(model, fit, fit_cache, opts, optim, sched, loss_fn, rng, bar)
        pred = _val_logits(model, val_cache).argmax(-1).tolist()
        f1 = macro_f1(gold_val, pred, len(spec.labels))
        row = {"epoch": epoch, "train_loss": round(loss, 4), "val_macro_f1": round(f1, 4)}
        row["seconds"] = round(time.perf_counter() - t0, 1)
        history.append(row)
        log.info("epoch %d: train loss %.3f, validation macro-F1 %.3f", epoch, loss, f1)
        if on_epoch:
            on_epoch(row)
        if f1 > best[0]:
            best = (f1, epoch, model.trainable_state())
        elif epoch - best[1] >= opts.patience:
            break
    model.net.load_state_dict(best[2], strict=False)
    spec.temperature = fit_temperature(_val_logits(model, val_cache), gold_val)
    model.record = {
        "seconds": round(time.perf_counter() - t0, 1),
        "best_epoch": best[1],
        "val_macro_f1": round(best[0], 4),
        "history": history,
        "examples": {"fit": len(fit), "validation": len(val)},
        "problems": {"fit": len({e.group for e in fit}), "validation": len({e.group for e in val})},
        "options": dict(vars(opts)),
        "load_before": load_before,
        "trained_params": sum(p.numel() for p in model.net.parameters() if p.requires_grad),
    }
    return model
