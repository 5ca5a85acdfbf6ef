"""Guide mode that locates the mistake (issue 13, item 4): the solution's steps, the learner's work,
the first step that leaves the solution, the move chosen from it, and the agent answering with
that move while a scripted model tries to affirm the wrong step, give the answer away or write
false arithmetic."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from tutor.agent import AgentSettings, TutorAgent
from tutor.explain import NOT_COVERED_REPLY
from tutor.guide import CANNOT_CHECK, PLAN, check_work, choose_move, guide_reply
from tutor.items import load_default_bank
from tutor.store import LearnerStore
from tutor.store.records import SessionState
from tutor.testing.events import seen
from tutor.testing.fake_lm import ScriptedGenerator
from tutor.verify import check_claim, find_claims
from tutor.verify.steps import (
    equation_steps,
    evaluate,
    first_divergence,
    givens,
    parse_work,
    solution_steps,
)

BILLY = (
    "Billy is buying some candy with $10 his father gave him. The candy costs $1.5 a pound. "
    "After buying candy, he takes half his change and spends it on gumballs, which cost $.05 "
    "each. If he bought 40 gumballs, how many pounds of candy did he buy?"
)
BILLY_SOLUTION = (
    "He spent $2 on gumballs because 40 x .05 = 2\nHe had $4 in change because 2 / .5 = 4\n"
    "He spent $6 on candy because 10 - 4 = 6\nHe bought 4 pounds of candy because 6 / 1.5 = 4\n 4"
)
SAM = (
    "Sam sold 8 crates of apples on each of the 5 weekdays and 10 crates on each of the 2 days "
    "of the weekend. How many crates did Sam sell in the whole week?"
)
SAM_SOLUTION = (
    "On weekdays he sold 8 * 5 = <<8*5=40>>40 crates.\n"
    "On the weekend he sold 10 * 2 = <<10*2=20>>20 crates.\n"
    "In the whole week he sold 40 + 20 = <<40+20=60>>60 crates.\n#### 60"
)
# the second step is wrong: 3 weekend days
SAM_WORK = "On weekdays he sold 8 x 5 = 40 crates. On the weekend 10 x 3 = 30 crates."


# -- the solution's steps ---------------------------------------------------------------------------


def test_gsm8k_annotations_are_the_steps() -> None:
    steps = solution_steps(SAM_SOLUTION)
    assert [(s.expression, s.value) for s in steps] == [
        ("8*5", 40),
        ("10*2", 20),
        ("40+20", 60),
    ]
    assert steps[1].operands == (10, 2) and "weekend" in steps[1].text and "<<" not in steps[1].text


def test_worked_lines_with_units_between_the_numbers_are_steps() -> None:
    sol = (
        "Billy takes a minute and a half to peel each one, or 60 potatoes * 1.5 minutes per "
        "potato = 90 minutes.\nIt takes 5 seconds * 60 potatoes / 60 seconds per minute = 5 "
        "minutes to cut the potatoes.\nSo 90 minutes peeling + 5 minutes cutting = 95 minutes.\n"
        "He needs 40 gallons * 4 quarts/gallon = 160 quarts."
    )
    assert [(s.expression, s.value) for s in solution_steps(sol)] == [
        ("60 * 1.5", 90),
        ("5 * 60 / 60", 5),
        ("90 + 5", 95),
        ("40 * 4", 160),
    ]
    assert [s.value for s in solution_steps(BILLY_SOLUTION)] == [2, 4, 6, 4]


def test_a_problem_the_tutor_solved_has_steps() -> None:
    assert [(s.expression, s.value) for s in equation_steps("2x + 3 = 11")] == [
        ("11 - 3", 8),
        ("8 / 2", 4),
    ]
    assert [s.value for s in equation_steps("3 + 4 * 5")] == [20, 23]
    assert equation_steps("0x + 1 = 2") == [] and equation_steps("hello") == []


@pytest.mark.parametrize("expr", ["2 ** 99999", "__import__('os')", "1/0", "9" * 200, "x + 1"])
def test_the_evaluator_refuses_what_is_not_small_arithmetic(expr: str) -> None:
    assert evaluate(expr) is None


# -- the learner's work ------------------------------------------------------------------------------


def test_work_is_read_as_steps_and_quantities_in_order() -> None:
    work = parse_work(
        "He had $5 left. I divided $3 by $1.5 per pound to get 2 pounds, and 5 - 2 = 4."
    )
    kinds = [(type(i).__name__, i.value) for i in work.items]
    assert kinds == [("Quantity", 5), ("Step", 2), ("Step", 3)]
    last = work.steps[-1]
    assert last.stated == 4 and not last.holds
    # a time of day, a variable and an ordinal are not quantities
    assert parse_work("I left at 7:50 with 8x apples on the 2nd day").values == []


def test_the_first_divergence_is_the_second_step_of_sam() -> None:
    d = first_divergence(solution_steps(SAM_SOLUTION), parse_work(SAM_WORK), givens(SAM))
    assert d is not None and d.kind == "value" and d.quantity == 3 and "10 x 3" in d.clause


def test_a_false_calculation_diverges_as_arithmetic() -> None:
    d = first_divergence(solution_steps(SAM_SOLUTION), parse_work("8 x 5 = 45 crates"), givens(SAM))
    assert d is not None and d.kind == "arithmetic" and d.quantity == 45


def test_right_work_does_not_diverge() -> None:
    work = parse_work("8 x 5 = 40 on weekdays and 10 x 2 = 20 on the weekend")
    assert first_divergence(solution_steps(SAM_SOLUTION), work, givens(SAM)) is None
    assert givens("He ate half of a dozen eggs and 3 more") == {Fraction(1, 2), 12, 3}


# -- the move ----------------------------------------------------------------------------------------


def _false_equations(text: str) -> list[str]:
    return [c.text for c in find_claims(text) if check_claim(c) is False]


def test_the_move_names_the_wrong_steps_quantity_and_not_the_answer() -> None:
    move = choose_move(SAM, solution_steps(SAM_SOLUTION), SAM_WORK)
    assert move.kind == "probe" and move.quantity == "3"
    assert (
        "Where does the 3 come from?" in move.text
        and '"On the weekend 10 x 3 = 30 crates"' in move.text
    )
    assert "60" not in move.text and "20" not in move.text  # neither the answer nor the step
    assert "right" not in move.text.lower() and not _false_equations(move.text)


def test_asked_again_the_move_gives_the_next_step_as_an_operation_only() -> None:
    first = choose_move(SAM, solution_steps(SAM_SOLUTION), SAM_WORK)
    history = [{"role": "user", "content": SAM_WORK}, {"role": "assistant", "content": first.text}]
    move = choose_move(SAM, solution_steps(SAM_SOLUTION), SAM_WORK, history)
    assert move.kind == "hint" and "work out 10 × 2" in move.text
    assert "20" not in move.text and "60" not in move.text


def test_a_next_step_that_would_tell_an_unsaid_value_is_not_offered() -> None:
    # 40 + 20 needs the 20 nobody has said: the learner only has 40
    move = choose_move(SAM, solution_steps(SAM_SOLUTION)[::2], "8 x 5 = 40", asked_help=True)
    assert "20" not in move.text and "60" not in move.text


def test_a_false_calculation_is_never_written_back() -> None:
    move = choose_move(SAM, solution_steps(SAM_SOLUTION), "So 8 x 5 = 45 crates on weekdays.")
    assert move.kind == "focus" and "8 × 5" in move.text and "45" in move.text
    assert not _false_equations(move.text) and "= 45" not in move.text and "40" not in move.text


def test_no_quantities_gets_the_planning_move() -> None:
    assert (
        choose_move(SAM, solution_steps(SAM_SOLUTION), "I don't know where to start").text == PLAN
    )


def test_a_problem_with_no_known_answer_gets_checked_arithmetic_and_planning() -> None:
    move = check_work("I did 8 x 5 = 40 and then 40 + 30 = 80.")
    assert move.text.startswith(CANNOT_CHECK) and move.text.endswith(PLAN)
    assert "8 × 5 = 40 checks out" in move.text and "Check 40 + 30 again" in move.text
    assert not _false_equations(move.text)


def test_guide_reply_is_none_without_a_known_solution() -> None:
    assert guide_reply(None, SessionState(), "8 x 5 = 45") is None


# -- the agent, with a scripted model that tries to break it ------------------------------------------

AFFIRMER = "Yes, exactly right, well done! So the answer is 50 crates, since 10 x 3 = 35."


@pytest.fixture
def store(tmp_path: Path) -> LearnerStore:
    return LearnerStore(
        f"sqlite:///{tmp_path / 'learners.sqlite'}", fallback_bank=load_default_bank, kdf_n=2
    )


def _open(store, problem: str, answer: str, solution: str = ""):
    gen = ScriptedGenerator(AFFIRMER)
    agent = TutorAgent(gen, store, None, AgentSettings(min_score=0.05))
    ana = store.add_learner("ana")
    sess = agent.start_session(ana)
    state = SessionState().with_item(None, problem=problem, answer=answer)
    if solution:
        state.extra["solution"] = solution
    store.set_state(sess.id, state, learner_id=ana.id)
    return agent, gen, ana, sess


def test_the_agent_locates_the_wrong_second_step_instead_of_affirming(store) -> None:
    agent, gen, ana, sess = _open(store, SAM, "60", SAM_SOLUTION)
    ev = list(agent.respond(ana, sess, SAM_WORK, mode="guide"))
    text = seen(ev)
    assert "Where does the 3 come from?" in text and gen.calls == []
    for bad in ("right", "well done", "60", "35", "50"):
        assert bad not in text.lower()
    assert not _false_equations(text)
    # asked again with the same mistake: the next step, as an operation on known numbers
    ev = list(agent.respond(ana, sess, SAM_WORK, mode="guide"))
    assert "work out 10 × 2" in seen(ev) and "20" not in seen(ev) and gen.calls == []


def test_a_dataset_word_problem_from_mathdial_is_located(store) -> None:
    agent, gen, ana, sess = _open(store, BILLY, "4", BILLY_SOLUTION)
    work = (
        "He had $10, and since he spent half his change on gumballs, he had $5 left. He spent "
        "$0.05 x 40 = $2 on gumballs, so he had $5 - $2 = $3 for candy, 2 pounds."
    )
    text = seen(agent.respond(ana, sess, work, mode="guide"))
    assert "Where does the $5 come from?" in text and gen.calls == []


def test_a_word_problem_without_a_known_answer_is_not_judged(store) -> None:
    agent, gen, ana, sess = _open(store, SAM, "")
    text = seen(agent.respond(ana, sess, "8 x 5 = 40 and 10 x 3 = 35", mode="guide"))
    assert text.startswith(CANNOT_CHECK) and "8 × 5 = 40 checks out" in text
    assert "Check 10 × 3 again: it doesn't give 35" in text and gen.calls == []
    assert "right" not in text.lower() and not _false_equations(text)


def test_a_bank_items_worked_solution_locates_a_graded_wrong_attempt(store) -> None:
    gen = ScriptedGenerator(AFFIRMER)
    agent = TutorAgent(gen, store, None, AgentSettings(min_score=0.05))
    ana = store.add_learner("ana")
    sess = agent.start_session(ana)
    store.set_state(sess.id, SessionState(item_id="ap-06"), learner_id=ana.id)
    ev = list(agent.respond(ana, sess, "30 - 9 = 21 so 10.5 m", mode="practice"))
    grading = next(e for e in ev if e.kind == "grading")
    text = seen(ev)
    assert not grading.correct and text.startswith("Not quite")
    assert "You worked out 30 − 9 and got 21" in text.replace("-", "−")
    assert "12" not in text and "6 m" not in text and gen.calls == []


def test_a_bare_wrong_answer_still_gets_the_bank_hint(store) -> None:
    gen = ScriptedGenerator(AFFIRMER)
    agent = TutorAgent(gen, store, None, AgentSettings(min_score=0.05))
    ana = store.add_learner("ana")
    sess = agent.start_session(ana)
    store.set_state(sess.id, SessionState(item_id="ap-06"), learner_id=ana.id)
    text = seen(agent.respond(ana, sess, "10.5 m", mode="practice"))
    assert "Hint: The perimeter is two lengths plus two widths" in text


def test_a_solution_without_calculations_still_has_its_final_answer(store) -> None:
    bus = (
        "The bus leaves at 8:00. He takes 30 minutes to reach the stop and left home at 7:50. "
        "By how many minutes did he miss the bus?"
    )
    solution = "He arrived at 7:50 + 30 minutes = 8:20, so 8:20 - 8:00 = 20 minutes late.\n 20"
    agent, gen, ana, sess = _open(store, bus, "20", solution)
    work = "He had to be there at 8:00 and left at 7:50, so he missed it by 10 minutes."
    text = seen(agent.respond(ana, sess, work, mode="guide"))
    assert "Where does the 10 come from?" in text and gen.calls == []
    assert "20" not in text


@pytest.mark.parametrize(
    "work",
    [
        "1 + " * 1000 + "1 = 1001",
        "=1" * 2000,
        "9" * 4000,
        "1/0 = 5 and 0/0 = 1",
        "5 x 5 x " * 300 + "= 3",
        "divided 5 " + "by " * 1000,
        "(" * 4000,
        "1,000,000,000,000,000,000,000,000,000 * 99999999999999999999999999999 = 1",
    ],
)
def test_hostile_work_never_breaks_a_move(work: str) -> None:
    move = choose_move(SAM, solution_steps(SAM_SOLUTION), work[:4000])
    assert move.text and "60" not in move.text
    assert check_work(work[:4000]).text.startswith(CANNOT_CHECK)


def test_a_false_sum_that_lands_on_the_answer_is_named_without_its_result(store) -> None:
    raft = "A raft holds 21 people, or 7 fewer with life jackets. How many fit if 8 wear them?"
    solution = "21 - 7 = 14\n14 / 7 = 2\n8 / 2 = 4\n21 - 4 = 17\n 17"
    agent, gen, ana, sess = _open(store, raft, "17", solution)
    work = "So 21 - 7 = 14 people fit without jackets, and 8 + 14 = 17 people fit with jackets."
    text = seen(agent.respond(ana, sess, work, mode="guide"))
    assert "Let's check one calculation in your work: 8 + 14." in text
    assert "17" not in text and gen.calls == []


def test_asking_for_help_gets_the_next_step_not_the_models_guess(store) -> None:
    agent, gen, ana, sess = _open(store, SAM, "60", SAM_SOLUTION)
    text = seen(
        agent.respond(ana, sess, "I'm not sure. I still think the weekend was 30.", mode="guide")
    )
    assert "The 30 doesn't come from the problem's numbers" in text and gen.calls == []
    assert "work out 8 × 5" in text and "40" not in text and "60" not in text
    # a bank item keeps its own hint ladder
    store.set_state(sess.id, SessionState(item_id="ap-06"), learner_id=ana.id)
    text = seen(agent.respond(ana, sess, "I'm stuck", mode="guide"))
    assert text.startswith("Hint: ") and gen.calls == []


def test_a_word_problem_posed_in_guide_mode_is_planned_and_its_arithmetic_checked(store) -> None:
    gen = ScriptedGenerator("Great job, that's right! 10 x 2 = 25. Which totals do you add?")
    agent = TutorAgent(gen, store, None, AgentSettings(min_score=0.05))
    ana = store.add_learner("ana")
    sess = agent.start_session(ana)
    text = seen(agent.respond(ana, sess, SAM, mode="guide"))
    assert text == f"{CANNOT_CHECK} {PLAN}" and gen.calls == []
    text = seen(agent.respond(ana, sess, "8 x 5 = 40 and 10 x 2 = 25", mode="guide"))
    assert text.startswith("Your calculation 8 × 5 = 40 checks out. Check 10 × 2 again")
    assert CANNOT_CHECK not in text and gen.calls == []
    # a message without calculations goes to the model, through the sentence gate
    text = seen(agent.respond(ana, sess, "The question asks for all the crates", mode="guide"))
    assert gen.calls and text.strip() == "Which totals do you add?"


def test_a_question_about_something_else_is_answered_and_the_problem_stays_open(store) -> None:
    agent, gen, ana, sess = _open(store, SAM, "60", SAM_SOLUTION)
    gen.reply = "Light scatters in the air. Which colour scatters most?"
    events = list(agent.respond(ana, sess, "why is the sky blue?", mode="guide"))
    text = seen(events)
    # answered as a question, in explain mode: from the course, never from the LM's own facts;
    # this agent has no course, so it says the course does not cover it
    assert text.startswith(NOT_COVERED_REPLY[:40]), "went to a template move on the problem"
    assert "Where does" not in text and "work out" not in text and "scatters" not in text
    assert store.get_state(sess.id).problem == SAM
    assert store.messages(sess.id)[-1].meta["answered_as"] == "explain"
    # work on the problem, a question with numbers, and a help request still get the moves
    calls = len(gen.calls)
    text = seen(agent.respond(ana, sess, SAM_WORK, mode="guide"))
    assert "Where does the 3 come from?" in text and len(gen.calls) == calls
    text = seen(agent.respond(ana, sess, "what do I do first?", mode="guide"))
    assert len(gen.calls) == calls, "a help request is the hint path's, not the model's"


@pytest.mark.parametrize("mode", ["guide", "practice", "auto"])
def test_a_question_with_a_bank_item_open_is_answered_from_the_course_in_every_mode(
    store, mode: str
) -> None:
    """The model's own facts never reach the learner: "the sky is green" is not shown."""
    gen = ScriptedGenerator("The sky is green because of chlorophyll. Which colour is it?")
    agent = TutorAgent(gen, store, None, AgentSettings(min_score=0.05))
    ana = store.add_learner("ana")
    sess = agent.start_session(ana)
    seen(agent.respond(ana, sess, "next problem", mode="practice"))
    item_id = store.get_state(sess.id).item_id
    assert item_id
    text = seen(agent.respond(ana, sess, "why is the sky blue?", mode=mode))
    assert text.startswith(NOT_COVERED_REPLY[:40]) and "green" not in text
    assert store.get_state(sess.id).item_id == item_id  # still open
