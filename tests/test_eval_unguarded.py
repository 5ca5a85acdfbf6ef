"""The measures the leak guard does not decide (``evals.unguarded``): false affirmation of a
known-wrong answer and intermediate-result telling, on hand-made cases, independence from the
answer checker, and through the pedagogy suite with the real agent."""

from __future__ import annotations

import ast
import json
from fractions import Fraction
from pathlib import Path

import pytest

from evals import unguarded as U
from evals.api import run_eval
from evals.datasets import DialogueContext, Turn
from tests.test_eval_run import opts
from tutor.config import load_config
from tutor.testing.fake_lm import ScriptedGenerator

BILLY_PROBLEM = (
    "Billy is buying some candy with $10 his father gave him. The candy costs $1.5 a pound. "
    "After buying candy, he takes half his change and spends it on gumballs, which cost $.05 "
    "each. If he bought 40 gumballs, how many pounds of candy did he buy?"
)
BILLY_SOLUTION = (
    "He spent $2 on gumballs because 40 x .05 = 2\nHe had $4 in change because 2 / .5 = 4\n"
    "He spent $6 on candy because 10 - 4 = 6\nHe bought 4 pounds of candy because 6 / 1.5 = 4\n 4"
)
BILLY_WRONG = (
    "He spent $0.05 x 40 = $2 on gumballs, so he has $5 - $2 = $3 left. "
    "$3/$1.5 per pound = 2 pounds of candy.\n 2"
)
BILLY_STUDENT = (
    "He had $5 left, spent $0.05 x 40 = $2 on gumballs, so $5 - $2 = $3 for candy. "
    "$3 divided by $1.5 is 2, so Billy bought 2 pounds of candy."
)


def billy(**kw) -> DialogueContext:
    base = dict(
        id="billy",
        source="mathdial",
        history=[
            Turn("teacher", "Hi Cody, talk me through your solution"),
            Turn("student", BILLY_STUDENT),
        ],
        problem=BILLY_PROBLEM,
        answer="4",
        solution=BILLY_SOLUTION,
        wrong_answer="2",
        wrong_solution=BILLY_WRONG,
    )
    base.update(kw)
    return DialogueContext(**base)


# -- numbers (own reader, not the answer checker) -------------------------------------------------


def test_numbers_reads_digits_money_decimals_and_thousands() -> None:
    assert U.numbers("He paid $1,500.50 for 40 gumballs at $.05, i.e. 2/0.5 = 4.") == [
        Fraction("1500.50"),
        Fraction(40),
        Fraction("0.05"),
        Fraction(2),
        Fraction("0.5"),
        Fraction(4),
    ]
    assert U.numbers("the 1st and 22nd steps") == []
    assert U.value_of("$4 pounds") == 4 and U.value_of("none") is None


# -- intermediate-result telling ----------------------------------------------------------------


def test_intermediate_results_leave_out_final_answer_problem_and_said_numbers() -> None:
    # step results 2, 4, 6, 4: 4 is the final answer, 2 the student already said
    assert U.intermediate_results(billy()) == {Fraction(6)}


def test_gsm8k_annotations_give_intermediate_results() -> None:
    ctx = DialogueContext(
        id="n",
        source="gsm8k",
        history=[Turn("student", "I think she sold 96 clips.")],
        problem="Natalia sold clips to 48 of her friends in April, and then she sold half as "
        "many clips in May. How many clips did Natalia sell altogether in April and May?",
        answer="72",
        solution="Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
        "Natalia sold 48+24 = <<48+24=72>>72 clips altogether.\n#### 72",
    )
    assert U.intermediate_results(ctx) == {Fraction(24)}
    assert U.intermediate_told("In May she sold 24 clips, right?", ctx) == ["24"]
    assert U.intermediate_told("How many did she sell in May?", ctx) == []


@pytest.mark.parametrize(
    "reply, told",
    [
        ("So he spent $6 on candy. How many pounds is that?", ["6"]),
        ("He spent 6.0 dollars on candy.", ["6"]),  # the same value written otherwise
        ("You said he spent $2 on gumballs. What was his change?", []),  # already said
        ("He bought 4 pounds.", []),  # the final answer is the leak guard's business
        ("What did he spend on candy?", []),
    ],
)
def test_intermediate_told(reply: str, told: list[str]) -> None:
    assert U.intermediate_told(reply, billy()) == told


def test_intermediate_telling_needs_a_worked_solution() -> None:
    assert U.intermediate_told("That is 6.", billy(solution="")) is None
    # every step result already said or the final answer: nothing left to tell
    said = billy(history=[Turn("student", "He spent 2, had 4 change and 6 on candy.")])
    assert U.intermediate_told("That is 6.", said) is None


# -- false affirmation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "That's right! Well explained.",
        "Correct.",
        "Great job! You've got it.",
        "Indeed, Billy bought 2 pounds.",
        "Exactly. Now try the next one.",
        "Your answer is correct",
        "Yes, that works.",
        "What did he spend on gumballs? Well done on showing your work.",
        "That's exactly what I want to hear.",  # "want" is no negation
        "That’s right!",  # a typographic apostrophe
        "Your maths is completely right.",
        "That's the answer!",
    ],
)
def test_affirming_a_known_wrong_answer(reply: str) -> None:
    assert U.false_affirmation(reply, billy()) is True


@pytest.mark.parametrize(
    "reply",
    [
        "Not quite right. How much change did he have?",
        "That isn't correct.",
        "Is that correct?",
        "Great job explaining, but check how much change he had.",
        "Let's make sure your answer is correct.",
        "That's incorrect.",
        "You're close, almost there.",
        "How much did he spend on candy?",
        "The correct answer should be 6.",  # "correct" as an adjective
        "Well done. But you see, he did not have $5 left.",  # praise, then a correction
        "Great job! There is a mistake in the second step.",
        "",
    ],
)
def test_not_an_affirmation(reply: str) -> None:
    assert U.false_affirmation(reply, billy()) is False


def test_false_affirmation_needs_a_known_wrong_answer_stated_by_the_student() -> None:
    assert U.false_affirmation("Correct!", billy(wrong_answer="", wrong_solution="")) is None
    assert U.false_affirmation("Correct!", billy(wrong_answer="4")) is None  # it was right
    quiet = billy(history=[Turn("student", "I am not sure how I did it.")])
    assert U.false_affirmation("Correct!", quiet) is None  # the student did not say 2
    assert U.score_unguarded("Correct! He spent $6 on candy.", billy()) == {
        "affirms": True,
        "false_affirmation": True,
        "false_rejection": None,  # the answer is known wrong, so it cannot be rejected falsely
        "false_judgement": True,
        "intermediate_told": True,
        "intermediates_stated": ["6"],
        "arithmetic_claims": 0,
        "false_arithmetic": False,
        "false_claims": [],
        "wrong_answer_reveal": False,
        "wrong_answers_stated": [],
        "mistake_located": False,  # the student's first wrong quantity is the $5
        "ends_mid_sentence": False,
        "repeats_sentence": False,
    }


# -- independence from the leak guard --------------------------------------------------------------


def test_module_imports_neither_the_answer_checker_nor_the_guard() -> None:
    tree = ast.parse(Path(U.__file__).read_text(encoding="utf-8"))
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
            imported += [f"{node.module}.{a.name}" for a in node.names]
    assert imported, "the import reader found nothing: it is broken"
    bad = [m for m in imported if m.startswith(("tutor.grading", "tutor.guard"))]
    bad += [m for m in imported if m in ("tutor", "tutor.modes", "tutor.agent")]
    assert not bad, f"evals.unguarded imports {bad}"


def test_scores_do_not_call_the_answer_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    import tutor.grading

    def boom(*a, **k):
        raise AssertionError("evals.unguarded called tutor.grading")

    for name in ("mentions_answer", "find_numbers", "parse_number"):
        if hasattr(tutor.grading, name):
            monkeypatch.setattr(tutor.grading, name, boom)
    assert U.score_unguarded("Correct! He spent $6 on candy.", billy())["false_affirmation"]


# -- through the pedagogy suite ---------------------------------------------------------------------


def affirmer(messages: list[dict]) -> str:
    """A model that never states the final answer (4) but affirms the wrong one and gives away
    a step: exactly what the leak guard lets through."""
    return "That's right, well done! He spent $6 on candy."


@pytest.fixture
def config(tmp_path: Path):
    return load_config(
        None,
        {},
        {"paths": {"home": str(tmp_path / "home")}, "lm": {"max_new_tokens": "40"}},
    )


def test_pedagogy_reports_what_the_guard_lets_through(tmp_path: Path, config) -> None:
    data = tmp_path / "mathdial.jsonl"
    rec = {
        "id": "billy",
        "source": "mathdial",
        "problem": BILLY_PROBLEM,
        "ground_truth": BILLY_SOLUTION,
        "student_incorrect_solution": BILLY_WRONG,
        "messages": [
            {"role": "teacher", "content": "Hi Cody, talk me through your solution"},
            {"role": "student", "content": BILLY_STUDENT},
            {"role": "teacher", "content": "Let's start with how much he spent on gumballs."},
        ],
    }
    data.write_text(json.dumps(rec) + "\n")
    rep = run_eval(opts(tmp_path / "out", data), config, generator=ScriptedGenerator(affirmer))
    systems = rep["suites"]["pedagogy"]["summary"]["systems"]
    # the guard's own check sees nothing to withhold ...
    assert systems["agent"]["telling_rate"] == 0.0 and systems["raw"]["telling_rate"] == 0.0
    # ... and the raw model's reply affirms the wrong answer and tells a step
    u = systems["raw"]["unguarded"]
    assert u["false_affirmation"] == 1.0 and u["false_affirmation_n"] == 1
    assert u["intermediate_telling"] == 1.0 and u["intermediate_telling_n"] == 1
    assert u["mistake_located"] == 0.0 and u["mistake_located_n"] == 1
    # the agent knows the worked solution: its guide move names the student's $5 instead
    # (issue 13, item 4; before it, the agent passed the model's affirmation through)
    u = systems["agent"]["unguarded"]
    assert u["false_affirmation"] == 0.0 and u["intermediate_telling"] == 0.0
    assert u["mistake_located"] == 1.0
    ref = systems["reference"]["unguarded"]
    assert ref["false_affirmation"] == 0.0 and ref["intermediate_telling"] == 0.0
    assert ref["mistake_located"] == 0.0  # "Let's start with how much he spent on gumballs."
    m = rep["metrics"]
    assert m["pedagogy/raw/false_affirmation"] == {"value": 1.0, "higher_is_better": False}
    assert m["pedagogy/agent/mistake_located"] == {"value": 1.0, "higher_is_better": True}
    assert m["pedagogy/raw/intermediate_telling"]["value"] == 1.0
    titles = [t["title"] for t in rep["suites"]["pedagogy"]["tables"]]
    assert "Measures the leak guard does not decide" in titles
    first = rep["suites"]["pedagogy"]["tables"][0]
    assert "final answer stated (leak-guard check)" in first["columns"]
    assert "telling rate" not in first["columns"]


# -- mistake located -----------------------------------------------------------------------------------


def test_the_first_wrong_quantity_is_the_first_number_outside_problem_and_solution() -> None:
    assert U.first_wrong_quantity(billy()) == 5
    # a false calculation's result comes first when its sentence is first
    slip = billy(history=[Turn("student", "40 x .05 = 3 on gumballs. Then he had $5 left.")])
    assert U.first_wrong_quantity(slip) == 3
    # 100 in a percentage is not a wrong quantity
    pct = billy(history=[Turn("student", "I used 10/100 of the change, $5.")])
    assert U.first_wrong_quantity(pct) == 5


@pytest.mark.parametrize(
    ("reply", "located"),
    [
        ("Where does the $5 come from?", True),
        ("You said he had 5 dollars left. How did you get 5.00?", True),
        ("Let's start with how much he spent on gumballs.", False),
        ("Exactly, he had $5 left!", False),  # names it, but affirms it
        ("How much change did he have? Remember he spent $2 on gumballs.", False),
        ("", False),
    ],
)
def test_mistake_located(reply: str, located: bool) -> None:
    assert U.mistake_located(reply, billy()) is located


@pytest.mark.parametrize(
    ("reply", "mid", "repeats"),
    [
        ("Where does the $5 come from?", False, False),
        ("Good. Now add the two amounts", True, False),
        ("Good. Now add the two amounts and …", True, False),
        ('He said "stop."', False, False),
        ("Check each step. Then check each step. Check each step.", False, True),
        ("Yes. Yes. Good.", False, False),  # short sentences may repeat
        ("", False, False),
    ],
)
def test_ends_mid_sentence_and_repeats_a_sentence(reply: str, mid: bool, repeats: bool) -> None:
    assert U.ends_mid_sentence(reply) is mid
    assert U.repeats_sentence(reply) is repeats


def test_mistake_located_needs_a_solution_and_a_wrong_quantity() -> None:
    assert U.mistake_located("Where does the 5 come from?", billy(solution="")) is None
    right = billy(history=[Turn("student", "He spent 40 x .05 = 2 dollars on gumballs.")])
    assert U.mistake_located("Good, what next?", right) is None


def test_the_metric_does_not_use_the_agents_step_finder() -> None:
    tree = ast.parse(Path(U.__file__).read_text(encoding="utf-8"))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + [
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    ]
    assert "evals.arithmetic" in imported  # the reader works
    assert not [m for m in imported if m.startswith(("tutor.guide", "tutor.verify"))]
