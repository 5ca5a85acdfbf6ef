"""Preference pairs for DPO, from the verifiers (issue 15, item 5).

For a context of the SFT run's *training* side (its held-out problems stay out), the chosen
reply is the human teacher's turn and the rejected reply is a candidate of the model that a
check rejects. The checks are the tutor's own, applied as the agent applies them:

- ``reveal``: the reply states the final answer (``tutor.grading.mentions_answer``, the leak
  guard's test), where the record gives one;
- ``false_arithmetic`` / ``unverified_arithmetic``: a claim ``tutor.verify`` finds false or cannot
  check (the sentence gate withholds both);
- ``judgement``: the reply judges the learner's work ("That's right!", "Not quite"), which the
  agent shows only when its grader backs it; no grader runs on these contexts, so none stands;
- ``telling`` / ``generic``: the move classifier's most likely move (``tutor.judge``).

A context yields a pair only when the human turn passes every one of these checks and some
candidate fails one; the pair keeps the first reason found. Candidate 1 is greedy, the rest are
sampled (``tutor.candidates.SAMPLING``, seed = index), so a run repeats.

Because the move classifier picks some of the rejected replies, its labels of a DPO-tuned
model's replies are not independent evidence; ``docs/evals.md`` says which measures are.

File format, one JSON object per line::

    {"prompt": [{"role": "system"|"user"|"assistant", "content": ...}, ...],
     "chosen": "...", "rejected": "...", "reason": "telling", "group": "...", "source": "f:12"}
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.formats import ChatExample
from tutor.errors import InputError

log = logging.getLogger(__name__)

REASONS = (
    "reveal",
    "false_arithmetic",
    "unverified_arithmetic",
    "judgement",
    "telling",
    "generic",
)
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class PairContext:
    """A teacher turn of a training dialogue and what the checks need to know about it."""

    messages: list[dict[str, str]]  # system prompt and turns before the teacher's reply
    chosen: str  # the teacher's reply
    problem: str
    student: str  # the student's turn just before it
    answer: str  # the final answer when the record gives one, else ""
    group: str
    source: str


@dataclass
class PairStats:
    contexts: int = 0
    candidates: int = 0
    chosen_failed: Counter = field(default_factory=Counter)  # human turns a check rejects
    rejected: Counter = field(default_factory=Counter)  # candidates, by first reason
    pairs: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "contexts": self.contexts,
            "candidates": self.candidates,
            "chosen_failed": dict(self.chosen_failed),
            "rejected": dict(self.rejected),
            "pairs": self.pairs,
            "seconds": round(self.seconds, 1),
        }


def _answers(examples: Sequence[ChatExample]) -> dict[str, str]:
    """source ("file:line") -> the final answer its record gives ("" when none)."""
    from tutor.judge.data import final_answer

    wanted: dict[str, set[int]] = {}
    for ex in examples:
        file, _, line = ex.source.rpartition(":")
        if line.isdigit():
            wanted.setdefault(file, set()).add(int(line))
    out: dict[str, str] = {}
    for file, lines in wanted.items():
        try:
            with open(file, encoding="utf-8") as f:
                for n, text in enumerate(f, 1):
                    if n in lines:
                        record = json.loads(text)
                        truth = record.get("ground_truth") if isinstance(record, dict) else None
                        out[f"{file}:{n}"] = final_answer(truth if isinstance(truth, str) else "")
        except (OSError, ValueError):
            continue  # not a JSON-lines file: no answers from it
    return out


def pair_contexts(
    examples: Sequence[ChatExample], *, seed: int = 0, per_example: int = 1
) -> list[PairContext]:
    """Up to ``per_example`` teacher turns (targets only, after a student turn) of each
    example, drawn with ``seed``; in the examples' order."""
    answers = _answers(examples)
    out: list[PairContext] = []
    for ex in examples:
        turns = ex.targets if ex.targets is not None else range(len(ex.messages))
        usable = [
            i
            for i in turns
            if ex.messages[i]["role"] == "assistant"
            and i > 0
            and ex.messages[i - 1]["role"] == "user"
            and ex.messages[i]["content"].strip()
        ]
        key = int(hashlib.sha256(f"{seed}:{ex.source}".encode()).hexdigest()[:8], 16)
        picked = sorted(random.Random(key).sample(usable, min(per_example, len(usable))))
        for i in picked:
            out.append(
                PairContext(
                    messages=[dict(m) for m in ex.messages[:i]],
                    chosen=ex.messages[i]["content"],
                    problem=ex.problem,
                    student=ex.messages[i - 1]["content"],
                    answer=answers.get(ex.source, ""),
                    group=ex.group,
                    source=ex.source,
                )
            )
    return out


def sample_contexts(
    contexts: Sequence[PairContext], limit: int, seed: int = 0
) -> list[PairContext]:
    """``limit`` contexts drawn at random (seeded), in their original order; all when
    ``limit`` <= 0. Drawn, not the first ones: data files come one source after another."""
    if limit <= 0 or limit >= len(contexts):
        return list(contexts)
    keep = set(random.Random(seed).sample(range(len(contexts)), limit))
    return [c for i, c in enumerate(contexts) if i in keep]


def rejection(reply: str, ctx: PairContext, move: str = "") -> str | None:
    """The first check ``reply`` fails in this context (one of ``REASONS``), or None. ``move``:
    the classifier's move for it ("" when not classified)."""
    from tutor.grading import mentions_answer
    from tutor.verify import SentenceGate, VerifyContext

    if not reply.strip():
        return "generic"
    if ctx.answer and mentions_answer(reply, ctx.answer, prompt=ctx.problem):
        return "reveal"
    gate = SentenceGate(VerifyContext(), drop_bad_math=True)
    gate.feed(reply)
    gate.finish()
    if gate.report.false_claims:
        return "false_arithmetic"
    if gate.report.unverified_claims:
        return "unverified_arithmetic"
    if gate.report.judgements_withdrawn:
        return "judgement"
    return move if move in ("telling", "generic") else None


def classifier_moves(classifier: Any) -> Callable[[PairContext, Sequence[str]], list[str]]:
    """The move classifier's most likely move for each reply in a context."""
    from tutor.judge.data import MoveExample

    label = classifier.spec.labels[0]

    def moves(ctx: PairContext, replies: Sequence[str]) -> list[str]:
        examples = [
            MoveExample(ctx.problem, ctx.student, ctx.answer, r, label, "") for r in replies
        ]
        return [j.move for j in classifier.judge_many(examples)]

    return moves


def build_pairs(
    generator: Any,
    contexts: Iterable[PairContext],
    *,
    candidates: int = 2,
    max_new_tokens: int = 60,
    moves: Callable[[PairContext, Sequence[str]], list[str]] | None = None,
    progress: Callable[[int, PairStats], None] | None = None,
) -> tuple[list[dict[str, Any]], PairStats]:
    """Generate ``candidates`` replies per context and pair the human turn with the first one
    a check rejects. ``moves``: the classifier (``classifier_moves``); None leaves the move
    checks out."""
    from tutor.candidates import SAMPLING
    from tutor.lm.base import generate

    if candidates < 1:
        raise InputError(f"candidates={candidates}: need at least 1 candidate per context")
    stats, pairs, t0 = PairStats(), [], time.perf_counter()
    for n, ctx in enumerate(contexts, 1):
        stats.contexts += 1
        texts = []
        for i in range(candidates):
            opts: dict[str, Any] = {"max_new_tokens": max_new_tokens, "temperature": 0.0}
            if i:
                opts.update(SAMPLING, seed=i)
            texts.append(generate(generator, ctx.messages, **opts).strip())
        stats.candidates += len(texts)
        replies = [ctx.chosen, *texts]
        labels = moves(ctx, replies) if moves is not None else [""] * len(replies)
        verdicts = [rejection(t, ctx, m) for t, m in zip(replies, labels, strict=True)]
        if verdicts[0] is not None:
            stats.chosen_failed[verdicts[0]] += 1
        else:
            failed = [(t, why) for t, why in zip(texts, verdicts[1:], strict=True) if why]
            for _, why in failed:
                stats.rejected[why] += 1
            if failed:
                text, why = failed[0]
                pairs.append(_pair(ctx, text, why))
        stats.pairs = len(pairs)
        stats.seconds = time.perf_counter() - t0
        if progress is not None:
            progress(n, stats)
    return pairs, stats


def _pair(ctx: PairContext, rejected: str, reason: str) -> dict[str, Any]:
    return {
        "prompt": ctx.messages,
        "chosen": ctx.chosen,
        "rejected": rejected,
        "reason": reason,
        "group": ctx.group,
        "source": ctx.source,
    }


def write_pairs(path: Path, pairs: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_pairs(path: str | Path) -> list[dict[str, Any]]:
    """A pairs file, checked: every error names the file, the line and the field."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such pairs file; build one with `tutor finetune pairs`")
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: not valid JSON ({e.msg})") from e
        if not isinstance(d, dict):
            raise InputError(f"{where}: must be a JSON object with prompt, chosen, rejected")
        out.append(_checked(d, where))
    if not out:
        raise InputError(f"{p}: has no pairs; build some with `tutor finetune pairs`")
    return out


def _checked(d: dict[str, Any], where: str) -> dict[str, Any]:
    prompt = d.get("prompt")
    if not isinstance(prompt, list) or not prompt:
        raise InputError(f"{where}: field 'prompt' must be a non-empty list of messages")
    for i, m in enumerate(prompt):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise InputError(f"{where}: field 'prompt[{i}].role' must be one of {', '.join(ROLES)}")
        if not isinstance(m.get("content"), str):
            raise InputError(f"{where}: field 'prompt[{i}].content' must be text")
    if prompt[-1]["role"] != "user":
        raise InputError(f"{where}: field 'prompt' must end with a user turn (the reply's cue)")
    for key in ("chosen", "rejected"):
        if not isinstance(d.get(key), str) or not d[key].strip():
            raise InputError(f"{where}: field '{key}' must be non-empty text")
    if d["chosen"].strip() == d["rejected"].strip():
        raise InputError(f"{where}: fields 'chosen' and 'rejected' are the same reply")
    reason = d.get("reason", "")
    if reason and reason not in REASONS:
        raise InputError(f"{where}: field 'reason' is {reason!r}, not one of {', '.join(REASONS)}")
    return {**d, "group": str(d.get("group") or where)}
