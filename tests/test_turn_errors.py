"""An error in one turn stays in that turn (issue 16, what a first-time user hit): the hint
error used to blank the whole chat into a red "Error" badge until the next message."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from tests.test_ui_handlers import REPLY, bound, page, req, turn, turn_error
from tutor.testing.fake_lm import ScriptedGenerator
from ui import render
from ui.handlers import TURN_OUTPUTS, Handlers
from ui.testing import by_name, sample_context


@pytest.fixture
def gen() -> ScriptedGenerator:
    return ScriptedGenerator(REPLY)


@pytest.fixture
def h(tmp_path: Path, gen: ScriptedGenerator) -> Handlers:
    return bound(sample_context(tmp_path, gen))


def test_an_error_in_one_turn_stays_in_that_turn(h: Handlers, gen: ScriptedGenerator) -> None:
    """Issue 16: the hint error blanked the whole chat into an "Error" badge. A failing turn
    now ends under itself: earlier turns, what was typed and what streamed stay on screen."""
    from tutor.errors import BackendError

    sid = page(h, "ana")["session_id"]
    turn(h, "ana", "How do plants make glucose?", sid)
    before = render.history_messages(h.store.messages(sid))
    note = turn_error(h, sid, h.hint(sid, request=req("ana")))
    assert "no problem open to give a hint" in note

    def failing(messages, **kw):  # type: ignore[no-untyped-def]
        yield "Plants use light "
        raise BackendError("the model server dropped the stream; try again")

    gen.stream = failing  # type: ignore[method-assign]
    outs = [
        by_name(h, TURN_OUTPUTS, o)
        for o in h.send("And why green?", "guide", sid, request=req("ana"))
    ]
    chat = outs[-1]["chat"]
    assert chat[: len(before)] == before
    assert "And why green?" in chat[len(before)]["content"]
    assert chat[-1]["content"].startswith("⚠️") and "dropped the stream" in chat[-1]["content"]
    # a session that is not the learner's is still refused outright: nothing of it is shown
    with pytest.raises(gr.Error, match="(?i)no session"):
        list(h.hint("not-a-session", request=req("ana")))
