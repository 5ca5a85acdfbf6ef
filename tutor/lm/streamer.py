"""``TokenTextStreamer``: the decode loop's tokens as text chunks in a queue, without
``transformers`` (the lean start never imports it).

It follows ``transformers``' ``TextIteratorStreamer`` with ``skip_prompt=True`` and
``skip_special_tokens=True`` (the same protocol, so ``model.generate`` takes it too): the first
``put`` is the prompt and is skipped; each later one decodes the tokens since the last line
break and releases what can no longer change (a line, CJK characters, letters and digits, else
up to the last space); ``end`` flushes the rest and closes the iterator. ``new_tokens`` counts
the tokens put after the prompt. The tests check it chunk for chunk against the original.
"""

from __future__ import annotations

import queue
import unicodedata
from typing import Any

_CJK = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _is_cjk(char: str) -> bool:
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CJK)


class TokenTextStreamer:
    """Iterate over it for the text; ``put`` / ``end`` are called by the decoding thread."""

    def __init__(self, tokenizer: Any, timeout: float | None = None) -> None:
        self.tokenizer = tokenizer
        self.timeout = timeout
        self.text_queue: queue.Queue[str | None] = queue.Queue()
        self.token_cache: list[int] = []
        self.print_len = 0
        self.next_tokens_are_prompt = True
        self.new_tokens = 0

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def put(self, value: Any) -> None:
        if len(value.shape) > 1 and value.shape[0] > 1:
            raise ValueError("TokenTextStreamer only supports batch size 1")
        if len(value.shape) > 1:
            value = value[0]
        if self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.new_tokens += int(value.numel())
        self.token_cache.extend(value.tolist())
        text = self._decode(self.token_cache)
        if text.endswith("\n"):
            printable = text[self.print_len :]
            # keep the last token as context, so the next line's leading space survives
            self.token_cache = self.token_cache[-1:]
            self.print_len = len(self._decode(self.token_cache))
        elif text and _is_cjk(text[-1]):
            printable = text[self.print_len :]
            self.print_len += len(printable)
        elif all(
            c.isspace() or unicodedata.category(c)[0] in "LMN" for c in text[self.print_len :]
        ):
            printable = text[self.print_len :]
            self.print_len += len(printable)
        else:
            printable = text[self.print_len : text.rfind(" ") + 1]
            self.print_len += len(printable)
        self.text_queue.put(printable, timeout=self.timeout)

    def end(self) -> None:
        printable = ""
        if self.token_cache:
            printable = self._decode(self.token_cache)[self.print_len :]
            self.token_cache, self.print_len = [], 0
        self.next_tokens_are_prompt = True
        self.text_queue.put(printable, timeout=self.timeout)
        self.text_queue.put(None, timeout=self.timeout)

    def __iter__(self) -> TokenTextStreamer:
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value is None:
            raise StopIteration
        return value
