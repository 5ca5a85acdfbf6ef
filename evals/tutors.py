"""The tutors an eval compares, each as a conversation that answers one student message at a time.

- ``agent``: the real ``TutorAgent`` (mode rules, prompt builder, leak guard, citations) in a
  scratch learner store. A dialogue context is seeded through the store's public API: the
  earlier turns become the session's messages and, when the problem and its answer are known,
  the problem is opened in the session state (so the leak guard protects that answer, as it
  would for a problem the learner brought) with its worked solution (``extra["solution"]``, so
  guide mode can locate the student's first wrong step); a problem without an answer is kept
  without one (the tutor then says it cannot check the final answer). The student's last message is then sent with
  ``respond(..., mode="guide")``.
- ``raw``: the same LM with a plain system prompt (``RAW_SYSTEM`` + the problem) and the same
  history, no pedagogy layer.
- ``reference``: the human tutor's next turn from the dataset (no generation).

``RecordingGenerator`` wraps the LM and keeps what it produced before any filtering, so the
grounding suite can count the citations the model itself wrote.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from evals.datasets import DialogueContext
from tutor.events import Done, ModeChosen, Sources, TextDelta, TextReset

if TYPE_CHECKING:
    from tutor.agent import TutorAgent
    from tutor.lm.base import Generator
    from tutor.store.protocol import LearnerStoreLike

RAW_SYSTEM = "You are a helpful tutor."
SYSTEMS = ("agent", "raw", "reference")


@dataclass
class TutorTurn:
    text: str
    mode: str = ""
    rule: str = ""
    leaks_blocked: int = 0
    sources: list[dict[str, Any]] = field(default_factory=list)
    lm_outputs: list[str] = field(default_factory=list)  # raw LM text of each generation
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "mode": self.mode,
            "rule": self.rule,
            "leaks_blocked": self.leaks_blocked,
            "sources": self.sources,
            "lm_outputs": self.lm_outputs,
            "seconds": round(self.seconds, 3),
        }


class RecordingGenerator:
    """Passes every call through to ``inner`` and records the joined output of each call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "lm")
        self.context_window = getattr(inner, "context_window", 0)
        self.outputs: list[str] = []
        self.prompts: list[list[dict[str, str]]] = []

    def count_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        fn = getattr(self.inner, "count_tokens", None)
        if fn is None:
            return sum(len(m["content"]) // 4 + 4 for m in messages)
        return fn(messages)

    def stream(self, messages: Sequence[dict[str, str]], **kwargs: Any) -> Iterator[str]:
        self.prompts.append([dict(m) for m in messages])
        parts: list[str] = []
        self.outputs.append("")
        slot = len(self.outputs) - 1
        try:
            for delta in self.inner.stream(messages, **kwargs):
                parts.append(delta)
                self.outputs[slot] = "".join(parts)
                yield delta
        finally:
            self.outputs[slot] = "".join(parts)

    def take(self) -> list[str]:
        out, self.outputs = self.outputs, []
        self.prompts = []
        return out


def _learner_name(system: str, key: str) -> str:
    return f"eval-{system}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


class AgentConversation:
    """The real agent tutoring in a scratch session seeded with ``ctx``."""

    def __init__(
        self,
        agent: TutorAgent,
        ctx: DialogueContext,
        *,
        key: str,
        mode: str = "guide",
        collection: str = "default",
        seed_history: bool = True,
        open_problem: bool = True,
    ) -> None:
        from tutor.store.learners import SessionState

        self.agent = agent
        self.mode = mode
        # the harness always builds the agent on a full LearnerStore
        store = cast("LearnerStoreLike", agent.store)
        self.learner = store.get_or_create_learner(_learner_name("agent", key), display_name="Alex")
        self.session = store.start_session(self.learner.id, collection=collection)
        if seed_history:
            for t in ctx.history[:-1]:
                role = "user" if t.role == "student" else "assistant"
                store.add_message(self.session.id, role, t.content, learner_id=self.learner.id)
        if open_problem and ctx.problem:
            # with its worked solution, so guide mode can locate the student's first wrong step
            # (``tutor.guide``); a problem without a known answer is kept without one
            state = SessionState().with_item(None, problem=ctx.problem, answer=ctx.answer)
            if ctx.solution and ctx.answer:
                state.extra["solution"] = ctx.solution
            store.set_state(self.session.id, state, learner_id=self.learner.id)
        self._recorder = (
            agent.generator if isinstance(agent.generator, RecordingGenerator) else None
        )

    def say(self, message: str, cancel: threading.Event | None = None) -> TutorTurn:
        t0 = time.perf_counter()
        if self._recorder is not None:
            self._recorder.take()
        turn = TutorTurn(text="")
        text = ""
        for ev in self.agent.respond(
            self.learner, self.session, message, mode=self.mode, cancel=cancel
        ):
            if isinstance(ev, ModeChosen):
                turn.mode, turn.rule = ev.mode, ev.reason
            elif isinstance(ev, TextDelta):
                text += ev.text
            elif isinstance(ev, TextReset):
                text = ""
            elif isinstance(ev, Sources):
                turn.sources = [
                    {
                        "index": s.index,
                        "citation": s.citation,
                        "text": s.text,
                        "doc_id": s.doc_id,
                        "chunk_id": s.chunk_id,
                        "score": s.score,
                        "cited": s.cited,
                    }
                    for s in ev.sources
                ]
            elif isinstance(ev, Done):
                text = ev.text
                turn.leaks_blocked = ev.leaks_blocked
                turn.timings = dict(ev.timings)
        turn.text = text.strip()
        if self._recorder is not None:
            turn.lm_outputs = self._recorder.take()
        turn.seconds = time.perf_counter() - t0
        return turn


class RawConversation:
    """The same LM with a plain system prompt and the same history, no pedagogy layer."""

    def __init__(
        self, generator: Generator, ctx: DialogueContext, *, system: str = RAW_SYSTEM
    ) -> None:
        self.generator = generator
        sys_text = system + (
            f"\n\nThe student is working on this problem: {ctx.problem}" if ctx.problem else ""
        )
        self.messages: list[dict[str, str]] = [{"role": "system", "content": sys_text}]
        for t in ctx.history[:-1]:
            self.messages.append(
                {"role": "user" if t.role == "student" else "assistant", "content": t.content}
            )

    def say(self, message: str, cancel: threading.Event | None = None) -> TutorTurn:
        t0 = time.perf_counter()
        self.messages.append({"role": "user", "content": message})
        msgs = _alternate(self.messages)
        text = "".join(self.generator.stream(msgs, cancel=cancel)).strip()
        self.messages.append({"role": "assistant", "content": text})
        return TutorTurn(text=text, mode="raw", lm_outputs=[text], seconds=time.perf_counter() - t0)


def _alternate(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Merge consecutive turns of one role (some chat templates require alternation)."""
    out: list[dict[str, str]] = []
    for m in messages:
        if out and out[-1]["role"] == m["role"] and m["role"] != "system":
            out[-1] = {"role": m["role"], "content": out[-1]["content"] + "\n\n" + m["content"]}
        else:
            out.append(dict(m))
    return out
