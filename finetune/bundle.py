"""Pack a fine-tune run's adapter for shipping: ``python -m finetune.bundle RUN_DIR [--out DIR]``.

Writes ``DIR`` (default: the shipped tutoring LoRA, ``tutor/lm/weights/tutoring_lora``) with:

- ``adapter_config.json`` and ``adapter_model.safetensors``: the run's peft adapter, its A/B
  matrices stored in bf16 (half the size of the float32 training copy; the CPU serving path
  rounds them to int8 rows anyway, ``tutor.lm.lora``);
- ``card.json`` / ``card.md``: the run's training card;
- ``bundle.json``: where it came from (run, sha256 of the source tensors, the largest rounding
  error the bf16 copy introduced).

The hand-written ``README.md`` and ``LICENSE.md`` in ``DIR`` (data licences, figures) are kept.
The directory is replaced in one step: a failure leaves the old one in place.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from knowledge_base.atomic import atomic_dir
from tutor.errors import InputError
from tutor.lm.bundled_lora import TUTORING_LORA

KEEP = ("README.md", "LICENSE.md")  # written by hand beside the weights; kept across bundles


def _check_run(run_dir: Path) -> Path:
    adapter = run_dir / "adapter"
    for need in (adapter / "adapter_config.json", adapter / "adapter_model.safetensors"):
        if not need.is_file():
            raise InputError(
                f"{run_dir}: no {need.relative_to(run_dir)}; pass a finished run directory "
                "(.tutor/runs/<name>) of `tutor finetune train` or `tutor finetune dpo`"
            )
    return adapter


def bundle_adapter(run_dir: str | Path, out: str | Path = TUTORING_LORA) -> dict[str, Any]:
    """Write the shippable copy of ``run_dir``'s adapter to ``out``; returns ``bundle.json``."""
    import torch
    from safetensors.torch import load_file, save_file

    run, target = Path(run_dir), Path(out)
    adapter = _check_run(run)
    source = adapter / "adapter_model.safetensors"
    tensors = load_file(str(source))
    if not tensors:
        raise InputError(f"{source} holds no tensors")
    packed = {k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()}
    worst = max(
        float((packed[k].float() - v.float()).abs().max() / v.float().abs().max().clamp(min=1e-12))
        for k, v in tensors.items()
    )
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    card_file = run / "card.json"
    card = json.loads(card_file.read_text(encoding="utf-8")) if card_file.is_file() else {}
    if card.get("base_model"):
        config["base_model_name_or_path"] = card["base_model"]
    info = {
        "run": run.name,
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "tensors": len(packed),
        "parameters": sum(v.numel() for v in packed.values()),
        "dtype": "bfloat16",
        "max_relative_rounding": round(worst, 5),
        "base_model": config.get("base_model_name_or_path"),
    }
    with atomic_dir(target) as tmp:
        save_file(packed, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
        for name in ("card.json", "card.md"):  # the run's own paths made relative to it
            if (run / name).is_file():
                text = (run / name).read_text(encoding="utf-8")
                (tmp / name).write_text(text.replace(str(run.resolve()), run.name))
        for name in KEEP:
            if (target / name).is_file():
                shutil.copyfile(target / name, tmp / name)
        (tmp / "bundle.json").write_text(json.dumps(info, indent=2) + "\n")
        tmp.chmod(0o755)  # shipped files: readable by everyone who runs the tutor
        for f in tmp.iterdir():
            f.chmod(0o644)
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m finetune.bundle", description=__doc__.split("\n")[0]
    )
    p.add_argument("run", type=Path, help="a fine-tune run directory (.tutor/runs/<name>)")
    p.add_argument("--out", type=Path, default=TUTORING_LORA, help=f"default {TUTORING_LORA}")
    args = p.parse_args(argv)
    try:
        info = bundle_adapter(args.run, args.out)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = (args.out / "adapter_model.safetensors").stat().st_size / 1e6
    print(
        f"{args.out}: {info['tensors']} tensors, {info['parameters']:,} parameters, {size:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
