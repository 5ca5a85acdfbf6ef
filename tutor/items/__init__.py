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

The modules: ``model`` (skills, items, banks, the file's fields, ``ItemBankError``), ``read``
(YAML with line numbers, JSON Lines), ``check`` (validating one skill or item, the prerequisite
graph) and ``load`` (files to a ``Bank``, the shipped sample bank). Import from ``tutor.items``.
"""

from __future__ import annotations

from tutor.items.load import (
    DATA_DIR,
    DEFAULT_ITEMS_DIR,
    DEFAULT_SKILLS_FILE,
    default_bank_paths,
    expand_paths,
    item_from_dict,
    iter_items,
    load_bank,
    load_default_bank,
    load_skills,
)
from tutor.items.model import (
    BANK_SUFFIXES,
    FILE_FIELDS,
    ITEM_FIELDS,
    MAX_HINTS,
    SKILL_FIELDS,
    Bank,
    Item,
    ItemBankError,
    Skill,
)

__all__ = [
    "BANK_SUFFIXES",
    "DATA_DIR",
    "DEFAULT_ITEMS_DIR",
    "DEFAULT_SKILLS_FILE",
    "FILE_FIELDS",
    "ITEM_FIELDS",
    "MAX_HINTS",
    "SKILL_FIELDS",
    "Bank",
    "Item",
    "ItemBankError",
    "Skill",
    "default_bank_paths",
    "expand_paths",
    "item_from_dict",
    "iter_items",
    "load_bank",
    "load_default_bank",
    "load_skills",
]
