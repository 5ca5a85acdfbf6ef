"""The measures of ``evals.unguarded`` and ``evals.arithmetic`` added for issue 13: false
rejection of a right answer (and false judgement, either way), false arithmetic and
wrong-answer reveal, on hand-made cases where each must say yes and where it must say no, and
through the pedagogy and simulation suites with scripted models that break them."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from evals import arithmetic as A
from evals import unguarded as U
from evals.api import run_eval
from evals.datasets import Turn
from tests.test_eval_run import opts
from tests.test_eval_unguarded import (
    BILLY_PROBLEM,
    BILLY_SOLUTION,
    BILLY_STUDENT,
    BILLY_WRONG,
    billy,
)
from tutor.config import load_config
from tutor.testing.fake_lm import ScriptedGenerator

# -- false arithmetic ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, false",
    [
        ("So 36 - 40 = 20 guests.", ["36 - 40 = 20"]),
        ("7 * 6.8 = 45 pages", ["7 * 6.8 = 45"]),
        ("10 + 5 = 6", ["10 + 5 = 6"]),
        ("5 times 6 equals 31.", ["5 * 6 = 31"]),
        ("25% of 80 is 30.", ["25% * 80 = 30"]),
        ("3 × 4 is 13", ["3 * 4 = 13"]),
        ("2 + 3 = 5 = 10 / 3.", ["2 + 3 = 5 = 10 / 3"]),  # a chain: every link checked
        ("10 / 3 = 3", ["10 / 3 = 3"]),  # no rounding for a whole number
        ("He paid $1,500 + $500 = $2,100.", ["$1,500 + $500 = $2,100"]),
        ("7 minus 2 is 4, and 2 + 2 = 4.", ["7 - 2 = 4"]),  # the true one is not listed
        ("(2 + 3) * 4 = 14", ["(2 + 3) * 4 = 14"]),
        ("36 − 40 = 4", ["36 - 40 = 4"]),  # a typographic minus
    ],
)
def test_false_claims_found(reply: str, false: list[str]) -> None:
    assert A.false_claims(reply) == false


@pytest.mark.parametrize(
    "reply",
    [
        "3 × 4 is 12.",
        "20% of 50 is 10",
        "2 + 3 = 5 = 10 / 2.",
        "10 / 3 = 3.33",  # rounded to the decimals written
        "36 - 40 = -4",
        "He paid $1,500 + $500 = $2,000.",
        "40 x .05 = 2",
        "48/2 = <<48/2=24>>24",
        "0.1 + 0.2 = 0.3",  # exact, not floating point
        "half is 0.5 = 1/2",
    ],
)
def test_true_claims_are_not_false(reply: str) -> None:
    assert A.claims(reply) and A.false_claims(reply) == []


@pytest.mark.parametrize(
    "reply",
    [
        "x = 5",  # a variable: not seen
        "Step 2 is 5 apples.",  # no operator
        "3.5 km = 3,500 m",  # a unit conversion: not seen
        "1/0 = 3",  # not judged
        "three times four is thirteen",  # number words: not seen
        "On 2024-12-04 we met.",
        "How much is 36 - 40?",
    ],
)
def test_what_the_arithmetic_reader_does_not_see(reply: str) -> None:
    assert A.claims(reply) == []


def test_false_arithmetic_in_the_reply_scores() -> None:
    s = U.score_unguarded("Good start. 36 - 40 = 20, and 2 + 2 = 4.", billy())
    assert s["false_arithmetic"] is True and s["arithmetic_claims"] == 2
    assert s["false_claims"] == ["36 - 40 = 20"]
    assert U.score_unguarded("2 + 2 = 4.", billy())["false_arithmetic"] is False


# -- false rejection ----------------------------------------------------------------------------


def right() -> object:
    return billy(history=[Turn("student", "So he bought 4 pounds of candy.")])


@pytest.mark.parametrize(
    "reply",
    [
        "That's not right.",
        "Not quite correct. How much change did he have?",
        "That's wrong, try again.",
        "You made a small mistake in step 2.",
        "That is incorrect.",
        "That isn't the right answer.",
    ],
)
def test_rejecting_a_right_answer(reply: str) -> None:
    assert U.false_rejection(reply, right()) is True
    assert U.score_unguarded(reply, right())["false_judgement"] is True


@pytest.mark.parametrize(
    "reply",
    [
        "That's correct!",
        "There are no mistakes here.",
        "Is that wrong?",
        "Great, nothing wrong with it.",
        "If you got 5, that would be wrong.",
        "How did you get 4?",
        "",
    ],
)
def test_not_a_rejection(reply: str) -> None:
    assert U.false_rejection(reply, right()) is False


def test_false_rejection_needs_a_known_right_answer() -> None:
    assert U.student_known_right(right())
    assert U.false_rejection("That's wrong.", billy()) is None  # the student said 2: known wrong
    assert U.false_rejection("That's wrong.", billy(answer="")) is None  # no gold answer
    vague = billy(history=[Turn("student", "I don't know where to start.")])
    assert U.false_rejection("That's wrong.", vague) is None
    # the last number decides: 4 said on the way, 2 at the end
    mixed = billy(
        history=[Turn("student", "4 x .5 = 2, so 2 pounds.")], wrong_answer="", wrong_solution=""
    )
    assert U.false_rejection("That's wrong.", mixed) is None
    both = U.score_unguarded("Well done!", billy())
    assert both["false_affirmation"] is True and both["false_rejection"] is None
    assert both["false_judgement"] is True
    neither = U.score_unguarded("Well done!", billy(answer=""))
    assert neither["false_judgement"] is None


# -- wrong-answer reveal ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, stated",
    [
        ("The answer is 35.", ["35"]),
        ("So he bought 3 pounds of candy.", ["3"]),
        ("The correct answer should be 6.", ["6"]),
        ("Answer: $7.50", ["7.5"]),
        ("So 10 - 4 = 6, and he bought 2 pounds.", ["2"]),  # the last number of a conclusion
        ("Yes, the answer is 2. Well done.", ["2"]),  # affirming the wrong answer states it
        ("Therefore he has 5 pounds. The final answer is 5.", ["5"]),
    ],
)
def test_wrong_answer_stated(reply: str, stated: list[str]) -> None:
    assert U.wrong_answer_stated(reply, billy()) == stated
    assert U.score_unguarded(reply, billy())["wrong_answer_reveal"] is True


@pytest.mark.parametrize(
    "reply",
    [
        "The answer is 4.",  # the gold answer: the leak guard's business
        "So he had $10 at first.",  # a restated given
        "You said the answer is 2.",  # quoting the student
        "Is the answer 6?",
        "If the answer is 5, check it.",
        "The answer is 48 / 2 = 24.",  # an expression, not a number
        "He spent 6 dollars on candy.",  # no cue: not seen
        "So, what did he spend on gumballs?",
        "So, we need to find how he spent 5 dollars.",  # a plan, not a result
        "So let's work out the 3 steps.",
        "",
    ],
)
def test_not_a_wrong_answer_statement(reply: str) -> None:
    assert U.wrong_answer_stated(reply, billy()) == []


def test_wrong_answer_reveal_needs_a_gold_answer() -> None:
    assert U.wrong_answer_stated("The answer is 35.", billy(answer="")) is None


# -- independence ---------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [U, A])
def test_no_import_of_what_the_agent_censors_with(module) -> None:
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
            imported += [f"{node.module}.{a.name}" for a in node.names]
    assert imported, "the import reader found nothing: it is broken"
    bad = [m for m in imported if m.startswith(("tutor.grading", "tutor.guard", "tutor.verify"))]
    bad += [m for m in imported if m in ("tutor", "tutor.modes", "tutor.agent", "tutor.turns")]
    assert not bad, f"{module.__name__} imports {bad}"


# -- through the suites -----------------------------------------------------------------------------


def breaker(messages: list[dict]) -> str:
    """A model that the leak guard lets through (it never says 4) but that writes false
    arithmetic and states a wrong final answer."""
    return "Good try. 10 - 5 = 6 dollars, so the answer is 3 pounds."


@pytest.fixture
def config(tmp_path: Path):
    return load_config(
        None,
        {},
        {"paths": {"home": str(tmp_path / "home")}, "lm": {"max_new_tokens": "40"}},
    )


def write_billy(tmp_path: Path) -> Path:
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
    return data


def test_pedagogy_reports_false_arithmetic_and_wrong_answers(tmp_path: Path, config) -> None:
    data = write_billy(tmp_path)
    rep = run_eval(opts(tmp_path / "out", data), config, generator=ScriptedGenerator(breaker))
    systems = rep["suites"]["pedagogy"]["summary"]["systems"]
    # the raw model shows both; the agent's sentence gate (tutor.verify) drops the sentence
    # with the false sum, which also held the wrong answer
    for system, shown in (("agent", 0), ("raw", 1)):
        u = systems[system]["unguarded"]
        assert (u["false_arithmetic_k"], u["false_arithmetic_n"]) == (shown, 1), system
        assert (u["wrong_answer_reveal_k"], u["wrong_answer_reveal_n"]) == (shown, 1), system
        assert u["false_rejection_n"] == 0 and u["false_rejection"] is None
    ref = systems["reference"]["unguarded"]
    assert ref["false_arithmetic"] == 0.0 and ref["wrong_answer_reveal"] == 0.0
    m = rep["metrics"]
    for name in ("false_judgement", "false_arithmetic", "wrong_answer_reveal"):
        assert f"pedagogy/agent/{name}" in m
    assert "pedagogy/agent/false_rejection" not in m  # no context where it applies
    assert m["pedagogy/agent/false_arithmetic"] == {"value": 0.0, "higher_is_better": False}
    assert m["pedagogy/raw/false_arithmetic"] == {"value": 1.0, "higher_is_better": False}
    table = next(
        t
        for t in rep["suites"]["pedagogy"]["tables"]
        if t["title"] == "Measures the leak guard does not decide"
    )
    assert "false arithmetic" in table["columns"] and "wrong-answer reveal" in table["columns"]


def test_simulation_scores_every_tutor_turn(tmp_path: Path, config) -> None:
    data = write_billy(tmp_path)
    o = opts(tmp_path / "out", data, suites=("simulation",), systems=("raw",), max_turns=2)
    o.sim_limit = 0

    def affirm_then_reject(messages: list[dict]) -> str:
        return "Correct! 2 + 2 = 5."

    rep = run_eval(o, config, generator=ScriptedGenerator(affirm_then_reject))
    s = rep["suites"]["simulation"]["summary"]["systems"]["raw"]
    turns = [t for r in rep["items"]["simulation"] for t in r["turns"]]
    assert s["turns"] == len(turns) >= 1
    u = s["unguarded"]
    assert u["false_arithmetic_k"] == len(turns)  # every turn says 2 + 2 = 5
    # the first turn answers the student's wrong "2 pounds": a false affirmation
    assert turns[0]["unguarded"]["false_affirmation"] is True
    assert rep["metrics"]["simulation/raw/false_affirmation"]["value"] > 0
    assert rep["metrics"]["simulation/raw/false_arithmetic"]["value"] == 1.0


def test_stored_results_are_rescored_on_resume(tmp_path: Path, config) -> None:
    """A run scored by an older scorer (here: no scores at all) gets the current scores when
    the same command runs again, without generating anything anew."""
    data = write_billy(tmp_path)
    o = opts(tmp_path / "out", data, suites=("pedagogy", "simulation"), max_turns=1)
    gen = ScriptedGenerator(breaker)
    first = run_eval(o, config, generator=gen)
    results = tmp_path / "out" / "results.jsonl"
    lines = [json.loads(x) for x in results.read_text().splitlines() if x.strip()]
    for rec in lines:
        rec.pop("unguarded", None)
        for t in rec.get("turns", []):
            t.pop("unguarded", None)
    results.write_text("".join(json.dumps(r) + "\n" for r in lines))
    calls = len(gen.calls)
    again = run_eval(o, config, generator=gen)
    assert len(gen.calls) == calls
    for suite in ("pedagogy", "simulation"):
        a = first["suites"][suite]["summary"]["systems"]
        b = again["suites"][suite]["summary"]["systems"]
        assert {k: v["unguarded"] for k, v in a.items()} == {
            k: v["unguarded"] for k, v in b.items()
        }
    assert again["metrics"]["pedagogy/raw/false_arithmetic"]["value"] == 1.0
