"""The ``openai`` backend: any OpenAI-compatible chat-completions server, streamed over SSE.

Works with vLLM (including LoRA adapters served as model names), llama.cpp's server, Ollama and
others. Only the standard library is used. Connection problems, HTTP errors and streams that
end without a finish reason become one-line ``BackendError`` messages.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from tutor.errors import BackendError
from tutor.lm.base import (
    GenerationOptions,
    Message,
    StopStringFilter,
    trim_to_context,
    validate_messages,
)

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
        self.last_stats: dict[str, float] = {}

    @classmethod
    def from_config(cls, lm: Any) -> OpenAIGenerator:
        defaults = GenerationOptions(
            max_new_tokens=lm.max_new_tokens,
            temperature=lm.temperature,
            top_p=lm.top_p,
            repetition_penalty=lm.repetition_penalty,
            stop=list(lm.stop),
        )
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
        url = f"{self.base_url}/chat/completions"
        req = urllib.request.Request(
            url, data=json.dumps(body).encode("utf-8"), headers=self._headers(), method="POST"
        )
        t0 = time.perf_counter()
        try:
            resp = urllib.request.urlopen(req, timeout=self.connect_timeout)
        except urllib.error.HTTPError as e:
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
        cancel = cancel or threading.Event()
        stop_filter = StopStringFilter(opts.stop)
        finished = False
        first = None
        received = 0
        try:
            if resp.fp is not None and hasattr(resp.fp, "raw"):
                # after the headers, a token may take longer than the connect timeout
                try:
                    resp.fp.raw._sock.settimeout(self.timeout)  # type: ignore[attr-defined]
                except AttributeError:
                    pass
            for raw in resp:
                if cancel.is_set():
                    return
                line = raw.decode("utf-8", errors="replace").strip()
                if not line or line.startswith(":") or not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    finished = True
                    break
                try:
                    event = json.loads(payload)
                except json.JSONDecodeError as e:
                    raise BackendError(
                        f"the server sent a malformed stream event: {payload[:80]!r}"
                    ) from e
                if "error" in event:
                    raise BackendError(f"the server reported an error mid-answer: {event['error']}")
                for choice in event.get("choices", []):
                    delta = (choice.get("delta") or {}).get("content") or ""
                    if delta:
                        received += len(delta)
                        out = stop_filter.feed(delta)
                        if out:
                            if first is None:
                                first = time.perf_counter() - t0
                            yield out
                    if choice.get("finish_reason"):
                        finished = True
                if stop_filter.stopped:
                    finished = True
                    break
            if not finished and not cancel.is_set():
                raise BackendError(
                    f"the server at {self.base_url} closed the stream mid-answer after {received} "
                    f"characters; try again"
                )
            tail = stop_filter.flush()
            if tail:
                yield tail
        except (http.client.IncompleteRead, ConnectionError, TimeoutError, OSError) as e:
            if isinstance(e, BackendError):
                raise
            raise BackendError(
                f"the stream from {self.base_url} broke mid-answer after {received} characters "
                f"({type(e).__name__}); try again"
            ) from e
        finally:
            resp.close()
            self.last_stats = {"ttft_s": first or 0.0, "total_s": time.perf_counter() - t0}


def _error_detail(e: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(e.read().decode("utf-8", errors="replace"))
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or err)
        return str(err)
    except Exception:
        return e.reason or "no detail"
