"""tutor.verify: judgements of the learner's work, arithmetic claims, and the sentence gate
that releases a streamed reply only after both checks (pure functions, no LM)."""

from __future__ import annotations

import pytest

from tutor.verify import (
    SentenceGate,
    VerifyContext,
    agrees,
    check_claim,
    check_sentence,
    find_claims,
    find_judgement,
)
from tutor.verify.arithmetic import problem_equations


@pytest.mark.parametrize(
    "sentence",
    [
        "The correct answer is indeed 35.",
        "The answer is indeed 30.00.",
        "That's correct.",
        "That’s right!",
        "Correct!",
        "Yes, 12 is it.",
        "Well done!",
        "Exactly.",
        "Great job on this one.",
        "Awesome job! +1 point for your work.",
        "Fantastic!",
        "You are right.",
        "That looks right to me.",
        "That's correct, but could you explain why?",
    ],
)
def test_affirmations_are_found(sentence):
    assert find_judgement(sentence) == "affirm"


@pytest.mark.parametrize(
    "sentence",
    [
        "Not quite.",
        "That's wrong.",
        "That is incorrect.",
        "No, that's not right.",
        "Close, but not quite.",
        "Yes, but that isn't correct.",
        "Try again.",
    ],
)
def test_rejections_are_found(sentence):
    assert find_judgement(sentence) == "reject"


@pytest.mark.parametrize(
    "sentence",
    [
        "Is that right?",
        "Are you sure that's correct?",
        "If you got 12, that's correct.",
        "Check whether your answer is right.",
        "Great question!",
        "Use the correct units.",
        "A right triangle has a right angle.",
        "Exactly 3 apples are left.",
        "The answer is right there in the problem.",
        "What do you notice first?",
        "A perfect square has an integer root.",
    ],
)
def test_questions_hedges_and_other_senses_judge_nothing(sentence):
    assert find_judgement(sentence) is None


def test_only_the_grader_backs_a_judgement():
    assert agrees("affirm", "correct") and agrees("reject", "incorrect")
    assert not agrees("affirm", "incorrect") and not agrees("reject", "correct")
    assert not agrees("affirm", "unknown") and not agrees("reject", "unknown")


def _verdicts(sentence: str, equations: tuple[str, ...] = ()) -> list[bool | None]:
    variables = frozenset(c for e in equations for c in e if c.isalpha())
    return [check_claim(c, equations) for c in find_claims(sentence, variables)]


@pytest.mark.parametrize(
    "sentence",
    [
        "36 - 40 = 20 guests.",
        "7 * 6.8 = 45 pages.",
        "10 + 5 = 6.",
        "2 + 3 = 5 = 11/2.",
        "20% of 50 is 12.",
        "3 × 4 is 13.",
        "7 times 6 equals 43.",
        "3.5 km = 3.5 meters.",
        "1/2 + 1/3 = 2/5.",
        "12 ÷ 4 = 4.",
        "$3 \\times 4 = 13$",
        "3 m = 3 kg.",
        "So 3.5 kilometers equals approximately 7.8 meters.",
        "3.5 km is about 350 m.",
    ],
)
def test_false_claims_are_false(sentence):
    assert _verdicts(sentence) == [False]


@pytest.mark.parametrize(
    "sentence",
    [
        "2 + 3 = 5 = 10/2.",
        "20% of 50 is 10.",
        "3 × 4 is 12.",
        "7 times 6 equals 42.",
        "3.5 km = 3500 m.",
        "So 3 m × 4 m = 12 m².",
        "5 cm + 3 cm = 8 cm.",
        "10/3 = 3.33 to two places.",
        "√16 = 4.",
        "$4.50 + $3 = $7.50 in all.",
        "2(x + 3) = 2x + 6.",
        "1/2 + 1/3 = 5/6.",
        "0.5 x 10 = 5.",
        "Then 48/2 = 24 crates.",
        "22/7 is about 3.14.",
        "3.5 km is roughly 3500 m.",
    ],
)
def test_true_claims_hold(sentence):
    assert _verdicts(sentence) == [True]


def test_unknowns_are_checked_against_the_problem_equation():
    eqs = problem_equations("Solve 2x + 3 = 11. What is x?")
    assert eqs == ("2*x+3 = 11",)
    assert _verdicts("So x = 4.", eqs) == [True]
    assert _verdicts("So x = 5.", eqs) == [False]
    assert _verdicts("Subtract 3: 2x = 8.", eqs) == [True]
    assert _verdicts("So x = 5.") == [None]  # no equation fixes x: unverified


def test_conditionals_and_plain_numbers_state_no_claim():
    for sentence in (
        "If x = 5, what is 2x?",
        "Let x = 3.",
        "The answer is 12.",
        "You have 3 apples and 4 pears.",
        "Step 1 is to add.",
        "Pages 10-12 cover it.",
        "It takes about 5 minutes to read.",
    ):
        assert find_claims(sentence) == [], sentence


def test_a_claim_before_a_conditional_word_is_stated():
    """A best-of-N candidate showed "So multiply 18 * 4*6 = 64, add 64 + 72 = 96, ... when
    adding more than 1 ...": the "when" late in the sentence hid every claim before it."""
    sentence = "So 18 * 4 = 64, add 64 + 72 = 96, when adding more than 1 such thing."
    assert _verdicts(sentence) == [False, False]
    assert check_sentence(sentence, VerifyContext())[0] == "false"
    assert find_claims("When you add them, 3 + 4 = 8.") == []  # inside the condition: not stated


@pytest.mark.parametrize(
    "sentence",
    [
        "9^9^9 = 5.",
        "2^1000 = 3.",
        "5/0 = 1.",
        "(((1+2) = 3.",
        "99999^64 = 1.",
        "(2x+2y+2z+2w)^64 = 1.",  # refused by its degree bound before sympy expands it
        "2a + 3b + 4c + 5d = 2e.",
    ],
)
def test_huge_or_unparsable_claims_are_unverified_not_errors(sentence):
    assert all(v is None for v in _verdicts(sentence))


def _stream(gate: SentenceGate, text: str) -> str:
    """What stays on screen: the released text, less what the gate withdrew (``retract``)."""
    shown = ""
    for piece in [*(word + " " for word in text.split(" ")), None]:
        out = gate.feed(piece) if piece is not None else gate.finish()
        if gate.retract:
            shown, gate.retract = shown[: len(shown) - gate.retract], 0
        shown += out
    return shown


def test_gate_replaces_an_unbacked_judgement_with_the_verdict_once():
    gate = SentenceGate(VerifyContext(verdict="incorrect", verdict_line="Not quite."))
    shown = _stream(gate, "Correct! Well done. What is 3 + 4 first?")
    assert shown == "Not quite. What is 3 + 4 first? "
    assert gate.report.judgements_withdrawn == 2 and not gate.tripped


def test_gate_keeps_a_backed_judgement_and_drops_all_without_a_verdict():
    ok = SentenceGate(VerifyContext(verdict="correct"))
    assert _stream(ok, "That's right! 3 + 4 = 7.") == "That's right! 3 + 4 = 7. "
    unknown = SentenceGate(VerifyContext(verdict_line="never used"))
    assert _stream(unknown, "Not quite. Look again.") == "Look again. "


def test_gate_trips_on_a_false_claim_and_shows_nothing_of_it():
    gate = SentenceGate(VerifyContext())
    shown = gate.feed("First, 36 - 40 ") + gate.feed("= 20 guests. ")
    assert shown == "" and gate.tripped and gate.report.false_claims == 1
    assert gate.feed("More text. ") == "" and gate.finish() == ""


def test_gate_drops_bad_math_on_the_regeneration():
    gate = SentenceGate(VerifyContext(), drop_bad_math=True)
    shown = _stream(gate, "Good. 3 + 4 = 7. 9^9^9 = 2. 10 + 5 = 6. What next?")
    assert shown == "Good. 3 + 4 = 7. What next? " and not gate.tripped
    assert gate.report.false_claims == 1 and gate.report.unverified_claims == 1


def test_gate_holds_an_unfinished_sentence_until_it_ends():
    gate = SentenceGate(VerifyContext())
    assert gate.feed("So 7 × 6 ") == "" and gate.feed("= 42") == ""
    assert gate.feed(".") == ""  # a "." is an end only before a space: "3." may go on "3.5"
    assert gate.feed(" Next one") == "So 7 × 6 = 42. Next "  # a word with no risk goes at once
    # the answer ends there: a sentence without its end, after a whole one, is withdrawn
    assert gate.finish() == "" and gate.retract == len("Next ")
    assert gate.report.cut_dropped == 1
    decimal = SentenceGate(VerifyContext())
    assert decimal.feed("It is 3.") == "It is " and decimal.feed("5 km = 3500 m. ") == (
        "3.5 km = 3500 m. "
    )


@pytest.mark.parametrize("early", [True, False])
@pytest.mark.parametrize(
    "text, shown",
    [
        # the token budget cut a long sentence that was streaming already (" …" from the backend)
        ("Plants make glucose. They also store it in their roots and …", "Plants make glucose. "),
        # the model stopped without a full stop
        ("Add the numerators. Then keep the denominator", "Add the numerators. "),
        # an answer whose last sentence introduces what never comes
        ("Look at the last step. Here is a better version:", "Look at the last step. "),
        # ... and one whose last line never came
        ("Look at the last step.\nHere is a better version:\n12600", "Look at the last step.\n"),
        # an answer that ends well keeps everything; so does math or a question at the end
        ("Add the tops. Keep the bottom!", "Add the tops. Keep the bottom! "),
        ("Write it as $\\frac{3}{4}$", "Write it as $\\frac{3}{4}$ "),
        ("Try it. What do you get?", "Try it. What do you get? "),
        # nothing whole to end at: the fragment stays, mark and all
        ("Plants make glucose and …", "Plants make glucose and … "),
    ],
)
def test_an_answer_ends_at_its_last_whole_sentence(text, shown, early):
    gate = SentenceGate(VerifyContext(), drop_bad_math=True, early=early)
    assert _stream(gate, text) == shown
    cut = text.rstrip().endswith(("…", "denominator", ":")) and "." in text
    assert gate.report.cut_dropped == (2 if text.endswith("12600") else cut)


def test_words_stream_early_until_a_risky_one_and_a_failed_sentence_is_withdrawn():
    gate = SentenceGate(VerifyContext())
    assert gate.feed("Plants use ") == "Plants use "  # nothing risky: streamed at once
    assert gate.feed("light and ") == "light and "
    assert gate.feed("that is ") == ""  # a judgement lead-in: held to the end of the sentence
    assert gate.feed("correct. ") == "" and gate.retract == len("Plants use light and ")
    assert gate.report.judgements_withdrawn == 1
    citing = SentenceGate(VerifyContext())
    assert citing.feed("Plants use light [1] to ") == "Plants use light [1] to "


def test_a_checker_error_never_crashes_the_stream():
    def broken(sentence: str, ctx: VerifyContext) -> tuple[str, str]:
        raise RuntimeError("sympy fell over")

    gate = SentenceGate(VerifyContext(), drop_bad_math=True, check=broken)
    assert _stream(gate, "One sentence. Another one.") == ""
    assert gate.report.unverified_claims == 2


def test_check_sentence_reports_the_first_problem():
    ctx = VerifyContext(verdict="incorrect")
    assert check_sentence("Well done.", ctx) == ("judgement", "affirm")
    assert check_sentence("So 10 + 5 = 6.", ctx)[0] == "false"
    assert check_sentence("Not quite; 10 + 5 = 15.", ctx) == ("ok", "")


def test_ratios_and_labels():
    assert _verdicts("3:4 = 6:8.") == [True]
    assert _verdicts("3:4 = 6:9.") == [False]
    assert _verdicts("Step 1: 3 + 4 = 7.") == [True]
    assert find_claims("At 3:00 we start.") == []
    assert find_judgement("No problem, let's look at it.") is None


def test_random_math_soup_never_raises():
    import random

    rng = random.Random(13)
    pieces = [
        "1",
        "9",
        "0",
        "3.5",
        "x",
        "=",
        "+",
        "-",
        "*",
        "/",
        "^",
        "(",
        ")",
        "%",
        "of",
        "is",
        "km",
        "m",
        "times",
        "sqrt",
        "√",
        "9^9^9",
        ".",
        ",",
        ":",
        "$",
        "12,000",
    ]
    for _ in range(400):
        sentence = " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        for claim in find_claims(sentence, frozenset("x")):
            assert check_claim(claim, ("2*x+3 = 11",)) in (True, False, None), sentence
        check_sentence(sentence, VerifyContext(verdict="correct"))
