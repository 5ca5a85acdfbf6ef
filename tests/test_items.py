"""The item-bank format: the shipped bank, and malformed files reported by file, line and field."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tutor.grading import grade
from tutor.items import (
    DEFAULT_ITEMS_DIR,
    DEFAULT_SKILLS_FILE,
    ItemBankError,
    item_from_dict,
    load_bank,
    load_default_bank,
    load_skills,
)

COURSE_SKILLS = [
    "fractions",
    "decimals",
    "ratios-percents",
    "order-of-operations",
    "linear-equations",
    "area-perimeter",
    "water-cycle",
    "photosynthesis",
]


# --------------------------------------------------------------------------------------------
# The shipped bank


@pytest.fixture(scope="module")
def bank():  # type: ignore[no-untyped-def]
    return load_default_bank()


def test_shipped_skills_match_the_sample_course() -> None:
    skills = load_skills(DEFAULT_SKILLS_FILE)
    assert list(skills) == COURSE_SKILLS
    assert set(skills["ratios-percents"].prerequisites) == {"fractions", "decimals"}
    assert skills["linear-equations"].prerequisites == ("order-of-operations",)
    assert all(s.name for s in skills.values())


def test_shipped_bank_size_mix_and_pedagogy(bank) -> None:  # type: ignore[no-untyped-def]
    assert len(bank.items) >= 60
    per_skill = Counter(s for it in bank.items for s in it.skills)
    assert set(per_skill) == set(COURSE_SKILLS)
    assert min(per_skill.values()) >= 6
    kinds = Counter(it.kind for it in bank.items)
    assert {
        "integer",
        "number",
        "fraction",
        "percent",
        "quantity",
        "expression",
        "choice",
        "text",
    } <= set(kinds)
    for skill in ("water-cycle", "photosynthesis"):
        assert any(it.kind == "choice" for it in bank.for_skill(skill)), skill
    assert len({it.id for it in bank.items}) == len(bank.items)
    for it in bank.items:
        assert 2 <= len(it.hints) <= 3, it.id
        assert it.solution, it.id
        assert 1 <= it.difficulty <= 5
        assert it.source
    # difficulties spread so that next-item selection has something to match
    assert len({it.difficulty for it in bank.items}) >= 4


def test_every_shipped_item_grades_its_own_answer_and_rejects_a_wrong_one(bank) -> None:  # type: ignore[no-untyped-def]
    for it in bank.items:
        assert grade(it, it.answer.value).correct, it.id
        assert not grade(it, "zebra crossing").correct, it.id


def test_items_round_trip_through_their_dict_form(bank) -> None:  # type: ignore[no-untyped-def]
    for it in bank.items:
        again = item_from_dict(it.to_dict())
        assert again == it
        assert json.loads(json.dumps(it.to_dict())) == it.to_dict()


def test_render_lists_the_options_of_a_choice_item(bank) -> None:  # type: ignore[no-untyped-def]
    it = bank.item("wc-01")
    assert it is not None
    assert it.render().splitlines()[1:] == [
        "A) evaporation",
        "B) condensation",
        "C) precipitation",
        "D) collection",
    ]


def test_directories_and_jsonl_load(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"id": "j1", "skill": "fractions", "prompt": "1/2 + 1/2?", "answer": "1"})
        + "\n\n"
        + json.dumps({"id": "j2", "skill": "decimals", "prompt": "0.1 + 0.2?", "answer": 0.3})
        + "\n",
        encoding="utf-8",
    )
    b = load_bank([DEFAULT_SKILLS_FILE, tmp_path])
    assert [it.id for it in b.items] == ["j1", "j2"]
    assert b.item("j2").kind == "number"  # type: ignore[union-attr]
    assert len(load_bank([DEFAULT_SKILLS_FILE, DEFAULT_ITEMS_DIR]).items) >= 60


# --------------------------------------------------------------------------------------------
# Errors name the file, the line and the field

HEADER = """skills:
  - {id: fractions, name: Fractions}
items:
"""
GOOD = """  - id: ok-1
    skill: fractions
    prompt: "1/4 + 1/4?"
    answer: "1/2"
"""


def _write(tmp_path: Path, body: str, name: str = "bank.yaml") -> Path:
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


def _error(path: Path | list[Path], **kw: object) -> ItemBankError:
    with pytest.raises(ItemBankError) as e:
        load_bank(path, **kw)  # type: ignore[arg-type]
    return e.value


@pytest.mark.parametrize(
    ("body", "line", "field", "words"),
    [
        # YAML syntax error: the line of the problem
        (HEADER + GOOD + "  - id: bad\n    prompt: [unclosed\n", 9, None, "invalid YAML"),
        # an unknown field (a typo)
        (
            HEADER + GOOD + "  - id: x-1\n    skill: fractions\n    promt: Hi\n    answer: '1'\n",
            10,
            "promt",
            "unknown field",
        ),
        # no answer
        (
            HEADER + GOOD + "  - id: x-2\n    skill: fractions\n    prompt: Hi\n",
            8,
            "answer",
            "missing",
        ),
        # the answer cannot be read as its type
        (
            HEADER
            + GOOD
            + "  - id: x-3\n    skill: fractions\n    prompt: Hi\n    answer: 'a half-ish'\n    type: fraction\n",
            11,
            "answer",
            "cannot read",
        ),
        # an integer item whose answer is not an integer
        (
            HEADER
            + GOOD
            + "  - id: x-4\n    skill: fractions\n    prompt: Hi\n    answer: '2.5'\n    type: integer\n",
            11,
            "answer",
            "not an integer",
        ),
        # an accepted form the checker does not accept
        (
            HEADER
            + GOOD
            + "  - id: x-5\n    skill: fractions\n    prompt: Hi\n    answer: '1/2'\n    accepted: ['0.6']\n",
            12,
            "accepted",
            "does not accept",
        ),
        # difficulty out of range
        (
            HEADER
            + GOOD
            + "  - id: x-6\n    skill: fractions\n    prompt: Hi\n    answer: '1'\n    difficulty: 9\n",
            12,
            "difficulty",
            "1 (easy) to 5",
        ),
        # unknown skill
        (
            HEADER + GOOD + "  - id: x-7\n    skill: fracions\n    prompt: Hi\n    answer: '1'\n",
            9,
            "skill",
            "unknown skill 'fracions'",
        ),
        # duplicate id: the line of the second
        (HEADER + GOOD + GOOD, 8, "id", "duplicate item id"),
        # a choice answer that is not one of the choices
        (
            HEADER
            + GOOD
            + "  - id: x-8\n    skill: fractions\n    prompt: Hi\n    answer: E\n    type: choice\n    choices: [a, b]\n",
            11,
            "answer",
            "names no choice",
        ),
        # a key given twice in one item
        (
            HEADER
            + GOOD
            + "  - id: x-9\n    skill: fractions\n    prompt: Hi\n    prompt: Ho\n    answer: '1'\n",
            11,
            "prompt",
            "twice",
        ),
        # a boolean where an answer is expected (YAML reads `yes` as true)
        (
            HEADER + GOOD + "  - id: x-10\n    skill: fractions\n    prompt: Hi\n    answer: yes\n",
            11,
            "answer",
            "quote it",
        ),
        # hints must be a list of texts
        (
            HEADER
            + GOOD
            + "  - id: x-11\n    skill: fractions\n    prompt: Hi\n    answer: '1'\n    hints: [{a: b}]\n",
            12,
            "hints",
            "hint texts",
        ),
        # an unknown top-level key
        ("skils: []\n" + "items:\n" + GOOD, 1, "skils", "unknown top-level key"),
        # a prerequisite cycle
        (
            "skills:\n  - {id: a, prerequisites: [b]}\n  - {id: b, prerequisites: [a]}\n",
            None,
            "prerequisites",
            "cycle",
        ),
    ],
)
def test_malformed_yaml_names_file_line_and_field(
    tmp_path: Path, body: str, line: int | None, field: str | None, words: str
) -> None:
    p = _write(tmp_path, body)
    e = _error(p)
    assert e.path == str(p)
    if line is not None:
        assert e.line == line, str(e)
        assert str(e).startswith(f"{p}:{line}: ")
    assert e.field == field, str(e)
    if field:
        assert f"field '{field}'" in str(e)
    assert words in str(e)


def test_malformed_jsonl_names_the_line(tmp_path: Path) -> None:
    good = json.dumps({"id": "j1", "skill": "fractions", "prompt": "Hi", "answer": "1"})
    p = _write(tmp_path, good + "\n" + good.replace("j1", "j2") + "\n{not json\n", "b.jsonl")
    e = _error([DEFAULT_SKILLS_FILE, p])
    assert (e.path, e.line, e.field) == (str(p), 3, None)
    assert "invalid JSON" in str(e)
    bad_field = json.dumps(
        {"id": "j3", "skill": "fractions", "prompt": "Hi", "answer": "1", "difficulty": "hard"}
    )
    p.write_text(good + "\n" + bad_field + "\n", encoding="utf-8")
    e = _error([DEFAULT_SKILLS_FILE, p])
    assert (e.line, e.field, e.item_id) == (2, "difficulty", "j3")


def test_missing_file_and_undeclared_skills(tmp_path: Path) -> None:
    e = _error(tmp_path / "nope.yaml")
    assert "no such file" in str(e)
    p = _write(tmp_path, "items:\n" + GOOD)
    assert "unknown skill" in str(_error(p))
    # skills declared elsewhere (another file, or stored for the collection) are fine
    assert len(load_bank([DEFAULT_SKILLS_FILE, p]).items) == 1
    assert len(load_bank(p, known_skills=load_skills(DEFAULT_SKILLS_FILE)).items) == 1
    assert load_bank(p, require_declared_skills=False).skills["fractions"].name == "fractions"
