"""Reading bank files: YAML (with the line number of every value) and JSON Lines, into raw
items and skills that ``tutor.items.check`` then validates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tutor.items.model import FILE_FIELDS, ItemBankError

_TOO_DEEP = "lists or mappings are nested too deeply to be an item bank"
# libyaml when the wheel has it: ~10x faster than the pure-Python loader, and it refuses
# absurdly deep nesting itself instead of recursing (both give the same nodes and marks).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    items: list[Any] = []
    lines: list[_Lines] = []
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
# Files


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
        items, item_lines = _read_jsonl(path, text)
        return _RawFile(path, list(zip(items, item_lines, strict=True)), [], "")
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
