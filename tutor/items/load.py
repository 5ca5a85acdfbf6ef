"""Loading banks: files and directories to a validated ``Bank``, the shipped sample bank, and
items from their stored dict form.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tutor.items.check import _build_item, _build_skill, _check_skill_graph
from tutor.items.model import BANK_SUFFIXES, Bank, Item, ItemBankError, Skill
from tutor.items.read import _NoLines, _read_file

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
DEFAULT_SKILLS_FILE = DATA_DIR / "skills.yaml"
DEFAULT_ITEMS_DIR = DATA_DIR / "items"


def item_from_dict(d: Mapping[str, Any], *, origin: str = "") -> Item:
    """Build an item from its bank-file form (no line numbers: for stored items)."""
    return _build_item(dict(d), _NoLines(), Path(origin or "<item>"), None, {})


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
