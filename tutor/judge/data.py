"""Labelled tutor moves from dialogue files, and the split by problem.

A ``MoveExample`` is one human-labelled teacher turn with what the judge sees of its context:
the problem, the student's last turn before it, and the final answer when the file gives one
(the last line of ``ground_truth``). The files are in the shared dialogue form
(``../shared/data/dialogues/*.jsonl``: ``{"id", "problem", "ground_truth", "messages": [{"role",
"content", "move"?}], "qid"?}``); only MathDial's four moves are read as labels.

``split_by_problem`` keeps every turn of a problem on one side, so a held-out score is on
problems the model never saw. Bad input raises ``InputError`` naming the file, line and field.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tutor.errors import InputError

MOVES = ("focus", "probing", "telling", "generic")


@dataclass(frozen=True)
class MoveExample:
    """One teacher turn: the context the judge sees, the reply, the human label, its problem."""

    problem: str
    student: str  # the student's last turn before the reply ("" at the start)
    answer: str  # the final answer when known, else ""
    reply: str
    label: str
    group: str  # the problem id: the unit of the split
    where: str = ""  # "file:line" for messages


def final_answer(ground_truth: str | None) -> str:
    """The last non-empty line of a reference solution (MathDial/GSM8K keep the answer there)."""
    lines = [x.strip() for x in (ground_truth or "").splitlines() if x.strip()]
    return lines[-1] if lines else ""


def _record_examples(d: dict, where: str, labels: Sequence[str]) -> list[MoveExample]:
    messages = d.get("messages")
    if not isinstance(messages, list):
        raise InputError(f"{where}: field 'messages' must be a list of turns")
    group = str(d.get("qid") or d.get("problem") or d.get("id") or where)
    answer = final_answer(d.get("ground_truth"))
    problem = str(d.get("problem") or "")
    out, student = [], ""
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise InputError(f"{where}: field 'messages[{i}]' must be an object")
        role, text = m.get("role"), str(m.get("content") or "")
        if role == "student":
            student = text
            continue
        move = m.get("move")
        if role != "teacher" or move is None:
            continue
        if move not in labels:
            raise InputError(
                f"{where}: field 'messages[{i}].move' is {move!r}, not one of {', '.join(labels)}"
            )
        if text.strip():
            out.append(MoveExample(problem, student, answer, text, str(move), group, where))
    return out


def load_moves(path: str | Path, labels: Sequence[str] = MOVES) -> list[MoveExample]:
    """Every labelled teacher turn of a dialogue JSONL file (see the module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file; pass a dialogue JSONL file with labelled moves")
    out: list[MoveExample] = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: not valid JSON ({e.msg})") from None
        if not isinstance(d, dict):
            raise InputError(f"{where}: expected a JSON object per line")
        out.extend(_record_examples(d, where, labels))
    if not out:
        raise InputError(
            f"{p}: no teacher turn has a 'move' label in field 'messages[].move' "
            f"(expected one of {', '.join(labels)})"
        )
    return out


def check_classes(
    examples: Sequence[MoveExample], what: str, labels: Sequence[str] = MOVES
) -> None:
    """Raise when ``examples`` is empty or a label has no example in it."""
    if not examples:
        raise InputError(f"{what} is empty: no labelled turns (field 'messages[].move')")
    counts = Counter(e.label for e in examples)
    missing = [lab for lab in labels if not counts[lab]]
    if missing:
        raise InputError(
            f"{what} has no example of {', '.join(missing)} in field 'messages[].move'; "
            "every class needs examples (use more data or another seed)"
        )


def split_by_problem(
    examples: Sequence[MoveExample], heldout: float, seed: int
) -> tuple[list[MoveExample], list[MoveExample]]:
    """(train, held-out): about ``heldout`` of the problems, drawn with ``seed``, are held out
    with all their turns; no problem is on both sides."""
    if not 0.0 < heldout < 1.0:
        raise InputError(f"held-out share {heldout} must be between 0 and 1")
    groups = sorted({e.group for e in examples})
    random.Random(seed).shuffle(groups)
    n = max(1, round(len(groups) * heldout)) if len(groups) > 1 else 0
    held = set(groups[:n])
    train = [e for e in examples if e.group not in held]
    test = [e for e in examples if e.group in held]
    return train, test


def source_of(examples: Iterable[MoveExample]) -> str:
    """The file(s) the examples came from, for messages."""
    files = sorted({e.where.rsplit(":", 1)[0] for e in examples})
    return ", ".join(files) or "(no file)"
