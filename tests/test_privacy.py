"""Privacy: logs carry ids, not learners' names or what they wrote; learner data stays in the
data dir; export and deletion cover all of it.

One learner goes through everything a real one does, with distinctive strings as name, display
name, messages, profile and teacher notes: a teacher creates the account, the learner fails to
sign in, signs in, chats (explanations, a problem of their own, an attempt, a hint), saves a
profile; the teacher looks at them, writes notes, exports and deletes them. Every log record of
every logger is captured at DEBUG:

- at INFO and above, no record (message or traceback) contains any of the strings;
- at DEBUG, the project's own loggers may name an account (a failed sign-in's user name) but
  never carry what a learner wrote, their profile or the teacher's notes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from tutor.testing.fake_lm import ScriptedGenerator
from ui.app import build_blocks
from ui.handlers import CREATE_OUTPUTS, PAGE_OUTPUTS, Handlers
from ui.testing import by_name, sample_context

USERNAME = "zelda-q"
DISPLAY = "Zelda Quartermain"
WRITTEN = {  # what the learner (or their teacher) writes
    "question": "My dragon Smaug-7731 likes fractions. How do I add fractions?",
    "problem": "Smaug-7731 asks: what is 3/4 + 1/8?",
    "wrong": "4/12",
    "hint": "hint please, Smaug-7731 is stuck",
    "right": "7/8",
    "goals": "become an astronaut-4411",
    "notes": "secret-note-9981: talk to the parents",
}
NAMES = [USERNAME, "Zelda", "Quartermain"]
OUR_LOGGERS = ("tutor", "knowledge_base", "ui", "evals", "finetune")


def req(username: str | None) -> gr.Request:
    return gr.Request(username=username)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in OUR_LOGGERS:  # other tests (the CLI's setup_logging) may have raised these
        caplog.set_level(logging.DEBUG, logger=name)
        logging.getLogger(name).propagate = True
    return caplog


def _text(r: logging.LogRecord) -> str:
    text = r.getMessage()
    if r.exc_info:
        text += logging.Formatter().formatException(r.exc_info)
    return text


def _files(root: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


def test_logs_carry_ids_not_names_or_messages(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    h = Handlers(sample_context(tmp_path, ScriptedGenerator("Think about the denominators [1].")))
    build_blocks(h, 1)  # binds the components the handlers return values for
    home = h.ctx.config.paths.home_dir
    before = _files(tmp_path)

    # the teacher creates the account (a generated password, shown once)
    created = by_name(
        h, CREATE_OUTPUTS, h.create_student(USERNAME, DISPLAY, "", request=req("mrs-k"))
    )
    status, *_ = created.values()
    password = status.split("`")[1]
    lid = h.store.find_learner(USERNAME).id

    # sign-in: a failure, then a success (the routes log both)
    app = FastAPI()
    h.signin.install(app)
    with TestClient(app) as client:
        bad = client.post("/login", data={"username": USERNAME, "password": "wrong-password-1"})
        assert bad.status_code == 401
        ok = client.post("/login", data={"username": USERNAME, "password": password})
        assert ok.status_code == 200 and ok.json()["success"]

    # the learner chats: a question, a problem of their own, a wrong attempt, a hint, the answer
    page = by_name(h, PAGE_OUTPUTS, h.page_load(request=req(USERNAME)))
    sid = page["session_id"]
    for key in ("question", "problem", "wrong", "hint", "right"):
        for _ in h.send(WRITTEN[key], "auto", sid, request=req(USERNAME)):
            pass
    h.save_profile("6", "English", WRITTEN["goals"], "", "", request=req(USERNAME))
    stored = [m.content for m in h.store.messages(sid)]
    assert WRITTEN["problem"] in stored and any("Correct" in m for m in stored)

    # the teacher looks, writes notes, exports and deletes
    h.learner_detail(lid, request=req("mrs-k"))
    h.save_notes(lid, WRITTEN["notes"], request=req("mrs-k"))
    from ui.guard import authorize

    export = h.export_learner(authorize(h.signin, "teacher", "mrs-k"), lid)
    assert export["tables"]["auth_sessions"]  # the sign-in is part of the learner's data
    assert WRITTEN["notes"] in str(export) and DISPLAY in str(export)
    h.delete_learner(lid, USERNAME, request=req("mrs-k"))
    with pytest.raises(gr.Error):
        h.page_load(request=req(USERNAME))  # the account went with the learner

    records = logs.records
    assert len(records) > 5  # the operations did log (sign-ins, account, deletion)
    secrets = NAMES + list(WRITTEN.values()) + [password]
    for r in records:
        text = _text(r)
        if r.levelno >= logging.INFO:
            leaked = [s for s in secrets if s in text]
            assert not leaked, f"{r.name} {r.levelname}: {text!r} names {leaked}"
        elif r.name.split(".")[0] in OUR_LOGGERS:
            leaked = [s for s in [*WRITTEN.values(), password] if s in text]
            assert not leaked, f"{r.name} DEBUG: {text!r} carries {leaked}"
    # what the logs do say: ids
    messages = [r.getMessage() for r in records if r.levelno >= logging.INFO]
    assert any(f"learner {lid}" in m for m in messages), messages

    # everything the server wrote (new or changed files) is in its data dir
    after = _files(tmp_path)
    written = {p for p, st in after.items() if before.get(p) != st}
    assert written and all(home in p.parents for p in written), sorted(map(str, written))


def test_uploads_are_kept_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``tutor serve`` points Gradio's upload cache (every uploaded document and item bank) at
    ``paths.uploads_dir`` instead of the system's /tmp."""
    import uvicorn
    from gradio.utils import get_upload_folder

    import ui.server as server

    ctx = sample_context(tmp_path, ScriptedGenerator("ok"))
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    monkeypatch.setattr(server, "build_context", lambda config: ctx)
    monkeypatch.setattr(server, "_port_free", lambda host, port: True)
    apps: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append(app))
    assert server.serve(ctx.config) == 0 and apps
    uploads = ctx.config.paths.uploads_dir
    assert os.environ["GRADIO_TEMP_DIR"] == get_upload_folder() == str(uploads)
    assert ctx.config.paths.home_dir in uploads.parents
