"""The ``llamacpp`` backend: a GGUF model run in-process by llama.cpp (``llama-cpp-python``).

``lm.model`` is a ``.gguf`` file, a folder holding one, or the bundled alias; ``lm.adapter`` a
GGUF LoRA file (a peft directory must be converted first). The prompt is the GGUF's own chat
template rendered by transformers' renderer, so it is the very string the ``hf`` backend builds.
Decoding runs in the consumer's thread, one token per step: ``cancel`` and closing the iterator
take effect at the next token. Token ids become text through ``IncrementalDetokenizer``, which
never splits a multi-byte character. The text goes out through ``tutor.lm.sentences``, as in
every backend.

Repetition penalty: llama.cpp divides (or, for negative logits, multiplies) by the penalty, as
transformers does, but only over the tokens its sampler has seen: the generated ones, not the
prompt (transformers penalises prompt tokens too). Every generated token counts here (the
window is the whole context, not llama.cpp's default 64). ``no_repeat_ngram_size`` is ``hf``
only. Sampling uses top-k 50 (transformers' default) with min-p and typical-p off.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tutor.errors import BackendError, ConfigError, MissingDependencyError, ModelNotFoundError
from tutor.lm.base import GenerationOptions, Message, trim_to_context, validate_messages
from tutor.lm.sentences import AnswerFilter

log = logging.getLogger(__name__)

INSTALL = 'pip install ".[llamacpp]"'
DEFAULT_CONTEXT = 4096  # KV cache size when lm.context_window is 0 (memory stays modest)
SAMPLING_TOP_K = 50  # transformers' default, so both backends sample alike
RANDOM_SEED = 0xFFFFFFFF  # llama.cpp's LLAMA_DEFAULT_SEED: a fresh random seed per answer
EXPORT_HINT = "tutor finetune export --gguf --lora ADAPTER_DIR"


def import_llama_cpp() -> Any:
    """``llama_cpp``, or a ``MissingDependencyError`` naming the extra to install."""
    try:
        import llama_cpp
    except ImportError as e:
        raise MissingDependencyError(
            f"lm.backend=llamacpp needs llama-cpp-python; install it with: {INSTALL} "
            f"(it compiles llama.cpp from source: needs cmake and a C++ compiler, ~5-45 min "
            f"on 2 cores)"
        ) from e
    return llama_cpp


def gguf_model_path(spec: str) -> Path:
    """The GGUF file ``lm.model`` names: a ``.gguf`` path, a folder with one, or a bundled
    alias. Anything else raises an error that says what to pass."""
    from tutor.lm.resolve import BUNDLED, bundled_gguf_path

    spec = (spec or "").strip()
    if spec.lower() in BUNDLED:
        return bundled_gguf_path(BUNDLED[spec.lower()])
    what = f"a .gguf file, a folder with one .gguf file, or {', '.join(BUNDLED)}"
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if found := _single_gguf(path):
            return found
        if ggufs:
            names = ", ".join(g.name for g in ggufs)
            raise ConfigError(
                f"{path} holds several GGUF files ({names}); set lm.model to one of them"
            )
    if not path.exists() and (spec.startswith((".", "/", "~")) or spec.count("/") > 1):
        raise ModelNotFoundError(f"model path {spec} does not exist; check the path in lm.model")
    raise ConfigError(
        f"lm.backend=llamacpp runs GGUF models only, and lm.model={spec!r} is not one; set "
        f"lm.model to {what} (or use lm.backend=hf for Hugging Face models)"
    )


def _single_gguf(folder: Path) -> Path | None:
    """The folder's one ``.gguf`` file, or None (none, or several)."""
    ggufs = sorted(folder.glob("*.gguf"))
    return ggufs[0] if len(ggufs) == 1 else None


def gguf_adapter_path(adapter: str) -> Path | None:
    """The GGUF LoRA file ``lm.adapter`` names (None when unset). A peft adapter directory
    raises an error naming the command that converts it."""
    if not adapter:
        return None
    path = Path(adapter).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path
    if path.is_dir():
        if found := _single_gguf(path):
            return found
        if (path / "adapter_config.json").is_file():
            raise ConfigError(
                f"lm.adapter={adapter} is a peft LoRA directory; llama.cpp needs a GGUF LoRA "
                f"file: convert it with `{EXPORT_HINT.replace('ADAPTER_DIR', str(path))}` and "
                f"set lm.adapter to the .gguf it writes (or use lm.backend=hf)"
            )
    if not path.exists():
        raise ModelNotFoundError(f"adapter {adapter} does not exist; check lm.adapter")
    raise ConfigError(
        f"lm.adapter={adapter} is not a GGUF LoRA file; with lm.backend=llamacpp set it to a "
        f".gguf LoRA (convert a peft adapter with `{EXPORT_HINT}`)"
    )


def default_threads() -> int:
    """The thread count the ``hf`` backend decodes with: torch's (which honours
    ``OMP_NUM_THREADS``), else half the cores."""
    try:
        import torch

        return max(1, int(torch.get_num_threads()))
    except ImportError:  # pragma: no cover - torch is a core dependency
        import os

        return max(1, (os.cpu_count() or 2) // 2)


def render_prompt(template: str, messages: Sequence[Message], **special_tokens: str) -> str:
    """``messages`` through a Jinja chat template, rendered as transformers'
    ``apply_chat_template(..., add_generation_prompt=True, tokenize=False)`` renders it."""
    from transformers.utils.chat_template_utils import render_jinja_template

    render: Any = render_jinja_template  # typed as returning str; returns (texts, indices)
    rendered, _ = render(
        conversations=[[dict(m) for m in messages]],
        chat_template=template,
        add_generation_prompt=True,
        **special_tokens,
    )
    return str(rendered[0])


class IncrementalDetokenizer:
    """Token ids in, text out, one token at a time. Each token's bytes are taken as the
    difference between decoding a few previous tokens with and without it (so tokenizers that
    strip a leading space when decoding alone still stream right), then go through an
    incremental UTF-8 decoder: a character split across tokens comes out whole, once."""

    def __init__(self, detokenize: Callable[[list[int]], bytes], window: int = 4):
        self.detokenize = detokenize
        self.window = window
        self.prev: list[int] = []
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def piece(self, token: int) -> bytes:
        ctx = self.prev[-self.window :]
        if not ctx:
            return self.detokenize([token])
        before = self.detokenize(ctx)
        after = self.detokenize([*ctx, token])
        if after.startswith(before):
            return after[len(before) :]
        return self.detokenize([token])  # a decoder that rewrites earlier text (clean-up)

    def feed(self, token: int) -> str:
        data = self.piece(token)
        self.prev.append(token)
        return self.utf8.decode(data)

    def flush(self) -> str:
        """What is left at the end (an unfinished character becomes U+FFFD)."""
        return self.utf8.decode(b"", final=True)


def _eog_check(llama_cpp: Any, llm: Any) -> Callable[[int], bool]:
    """Whether a token ends generation (end of sequence / end of turn), by the model's vocab."""
    get_vocab = getattr(llama_cpp, "llama_model_get_vocab", None)
    vocab_is_eog = getattr(llama_cpp, "llama_vocab_is_eog", None)
    if get_vocab is not None and vocab_is_eog is not None:
        vocab = get_vocab(llm.model)
        return lambda t: bool(vocab_is_eog(vocab, t))
    token_is_eog = getattr(llama_cpp, "llama_token_is_eog", None)
    if token_is_eog is not None:
        return lambda t: bool(token_is_eog(llm.model, t))
    eos = llm.token_eos()
    return lambda t: t == eos


def trained_context(llm: Any) -> int:
    """The context length the model was trained with (0 when unknown): llama.cpp's
    ``n_ctx_train``, else the GGUF's ``<arch>.context_length``."""
    model = getattr(llm, "_model", None)
    if model is not None and hasattr(model, "n_ctx_train"):
        return int(model.n_ctx_train())
    metadata = getattr(llm, "metadata", None) or {}
    arch = metadata.get("general.architecture", "")
    return int(metadata.get(f"{arch}.context_length", 0) or 0)


class LlamaCppGenerator:
    """Wraps a loaded ``llama_cpp.Llama``; build it with ``LlamaCppGenerator.from_config``."""

    def __init__(
        self,
        llm: Any,
        *,
        name: str = "llamacpp",
        defaults: GenerationOptions | None = None,
        context_window: int = 0,
        chat_template: str = "",
        is_eog: Callable[[int], bool] | None = None,
    ):
        self.llm = llm
        self.name = name
        self.defaults = defaults or GenerationOptions()
        model_window = min(int(llm.n_ctx()), trained_context(llm) or int(llm.n_ctx()))
        self.context_window = min(context_window, model_window) if context_window else model_window
        self.chat_template = self._template(chat_template)
        self.special_tokens = {
            "bos_token": self._token_text(llm.token_bos()),
            "eos_token": self._token_text(llm.token_eos()),
        }
        self.is_eog = is_eog or (lambda t: t == llm.token_eos())
        self._lock = threading.Lock()
        self.last_stats: dict[str, float] = {}

    @classmethod
    def from_config(cls, lm: Any, n_threads: int | None = None) -> LlamaCppGenerator:
        """Load ``lm.model`` (and ``lm.adapter``) with llama.cpp. Paths are checked before
        llama_cpp is imported, so a wrong model or adapter says so even without it."""
        model_path = gguf_model_path(lm.model)
        from tutor.lm.bundled_lora import served_adapter

        adapter = served_adapter(lm)  # "auto": none here (the shipped LoRA is not GGUF)
        lora_path = gguf_adapter_path(adapter)
        llama_cpp = import_llama_cpp()
        threads = n_threads or default_threads()
        n_ctx = lm.context_window or DEFAULT_CONTEXT
        log.info("loading %s with llama.cpp (%d threads, n_ctx %d)", model_path, threads, n_ctx)
        try:
            llm = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                lora_path=str(lora_path) if lora_path else None,
                last_n_tokens_size=n_ctx,  # the repetition penalty sees every generated token
                verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"llama.cpp could not load {model_path}: {e}") from e
        defaults = GenerationOptions.from_config(lm)
        return cls(
            llm,
            name=lm.model + (f"+{adapter}" if adapter else ""),
            defaults=defaults,
            context_window=lm.context_window,
            chat_template=lm.chat_template,
            is_eog=_eog_check(llama_cpp, llm),
        )

    def close(self) -> None:
        """Free the model now rather than at garbage collection."""
        close = getattr(self.llm, "close", None)
        if close is not None:
            close()

    # -- prompt and tokens --------------------------------------------------------------
    def _template(self, fallback: str) -> str:
        from tutor.lm.resolve import resolve_chat_template

        metadata = getattr(self.llm, "metadata", None) or {}
        template = metadata.get("tokenizer.chat_template") or resolve_chat_template(fallback)
        if not template:
            raise ConfigError(
                "the GGUF model has no chat template; set lm.chat_template to 'chatml' or to a "
                "Jinja template file"
            )
        return str(template)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return bytes(self.llm.detokenize([token], special=True)).decode("utf-8", "replace")

    def prompt(self, messages: Sequence[Message]) -> str:
        """The prompt text for ``messages``, ending with the assistant's turn header."""
        return render_prompt(self.chat_template, messages, **self.special_tokens)

    def _encode(self, messages: Sequence[Message]) -> list[int]:
        text = self.prompt(messages).encode("utf-8")
        return list(self.llm.tokenize(text, add_bos=False, special=True))

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self._encode(messages))

    def _prompt_ids(self, messages: Sequence[Message], opts: GenerationOptions) -> list[int]:
        msgs = validate_messages(messages)
        budget = self.context_window - opts.max_new_tokens
        if budget <= 0:
            raise BackendError(
                f"max_new_tokens={opts.max_new_tokens} leaves no room for the prompt in a "
                f"{self.context_window}-token context; lower lm.max_new_tokens"
            )
        return self._encode(trim_to_context(msgs, self.count_tokens, budget))

    # -- generation ---------------------------------------------------------------------
    def _token_ids(self, ids: list[int], opts: GenerationOptions) -> Any:
        """llama.cpp's (endless) generator of new token ids for the prompt ``ids``."""
        self.llm.set_seed(RANDOM_SEED if opts.seed is None else int(opts.seed))
        greedy = opts.temperature <= 0
        return self.llm.generate(
            ids,
            temp=0.0 if greedy else opts.temperature,
            top_k=SAMPLING_TOP_K,
            top_p=1.0 if greedy else opts.top_p,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=opts.repetition_penalty,
            reset=True,  # reuses the cached prefix the last answer shares with this prompt
        )

    def stream(
        self,
        messages: Sequence[Message],
        *,
        cancel: threading.Event | None = None,
        **options: Any,
    ) -> Iterator[str]:
        opts = self.defaults.updated(**options)
        ids = self._prompt_ids(messages, opts)
        cancel = cancel or threading.Event()
        with self._lock:
            yield from self._decode(ids, opts, cancel)

    def _decode(
        self, ids: list[int], opts: GenerationOptions, cancel: threading.Event
    ) -> Iterator[str]:
        answer = AnswerFilter(
            opts.stop,
            end_at_sentence=opts.end_at_sentence,
            drop_repeated_sentences=opts.drop_repeated_sentences,
        )
        text = IncrementalDetokenizer(lambda t: bytes(self.llm.detokenize(t)))
        t0 = time.perf_counter()
        first: float | None = None
        new = 0
        ended = False  # an end-of-generation token ended the answer
        tokens = self._token_ids(ids, opts)
        try:
            for token in tokens:
                if cancel.is_set():
                    break
                if self.is_eog(int(token)):
                    ended = True
                    break
                new += 1
                out = answer.feed(text.feed(int(token)), opts.max_new_tokens - new)
                if out:
                    first = first if first is not None else time.perf_counter() - t0
                    yield out
                if answer.stopped or cancel.is_set() or new >= opts.max_new_tokens:
                    break
        except Exception as e:  # llama.cpp's decode failed (e.g. out of KV cache)
            raise BackendError(f"generation failed: {type(e).__name__}: {e}") from e
        finally:
            tokens.close()
            self.last_stats = {
                "ttft_s": first or 0.0,
                "total_s": time.perf_counter() - t0,
                "prompt_tokens": float(len(ids)),
                "new_tokens": float(new),
            }
        if cancel.is_set():
            return
        truncated = not ended and not answer.stopped and new >= opts.max_new_tokens
        tail = answer.feed(text.flush()) if not answer.stopped else ""
        tail += answer.finish(truncated=truncated)
        if tail:
            yield tail
