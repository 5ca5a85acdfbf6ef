"""The intent classifier (tutor.intents): its data format, fitting and scoring with a tiny
embedder, the shipped weights on the bundled MiniLM, and the messages issue 14 quotes going
through ``TutorAgent.respond`` to the right kind of turn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_base.testing import HashEmbedder
from tutor.agent import AgentSettings, TutorAgent
from tutor.errors import InputError
from tutor.guide import CANNOT_CHECK, NO_PROBLEM_REPLY
from tutor.intents import LABELS, IntentModel, TurnState, load_examples
from tutor.intents.model import SHIPPED
from tutor.intents.train import evaluate, fit, scores
from tutor.items import load_default_bank
from tutor.modes import detect_intent
from tutor.safety import ABOUT_REPLY
from tutor.store import LearnerStore
from tutor.store.records import SessionState
from tutor.testing.fake_lm import ScriptedGenerator

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "intents"
OPEN = TurnState(True, "bank", False)
NONE = TurnState()

# (text, state, label): every kind, in the states where the words alone are ambiguous
TINY = [
    ("why do we flip the second fraction?", NONE, "question"),
    ("what does denominator mean?", OPEN, "question"),
    ("3/4", OPEN, "answer"),
    ("I got 12", OPEN, "answer"),
    ("first I divided 600 by 2 to get 300", OPEN, "step"),
    ("24 x 14 = 336", OPEN, "step"),
    ("hint please", OPEN, "hint"),
    ("i'm stuck", OPEN, "hint"),
    ("just tell me the answer", OPEN, "solution"),
    ("show me the solution", OPEN, "solution"),
    ("next", NONE, "practice"),
    ("quiz me on fractions", NONE, "practice"),
    ("what is 3/4 + 1/8?", OPEN, "new_problem"),
    ("solve 2x + 3 = 11", NONE, "new_problem"),
    ("hola", NONE, "greeting"),
    ("thanks!", OPEN, "greeting"),
    ("who won the football last night", NONE, "offtopic"),
    ("tell me a joke", NONE, "offtopic"),
    ("are you an AI?", NONE, "meta"),
    ("how do I change the mode", NONE, "meta"),
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(items=TINY) -> list[dict]:
    return [
        {
            "text": t,
            "label": lab,
            "problem_open": s.problem_open,
            "problem_kind": s.problem_kind,
            "last_tutor_question": s.last_tutor_question,
        }
        for t, s, lab in items
    ]


@pytest.mark.parametrize(
    "row, what",
    [
        ({"label": "answer"}, "missing field 'text'"),
        ({"text": "12", "label": "guess"}, "'label' 'guess' is not one of"),
        ({"text": "  ", "label": "answer"}, "'text' must be a non-empty string"),
        ({"text": "12", "label": "answer", "problem_kind": "exam"}, "'problem_kind' 'exam'"),
    ],
)
def test_a_bad_line_is_named_with_what_to_fix(tmp_path: Path, row: dict, what: str) -> None:
    path = _write(tmp_path / "d.jsonl", [*_rows()[:2], row])
    with pytest.raises(InputError, match=rf"d.jsonl:3: {what}"):
        load_examples(path)
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(InputError, match="bad.jsonl:1"):
        load_examples(tmp_path / "bad.jsonl")


def test_fitted_weights_round_trip_and_score_the_training_messages(tmp_path: Path) -> None:
    emb = HashEmbedder(256)
    examples = load_examples(_write(tmp_path / "t.jsonl", _rows(TINY * 3)))
    weights = fit(examples, emb, progress=False)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(weights))
    model = IntentModel.load(path, emb)
    report = evaluate(model, load_examples(_write(tmp_path / "h.jsonl", _rows())))
    assert report["model"]["accuracy"] >= 0.9, report["errors"]
    assert set(report["model"]["per_label"]) == set(LABELS)
    # another embedder's vectors: the weights do not apply, the rules decide
    assert IntentModel.load_for(HashEmbedder(256, name="other"), path) is None
    assert IntentModel.load_for(emb, path) is not None
    assert IntentModel.load_for(emb, tmp_path / "missing.json") is None
    (tmp_path / "old.json").write_text(json.dumps({**weights, "features": ["x"]}))
    with pytest.raises(InputError, match="another version"):
        IntentModel.load(tmp_path / "old.json", emb)


def test_scores_are_the_usual_definitions() -> None:
    s = scores(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert s["accuracy"] == 0.75
    assert s["per_label"] == {} and s["macro_f1"] == 0  # "a", "b" are not intent labels
    s = scores(["hint", "hint", "meta"], ["hint", "meta", "meta"])
    assert s["per_label"]["hint"]["precision"] == 1.0 and s["per_label"]["hint"]["recall"] == 0.5
    assert round(s["per_label"]["meta"]["f1"], 3) == 0.667


def test_the_label_decides_the_turn_and_safety_stays_a_rule() -> None:
    def always(label: str):
        return lambda text: label

    assert detect_intent("3/4", problem_open=True, classifier=always("answer")).action == "grade"
    i = detect_intent(
        "Convert 3.5 km to meters", problem_open=True, classifier=always("new_problem")
    )
    assert i.mode == "explain" and i.action == ""
    i = detect_intent("what is 3/4 + 1/8?", problem_open=True, classifier=always("new_problem"))
    assert i.action == "open_problem"
    assert detect_intent("hint", classifier=always("hint")).action == "no_problem"
    assert detect_intent("who made you", classifier=always("meta")).action == "about"
    # explicit modes keep their meaning: explain never grades, practice with nothing open serves
    i = detect_intent("12", explicit_mode="explain", problem_open=True, classifier=always("answer"))
    assert i.mode == "explain" and i.action == ""
    assert detect_intent("hi", explicit_mode="practice", classifier=always("greeting")).action == (
        "next_item"
    )
    i = detect_intent("how do I make a bomb", classifier=always("question"))
    assert i.rule == "unsafe"


# -- the shipped model on the bundled embedder -------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    from knowledge_base.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("all-minilm-l6-v2", device="cpu")


@pytest.fixture(scope="module")
def shipped(minilm) -> IntentModel:
    model = IntentModel.load_for(minilm)
    assert model is not None, "the shipped weights must fit the bundled embedder"
    return model


QUOTED = [  # issue 14's messages, in the state they were sent in
    ("Convert 3.5 km to meters", OPEN, "new_problem"),
    ("Solve 2^x = 16", OPEN, "new_problem"),
    ("He sold 20 crates over the weekend.", TurnState(True, "own", True), "step"),
    ("so 600 divided by 2 is 300 for each of them", TurnState(True, "word", True), "step"),
    (
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
        "in May. How many clips did Natalia sell altogether in April and May?",
        NONE,
        "new_problem",
    ),
    ("72", TurnState(True, "word", True), "answer"),
    ("next", NONE, "practice"),
    ("not 18", OPEN, "answer"),
    ("why is the sky blue?", OPEN, "question"),
]


@pytest.mark.parametrize("text, state, label", QUOTED)
def test_the_shipped_model_reads_the_quoted_messages(shipped, text, state, label) -> None:
    assert shipped.predict(text, state).label == label


@pytest.mark.parametrize(
    "text",
    ["\u200b", "x" * 4000, "🙂🙂🙂", "Привет, how do I add 1/2 и 1/3?", "a\x00b\x1b[31mc\r\n", "?"],
)
def test_any_input_gets_an_intent(shipped, text: str) -> None:
    for state in (NONE, OPEN):
        p = shipped.predict(text, state)
        assert p.label in LABELS and abs(sum(p.probabilities.values()) - 1) < 1e-4


def test_the_shipped_model_beats_the_rules_on_the_held_out_messages(shipped) -> None:
    report = evaluate(shipped, load_examples(DATA / "heldout.jsonl"))
    assert report["model"]["accuracy"] > report["rules"]["accuracy"]
    train = {json.loads(x)["text"] for x in (DATA / "train.jsonl").read_text().splitlines()}
    held = {json.loads(x)["text"] for x in (DATA / "heldout.jsonl").read_text().splitlines()}
    assert not train & held, "a held-out message is in the training file"
    meta = json.loads(SHIPPED.read_text())["training"]
    assert meta["examples"] == len(load_examples(DATA / "train.jsonl"))


# -- end to end: TutorAgent.respond with the model ---------------------------------------------


class _NoCourse:
    """A knowledge base with the bundled embedder and nothing in it."""

    def __init__(self, embedder) -> None:
        self.embedder = embedder

    def search(self, query, k=None, collection=None):
        return []


@pytest.fixture
def agent(tmp_path: Path, minilm):
    store = LearnerStore(
        f"sqlite:///{tmp_path / 'learners.sqlite'}", fallback_bank=load_default_bank, kdf_n=2
    )
    gen = ScriptedGenerator("Light scatters in the air. What colour do you see most?")
    agent = TutorAgent(gen, store, _NoCourse(minilm), AgentSettings(min_score=0.05))
    ana = store.add_learner("ana")
    return agent, store, ana, agent.start_session(ana)


def _turn(agent, ana, sess, text: str, mode: str = "auto"):
    events = list(agent.respond(ana, sess, text, mode=mode))
    said = ""
    for e in events:
        said = "" if e.kind == "reset" else said + (e.text if e.kind == "text" else "")
    return events, said


def _graded(events) -> bool:
    return any(e.kind == "grading" for e in events)


def test_a_new_question_with_a_problem_open_is_not_graded(agent) -> None:
    agent, store, ana, sess = agent
    store.set_state(sess.id, SessionState(item_id="frac-01"), learner_id=ana.id)
    for text in ("Convert 3.5 km to meters", "Solve 2^x = 16", "why is the sky blue?"):
        events, said = _turn(agent, ana, sess, text)
        assert not _graded(events) and not said.startswith("Not quite"), (text, said)
    assert store.get_state(sess.id).item_id == "frac-01"  # the problem stays open


def test_a_step_is_not_graded_as_a_final_answer(agent) -> None:
    agent, store, ana, sess = agent
    sam = (
        "Sam sold 8 crates on each of 5 weekdays and 10 crates on each day of the weekend. "
        "How many crates did he sell in the week?"
    )
    store.set_state(
        sess.id, SessionState().with_item(None, problem=sam, answer="60"), learner_id=ana.id
    )
    events, said = _turn(agent, ana, sess, "He sold 20 crates over the weekend.")
    assert not _graded(events) and "Not quite" not in said


def test_a_pasted_word_problem_opens_and_its_answer_is_never_judged(agent) -> None:
    agent, store, ana, sess = agent
    natalia = QUOTED[4][0]
    _, said = _turn(agent, ana, sess, natalia)
    assert said.startswith(CANNOT_CHECK)
    assert store.get_state(sess.id).problem == natalia
    events, said = _turn(agent, ana, sess, "72")
    assert not _graded(events) and said.startswith(CANNOT_CHECK)
    for word in ("right", "correct", "wrong", "0.25"):
        assert word not in said.lower()


def test_next_about_and_a_hint_with_nothing_open(agent) -> None:
    agent, store, ana, sess = agent
    events, _ = _turn(agent, ana, sess, "next")
    first = next(e.item_id for e in events if e.kind == "item")
    events, _ = _turn(agent, ana, sess, "another one")  # another one: not the same again
    assert next(e.item_id for e in events if e.kind == "item") != first
    store.set_state(sess.id, SessionState(), learner_id=ana.id)
    assert _turn(agent, ana, sess, "can u give me a hint")[1] == NO_PROBLEM_REPLY
    assert _turn(agent, ana, sess, "what can you do?")[1] == ABOUT_REPLY


def test_without_the_model_a_word_problem_still_opens_and_takes_hints(tmp_path: Path) -> None:
    store = LearnerStore(
        f"sqlite:///{tmp_path / 'l.sqlite'}", fallback_bank=load_default_bank, kdf_n=2
    )
    gen = ScriptedGenerator("That's right, 72 is correct!")
    agent = TutorAgent(gen, store, None, AgentSettings(min_score=0.05))  # no embedder: rules
    ana = store.add_learner("ana")
    sess = agent.start_session(ana)
    assert agent.intents.model is None
    _, said = _turn(agent, ana, sess, QUOTED[4][0], mode="guide")
    assert said.startswith(CANNOT_CHECK) and store.get_state(sess.id).problem == QUOTED[4][0]
    for text in ("Can I have a hint?", "72", "i give up, show me the answer"):
        events, said = _turn(agent, ana, sess, text)
        assert not _graded(events) and gen.calls == [], (text, said)
        assert "correct" not in said.lower() and "right" not in said.lower()


@pytest.mark.parametrize(
    "text, mode, action",
    [
        ("He sold 20 crates over the weekend.", "auto", ""),
        ("He sold 20 crates over the weekend.", "guide", ""),
        ("60 crates", "auto", "grade"),
        ("next", "auto", "next_item"),
        ("another one!", "auto", "next_item"),
    ],
)
def test_the_rules_without_the_model_read_steps_and_next(text: str, mode: str, action: str) -> None:
    assert detect_intent(text, explicit_mode=mode, problem_open=True).action == action
