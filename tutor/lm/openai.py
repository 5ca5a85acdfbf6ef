"""The ``openai`` backend: any OpenAI-compatible chat-completions server, streamed over SSE.

Works with vLLM (including LoRA adapters served as model names), llama.cpp's server, Ollama and
others. Only the standard library is used. Connection problems, HTTP errors and streams that
end without a finish reason become one-line ``BackendError`` messages.

Repetition: ``repetition_penalty`` is sent as ``repetition_penalty`` (vLLM) and ``repeat_penalty``
(llama.cpp); a server that refuses them (HTTP 400) is asked again without them, and is not sent
them again. Ending at a sentence and dropping repeated sentences happen here, on the client
(``tutor.lm.sentences``); a ``length`` finish reason says the budget cut the answer.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Generator, Iterator, Sequence
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

DEFAULT_CONTEXT = 4096


class OpenAIGenerator:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        defaults: GenerationOptions | None = None,
        context_window: int = 0,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        tokenizer: Any = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{model}"
        self.api_key = api_key
        self.defaults = defaults or GenerationOptions()
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.tokenizer = tokenizer
        self.context_window = context_window or self._server_context() or DEFAULT_CONTEXT
        self.send_penalty = True  # False once the server refused the penalty fields
        self.last_stats: dict[str, float] = {}

    @classmethod
    def from_config(cls, lm: Any) -> OpenAIGenerator:
        defaults = GenerationOptions.from_config(lm)
        return cls(
            lm.base_url,
            lm.api_model or lm.model,
            api_key=lm.api_key,
            defaults=defaults,
            context_window=lm.context_window,
            timeout=lm.timeout,
            connect_timeout=lm.connect_timeout,
        )

    # -- helpers ------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def _server_context(self) -> int:
        """vLLM reports ``max_model_len`` on /models; others do not. Failures are ignored here:
        the first real request reports connection errors properly."""
        try:
            req = urllib.request.Request(f"{self.base_url}/models", headers=self._headers())
            with urllib.request.urlopen(req, timeout=self.connect_timeout) as r:
                data = json.loads(r.read().decode("utf-8"))
            for m in data.get("data", []):
                if m.get("id") == self.model and m.get("max_model_len"):
                    return int(m["max_model_len"])
        except Exception:
            return 0
        return 0

    def count_tokens(self, messages: Sequence[Message]) -> int:
        if self.tokenizer is not None:
            return len(
                self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True)
            )
        # ~4 characters a token for English, plus a few tokens of framing per message.
        return sum(len(m["content"]) // 4 + 4 for m in messages) + 2

    # -- generation ---------------------------------------------------------------------
    def stream(
        self,
        messages: Sequence[Message],
        *,
        cancel: threading.Event | None = None,
        **options: Any,
    ) -> Iterator[str]:
        opts = self.defaults.updated(**options)
        msgs = validate_messages(messages)
        msgs = trim_to_context(
            msgs, self.count_tokens, max(self.context_window - opts.max_new_tokens, 1)
        )
        progress = _Progress(time.perf_counter(), budget=opts.max_new_tokens)
        resp = self._open(msgs, opts)
        cancel = cancel or threading.Event()
        answer = AnswerFilter(
            opts.stop,
            end_at_sentence=opts.end_at_sentence,
            drop_repeated_sentences=opts.drop_repeated_sentences,
        )
        try:
            self._extend_read_timeout(resp)
            cancelled = yield from _read_events(resp, cancel, answer, progress)
            if cancelled:
                return
            if not progress.finished and not cancel.is_set():
                raise BackendError(
                    f"the server at {self.base_url} closed the stream mid-answer after "
                    f"{progress.received} characters; try again"
                )
            tail = answer.finish(truncated=progress.finish_reason == "length")
            if tail:
                yield tail
        except (http.client.IncompleteRead, ConnectionError, TimeoutError, OSError) as e:
            if isinstance(e, BackendError):
                raise
            raise BackendError(
                f"the stream from {self.base_url} broke mid-answer after {progress.received} "
                f"characters ({type(e).__name__}); try again"
            ) from e
        finally:
            resp.close()
            self.last_stats = {
                "ttft_s": progress.first or 0.0,
                "total_s": time.perf_counter() - progress.t0,
            }

    def _open(self, msgs: list[Message], opts: GenerationOptions) -> Any:
        """The streaming response; asked again without the penalty fields when the server
        refuses them."""
        penalty = self.send_penalty and opts.repetition_penalty != 1.0
        try:
            return self._connect(self._request(msgs, opts, penalty=penalty), retry_400=penalty)
        except _Refused:
            log.warning(
                "the server at %s refused repetition_penalty; sending it no more", self.base_url
            )
            self.send_penalty = False
            return self._connect(self._request(msgs, opts, penalty=False))

    def _request(
        self, msgs: list[Message], opts: GenerationOptions, *, penalty: bool = False
    ) -> urllib.request.Request:
        """The streaming chat-completions request for ``msgs``."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": msgs,
            "stream": True,
            "max_tokens": opts.max_new_tokens,
            "temperature": opts.temperature,
            "top_p": opts.top_p,
        }
        if opts.stop:
            body["stop"] = opts.stop[:4]
        if opts.seed is not None:
            body["seed"] = opts.seed
        if penalty:
            body["repetition_penalty"] = body["repeat_penalty"] = opts.repetition_penalty
        url = f"{self.base_url}/chat/completions"
        return urllib.request.Request(
            url, data=json.dumps(body).encode("utf-8"), headers=self._headers(), method="POST"
        )

    def _connect(self, req: urllib.request.Request, *, retry_400: bool = False) -> Any:
        """Send ``req``; an HTTP error or an unreachable server becomes a ``BackendError``
        (HTTP 400 becomes ``_Refused`` with ``retry_400``)."""
        try:
            return urllib.request.urlopen(req, timeout=self.connect_timeout)
        except urllib.error.HTTPError as e:
            if e.code == 400 and retry_400:
                raise _Refused from e
            detail = _error_detail(e)
            raise BackendError(
                f"the server at {self.base_url} answered HTTP {e.code}: {detail}"
                + (" (check lm.api_model)" if e.code == 404 else "")
                + (" (check lm.api_key)" if e.code in (401, 403) else "")
            ) from e
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise BackendError(
                f"cannot reach the OpenAI-compatible server at {self.base_url} ({reason}); "
                f"start it or fix lm.base_url"
            ) from e

    def _extend_read_timeout(self, resp: Any) -> None:
        """After the headers, a token may take longer than the connect timeout."""
        if resp.fp is not None and hasattr(resp.fp, "raw"):
            try:
                resp.fp.raw._sock.settimeout(self.timeout)
            except AttributeError:
                pass


class _Refused(Exception):
    """The server answered HTTP 400 to a request with optional fields."""


@dataclass
class _Progress:
    """What has come of one answer so far: for the error messages and ``last_stats``."""

    t0: float
    first: float | None = None
    received: int = 0
    budget: int = 0  # max_new_tokens: with ``chunks``, the budget left (an estimate)
    chunks: int = 0
    finished: bool = False
    finish_reason: str = ""


def _read_events(
    resp: Any, cancel: threading.Event, answer: AnswerFilter, progress: _Progress
) -> Generator[str, None, bool]:
    """The answer's text from the SSE lines of ``resp``, through the answer filter, until
    ``[DONE]``, a stop string, a loop or the end of the stream; returns True when it stopped
    because ``cancel`` was set."""
    for raw in resp:
        if cancel.is_set():
            return True
        line = raw.decode("utf-8", errors="replace").strip()
        if not line or line.startswith(":") or not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            progress.finished = True
            break
        yield from _event_text(_parse_event(payload), answer, progress)
        if answer.stopped:
            progress.finished = True
            break
    return False


def _parse_event(payload: str) -> dict[str, Any]:
    """One ``data:`` payload as JSON; malformed JSON or an ``error`` event is a ``BackendError``."""
    try:
        event = json.loads(payload)
    except json.JSONDecodeError as e:
        raise BackendError(f"the server sent a malformed stream event: {payload[:80]!r}") from e
    if "error" in event:
        raise BackendError(f"the server reported an error mid-answer: {event['error']}")
    return event


def _event_text(event: dict[str, Any], answer: AnswerFilter, progress: _Progress) -> Iterator[str]:
    """The text of one stream event's choices, through the answer filter; a choice with a
    finish reason marks the answer finished."""
    for choice in event.get("choices", []):
        delta = (choice.get("delta") or {}).get("content") or ""
        if delta:
            progress.received += len(delta)
            progress.chunks += 1  # servers send a token a chunk (llama.cpp, vLLM, Ollama)
            out = answer.feed(delta, progress.budget - progress.chunks)
            if out:
                if progress.first is None:
                    progress.first = time.perf_counter() - progress.t0
                yield out
        if choice.get("finish_reason"):
            progress.finished = True
            progress.finish_reason = str(choice["finish_reason"])


def _error_detail(e: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(e.read().decode("utf-8", errors="replace"))
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or err)
        return str(err)
    except Exception:
        return e.reason or "no detail"
