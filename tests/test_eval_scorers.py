"""Eval scorers and metrics on hand-made cases with known labels."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from evals import metrics as M
from evals.datasets import DialogueContext, Turn
from evals.dimensions import DIMENSIONS, normalize_label
from evals.judge import parse_label
from evals.scorers import (
    answer_revealed,
    asks_question,
    mistake_identification,
    score_response,
    tutor_tone,
    word_count,
)


def ctx(answer: str, problem: str = "") -> DialogueContext:
    return DialogueContext(
        id="c",
        source="test",
        history=[Turn("student", "I got 2/6.")],
        problem=problem,
        answer=answer,
    )


# -- answer revealed (deterministic, through tutor.grading.mentions_answer) ---------------------


@pytest.mark.parametrize(
    "text",
    [
        "So the result is 0.75.",
        "That is three quarters of the pizza.",
        "It comes to 75%.",
        "The answer is 3/4.",
        "You should get 6/8 in the end.",  # an equivalent fraction is still the answer
    ],
)
def test_answer_revealed_in_any_accepted_form(text: str) -> None:
    assert answer_revealed(text, ctx("3/4")) is True


@pytest.mark.parametrize(
    "text",
    [
        "What do you get when you add the numerators?",
        "Look at the denominators: are the pieces the same size?",
        "Try 1/4 + 2/4 again.",  # the problem's own numbers
        "",
    ],
)
def test_answer_not_revealed(text: str) -> None:
    assert answer_revealed(text, ctx("3/4", problem="What is 1/4 + 2/4?")) is False


def test_problem_numbers_count_only_when_stated_as_the_result() -> None:
    c = ctx("40", problem="He bought 40 gumballs for $2. How many gumballs did he buy?")
    assert answer_revealed("Look again at the 40 gumballs in the problem.", c) is False
    assert answer_revealed("So the answer is 40.", c) is True


def test_word_problem_answer_revealed_with_units() -> None:
    c = ctx("4", problem="Billy has $10. Candy costs $1.5 a pound. He buys 40 gumballs at $.05.")
    assert answer_revealed("He bought 4 pounds of candy.", c) is True
    assert answer_revealed("He spent $2 on gumballs; what is his change?", c) is False


def test_no_known_answer_is_not_applicable() -> None:
    assert answer_revealed("The answer is 12.", ctx("")) is None
    s = score_response("The answer is 12.", ctx(""))
    assert s.labels["revealing_answer"] is None and s.features["answer_revealed"] is None


def test_score_response_labels_and_features() -> None:
    s = score_response("Not quite! Good try though. What is 1/2 in quarters?", ctx("3/4"))
    assert s.labels == {
        "revealing_answer": "No",
        "mistake_identification": "Yes",
        "tutor_tone": "Encouraging",
    }
    assert s.sources["revealing_answer"] == "deterministic"
    assert s.sources["mistake_identification"] == s.sources["tutor_tone"] == "heuristic"
    assert s.features["asks_question"] is True and s.features["words"] == 10
    told = score_response("It is 0.75.", ctx("3/4"))
    assert told.labels["revealing_answer"] == "Yes (correct)"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Not quite, check the denominators.", "Yes"),
        ("There is a small mistake in step two.", "Yes"),
        ("You subtracted 25 dollars, but the discount is 25 percent.", "Yes"),
        ("Are you sure about the bottom number?", "Yes"),
        ("Ah, close! The short hand is the hour.", "Yes"),
        ("Well done. But you see, she took 2 more.", "Yes"),
        ("Great, what is 2 + 2?", "No"),
        ("Let us move on to the next topic.", "No"),
    ],
)
def test_mistake_identification_heuristic(text: str, label: str) -> None:
    assert mistake_identification(text) == label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Good thinking! Now look at the tens.", "Encouraging"),
        ("You're on the right track.", "Encouraging"),
        ("That is wrong, you are being lazy.", "Offensive"),
        ("Multiply both sides by 3.", "Neutral"),
    ],
)
def test_tone_heuristic(text: str, label: str) -> None:
    assert tutor_tone(text) == label


def test_question_and_length() -> None:
    assert asks_question("Why?") and not asks_question("Because.")
    assert word_count("one two  three\nfour") == 4 and word_count("") == 0


# -- labels ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dim", "raw", "want"),
    [
        ("revealing_answer", "Yes (and the revealed answer is correct)", "Yes (correct)"),
        ("revealing_answer", "Yes (and the answer is correct)", "Yes (correct)"),
        ("revealing_answer", "Yes (but the revealed answer is incorrect)", "Yes (incorrect)"),
        ("revealing_answer", "No", "No"),
        ("mistake_identification", "To some extent", "To some extent"),
        ("mistake_identification", "yes", "Yes"),
        ("tutor_tone", "Encouraging", "Encouraging"),
        ("tutor_tone", "Yes", None),
        ("humanlikeness", "maybe", None),
    ],
)
def test_normalize_label(dim: str, raw: str, want: str | None) -> None:
    assert normalize_label(dim, raw) == want


@pytest.mark.parametrize(
    ("dim", "output", "want"),
    [
        ("mistake_identification", "Yes", "Yes"),
        ("mistake_identification", "Label: To some extent.", "To some extent"),
        ("mistake_identification", "The answer is no, it does not.", "No"),
        ("mistake_identification", "I cannot tell.", None),
        ("tutor_tone", "neutral", "Neutral"),
        ("tutor_tone", "The tone is encouraging overall", "Encouraging"),
        ("revealing_answer", "Yes (incorrect)", "Yes (incorrect)"),
        ("revealing_answer", "No.", "No"),
        ("coherence", "", None),
    ],
)
def test_judge_output_parsing(dim: str, output: str, want: str | None) -> None:
    assert parse_label(dim, output) == want


def test_every_dimension_has_its_desired_label_among_its_labels() -> None:
    assert len(DIMENSIONS) == 8
    for d in DIMENSIONS.values():
        assert d.desired in d.labels and d.definition.endswith("?")


# -- metrics --------------------------------------------------------------------------------------


def test_accuracy_and_macro_f1_by_hand() -> None:
    gold = ["Yes", "Yes", "No", "No", "To some extent"]
    pred = ["Yes", "No", "No", "No", "Yes"]
    assert M.accuracy(gold, pred) == pytest.approx(3 / 5)
    # Yes: tp1 fp1 fn1 -> 2/4; No: tp2 fp1 fn0 -> 4/5; TSE: tp0 fp0 fn1 -> 0
    assert M.macro_f1(gold, pred, ["Yes", "To some extent", "No"]) == pytest.approx(
        (0.5 + 0.8 + 0) / 3
    )
    conf = M.confusion(gold, pred, ["Yes", "To some extent", "No"])
    assert conf["Yes"] == {"Yes": 1, "To some extent": 0, "No": 1}
    assert conf["To some extent"]["Yes"] == 1


def test_macro_f1_matches_scikit_learn() -> None:
    from sklearn.metrics import f1_score

    rng = random.Random(0)
    labels = ["a", "b", "c"]
    for _ in range(20):
        gold = [rng.choice(labels) for _ in range(30)]
        pred = [rng.choice(labels) for _ in range(30)]
        want = f1_score(gold, pred, labels=labels, average="macro", zero_division=0)
        assert M.macro_f1(gold, pred, labels) == pytest.approx(want)


def test_ranking_metrics_by_hand() -> None:
    assert M.recall_at([3], 1) == 0.0 and M.recall_at([3], 3) == 1.0
    assert M.reciprocal_rank([3, 5]) == pytest.approx(1 / 3)
    assert M.reciprocal_rank([12], k=10) == 0.0
    assert M.ndcg_at([1], 1) == 1.0
    # two relevant chunks, found at ranks 2 and 4
    want = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert M.ndcg_at([2, 4], 2) == pytest.approx(want)
    assert M.ndcg_at([], 3) == 0.0 and M.ndcg_at([11], 1, k=10) == 0.0


def test_reliability_bins_and_ece_by_hand() -> None:
    y = [1, 0, 1, 1]
    p = [0.05, 0.05, 0.95, 0.95]
    bins = M.reliability(y, p, bins=10)
    assert len(bins) == 10 and sum(b["count"] for b in bins) == 4
    assert (
        bins[0]["count"] == 2
        and bins[0]["observed"] == 0.5
        and bins[0]["mean_p"] == pytest.approx(0.05)
    )
    assert bins[9]["observed"] == 1.0
    assert M.expected_calibration_error(bins) == pytest.approx((2 * 0.45 + 2 * 0.05) / 4)
    assert M.rmse([1, 0], [1, 0]) == 0.0 and M.rmse([1, 0], [0, 1]) == 1.0
    assert M.binary_accuracy(np.array([1, 0, 1]), np.array([0.7, 0.2, 0.4])) == pytest.approx(2 / 3)
    assert M.mean([None, 1, 3]) == 2 and M.mean([]) is None
