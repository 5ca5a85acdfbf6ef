"""A lone surrogate (``\\ud800``) in a message, an answer or a profile (issue 16, V10).

A browser's JSON can carry one (``"\\ud800"``) but no database can store it as UTF-8: the store
raised ``UnicodeEncodeError`` deep in SQLite and the page showed "Something went wrong on the
server". Now the store refuses it with an ``InputError`` that says where it is, and the web app
shows that sentence (in the chat, under the turn, for a message) with nothing stored.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from tutor.errors import InputError
from tutor.grading import grade
from tutor.items import load_default_bank
from tutor.store import LearnerStore
from tutor.testing.fake_lm import ScriptedGenerator
from ui.app import build_blocks
from ui.guard import UNEXPECTED
from ui.handlers import PAGE_OUTPUTS, TURN_OUTPUTS, Handlers
from ui.testing import by_name, sample_context

BAD = "what is 1/2 \ud800 of 8?"


def test_the_store_refuses_a_lone_surrogate_where_it_is(tmp_path: Path) -> None:
    bank = load_default_bank()
    store = LearnerStore(f"sqlite:///{tmp_path / 'l.sqlite'}", fallback_bank=bank, kdf_n=2**8)
    lr = store.add_learner("ana")
    sess = store.start_session(lr.id)
    with pytest.raises(
        InputError, match=r"the message has a character that is not text \(U\+D800 at position 13\)"
    ):
        store.add_message(sess.id, "user", BAD)
    with pytest.raises(InputError, match="profile field 'goals' has a character"):
        store.update_profile(lr.id, {"goals": "fractions\udfff"})
    item = bank.items[0]
    with pytest.raises(InputError, match="the answer has a character"):
        store.record_attempt(lr.id, item, "3\ud800", grade(item, "3"), session_id=sess.id)
    assert store.messages(sess.id) == [] and store.attempts(lr.id) == []
    assert store.get_profile(lr.id).goals == ""
    store.add_message(sess.id, "user", "ünï 名前 😀")  # real non-ASCII text is fine
    store.close()


@pytest.fixture
def h(tmp_path: Path) -> Handlers:
    h = Handlers(sample_context(tmp_path, ScriptedGenerator("Half of 8 is 4 [1].")))
    build_blocks(h, 1)
    return h


def req(user: str) -> gr.Request:
    return gr.Request(username=user)


def test_the_web_app_says_what_is_wrong_and_stores_nothing(h: Handlers) -> None:
    sid = by_name(h, PAGE_OUTPUTS, h.page_load(request=req("ana")))["session_id"]
    outs = [by_name(h, TURN_OUTPUTS, o) for o in h.send(BAD, "auto", sid, request=req("ana"))]
    chat = outs[-1]["chat"]
    assert "character that is not text (U+D800" in chat[-1]["content"]
    assert all("\ud800" not in m["content"] for m in chat)  # the browser's JSON can take it
    assert "what is 1/2 ? of 8?" in chat[-2]["content"]
    assert h.store.messages(sid) == []
    with pytest.raises(gr.Error) as e:
        h.save_profile("7\ud800", "", "", "", "", request=req("ana"))
    assert "character that is not text" in str(e.value) and UNEXPECTED not in str(e.value)
