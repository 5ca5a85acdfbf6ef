"""One typed configuration for the whole tutor.

Sections: ``lm``, ``kb``, ``tutor``, ``finetune``, ``ui``, ``paths``. Precedence, lowest first:
built-in defaults < ``tutor.toml`` (or ``--config FILE``) < environment ``TUTOR_SECTION__KEY``
< CLI overrides. Unknown sections or keys are rejected with their name, so a typo never
silently does nothing. ``load_config`` is the one entry point; tests call it with dicts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from knowledge_base.options import KBOptions
from tutor.errors import ConfigError

ENV_PREFIX = "TUTOR_"
DEFAULT_CONFIG_FILE = "tutor.toml"


@dataclass
class LMConfig:
    """The causal LM that writes the tutor's turns."""

    backend: Literal["hf", "openai", "llamacpp"] = "hf"
    # HF id, local directory, or a bundled alias (``smollm2-135m-instruct``).
    model: str = "smollm2-135m-instruct"
    # ``auto``: bf16 on CUDA or on CPUs with avx512_bf16/AMX, else fp32.
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    load_in_4bit: bool = False  # bitsandbytes NF4 + double quant (the [gpu] extra)
    # auto: the shipped tutoring LoRA on the bundled model (hf backend), none otherwise; none;
    # tutoring; or a peft LoRA directory (llamacpp: a GGUF LoRA file). See tutor.lm.bundled_lora.
    adapter: str = "auto"
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    # Against loops (figures in docs/benchmarks.md, "Decoding"): a penalty on tokens already
    # seen (1.0 = off) and, hf backend only, no n-gram of this many tokens twice (0 = off).
    repetition_penalty: float = 1.1
    no_repeat_ngram_size: int = 0
    # An answer cut by max_new_tokens ends at its last whole sentence; a sentence said twice in
    # one answer is dropped (the text is streamed a sentence at a time). Every backend.
    end_at_sentence: bool = True
    drop_repeated_sentences: bool = True
    stop: list[str] = field(default_factory=list)
    # Prompt budget in tokens; 0 = the model's own context window.
    context_window: int = 0
    # Jinja chat template used when the tokenizer has none (path or inline text).
    chat_template: str = ""
    # Speed-ups for the hf backend (figures in docs/benchmarks.md, "Generation").
    # Weight-only quantization for CPU decoding. ``auto``: int4 only where it changes no weight
    # (a model dequantized from a Q4 GGUF, like the bundled one), else none. int4/int8 force it.
    quantize: Literal["auto", "none", "int4", "int8"] = "auto"
    # A lean decode loop for Llama-architecture models on CPU (same greedy tokens as generate);
    # other models, and static_cache/compile, use transformers' generate.
    fast_decode: bool = True
    # The lean loop's int4 decode step as one C call (tutor/lm/native_decode.c, built with the
    # machine's C compiler at first start); used where the decode path timing finds it fastest.
    native_decode: bool = True
    # A static KV cache lets torch.compile specialise generate's decoding (slow first start).
    static_cache: bool = False
    compile: bool = False
    # openai backend (vLLM, llama.cpp server, Ollama, ...)
    base_url: str = "http://127.0.0.1:8000/v1"
    api_model: str = ""  # model name sent to the server; defaults to ``model``
    api_key: str = ""
    timeout: float = 60.0
    connect_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.max_new_tokens <= 0:
            raise ConfigError(f"lm.max_new_tokens must be > 0, got {self.max_new_tokens}")
        if not 0.0 <= self.temperature <= 5.0:
            raise ConfigError(f"lm.temperature must be within 0..5, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"lm.top_p must be within (0, 1], got {self.top_p}")
        if self.context_window < 0:
            raise ConfigError(f"lm.context_window must be >= 0, got {self.context_window}")
        if not 0.0 < self.repetition_penalty <= 5.0:
            raise ConfigError(
                f"lm.repetition_penalty must be within (0, 5] (1.0 = off), "
                f"got {self.repetition_penalty}"
            )
        if self.no_repeat_ngram_size < 0:
            raise ConfigError(
                f"lm.no_repeat_ngram_size must be >= 0 (0 = off), got {self.no_repeat_ngram_size}"
            )


# The ``kb`` section is the knowledge base's own options class (``knowledge_base.options``).
KBConfig = KBOptions


@dataclass
class TutorConfig:
    """The agent: pedagogy, learner model, limits."""

    # The mode a chat starts in (``tutor chat`` and the web UI's mode switch); the learner can
    # change it any time (/mode in the terminal). ``tutor chat --mode`` overrides it.
    default_mode: Literal["auto", "explain", "guide", "practice"] = "auto"
    # The full solution is shown only on request after this many attempts.
    solution_after_attempts: int = 2
    max_message_chars: int = 4000
    leak_guard: bool = True
    leak_retries: int = 1
    # Tokens reserved for the answer when the prompt is trimmed to the context budget.
    history_turns: int = 12
    item_bank: str = ""  # default item bank path; empty = the bank loaded for the collection
    mastery_threshold: float = 0.95
    # BKT defaults used before parameters are fitted from data.
    bkt_prior: float = 0.2
    bkt_learn: float = 0.15
    bkt_guess: float = 0.2
    bkt_slip: float = 0.1
    # Next-item difficulty when a predictor is fitted (``tutor learners fit-kt`` chose Best-LR):
    # the item whose predicted P(correct) is nearest this (a desirable difficulty: hard enough
    # to learn from, easy enough to succeed at most of the time).
    target_p_correct: float = 0.7
    # SQLAlchemy URL of the learner store; empty = SQLite file in the data dir.
    database_url: str = ""
    # Explain mode (``tutor.explain``). The course covers a question when a sentence of the
    # retrieved passages is this close to it (cosine); an LM sentence is shown only when a
    # passage sentence supports it at ``support_threshold``. 0 = the values calibrated for the
    # bundled all-MiniLM-L6-v2 (0.52 and 0.75, docs/evals.md "Coverage"); for another embedder
    # without values set here, word-overlap rules decide instead.
    cover_threshold: float = 0.0
    support_threshold: float = 0.0
    # How many of the passages' best sentences an explanation quotes (with their [n]).
    quote_sentences: int = 4
    # Off: a question the course does not cover gets "your course material doesn't cover this"
    # and nothing else. On: the LM's own answer, marked as unsourced (a strong model only).
    general_knowledge: bool = False
    # Explain mode's own sentences with the LM's LoRA adapter. Off: the base model writes them
    # (an unmerged adapter is switched off for the call; the shipped tutoring LoRA was trained
    # on tutoring turns, and explanations lost key facts with it, docs/evals.md).
    explain_adapter: bool = False
    # The trained intent classifier (``tutor.intents``, on the bundled embedder's vectors)
    # decides what a message is; off, or with another embedder, the rules of tutor.modes do.
    intent_model: bool = True
    # Best-of-N: sample this many replies for a turn the LM writes, drop those a verifier
    # rejects, show the one the move classifier ranks best (tutor.candidates). 1 = one reply.
    candidates: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.candidates <= 8:
            raise ConfigError(
                f"tutor.candidates must be 1..8 (replies sampled per turn), got {self.candidates}"
            )
        if self.solution_after_attempts < 0:
            raise ConfigError(
                f"tutor.solution_after_attempts must be >= 0, got {self.solution_after_attempts}"
            )
        if self.max_message_chars <= 0:
            raise ConfigError(f"tutor.max_message_chars must be > 0, got {self.max_message_chars}")
        if not 1 <= self.quote_sentences <= 10:
            raise ConfigError(f"tutor.quote_sentences must be 1..10, got {self.quote_sentences}")
        for name in (
            "bkt_prior",
            "bkt_learn",
            "bkt_guess",
            "bkt_slip",
            "mastery_threshold",
            "target_p_correct",
            "cover_threshold",
            "support_threshold",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"tutor.{name} must be a probability within 0..1, got {v}")


@dataclass
class FinetuneConfig:
    """LoRA / QLoRA fine-tuning (recipes in configs/*.toml override these).

    Data files are read relative to the working directory; ``data_format = "auto"`` detects each
    file's format. QLoRA (``qlora = true``) is the LoRA recipe on a 4-bit NF4 base.
    """

    run_name: str = "lora"  # the run lives in <paths.home>/runs/<run_name>
    data: list[str] = field(default_factory=list)
    # Validation files; empty = hold out ``eval_fraction`` of the problems of ``data``.
    eval_data: list[str] = field(default_factory=list)
    data_format: Literal[
        "auto", "openai", "sharegpt", "alpaca", "qa", "gsm8k", "dialogue", "mathdial"
    ] = "auto"
    # System prompt for QA examples: ``explain`` mode when a record carries reference passages,
    # else the guide mode at the "full solution earned" help level (``auto``); or force one.
    qa_mode: Literal["auto", "explain", "solution"] = "auto"
    skip_invalid: bool = False  # skip (and count) bad records instead of stopping at the first
    max_examples: int = 0  # per data file, first N valid records; 0 = all
    base_model: str = ""  # HF id, directory or bundled alias; empty = lm.model
    qlora: bool = False  # NF4 + double quant base through bitsandbytes
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    max_length: int = 1024
    # Dialogues longer than max_length are split into windows; a teacher turn that does not fit
    # even alone with the system prompt is dropped (and counted) or an error.
    too_long: Literal["drop", "error"] = "drop"
    # MathDial "telling" turns (they state a step or the answer): context only (drop), learned
    # under the tutor's "show one worked step" prompt (prompt), or under the guide prompt that
    # says never to state the answer (keep, the old behaviour).
    telling_turns: Literal["drop", "prompt", "keep"] = "drop"
    packing: bool = False  # pack examples into max_length rows (no cross-example attention)
    group_by_length: bool = True  # batch similar lengths together (less padding)
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float = 2e-4
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    batch_size: int = 4  # per device; with packing, packed rows per device
    grad_accum: int = 1
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eval_steps: int = 50  # evaluate (and checkpoint) every N optimizer steps
    # > 0: evaluate (and checkpoint) this many times per epoch instead, whatever the data size
    evals_per_epoch: int = 0
    eval_fraction: float = 0.1
    eval_before: bool = True  # evaluate the untouched base first (the card's "before" loss)
    early_stopping_patience: int = 3  # evaluations without improvement; 0 = off
    gradient_checkpointing: bool = False
    optim: Literal["auto", "adamw_torch", "adamw_torch_fused", "paged_adamw_8bit", "adamw_8bit"] = (
        "auto"  # auto: paged 8-bit AdamW for QLoRA on CUDA, fused AdamW otherwise
    )
    seed: int = 42
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    logging_steps: int = 10
    tensorboard: bool = False
    resume: bool = False  # continue from the run's last checkpoint
    overwrite: bool = False  # delete an existing run of the same name first

    def __post_init__(self) -> None:
        def bad(key: str, rule: str, value: object) -> ConfigError:
            return ConfigError(f"finetune.{key} must be {rule}, got {value!r}")

        if not self.run_name or not all(c.isalnum() or c in "._-" for c in self.run_name):
            raise bad(
                "run_name", "a non-empty name of letters, digits, '.', '_' or '-'", self.run_name
            )
        if self.run_name in (".", ".."):
            raise bad("run_name", "a real name", self.run_name)
        for key in (
            "lora_r",
            "lora_alpha",
            "batch_size",
            "grad_accum",
            "eval_steps",
            "logging_steps",
        ):
            if getattr(self, key) <= 0:
                raise bad(key, "> 0", getattr(self, key))
        if not 0.0 <= self.lora_dropout < 1.0:
            raise bad("lora_dropout", "within 0..1", self.lora_dropout)
        if not self.target_modules:
            raise bad(
                "target_modules", "a non-empty list (e.g. ['all-linear'])", self.target_modules
            )
        if self.evals_per_epoch < 0:
            raise bad("evals_per_epoch", ">= 0 (0 = use eval_steps)", self.evals_per_epoch)
        if self.max_length < 16:
            raise bad("max_length", ">= 16", self.max_length)
        if self.epochs <= 0 and self.max_steps <= 0:
            raise bad("epochs", "> 0 (or set max_steps)", self.epochs)
        if self.max_steps == 0 or self.max_steps < -1:
            raise bad("max_steps", "-1 (use epochs) or > 0", self.max_steps)
        if self.learning_rate <= 0:
            raise bad("learning_rate", "> 0", self.learning_rate)
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise bad("warmup_ratio", "within 0..1", self.warmup_ratio)
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            raise bad(
                "weight_decay and max_grad_norm", ">= 0", (self.weight_decay, self.max_grad_norm)
            )
        if not 0.0 <= self.eval_fraction < 1.0:
            raise bad("eval_fraction", "within 0..1", self.eval_fraction)
        if self.early_stopping_patience < 0:
            raise bad("early_stopping_patience", ">= 0", self.early_stopping_patience)
        if self.max_examples < 0:
            raise bad("max_examples", ">= 0", self.max_examples)
        if self.resume and self.overwrite:
            raise ConfigError(
                "finetune.resume and finetune.overwrite cannot both be true; pick one"
            )


@dataclass
class UIConfig:
    """The web app (``tutor serve``)."""

    # 127.0.0.1 keeps the app on this machine; anything else needs TLS in front (a warning says so).
    host: str = "127.0.0.1"
    port: int = 7860
    # Turns generated at once. 0 = automatic: 1 with the in-process model (one generation at a
    # time; the others wait their turn in the queue), 32 with the openai backend.
    concurrency_limit: int = 0
    # Skip sign-in: everyone is the one demo student (only on a loopback host).
    demo: bool = False
    max_upload_mb: float = 50.0
    # A sign-in lasts this long; then the browser is sent back to the sign-in page.
    session_hours: float = 12.0
    # Seconds added to every failed sign-in, and failures allowed per account and per address
    # in 15 minutes before sign-in is refused for a while.
    login_delay: float = 1.0
    login_attempts: int = 10
    # The course collection the app serves; empty = kb.collection.
    collection: str = ""
    # Browser origins besides the app's own address that may call it, e.g. a TLS proxy's public
    # https://tutor.school.example (comma-separated in TUTOR_UI__ALLOWED_ORIGINS). Others get 403.
    allowed_origins: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"ui.port must be within 1..65535, got {self.port}")
        if self.concurrency_limit < 0:
            raise ConfigError(
                f"ui.concurrency_limit must be >= 0 (0 = automatic), got {self.concurrency_limit}"
            )
        if self.max_upload_mb <= 0:
            raise ConfigError(f"ui.max_upload_mb must be > 0, got {self.max_upload_mb}")
        if self.session_hours <= 0:
            raise ConfigError(f"ui.session_hours must be > 0, got {self.session_hours}")
        if self.login_delay < 0:
            raise ConfigError(f"ui.login_delay must be >= 0 seconds, got {self.login_delay}")
        if self.login_attempts <= 0:
            raise ConfigError(f"ui.login_attempts must be > 0, got {self.login_attempts}")
        if not self.host.strip():
            raise ConfigError("ui.host is empty; use 127.0.0.1 (this machine) or 0.0.0.0 (all)")


@dataclass
class PathsConfig:
    """Where artifacts live. Everything is under ``home`` unless set explicitly."""

    # Also set by the TUTOR_HOME environment variable (TUTOR_PATHS__HOME wins when both are set).
    # Default: ./.tutor
    home: str = ".tutor"

    @property
    def home_dir(self) -> Path:
        return Path(self.home).expanduser().resolve()

    @property
    def kb_dir(self) -> Path:
        return self.home_dir / "kb"

    @property
    def models_dir(self) -> Path:
        return self.home_dir / "models"

    @property
    def runs_dir(self) -> Path:
        return self.home_dir / "runs"

    @property
    def reports_dir(self) -> Path:
        return self.home_dir / "reports"

    @property
    def learners_db(self) -> Path:
        return self.home_dir / "learners.sqlite"

    @property
    def uploads_dir(self) -> Path:
        return self.home_dir / "uploads"


@dataclass
class Config:
    lm: LMConfig = field(default_factory=LMConfig)
    kb: KBConfig = field(default_factory=KBConfig)
    tutor: TutorConfig = field(default_factory=TutorConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    ui: UIConfig = field(default_factory=UIConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)

    @property
    def database_url(self) -> str:
        return self.tutor.database_url or f"sqlite:///{self.paths.learners_db}"

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {f.name: dataclasses.asdict(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict())


SECTIONS: dict[str, type] = {f.name: f.type for f in dataclasses.fields(Config)}  # type: ignore[misc]
_SECTION_TYPES = typing.get_type_hints(Config)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` (from TOML, env text or a CLI string) to the annotated type ``tp``."""
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{where} must be one of {', '.join(map(repr, allowed))}; got {value!r}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or value == "":
            return None
        return _coerce(value, args[0], where)
    if origin is list:
        (item_tp,) = get_args(tp)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as e:
                    raise ConfigError(
                        f"{where}: cannot parse {value!r} as a JSON list ({e})"
                    ) from e
            else:
                value = [v.strip() for v in text.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list; got {value!r}")
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{where} must be true or false; got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer; got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be an integer; got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number; got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number; got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where} must be a string; got {value!r}")
        return str(value)
    return value


def _merge_section(base: dict[str, Any], section: str, values: Any, source: str) -> None:
    if section not in _SECTION_TYPES:
        raise ConfigError(
            f"unknown config section [{section}] in {source}; "
            f"known sections: {', '.join(_SECTION_TYPES)}"
        )
    if not isinstance(values, dict):
        raise ConfigError(f"[{section}] in {source} must be a table of keys, got {values!r}")
    hints = typing.get_type_hints(_SECTION_TYPES[section])
    for key, value in values.items():
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(
                f"unknown config key {section}.{key} in {source}; known keys in [{section}]: {known}"
            )
        base.setdefault(section, {})[key] = _coerce(
            value, hints[key], f"{section}.{key} ({source})"
        )


def env_overrides(env: typing.Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``TUTOR_LM__MODEL=x`` -> ``{"lm": {"model": "x"}}``; ``TUTOR_HOME`` -> ``paths.home``.

    When both ``TUTOR_PATHS__HOME`` (the generic ``TUTOR_SECTION__KEY`` form) and the
    ``TUTOR_HOME`` shorthand are set, ``TUTOR_PATHS__HOME`` wins, whatever their order in the
    environment.
    """
    out: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].partition("__")
        out.setdefault(section.lower(), {})[key.lower()] = value
    if "TUTOR_HOME" in env and "home" not in out.get("paths", {}):
        out.setdefault("paths", {})["home"] = env["TUTOR_HOME"]
    return out


def parse_overrides(items: typing.Iterable[str]) -> dict[str, dict[str, str]]:
    """``["lm.model=x", "kb.top_k=8"]`` (the CLI's ``--set``) -> nested dict."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"--set expects SECTION.KEY=VALUE, got {item!r}")
        out.setdefault(section, {})[name] = value
    return out


def load_config(
    path: str | Path | None = None,
    env: typing.Mapping[str, str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    *,
    file_values: dict[str, dict[str, Any]] | None = None,
) -> Config:
    """Resolve the configuration.

    ``path``: a TOML file; ``None`` reads ``./tutor.toml`` when present. ``env``: the environment
    (``os.environ`` when ``None``; pass ``{}`` in tests). ``overrides``: CLI values, highest
    precedence. ``file_values``: a dict standing in for the file's contents (tests).
    """
    env = os.environ if env is None else env
    merged: dict[str, dict[str, Any]] = {}
    if file_values is not None:
        layers: list[tuple[str, dict]] = [("config dict", file_values)]
    else:
        layers = []
        if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
            path = DEFAULT_CONFIG_FILE
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise ConfigError(f"config file {p} does not exist; pass an existing TOML file")
            try:
                layers.append((str(p), tomllib.loads(p.read_text(encoding="utf-8"))))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise ConfigError(f"config file {p} is not valid TOML: {e}") from e
    layers.append(("environment", env_overrides(env)))
    if overrides:
        layers.append(("command line", overrides))
    for source, data in layers:
        for section, values in data.items():
            _merge_section(merged, section, values, source)
    sections = {}
    for name, tp in _SECTION_TYPES.items():
        sections[name] = tp(**merged.get(name, {}))
    return Config(**sections)


def dumps_toml(data: dict[str, dict[str, Any]]) -> str:
    """Write a two-level dict as TOML (enough for this config; no external dependency)."""

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        if v is None:
            return '""'
        return json.dumps(str(v), ensure_ascii=False)

    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            lines.append(f"{k} = {fmt(v)}")
        lines.append("")
    return "\n".join(lines)
