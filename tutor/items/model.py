"""The item-bank model: skills, items, banks, the fields a bank file may use, and
``ItemBankError`` (the error that names the file, line, item and field of a problem).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tutor.errors import InputError
from tutor.grading import AnswerSpec

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
