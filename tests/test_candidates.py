"""Best-of-N turns (issue 15, item 3): with ``[tutor] candidates`` = N the agent samples N
replies, discards those a verifier rejects (a judgement the grader does not back, false
arithmetic, a reveal of the answer) and shows the best of the rest by the ranker's score."""

from __future__ import annotations

from pathlib import Path

import pytest

from tutor.agent import AgentSettings, TutorAgent
from tutor.candidates import SAMPLING, RuleRanker
from tutor.config import load_config
from tutor.errors import ConfigError
from tutor.items import load_default_bank
from tutor.store import LearnerStore
from tutor.testing.events import ever_shown, seen
from tutor.testing.fake_lm import ScriptedGenerator

PROBE = "What do you get when you add the tens first?"
TELL = "You should add the tens and then the ones."


class FakeRanker:
    """Scores a reply ending in a question as probing; records what it was asked."""

    name = "fake"

    def __init__(self) -> None:
        self.asked: list[tuple[list[str], str, tuple[str, ...]]] = []

    def scores(self, replies, problem, student, answer, goal):
        self.asked.append((list(replies), problem, tuple(goal)))
        return [0.9 if r.rstrip().endswith("?") else 0.2 for r in replies]


@pytest.fixture
def store(tmp_path: Path) -> LearnerStore:
    return LearnerStore(
        f"sqlite:///{tmp_path / 'learners.sqlite'}", fallback_bank=load_default_bank, kdf_n=2
    )


def make_agent(store, replies, n, ranker=None):
    """An agent whose scripted LM returns ``replies`` in turn (the last one repeats) for the
    last message ``run`` sends; a plain question before it."""
    script = [PROBE]
    gen = ScriptedGenerator(lambda m: script.pop(0) if len(script) > 1 else script[0])
    gen.script, gen.replies = script, list(replies)  # type: ignore[attr-defined]
    options = gen.options  # each stream call's options, recorded by the scripted LM
    agent = TutorAgent(gen, store, None, AgentSettings(min_score=0.05, candidates=n))
    agent.ranker = ranker if ranker is not None else FakeRanker()  # type: ignore[attr-defined]
    return agent, gen, options


def run(agent, store, *messages, mode="auto"):
    ana = store.add_learner("ana")
    sess = agent.start_session(ana)
    for m in messages[:-1]:
        list(agent.respond(ana, sess, m, mode=mode))
    gen = agent.generator
    gen.script[:] = gen.replies
    gen.calls.clear()
    gen.options.clear()
    ev = list(agent.respond(ana, sess, messages[-1], mode=mode))
    return ev, store.messages(ev[-1].session_id)[-1].meta


def test_an_affirmation_of_a_wrong_answer_is_never_chosen(store):
    bad = "That's correct! Well done, 41 is it. What is 7 + 5?"
    agent, gen, _ = make_agent(store, [bad, PROBE, bad], 3)
    ev, meta = run(agent, store, "What is 17 + 25?", "41")
    assert PROBE in seen(ev) and "correct!" not in ever_shown(ev).lower()
    c = meta["candidates"]
    assert c["chosen"] == 1 and c["generated"] == 3
    assert [x["outcome"] for x in c["candidates"]] == ["judgement", "ok", "judgement"]


def test_false_arithmetic_is_never_chosen_and_nothing_of_it_is_shown(store):
    bad = "Let's see. 10 + 5 = 6. Does that help?"
    agent, gen, _ = make_agent(store, [bad, bad, "What is 10 + 5? "], 3)
    ev, meta = run(agent, store, "How do I check a sum?", mode="guide")
    assert "= 6" not in ever_shown(ev)
    assert seen(ev).strip() == "What is 10 + 5?"
    assert [x["outcome"] for x in meta["candidates"]["candidates"]] == ["math", "math", "ok"]


def test_a_reveal_of_the_answer_is_never_chosen(store):
    leak = "The answer is 42, since 17 + 25 = 42. Can you see why?"
    agent, gen, _ = make_agent(store, [leak, PROBE], 2)
    ev, meta = run(agent, store, "What is 17 + 25?", "41")
    assert "42" not in ever_shown(ev) and PROBE in seen(ev)
    assert meta["candidates"]["candidates"][0]["outcome"] == "leak"


def test_the_ranker_picks_the_probing_candidate(store):
    ranker = FakeRanker()
    agent, gen, _ = make_agent(store, [TELL, PROBE, TELL, TELL], 4, ranker)
    ev, meta = run(agent, store, "How do I add 17 and 25?", mode="guide")
    assert seen(ev).strip() == PROBE
    c = meta["candidates"]
    assert c["chosen"] == 1 and c["ranker"] == "fake"
    assert [x["score"] for x in c["candidates"]] == [0.2, 0.9, 0.2, 0.2]
    assert len(ranker.asked) == 1 and len(ranker.asked[0][0]) == 4


def test_candidates_after_the_first_are_sampled_with_their_own_seed(store):
    agent, gen, options = make_agent(store, [TELL, PROBE, TELL], 3)
    run(agent, store, "How do I add 17 and 25?", mode="guide")
    assert options[0] == {}  # the first stays greedy, as a single reply is
    assert options[1] == {**SAMPLING, "seed": 1} and options[2] == {**SAMPLING, "seed": 2}


def test_one_candidate_behaves_as_before(store):
    agent, gen, options = make_agent(store, [TELL, PROBE], 1)
    ev, meta = run(agent, store, "How do I add 17 and 25?", mode="guide")
    assert len(gen.calls) == 1 and options == [{}]
    assert seen(ev).strip() == TELL and "candidates" not in meta


def test_every_candidate_failing_falls_back_to_the_single_reply_tries(store):
    bad = "Let's see. 10 + 5 = 6. Does that help?"
    agent, gen, _ = make_agent(store, [bad], 2)
    ev, meta = run(agent, store, "How do I check a sum?", mode="guide")
    assert "= 6" not in ever_shown(ev)
    assert meta["candidates"]["chosen"] is None and "fallback" in meta["candidates"]
    # the single-reply tries start strict (the candidates wrote false math): one more call,
    # whose false sentence is dropped; a reply that is left empty becomes the template hint
    assert len(gen.calls) == 3 and "math_regenerated" not in meta
    assert seen(ev).strip()


def test_a_leak_in_every_candidate_ends_in_the_verdict_and_a_hint(store):
    leak = "The answer is 42. Well, 17 + 25 = 42."
    agent, gen, _ = make_agent(store, [leak], 2)
    ev, meta = run(agent, store, "What is 17 + 25?", "41")
    assert "42" not in ever_shown(ev)
    assert seen(ev).startswith(("Not quite", "Close, but not quite"))


def test_the_rule_ranker_prefers_a_question():
    assert RuleRanker().scores([TELL, PROBE], "", "", "", ("probing",)) == [0.0, 1.0]


@pytest.mark.parametrize("bad", [0, 9, -1])
def test_candidates_out_of_range_is_a_clear_config_error(bad):
    with pytest.raises(ConfigError, match=rf"tutor.candidates must be 1..8.*got {bad}"):
        load_config(None, {}, overrides={"tutor": {"candidates": bad}})


def test_candidates_reach_the_agent_settings():
    cfg = load_config(None, {}, overrides={"tutor": {"candidates": 4}})
    assert AgentSettings.from_config(cfg).candidates == 4


def test_judgements_in_every_candidate_show_the_first_as_one_reply_would(store):
    agent, gen, _ = make_agent(store, ["Great job! What is 7 + 5?", "Well done! Add them."], 2)
    ev, meta = run(agent, store, "How do I check a sum?", mode="guide")
    assert seen(ev).strip() == "What is 7 + 5?" and len(gen.calls) == 2  # no extra call
    assert meta["candidates"]["chosen"] == 0 and "fallback" in meta["candidates"]


@pytest.mark.slow
def test_the_shipped_classifier_ranks_a_probing_reply_first_and_takes_a_long_one():
    from tutor.candidates import OPEN_GOAL, ClassifierRanker
    from tutor.judge.model import SHIPPED, MoveClassifier

    ranker = ClassifierRanker(MoveClassifier.load(SHIPPED))
    telling = "The answer is 42 because 17 + 25 = 42."
    long = "You should add the tens first. " * 60 + "What do you get?"  # over its 128 tokens
    scores = ranker.scores([telling, PROBE, long], "What is 17 + 25?", "41", "42", OPEN_GOAL)
    assert scores[1] > scores[0] and all(0.0 <= s <= 1.0 for s in scores)


def test_a_ranker_that_fails_falls_back_to_the_rule(store):
    class Broken:
        name = "broken"

        def scores(self, *a):
            raise RuntimeError("no")

    agent, gen, _ = make_agent(store, [TELL, PROBE], 2, Broken())
    ev, meta = run(agent, store, "How do I add 17 and 25?", mode="guide")
    assert seen(ev).strip() == PROBE and meta["candidates"]["ranker"] == "rule"
