"""Eval runs end to end with a scripted generator (MockModel), the hashing embedder, real FAISS,
SQLite and the real agent: reports, resume, interruption, determinism, the leak guard seen
through the pedagogy and simulation suites, grounding, retrieval, the learner model, the LM
judge (reachable, unreachable) and judge calibration."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import numpy as np
import pytest

from evals.api import run_eval
from evals.report import load_report
from evals.run import EvalOptions
from knowledge_base.testing import HashEmbedder
from tutor import kt
from tutor.config import load_config
from tutor.errors import InputError
from tutor.testing.fake_lm import ScriptedGenerator

REPO = Path(__file__).resolve().parents[1]
SAMPLE_QA = f"{REPO / 'data' / 'curriculum' / 'qa.jsonl'}={REPO / 'data' / 'curriculum'}"


# hand-made dialogues (shared dialogue form): every answer is 3/4 or 5/6
DIALOGUES = [
    {
        "id": "d1",
        "source": "test",
        "problem": "What is 1/4 + 2/4?",
        "ground_truth": "1/4 + 2/4 = 3/4\n3/4",
        "messages": [
            {"role": "teacher", "content": "What is 1/4 + 2/4?"},
            {"role": "student", "content": "I got 3/8."},
            {"role": "teacher", "content": "Do the quarters change size when you add them?"},
        ],
    },
    {
        "id": "d2",
        "source": "test",
        "problem": "Sam ate 2/8 of a pie and Ann ate 4/8. How much did they eat together?",
        "ground_truth": "2/8 + 4/8 = 6/8 = 3/4\n3/4",
        "messages": [
            {"role": "teacher", "content": "Walk me through your solution."},
            {
                "role": "student",
                "content": "I added 2 + 4 = 6 and 8 + 8 = 16, so they ate 6/16 of the pie in total.",
            },
            {"role": "teacher", "content": "Are the pieces eighths or sixteenths?"},
        ],
    },
    {
        "id": "d3",
        "source": "test",
        "problem": "What is 1/2 + 1/3?",
        "ground_truth": "3/6 + 2/6 = 5/6\n5/6",
        "messages": [
            {"role": "student", "content": "Is it 2/5?"},
            {"role": "teacher", "content": "Is 2/5 bigger or smaller than 1/2?"},
        ],
    },
]

MRBENCH_FORM = [
    {
        "conversation_id": "c1",
        "conversation_history": "Tutor: What is 1/2 + 1/4?\nStudent: 2/6",
        "Data": "Handmade",
        "Ground_Truth_Solution": "1/2 = 2/4 and 2/4 + 1/4 = 3/4\n3/4",
        "anno_llm_responses": {
            "Expert": {
                "response": "Nice try! What is 1/2 written in quarters?",
                "annotation": {
                    "Mistake_Identification": "Yes",
                    "Revealing_of_the_Answer": "No",
                    "Tutor_Tone": "Encouraging",
                },
            },
            "Teller": {
                "response": "Not quite. The answer is 0.75.",
                "annotation": {
                    "Mistake_Identification": "Yes",
                    "Revealing_of_the_Answer": "Yes (and the revealed answer is correct)",
                    "Tutor_Tone": "Neutral",
                },
            },
            "Praiser": {
                "response": "Great job!",
                "annotation": {
                    "Mistake_Identification": "No",
                    "Revealing_of_the_Answer": "No",
                    "Tutor_Tone": "Encouraging",
                },
            },
        },
    }
]


def answer_of(messages: list[dict]) -> str:
    text = " ".join(m["content"] for m in messages)
    return "5/6" if "1/3" in text else "3/4"


def teller(messages: list[dict]) -> str:
    """A model that gives the answer away (in decimal form for 3/4)."""
    return (
        "Good try! That would be 0.75 in decimal form."
        if answer_of(messages) == "3/4"
        else "It is 5/6."
    )


@pytest.fixture
def dialogues(tmp_path: Path) -> Path:
    p = tmp_path / "dialogues.jsonl"
    p.write_text("".join(json.dumps(d) + "\n" for d in DIALOGUES))
    return p


@pytest.fixture
def config(tmp_path: Path):
    return load_config(
        None,
        {},
        {
            "paths": {"home": str(tmp_path / "home")},
            "kb": {"min_score": "0.05"},
            "lm": {"max_new_tokens": "40"},
        },
    )


def opts(out: Path, dialogues: Path, **kw) -> EvalOptions:
    base = dict(
        out=out,
        suites=("pedagogy",),
        data=[str(dialogues)],
        sim_data=[str(dialogues)],
        qa=[SAMPLE_QA],
        limit=0,
        qa_limit=6,
        grounding_limit=2,
        sim_limit=0,
        sim_learners=20,
        progress=False,
        plots=False,
    )
    base.update(kw)
    return EvalOptions(**base)


def items(report: dict, suite: str) -> list[dict]:
    return report["items"][suite]


def strip_times(recs: list[dict]) -> list[dict]:
    out = []
    for r in recs:
        r = {k: v for k, v in r.items() if k not in ("seconds", "ms")}
        out.append(r)
    return out


# -- pedagogy through the real agent --------------------------------------------------------------


def test_leak_guard_vs_raw_model_on_telling(tmp_path: Path, dialogues: Path, config) -> None:
    gen = ScriptedGenerator(teller)
    rep = run_eval(opts(tmp_path / "out", dialogues), config, generator=gen)
    systems = rep["suites"]["pedagogy"]["summary"]["systems"]
    # the raw model states the answer every time ("0.75" counts for 3/4) ...
    assert systems["raw"]["telling_rate"] == 1.0 and systems["raw"]["n"] == 3
    # ... the agent's leak guard withholds it (retry, then the fallback hint)
    assert systems["agent"]["telling_rate"] == 0.0
    agent_items = [r for r in items(rep, "pedagogy") if r["system"] == "agent"]
    assert all(r["mode"] == "guide" for r in agent_items)
    # d2's student shows work and the worked solution is known: the guide's move locates the
    # mistake without the LM (issue 13, item 4); the other two go to the LM and its guard
    located = next(r for r in agent_items if r["context_id"] == "d2")
    assert "You worked out 8 + 8 and got 16" in located["response"]
    assert located["lm_outputs"] == [] and located["leaks_blocked"] == 0
    generated = [r for r in agent_items if r["context_id"] != "d2"]
    assert len(generated) == 2 and all(r["leaks_blocked"] == 2 for r in generated)
    assert all("0.75" in r["lm_outputs"][0] or "5/6" in r["lm_outputs"][0] for r in generated)
    # the human reference turns are scored too, without any generation
    assert systems["reference"]["n"] == 3 and systems["reference"]["telling_rate"] == 0.0
    m = rep["metrics"]
    assert m["pedagogy/raw/telling_rate"] == {"value": 1.0, "higher_is_better": False}
    assert m["pedagogy/agent/revealing_answer/desired_rules"]["value"] == 1.0
    # the models saw the seeded history and the open problem
    prompt = next(c for c in gen.calls if "Walk me through" in json.dumps(c))
    assert "Sam ate 2/8" in prompt[0]["content"] and prompt[-1]["content"].startswith(
        "I added 2 + 4"
    )


def test_contexts_a_fine_tune_trained_on_are_left_out(
    tmp_path: Path, dialogues: Path, config
) -> None:
    run_dir = tmp_path / "runs" / "lora"
    (run_dir / "adapter").mkdir(parents=True)
    (run_dir / "config.toml").write_text(f'[finetune]\ndata = ["{dialogues}"]\nmax_examples = 1\n')
    o = opts(
        tmp_path / "out", dialogues, systems=("reference",), exclude_runs=[str(run_dir / "adapter")]
    )
    rep = run_eval(o, config, generator=ScriptedGenerator())
    assert {r["context_id"] for r in items(rep, "pedagogy")} == {"d2", "d3"}
    assert "1 context(s)" in rep["suites"]["pedagogy"]["notes"][0]
    with pytest.raises(InputError, match="not a fine-tune run directory"):
        run_eval(
            opts(tmp_path / "o2", dialogues, exclude_runs=[str(tmp_path)]),
            config,
            generator=ScriptedGenerator(),
        )


def test_dialogues_without_a_problem_are_matched_by_their_first_turn(
    tmp_path: Path, config
) -> None:
    """BRIDGE and CIMA records have no problem: a run that trained on one leaves it out by its
    opening turn (before, every such context passed the check)."""
    records = [dict(d, problem=None, id=f"n{i}") for i, d in enumerate(DIALOGUES)]
    data = tmp_path / "noproblem.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    trained = tmp_path / "trained.jsonl"
    trained.write_text(json.dumps(records[0]) + "\n")
    run_dir = tmp_path / "runs" / "lora"
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text(f'[finetune]\ndata = ["{trained}"]\n')
    o = opts(tmp_path / "out", data, systems=("reference",), exclude_runs=[str(run_dir)])
    rep = run_eval(o, config, generator=ScriptedGenerator())
    assert {r["context_id"] for r in items(rep, "pedagogy")} == {"n1", "n2"}


def test_report_files_written_and_readable(tmp_path: Path, dialogues: Path, config) -> None:
    out = tmp_path / "run"
    o = opts(out, dialogues, suites=("pedagogy", "learner-model"), plots=True)
    rep = run_eval(o, config, generator=ScriptedGenerator("Not quite. What is 1/4 + 1/4?"))
    for name in ("config.json", "results.jsonl", "report.json", "report.md", "report.html"):
        assert (out / name).is_file(), name
    loaded = load_report(out)
    assert loaded["complete"] is True and loaded["config_hash"] == rep["config_hash"]
    assert len(loaded["items"]["pedagogy"]) == 9  # 3 contexts x (agent, raw, reference)
    lines = (out / "results.jsonl").read_text().splitlines()
    assert {json.loads(x)["key"] for x in lines} >= {r["key"] for r in loaded["items"]["pedagogy"]}
    md = (out / "report.md").read_text()
    assert (
        "## pedagogy" in md and "| system | scorer | MI |" in md and "![pedagogy_dimensions]" in md
    )
    html = (out / "report.html").read_text()
    assert html.count("<table>") >= 3 and "data:image/png;base64," in html
    for plot in ("pedagogy_dimensions", "reliability"):
        assert (out / "plots" / f"{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config_hash"] == rep["config_hash"] and cfg["config"]["lm"]["max_new_tokens"] == 40


def test_suites_run_one_by_one_into_one_report(tmp_path: Path, dialogues: Path, config) -> None:
    out = tmp_path / "run"
    run_eval(opts(out, dialogues, suites=("learner-model",)), config, generator=ScriptedGenerator())
    rep = run_eval(
        opts(out, dialogues, systems=("reference",)), config, generator=ScriptedGenerator()
    )
    assert list(rep["suites"]) == ["pedagogy", "learner-model"]
    assert load_report(out)["metrics"]["learner-model/simulated/bkt-fitted/auc"]["value"] > 0.7


def test_resume_skips_done_items_and_refuses_another_config(
    tmp_path: Path, dialogues: Path, config
) -> None:
    out = tmp_path / "run"
    first = ScriptedGenerator("What do you notice first?")
    rep1 = run_eval(opts(out, dialogues), config, generator=first)
    assert len(first.calls) == 5  # 3 contexts x (agent, raw), less d2's agent (a guide move)
    again = ScriptedGenerator("What do you notice first?")
    rep2 = run_eval(opts(out, dialogues), config, generator=again)
    assert again.calls == [] and rep2["resumed_items"] == 9
    assert items(rep2, "pedagogy") == items(rep1, "pedagogy")
    # a larger sample reuses the done items; another seed is another config
    with pytest.raises(InputError, match="made with another config"):
        run_eval(opts(out, dialogues, seed=1), config, generator=again)
    run_eval(opts(out, dialogues, seed=1, overwrite=True), config, generator=again)
    assert len(again.calls) == 5


def test_interrupted_run_keeps_partial_results_and_resumes(
    tmp_path: Path, dialogues: Path, config
) -> None:
    out = tmp_path / "run"
    o = opts(out, dialogues, systems=("raw",))
    with pytest.raises(KeyboardInterrupt):
        run_eval(o, config, generator=ScriptedGenerator("Hmm?", interrupt_at=3))
    partial = load_report(out)
    assert partial["complete"] is False and len(partial["items"]["pedagogy"]) == 2
    # a line cut mid-write by a kill is dropped, not fatal
    with (out / "results.jsonl").open("a") as fh:
        fh.write('{"key": "pedagogy|cut')
    rest = ScriptedGenerator("Hmm?")
    rep = run_eval(o, config, generator=rest)
    assert len(rest.calls) == 1 and rep["complete"] is True and rep["resumed_items"] == 2
    assert len(items(rep, "pedagogy")) == 3
    assert all(json.loads(x) for x in (out / "results.jsonl").read_text().splitlines())


def test_same_seed_same_results(tmp_path: Path, dialogues: Path, config) -> None:
    def once(name: str) -> dict:
        o = opts(
            tmp_path / name,
            dialogues,
            suites=("pedagogy", "simulation", "learner-model"),
            limit=2,
            sim_limit=2,
        )
        return run_eval(o, config, generator=ScriptedGenerator(teller))

    a, b = once("a"), once("b")
    for suite in ("pedagogy", "simulation", "learner-model"):
        assert strip_times(items(a, suite)) == strip_times(items(b, suite))
    assert a["metrics"] == b["metrics"]


# -- simulation ----------------------------------------------------------------------------------


def test_simulated_tutoring_success_and_telling(tmp_path: Path, dialogues: Path, config) -> None:
    o = opts(tmp_path / "run", dialogues, suites=("simulation",), max_turns=3)
    rep = run_eval(o, config, generator=ScriptedGenerator(teller))
    s = rep["suites"]["simulation"]["summary"]["systems"]
    raw, agent = s["raw"]["curve"], s["agent"]["curve"]
    # the raw model tells at once; the scripted student repeats the answer: success by telling
    assert raw[0] == {"k": 1, "success": 1.0, "telling": 1.0, "success_without_telling": 0.0}
    # the agent never tells; success (if any) is the student's own
    assert all(c["telling"] == 0.0 for c in agent)
    succ = [c["success"] for c in agent]
    assert succ == sorted(succ) and all(c["success"] == c["success_without_telling"] for c in agent)
    for rec in items(rep, "simulation"):
        assert 1 <= len(rec["turns"]) <= 3
        if rec["success_turn"] is not None:
            assert rec["turns"][-1]["reached"] and rec["success_turn"] == len(rec["turns"])
    assert rep["metrics"]["simulation/raw/telling@3"]["value"] == 1.0


# -- grounding and retrieval ---------------------------------------------------------------------


def copy_first_passage(messages: list[dict]) -> str:
    """Repeat the first sentence of passage [1] (its text after the heading lines), citing it."""
    block = messages[0]["content"].split("[1] (", 1)[1].split("\n[2] (", 1)[0]
    body = " ".join(
        ln
        for ln in block.split(")", 1)[1].splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    )
    m = re.match(r"\s*(.+?[.])\s", body + " ")
    return f"{m.group(1) if m else 'No passage.'} [1] Is that clear?"


def test_grounding_supported_answers(tmp_path: Path, dialogues: Path, config) -> None:
    o = opts(tmp_path / "run", dialogues, suites=("grounding",), grounding_limit=3)
    rep = run_eval(
        o, config, generator=ScriptedGenerator(copy_first_passage), embedder=HashEmbedder()
    )
    s = rep["suites"]["grounding"]["summary"]
    assert s["answers"] == 3 and s["citation_validity"] == 1.0
    assert s["calibration"]["pairs"] > 100 and s["calibration"]["balanced_accuracy"] > 0.8
    answered = [r for r in items(rep, "grounding") if r["sources"]]
    assert answered  # the hashing embedder's word-overlap rule covers at least one question
    for rec in items(rep, "grounding"):
        assert rec["mode"] == "explain"
        if not rec["sources"]:  # not covered: the notice alone, no claim
            assert rec["claims"] == [] and rec["answer"].startswith("Your course material")
            continue
        # the model's copy of passage [1] was kept, cited, and is supported by what it cites
        copied = [c for c in rec["claims"] if c["text"].strip(" .[]1") in rec["lm_output"]]
        assert any(c["sim_cited"] > 0.99 for c in copied) and rec["sources"][0]["cited"]


def test_grounding_invented_citations_and_unsupported_claims(
    tmp_path: Path, dialogues: Path, config
) -> None:
    o = opts(tmp_path / "run", dialogues, suites=("grounding",), grounding_limit=3)
    gen = ScriptedGenerator("Bananas are purple and sing loudly at night [9].")
    rep = run_eval(o, config, generator=gen, embedder=HashEmbedder())
    s = rep["suites"]["grounding"]["summary"]
    recs = items(rep, "grounding")
    asked = [r for r in recs if r["lm_output"]]  # covered questions: the model was asked
    # the model's own output: an invented citation and an unsupported claim...
    assert asked and s["lm_citation_validity"] == 0.0 and s["lm_citations"] == len(asked)
    # ...neither of which reached the student: the answers quote the course and cite what they
    # quote; the claim was dropped (no passage sentence supports it)
    assert all("Bananas" not in r["answer"] and "[9]" not in r["answer"] for r in recs)
    assert s["citation_validity"] == 1.0 and s["citations"] >= len(asked)


def test_retrieval_metrics_on_a_hand_checked_corpus(
    tmp_path: Path, dialogues: Path, config
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "animals.md").write_text(
        "# Animals\n\n## Cats\n\nCats purr when they are content and chase mice at night.\n\n"
        "## Dogs\n\nDogs bark at the mailman and fetch sticks in the park.\n"
    )
    (docs / "plants.md").write_text(
        "# Plants\n\n## Roots\n\nRoots take up water and minerals from the soil.\n"
    )
    (docs / "README.md").write_text("# Readme\n\nNot part of the corpus.\n")
    qa = docs / "qa.jsonl"  # named after its folder: "docs-qa"; not a corpus document
    qa.write_text(
        "".join(
            json.dumps(x) + "\n"
            for x in [
                {
                    "question": "Why do cats purr?",
                    "document": "animals.md",
                    "section": "Animals > Cats",
                },
                {
                    "question": "What do roots take up from the soil?",
                    "document": "plants.md",
                    "section": "Plants > Roots",
                },
                {
                    "question": "Who do dogs bark at?",
                    "document": "animals.md",
                    "section": ["Animals > Dogs", "Animals"],
                },
            ]
        )
    )
    o = opts(tmp_path / "run", dialogues, suites=("retrieval",), qa=[f"{qa}={docs}"], qa_limit=0)
    rep = run_eval(o, config, generator=ScriptedGenerator(), embedder=HashEmbedder())
    sets = rep["suites"]["retrieval"]["summary"]["sets"]
    bm25 = sets["docs-qa"]["bm25"]
    assert (
        bm25["n"] == 3
        and bm25["recall@1"] == 1.0
        and bm25["mrr@10"] == 1.0
        and bm25["ndcg@10"] == 1.0
    )
    for mode in ("dense", "hybrid"):
        c = sets["docs-qa"][mode]["curve"]
        assert c == sorted(c) and c[-1] == 1.0  # three sections: all found within 10
    for rec in items(rep, "retrieval"):
        assert rec["n_relevant"] == 1 and rec["ranks"] and "Readme" not in " ".join(rec["top"])
    assert rep["metrics"]["retrieval/docs-qa/bm25/recall@1"]["value"] == 1.0


def test_retrieval_on_the_project_and_openstax_qa_sets(
    tmp_path: Path, dialogues: Path, config, shared_data: Path
) -> None:
    openstax = f"{REPO / 'evals' / 'data' / 'openstax_qa.jsonl'}={shared_data / 'curriculum'}"
    o = opts(
        tmp_path / "run", dialogues, suites=("retrieval",), qa=[SAMPLE_QA, openstax], qa_limit=5
    )
    rep = run_eval(o, config, generator=ScriptedGenerator(), embedder=HashEmbedder())
    sets = rep["suites"]["retrieval"]["summary"]["sets"]
    assert set(sets) == {"curriculum-qa", "openstax_qa"}
    for name, modes in sets.items():
        for mode, s in modes.items():
            assert s["n"] == 5 and 0 <= s["ndcg@10"] <= 1 and s["curve"] == sorted(s["curve"])
            recs = [
                r for r in items(rep, "retrieval") if r["dataset"] == name and r["mode"] == mode
            ]
            assert s["recall@5"] == sum(any(x <= 5 for x in r["ranks"]) for r in recs) / 5


# -- learner model ---------------------------------------------------------------------------


def test_learner_model_on_a_user_attempts_log(tmp_path: Path, dialogues: Path, config) -> None:
    rng = np.random.default_rng(3)
    truth = kt.BKTParams(prior=0.2, learn=0.2, guess=0.15, slip=0.08)
    lines = ["student_id,kc,is_correct,step"]
    for i, row in enumerate(kt.simulate(truth, 120, 15, rng=rng).correct):
        lines += [f"s{i},adding,{int(c)},{t}" for t, c in enumerate(row)]
    log = tmp_path / "attempts.csv"
    log.write_text("\n".join(lines) + "\n")
    o = opts(
        tmp_path / "run",
        dialogues,
        suites=("learner-model",),
        attempts=[str(log)],
        columns="learner=student_id,skill=kc,correct=is_correct,order=step",
    )
    rep = run_eval(o, config, generator=ScriptedGenerator())
    ds = rep["suites"]["learner-model"]["summary"]["datasets"]
    mine = ds["attempts"]
    assert mine["test_answers"] == 24 * 15 and mine["train_answers"] == 96 * 15
    fitted = mine["models"]["BKT fitted (EM)"]
    assert fitted["auc"] > 0.75 and fitted["auc"] > mine["models"]["per-skill rate"]["auc"]
    assert sum(b["count"] for b in fitted["reliability"]) == 24 * 15
    sim = ds["simulated"]["models"]
    assert abs(sim["BKT fitted (EM)"]["auc"] - sim["BKT true params"]["auc"]) < 0.03


# -- the LM judge and calibration ------------------------------------------------------------


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/v1"


def test_unreachable_judge_is_skipped_and_the_rest_runs(
    tmp_path: Path, dialogues: Path, config
) -> None:
    o = opts(tmp_path / "run", dialogues, judge={"model": "judge", "base_url": closed_port_url()})
    rep = run_eval(o, config, generator=ScriptedGenerator("Not quite. What is 1/4 + 1/4?"))
    ped = rep["suites"]["pedagogy"]
    assert "judge backend unreachable" in ped["skipped"]["judge"]
    assert all(r["judge"] == "skipped" for r in items(rep, "pedagogy"))
    assert ped["summary"]["systems"]["agent"]["rules"]["revealing_answer"]["n"] == 3
    assert not ped["summary"]["systems"]["agent"]["judge"]


def test_judge_through_an_openai_server_and_calibration(
    tmp_path: Path, dialogues: Path, config
) -> None:
    from tutor.testing.openai_server import Script, ScriptedServer

    mr = tmp_path / "mr.json"
    mr.write_text(json.dumps(MRBENCH_FORM))
    with ScriptedServer(Script(reply=lambda msgs: "Yes")) as srv:
        o = opts(
            tmp_path / "run",
            dialogues,
            suites=("pedagogy", "judge-calibration"),
            limit=1,
            calibration_data=[str(mr)],
            judge={"model": "scripted", "base_url": srv.base_url},
        )
        rep = run_eval(o, config, generator=ScriptedGenerator("Not quite. What is 1/4 + 1/4?"))
        asked = [r["messages"][1]["content"] for r in srv.script.requests if r.get("messages")]
    assert any(
        "Question (Mistake location)" in q and "Allowed labels: Yes / To some extent / No" in q
        for q in asked
    )
    ped = items(rep, "pedagogy")
    assert all(r["judge"]["coherence"] == "Yes" and r["judge"]["tutor_tone"] is None for r in ped)
    cal = rep["suites"]["judge-calibration"]["summary"]
    # rules on the hand-labelled responses: RA 3/3 (0.75 counts for 3/4); MI: "Not quite" yes,
    # "Great job!" no, but "Nice try! What is 1/2 written in quarters?" has no cue -> 2/3
    assert cal["rules"]["revealing_answer"]["accuracy"] == 1.0
    assert cal["rules"]["mistake_identification"]["accuracy"] == pytest.approx(2 / 3)
    assert (
        cal["rules"]["tutor_tone"]["accuracy"] == 1.0
    )  # nice try / great: Encouraging; else Neutral
    # a judge that always says "Yes": right on MI 2/3, never right on RA, tone unparsed
    assert cal["judge"]["mistake_identification"]["accuracy"] == pytest.approx(2 / 3)
    assert cal["judge"]["mistake_identification"]["macro_f1"] == pytest.approx((0.8 + 0.0) / 2)
    assert cal["judge"]["revealing_answer"]["accuracy"] == pytest.approx(1 / 3)
    assert cal["judge"]["tutor_tone"]["accuracy"] == 0.0
    assert cal["human_by_tutor"]["Expert"]["desired"] == {
        "mistake_identification": 1.0,
        "revealing_answer": 1.0,
        "tutor_tone": 1.0,
    }
    assert rep["metrics"]["judge-calibration/judge/mistake_identification/accuracy"][
        "value"
    ] == pytest.approx(2 / 3)


def test_lm_student_and_self_judge(tmp_path: Path, dialogues: Path, config) -> None:
    def reply(messages: list[dict]) -> str:
        system = messages[0]["content"]
        if "school student" in system:  # the simulated student
            return f"Oh! Then the answer is {answer_of(messages)}."
        if "evaluates how well tutors respond" in system:  # the judge ("self": the same LM)
            return "To some extent"
        return "What do the denominators tell you?"

    o = opts(
        tmp_path / "run",
        dialogues,
        suites=("simulation", "pedagogy"),
        student="lm",
        systems=("agent",),
        judge={"model": "self"},
    )
    rep = run_eval(o, config, generator=ScriptedGenerator(reply))
    curve = rep["suites"]["simulation"]["summary"]["systems"]["agent"]["curve"]
    assert curve[0] == {"k": 1, "success": 1.0, "telling": 0.0, "success_without_telling": 1.0}
    assert all(r["student_kind"] == "lm" and len(r["turns"]) == 1 for r in items(rep, "simulation"))
    judged = items(rep, "pedagogy")[0]["judge"]
    assert judged["actionability"] == "To some extent" and judged["tutor_tone"] is None
