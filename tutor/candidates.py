"""Best-of-N turns: sample ``[tutor] candidates`` replies for a turn the LM writes, discard
those a verifier rejects, show the best of the rest.

Each candidate runs through ``tutor.turns.stream_reply`` into a scratch turn (nothing is shown
while they are generated): the leak guard (a reveal of the answer) and the sentence gate (a
judgement of the learner's work the grader does not back, false or unverifiable arithmetic)
discard it. Candidate 1 is greedy, as a single reply is; candidates 2..N are sampled
(``SAMPLING``, seed = index, so a run repeats). Survivors that passed untouched (nothing
withheld, e.g. no sentence cut by the token budget) come first; within a tier the move
classifier (``tutor.judge``) ranks them by the probability of the turn's goal: a probing or
focusing move while the learner's problem is unsolved, anything but a generic one once
this turn graded it right. Without the
classifier a deterministic rule ranks them (ends with a question, then fewest words withheld).
The chosen text is then shown at once. When every candidate fails, what one reply would have
shown is shown: the greedy candidate with its withdrawn judgements left out, or, when it tripped
the leak guard or the arithmetic check, the caller's single-reply tries (stricter where the
candidates failed). What happened goes in
``turn.meta["candidates"]``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator as Coroutine
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tutor.events import Event
from tutor.lm.base import Generator, Message
from tutor.turns import Turn, record_checks, stream_reply
from tutor.verify import SentenceGate, VerifyContext

if TYPE_CHECKING:
    from tutor.opening import TurnContext

log = logging.getLogger(__name__)

MAX_CANDIDATES = 8
SAMPLING: dict[str, Any] = {"temperature": 0.8, "top_p": 0.95}
OPEN_GOAL = ("probing", "focus")  # while the learner's problem is unsolved
ANY_GOAL = ("focus", "probing", "telling")  # once solved: anything but a generic move


class Ranker(Protocol):
    """Scores replies to one context: higher is better; ``name`` goes in the turn meta."""

    name: str

    def scores(
        self, replies: Sequence[str], problem: str, student: str, answer: str, goal: Sequence[str]
    ) -> list[float]: ...


class ClassifierRanker:
    """The shipped move classifier's probability of the goal moves."""

    name = "classifier"

    def __init__(self, classifier: Any) -> None:
        self.classifier = classifier

    def scores(
        self, replies: Sequence[str], problem: str, student: str, answer: str, goal: Sequence[str]
    ) -> list[float]:
        from tutor.judge.data import MoveExample

        label = self.classifier.spec.labels[0]
        examples = [MoveExample(problem, student, answer, r, label, "") for r in replies]
        judged = self.classifier.judge_many(examples)
        return [round(sum(j.probabilities.get(m, 0.0) for m in goal), 4) for j in judged]


class RuleRanker:
    """The fallback without the classifier: a reply ending in a question scores 1."""

    name = "rule"

    def scores(
        self, replies: Sequence[str], problem: str, student: str, answer: str, goal: Sequence[str]
    ) -> list[float]:
        return [1.0 if r.rstrip().endswith("?") else 0.0 for r in replies]


_default: Ranker | None = None
_lock = threading.Lock()


def default_ranker() -> Ranker:
    """The move classifier, loaded once; the rule ranker when it cannot load."""
    global _default
    with _lock:
        if _default is None:
            try:
                from tutor.judge.model import MoveClassifier

                _default = ClassifierRanker(MoveClassifier.load())
            except Exception as e:  # no weights, no encoder: rank by rule, and say so
                log.warning("move classifier unavailable (%s); ranking candidates by rule", e)
                _default = RuleRanker()
        return _default


class _Sampled:
    """``generator`` with sampling options added to every stream call."""

    def __init__(self, generator: Generator, options: dict[str, Any]) -> None:
        self.generator, self.options = generator, options
        self.name, self.context_window = generator.name, generator.context_window

    def stream(
        self, messages: Sequence[Message], *, cancel: threading.Event | None = None, **kw: Any
    ) -> Iterator[str]:
        return self.generator.stream(messages, cancel=cancel, **{**kw, **self.options})

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return self.generator.count_tokens(messages)


@dataclass
class Candidate:
    index: int
    turn: Turn
    gate: SentenceGate
    outcome: str  # "ok", "math", "leak", "judgement" or "empty"
    seconds: float
    score: float = 0.0

    @property
    def withheld(self) -> int:
        return self.gate.report.sentences_dropped

    def record(self) -> dict[str, Any]:
        r = self.gate.report
        return {
            "index": self.index,
            "outcome": self.outcome,
            "withheld": r.sentences_dropped,
            "cut_dropped": r.cut_dropped,
            "score": self.score,
            "seconds": round(self.seconds, 3),
            "text": self.turn.text,
        }


def generate(
    generator: Generator,
    index: int,
    msgs: list[Message],
    n_passages: int,
    ctx: TurnContext,
    checks: VerifyContext,
    guarded: Any,
) -> Candidate:
    """Candidate ``index`` (0 = greedy) run through the verifiers into a scratch turn."""
    turn = Turn(mode=ctx.turn.mode, intent=ctx.turn.intent)
    gen = generator if index == 0 else _Sampled(generator, {**SAMPLING, "seed": index})
    gate = SentenceGate(checks)
    t0 = time.perf_counter()
    outcome = yield_all(stream_reply(gen, turn, msgs, n_passages, guarded, ctx.cancel, gate))
    if outcome == "ok" and gate.report.judgements_withdrawn:
        outcome = "judgement"  # it judged the learner's work against the grader
    elif outcome == "ok" and not turn.text.strip():
        outcome = "empty"
    return Candidate(index, turn, gate, outcome, time.perf_counter() - t0)


def yield_all(coroutine: Coroutine[Event, None, str]) -> str:
    """Run ``coroutine`` to its end without showing its events; its return value."""
    while True:
        try:
            next(coroutine)
        except StopIteration as stop:
            return str(stop.value)


def goal_context(ctx: TurnContext) -> tuple[str, str, str, tuple[str, ...]]:
    """(problem, student message, answer, goal moves) for the ranker."""
    problem = ctx.opened.item.prompt if ctx.opened is not None else (ctx.state.problem or "")
    answer = ""
    if ctx.opened is not None:
        answer = ctx.opened.item.answer.value
    # only guide and practice turns get here: unsolved unless this turn graded it right
    solved = ctx.turn.meta.get("grading", {}).get("correct") is True
    return problem, ctx.text, answer, (ANY_GOAL if solved else OPEN_GOAL)


def best_of_n(
    agent: Any, ctx: TurnContext, prompt: tuple[Any, ...], checks: VerifyContext, guarded: Any
) -> Coroutine[Event, None, tuple[bool, bool] | None]:
    """With ``agent.settings.candidates`` = N > 1: generate N candidates for the prompt of
    ``agent._prompt(ctx, *prompt)`` and show the best; ``None`` when one was shown, else the
    (strict, strict_math) flags the single-reply tries start from. N = 1: nothing happens
    (no LM call), the flags are both off. ``agent.ranker``, when set, replaces the default."""
    n = agent.settings.candidates
    if n <= 1:
        return False, False
    turn, t0 = ctx.turn, time.perf_counter()
    msgs = agent._prompt(ctx, *prompt, False, False)
    made: list[Candidate] = []
    for i in range(n):
        if ctx.cancel is not None and ctx.cancel.is_set():
            break
        made.append(generate(agent.generator, i, msgs, len(prompt[2]), ctx, checks, guarded))
    for c in made:
        for key in ("generation_ms", "guard_ms", "verify_ms"):
            turn.timings[key] = turn.timings.get(key, 0.0) + c.turn.timings.get(key, 0.0)
    meta: dict[str, Any] = {"n": n, "generated": len(made), "chosen": None}
    turn.meta["candidates"] = meta
    kept = [c for c in made if c.outcome == "ok"]
    if kept:
        best, rank, goal = _choose(kept, ctx, getattr(agent, "ranker", None))
        meta.update(ranker=rank, goal=list(goal), chosen=best.index)
        meta["candidates"] = [c.record() for c in made]
        record_checks(turn, best.gate)
        turn.cited = best.turn.cited
        turn.timings["candidates_ms"] = turn.timings["first_text_ms"] = _ms(t0)
        yield turn.say(best.turn.text)
        return None
    meta["candidates"] = [c.record() for c in made]
    turn.timings["candidates_ms"] = _ms(t0)
    first = made[0] if made else None
    if first is not None and first.outcome == "judgement" and first.turn.text.strip():
        # what one reply shows: the greedy candidate with its judgements withdrawn
        meta.update(fallback="every candidate failed a check: the first, as one reply", chosen=0)
        record_checks(turn, first.gate)
        turn.cited = first.turn.cited
        turn.timings["first_text_ms"] = _ms(t0)
        yield turn.say(first.turn.text)
        return None
    meta["fallback"] = "every candidate failed a check: the single-reply tries"
    outcomes = {c.outcome for c in made}
    return "leak" in outcomes, "math" in outcomes


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _choose(
    kept: list[Candidate], ctx: TurnContext, ranker: Ranker | None
) -> tuple[Candidate, str, tuple[str, ...]]:
    """The best of ``kept`` (scored in place): untouched first, then by score."""
    rank = ranker or default_ranker()
    problem, student, answer, goal = goal_context(ctx)
    texts = [c.turn.text for c in kept]
    try:
        scores = rank.scores(texts, problem, student, answer, goal)
    except Exception as e:  # a ranker bug must not cost the turn
        log.warning("ranking candidates failed (%s); by rule", e)
        rank = RuleRanker()
        scores = rank.scores(texts, problem, student, answer, goal)
    for c, s in zip(kept, scores, strict=True):
        c.score = s
    best = max(kept, key=lambda c: (c.withheld == 0, c.score, -c.withheld, -c.index))
    return best, rank.name, goal
