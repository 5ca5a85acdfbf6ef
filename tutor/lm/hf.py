"""The ``hf`` backend: a transformers (or lean, ``tutor.lm.lean_load``) causal LM, streamed
through ``tutor.lm.streamer``.

Decoding runs in a worker thread that is always joined; closing the stream or setting the
cancel event stops it at the next token through a stopping criterion. One lock serialises
generations, so a single in-process model can be shared safely by many sessions.

The worker runs ``model.generate``, or for Llama-architecture models on CPU the lean loop of
``tutor.lm.fast`` (same greedy tokens, same streamer and stopping protocol, ~1.5x less time
per token); ``fast_decode=False`` forces ``generate``. Both take ``no_repeat_ngram_size`` and
``repetition_penalty`` alike. The text goes out through ``tutor.lm.sentences.AnswerFilter``:
stop strings, and with ``end_at_sentence`` / ``drop_repeated_sentences`` the sentence filter,
told the budget left (the streamer counts the new tokens) so text streams token by token until
the last ``TAIL_TOKENS`` (the decoded ids say whether the token budget, not an end token, ended
the answer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tutor.errors import BackendError
from tutor.lm.base import (
    GenerationOptions,
    Message,
    trim_to_context,
    validate_messages,
)
from tutor.lm.sentences import AnswerFilter

log = logging.getLogger(__name__)


class HFGenerator:
    """Wraps a loaded ``(model, tokenizer)``; build it with ``HFGenerator.from_config``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str = "hf",
        defaults: GenerationOptions | None = None,
        context_window: int = 0,
        static_cache: bool = False,
        compile: bool = False,
        stream_timeout: float = 300.0,
        fast_decode: bool = True,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.defaults = defaults or GenerationOptions()
        model_window = int(getattr(model.config, "max_position_embeddings", 0) or 2048)
        self.context_window = min(context_window, model_window) if context_window else model_window
        self.static_cache = static_cache
        self.stream_timeout = stream_timeout
        self._lock = threading.Lock()
        if compile:
            import torch

            self.model.forward = torch.compile(
                self.model.forward, dynamic=False, mode="reduce-overhead"
            )
        # The lean decode loop (tutor.lm.fast): same tokens as generate, far less per-token
        # overhead on CPU. static_cache / compile ask for generate's own machinery instead.
        self.decoder: Any = None
        self.decode_path = "generate"
        if fast_decode and not static_cache and not compile:
            from tutor.lm.fast import LlamaDecoder

            reason = LlamaDecoder.unsupported_reason(model)
            if reason is None:
                self.decoder = LlamaDecoder(model, self.context_window)
                self.decode_path = "lean"
            else:
                log.info("lean decode loop not used (%s); decoding with generate()", reason)
        self.last_stats: dict[str, float] = {}
        # the CPU path tutor.lm.speed chose for lm.dtype = "auto" (None when dtype was set)
        self.path_choice = getattr(model, "tutor_decode_path", None)  # logged by tutor.lm.speed
        if self.decoder is not None and self.path_choice is not None:
            self.decoder.threads = self.path_choice.threads  # decode steps at the measured count

    @classmethod
    def from_config(cls, lm: Any, models_dir: Any) -> HFGenerator:
        from tutor.lm.bundled_lora import label_of, served_adapter
        from tutor.lm.resolve import load_causal_lm

        adapter = served_adapter(lm)
        lean = lm.fast_decode and not lm.static_cache and not lm.compile
        model, tokenizer = load_causal_lm(
            lm.model,
            models_dir=models_dir,
            dtype=lm.dtype,
            device=lm.device,
            load_in_4bit=lm.load_in_4bit,
            adapter=adapter,
            merge_adapter=True,
            chat_template=lm.chat_template,
            quantize=lm.quantize,
            lean=lean,
            native=lm.native_decode and lean,
        )
        defaults = GenerationOptions.from_config(lm)
        name = lm.model + (f"+{label_of(adapter)}" if adapter else "")
        return cls(
            model,
            tokenizer,
            name=name,
            defaults=defaults,
            context_window=lm.context_window,
            static_cache=lm.static_cache,
            compile=lm.compile,
            fast_decode=lm.fast_decode,
        )

    # -- tokens -------------------------------------------------------------------------
    def _encode(self, messages: Sequence[Message]) -> list[int]:
        ids = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self._encode(messages))

    # -- generation ---------------------------------------------------------------------
    def stream(
        self,
        messages: Sequence[Message],
        *,
        cancel: threading.Event | None = None,
        **options: Any,
    ) -> Iterator[str]:
        opts = self.defaults.updated(**options)
        input_ids = self._prompt_ids(messages, opts)
        cancel = cancel or threading.Event()
        stop_event = threading.Event()
        streamer = _counting_streamer(self.tokenizer, self.stream_timeout)
        gen_kwargs = self._generate_kwargs(
            input_ids,
            opts,
            streamer,
            _stopping_criteria(cancel, stop_event, lean=self.decoder is not None),
        )
        error: list[BaseException] = []
        result: list[Any] = []
        answer = AnswerFilter(
            opts.stop,
            end_at_sentence=opts.end_at_sentence,
            drop_repeated_sentences=opts.drop_repeated_sentences,
        )
        progress = _Progress(time.perf_counter())
        with self._lock:
            switch = getattr(self.model, "tutor_lora_switch", None)
            if switch is not None:
                switch.on = opts.adapter  # held for this call by the lock
            worker = threading.Thread(
                target=self._decode,
                args=(gen_kwargs, opts, streamer, error, result),
                name="tutor-generate",
                daemon=True,
            )
            worker.start()

            def truncated() -> bool:
                worker.join(timeout=self.stream_timeout)
                return self._hit_budget(result, input_ids.shape[1], opts.max_new_tokens)

            try:
                yield from _relay(
                    streamer,
                    answer,
                    cancel,
                    stop_event,
                    progress,
                    truncated,
                    lambda: opts.max_new_tokens - streamer.new_tokens,
                )
            except Exception as e:  # queue.Empty on timeout
                stop_event.set()
                if error:
                    raise BackendError(f"generation failed: {error[0]}") from error[0]
                raise BackendError(
                    f"the model produced no token for {self.stream_timeout:.0f} s; it may be "
                    f"overloaded. Try again or lower lm.max_new_tokens ({type(e).__name__})"
                ) from e
            finally:
                stop_event.set()
                # Drain so generate() never blocks on a full queue, then join.
                worker.join(timeout=self.stream_timeout)
            self.last_stats = {
                "ttft_s": progress.first or 0.0,
                "total_s": time.perf_counter() - progress.t0,
                "prompt_tokens": float(input_ids.shape[1]),
                "chunks": float(progress.chunks),
                "new_tokens": float(result[0].shape[1] - input_ids.shape[1] if result else 0),
            }
        if error and not isinstance(error[0], GeneratorExit):
            err = error[0]
            raise BackendError(f"generation failed: {type(err).__name__}: {err}") from err

    def _hit_budget(self, result: list[Any], prompt_len: int, max_new_tokens: int) -> bool:
        """Whether the decoded sequence in ``result`` stopped at the token budget rather than
        at an end-of-sequence token."""
        if not result:
            return False
        ids = result[0][0].tolist()
        eos = self.model.generation_config.eos_token_id
        eos_ids = {eos} if isinstance(eos, int) else set(eos or ())
        return len(ids) - prompt_len >= max_new_tokens and ids[-1] not in eos_ids

    def _prompt_ids(self, messages: Sequence[Message], opts: GenerationOptions) -> Any:
        """The prompt as a ``(1, n)`` tensor on the model's device, trimmed to leave room for
        ``opts.max_new_tokens``."""
        import torch

        msgs = validate_messages(messages)
        budget = self.context_window - opts.max_new_tokens
        if budget <= 0:
            raise BackendError(
                f"max_new_tokens={opts.max_new_tokens} leaves no room for the prompt in a "
                f"{self.context_window}-token context; lower lm.max_new_tokens"
            )
        msgs = trim_to_context(msgs, self.count_tokens, budget)
        return torch.tensor([self._encode(msgs)], device=self.model.device)

    def _generate_kwargs(
        self, input_ids: Any, opts: GenerationOptions, streamer: Any, stopping_criteria: Any
    ) -> dict[str, Any]:
        """The keyword arguments of ``model.generate`` for one answer."""
        import torch

        gen_kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "max_new_tokens": opts.max_new_tokens,
            "streamer": streamer,
            "stopping_criteria": stopping_criteria,
            "pad_token_id": self.tokenizer.pad_token_id,
            "repetition_penalty": opts.repetition_penalty,
            "no_repeat_ngram_size": opts.no_repeat_ngram_size,
        }
        if opts.temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=opts.temperature, top_p=opts.top_p)
        else:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if self.static_cache:
            gen_kwargs["cache_implementation"] = "static"
        return gen_kwargs

    def _decode(
        self,
        gen_kwargs: dict[str, Any],
        opts: GenerationOptions,
        streamer: Any,
        error: list[BaseException],
        result: list[Any],
    ) -> None:
        """The worker thread: decode into ``streamer`` and put the ids in ``result``; a failure
        goes to ``error`` (surfaced in the consumer thread) and ends the stream."""
        import torch

        try:
            if opts.seed is not None:
                torch.manual_seed(opts.seed)
            with torch.inference_mode():
                if self.decoder is not None:
                    from tutor.lm.fast import sampling_top_k

                    out = self.decoder.generate(
                        gen_kwargs["input_ids"],
                        max_new_tokens=opts.max_new_tokens,
                        do_sample=opts.temperature > 0,
                        temperature=opts.temperature,
                        top_k=sampling_top_k(self.model),
                        top_p=opts.top_p,
                        repetition_penalty=opts.repetition_penalty,
                        no_repeat_ngram_size=opts.no_repeat_ngram_size,
                        eos_token_id=self.model.generation_config.eos_token_id,
                        stopping_criteria=gen_kwargs["stopping_criteria"],
                        streamer=streamer,
                    )
                else:
                    out = self.model.generate(**gen_kwargs)
            result.append(out)
        except BaseException as e:  # surfaced in the consumer thread
            error.append(e)
            streamer.end()


@dataclass
class _Progress:
    """What the consumer saw of one answer, for ``last_stats``."""

    t0: float
    first: float | None = None
    chunks: int = 0


def _counting_streamer(tokenizer: Any, timeout: float | None) -> Any:
    """The streamer of one answer (``tutor.lm.streamer``): text chunks, ``new_tokens``."""
    from tutor.lm.streamer import TokenTextStreamer

    return TokenTextStreamer(tokenizer, timeout)


def _stopping_criteria(
    cancel: threading.Event, stop_event: threading.Event, *, lean: bool = False
) -> Any:
    """What stops decoding once ``cancel`` or ``stop_event`` is set: a plain function for the
    lean loop (no ``transformers`` import), a ``StoppingCriteriaList`` for ``generate``."""
    import torch

    if lean:

        def stop(input_ids: Any, scores: Any) -> Any:
            done = cancel.is_set() or stop_event.is_set()
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool)

        return stop
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = cancel.is_set() or stop_event.is_set()
            return torch.full(
                (input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device
            )

    return StoppingCriteriaList([_Stop()])


def _relay(
    streamer: Any,
    answer: AnswerFilter,
    cancel: threading.Event,
    stop_event: threading.Event,
    progress: _Progress,
    truncated: Callable[[], bool],
    tokens_left: Callable[[], int],
) -> Iterator[str]:
    """The streamer's text through the answer filter (stop strings, sentences), until the end,
    a stop string, a loop or ``cancel``; a stop sets ``stop_event`` so the worker stops too.
    ``truncated`` (called once decoding is over) says whether the budget ended it;
    ``tokens_left`` the budget left so far."""
    for text in streamer:
        if not text:
            continue
        progress.chunks += 1
        out = answer.feed(text, tokens_left())
        if out:
            if progress.first is None:
                progress.first = time.perf_counter() - progress.t0
            yield out
        if answer.stopped:
            stop_event.set()
            break
        if cancel.is_set():
            break
    if cancel.is_set():
        return
    tail = answer.finish(truncated=not answer.stopped and truncated())
    if tail:
        if progress.first is None:
            progress.first = time.perf_counter() - progress.t0
        yield tail
