"""What a first-time user hit (issue 16): each item as a test that failed before its fix."""

from __future__ import annotations

import io
from pathlib import Path

import gradio as gr
import pytest

from tutor.events import MasteryChange
from tutor.testing.fake_lm import ScriptedGenerator
from ui.app import build_blocks
from ui.handlers import PAGE_OUTPUTS, TURN_OUTPUTS, Handlers
from ui.testing import by_name, sample_context


@pytest.fixture
def h(tmp_path: Path) -> Handlers:
    h = Handlers(sample_context(tmp_path, ScriptedGenerator("Let us look at it step by step.")))
    build_blocks(h, 1)
    return h


def req(user: str) -> gr.Request:
    return gr.Request(username=user)


def test_the_card_says_why_mastery_did_not_move_after_a_hinted_answer(h: Handlers) -> None:
    """It said "✅ Correct! … mastery 18% → 18%" after a wrong try, a hint and the right answer,
    with no reason: only a problem's first answer moves mastery."""
    ana = req("ana")
    sid = by_name(h, PAGE_OUTPUTS, h.page_load(request=ana))["session_id"]
    list(h.next_problem(sid, request=ana))
    item = h.store.get_item("default", h.store.get_state(sid).item_id)
    first = [by_name(h, TURN_OUTPUTS, o) for o in h.check("999", sid, request=ana)][-1]["card"]
    assert "mastery" in first and "counts as practice" not in first  # the first answer moved it
    list(h.hint(sid, request=ana))
    card = [by_name(h, TURN_OUTPUTS, o) for o in h.check(item.answer.value, sid, request=ana)]
    final = card[-1]["card"]
    assert "Correct" in final
    assert "a retry with a hint: counts as practice" in final


def test_the_reasons_the_shown_mastery_stays_put() -> None:
    moved = MasteryChange("fractions", 0.18, 0.42, 0.5)
    assert moved.why_unmoved() == ""
    assert (
        "a retry: counts as practice"
        in MasteryChange("f", 0.18, 0.18, 0.3, counted=False).why_unmoved()
    )
    assert "already mastered" in MasteryChange("f", 0.991, 0.993, 0.9).why_unmoved()
    assert "less than 1%" in MasteryChange("f", 0.181, 0.183, 0.3).why_unmoved()


def test_the_terminal_says_it_too() -> None:
    from tutor.cli.chat import render_event

    out = io.StringIO()
    render_event(MasteryChange("fractions", 0.18, 0.18, 0.3, counted=False, hint_level=1), out=out)
    assert "mastery 18% → 18% (a retry with a hint: counts as practice" in out.getvalue()


def test_the_terminal_calls_only_cited_passages_sources() -> None:
    from tutor.cli.chat import render_event
    from tutor.events import SourceRef, Sources

    refs = [SourceRef(i, f"Doc {i}", "text", "d", i, 0.5, cited=i == 2) for i in (1, 2)]
    out = io.StringIO()
    render_event(Sources(refs), out=out)
    assert out.getvalue() == "\n\nSources:\n  [2] Doc 2"
    # a guide reply that cites nothing: the passages are listed, but not as its sources
    out = io.StringIO()
    render_event(Sources([SourceRef(1, "Decimals", "text", "d", 1, 0.4, cited=False)]), out=out)
    assert "Sources:" not in out.getvalue()
    assert "cites none of it" in out.getvalue() and "[1] Decimals" in out.getvalue()


def test_delete_accepts_the_name_the_page_shows(h: Handlers) -> None:
    """ "Delete" accepted only the internal name ``demo`` while the page showed "Demo student"."""
    teacher = req("mrs-k")
    lr = h.store.add_learner("demo", display_name="Demo student")
    other = h.store.add_learner("zoe", display_name="Zoë K")
    for wrong in ("", "Demo stud", "zoe", "Zoë K"):
        with pytest.raises(gr.Error, match="(?i)nothing was deleted.*'Demo student' or 'demo'"):
            h.delete_learner(lr.id, wrong, request=teacher)
    h.delete_learner(lr.id, "  demo   STUDENT ", request=teacher)
    assert all(s.learner.id != lr.id for s in h.store.list_learners())
    h.delete_learner(other.id, "Zoë K (zoe)", request=teacher)  # the picker's label works too
    assert all(s.learner.id != other.id for s in h.store.list_learners())


LIBRARY_NOISE = """
import logging, sys, warnings
from pathlib import Path
from tutor.cli.common import log_to_file, setup_logging
setup_logging(int(sys.argv[1]), False)
log_to_file(Path(sys.argv[2]))
sys.stdout.write("tutor> ")
# what a model loading at the first message printed into the answer
logging.getLogger("bitsandbytes.backends.cpu.ops").warning("Hugging Face Hub is in offline mode")
logging.getLogger("kernels._internals.hf_hub").warning("Skipping publisher trust check")
warnings.warn("a library's UserWarning")
logging.getLogger("tutor.lm.hf").warning("our own warning")
logging.getLogger("torch").error("a library error")
print("Plants need light.")
"""


@pytest.mark.parametrize("verbose", [0, 1])
def test_library_warnings_go_to_the_log_not_into_answers(tmp_path: Path, verbose: int) -> None:
    """bitsandbytes' "offline mode" warnings printed inside terminal answers after ``tutor>``."""
    import subprocess
    import sys

    log = tmp_path / "logs" / "tutor.log"
    r = subprocess.run(
        [sys.executable, "-c", LIBRARY_NOISE, str(verbose), str(log)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert r.stdout == "tutor> Plants need light.\n"
    kept = log.read_text(encoding="utf-8")
    for line in ("offline mode", "publisher trust", "UserWarning", "our own", "library error"):
        assert line in kept
    assert "our own warning" in r.stderr and "a library error" in r.stderr
    shown = "offline mode" in r.stderr and "UserWarning" in r.stderr
    assert shown == bool(verbose)  # -v shows library chatter on the terminal too


def _kb_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    from knowledge_base import KnowledgeBase
    from knowledge_base.testing import HashEmbedder
    from tests.test_kb_store import write_course
    from tutor.config import load_config

    config = load_config(env={"TUTOR_HOME": str(tmp_path / "home")})
    emb = HashEmbedder()
    kb = KnowledgeBase.open(config.paths.kb_dir, emb, show_progress=False)
    kb.add(write_course(tmp_path / "course"))
    kb.close()
    return config, emb


def test_start_up_loads_the_model_and_the_embedder_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first question paid 7-10 s for the embedder, loaded only then; the model loaded
    before it, one after the other. Both now load at start-up, with progress: in parallel on
    a machine with more than 2 cores."""
    import threading

    from knowledge_base import KnowledgeBase
    from tutor import startup
    from tutor.startup import load_models

    monkeypatch.setattr(startup.os, "cpu_count", lambda: 4)

    config, emb = _kb_config(tmp_path)
    both = threading.Barrier(2, timeout=10)  # each load waits for the other: only in parallel
    threads = set()

    def model(cfg):  # type: ignore[no-untyped-def]
        threads.add(threading.current_thread().name)
        both.wait()
        return ScriptedGenerator("hi")

    def kb(cfg):  # type: ignore[no-untyped-def]
        threads.add(threading.current_thread().name)
        both.wait()
        return KnowledgeBase.open(cfg.paths.kb_dir, emb, show_progress=False)

    out = io.StringIO()
    gen, loaded = load_models(config, out=out, build_generator=model, build_knowledge_base=kb)
    assert isinstance(gen, ScriptedGenerator) and len(threads) == 2
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("loading the model (hf: ") and "and the embedder" in lines[0]
    from tutor.lm.bundled_lora import shipped

    assert ("+ LoRA tutoring)" in lines[0]) == shipped()  # the default adapter is named
    assert {ln.split()[0] for ln in lines[1:3]} == {"model", "embedder"}
    assert all("ready in " in ln and ln.endswith(" s") for ln in lines[1:])
    assert lines[-1].startswith("ready in ")
    assert emb.calls >= 1  # the embedder ran once at start-up: the first question pays nothing
    assert loaded.store._indexes  # and the course's vector index is open
    loaded.close()


def test_a_failed_load_at_start_up_raises_its_error(tmp_path: Path) -> None:
    from knowledge_base import KnowledgeBase
    from tutor.errors import ModelNotFoundError
    from tutor.startup import load_models

    config, emb = _kb_config(tmp_path)

    def model(cfg):  # type: ignore[no-untyped-def]
        raise ModelNotFoundError("no model named 'nope'")

    with pytest.raises(ModelNotFoundError, match="nope"):
        load_models(
            config,
            out=io.StringIO(),
            build_generator=model,
            build_knowledge_base=lambda cfg: KnowledgeBase.open(
                cfg.paths.kb_dir, emb, show_progress=False
            ),
        )


def test_on_two_cores_start_up_loads_one_after_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On 2 cores the parallel load measured slower (benchmarks/startup.py): one thread."""
    import threading

    from knowledge_base import KnowledgeBase
    from tutor import startup

    monkeypatch.setattr(startup.os, "cpu_count", lambda: 2)
    config, emb = _kb_config(tmp_path)
    threads: list[str] = []

    def model(cfg):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return ScriptedGenerator("hi")

    def kb(cfg):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return KnowledgeBase.open(cfg.paths.kb_dir, emb, show_progress=False)

    out = io.StringIO()
    _, loaded = startup.load_models(config, out=out, build_generator=model, build_knowledge_base=kb)
    assert len(threads) == 2 and len(set(threads)) == 1
    lines = out.getvalue().splitlines()
    assert "at once" not in lines[0] and lines[-1].startswith("ready in ")
    assert emb.calls >= 1
    loaded.close()
