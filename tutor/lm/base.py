"""The one streaming interface every LM backend implements, plus the helpers they share.

``Generator.stream(messages, cancel=..., **options)`` yields text deltas. Closing the iterator
(or setting ``cancel``) stops generation; the non-streaming answer is ``"".join(stream)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol, runtime_checkable

from tutor.errors import ContextOverflowError, InputError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}
ROLES = ("system", "user", "assistant")


@dataclass
class GenerationOptions:
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0  # 0 = off; else no n-gram of this many tokens occurs twice
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    # tutor.lm.sentences: an answer cut by the token budget ends at its last whole sentence
    end_at_sentence: bool = False
    drop_repeated_sentences: bool = False  # a sentence said twice in one answer is dropped
    # False: the base model alone for this call, where a LoRA adapter is served unmerged (hf on
    # CPU: tutor.lm.lora.LoraSwitch); a merged adapter, or another backend, ignores it
    adapter: bool = True

    @classmethod
    def from_config(cls, lm: Any) -> GenerationOptions:
        """The defaults an ``LMConfig`` sets (``no_repeat_ngram_size`` is read by ``hf`` only)."""
        return cls(
            max_new_tokens=lm.max_new_tokens,
            temperature=lm.temperature,
            top_p=lm.top_p,
            repetition_penalty=lm.repetition_penalty,
            no_repeat_ngram_size=lm.no_repeat_ngram_size,
            stop=list(lm.stop),
            end_at_sentence=lm.end_at_sentence,
            drop_repeated_sentences=lm.drop_repeated_sentences,
        )

    def updated(self, **overrides: Any) -> GenerationOptions:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise InputError(
                f"unknown generation option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **clean)


@runtime_checkable
class Generator(Protocol):
    """A chat LM that streams text. ``context_window`` is in tokens."""

    name: str
    context_window: int

    def stream(
        self,
        messages: Sequence[Message],
        *,
        cancel: threading.Event | None = None,
        **options: Any,
    ) -> Iterator[str]: ...

    def count_tokens(self, messages: Sequence[Message]) -> int: ...


def generate(gen: Generator, messages: Sequence[Message], **options: Any) -> str:
    """Non-streaming answer: the joined stream."""
    return "".join(gen.stream(messages, **options))


def validate_messages(messages: Sequence[Message]) -> list[Message]:
    """Check roles and contents; the last message must be a non-empty user turn."""
    out: list[Message] = []
    for i, m in enumerate(messages):
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise InputError(f"message {i} has role {role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise InputError(f"message {i} content must be text, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    if not out or out[-1]["role"] != "user":
        raise InputError("the conversation must end with a user message")
    if not out[-1]["content"].strip():
        raise InputError("the message is empty; type a question or an answer")
    return out


def trim_to_context(
    messages: Sequence[Message],
    count_tokens: Callable[[Sequence[Message]], int],
    budget: int,
) -> list[Message]:
    """Drop the oldest non-system turns until the prompt fits ``budget`` tokens.

    Turns are dropped from the front (keeping user/assistant pairs aligned) so the latest user
    message always survives. Raises ``ContextOverflowError`` when even system + last message
    do not fit, with the numbers needed to fix it.
    """
    msgs = list(messages)
    if count_tokens(msgs) <= budget:
        return msgs
    system = [m for m in msgs[:1] if m["role"] == "system"]
    rest = msgs[len(system) :]
    while len(rest) > 1:
        rest = rest[1:]
        # never start the kept history with an assistant turn
        while len(rest) > 1 and rest[0]["role"] == "assistant":
            rest = rest[1:]
        if count_tokens(system + rest) <= budget:
            return system + rest
    needed = count_tokens(system + rest)
    raise ContextOverflowError(
        f"the prompt needs {needed} tokens but only {budget} fit in the model's context "
        f"after reserving room for the answer; shorten the message, lower lm.max_new_tokens, "
        f"or use a model with a longer context (lm.context_window)"
    )


class StopStringFilter:
    """Cuts a stream of deltas at the first stop string, holding back text that might be the
    start of one so no partial stop string ever reaches the user."""

    def __init__(self, stops: Iterable[str]):
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buffer = ""
        self.stopped = False

    def feed(self, delta: str) -> str:
        if self.stopped:
            return ""
        if not self.stops:
            return delta
        self.buffer += delta
        cut = min((i for s in self.stops if (i := self.buffer.find(s)) >= 0), default=-1)
        if cut >= 0:
            out, self.buffer, self.stopped = self.buffer[:cut], "", True
            return out
        if self.hold <= 0:
            out, self.buffer = self.buffer, ""
            return out
        out, self.buffer = self.buffer[: -self.hold], self.buffer[-self.hold :]
        return out

    def flush(self) -> str:
        out, self.buffer = ("" if self.stopped else self.buffer), ""
        return out
