"""Practice items and skills: the item-bank file format, its loader and its validator.

A bank file is YAML (``.yaml``/``.yml``, also plain ``.json``) or JSON Lines (``.jsonl``, one
item per line). A YAML file is either a list of items or a mapping::

    source: "Written for this project"      # default source of the items below (optional)
    skills:                                  # skill declarations (optional)
      - {id: fractions, name: Fractions, prerequisites: []}
    items:
      - id: frac-add-01
        skills: [fractions]                  # or  skill: fractions
        prompt: "What is 1/4 + 2/4?"
        answer: "3/4"
        type: fraction                       # integer number fraction percent quantity
                                             # expression choice text (inferred when omitted)
        accepted: ["0.75"]                   # other forms that are also right
        hints: ["a pointing question", "a specific hint", "a worked step"]
        solution: "1/4 + 2/4 = 3/4 ..."
        difficulty: 1                        # 1 (easy) .. 5 (hard)

Every problem is reported as ``FILE:LINE: item 'ID' field 'FIELD': what is wrong and the fix``
(:class:`ItemBankError`). Each item's own answer and accepted forms must grade as correct, so a
bank that loads is a bank the checker can grade.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from tutor.errors import InputError
from tutor.grading import ANSWER_KINDS, AnswerSpec, grade

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEFAULT_SKILLS_FILE = DATA_DIR / "skills.yaml"
DEFAULT_ITEMS_DIR = DATA_DIR / "items"
BANK_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$")
ITEM_FIELDS = {
    "id",
    "skill",
    "skills",
    "prompt",
    "answer",
    "type",
    "accepted",
    "tolerance",
    "unit",
    "choices",
    "simplify",
    "strict_form",
    "unit_required",
    "form",
    "hints",
    "solution",
    "difficulty",
    "source",
}
SKILL_FIELDS = {"id", "name", "prerequisites", "description"}
FILE_FIELDS = {"items", "skills", "source"}
MAX_HINTS = 5
_TOO_DEEP = "lists or mappings are nested too deeply to be an item bank"
# libyaml when the wheel has it: ~10x faster than the pure-Python loader, and it refuses
# absurdly deep nesting itself instead of recursing (both give the same nodes and marks).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ItemBankError(InputError):
    """A bank file is malformed; the message names the file, the line and the field."""

    def __init__(
        self,
        path: str | Path,
        line: int | None,
        field: str | None,
        message: str,
        *,
        item_id: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.item_id = item_id
        loc = f"{self.path}:{line}" if line else self.path
        what = f"item {item_id!r} " if item_id else ""
        fld = f"field {field!r}: " if field else ""  # repr: a key may hold a newline
        message = " ".join(str(message).split())  # one line (YAML errors span several)
        super().__init__(f"{loc}: {what}{fld}{message}")


@dataclass(frozen=True)
class Skill:
    """A skill of the course; ``prerequisites`` are skill ids to master first."""

    id: str
    name: str
    prerequisites: tuple[str, ...] = ()
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prerequisites": list(self.prerequisites),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Skill:
        return cls(
            id=d["id"],
            name=d.get("name") or d["id"],
            prerequisites=tuple(d.get("prerequisites") or ()),
            description=d.get("description") or "",
        )


@dataclass(frozen=True)
class Item:
    """One practice item. ``answer`` is what the checker grades against (``tutor.grading``)."""

    id: str
    skills: tuple[str, ...]
    prompt: str
    answer: AnswerSpec
    hints: tuple[str, ...] = ()
    solution: str = ""
    difficulty: int = 2
    source: str = ""
    origin: str = field(default="", compare=False)  # "file:line" it was loaded from

    @property
    def skill(self) -> str:
        """The primary skill (the first listed)."""
        return self.skills[0]

    @property
    def kind(self) -> str:
        return self.answer.kind

    def render(self) -> str:
        """The prompt as the learner sees it, with lettered options for multiple choice."""
        if self.answer.kind != "choice":
            return self.prompt
        options = "\n".join(f"{chr(ord('A') + i)}) {c}" for i, c in enumerate(self.answer.choices))
        return f"{self.prompt}\n{options}"

    def to_dict(self) -> dict[str, Any]:
        """The item in bank-file form (what ``item_from_dict`` reads back)."""
        a = self.answer
        d: dict[str, Any] = {
            "id": self.id,
            "skills": list(self.skills),
            "prompt": self.prompt,
            "answer": a.value,
            "type": a.kind,
        }
        if a.accepted:
            d["accepted"] = list(a.accepted)
        if a.tolerance:
            d["tolerance"] = a.tolerance
        if a.unit:
            d["unit"] = a.unit
        if a.choices:
            d["choices"] = list(a.choices)
        if a.simplify:
            d["simplify"] = True
        if a.strict_form:
            d["strict_form"] = True
        if not a.unit_required:
            d["unit_required"] = False
        if a.form != "any":
            d["form"] = a.form
        d["hints"] = list(self.hints)
        d["solution"] = self.solution
        d["difficulty"] = self.difficulty
        d["source"] = self.source
        return d


def item_from_dict(d: Mapping[str, Any], *, origin: str = "") -> Item:
    """Build an item from its bank-file form (no line numbers: for stored items)."""
    return _build_item(dict(d), _NoLines(), Path(origin or "<item>"), None, {})


@dataclass
class Bank:
    """Skills and items loaded from one or more files, in file order."""

    skills: dict[str, Skill] = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)

    def item(self, item_id: str) -> Item | None:
        for it in self.items:
            if it.id == item_id:
                return it
        return None

    def for_skill(self, skill: str) -> list[Item]:
        return [it for it in self.items if skill in it.skills]

    def skill_ids(self) -> list[str]:
        return list(self.skills)


# --------------------------------------------------------------------------------------------
# Line numbers for YAML values


class _Lines:
    """Line numbers (1-based) that mirror a YAML document: ``lines.get("items")[3].line``."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.node = node
        self.line = node.start_mark.line + 1 if node is not None else None

    def get(self, key: str) -> _Lines:
        if isinstance(self.node, yaml.MappingNode):
            for k, v in self.node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    return _Lines(v)
        return _Lines(None) if self.node is None else _Lines(self.node)

    def key_line(self, key: str) -> int | None:
        if isinstance(self.node, yaml.MappingNode):
            for k, _v in self.node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    return k.start_mark.line + 1
        return self.line

    def __getitem__(self, i: int) -> _Lines:
        if isinstance(self.node, yaml.SequenceNode) and i < len(self.node.value):
            return _Lines(self.node.value[i])
        return _Lines(self.node)

    def duplicate_keys(self) -> list[tuple[str, int]]:
        seen: set[str] = set()
        out = []
        if isinstance(self.node, yaml.MappingNode):
            for k, _v in self.node.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen:
                        out.append((k.value, k.start_mark.line + 1))
                    seen.add(k.value)
        return out


class _FixedLines(_Lines):
    """Every value on one line (a JSON Lines record)."""

    def __init__(self, line: int | None) -> None:
        self.node = None
        self.line = line

    def get(self, key: str) -> _Lines:
        return self

    def key_line(self, key: str) -> int | None:
        return self.line

    def __getitem__(self, i: int) -> _Lines:
        return self

    def duplicate_keys(self) -> list[tuple[str, int]]:
        return []


class _NoLines(_FixedLines):
    def __init__(self) -> None:
        super().__init__(None)


def _read_yaml(path: Path, text: str) -> tuple[Any, _Lines]:
    try:
        loader = _LOADER(text)
    except yaml.YAMLError as e:  # a control character the YAML reader refuses (NUL, ...)
        raise ItemBankError(path, None, None, f"invalid YAML: {e}") from None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        # "expected ']' but got <stream end>": the line where the construct began helps more
        if e.context_mark is not None and (mark is None or mark.index >= len(text.rstrip())):
            mark = e.context_mark
        line = mark.line + 1 if mark is not None else None
        what = f"{e.context}: {e.problem}" if e.context else (e.problem or str(e))
        raise ItemBankError(path, line, None, f"invalid YAML: {what}") from None
    except yaml.YAMLError as e:
        raise ItemBankError(path, None, None, f"invalid YAML: {e}") from None
    except RecursionError:
        raise ItemBankError(path, None, None, _TOO_DEEP) from None
    except ValueError as e:  # an integer of more than 4300 digits
        raise ItemBankError(path, None, None, f"invalid YAML: {e}") from None
    finally:
        loader.dispose()
    return data, _Lines(node)


def _read_jsonl(path: Path, text: str) -> tuple[list[Any], list[_Lines]]:
    items, lines = [], []
    for i, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            items.append(json.loads(raw))
        except json.JSONDecodeError as e:
            raise ItemBankError(
                path, i, None, f"invalid JSON: {e.msg} (column {e.colno})"
            ) from None
        except RecursionError:
            raise ItemBankError(path, i, None, _TOO_DEEP) from None
        except ValueError as e:  # an integer of more than 4300 digits
            raise ItemBankError(path, i, None, f"invalid JSON: {e}") from None
        lines.append(_FixedLines(i))
    return items, lines


# --------------------------------------------------------------------------------------------
# Loading


@dataclass
class _RawFile:
    path: Path
    items: list[tuple[Any, _Lines]]
    skills: list[tuple[Any, _Lines]]
    source: str


def _read_file(path: Path) -> _RawFile:
    if not path.is_file():
        raise ItemBankError(path, None, None, "no such file; pass an existing .yaml or .jsonl file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ItemBankError(path, None, None, f"not UTF-8 text ({e.reason})") from None
    if path.suffix.lower() == ".jsonl":
        items, lines = _read_jsonl(path, text)
        return _RawFile(path, list(zip(items, lines, strict=True)), [], "")
    data, lines = _read_yaml(path, text)
    if data is None:
        return _RawFile(path, [], [], "")
    if isinstance(data, list):
        return _RawFile(path, [(d, lines[i]) for i, d in enumerate(data)], [], "")
    if not isinstance(data, dict):
        raise ItemBankError(
            path, lines.line, None, "expected a list of items or a mapping with 'items:'"
        )
    for key, line in lines.duplicate_keys():
        raise ItemBankError(path, line, key, "the key appears twice in this mapping")
    for key in data:
        if key not in FILE_FIELDS:
            raise ItemBankError(
                path,
                lines.key_line(str(key)),
                str(key),
                f"unknown top-level key; use {', '.join(sorted(FILE_FIELDS))}",
            )
    raw_items = data.get("items") or []
    raw_skills = data.get("skills") or []
    for name, value in (("items", raw_items), ("skills", raw_skills)):
        if not isinstance(value, list):
            raise ItemBankError(path, lines.key_line(name), name, "must be a list")
    source = data.get("source") or ""
    if not isinstance(source, str):
        raise ItemBankError(path, lines.key_line("source"), "source", "must be a string")
    il, sl = lines.get("items"), lines.get("skills")
    return _RawFile(
        path,
        [(d, il[i]) for i, d in enumerate(raw_items)],
        [(d, sl[i]) for i, d in enumerate(raw_skills)],
        source,
    )


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
    # skills
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
    prompt = d.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise err("prompt", "the prompt is missing or empty")
    # answer
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
        spec = AnswerSpec(
            kind=kind,
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
    hints = d.get("hints") or []
    if isinstance(hints, str):
        hints = [hints]
    if not isinstance(hints, list) or not all(isinstance(h, str) and h.strip() for h in hints):
        raise err("hints", "must be a list of non-empty hint texts")
    if len(hints) > MAX_HINTS:
        raise err("hints", f"at most {MAX_HINTS} hints, got {len(hints)}")
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
        skills=tuple(raw),
        prompt=prompt.strip(),
        answer=spec,
        hints=tuple(h.strip() for h in hints),
        solution=solution.strip(),
        difficulty=difficulty,
        source=source,
        origin=f"{path}:{lines.line}" if lines.line else str(path),
    )


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; a directory stands for its bank files (sorted, not recursive)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in BANK_SUFFIXES))
        else:
            out.append(p)
    return out


def load_bank(
    paths: str | Path | Sequence[str | Path],
    *,
    known_skills: Mapping[str, Skill] | Iterable[Skill] | None = None,
    require_declared_skills: bool = True,
) -> Bank:
    """Load and validate bank files (skills and items).

    Items may use skills declared in any of the files or in ``known_skills`` (for example the
    skills already stored for the collection). With ``require_declared_skills=False`` an
    undeclared skill id is accepted and declared with its id as its name. Raises
    :class:`ItemBankError` naming the file, line and field of the first problem.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = [_read_file(p) for p in expand_paths(paths)]
    skills: dict[str, Skill] = {}
    if known_skills is not None:
        ks = known_skills.values() if isinstance(known_skills, Mapping) else known_skills
        skills.update({s.id: s for s in ks})
    skill_where: dict[str, tuple[Path, int | None]] = {}
    for f in files:
        for d, lines in f.skills:
            s = _build_skill(d, lines, f.path)
            if s.id in skill_where:
                p0, l0 = skill_where[s.id]
                raise ItemBankError(
                    f.path,
                    lines.key_line("id"),
                    "id",
                    f"skill {s.id!r} is already declared at {p0}:{l0}",
                )
            skill_where[s.id] = (f.path, lines.line)
            skills[s.id] = s
    if not require_declared_skills:
        for f in files:
            for d, _lines in f.items:
                if isinstance(d, dict):
                    raw = d.get("skills", d.get("skill")) or []
                    if isinstance(raw, str):
                        raw = [raw]
                    if not isinstance(raw, list):
                        continue  # reported by _build_item, with the file and line
                    for sid in raw:
                        if isinstance(sid, str) and sid not in skills:
                            skills[sid] = Skill(sid, sid)
    _check_skill_graph(skills, skill_where)
    bank = Bank(skills=skills)
    where: dict[str, str] = {}
    for f in files:
        for d, lines in f.items:
            item = _build_item(d, lines, f.path, skills, {"source": f.source})
            if item.id in where:
                raise ItemBankError(
                    f.path,
                    lines.key_line("id"),
                    "id",
                    f"duplicate item id {item.id!r} (first at {where[item.id]}); ids must be unique",
                    item_id=item.id,
                )
            where[item.id] = item.origin
            bank.items.append(item)
    return bank


def _check_skill_graph(
    skills: Mapping[str, Skill], where: Mapping[str, tuple[Path, int | None]]
) -> None:
    def fail(sid: str, msg: str) -> ItemBankError:
        path, line = where.get(sid, (Path("<skills>"), None))
        return ItemBankError(path, line, "prerequisites", f"skill {sid!r}: {msg}")

    for s in skills.values():
        for p in s.prerequisites:
            if p not in skills:
                raise fail(s.id, f"unknown prerequisite {p!r}")
            if p == s.id:
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


def load_skills(path: str | Path = DEFAULT_SKILLS_FILE) -> dict[str, Skill]:
    """The skills declared in one file (for example ``data/skills.yaml``)."""
    return load_bank([path]).skills


def default_bank_paths() -> list[Path]:
    """The bank shipped with the project: ``data/skills.yaml`` and ``data/items/``."""
    paths: list[Path] = []
    if DEFAULT_SKILLS_FILE.is_file():
        paths.append(DEFAULT_SKILLS_FILE)
    if DEFAULT_ITEMS_DIR.is_dir():
        paths.append(DEFAULT_ITEMS_DIR)
    return paths


def load_default_bank() -> Bank:
    """The shipped sample bank (empty when the data dir is not there, e.g. in a wheel)."""
    paths = default_bank_paths()
    return load_bank(paths) if paths else Bank()


def iter_items(banks: Iterable[Bank]) -> Iterator[Item]:
    for b in banks:
        yield from b.items
