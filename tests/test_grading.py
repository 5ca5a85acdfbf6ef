"""The answer checker: every answer form, notation variants, wrong-but-close diagnoses, the
answer-leak check, and hostile input."""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutor.errors import InputError
from tutor.grading import (
    CLOSE_CODES,
    FEEDBACK_CODES,
    AnswerSpec,
    expected_text,
    find_numbers,
    grade,
    mentions_answer,
    parse_number,
)


def spec(kind: str, value: str, **kw: object) -> AnswerSpec:
    return AnswerSpec(kind=kind, value=value, **kw)  # type: ignore[arg-type]


FRACTION = spec("fraction", "3/4")
FRACTION_STRICT = spec("fraction", "3/4", simplify=True, strict_form=True)
MIXED = spec("fraction", "1 1/2")
MIXED_STRICT = spec("fraction", "1 1/2", strict_form=True)
INTEGER = spec("integer", "12")
NEGATIVE = spec("integer", "-3")
DECIMAL = spec("number", "2.375", tolerance=0.0005)
DECIMAL_EXACT = spec("number", "0.75")
PERCENT = spec("percent", "75%")
AREA = spec("quantity", "12 cm^2")
MONEY = spec("quantity", "$4.50")
EXPANDED = spec("expression", "2x + 6", form="expanded")
SIMPLIFIED = spec("expression", "5x", form="simplified")
ANY_EXPR = spec("expression", "x^2 - 1")
EQUATION = spec("expression", "y = 2x + 1")
STRICT_EQUATION = spec("expression", "2x + 3 = 11", strict_form=True)
CHOICE = spec("choice", "B", choices=("evaporation", "condensation", "precipitation"))
NUM_CHOICE = spec("choice", "A", choices=("0.5", "0.45", "0.405"))
TEXT = spec("text", "evaporation", accepted=("evaporating",))
RATIO = spec("text", "2:3", accepted=("2 to 3",))

CASES = [
    # fractions, in many notations
    (FRACTION, "3/4", True, "correct"),
    (FRACTION, "3 / 4", True, "correct"),
    (FRACTION, "3÷4", True, "correct"),
    (FRACTION, "¾", True, "correct"),
    (FRACTION, r"\frac{3}{4}", True, "correct"),
    (FRACTION, "$\\dfrac{3}{4}$", True, "correct"),
    (FRACTION, "three quarters", True, "correct"),
    (FRACTION, "three-fourths", True, "correct"),
    (FRACTION, "3 quarters", True, "correct"),
    (FRACTION, "3 out of 4", True, "correct"),
    (FRACTION, "I think it's 3/4.", True, "correct"),
    (FRACTION, "0.75", True, "equivalent_form"),
    (FRACTION, "0,75", True, "equivalent_form"),
    (FRACTION, "75%", True, "equivalent_form"),
    (FRACTION, "6/8", True, "not_simplified"),
    (FRACTION, "4/3", False, "reciprocal"),
    (FRACTION, "-3/4", False, "sign_error"),
    (FRACTION, "0.7", False, "incorrect"),
    (FRACTION, "1/2", False, "incorrect"),
    (FRACTION, "3/0", False, "not_parsed"),
    (FRACTION, "banana", False, "not_parsed"),
    (FRACTION, "", False, "not_parsed"),
    (FRACTION_STRICT, "6/8", False, "not_simplified"),
    (FRACTION_STRICT, "0.75", False, "wrong_form"),
    (FRACTION_STRICT, "3/4", True, "correct"),
    (spec("fraction", "1/3"), "0.33", False, "close_but_rounding"),
    (spec("fraction", "1/3"), "0.333", False, "close_but_rounding"),
    # mixed numbers
    (MIXED, "1 1/2", True, "correct"),
    (MIXED, "1 and 1/2", True, "correct"),
    (MIXED, "one and a half", True, "correct"),
    (MIXED, "1½", True, "correct"),
    (MIXED, "3/2", True, "equivalent_form"),
    (MIXED, "1.5", True, "equivalent_form"),
    (MIXED, "1 2/4", True, "not_simplified"),
    (MIXED, "two and a half", False, "incorrect"),
    (MIXED_STRICT, "3/2", False, "wrong_form"),
    (MIXED_STRICT, "1 1/2", True, "correct"),
    # integers
    (INTEGER, "12", True, "correct"),
    (INTEGER, "twelve", True, "correct"),
    (INTEGER, "12.0", True, "correct"),
    (INTEGER, "x = 12", True, "correct"),
    (INTEGER, "12 = x", True, "correct"),
    (INTEGER, "The answer is 12!", True, "correct"),
    (INTEGER, "12 apples", True, "correct"),
    (INTEGER, "11", False, "off_by_one"),
    (INTEGER, "-12", False, "sign_error"),
    (INTEGER, "120", False, "place_value"),
    (INTEGER, "1,200", False, "place_value"),
    (INTEGER, "7", False, "incorrect"),
    (NEGATIVE, "-3", True, "correct"),
    (NEGATIVE, "−3", True, "correct"),
    (NEGATIVE, "minus 3", True, "correct"),
    (NEGATIVE, "negative three", True, "correct"),
    (NEGATIVE, "3", False, "sign_error"),
    (spec("integer", "1200"), "1,200", True, "correct"),
    (spec("integer", "1200"), "1 200", True, "correct"),
    (spec("integer", "1200"), "one thousand two hundred", True, "correct"),
    # decimals with tolerance
    (DECIMAL, "2.375", True, "correct"),
    (DECIMAL, "2.3754", True, "correct"),
    (DECIMAL, "2,375", True, "correct"),
    (DECIMAL, "19/8", True, "equivalent_form"),
    (DECIMAL, "2.38", False, "close_but_rounding"),
    (DECIMAL, "2.37", False, "close_but_rounding"),
    (DECIMAL, "2.4", False, "close_but_rounding"),
    (DECIMAL, "23.75", False, "place_value"),
    (DECIMAL, "-2.375", False, "sign_error"),
    (DECIMAL, "2.5", False, "incorrect"),
    (DECIMAL_EXACT, "0.75", True, "correct"),
    (DECIMAL_EXACT, ".75", True, "correct"),
    (DECIMAL_EXACT, "0.750", True, "correct"),
    (DECIMAL_EXACT, "zero point seven five", True, "correct"),
    (DECIMAL_EXACT, "3/4", True, "equivalent_form"),
    (DECIMAL_EXACT, "7.5", False, "place_value"),
    (spec("number", "0.75", strict_form=True), "3/4", False, "wrong_form"),
    # percentages
    (PERCENT, "75%", True, "correct"),
    (PERCENT, "75 %", True, "correct"),
    (PERCENT, "75", True, "correct"),
    (PERCENT, "75 percent", True, "correct"),
    (PERCENT, "seventy-five percent", True, "correct"),
    (PERCENT, "75.0%", True, "correct"),
    (PERCENT, "0.75", False, "wrong_form"),
    (PERCENT, "3/4", False, "wrong_form"),
    (PERCENT, "7.5%", False, "place_value"),
    (PERCENT, "74%", False, "close"),
    (PERCENT, "25%", False, "incorrect"),
    # units
    (AREA, "12 cm^2", True, "correct"),
    (AREA, "12 cm²", True, "correct"),
    (AREA, "12cm2", True, "correct"),
    (AREA, "12 sq cm", True, "correct"),
    (AREA, "12 square centimeters", True, "correct"),
    (AREA, "twelve square centimetres", True, "correct"),
    (AREA, "1200 mm^2", True, "equivalent_form"),
    (AREA, "0.0012 m^2", True, "equivalent_form"),
    (AREA, "12", False, "unit_missing"),
    (AREA, "12 cm", False, "wrong_unit"),
    (AREA, "12 m^2", False, "wrong_unit"),
    (AREA, "12.5 cm^2", False, "close"),
    (AREA, "13 cm^2", False, "incorrect"),
    (AREA, "-12 cm^2", False, "sign_error"),
    (AREA, "30 cm^2", False, "incorrect"),
    (spec("quantity", "12 cm^2", unit_required=False), "12", True, "correct"),
    (spec("quantity", "12 cm^2", strict_form=True), "1200 mm^2", False, "wrong_form"),
    (MONEY, "$4.50", True, "correct"),
    (MONEY, "4.50 dollars", True, "correct"),
    (MONEY, "450 cents", True, "equivalent_form"),
    (MONEY, "4.5", False, "unit_missing"),
    (MONEY, "$45", False, "place_value"),
    (spec("quantity", "2 h"), "120 minutes", True, "equivalent_form"),
    (spec("quantity", "1.5 kg"), "1500 g", True, "equivalent_form"),
    (spec("quantity", "1.5 l"), "1500 ml", True, "equivalent_form"),
    # algebraic expressions by sympy equivalence
    (EXPANDED, "2x+6", True, "correct"),
    (EXPANDED, "2*x + 6", True, "correct"),
    (EXPANDED, "6 + 2x", True, "correct"),
    (EXPANDED, "2(x+3)", False, "wrong_form"),
    (EXPANDED, "x + x + 6", False, "wrong_form"),
    (EXPANDED, "-2x - 6", False, "sign_error"),
    (EXPANDED, "2x + 5", False, "incorrect"),
    (EXPANDED, "so it is 2x + 6", True, "correct"),
    (SIMPLIFIED, "5x", True, "correct"),
    (SIMPLIFIED, "5 * x", True, "correct"),
    (SIMPLIFIED, "x*5", True, "correct"),
    (SIMPLIFIED, "3x + 2x", False, "wrong_form"),
    (ANY_EXPR, "(x - 1)(x + 1)", True, "correct"),
    (ANY_EXPR, "(x+1)*(x-1)", True, "correct"),
    (ANY_EXPR, "x**2 - 1", True, "correct"),
    (ANY_EXPR, "x^2 + 1", False, "incorrect"),
    (spec("expression", "x/2"), "0.5x", True, "correct"),
    (EQUATION, "y = 2x + 1", True, "correct"),
    (EQUATION, "2x + 1 = y", True, "correct"),
    (EQUATION, "2y = 4x + 2", True, "correct"),
    (EQUATION, "y = 2x", False, "incorrect"),
    (EQUATION, "2x + 1", False, "wrong_form"),
    (STRICT_EQUATION, "11 = 3 + 2x", True, "correct"),
    (STRICT_EQUATION, "x = 4", False, "wrong_form"),
    (STRICT_EQUATION, "4x + 6 = 22", False, "wrong_form"),
    (STRICT_EQUATION, "2x + 3 = 12", False, "incorrect"),
    # multiple choice
    (CHOICE, "B", True, "correct"),
    (CHOICE, "b", True, "correct"),
    (CHOICE, "(b)", True, "correct"),
    (CHOICE, "B)", True, "correct"),
    (CHOICE, "option B", True, "correct"),
    (CHOICE, "the answer is b", True, "correct"),
    (CHOICE, "condensation", True, "correct"),
    (CHOICE, "Condensation.", True, "correct"),
    (CHOICE, "b) condensation", True, "correct"),
    (CHOICE, "I pick b", True, "correct"),
    (CHOICE, "I think it is B.", True, "correct"),
    (CHOICE, "I think it's A", False, "wrong_choice"),
    (CHOICE, "A", False, "wrong_choice"),
    (CHOICE, "evaporation", False, "wrong_choice"),
    (CHOICE, "E", False, "not_parsed"),
    (CHOICE, "banana", False, "not_parsed"),
    (NUM_CHOICE, "0.5", True, "correct"),
    (NUM_CHOICE, "0.50", True, "correct"),
    (NUM_CHOICE, "0.45", False, "wrong_choice"),
    # short text answers
    (TEXT, "evaporation", True, "correct"),
    (TEXT, "Evaporation.", True, "correct"),
    (TEXT, "it is called evaporation", True, "correct"),
    (TEXT, "evaporating", True, "correct"),
    (TEXT, "evaporaton", True, "misspelled"),
    (TEXT, "condensation", False, "incorrect"),
    (TEXT, "not evaporation", False, "incorrect"),
    (RATIO, "2:3", True, "correct"),
    (RATIO, "2 : 3", True, "correct"),
    (RATIO, "2 to 3", True, "correct"),
    (RATIO, "12:18", False, "incorrect"),
]


@pytest.mark.parametrize(
    ("answer", "response", "correct", "code"),
    CASES,
    ids=[f"{a.kind}:{a.value}<-{r!r}" for a, r, _, _ in CASES],
)
def test_grade(answer: AnswerSpec, response: str, correct: bool, code: str) -> None:
    r = grade(answer, response)
    assert (r.correct, r.code) == (correct, code), r
    assert r.code in FEEDBACK_CODES
    assert r.expected == expected_text(answer)
    if code == "not_parsed":
        assert r.normalized == ""


def test_every_feedback_code_is_exercised() -> None:
    seen = {code for *_, code in CASES}
    assert set(FEEDBACK_CODES) - seen == set()


def test_close_answers_are_flagged_and_messages_never_give_the_answer() -> None:
    for answer, response, correct, code in CASES:
        r = grade(answer, response)
        assert r.close == (not correct and code in CLOSE_CODES)
        if answer.kind in ("integer", "number", "fraction", "percent", "quantity"):
            assert not mentions_answer(r.message, answer), (code, r.message)
    assert grade(DECIMAL, "2.38").close and not grade(DECIMAL, "9").close


def test_normalized_keeps_what_was_written() -> None:
    assert grade(FRACTION, "6/8").normalized == "6/8"
    assert grade(MONEY, "$4.50").normalized == "$4.50"
    assert grade(AREA, "12 sq cm").normalized == "12 cm^2"
    assert grade(EXPANDED, "6+2x").normalized == "2*x + 6"
    assert grade(CHOICE, "b").normalized == "B) condensation"
    assert grade(FRACTION, "0,75").to_dict()["normalized"] == "0.75"


def test_a_bare_answer_string_is_graded_by_its_inferred_kind() -> None:
    assert AnswerSpec.infer("3/4").kind == "fraction"
    assert AnswerSpec.infer("12").kind == "integer"
    assert AnswerSpec.infer("2.5").kind == "number"
    assert AnswerSpec.infer("75%").kind == "percent"
    assert AnswerSpec.infer("12 cm^2").kind == "quantity"
    assert AnswerSpec.infer("2x + 6").kind == "expression"
    assert AnswerSpec.infer("evaporation").kind == "text"
    assert grade("3/4", "0.75").correct
    assert not grade("3/4", "0.7").correct


def test_bad_specs_are_rejected_with_the_reason() -> None:
    with pytest.raises(InputError, match="cannot read the answer"):
        spec("fraction", "three-ish")
    with pytest.raises(InputError, match="not an integer"):
        spec("integer", "2.5")
    with pytest.raises(InputError, match="no known unit"):
        spec("quantity", "12")
    with pytest.raises(InputError, match="choice"):
        spec("choice", "E", choices=("a", "b"))
    with pytest.raises(InputError, match="kind"):
        spec("roman", "XII")


@pytest.mark.parametrize(
    "hostile",
    [
        "__import__('os').system('echo pwned')",
        "open(1).close()",
        "9^9^9^9",
        "9**99999999",
        "x^99999",
        "(" * 200 + "x" + ")" * 200,
        "1" * 5000,
        "lambda: 1",
        "exec('1')",
    ],
)
def test_hostile_input_is_never_evaluated_and_stays_fast(hostile: str) -> None:
    t0 = time.perf_counter()
    r = grade(ANY_EXPR, hostile)
    assert not r.correct
    assert time.perf_counter() - t0 < 2.0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 99), st.integers(1, 99))
def test_property_every_written_form_of_a_fraction_is_accepted(num: int, den: int) -> None:
    value = Fraction(num, den)
    answer = AnswerSpec(kind="fraction", value=f"{value.numerator}/{value.denominator}")
    assert grade(answer, f"{num}/{den}").correct  # unsimplified is accepted (not required)
    assert grade(answer, f"{num} / {den}").correct
    if value > 1 and value.denominator != 1:
        whole = value.numerator // value.denominator
        rest = value - whole
        assert grade(answer, f"{whole} {rest.numerator}/{rest.denominator}").correct
    d = value.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:  # a terminating decimal is an exact equivalent form
        assert grade(answer, format(float(value), ".10f").rstrip("0").rstrip(".")).correct
    assert not grade(answer, f"{num + den}/{den}").correct


def test_parse_number_and_find_numbers() -> None:
    n = parse_number("two and three quarters")
    assert n is not None and n.value == Fraction(11, 4)
    assert parse_number("seventy-five percent").percent
    assert parse_number("not a number") is None
    found = [(m.value, m.percent) for m in find_numbers("It is 3/4, or 75%, about 0.75 [2].")]
    assert found == [(Fraction(3, 4), False), (Fraction(75), True), (Fraction(3, 4), False)]
    # citation markers, step labels and list numbers are not numbers of the answer
    assert find_numbers("Step 2: see [1] and [3, 4].") == []
    assert [m.value for m in find_numbers("1. Add\n2. Check")] == []


# --------------------------------------------------------------------------------------------
# The answer-leak check


@dataclass
class FakeItem:
    prompt: str
    answer: AnswerSpec


LEAKS = [
    (
        FakeItem("What is 1/4 + 2/4?", spec("fraction", "3/4")),
        [
            ("Great try! It's 0.75.", True),
            ("The answer is 75%", True),
            ("That's three quarters of the pizza.", True),
            ("1/4 + 2/4 = 3/4", True),
            ("6/8 would also be right", True),
            ("Add the numerators: 1 + 2. What do you get over 4?", False),
            ("Look at 1/4 and 2/4 again.", False),
            ("The denominators are both 4 [1].", False),
            ("Step 3: think about the numerators.", False),
        ],
    ),
    (
        FakeItem("Write 3/4 as a decimal.", spec("number", "0.75")),
        [
            ("Think of 3/4 as 3 divided by 4.", False),
            ("Three quarters means 3 divided by 4.", False),
            ("It equals 0.75", True),
            ("0,75", True),
            ("75 hundredths", True),
            ("75%", True),
        ],
    ),
    (
        FakeItem("Solve x + 6 = 12.", spec("integer", "6")),
        [
            ("Subtract 6 from both sides.", False),
            ("x + 6 = 12, so what is x?", False),
            ("What number plus 6 makes 12?", False),
            ("x = 6 + 0?", False),
            ("So x = 6.", True),
            ("12 - 6 = 6", True),
            ("x is 6", True),
            ("The answer is six.", True),
        ],
    ),
    (
        FakeItem("What percent of 80 is 60?", spec("percent", "75%")),
        [
            ("Write 60 out of 80 as a fraction first.", False),
            ("Divide 60 by 80, then multiply by 100.", False),
            ("60/80 simplifies to 3/4.", False),  # a step: the checker does not accept 3/4 here
            ("So it's 0.75 as a decimal", True),  # ... but stated as the result it gives it away
            ("It's 75", True),
            ("75% of the cars", True),
        ],
    ),
    (
        FakeItem("A rectangle is 3 cm by 4 cm. What is its area?", spec("quantity", "12 cm^2")),
        [
            ("Multiply 3 cm by 4 cm.", False),
            ("Area = length × width.", False),
            ("The area is 12 square cm.", True),
            ("3 times 4 is 12", True),
            ("1200 mm^2", True),
        ],
    ),
    (
        FakeItem("Simplify 6/8.", spec("fraction", "3/4", simplify=True)),
        [
            ("What number divides both 6 and 8?", False),
            ("6/8 is not yet in lowest terms.", False),
            ("You get 3/4.", True),
        ],
    ),
    (
        FakeItem("What is 1/3 as a decimal, to two places?", spec("number", "0.33")),
        [
            ("about 0.33", True),
            ("Divide 1 by 3.", False),
        ],
    ),
    (
        FakeItem("Expand 2(x + 3).", spec("expression", "2x + 6", form="expanded")),
        [
            ("Multiply 2 by each term inside 2(x + 3).", False),
            ("2 times x is 2x, and 2 times 3 is 6.", False),
            ("You get 2x + 6", True),
            ("So 2(x+3) = 2x+6.", True),
            ("It is 6 + 2x.", True),
        ],
    ),
    (
        FakeItem(
            "Which process turns liquid water into water vapor?",
            spec("choice", "A", choices=("evaporation", "condensation", "precipitation")),
        ),
        [
            ("Is it evaporation or condensation? Think about heat.", False),
            ("Think about what happens to a puddle on a sunny day.", False),
            ("Look at option A and option B again.", False),
            ("It's a good question.", False),
            ("The answer is A.", True),
            ("Evaporation is correct!", True),
            ("Option A is right.", True),
            ("The correct answer is evaporation.", True),
            ("Evaporation (A): heat turns liquid water into vapor.", True),
        ],
    ),
    (
        FakeItem("Write an equation: x doubled, plus 3, is 11.", STRICT_EQUATION),
        [
            ("Doubling x gives 2x; then add 3.", False),
            ("What does 'is 11' become in an equation?", False),
            ("Solving it would give x = 4.", False),
            ("So the equation is 2x + 3 = 11.", True),
            ("11 = 2x + 3", True),
        ],
    ),
    (
        FakeItem("What falls from clouds as rain or snow?", spec("text", "precipitation")),
        [
            ("Think about what falls from clouds.", False),
            ("Rain and snow are two forms of it.", False),
            ("It's precipitation!", True),
        ],
    ),
]
LEAK_CASES = [(item, text, want) for item, texts in LEAKS for text, want in texts]


@pytest.mark.parametrize(
    ("item", "text", "leaks"),
    LEAK_CASES,
    ids=[f"{i.answer.value}|{t}" for i, t, _ in LEAK_CASES],
)
def test_mentions_answer(item: FakeItem, text: str, leaks: bool) -> None:
    assert mentions_answer(text, item) is leaks


def test_mentions_answer_with_a_bare_answer_and_an_explicit_prompt() -> None:
    assert mentions_answer("it's 0.75", "3/4")
    assert not mentions_answer("it's 0.7", "3/4")
    assert not mentions_answer("", "3/4")
    assert mentions_answer("x = 6", "6", prompt="Solve x + 6 = 12")
    assert not mentions_answer("subtract 6", "6", prompt="Solve x + 6 = 12")


def test_shipped_hints_never_leak_and_solutions_always_state_the_answer() -> None:
    from tutor.items import load_default_bank

    bank = load_default_bank()
    for item in bank.items:
        for hint in item.hints:
            assert not mentions_answer(hint, item), (item.id, hint)
        assert mentions_answer(item.solution, item), (item.id, item.solution)
        assert not mentions_answer(item.prompt, item), item.id
