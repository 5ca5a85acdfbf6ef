"""tutor.worked: the one line explain mode adds for a calculation question is exact."""

from __future__ import annotations

import pytest

from tutor.worked import worked_result


@pytest.mark.parametrize(
    ("question", "line"),
    [
        ("What is 1/2 + 1/3?", "1/2 + 1/3 = 5/6"),
        ("What is 12/16 in lowest terms?", "12/16 = 3/4"),
        ("What is 7/4 as a mixed number?", "7/4 = 1 3/4"),
        ("What is 2 1/3 as an improper fraction?", "2 1/3 = 7/3"),
        ("How do you write 3/8 as a decimal?", "3/8 = 0.375"),
        ("What is 0.45 as a fraction in simplest form?", "0.45 = 9/20"),
        ("What is 0.25 as a percent?", "0.25 = 25%"),
        ("What is 2/3 of 18?", "2/3 of 18 = 18 × 2/3 = 12"),
        ("What is the reciprocal of 3/4?", "the reciprocal of 3/4 is 4/3, since 3/4 × 4/3 = 1"),
        ("What is 4.5 divided by 0.9?", "4.5 ÷ 0.9 = 5"),
        ("What is 18 ÷ 3 × 2?", "18 ÷ 3 × 2 = 12"),
        ("What is 25% of 80?", "25% of 80 = 25/100 × 80 = 20"),
        ("How do you solve 5x - 8 = 2x + 7?", "5x - 8 = 2x + 7 gives x = 5"),
        ("How do you simplify the ratio 12:18?", "12:18 = 2:3 (both divided by 6)"),
        (
            "What is 4.386 rounded to the nearest tenth?",
            "4.386 rounded to the nearest tenth is 4.4",
        ),
        (
            "What is 1250 rounded to the nearest hundred?",
            "1250 rounded to the nearest hundred is 1300",
        ),
    ],
)
def test_calculation_questions_get_their_exact_result(question: str, line: str):
    assert worked_result(question) == f"Worked out: {line}."


@pytest.mark.parametrize(
    "question",
    [
        "What is a fraction?",
        "What is 1/3 as a decimal?",  # no exact decimal
        "What is the reciprocal of 0?",
        "What does it mean when solving an equation gives 4 = 9?",
        "What is 9^9^9?",  # too big to compute at a turn
        "What is 7/0 as a mixed number?",
        "x" * 5000,
    ],
)
def test_no_line_when_nothing_exact_can_be_said(question: str):
    assert worked_result(question) is None
