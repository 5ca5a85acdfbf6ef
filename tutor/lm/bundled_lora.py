"""The tutoring LoRA that ships with the bundled model, and what ``lm.adapter`` means.

``lm.adapter`` is one of:

- ``auto`` (the default): the shipped tutoring adapter (``weights/tutoring_lora``, trained by
  ``tutor finetune train`` on the shared tutoring dialogues and the project's template
  dialogues; its card and licence sit beside it) when ``lm.model`` is the bundled
  SmolLM2-135M-Instruct on the hf backend. Any other model runs alone: the adapter was trained
  on the bundled one. llama.cpp runs alone too: it needs a GGUF LoRA (``tutor finetune export
  --gguf --lora``), which is not shipped.
- ``none``: the base model alone.
- ``tutoring``: the shipped adapter by name (on the bundled model).
- a path: a peft LoRA directory (hf) or a GGUF LoRA file (llamacpp).

``served_adapter`` turns the setting into the path to load ("" for none); every loader calls it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tutor.errors import ConfigError

BUNDLED_MODEL = "smollm2-135m-instruct"  # the alias the shipped adapter was trained on
TUTORING_LORA = Path(__file__).resolve().parent / "weights" / "tutoring_lora"


def shipped() -> bool:
    """Whether the tutoring adapter is in this installation."""
    return (TUTORING_LORA / "adapter_config.json").is_file() and (
        TUTORING_LORA / "adapter_model.safetensors"
    ).is_file()


def served_adapter(lm: Any) -> str:
    """The adapter ``lm`` (an ``LMConfig``) loads: a path, or "" for the base model alone."""
    setting = (lm.adapter or "").strip()
    name = setting.lower()
    if name in ("", "none"):
        return ""
    if name == "auto":
        if lm.model != BUNDLED_MODEL or lm.backend != "hf" or not shipped():
            return ""
        return str(TUTORING_LORA)
    if name == "tutoring":
        if lm.model != BUNDLED_MODEL:
            raise ConfigError(
                f"lm.adapter = 'tutoring' was trained on {BUNDLED_MODEL}, not on {lm.model}; "
                "set lm.adapter = 'none' or a LoRA trained on your model"
            )
        if not shipped():
            raise ConfigError(
                f"lm.adapter = 'tutoring': the shipped adapter is missing from {TUTORING_LORA}; "
                "reinstall the project or set lm.adapter = 'none'"
            )
        return str(TUTORING_LORA)
    return setting


def label_of(path: str) -> str:
    """A served adapter path as it is named in reports: "tutoring" for the shipped one."""
    if not path:
        return ""
    return "tutoring" if Path(path) == TUTORING_LORA else path


def adapter_label(lm: Any) -> str:
    """What ``served_adapter`` chose, for names and ``tutor config show``."""
    return label_of(served_adapter(lm))


def short_name(label: str) -> str:
    """An adapter label for a run name or a table: "tutoring", or a run's name for
    ``.../runs/<name>/adapter``, else the directory's own name."""
    path = Path(label.rstrip("/"))
    return path.parent.name if path.name == "adapter" else path.name


def adapter_note(lm: Any) -> str:
    """One TOML comment line: which adapter runs and why."""
    label = adapter_label(lm)
    setting = (lm.adapter or "").strip().lower()
    if label == "tutoring":
        why = "lm.adapter = 'auto' on the bundled model" if setting == "auto" else "set"
        return f"# adapter: the shipped tutoring LoRA ({why}; 'none' runs the base alone)"
    if label:
        return f"# adapter: {label}"
    if setting == "auto":
        if lm.model != BUNDLED_MODEL:
            return "# adapter: none (the shipped tutoring LoRA is for the bundled model only)"
        if lm.backend != "hf":
            return "# adapter: none (llama.cpp needs a GGUF LoRA: tutor finetune export --gguf)"
        return "# adapter: none (the shipped tutoring LoRA is not installed)"
    return "# adapter: none"
