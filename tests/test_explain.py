"""Explain mode is grounded by construction (issue 13, item 3): scripted models that invent
facts, write false arithmetic, cite the wrong passage or answer what the course does not cover,
against a real knowledge base (hashing embedder: the lexical rules decide) and, for the
calibrated path, a fixed-vector embedder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge_base import KnowledgeBase
from knowledge_base.testing import HashEmbedder
from tutor.agent import AgentSettings, TutorAgent
from tutor.explain import (
    NOT_COVERED_REPLY,
    QUOTE_LEAD,
    UNSOURCED_NOTE,
    ExplainSettings,
    calibrated,
    grounded_check,
)
from tutor.items import load_default_bank
from tutor.store import LearnerStore
from tutor.testing.fake_lm import ScriptedGenerator
from tutor.verify import SentenceGate, VerifyContext
from tutor.verify.grounding import (
    CHECK_QUESTIONS,
    Grounding,
    content_keys,
    discussed,
    passage_sentences,
    restates,
    topic_of,
)

UNITS = (
    "# Units\n\n## Length\n\nA kilometre is 1000 metres, so 3.5 km is 3,500 m. "
    "To change kilometres to metres, multiply by 1000.\n"
)
FRACTIONS = (
    "# Fractions\n\n## Adding fractions\n\nTo add fractions with different denominators, "
    "rewrite them over a common denominator, then add the numerators. A mixed number such as "
    "1 1/2 is a whole number and a fraction; an improper fraction such as 3/2 has a numerator "
    "larger than its denominator.\n"
)
PLANTS = (
    "# Photosynthesis\n\n## What a plant needs\n\nPlants make glucose from carbon dioxide and "
    "water using light energy captured by chlorophyll in the leaves. Oxygen is given off as a "
    "by-product.\n"
)


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "units.md").write_text(UNITS)
    (docs / "plants.md").write_text(PLANTS)
    (docs / "fractions.md").write_text(FRACTIONS)
    kb = KnowledgeBase.open(tmp_path / "kb", HashEmbedder(), show_progress=False)
    kb.add([docs], collection="default")
    return kb


@pytest.fixture
def store(tmp_path: Path) -> LearnerStore:
    return LearnerStore(
        f"sqlite:///{tmp_path / 'learners.sqlite'}", fallback_bank=load_default_bank, kdf_n=2
    )


def ask(store, kb, reply, question, **explain):
    gen = ScriptedGenerator(reply)
    settings = AgentSettings(min_score=0.05, explain=ExplainSettings(**explain))
    agent = TutorAgent(gen, store, kb, settings)
    ana = store.add_learner(f"ana{len(store.list_learners())}")
    events = list(agent.respond(ana, agent.start_session(ana), question, mode="explain"))
    text = ""
    for e in events:
        text = "" if e.kind == "reset" else text + (e.text if e.kind == "text" else "")
    return text, events, gen


def test_invented_facts_are_dropped_and_the_course_is_quoted(store, kb):
    text, events, _ = ask(
        store,
        kb,
        "Photosynthesis happens in the roots at night. Plants make glucose from light and "
        "water [2]. Trees are the oldest living things on Earth.",
        "How do plants make glucose?",
    )
    assert text.startswith(QUOTE_LEAD)
    assert "Plants make glucose from carbon dioxide and water" in text  # the course's words
    assert "roots at night" not in text and "oldest living" not in text  # invented: dropped
    # the supported LM sentence stays, with its supporting passage's marker, not the LM's [2]
    plants = next(s for s in events[-2].sources if "Photosynthesis" in s.citation)
    assert f"Plants make glucose from light and water [{plants.index}]" in text
    assert plants.cited and all(not s.cited for s in events[-2].sources if s is not plants)
    assert text.rstrip().endswith("?")  # it closes with a question that checks understanding
    done = events[-1]
    assert done.text == text


def test_false_conversion_is_never_shown(store, kb):
    text, *_ = ask(
        store,
        kb,
        "So 3.5 km = 3.5 m. A kilometre is 1000 metres.",
        "How many metres are in 3.5 kilometres?",
    )
    assert "3,500 m" in text  # quoted from the course
    assert "= 3.5 m" not in text


def test_a_question_the_course_does_not_cover_gets_the_notice_and_nothing_else(store, kb):
    text, events, gen = ask(
        store, kb, "A logarithm is the inverse of an exponent [1].", "What is a logarithm?"
    )
    assert text == NOT_COVERED_REPLY
    assert not gen.calls  # nothing generated, so nothing made up
    assert events[-2].kind == "sources" and events[-2].sources == []


def test_general_knowledge_answers_marked_as_unsourced_and_still_checked(store, kb):
    text, events, gen = ask(
        store,
        kb,
        "A logarithm undoes an exponent. For example 2 + 2 = 5. It is used for big numbers.",
        "What is a logarithm?",
        general_knowledge=True,
    )
    assert text.startswith(UNSOURCED_NOTE) and "undoes an exponent" in text
    assert "2 + 2 = 5" not in text  # the arithmetic check still applies
    assert events[-2].sources == [] and len(gen.calls) == 1
    assert "[" not in gen.calls[0][0]["content"].split("Reference passages")[-1][:1]


def test_only_one_question_is_kept(store, kb):
    text, *_ = ask(
        store,
        kb,
        "What do plants need to make glucose? Isn't that right? Why are leaves green?",
        "How do plants make glucose?",
    )
    assert "What do plants need to make glucose?" in text
    assert "that right" not in text and "Why are leaves green?" not in text


def test_a_looping_model_shows_no_repeated_sentence(store, kb):
    text, *_ = ask(store, kb, "Plants make glucose from light. " * 6, "How do plants make glucose?")
    assert text.count("Plants make glucose from light") <= 1


# -- the grounding functions ----------------------------------------------------------------


def test_passage_sentences_drop_headings_images_tables_and_markup():
    text = (
        "# Title\n\n## Section\n\n**Like terms** have the same variable part: 4x and x.\n\n"
        "*[Image: a diagram of terms]*\n\n| a | b |\n|---|---|\n\n- Combine like terms by "
        "adding their coefficients.\n\nShort Label\n\nThe sum is 5x. This is called "
        "combining like terms.\n"
    )
    sentences = passage_sentences(text)
    assert sentences == [
        "Like terms have the same variable part: 4x and x.",
        "Combine like terms by adding their coefficients.",
        "The sum is 5x. This is called combining like terms.",
    ]


class FixedEncoder:
    """Vectors by keyword, so cosines are known: 'fraction' texts point one way, 'cell'
    texts another."""

    name = "sentence-transformers/all-MiniLM-L6-v2"

    def encode(self, texts):
        out = []
        for t in texts:
            t = t.lower()
            v = np.array(
                [("fraction" in t) + ("denominator" in t), "cell" in t, 0.2], dtype=np.float32
            )
            out.append(v)
        return np.stack(out)


def test_calibrated_coverage_decides_by_the_closest_sentence():
    passages = ["A fraction has a numerator and a denominator. The denominator counts parts."]
    enc = FixedEncoder().encode
    assert Grounding("What is the denominator of a fraction?", passages, enc).covered
    assert not Grounding("What is a cell membrane?", passages, enc).covered


@pytest.mark.parametrize(
    "question, topic",
    [
        ("What is photosynthesis?", "photosynthesis"),
        ("What is the mitochondria's role in a cell?", "mitochondria"),
        ("What is the role of the liver?", "liver"),
        ("What is the SI unit of temperature?", "temperature"),
        ("What are the steps of long division?", "long division"),
        ("What is a limiting factor for how fast a plant makes food?", "limiting factor"),
        ("What does PEMDAS stand for?", "PEMDAS"),
        ("What does keep, change, flip mean when dividing fractions?", "keep, change, flip"),
        ("What are the numbers being added called, and what is the result?", "numbers"),
        ("Define a cation.", "cation"),
        ("What does the teacher memo say about grading?", None),
        ("What does a plant do with the sugar it makes?", None),
        ("What is 2/3 of 18?", None),  # a calculation: the worked line and the quotes
        ("What is it called when plants release water?", None),
        ("How does a battery produce electricity?", None),  # not definitional: no topic check
    ],
)
def test_the_term_a_definitional_question_asks_about(question, topic):
    assert topic_of(question) == topic


def test_a_term_named_only_in_passing_does_not_cover_its_question():
    """kf154: a sentence close to the question that names its term once, in passing, made the
    question "covered" and was quoted; the student was never told the course does not
    answer it."""
    enc = CellEncoder().encode
    passing = ["Her discovery concerned the phosphorylation of glucose in the cell's mitochondria."]
    g = Grounding("What is the mitochondria's role in a cell?", passing, enc)
    assert g.best >= g.cover_threshold  # close enough by the cosine alone
    assert discussed("mitochondria", passing) == (1, False)
    assert not g.on_topic and not g.covered
    # the same closeness, and the term defined where it is named once: covered
    defined = ["A mitochondrion is the part of a cell that releases energy from glucose."]
    assert discussed("mitochondria", defined) == (1, True)
    assert Grounding("What is the mitochondria's role in a cell?", defined, enc).covered
    # or named on two lines: discussed
    twice = passing + ["Mitochondria release the energy a cell uses."]
    assert Grounding("What is the mitochondria's role in a cell?", twice, enc).covered
    # a term the passages never name: the question is not covered however close they are
    assert not Grounding("What is photosynthesis?", ["Cells use glucose for energy."], enc).covered


class CellEncoder:
    """Every text about cells points the same way: cosine 1 between them."""

    name = "sentence-transformers/all-MiniLM-L6-v2"

    def encode(self, texts):
        return np.stack([np.array([1.0, 0.1 * ("cell" not in t.lower())]) for t in texts])


def test_questions_exercises_and_echoes_of_the_question_neither_cover_nor_are_quoted():
    enc = FixedEncoder().encode
    q = "What is the denominator of a fraction?"
    cannot = [
        "Problem: Find the denominator of the fraction 3/4.",
        "What is the denominator of this fraction?",
        "(a) the denominator of a fraction; (b) the numerator of a fraction.",
        "The denominator of a fraction.",
    ]
    assert not Grounding(q, [" ".join(cannot)], enc).covered
    g = Grounding(
        q, [" ".join(cannot) + " The denominator counts the equal parts of a whole."], enc
    )
    assert g.covered
    assert [c.text for c in g.core(4)] == ["The denominator counts the equal parts of a whole."]
    # support still finds a worked example's sentence for a statement the model wrote
    ex = Grounding(
        "How do I change km to m?", ["Example: a kilometre is 1000 metres, so 3.5 km is 3,500 m."]
    )
    assert not ex.covered
    assert ex.support("A kilometre is 1000 metres.") is not None


def test_support_needs_the_numbers_of_the_statement_in_the_passage():
    g = Grounding("How many metres in a kilometre?", [UNITS])
    assert g.support("A kilometre is 1000 metres.") is not None
    assert g.support("A kilometre is 100 metres.") is None  # 100 is not in the passage
    assert g.support("Bananas are rich in potassium.") is None


def test_the_quote_never_states_an_open_problems_answer():
    g = Grounding("How do I change km to m?", [UNITS])
    core = g.core(4, avoid=lambda s: "3,500" in s)
    assert core and all("3,500" not in c.text for c in core)


def test_the_gate_check_cites_and_drops():
    g = Grounding("How do plants make glucose?", [UNITS, PLANTS])
    gate = SentenceGate(VerifyContext(), drop_bad_math=True, check=grounded_check(g), early=False)
    out = gate.feed("Plants make glucose using light [1]. The moon is cheese. ") + gate.finish()
    assert out.startswith("Plants make glucose using light [2].")
    assert "cheese" not in out and gate.report.unsupported == 1


def test_a_checker_error_leaves_the_sentence_unshown():
    def broken(sentence, ctx):
        raise RuntimeError("checker bug")

    gate = SentenceGate(VerifyContext(), drop_bad_math=True, check=broken, early=False)
    assert gate.feed("Anything at all. ") + gate.finish() == ""


def test_thresholds_are_the_calibrated_ones_only_for_the_bundled_embedder():
    enc, cover, support = calibrated(FixedEncoder(), ExplainSettings())
    assert enc is not None and (cover, support) == (0.52, 0.75)
    assert calibrated(HashEmbedder(), ExplainSettings())[0] is None  # lexical rules
    enc, cover, _ = calibrated(HashEmbedder(), ExplainSettings(cover_threshold=0.4))
    assert enc is not None and cover == 0.4


def test_check_questions_are_questions_and_content_keys_skip_stop_words():
    assert all(q.endswith("?") for q in CHECK_QUESTIONS)
    assert content_keys("What are like terms?") == ["like", "term"]


@pytest.mark.parametrize(
    ("question", "line"),
    [
        ("How do I add fractions like 1/2 + 1/3?", "Worked out: 1/2 + 1/3 = 5/6."),
        ("What is 7/4 as a mixed number?", "Worked out: 7/4 = 1 3/4."),
        ("How do I write 5/2 as a mixed number?", "Worked out: 5/2 = 2 1/2."),
    ],
)
def test_a_calculation_asked_about_is_worked_out_exactly_not_by_the_model(
    store, kb, question: str, line: str
):
    text, events, _ = ask(
        store, kb, "So the answer is 2/5. Add the tops and the bottoms.", question
    )
    assert text.startswith(QUOTE_LEAD) and "common denominator" in text  # the course's method
    assert line in text  # computed here (tutor.worked), not written by the model
    assert "2/5" not in text and "tops and the bottoms" not in text  # the model's: unsupported
    assert events[-1].text == text


def test_the_worked_line_never_states_an_open_problems_answer(store, kb):
    gen = ScriptedGenerator("Let's see.")
    agent = TutorAgent(gen, store, kb, AgentSettings(min_score=0.05))
    ana = store.add_learner("ana")
    sess = agent.start_session(ana)
    list(agent.respond(ana, sess, "What is 1/2 + 1/3?", mode="auto"))  # opens it: 5/6
    assert store.get_state(sess.id).problem
    events = list(
        agent.respond(ana, sess, "How do I add fractions like 1/2 + 1/3?", mode="explain")
    )
    text = "".join(e.text for e in events if e.kind == "text")
    assert "5/6" not in text and "Worked out" not in text


def test_explain_sentences_come_from_the_base_model_unless_the_adapter_is_asked_for(store, kb):
    """tutor.explain_adapter off (the default): explain mode asks the generator for the base
    model alone (the shipped tutoring LoRA is switched off for the call); on, the adapter."""
    from tutor.config import Config

    assert Config().tutor.explain_adapter is False
    assert AgentSettings.from_config(Config()).explain.adapter is False
    _, _, gen = ask(
        store, kb, "Plants make glucose from light and water.", "How do plants make glucose?"
    )
    assert gen.options and all(o.get("adapter") is False for o in gen.options)
    _, _, gen = ask(store, kb, "Plants make glucose.", "How do plants make glucose?", adapter=True)
    assert gen.options and all(o.get("adapter") is True for o in gen.options)


CATIONS = (
    "Positively charged atoms called cations are formed when an atom loses one or more electrons."
)
ADDITION = (
    "This property is called the Commutative Property of Addition, which states that changing "
    "the order of the addends does not change their sum."
)


def test_restates_admits_a_restatement_and_refuses_what_the_source_does_not_say():
    # model sentences that closeness alone admitted (cosine 0.77 and 0.86 with the embedder)
    assert not restates(
        "A cation is a negatively charged ion consisting of a positively charged atom bonded to itself.",
        CATIONS,
    )
    assert not restates(  # the source says "does not change"; the statement drops the "not"
        "The order of the addends changes their sum.", ADDITION
    )
    assert restates(
        "The sales tax can be found by multiplying the purchase price by the sales tax rate.",
        "To find the sales tax multiply the purchase price by the sales tax rate.",
        "How do you find the sales tax on a purchase?",
    )
    assert restates("Changing the order of the addends does not change their sum.", ADDITION)


def test_support_refuses_a_close_paraphrase_that_adds_a_claim():
    g = Grounding("What is a cation?", [CATIONS], CellEncoder().encode, support_threshold=0.5)
    g_all = Grounding("What is a cation?", [CATIONS + " Every cell has a membrane."], None)
    for grounding in (g, g_all):  # the embedder's rule and the lexical one
        assert grounding.support(
            "Cations are positively charged atoms formed when an atom loses electrons."
        )
        assert (
            grounding.support(
                "A cation is a negatively charged atom formed when an atom gains electrons."
            )
            is None
        )


def test_the_gate_check_drops_a_sentence_that_only_leads_into_a_list():
    g = Grounding("How do plants make glucose?", [PLANTS])
    gate = SentenceGate(VerifyContext(), drop_bad_math=True, check=grounded_check(g), early=False)
    out = (
        gate.feed("Plants make glucose using light energy. Plants need these things: ")
        + gate.finish()
    )
    assert out.startswith("Plants make glucose using light energy [1].")
    assert "things" not in out
