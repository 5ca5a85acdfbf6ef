"""The explain key-fact suite (``evals.keyfacts``): the question set, the scorer on answers where
it must say yes and where it must say no, and the suite through ``run_eval`` with a scripted
model (resume, sampling per kind, a missing corpus)."""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from evals import keyfacts as K
from evals.api import run_eval
from evals.datasets import DatasetError
from knowledge_base.testing import HashEmbedder
from tests.test_eval_run import config, opts  # noqa: F401  (config is a fixture)
from tutor.testing.fake_lm import ScriptedGenerator

ROOTS = {"course": K.CORPORA["course"][1], "openstax": K.CORPORA["openstax"][1]}


def item(**kw) -> K.KeyFact:
    base = dict(
        id="t1",
        question="What is 1/2 + 1/3?",
        corpus="course",
        covered=True,
        document="fractions.md",
        must=(r"\b5/6\b",),
        must_not=(r"(=|is|equals|get) 2/5\b",),
    )
    base.update(kw)
    return K.KeyFact(**base)  # type: ignore[arg-type]


# -- the question set -----------------------------------------------------------------------------


def test_the_set_has_100_questions_15_out_of_course_over_both_corpora() -> None:
    items = K.load_keyfacts(K.DEFAULT_KEYFACTS)
    assert len(items) >= 100
    assert len({i.id for i in items}) == len(items)
    kinds = Counter((i.corpus, i.covered) for i in items)
    assert sum(n for (_, covered), n in kinds.items() if not covered) >= 15
    assert all(kinds[(c, True)] >= 30 and kinds[(c, False)] >= 5 for c in ("course", "openstax"))
    for i in items:
        if not i.covered:
            assert i.must_not, f"{i.id}: an out-of-course question names made-up content"


def test_every_key_fact_is_in_its_document(shared_data: Path) -> None:
    """Each in-course 'must' pattern matches the document the question is about, and no
    'must_not' does (the course does not state the misconception)."""
    for i in K.load_keyfacts(K.DEFAULT_KEYFACTS):
        if not i.covered:
            continue
        text = (ROOTS[i.corpus] / i.document).read_text(encoding="utf-8")
        assert all(re.search(p, text, re.I) for p in i.must), i.id
        assert not any(re.search(p, text, re.I) for p in i.must_not), i.id


def test_out_of_course_questions_are_not_in_their_corpus(shared_data: Path) -> None:
    words = {"What is a logarithm?": "logarithm", "What is the water cycle?": "water cycle"}
    for i in K.load_keyfacts(K.DEFAULT_KEYFACTS):
        if i.covered or i.question not in words:
            continue
        for f in ROOTS[i.corpus].rglob("*"):
            if f.suffix in (".md", ".html") and f.name != "README.md":
                assert words[i.question] not in f.read_text(encoding="utf-8").lower(), f


@pytest.mark.parametrize(
    "line, field",
    [
        ({"id": "a", "question": "q", "corpus": "course", "covered": True, "must": ["("]}, "must"),
        ({"id": "a", "question": "q", "corpus": "mars", "covered": True, "must": ["x"]}, "corpus"),
        ({"id": "a", "question": "q", "corpus": "course", "covered": "yes"}, "covered"),
        ({"id": "a", "question": "q", "corpus": "course", "covered": True, "must": []}, "must"),
        ({"id": "a", "question": "", "corpus": "course", "covered": False}, "question"),
    ],
)
def test_bad_records_name_line_and_field(tmp_path: Path, line: dict, field: str) -> None:
    good = {"id": "g", "question": "q", "corpus": "course", "covered": False, "must_not": ["x"]}
    p = tmp_path / "kf.jsonl"
    p.write_text(json.dumps(good) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(DatasetError) as e:
        K.load_keyfacts(p)
    assert e.value.line == 2 and e.value.field == field


# -- the scorer -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Your course material doesn't cover this, so I have no source to cite.",
        "The course does not cover logarithms.",
        "That topic is not covered in your notes.",
        "Sorry, this isn't in your course material.",
        "I can't find anything about that in the passages.",
        "Your notes don't mention logarithms.",
    ],
)
def test_says_not_covered(text: str) -> None:
    assert K.says_not_covered(text)


@pytest.mark.parametrize(
    "text",
    [
        "A logarithm is the inverse of an exponent.",
        "The course covers fractions in detail.",
        "Zero does not change the value of a sum.",
        "",
    ],
)
def test_not_a_not_covered_notice(text: str) -> None:
    assert not K.says_not_covered(text)


def test_the_agents_notice_counts_as_not_covered() -> None:
    from tutor.explain import NOT_COVERED_REPLY as NOT_COVERED

    assert K.says_not_covered(NOT_COVERED)


@pytest.mark.parametrize(
    "answer, correct",
    [
        ("To add them, use the LCD 6: 3/6 + 2/6 = 5/6 [1].", True),
        ("1/2 + 1/3 = 2/5.", False),  # the misconception
        ("Add the numerators and denominators: you get 2/5, not 5/6.", False),
        ("First find a common denominator.", False),  # the key fact is missing
        ("Your course material doesn't cover this. It is 5/6.", False),  # said not covered
        ("", False),
    ],
)
def test_in_course_scoring(answer: str, correct: bool) -> None:
    assert K.score_keyfact(item(), answer)["correct"] is correct


def test_every_must_pattern_is_needed() -> None:
    it = item(must=(r"parenthes", r"exponent"), must_not=())
    assert K.score_keyfact(it, "Parentheses, then exponents.")["correct"]
    s = K.score_keyfact(it, "Parentheses first.")
    assert not s["correct"] and s["missing"] == [r"exponent"]


@pytest.mark.parametrize(
    "answer, correct",
    [
        ("Your course material doesn't cover this, so I have no source to cite.", True),
        ("The course does not cover logarithms. What made you curious about them?", True),
        # the disclaimer, then an answer anyway: made up
        (
            "Your course material doesn't cover this. A logarithm is the inverse of an exponent.",
            False,
        ),
        ("A logarithm tells you the exponent.", False),  # an answer with no disclaimer
        ("Fractions name a part of a whole [1].", False),  # unrelated passages as an answer
        # the disclaimer, then the topic in other words than the must_not list
        ("Your course material doesn't cover this. Logarithms are a beautiful science.", False),
        ("The course does not cover this. Ask your teacher about logarithms.", True),
        ("Your course material doesn't cover this. Would you like to review exponents?", True),
    ],
)
def test_out_of_course_scoring(answer: str, correct: bool) -> None:
    it = item(
        question="What is a logarithm?",
        covered=False,
        must=(),
        must_not=(r"logarithm\w* (is|are|of|tells)|inverse of (an )?exponent",),
    )
    assert K.score_keyfact(it, answer)["correct"] is correct


def test_module_does_not_import_what_the_agent_checks_with() -> None:
    tree = ast.parse(Path(K.__file__).read_text(encoding="utf-8"))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + [
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    ]
    assert "evals.tutors" in imported, "the import reader found nothing: it is broken"
    assert not [
        m for m in imported if m.startswith(("tutor.grading", "tutor.guard", "tutor.verify"))
    ]
    assert "tutor.agent" not in imported


# -- through the suite ------------------------------------------------------------------------------

QUESTIONS = [
    {
        "id": "a",
        "question": "What is 1/2 + 1/3?",
        "corpus": "course",
        "covered": True,
        "document": "fractions.md",
        "must": [r"\b5/6\b"],
        "must_not": [r"(=|is|equals|get) 2/5\b"],
    },
    {
        "id": "b",
        "question": "What is 3 + 4 × 2?",
        "corpus": "course",
        "covered": True,
        "document": "order-of-operations.md",
        "must": [r"\b11\b"],
        "must_not": [],
    },
    {
        "id": "c",
        "question": "What is a logarithm?",
        "corpus": "course",
        "covered": False,
        "document": "",
        "must": [],
        "must_not": [r"logarithm\w* (is|are|of|tells)|inverse of (an )?exponent"],
    },
    {
        "id": "d",
        "question": "What is the SI base unit of mass?",
        "corpus": "openstax",
        "covered": True,
        "document": "chemistry-2e/ch01-04-measurements.md",
        "must": [r"kilogram"],
        "must_not": [],
    },
]


def student_question(messages: list[dict]) -> str:
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


def answers(messages: list[dict]) -> str:
    q = student_question(messages)
    if "1/2 + 1/3" in q:
        return "The sum is 5/6."
    if "logarithm" in q:
        return "A logarithm is the inverse of an exponent."
    if "mass" in q:
        return "Mass is measured in kilograms."
    return "It is 14."


def test_keyfacts_suite_scores_and_resumes(tmp_path: Path, config, monkeypatch) -> None:  # noqa: F811
    qs = tmp_path / "kf.jsonl"
    qs.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    monkeypatch.setitem(K.CORPORA, "openstax", (tmp_path / "none.jsonl", tmp_path / "missing"))
    gen = ScriptedGenerator(answers)
    o = opts(tmp_path / "run", qs, suites=("keyfacts",), keyfacts=str(qs), keyfacts_limit=0)
    rep = run_eval(o, config, generator=gen, embedder=HashEmbedder())
    suite = rep["suites"]["keyfacts"]
    recs = {r["id"]: r for r in rep["items"]["keyfacts"]}
    assert set(recs) == {"a", "b", "c"}  # d: its corpus is missing
    assert "openstax" in suite["skipped"]
    by_id = {q["id"]: q for q in QUESTIONS}
    for r in recs.values():
        assert r["mode"] == "explain"
        q = by_id[r["id"]]
        it = item(**{k: tuple(v) if isinstance(v, list) else v for k, v in q.items()})
        assert r["correct"] == K.score_keyfact(it, r["answer"])["correct"]
    s = suite["summary"]["all"]
    inside = [recs["a"]["correct"], recs["b"]["correct"]]
    assert s["in_course_correct"] == {
        "rate": sum(inside) / 2,
        "k": sum(inside),
        "n": 2,
    }
    # the model's "It is 14." is never shown: the agent works 3 + 4 × 2 out itself
    assert recs["b"]["correct"] is True and "It is 14" not in recs["b"]["answer"]
    assert "Worked out: 3 + 4 × 2 = 11." in recs["b"]["answer"]
    assert s["out_of_course_honest"]["n"] == 1
    assert s["out_of_course_made_up"]["k"] == 1 - s["out_of_course_honest"]["k"]
    assert rep["metrics"]["keyfacts/in_course_correct"]["higher_is_better"] is True
    assert rep["metrics"]["keyfacts/out_of_course_made_up"]["higher_is_better"] is False
    assert rep["metrics"]["keyfacts/course/in_course_correct"]["value"] == sum(inside) / 2
    assert suite["tables"][0]["title"] == "Explain key-fact correctness"
    calls = len(gen.calls)
    rep2 = run_eval(o, config, generator=gen, embedder=HashEmbedder())
    assert len(gen.calls) == calls  # resumed: nothing generated twice
    assert rep2["suites"]["keyfacts"]["summary"] == suite["summary"]


def test_keyfacts_limit_samples_each_kind(tmp_path: Path, config) -> None:  # noqa: F811
    qs = tmp_path / "kf.jsonl"
    qs.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS[:3]))
    o = opts(tmp_path / "run", qs, suites=("keyfacts",), keyfacts=str(qs), keyfacts_limit=1)
    rep = run_eval(o, config, generator=ScriptedGenerator(answers), embedder=HashEmbedder())
    recs = rep["items"]["keyfacts"]
    assert sorted(r["covered"] for r in recs) == [False, True]
