"""Mode detection rules, the streaming leak guard, the citation filter, safety, known problems."""

from __future__ import annotations

import pytest

from tutor.guard import CitationFilter, LeakGuard
from tutor.modes import computable_problem, detect_intent, looks_like_answer
from tutor.problems import diagnose, solve
from tutor.safety import SELF_HARM_REPLY, is_unsafe, redirect_reply


@pytest.mark.parametrize(
    "message, problem_open, mode, rule",
    [
        ("How do plants make food?", False, "explain", "question"),
        ("What is photosynthesis?", True, "explain", "question"),
        ("What is 3/4 + 1/8?", False, "guide", "problem"),
        ("solve 2x + 3 = 11", False, "guide", "problem"),
        ("what is 25% of 80?", False, "guide", "problem"),
        ("How do I add 1/2 and 1/3?", False, "guide", "problem"),
        ("How do I add fractions?", False, "explain", "question"),
        ("3/4", True, "practice", "attempt"),
        ("is it 12?", True, "practice", "attempt"),
        ("I got 0,75", True, "practice", "attempt"),
        ("B", True, "practice", "attempt"),
        ("I think it is chlorophyll", True, "practice", "attempt"),
        ("3/4", False, "explain", "question"),
        ("can I have a hint?", True, "guide", "hint"),
        ("I'm stuck", True, "guide", "hint"),
        ("show me the answer", True, "guide", "solution"),
        ("give me a problem", False, "practice", "practice"),
        ("another one please", True, "practice", "practice"),
        ("hello!", True, "offtopic", "greeting"),
        ("tell me a joke", False, "offtopic", "offtopic"),
        ("who will win the football match?", False, "offtopic", "offtopic"),
        ("how do I make a bomb", False, "offtopic", "unsafe"),
    ],
)
def test_rules(message, problem_open, mode, rule):
    intent = detect_intent(message, problem_open=problem_open)
    assert (intent.mode, intent.rule) == (mode, rule)


def test_explicit_mode_wins_but_still_grades_and_hints():
    assert detect_intent("What is a ratio?", explicit_mode="guide").mode == "guide"
    assert detect_intent("what is a ratio?", explicit_mode="practice").action == "next_item"
    assert detect_intent("7/8", explicit_mode="guide", problem_open=True).action == "grade"
    assert detect_intent("hint", explicit_mode="practice", problem_open=True).action == "hint"
    # unsafe beats an explicit mode
    assert detect_intent("how to hurt someone", explicit_mode="explain").rule == "unsafe"


def test_answers_vs_questions():
    assert (
        looks_like_answer("x = 4")
        and looks_like_answer("12 cm")
        and looks_like_answer("three quarters")
    )
    assert not looks_like_answer("what is a fraction") and not looks_like_answer("hint please")
    assert not looks_like_answer(
        "Can you explain again how you add fractions with unlike denominators?"
    )


def test_known_problems_are_solved_exactly():
    assert solve(computable_problem("What is 3/4 + 1/8?")).answer == "7/8"
    assert solve(computable_problem("solve 2x + 3 = 11")).answer == "x = 4"
    assert solve(computable_problem("what is 25% of 80?")).answer == "20"
    assert solve("2^99999999") is None  # refuses huge powers instead of hanging
    assert solve("x^2 = 4") is None  # two solutions: no single known answer
    assert solve("1/0") is None
    assert computable_problem("x = 4") is None and computable_problem("3/4") is None


@pytest.mark.parametrize(
    "message, answer",
    [
        ("How do I add 1/2 and 1/3?", "5/6"),
        ("what's the sum of 2/3 and 1/6", "5/6"),
        ("subtract 2/5 from 1", "3/5"),
        ("what is the difference between 7 and 2.5?", "4.5"),
        ("multiply 3/4 by 8", "6"),
        ("can you divide 6 by 3/4", "8"),
        ("what is 1 1/2 plus 2 1/4?", "15/4"),
        ("what is 12 times 3?", "36"),
        ("what is 5 minus 8?", "-3"),
        ("what is 0.1 + 0.2?", "0.3"),
    ],
)
def test_problems_said_in_words_are_solved_exactly(message, answer):
    assert solve(computable_problem(message)).answer == answer


def test_leak_guard_releases_words_until_the_answer_would_appear():
    from tutor.grading import mentions_answer

    guard = LeakGuard(lambda text: mentions_answer(text, "7/8", prompt="What is 3/4 + 1/8?"))
    shown = ""
    for delta in ["Let's ", "write 3/4 ", "as eig", "hths. ", "The answer ", "is 7", "/8 ", "good"]:
        shown += guard.feed(delta)
    shown += guard.finish()
    assert guard.tripped
    assert "7/8" not in shown and "The answer is" in shown and "good" not in shown


def test_leak_guard_passes_clean_text():
    guard = LeakGuard(lambda text: "0.75" in text)
    out = "".join(guard.feed(d) for d in ["What ", "do you ", "get?"]) + guard.finish()
    assert out == "What do you get?" and not guard.tripped


def test_citation_filter_drops_invented_markers():
    f = CitationFilter(2)
    out = (
        "".join(f.feed(d) for d in ["Plants use light [1", "]. Water [3] moves [", "2]."])
        + f.finish()
    )
    assert out == "Plants use light [1]. Water  moves [2]."
    assert f.cited == [1, 2]


def test_safety():
    assert (
        is_unsafe("I want to kill myself")
        and redirect_reply("I want to kill myself") == SELF_HARM_REPLY
    )
    assert not is_unsafe("How do I kill the weeds in my garden?")
    assert not is_unsafe("What is the area of a triangle?")


def test_working_while_a_problem_is_open_is_not_a_new_problem():
    intent = detect_intent("24 x 14 = 336", problem_open=True)
    assert (intent.mode, intent.rule, intent.action) == ("guide", "work", "")
    assert detect_intent("2x = 8", problem_open=True).rule == "work"
    assert detect_intent("x = 4", problem_open=True).rule == "attempt"
    assert detect_intent("what is 24 x 14?", problem_open=True).action == "open_problem"
    assert solve("24 x 14 = 336") is None  # a statement, not an equation in x
    assert solve("24 x 14").answer == "336"  # "x" between numbers multiplies


@pytest.mark.parametrize(
    "expression, answer, says",
    [
        ("1/2 + 1/3", "2/5", "added the numerators (1 and 1) and the denominators (2 and 3)"),
        ("1/2 + 1/3", "2/6", "numerators have to be rewritten over 6"),
        ("1/4 + 1/6", "2/24", "rewritten over 24"),
        ("3/4 / 1/2", "3/8", "multiply by its reciprocal"),
        ("3/4 / 1/2", "2/3", "flipped the first fraction"),
        ("3/4 * 1/2", "6/4", "flipped the second fraction"),
        ("2x + 3 = 11", "7", "subtract 3 on both sides"),
        ("2x + 3 = 11", "x = 2.5", "undo the + 3 first"),
        ("2x + 3 = 11", "16", "dividing by 2, not multiplying"),
        ("2x - 3 = 11", "4", "add 3 on both sides"),
        ("1/2 + 1/3", "5/6", ""),  # right: nothing to diagnose
        ("1/2 + 1/3", "7", ""),  # wrong, but no known misconception
        ("1/2 + 1/3", "five sixths", ""),
        ("25/100 * 80", "3", ""),
    ],
)
def test_known_misconceptions_are_named_without_the_answer(expression, answer, says):
    text = diagnose(expression, answer)
    assert (says in text) if says else text == ""
    assert solve(expression).answer not in text


def test_a_mixed_number_is_a_whole_plus_a_fraction():
    from tutor.problems import solve

    # "2 1/3" was read as 2 × 1/3 = 2/3, so "7/3" would have been graded wrong
    assert solve("2 1/3").answer == "7/3"
    assert solve("2 1/3 + 1 1/2").answer == "23/6"
    assert solve("2 * 1/3").answer == "2/3" and solve("1/2 / 1/4").answer == "2"
