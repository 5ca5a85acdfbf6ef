"""Only the grader judges, and only verified arithmetic reaches the student (issue 13, items
1-2): the agent with a scripted LM that affirms wrong answers, rejects right steps and writes
false or unverifiable equations. What the student sees is rebuilt as the UI does (a
``TextReset`` discards the text so far)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tutor.agent import AgentSettings, TutorAgent
from tutor.items import load_default_bank
from tutor.prompts import STRICT_MATH
from tutor.store import LearnerStore
from tutor.testing.events import ever_shown, seen
from tutor.testing.fake_lm import ScriptedGenerator
from tutor.turns import GENERIC_HINT
from tutor.verify import STEP_RIGHT

FALSE_MATH = [
    "36 - 40 = 20 guests.",
    "7 * 6.8 = 45 pages.",
    "10 + 5 = 6.",
    "2 + 3 = 5 = 11/2.",
    "20% of 50 is 12.",
    "3 × 4 is 13.",
    "7 times 6 equals 43.",
    "3.5 km = 3.5 meters.",
    "9^9^9 = 387420489.",
]


@pytest.fixture
def store(tmp_path: Path) -> LearnerStore:
    return LearnerStore(
        f"sqlite:///{tmp_path / 'learners.sqlite'}", fallback_bank=load_default_bank, kdf_n=2
    )


def make_agent(store, reply) -> tuple[TutorAgent, ScriptedGenerator]:
    gen = ScriptedGenerator(reply)
    return TutorAgent(gen, store, None, AgentSettings(min_score=0.05)), gen


def turn(agent, store, *messages, mode="auto"):
    ana = store.add_learner("ana")
    sess = agent.start_session(ana)
    return [list(agent.respond(ana, sess, m, mode=mode)) for m in messages]


def test_an_affirmed_wrong_answer_never_reaches_the_student(store):
    agent, gen = make_agent(store, "That's correct! Well done, 41 is indeed it. What is 7 + 5?")
    _, ev = turn(agent, store, "What is 17 + 25?", "41")
    grading = next(e for e in ev if e.kind == "grading")
    assert not grading.correct and gen.calls  # the LM wrote the rest of the turn
    for text in (seen(ev), ever_shown(ev)):
        assert "correct" not in text.lower() and "well done" not in text.lower()
        assert "indeed" not in text
    # the grader's verdict (the fixed feedback line) is what the student reads
    assert seen(ev).startswith(("Not quite", "Close, but not quite"))
    assert seen(ev).rstrip().endswith("What is 7 + 5?")
    assert ev[-1].text == seen(ev)
    meta = store.messages(ev[-1].session_id)[-1].meta
    assert meta["verify"]["judgements_withdrawn"] == 2


def test_a_rejected_right_step_becomes_the_graders_verdict(store):
    agent, gen = make_agent(store, "Not quite, that's wrong. What do you divide by next?")
    evs = turn(agent, store, "Solve 2x + 3 = 11", "I think 2x = 8 first, then what?")
    ev = evs[-1]
    assert not any(e.kind == "grading" for e in ev)  # a step, not an answer
    assert seen(ev) == f"{STEP_RIGHT} What do you divide by next? "
    assert "wrong" not in ever_shown(ev) and "Not quite" not in ever_shown(ev)


def test_a_false_step_is_not_affirmed(store):
    agent, gen = make_agent(store, "Yes, exactly right! Now divide both sides.")
    ev = turn(agent, store, "Solve 2x + 3 = 11", "I think 2x = 14 first, then what?")[-1]
    assert "right" not in ever_shown(ev).lower() and "Yes" not in ever_shown(ev)
    # the solution is known (issue 13, item 4): the wrong step is located by a template move
    assert "Where does the 14 come from?" in seen(ev) and len(gen.calls) == 0


def test_judgements_without_any_graded_work_are_dropped(store):
    agent, gen = make_agent(store, "Correct! Great job. Plants use light to make sugar.")
    ev = turn(agent, store, "How do plants make sugar?", mode="guide")[0]
    assert seen(ev) == "Plants use light to make sugar. "


@pytest.mark.parametrize("claim", FALSE_MATH)
def test_a_false_equation_is_withdrawn_and_regenerated(store, claim):
    replies = iter([f"Let's see. {claim} Does that help?", "What do you get for 3 + 4? "])
    agent, gen = make_agent(store, lambda m: next(replies))
    ev = turn(agent, store, "How do I check a sum?", mode="guide")[0]
    assert claim not in ever_shown(ev)  # not even briefly
    assert "reset" in [e.kind for e in ev]
    assert seen(ev).strip() == "What do you get for 3 + 4?"
    assert len(gen.calls) == 2 and STRICT_MATH in gen.calls[1][0]["content"]
    assert STRICT_MATH not in gen.calls[0][0]["content"]
    assert store.messages(ev[-1].session_id)[-1].meta["math_regenerated"] is True


@pytest.mark.parametrize("claim", FALSE_MATH)
def test_a_model_that_keeps_writing_false_equations_still_terminates(store, claim):
    agent, gen = make_agent(store, f"Good idea. {claim} Try the next step.")
    ev = turn(agent, store, "How do I check a sum?", mode="guide")[0]
    assert claim not in ever_shown(ev)
    assert seen(ev) == "Good idea. Try the next step. "  # the false sentence is dropped
    assert len(gen.calls) == 2  # one stricter regeneration, no more
    assert ev[-1].kind == "done"


def test_true_statements_pass_through_untouched(store):
    reply = (
        "Here is how it works. 3 × 4 is 12. 20% of 50 is 10. 2 + 3 = 5 = 10/2. "
        "7 times 6 equals 42. 3.5 km = 3500 m. What do you notice?"
    )
    agent, gen = make_agent(store, reply)
    ev = turn(agent, store, "How do I check a sum?", mode="guide")[0]
    assert seen(ev) == reply + " "
    assert "reset" not in [e.kind for e in ev] and len(gen.calls) == 1


def test_the_problems_equation_checks_x_equals(store):
    agent, gen = make_agent(store, "So x = 5. Check it in the equation.")
    ev = turn(agent, store, "Solve 2x + 3 = 11", "I think 2x = 8 first, then what?")[-1]
    assert "x = 5" not in ever_shown(ev)
    assert seen(ev).rstrip().endswith("Check it in the equation.")


def test_the_leak_guard_still_runs_after_the_gate(store):
    replies = iter(["Well, 17 + 25 = 42.", "What do you get when you add the tens?"])
    agent, gen = make_agent(store, lambda m: next(replies))
    ev = turn(agent, store, "What is 17 + 25?")[0]
    assert "42" not in ever_shown(ev)  # a true sum, but it states the answer
    assert seen(ev).startswith("What do you get") and ev[-1].leaks_blocked == 1


def test_a_reply_left_empty_by_the_checks_falls_back_to_a_fixed_move(store):
    agent, gen = make_agent(store, "That's right! Well done.")
    ev = turn(agent, store, "How do I check a sum?", mode="guide")[0]
    assert seen(ev) == GENERIC_HINT and len(gen.calls) == 1


def test_a_verifier_error_never_crashes_a_turn(store, monkeypatch):
    import tutor.verify.gate as gate

    def broken(*args, **kwargs):
        raise RecursionError("sympy blew up")

    monkeypatch.setattr(gate, "find_claims", broken)
    agent, gen = make_agent(store, "Plants use light. They make sugar.")
    ev = turn(agent, store, "How do plants make sugar?", mode="guide")[0]
    # every sentence is unverified: none is shown, the turn falls back to a fixed move
    assert ev[-1].kind == "done" and seen(ev) == GENERIC_HINT
    assert "Plants" not in seen(ev) and len(gen.calls) == 2


def test_a_judgement_after_streamed_words_withdraws_them_too(store):
    agent, gen = make_agent(store, "Here we go and that is correct. What comes next?")
    ev = turn(agent, store, "How do I check a sum?", mode="guide")[0]
    assert "Here we go" in ever_shown(ev)  # streamed before the judgement word arrived
    assert "correct" not in ever_shown(ev)  # the judgement itself never reached the screen
    assert seen(ev) == "What comes next? " == ev[-1].text
    assert [e.kind for e in ev].count("reset") == 1 and len(gen.calls) == 1


def test_a_reply_that_says_nothing_gets_the_fixed_move_after_it(store):
    # the bundled model's guide replies were "Great try!" alone in 6 of 60 MathDial contexts
    agent, gen = make_agent(store, "Great try!")
    ev = turn(agent, store, "How do I check a sum?", mode="guide")[0]
    assert seen(ev).rstrip() == f"Great try! {GENERIC_HINT}" and len(gen.calls) == 1


def test_a_short_reply_with_a_question_stands_as_it_is(store):
    agent, gen = make_agent(store, "What is 7 times 4?")
    ev = turn(agent, store, "How do I check a sum?", mode="guide")[0]
    assert seen(ev).rstrip() == "What is 7 times 4?"
