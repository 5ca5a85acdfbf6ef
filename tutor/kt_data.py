"""Attempt logs for the learner models: a columnar answer log, the files it is read from, and the
split by learner that every learner-model evaluation uses.

``AnswerLog``: one row per *answer* (not per skill), in time order within each learner; an
answer has a learner, one or more skills, optionally an item and a time, and the outcome.
Multi-skill answers keep all their skills on one row (shared credit, see ``tutor.kt``).

Files (``load_answers``):

- CSV with a header row, or JSONL: one answer (or one answer x skill) a row; the columns are
  mapped with ``--columns learner=..,skill=..,correct=..[,order=..][,item=..][,time=..]``
  (defaults: each role's own name). ``order`` sorts a learner's answers (a number or an ISO
  time; file order when absent). ``time`` (seconds, or an ISO time) enables the recency and
  time-window features of Best-LR; when ``order`` is an ISO time it doubles as ``time``. A
  ``skill`` cell may name several skills separated by ``;`` or ``|``. Rows of one learner with
  the same ``order`` and item are one answer tagged with several skills (the ASSISTments 2009
  log repeats a multi-skill answer once per skill with the same ``order_id``).
- The three-line-per-learner format of the public KT datasets (DKT, pyKT's ASSISTments
  files): for each learner a line with the number of answers, a line of skill ids and a line of
  0/1 responses, comma-separated (a trailing comma is allowed). Skill ids may be joined with
  ``_`` for a multi-skill answer. Detected when the first non-empty line is a single integer.
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tutor.errors import InputError

ROLES = ("learner", "skill", "correct", "order", "item", "time")
REQUIRED = ("learner", "skill", "correct")
_TRUE = {"1", "true", "yes", "y", "correct", "right", "t"}
_FALSE = {"0", "false", "no", "n", "incorrect", "wrong", "f"}
_SKILL_SEP = re.compile(r"[;|]")


class AttemptsFileError(InputError):
    """An attempts file is not in a form this module reads; the message names file and line."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Answer:
    """One answer of a learner (the input row of ``AnswerLog.from_answers``)."""

    learner: str
    skills: tuple[str, ...]
    correct: bool
    item: str = ""
    time: float | None = None  # seconds since any fixed origin


@dataclass
class AnswerLog:
    """Answers in time order within each learner (learners contiguous), as numpy columns.

    ``learner[i]``/``item[i]`` index ``learners``/``items`` (item -1: none); ``time[i]`` is NaN
    when unknown. The (answer, skill) pairs: ``pair_answer[k]`` and ``pair_skill[k]`` (index
    into ``skills``), sorted by answer.
    """

    learners: list[str]
    skills: list[str]
    items: list[str]
    learner: np.ndarray
    item: np.ndarray
    correct: np.ndarray
    time: np.ndarray
    pair_answer: np.ndarray
    pair_skill: np.ndarray

    def __len__(self) -> int:
        return len(self.correct)

    @property
    def has_time(self) -> bool:
        return bool(len(self.time)) and not bool(np.isnan(self.time).any())

    @classmethod
    def from_answers(cls, answers: Iterable[Answer]) -> AnswerLog:
        """Answers grouped by learner (first appearance), each learner's in the given order."""
        by_learner: dict[str, list[Answer]] = {}
        for a in answers:
            if not a.skills:
                raise InputError(f"an answer of learner {a.learner!r} has no skill")
            by_learner.setdefault(a.learner, []).append(a)
        rows = [a for lst in by_learner.values() for a in lst]
        learners = list(by_learner)
        lidx = {n: i for i, n in enumerate(learners)}
        skills = sorted({s for a in rows for s in a.skills})
        sidx = {s: i for i, s in enumerate(skills)}
        items = sorted({a.item for a in rows if a.item})
        iidx = {s: i for i, s in enumerate(items)}
        pa: list[int] = []
        ps: list[int] = []
        for i, a in enumerate(rows):
            for s in dict.fromkeys(a.skills):
                pa.append(i)
                ps.append(sidx[s])
        return cls(
            learners,
            skills,
            items,
            np.array([lidx[a.learner] for a in rows], dtype=np.int64),
            np.array([iidx[a.item] if a.item else -1 for a in rows], dtype=np.int64),
            np.array([a.correct for a in rows], dtype=np.int8),
            np.array([np.nan if a.time is None else a.time for a in rows], dtype=np.float64),
            np.array(pa, dtype=np.int64),
            np.array(ps, dtype=np.int64),
        )

    def answers(self) -> list[Answer]:
        per: dict[int, list[str]] = {}
        for a, s in zip(self.pair_answer.tolist(), self.pair_skill.tolist(), strict=True):
            per.setdefault(a, []).append(self.skills[s])
        return [
            Answer(
                self.learners[self.learner[i]],
                tuple(per[i]),
                bool(self.correct[i]),
                self.items[self.item[i]] if self.item[i] >= 0 else "",
                None if np.isnan(self.time[i]) else float(self.time[i]),
            )
            for i in range(len(self))
        ]

    def subset(self, learner_names: Iterable[str]) -> AnswerLog:
        """The answers of some learners (vocabularies kept, so indices stay comparable)."""
        keep_l = np.zeros(len(self.learners), dtype=bool)
        pos = {n: i for i, n in enumerate(self.learners)}
        for n in learner_names:
            keep_l[pos[n]] = True
        keep = keep_l[self.learner]
        new_index = np.cumsum(keep) - 1
        pk = keep[self.pair_answer]
        names = [n for i, n in enumerate(self.learners) if keep_l[i]]
        remap = np.cumsum(keep_l) - 1
        return AnswerLog(
            names,
            self.skills,
            self.items,
            remap[self.learner[keep]],
            self.item[keep],
            self.correct[keep],
            self.time[keep],
            new_index[self.pair_answer[pk]],
            self.pair_skill[pk],
        )

    def split(
        self, seed: int, salt: str = "", fraction: float = 0.2
    ) -> tuple[AnswerLog, AnswerLog]:
        """(train, test) split by learner (``fraction`` held out, seeded, at least one)."""
        names = sorted(self.learners)
        random.Random(f"{seed}:{salt}").shuffle(names)
        n_test = max(1, round(fraction * len(names))) if len(names) > 1 else 0
        test = set(names[:n_test])
        return (
            self.subset(n for n in self.learners if n not in test),
            self.subset(n for n in self.learners if n in test),
        )

    def learner_bounds(self) -> np.ndarray:
        """Start offsets of each learner's answers, plus the end (learners are contiguous)."""
        return np.searchsorted(self.learner, np.arange(len(self.learners) + 1))

    def skill_sequences(self) -> dict[str, dict[str, list[int]]]:
        """Per skill, per learner, the outcomes in time order (a multi-skill answer counts on
        each of its skills): what BKT is fitted on."""
        out: dict[str, dict[str, list[int]]] = {}
        c = self.correct[self.pair_answer].tolist()
        lr = self.learner[self.pair_answer].tolist()
        for s, lrn, y in zip(self.pair_skill.tolist(), lr, c, strict=True):
            out.setdefault(self.skills[s], {}).setdefault(self.learners[lrn], []).append(int(y))
        return out


# -- reading files ---------------------------------------------------------------------------


def parse_columns(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"learner=user_id,skill=kc,correct=correct"`` -> role -> column (defaults: the role)."""
    mapping = {r: r for r in ROLES}
    if not spec:
        return mapping
    pairs = (
        list(spec.items())
        if isinstance(spec, Mapping)
        else [tuple(p.split("=", 1)) for p in str(spec).split(",") if p.strip()]
    )
    for pair in pairs:
        if len(pair) != 2:
            raise InputError(f"--columns expects ROLE=COLUMN pairs, got {pair!r}")
        role, col = (str(x).strip() for x in pair)
        if role not in ROLES:
            raise InputError(f"--columns: unknown role {role!r}; use {', '.join(ROLES)}")
        mapping[role] = col
    return mapping


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    try:
        f = float(text)
    except ValueError:
        return None
    return bool(f) if f in (0.0, 1.0) else None


def _number_or_time(raw: Any) -> tuple[float, bool] | None:
    """(value, is an ISO time) or None."""
    try:
        return float(raw), False
    except (TypeError, ValueError):
        pass
    try:
        return datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00")).timestamp(), True
    except ValueError:
        return None


def is_three_line(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                return line.strip().isdigit()
    return False


def load_three_line(path: str | Path) -> AnswerLog:
    """The count / skills / responses format (one learner per three lines)."""
    p = Path(path)
    lines = [(n, ln.strip()) for n, ln in enumerate(p.read_text("utf-8").splitlines(), 1)]
    lines = [x for x in lines if x[1]]
    if len(lines) % 3:
        raise AttemptsFileError(
            p,
            None,
            f"has {len(lines)} non-empty lines; the three-line format needs a multiple of 3",
        )
    answers: list[Answer] = []
    for k in range(0, len(lines), 3):
        (n0, count), (n1, skills), (n2, resp) = lines[k : k + 3]
        if not count.isdigit():
            raise AttemptsFileError(p, n0, f"should be the number of answers, got {count[:40]!r}")
        sk = [x.strip() for x in skills.rstrip(",").split(",")]
        rs = [x.strip() for x in resp.rstrip(",").split(",")]
        if not (len(sk) == len(rs) == int(count)):
            raise AttemptsFileError(
                p, n0, f"says {count} answers but has {len(sk)} skills and {len(rs)} responses"
            )
        for j, (s, r) in enumerate(zip(sk, rs, strict=True)):
            ok = _bool(r)
            if ok is None or not s:
                raise AttemptsFileError(
                    p,
                    n2 if ok is None else n1,
                    f"answer {j + 1}: bad skill {s!r} or response {r!r}",
                )
            answers.append(Answer(f"learner-{k // 3}", tuple(s.split("_")), ok))
    if not answers:
        raise AttemptsFileError(p, None, "has no answers")
    return AnswerLog.from_answers(answers)


def _records(p: Path, mapping: dict[str, str]) -> list[tuple[int, Mapping[str, Any]]]:
    rows: list[tuple[int, Mapping[str, Any]]] = []
    if p.suffix.lower() in (".jsonl", ".json"):
        for n, line in enumerate(p.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise AttemptsFileError(p, n, f"is not valid JSON ({e.msg})") from None
            if not isinstance(rec, dict):
                raise AttemptsFileError(p, n, "must be a JSON object")
            rows.append((n, rec))
        return rows
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for role in REQUIRED:
            if mapping[role] not in header:
                raise AttemptsFileError(
                    p,
                    1,
                    f"no column {mapping[role]!r} for the {role} (columns: {', '.join(header)}); "
                    f"map it with --columns {role}=NAME",
                )
        rows.extend((reader.line_num, rec) for rec in reader)
    return rows


def load_answers(path: str | Path, columns: str | Mapping[str, str] | None = None) -> AnswerLog:
    """An attempts file (CSV, JSONL or the three-line format) as an ``AnswerLog``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"attempts file {p} does not exist")
    if is_three_line(p):
        return load_three_line(p)
    mapping = parse_columns(columns)
    keyed: dict[tuple[str, float, str], tuple[float, int, list[str], bool, str, float | None]] = {}
    for i, (line, rec) in enumerate(_records(p, mapping)):
        vals = {}
        for role in REQUIRED:
            v = rec.get(mapping[role])
            if v is None or str(v).strip() == "":
                raise AttemptsFileError(p, line, f"the {role} ({mapping[role]!r}) is missing")
            vals[role] = v
        ok = _bool(vals["correct"])
        if ok is None:
            raise AttemptsFileError(
                p,
                line,
                f"{mapping['correct']!r} must be 0/1 or true/false, got {vals['correct']!r}",
            )
        order, t = float(i), None
        for role in ("order", "time"):
            raw = rec.get(mapping[role])
            if raw is None or str(raw).strip() == "":
                continue
            got = _number_or_time(raw)
            if got is None:
                raise AttemptsFileError(
                    p, line, f"{mapping[role]!r} must be a number or an ISO time, got {raw!r}"
                )
            if role == "order":
                order = got[0]
                t = got[0] if got[1] and t is None else t
            else:
                t = got[0]
        item = str(rec.get(mapping["item"]) or "").strip()
        learner = str(vals["learner"]).strip()
        skills = [s.strip() for s in _SKILL_SEP.split(str(vals["skill"])) if s.strip()]
        has_order = mapping["order"] in rec
        key = (learner, order, item) if has_order else (learner, float(i), "")
        if key in keyed:  # the same answer repeated for another skill
            keyed[key][2].extend(s for s in skills if s not in keyed[key][2])
        else:
            keyed[key] = (order, i, skills, ok, item, t)
    if not keyed:
        raise AttemptsFileError(p, None, "has no attempts")
    ordered = sorted(keyed.items(), key=lambda kv: (kv[0][0], kv[1][0], kv[1][1]))
    return AnswerLog.from_answers(Answer(k[0], tuple(v[2]), v[3], v[4], v[5]) for k, v in ordered)


def answers_from_store(attempts: Sequence[Any]) -> AnswerLog:
    """The store's counted attempts (``tutor.store.records.Attempt``) as an ``AnswerLog``."""
    return AnswerLog.from_answers(
        Answer(
            str(a.learner_id),
            tuple(a.skills),
            bool(a.correct),
            a.item_id,
            datetime.fromisoformat(a.created_at.replace("Z", "+00:00")).timestamp(),
        )
        for a in attempts
        if a.skills
    )
