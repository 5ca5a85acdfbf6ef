"""Checking bank entries: one skill or item from its raw mapping (every field validated, and
the item's own answer and accepted forms must grade as correct), and the prerequisite graph.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from tutor.errors import InputError
from tutor.grading import ANSWER_KINDS, AnswerSpec, grade
from tutor.items.model import (
    _ID_RE,
    ITEM_FIELDS,
    MAX_HINTS,
    SKILL_FIELDS,
    Item,
    ItemBankError,
    Skill,
)
from tutor.items.read import _Lines


def _build_skill(d: Any, lines: _Lines, path: Path) -> Skill:
    if not isinstance(d, dict):
        raise ItemBankError(path, lines.line, None, "a skill must be a mapping with id and name")
    for key, line in lines.duplicate_keys():
        raise ItemBankError(path, line, key, "the key appears twice in this skill")
    for key in d:
        if key not in SKILL_FIELDS:
            raise ItemBankError(
                path,
                lines.key_line(str(key)),
                str(key),
                f"unknown skill field; use {', '.join(sorted(SKILL_FIELDS))}",
            )
    sid = d.get("id")
    if not isinstance(sid, str) or not _ID_RE.match(sid):
        raise ItemBankError(
            path,
            lines.key_line("id"),
            "id",
            f"skill id {sid!r} must be letters, digits, '-', '_' or '.'",
        )
    prereq = d.get("prerequisites") or []
    if isinstance(prereq, str):
        prereq = [prereq]
    if not isinstance(prereq, list) or not all(isinstance(p, str) for p in prereq):
        raise ItemBankError(
            path, lines.key_line("prerequisites"), "prerequisites", "must be a list of skill ids"
        )
    name = d.get("name") or sid
    if not isinstance(name, str):
        raise ItemBankError(path, lines.key_line("name"), "name", "must be a string")
    return Skill(sid, name, tuple(prereq), str(d.get("description") or ""))


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # .nan / .inf (YAML), NaN / Infinity (JSON)
    if isinstance(value, (int, float, str)):
        try:
            return str(value).strip()
        except ValueError:  # an integer of more than 4300 digits
            return None
    return None


_Err = Callable[[str | None, str], ItemBankError]


def _build_item(
    d: Any,
    lines: _Lines,
    path: Path,
    skills: Mapping[str, Skill] | None,
    defaults: Mapping[str, Any],
) -> Item:
    if not isinstance(d, dict):
        raise ItemBankError(path, lines.line, None, "an item must be a mapping (id, prompt, ...)")
    iid = d.get("id")

    def err(fld: str | None, msg: str) -> ItemBankError:
        line = lines.key_line(fld) if fld and fld in d else lines.line
        return ItemBankError(path, line, fld, msg, item_id=iid if isinstance(iid, str) else None)

    for key, line in lines.duplicate_keys():
        raise ItemBankError(path, line, key, "the key appears twice in this item", item_id=iid)
    for key in d:
        if key not in ITEM_FIELDS:
            raise err(str(key), f"unknown field; use {', '.join(sorted(ITEM_FIELDS))}")
    if not isinstance(iid, str) or not _ID_RE.match(iid):
        raise err("id", f"id {iid!r} is missing or not letters, digits, '-', '_' or '.'")
    item_skills = _item_skills(d, err, skills)
    prompt = d.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise err("prompt", "the prompt is missing or empty")
    spec = _item_answer(d, err)
    hints = _item_hints(d, err)
    solution = d.get("solution") or ""
    if not isinstance(solution, str):
        raise err("solution", "must be text")
    difficulty = d.get("difficulty", 2)
    if isinstance(difficulty, bool) or not isinstance(difficulty, int) or not 1 <= difficulty <= 5:
        raise err("difficulty", f"must be an integer 1 (easy) to 5 (hard), got {difficulty!r}")
    source = d.get("source", defaults.get("source", ""))
    if not isinstance(source, str):
        raise err("source", "must be text")
    return Item(
        id=iid,
        skills=tuple(item_skills),
        prompt=prompt.strip(),
        answer=spec,
        hints=tuple(h.strip() for h in hints),
        solution=solution.strip(),
        difficulty=difficulty,
        source=source,
        origin=f"{path}:{lines.line}" if lines.line else str(path),
    )


def _item_skills(d: dict[Any, Any], err: _Err, skills: Mapping[str, Skill] | None) -> list[str]:
    """The item's skill ids (``skill`` or ``skills``), each declared when ``skills`` is given."""
    if "skill" in d and "skills" in d:
        raise err("skills", "give either 'skill' or 'skills', not both")
    raw = d.get("skills", d.get("skill"))
    sk_field = "skills" if "skills" in d else "skill"
    if isinstance(raw, str):
        raw = [raw]
    if not raw or not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise err(sk_field, "needs one skill id or a list of skill ids")
    if skills is not None:
        for s in raw:
            if s not in skills:
                known = ", ".join(sorted(skills)) or "none declared"
                raise err(
                    sk_field,
                    f"unknown skill {s!r} (known: {known}); declare it under 'skills:' or fix the id",
                )
    return raw


def _item_answer(d: dict[Any, Any], err: _Err) -> AnswerSpec:
    """The item's answer spec, checked: the checker must accept its own answer and every
    accepted form."""
    if "answer" not in d:
        raise err("answer", "the answer is missing")
    answer_text = _scalar_text(d["answer"])
    if answer_text is None or not answer_text:
        raise err("answer", f"the answer {d['answer']!r} must be text or a number; quote it")
    kind = d.get("type")
    if kind is not None and kind not in ANSWER_KINDS:
        raise err("type", f"unknown answer type {kind!r}; use one of {', '.join(ANSWER_KINDS)}")
    choices = d.get("choices") or []
    if not isinstance(choices, list) or not all(_scalar_text(c) for c in choices):
        raise err("choices", "must be a list of option texts")
    if kind is None:
        try:
            kind = "choice" if choices else AnswerSpec.infer(answer_text).kind
        except InputError as e:
            raise err("answer", str(e)) from None
    spec = _answer_spec(d, err, kind, answer_text, choices)
    if kind != "choice" and choices:
        raise err("choices", f"choices are only for type 'choice', this item is {kind!r}")
    # the checker must accept the item's own answer and every accepted form
    own = grade(spec, answer_text)
    if not own.correct:
        raise err("answer", f"the checker does not accept the answer itself ({own.code})")
    # an accepted form is another way to write the same answer, not a second answer
    lenient = replace(spec, accepted=(), strict_form=False, simplify=False, unit_required=False)
    for a in spec.accepted:
        r = grade(spec, a) if kind in ("text", "choice") else grade(lenient, a)
        if not r.correct:
            raise err("accepted", f"the checker does not accept {a!r} ({r.code})")
    return spec


def _answer_spec(
    d: dict[Any, Any], err: _Err, kind: str, answer_text: str, choices: list[Any]
) -> AnswerSpec:
    """The ``AnswerSpec`` from the item's answer fields (accepted, tolerance, flags, unit, form)."""
    accepted = d.get("accepted") or []
    if isinstance(accepted, (str, int, float)) and not isinstance(accepted, bool):
        accepted = [accepted]
    if not isinstance(accepted, list) or any(_scalar_text(a) is None for a in accepted):
        raise err("accepted", "must be a list of answer texts")
    tolerance = d.get("tolerance", 0.0)
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float))
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        raise err("tolerance", f"must be a finite number >= 0, got {tolerance!r}")
    for flag in ("simplify", "strict_form", "unit_required"):
        if flag in d and not isinstance(d[flag], bool):
            raise err(flag, f"must be true or false, got {d[flag]!r}")
    unit = d.get("unit") or ""
    if not isinstance(unit, str):
        raise err("unit", "must be a unit like cm^2")
    form = d.get("form", "any")
    try:
        return AnswerSpec(
            kind=kind,  # type: ignore[arg-type]
            value=answer_text,
            accepted=tuple(_scalar_text(a) or "" for a in accepted),
            tolerance=float(tolerance),
            unit=unit,
            choices=tuple(_scalar_text(c) or "" for c in choices),
            simplify=bool(d.get("simplify", False)),
            strict_form=bool(d.get("strict_form", False)),
            unit_required=bool(d.get("unit_required", True)),
            form=form,
        )
    except InputError as e:
        fld = "form" if "form" in str(e) and "form" in d else "answer"
        raise err(fld, str(e)) from None


def _item_hints(d: dict[Any, Any], err: _Err) -> list[str]:
    hints = d.get("hints") or []
    if isinstance(hints, str):
        hints = [hints]
    if not isinstance(hints, list) or not all(isinstance(h, str) and h.strip() for h in hints):
        raise err("hints", "must be a list of non-empty hint texts")
    if len(hints) > MAX_HINTS:
        raise err("hints", f"at most {MAX_HINTS} hints, got {len(hints)}")
    return hints


def _check_skill_graph(
    skills: Mapping[str, Skill], where: Mapping[str, tuple[Path, int | None]]
) -> None:
    def fail(sid: str, msg: str) -> ItemBankError:
        path, line = where.get(sid, (Path("<skills>"), None))
        return ItemBankError(path, line, "prerequisites", f"skill {sid!r}: {msg}")

    for s in skills.values():
        for pre in s.prerequisites:
            if pre not in skills:
                raise fail(s.id, f"unknown prerequisite {pre!r}")
            if pre == s.id:
                raise fail(s.id, "a skill cannot be its own prerequisite")
    # Depth-first search with an explicit stack (a chain of thousands of prerequisites would
    # overflow Python's recursion limit): 1 = on the current path, 2 = done.
    state: dict[str, int] = {}
    for root in skills:
        if root in state:
            continue
        path = [root]
        todo = [iter(skills[root].prerequisites)]
        state[root] = 1
        while todo:
            sid = path[-1]
            p = next(todo[-1], None)
            if p is None:
                state[sid] = 2
                path.pop()
                todo.pop()
                continue
            if state.get(p) == 1:
                cycle = " -> ".join([*path[path.index(p) :], p])
                raise fail(sid, f"prerequisites form a cycle: {cycle}")
            if state.get(p) is None:
                state[p] = 1
                path.append(p)
                todo.append(iter(skills[p].prerequisites))
