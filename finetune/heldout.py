"""The held-out records of a fine-tune run: the source lines whose problems its split kept for
validation, so base and adapter can be compared on dialogues the adapter never learned from.

``--exclude-run`` leaves out every problem in a run's data files, and records without a
``problem`` (BRIDGE, CIMA) cannot be matched by problem at all. The run's own split (by problem,
seeded: ``finetune.data.split_by_problem``) is the held-out set there is: this rebuilds it from
the run's ``config.toml`` and writes the original records of the validation side, one JSON line
each, in their files' order.

    python -m finetune.heldout .tutor/runs/my-run /tmp/heldout.jsonl
    tutor eval pedagogy --data /tmp/heldout.jsonl --adapter .tutor/runs/my-run/adapter ...

Validation problems were not trained on, but their loss was watched during training (and with
early stopping picked the checkpoint), so they are held out from the weights, not from every
choice. The output is derived from the run's data; keep it out of the repository when that data
is not the project's own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from tutor.errors import InputError


def run_split(run_dir: Path) -> tuple[Any, list[Any], list[Any]]:
    """(the run's ``finetune`` config, its train examples, its validation examples), rebuilt
    from ``run_dir/config.toml`` as the run split them."""
    from finetune.data import prepare_examples
    from tutor.config import load_config

    cfg_file = run_dir / "config.toml"
    if not cfg_file.is_file():
        raise InputError(f"{run_dir} is not a fine-tune run (no config.toml); pass runs/<name>")
    values = tomllib.loads(cfg_file.read_text(encoding="utf-8"))
    if values.get("finetune", {}).get("eval_data"):
        raise InputError(
            f"{cfg_file}: this run was validated on its own eval_data files: evaluate on those"
        )
    cfg = load_config(env={}, file_values={"finetune": values["finetune"]})
    train, val, _ = prepare_examples(cfg.finetune)
    return cfg.finetune, train, val


def heldout_records(run_dir: Path) -> list[str]:
    """The validation side's source lines (raw JSON text) of the run in ``run_dir``."""
    ft, _, val = run_split(run_dir)
    wanted: dict[str, set[int]] = {}
    for ex in val:
        file, _, line = ex.source.rpartition(":")
        wanted.setdefault(file, set()).add(int(line))
    out: list[str] = []
    for file in ft.data:
        lines = wanted.get(str(file)) or wanted.get(str(Path(file)))
        if not lines:
            continue
        with open(file, encoding="utf-8") as f:
            out += [text.rstrip("\n") for n, text in enumerate(f, 1) if n in lines]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="the fine-tune run directory (runs/<name>)")
    ap.add_argument("out", type=Path, help="where to write the held-out records (JSONL)")
    args = ap.parse_args(argv)
    try:
        records = heldout_records(args.run)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not records:
        print("no held-out records found", file=sys.stderr)
        return 1
    args.out.write_text("\n".join(records) + "\n", encoding="utf-8")
    kinds: dict[str, int] = {}
    for r in records:
        src = str(json.loads(r).get("source", "?"))
        kinds[src] = kinds.get(src, 0) + 1
    print(f"{len(records)} held-out records -> {args.out} ({kinds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
