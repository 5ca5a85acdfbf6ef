"""Merge a LoRA adapter into its base model: a plain 16-bit model directory (safetensors,
tokenizer, chat template) that any transformers / vLLM / llama.cpp converter loads without peft.

Merging into a 4-bit base is refused: the result would be re-quantized weights that no longer
match what the adapter learned. An adapter trained with QLoRA is merged into the 16-bit base
with a loud warning, since it was trained against the NF4-rounded weights.
"""

from __future__ import annotations

import json
import logging
import tomllib
from pathlib import Path
from typing import Any

from finetune.errors import RunExistsError
from knowledge_base.atomic import atomic_dir
from tutor.errors import ConfigError, ModelNotFoundError

log = logging.getLogger(__name__)

MERGE_DTYPES = ("bfloat16", "float16", "float32")


def _run_config(adapter_dir: Path) -> dict[str, Any]:
    path = adapter_dir.parent / "config.toml"
    if path.is_file():
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError:
            return {}
    return {}


def base_model_of(adapter_dir: Path) -> str:
    """The base a run was trained on: its resolved config, else the adapter's own record."""
    ft = _run_config(adapter_dir).get("finetune", {})
    if ft.get("base_model"):
        return str(ft["base_model"])
    try:
        meta = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        meta = {}
    if meta.get("base_model_name_or_path"):
        return str(meta["base_model_name_or_path"])
    raise ConfigError(f"cannot tell the base model of {adapter_dir}; pass --model")


def _is_4bit_dir(spec: str) -> bool:
    cfg = Path(spec).expanduser() / "config.json"
    if not cfg.is_file():
        return False
    q = json.loads(cfg.read_text(encoding="utf-8")).get("quantization_config") or {}
    return bool(
        q.get("load_in_4bit") or q.get("quant_method") in ("bitsandbytes_4bit", "gptq", "awq")
    )


def check_adapter(adapter: Path) -> None:
    """Raise unless ``adapter`` is a peft adapter directory."""
    if not (adapter / "adapter_config.json").is_file():
        raise ModelNotFoundError(
            f"{adapter} is not a LoRA adapter directory (no adapter_config.json); pass a run's "
            f"'adapter' folder, e.g. .tutor/runs/<name>/adapter"
        )


def check_not_4bit(base: str, load_in_4bit: bool) -> None:
    if load_in_4bit or _is_4bit_dir(base):
        raise ConfigError(
            f"refusing to merge into a 4-bit base ({base}): merged weights would be re-quantized "
            f"and lose what the adapter learned. Merge into the 16-bit base (drop --load-in-4bit "
            f"/ point --model at the unquantized model), or serve the adapter with --adapter"
        )


def _warn_qlora(adapter: Path) -> None:
    if _run_config(adapter).get("finetune", {}).get("qlora"):
        log.warning(
            "\n"
            "  !! This adapter was trained with QLoRA against a 4-bit (NF4) base.\n"
            "  !! It is merged into the 16-bit base weights, which differ from the NF4-rounded\n"
            "  !! weights it learned on: answers can differ slightly from serving\n"
            "  !! `--load-in-4bit --adapter %s`. Evaluate the merged model before shipping it.",
            adapter,
        )


def load_merged(
    adapter: Path,
    base: str,
    *,
    models_dir: Path | None = None,
    dtype: str = "float32",
    chat_template: str = "",
    check_model: Any = None,
) -> tuple[Any, Any]:
    """``(base + adapter merged by peft, tokenizer)``; the adapter's own tokenizer wins.
    ``check_model(model)`` runs on the loaded base before the adapter is applied."""
    from peft import PeftModel

    from tutor.lm.resolve import load_causal_lm

    _warn_qlora(adapter)
    model, tokenizer = load_causal_lm(
        base, models_dir=models_dir, dtype=dtype, device="cpu", chat_template=chat_template
    )
    if check_model is not None:
        check_model(model)
    model = PeftModel.from_pretrained(model, str(adapter))
    merged = model.merge_and_unload()
    if (adapter / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(adapter))
        if not tokenizer.chat_template and chat_template:
            from tutor.lm.resolve import resolve_chat_template

            tokenizer.chat_template = resolve_chat_template(chat_template)
    return merged, tokenizer


def merge_adapter(
    adapter_dir: str | Path,
    out_dir: str | Path,
    *,
    base_model: str = "",
    models_dir: Path | None = None,
    dtype: str = "bfloat16",
    load_in_4bit: bool = False,
    chat_template: str = "",
    overwrite: bool = False,
) -> Path:
    """Write ``base + adapter`` as one model directory at ``out_dir`` (atomically)."""
    adapter = Path(adapter_dir).expanduser()
    out = Path(out_dir).expanduser()
    check_adapter(adapter)
    if dtype not in MERGE_DTYPES:
        raise ConfigError(f"merge dtype must be one of {', '.join(MERGE_DTYPES)}, got {dtype!r}")
    base = base_model or base_model_of(adapter)
    check_not_4bit(base, load_in_4bit)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RunExistsError(f"{out} already exists; pass --overwrite or another --out")
    merged, tokenizer = load_merged(
        adapter, base, models_dir=models_dir, dtype=dtype, chat_template=chat_template
    )
    with atomic_dir(out) as tmp:
        merged.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        info = {"base_model": base, "adapter": str(adapter.resolve()), "dtype": dtype}
        (tmp / "merge_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    log.info("merged model written to %s (%s)", out, dtype)
    return out
