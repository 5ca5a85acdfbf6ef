"""Run-directory safety: which Trainer checkpoints are complete, and a disk that fills up.

The Trainer writes a checkpoint in place (weights, optimizer, scheduler, RNG, then
``trainer_state.json`` last), so a process killed or a disk filled while saving leaves a
``checkpoint-N`` without a readable ``trainer_state.json``: resuming must skip it.
``no_space`` recognises the many ways a full disk (or a file-size limit) is reported, and
``disk_full_message`` says in one line what is kept and what to do.
"""

from __future__ import annotations

import errno
import json
import resource
import shutil
from pathlib import Path
from typing import Any


def checkpoint_complete(path: Path) -> bool:
    """Whether a Trainer checkpoint directory was written to the end."""
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "global_step" in state


def last_complete_checkpoint(ckpt_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step in ``ckpt_dir`` (None when there is none)."""
    found = []
    for p in ckpt_dir.glob("checkpoint-*") if ckpt_dir.is_dir() else ():
        step = checkpoint_step(str(p))
        if p.is_dir() and step is not None and checkpoint_complete(p):
            found.append((step, p))
    return max(found)[1] if found else None


def remove_incomplete_checkpoints(ckpt_dir: Path) -> list[str]:
    """Delete checkpoint directories that were not written to the end; returns their names."""
    removed = []
    for p in sorted(ckpt_dir.glob("checkpoint-*")) if ckpt_dir.is_dir() else ():
        if p.is_dir() and not checkpoint_complete(p):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
    return removed


_NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
# how safetensors (Rust) and torch.save report a write that found no room
_NO_SPACE_TEXT = ("no space left on device", "file too large", "disk quota exceeded")
_TORCH_WRITE_FAILED = ("file write failed", "unexpected pos", "inline_container")


def no_space(e: BaseException, directory: Path) -> bool:
    """Whether ``e`` (or an error it wraps) says the disk or the file-size limit ran out.

    torch.save reports a short write without the errno ("unexpected pos ..."): that counts when
    a file-size limit is set or ``directory``'s disk is nearly full.
    """
    seen: set[int] = set()
    err: BaseException | None = e
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        msg = str(err).lower()
        if isinstance(err, OSError) and err.errno in _NO_SPACE_ERRNOS:
            return True
        if any(t in msg for t in _NO_SPACE_TEXT):
            return True
        if any(t in msg for t in _TORCH_WRITE_FAILED):
            soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            try:
                nearly_full = shutil.disk_usage(directory).free < 64 * 2**20
            except OSError:
                nearly_full = False
            return soft != resource.RLIM_INFINITY or nearly_full
        err = err.__cause__ or err.__context__
    return False


def disk_full_message(run_dir: Path, run_name: str, what: str) -> str:
    """One line: what could not be saved, what is kept, what to do."""
    try:
        free = f"{shutil.disk_usage(run_dir).free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    last = last_complete_checkpoint(run_dir / "checkpoints")
    kept = (
        f"the last complete checkpoint, {last.name}, is kept"
        if last is not None
        else "no checkpoint was completed yet"
    )
    again = "--resume" if last is not None else "--overwrite"
    return (
        f"no room left to save {what} in {run_dir} ({free}, or the file-size limit was "
        f"reached): training stopped and {kept}. Free some disk space (or set TUTOR_HOME to a "
        f"bigger disk) and run again with --run-name {run_name} {again}"
    )


def checkpoint_step(checkpoint: str | None) -> int | None:
    """The step number of a ``checkpoint-N`` path (None when there is none)."""
    if not checkpoint:
        return None
    try:
        return int(Path(checkpoint).name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None


# -- what a checkpoint was trained on ------------------------------------------------------------
FINGERPRINT_FILE = "fingerprint.json"
# settings that change what a resumed run would compute (epochs / max_steps may grow on resume)
FINGERPRINT_KEYS = (
    "base_model",
    "qlora",
    "data_format",
    "qa_mode",
    "telling_turns",
    "skip_invalid",
    "max_examples",
    "eval_fraction",
    "max_length",
    "packing",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "learning_rate",
    "lr_scheduler",
    "batch_size",
    "grad_accum",
    "warmup_ratio",
    "weight_decay",
    "seed",
)


def fingerprint(cfg: Any, files: list[Any]) -> dict[str, Any]:
    """The data files' hashes and the training-relevant config of a run."""
    return {
        "data": {f"{f.path}": f.sha256 for f in files},
        "config": {k: getattr(cfg, k) for k in FINGERPRINT_KEYS},
    }


def fingerprint_differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between a checkpoint's fingerprint and this run's, one phrase each."""
    out = []
    old_data, new_data = saved.get("data", {}), now["data"]
    for path in sorted(set(old_data) | set(new_data)):
        a, b = old_data.get(path), new_data.get(path)
        if a is None:
            out.append(f"data file {path} was not in the checkpoint's data")
        elif b is None:
            out.append(f"data file {path} is no longer in the data")
        elif a != b:
            out.append(f"data file {path} changed (sha256 {a[:12]}… now {b[:12]}…)")
    old_cfg = saved.get("config", {})
    for key, value in now["config"].items():
        if key in old_cfg and old_cfg[key] != value:
            out.append(f"finetune.{key} was {old_cfg[key]!r}, now {value!r}")
    return out


def read_fingerprint(checkpoint: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((checkpoint / FINGERPRINT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_progress(checkpoint: str | None) -> dict[str, float]:
    """The training time and tokens a checkpoint's run had used (0 for a fresh run)."""
    try:
        path = Path(checkpoint or "") / "progress.json"
        saved = json.loads(path.read_text(encoding="utf-8")) if checkpoint else {}
        return {k: float(saved.get(k, 0.0)) for k in ("train_seconds", "train_tokens")}
    except (OSError, ValueError, AttributeError, TypeError):
        return {"train_seconds": 0.0, "train_tokens": 0.0}


def run_train_loss(log_history: list[dict[str, Any]], fallback: float) -> float:
    """The mean training loss over every step of the run, resumed segments included: the logged
    losses (each the mean since the previous log), weighted by the steps they cover."""
    total = steps = 0.0
    last = 0
    for h in log_history:
        if "loss" in h and "step" in h and h["step"] > last:
            total += float(h["loss"]) * (h["step"] - last)
            steps += h["step"] - last
            last = h["step"]
    return total / steps if steps else fallback
