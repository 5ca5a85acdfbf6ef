"""The fake model: ``ScriptedGenerator`` streams ``reply(messages)`` word by word.

It implements ``tutor.lm.base.Generator`` and records what the tutor asked: every prompt
(``calls``), how many generations were stopped (``cancelled``) and how many ran at once
(``active``, ``max_active``). Timing can be scripted (``first_token_delay``, ``token_delay``) and
``interrupt_at`` raises ``KeyboardInterrupt`` on that call, as Ctrl-C would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tutor.lm.base import Message

Reply = str | Callable[[list[Message]], str]


class ScriptedGenerator:
    """A MockModel: streams ``reply(messages)`` word by word with fixed timing; thread-safe."""

    name = "scripted"

    def __init__(
        self,
        reply: Reply = "What do you notice first?",
        *,
        token_delay: float = 0.0,
        first_token_delay: float = 0.0,
        interrupt_at: int = 0,
        context_window: int = 4096,
    ) -> None:
        self.reply = reply
        self.token_delay = token_delay
        self.first_token_delay = first_token_delay
        self.interrupt_at = interrupt_at  # raise KeyboardInterrupt on this call (1-based)
        self.context_window = context_window
        self.calls: list[list[Message]] = []
        self.options: list[dict[str, Any]] = []  # each call's generation options
        self.cancelled = 0  # generations stopped by ``cancel`` or by closing the stream
        self.active = 0  # generations running now
        self.max_active = 0  # the most that ever ran at once
        self._lock = threading.Lock()

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(str(m["content"]).split()) + 4 for m in messages)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        cancel: threading.Event | None = None,
        **options: Any,
    ) -> Iterator[str]:
        with self._lock:
            self.calls.append(list(messages))
            self.options.append(dict(options))
            calls = len(self.calls)
        if self.interrupt_at and calls >= self.interrupt_at:
            raise KeyboardInterrupt
        text = self.reply(list(messages)) if callable(self.reply) else self.reply
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.first_token_delay:
                time.sleep(self.first_token_delay)
            for i, word in enumerate(text.split(" ")):
                if cancel is not None and cancel.is_set():
                    self.cancelled += 1
                    return
                if i and self.token_delay:
                    time.sleep(self.token_delay)
                yield word + " "
        except GeneratorExit:  # the consumer closed the stream: generation stops
            self.cancelled += 1
            raise
        finally:
            with self._lock:
                self.active -= 1
