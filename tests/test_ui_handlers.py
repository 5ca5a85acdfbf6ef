"""Web UI handlers called directly (no server): a scripted generator, a real SQLite learner store
and a real knowledge base embedded with the hashing test embedder.

Covers streaming (cumulative, ends with sources), the role check on every registered handler,
learner isolation, practice, Stop, bad input and the teacher's actions.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable
from pathlib import Path

import gradio as gr
import pytest

from tutor.grading import grade
from tutor.testing.fake_lm import ScriptedGenerator
from ui import render
from ui.app import build_blocks
from ui.auth import DEMO_USER
from ui.guard import ROLES, role_of
from ui.handlers import (
    CLASS_OUTPUTS,
    CREATE_OUTPUTS,
    DELETE_OUTPUTS,
    DETAIL_OUTPUTS,
    DOCS_OUTPUTS,
    ITEMS_OUTPUTS,
    NEW_SESSION_OUTPUTS,
    PAGE_OUTPUTS,
    REMOVE_OUTPUTS,
    SESSION_OUTPUTS,
    TURN_OUTPUTS,
    Handlers,
)
from ui.testing import PASSWORD, by_name, sample_context

REPLY = "Plants use light to make glucose [1]. In symbols: $6CO_2 + 6H_2O$."


def req(username: str | None) -> gr.Request:
    return gr.Request(username=username)


@pytest.fixture
def gen() -> ScriptedGenerator:
    return ScriptedGenerator(REPLY)


def bound(ctx: object) -> Handlers:
    """Handlers bound to a page's components (they return ``{component: value}``)."""
    h = Handlers(ctx)
    build_blocks(h, 1)
    return h


@pytest.fixture
def h(tmp_path: Path, gen: ScriptedGenerator) -> Handlers:
    return bound(sample_context(tmp_path, gen))


@pytest.fixture
def demo_h(tmp_path: Path, gen: ScriptedGenerator) -> Handlers:
    return bound(sample_context(tmp_path / "demo", gen, demo=True))


def learner_id(h: Handlers, name: str) -> int:
    return h.store.find_learner(name).id


def page(h: Handlers, user: str) -> dict:
    return by_name(h, PAGE_OUTPUTS, h.page_load(request=req(user)))


def turn(h: Handlers, user: str, message: str, session_id: str, mode: str = "auto") -> list[dict]:
    return [
        by_name(h, TURN_OUTPUTS, out)
        for out in h.send(message, mode, session_id, request=req(user))
    ]


def turn_iter(h: Handlers, user: str, message: str, session_id: str, mode: str = "auto"):
    for out in h.send(message, mode, session_id, request=req(user)):
        yield by_name(h, TURN_OUTPUTS, out)


def turn_error(h: Handlers, sid: str, outs: Iterable[dict]) -> str:
    """The error note that ended a turn (the last chat shown), checking the chat before it
    stayed: the stored history, then what was typed, then the note."""
    shown = [by_name(h, TURN_OUTPUTS, o) for o in outs]
    chat = shown[-1]["chat"]
    stored = render.history_messages(h.store.messages(sid))
    assert chat[: len(stored)] == stored, "the chat did not stay"
    assert chat[-1]["role"] == "assistant" and chat[-1]["content"].startswith("⚠️")
    assert len(chat) - len(stored) in (1, 2)
    return str(chat[-1]["content"])


def texts(chat: list[dict]) -> list[str]:
    return [m["content"] for m in chat]


def is_skip(value: object) -> bool:
    return value == gr.skip()


# -- streaming ----------------------------------------------------------------------------------


def test_streaming_is_cumulative_and_ends_with_sources(h: Handlers, gen: ScriptedGenerator) -> None:
    gen.token_delay = 0.05  # slower than the UI's update interval: every token is its own step
    sid = page(h, "ana")["session_id"]
    # guide mode: the model's words stream as they come (explain mode shows a sentence only
    # after its grounding check: tests/test_explain.py)
    outs = turn(h, "ana", "How do plants make glucose?", sid, mode="guide")
    first = outs[0]["chat"]
    assert first[-1] == {"role": "user", "content": "How do plants make glucose?"}
    assert outs[0]["card"] == render.PRACTICE_EMPTY  # the card is sent too, as a value
    answers = [o["chat"][1]["content"] for o in outs[1:] if len(o["chat"]) > 1]
    assert len(answers) >= 8, "the answer must arrive in many steps, not at the end"

    def plain(shown: str) -> str:  # undo the math delimiters the renderer adds
        return shown.replace("\\(", "$").replace("\\)", "$")

    for before, after in zip(answers, answers[1:], strict=False):
        assert plain(after).startswith(plain(before))  # cumulative: each step extends the last
    assert len(set(answers)) >= 8
    final = outs[-1]["chat"]
    assert final[1]["content"].startswith("Plants use light to make glucose [1].")
    assert "\\(6CO_2 + 6H_2O\\)" in final[1]["content"]  # $…$ became a KaTeX delimiter
    # the answer is followed by its sources: citation label and the passage, expandable
    assert final[-1]["role"] == "assistant"
    assert '<details class="src">' in final[-1]["content"]
    assert "Photosynthesis — What a plant needs" in final[-1]["content"]
    assert "chlorophyll" in final[-1]["content"]
    assert 'class="src-cited"' in final[-1]["content"]  # [1] was cited
    # stored, and the same chat comes back after a reload (sources included)
    assert page(h, "ana")["chat"] == final


def test_fast_tokens_are_sent_together_with_nothing_lost(
    h: Handlers, gen: ScriptedGenerator
) -> None:
    gen.reply = " ".join(f"w{i}" for i in range(400))  # no delay: far faster than STREAM_EVERY
    sid = page(h, "ana")["session_id"]
    outs = turn(h, "ana", "Tell me about photosynthesis", sid, mode="guide")
    assert len(outs) < 100  # 400 tokens, coalesced
    answer = outs[-1]["chat"][1]["content"]
    assert answer.split() == [f"w{i}" for i in range(400)]
    assert h.store.messages(sid)[-1].content.split() == answer.split()


def test_history_survives_a_new_server_process(tmp_path: Path, gen: ScriptedGenerator) -> None:
    h1 = bound(sample_context(tmp_path / "a", gen))
    sid = page(h1, "ana")["session_id"]
    final = turn(h1, "ana", "How do plants make glucose?", sid, mode="guide")[-1]["chat"]
    # a second app over the same database (a restart) shows the same session and chat
    from ui.server import build_context

    h2 = bound(
        build_context(
            h1.ctx.config, generator=gen, store=h1.store.__class__(h1.store.url), kb=h1.kb
        )
    )
    again = page(h2, "ana")
    assert again["session_id"] == sid and again["chat"] == final


def test_text_reset_discards_what_was_shown(h: Handlers) -> None:
    from tutor.events import Done, ModeChosen, Sources, TextDelta, TextReset

    def scripted(*a, **k):
        yield ModeChosen("guide", "explicit")
        yield TextDelta("The answer is 12")
        yield TextReset("gave it away")
        yield TextDelta("What is one third of 18?")
        yield Sources([])
        yield Done("What is one third of 18?", "guide", "s", None)

    h.agent.respond = scripted
    sid = page(h, "ana")["session_id"]
    outs = turn(h, "ana", "what is 2/3 of 18", sid)
    shown = [o["chat"][-1]["content"] for o in outs]
    assert any("The answer is 12" in s for s in shown)
    assert "put that another way" in " ".join(shown)
    assert outs[-1]["chat"][-1]["content"] == "What is one third of 18?"


# -- roles --------------------------------------------------------------------------------------


def _call(fn, username: str | None) -> object:
    n = len([p for p in inspect.signature(fn).parameters.values() if p.name != "request"])
    out = fn(*([None] * n), request=req(username))
    return next(out) if inspect.isgenerator(out) else out


def test_every_registered_handler_checks_the_role(h: Handlers) -> None:
    blocks, _ = build_blocks(h, 1)
    fns = [f.fn for f in blocks.fns.values() if f.fn is not None]
    assert len(fns) >= 20
    seen = set()
    for fn in fns:
        role = role_of(fn)
        assert role in ROLES, f"{fn.__name__} is wired without a role check"
        seen.add(fn.__name__)
        with pytest.raises(gr.Error, match="(?i)not signed in"):
            _call(fn, None)
        with pytest.raises(gr.Error, match="(?i)no longer exists"):
            _call(fn, "mallory")  # a user name with no account (deleted meanwhile)
        if role == "teacher":
            with pytest.raises(gr.Error, match="(?i)teachers only"):
                _call(fn, "ana")
        if role == "student":
            with pytest.raises(gr.Error, match="(?i)students only"):
                _call(fn, "mrs-k")
    assert {"send", "stop", "class_view", "delete_learner", "add_documents"} <= seen
    # every public method of Handlers is guarded, wired or not
    for name, member in inspect.getmembers(Handlers, inspect.isfunction):
        if not name.startswith("_") and name != "export_learner":
            assert role_of(member) in ROLES, name


def test_demo_student_only_when_demo_is_on(h: Handlers, demo_h: Handlers) -> None:
    with pytest.raises(gr.Error, match="(?i)demo is not enabled"):
        h.page_load(request=req(DEMO_USER))
    p = page(demo_h, DEMO_USER)
    assert is_skip(p["class_heatmap"]) and p["student_view"]["visible"] is True
    assert "demo mode" in p["header"] and "Teacher sign-in" in p["header"]
    with pytest.raises(gr.Error, match="(?i)teachers only"):
        demo_h.class_view(request=req(DEMO_USER))
    outs = turn(demo_h, DEMO_USER, "How do plants make glucose?", p["session_id"])
    assert "glucose" in outs[-1]["chat"][1]["content"]


def test_a_student_cannot_reach_another_learners_session(h: Handlers) -> None:
    ben_sid = page(h, "ben")["session_id"]
    turn(h, "ben", "ben's secret question about fractions", ben_sid)
    page(h, "ana")
    for call in (
        lambda: list(h.send("hello there", "auto", ben_sid, request=req("ana"))),
        lambda: list(h.hint(ben_sid, request=req("ana"))),
        lambda: list(h.check("3/4", ben_sid, request=req("ana"))),
        lambda: list(h.next_problem(ben_sid, request=req("ana"))),
        lambda: h.stop(ben_sid, request=req("ana")),
        lambda: h.open_session(ben_sid, request=req("ana")),
    ):
        with pytest.raises(gr.Error, match="(?i)No session .* for this learner"):
            call()
    ben = h.store.messages(ben_sid)
    assert [m.role for m in ben] == ["user", "assistant"]  # nothing added by ana
    assert all(m.learner_id == learner_id(h, "ben") for m in ben)
    # ana's page never shows ben's sessions
    assert ben_sid not in [v for _, v in page(h, "ana")["sessions"]["choices"]]


def test_page_load_shows_only_the_view_of_the_role(h: Handlers) -> None:
    s = page(h, "ana")
    assert s["student_view"]["visible"] is True and s["teacher_view"]["visible"] is False
    assert all(is_skip(s[k]) for k in ("class_heatmap", "students_table", "docs_table"))
    assert "Ana" in s["header"] and "Sign out" in s["header"]
    t = page(h, "mrs-k")
    assert t["teacher_view"]["visible"] is True and t["student_view"]["visible"] is False
    assert all(is_skip(t[k]) for k in ("chat", "sessions", "session_id", "progress"))
    assert "fractions.md" in t["docs_table"] and "Photosynthesis" in t["docs_table"]
    assert "ana" in t["students_table"] and "ben" in t["students_table"]


# -- practice, stop, sessions -----------------------------------------------------------------------


def test_practice_card_grades_and_updates_mastery(h: Handlers) -> None:
    sid = page(h, "ana")["session_id"]
    # an error ends its own turn, under it in the chat (issue 16: it covered the whole chat)
    assert "no problem open" in turn_error(h, sid, h.hint(sid, request=req("ana")))
    assert "Next problem first" in turn_error(h, sid, h.check("12", sid, request=req("ana")))
    served = [by_name(h, TURN_OUTPUTS, o) for o in h.next_problem(sid, request=req("ana"))]
    card = served[-1]["card"]
    state = h.store.get_state(sid)
    item = h.store.get_item("default", state.item_id)
    assert render.chat_text(item.prompt.splitlines()[0])[:20] in card and "difficulty" in card
    hinted = [by_name(h, TURN_OUTPUTS, o) for o in h.hint(sid, request=req("ana"))]
    assert "Hint:" in hinted[-1]["chat"][-1]["content"]
    right = item.answer.value
    assert grade(item, right).correct
    outs = [by_name(h, TURN_OUTPUTS, o) for o in h.check(right, sid, request=req("ana"))]
    final = outs[-1]["card"]
    assert "Correct" in final and "mastery" in final and "✅ solved" in final
    skill = item.skills[0]
    m = h.store.mastery(learner_id(h, "ana"))[skill]
    assert m.n_attempts == 1 and m.n_correct == 1
    progress = h.my_progress(request=req("ana"))
    assert "1/1 correct" in progress and "of 8 skills mastered" in progress


def test_stop_keeps_what_was_shown(h: Handlers, gen: ScriptedGenerator) -> None:
    gen.reply = " ".join(f"word{i}" for i in range(200))
    gen.token_delay = 0.05
    sid = page(h, "ana")["session_id"]
    stream = h.send("Tell me about photosynthesis", "guide", sid, request=req("ana"))
    shown = ""
    for i, out in enumerate(stream):
        chat = by_name(h, TURN_OUTPUTS, out)["chat"]
        if len(chat) > 1:
            shown = chat[1]["content"]
        if i == 6:
            break
    stream.close()  # what the Stop button does (Gradio closes the running iterator)
    assert gen.cancelled == 1  # generation stopped
    msgs = h.store.messages(sid)
    assert msgs[-1].role == "assistant" and msgs[-1].meta.get("stopped") is True
    assert msgs[-1].content.strip() == shown.strip() and "word199" not in shown
    chat = h.stop(sid, request=req("ana"))
    reply = [
        m["content"]
        for m in chat
        if m["role"] == "assistant" and "tutor-sources" not in m["content"]
    ]
    assert reply[-1].endswith("*⏹ Stopped.*") and "word1 " in reply[-1]


def test_stop_button_ends_the_running_turn(h: Handlers, gen: ScriptedGenerator) -> None:
    import threading

    gen.reply = " ".join(f"word{i}" for i in range(300))
    gen.token_delay = 0.01
    sid = page(h, "ana")["session_id"]
    outs: list[dict] = []
    started = threading.Event()

    def consume() -> None:
        for o in turn_iter(h, "ana", "Tell me about photosynthesis", sid, mode="guide"):
            outs.append(o)
            if len(outs) > 5:
                started.set()

    t = threading.Thread(target=consume)
    t.start()
    assert started.wait(10)
    chat = h.stop(sid, request=req("ana"))  # returns once the turn has stored what it showed
    t.join(10)
    assert not t.is_alive()
    stored = h.store.messages(sid)[-1]
    assert stored.meta.get("stopped") is True and "word299" not in stored.content
    assert outs[-1]["chat"][1]["content"].endswith("*⏹ Stopped.*")  # the stream says so too
    assert "*⏹ Stopped.*" in chat[1]["content"]
    # nothing running: Stop is harmless
    assert h.stop(sid, request=req("ana")) == h.stop(sid, request=req("ana"))


def test_sessions_new_open_and_resume(h: Handlers) -> None:
    first = page(h, "ana")["session_id"]
    turn(h, "ana", "How do plants make glucose?", first)
    out = by_name(h, NEW_SESSION_OUTPUTS, h.new_session(request=req("ana")))
    second = out["session_id"]
    assert second != first and out["chat"] == []
    again = by_name(h, NEW_SESSION_OUTPUTS, h.new_session(request=req("ana")))
    assert again["session_id"] == second  # an empty session is reused
    turn(h, "ana", "How do I add fractions?", second)
    labels = dict((v, k) for k, v in page(h, "ana")["sessions"]["choices"])
    assert "add fractions" in labels[second] and "plants make glucose" in labels[first]
    sid, chat, *_ = by_name(h, SESSION_OUTPUTS, h.open_session(first, request=req("ana"))).values()
    assert sid == first and "glucose" in chat[0]["content"]
    assert page(h, "ana")["session_id"] == second  # the latest one is resumed


# -- bad input -------------------------------------------------------------------------------------


def test_bad_messages_are_refused_and_nothing_is_lost(h: Handlers) -> None:
    sid = page(h, "ana")["session_id"]
    turn(h, "ana", "How do plants make glucose?", sid)
    before = len(h.store.messages(sid))
    # refused in their own turn, under what was typed (issue 16: not over the whole chat)
    assert "empty" in turn_error(h, sid, h.send("   ", "auto", sid, request=req("ana")))
    long = turn_error(h, sid, h.send("x" * 100_000, "auto", sid, request=req("ana")))
    assert "100000 characters; the limit is 4000" in long
    assert "&lt;b>evil" in turn_error(
        h, sid, h.send("hello", "<b>evil</b>", sid, request=req("ana"))
    )
    assert len(h.store.messages(sid)) == before
    # HTML and script in a message: stored as typed, shown inert
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)> is 1/2 < 3/4?'
    chat = turn(h, "ana", evil, sid)[-1]["chat"]
    shown = chat[-3]["content"] if chat[-1]["content"].startswith("<div") else chat[-2]["content"]
    assert "<script" not in shown and "<img" not in shown and "&lt;script>" in shown
    assert any(m.content == evil.strip() for m in h.store.messages(sid))


def test_unexpected_errors_show_no_stack_trace(h: Handlers) -> None:
    def boom(*a, **k):
        raise RuntimeError("secret internal detail at /srv/x.py line 3")

    h.store.get_profile = boom
    with pytest.raises(gr.Error) as e:
        h.page_load(request=req("ana"))
    assert "secret" not in str(e.value) and "went wrong" in str(e.value)


def test_html_in_documents_and_names_is_inert(h: Handlers) -> None:
    block = render.sources_html([(1, "<b>T</b> — S", "<script>alert(1)</script>\n\nline", True)])
    assert "<script" not in block and "&lt;script>" in block and "<b>T" not in block
    # the passage is Markdown between blank lines, inside the frame (as answers are rendered)
    assert block.index("<summary>") < block.index("&lt;script>") < block.rindex("</details>")
    h.store.add_learner("eve", display_name="x<img src=x onerror=alert(1)>")
    t = page(h, "mrs-k")
    assert "<img" not in t["students_table"] and "&lt;img" in t["students_table"]


# -- teacher ----------------------------------------------------------------------------------------


def test_teacher_creates_a_student_who_can_sign_in(h: Handlers) -> None:
    out = list(
        by_name(
            h, CREATE_OUTPUTS, h.create_student("cleo", "Cleo", "", request=req("mrs-k"))
        ).values()
    )
    status = out[0]
    password = status.split("Password: `")[1].split("`")[0]
    assert len(password) == 12
    user = h.store.authenticate("cleo", password)
    assert user is not None and user.role == "student"
    assert "cleo" in out[1] and tuple(out[3:]) == ("", "", "")
    with pytest.raises(gr.Error, match="(?i)already exists"):
        h.create_student("cleo", "", PASSWORD, request=req("mrs-k"))
    with pytest.raises(gr.Error, match="(?i)at least 8 characters"):
        h.create_student("dan", "", "short", request=req("mrs-k"))
    with pytest.raises(gr.Error, match="(?i)not valid"):
        h.create_student("<script>", "", PASSWORD, request=req("mrs-k"))
    out = by_name(h, CREATE_OUTPUTS, h.create_student("dan", "Dan", PASSWORD, request=req("mrs-k")))
    assert PASSWORD not in out["new_status"]  # a password the teacher typed is not echoed


def test_learner_detail_notes_export_and_delete(h: Handlers) -> None:
    sid = page(h, "ana")["session_id"]
    turn(h, "ana", "How do plants make glucose?", sid)
    ana = learner_id(h, "ana")
    detail = by_name(h, DETAIL_OUTPUTS, h.learner_detail(ana, request=req("mrs-k")))
    info, notes, sessions, attempts, export, _ = detail.values()
    assert (
        "Ana" in info and "plants make glucose" in sessions and f"/export/learner/{ana}" in export
    )
    h.save_notes(ana, "needs help with <fractions>", request=req("mrs-k"))
    assert h.store.get_profile(ana).teacher_notes == "needs help with <fractions>"
    p = h.signin.principal("mrs-k")
    data = h.export_learner(p, ana)
    assert data["learner"]["name"] == "ana" and "scrypt$" not in json.dumps(data)
    with pytest.raises(gr.Error, match="(?i)nothing was deleted"):
        h.delete_learner(ana, "Anna", request=req("mrs-k"))
    assert h.store.get_learner(ana)
    out = by_name(h, DELETE_OUTPUTS, h.delete_learner(ana, "ana", request=req("mrs-k")))
    assert "ana" not in out["students_table"].split("<tbody>")[1].split("ben")[0]
    with pytest.raises(gr.Error, match="(?i)no learner with id"):
        h.learner_detail(ana, request=req("mrs-k"))
    with pytest.raises(gr.Error, match="(?i)no longer exists"):
        h.page_load(request=req("ana"))  # the account went with the learner


def test_document_upload_reports_per_file(
    h: Handlers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # handlers take only uploads
    up = tmp_path / "uploads"
    up.mkdir()
    good = up / "decimals.md"
    good.write_text("# Decimals\n\n## Place value\n\nThe tenths digit comes after the point.\n")
    wrong = up / "virus.exe"
    wrong.write_bytes(b"MZ\x00\x00")
    broken = up / "notes.pdf"
    broken.write_bytes(b"this is not a pdf")
    script = up / "inject.html"
    script.write_text(
        "<html><body><h1>Safe</h1><script>alert(1)</script><p>Water boils at 100 C.</p></body></html>"
    )
    big = up / "big.txt"
    big.write_bytes(b"a" * (int(h.ctx.max_upload_mb * 2**20) + 1))
    files = [str(p) for p in (good, wrong, broken, script, big)]
    added = by_name(h, DOCS_OUTPUTS, h.add_documents(files, request=req("mrs-k")))
    ingest, docs, pick, cleared = added.values()
    rows = {r.split("</td>")[0]: r for r in ingest.split("<tr><td>")[1:]}
    assert "added" in rows["decimals.md"] and "added" in rows["inject.html"]
    assert "not a supported type" in rows["virus.exe"]
    assert "failed" in rows["notes.pdf"] and "PDF" in rows["notes.pdf"]
    assert "over the" in rows["big.txt"]
    assert "decimals.md" in docs and cleared is None
    texts_ = [
        c.text for d in h.kb.list_documents("default") for c in h.kb.store.doc_chunks(d.doc_id)
    ]
    assert not any("alert(1)" in t for t in texts_)  # the loader drops scripts
    doc_id = next(v for k, v in pick["choices"] if "decimals.md" in k)
    asked = by_name(h, ("remove_row", "remove_text"), h.ask_remove(doc_id, request=req("mrs-k")))
    row, text = asked.values()
    assert row["visible"] is True and "Decimals" in text
    removed = by_name(h, REMOVE_OUTPUTS, h.remove_document(doc_id, request=req("mrs-k")))
    docs, pick, row, _ = removed.values()
    assert "decimals.md" not in docs and row["visible"] is False
    with pytest.raises(gr.Error, match="(?i)no document"):
        h.remove_document(doc_id, request=req("mrs-k"))
    with pytest.raises(gr.Error, match="(?i)choose one or more files"):
        h.add_documents([], request=req("mrs-k"))


def test_item_bank_upload_shows_validation_errors(
    h: Handlers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # handlers take only uploads
    d = tmp_path / "gradio-tmp-1234"
    d.mkdir()
    bad = d / "my_items.yaml"
    bad.write_text(
        "skills:\n  - {id: geo, name: Geometry}\nitems:\n  - id: g1\n    skill: geo\n"
        '    prompt: "Angles in a triangle add up to?"\n    answer: "180"\n    difficulty: 9\n'
    )
    status, table, cleared = by_name(
        h, ITEMS_OUTPUTS, h.add_items([str(bad)], request=req("mrs-k"))
    ).values()
    assert "Nothing was loaded" in status and "my_items.yaml:" in status and "difficulty" in status
    assert "gradio-tmp-1234" not in status  # the upload's temp dir is not shown
    assert is_skip(table) and "geo" not in h.store.skills("default")
    bad.write_text(bad.read_text().replace("difficulty: 9", "difficulty: 2"))
    status, table, cleared = by_name(
        h, ITEMS_OUTPUTS, h.add_items([str(bad)], request=req("mrs-k"))
    ).values()
    assert "Loaded 1 items" in status and "Geometry" in table and cleared is None
    with pytest.raises(gr.Error, match="(?i)not an item bank"):
        h.add_items([str(tmp_path / "x.exe")], request=req("mrs-k"))


def test_profile_edit_and_class_overview(h: Handlers) -> None:
    out = h.save_profile(
        "Grade 6", "English", "pass the test", "short answers", "football", request=req("ana")
    )
    assert "Saved" in out
    p = page(h, "ana")
    assert (p["prof_grade"], p["prof_goals"]) == ("Grade 6", "pass the test")
    ana = learner_id(h, "ana")
    bank = h.store.bank("default")
    item = bank.for_skill("fractions")[0]
    for _ in range(3):
        h.store.record_attempt(ana, item, "wrong", grade(item, "999"))
    heat, risk = by_name(h, CLASS_OUTPUTS, h.class_view(request=req("mrs-k"))).values()
    assert "hm-risk" in heat and "Ana" in risk and "Fractions" in risk
    assert "Ben" not in risk  # no practice, no risk signal


def test_math_renders_and_prices_stay_text() -> None:
    assert render.chat_text("it costs $40, on sale $34") == "it costs $40, on sale $34"
    assert render.chat_text("area $x^2$ and $$\\frac{1}{2}$$") == (
        "area \\(x^2\\) and $$\\frac{1}{2}$$"
    )
    assert render.chat_text("in code `$x$` stays") == "in code `$x$` stays"
    assert render.inert("3 < 5 and <b>bold</b>") == "3 < 5 and &lt;b>bold&lt;/b>"


def test_serve_refuses_demo_off_loopback_and_warns_without_tls(tutor_home: Path) -> None:
    from tutor.cli import main
    from tutor.config import load_config
    from ui.server import check_host

    assert main(["serve", "--demo", "--host", "0.0.0.0"]) == 2  # before any model loads
    warnings = check_host(load_config(env={}, overrides={"ui": {"host": "0.0.0.0"}}))
    assert len(warnings) == 1 and "TLS" in warnings[0]
    assert (
        check_host(load_config(env={}, overrides={"ui": {"host": "127.0.0.1", "demo": True}})) == []
    )


def test_the_mode_switch_starts_in_tutor_default_mode(
    tmp_path: Path, gen: ScriptedGenerator
) -> None:
    practice = bound(
        sample_context(tmp_path / "p", gen, overrides={"tutor": {"default_mode": "practice"}})
    )
    auto = bound(sample_context(tmp_path / "a", gen))
    assert practice.components["mode"].value == "practice"
    assert auto.components["mode"].value == "auto"
    # a turn that comes without a mode (an API client) is taken in the default mode too
    for handlers, opens_a_problem in ((practice, True), (auto, False)):
        sid = page(handlers, "ana")["session_id"]
        turn(handlers, "ana", "hello", sid, mode="")
        assert (handlers.store.get_state(sid).item_id is not None) is opens_a_problem
