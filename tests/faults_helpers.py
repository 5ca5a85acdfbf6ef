"""Helpers of ``tests/test_faults.py``: the processes a fault test starts, and the web-server
fault's students (``Learner``) with the checks made after ``tutor serve`` is killed mid-stream."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from ui.testing import PASSWORD, message_text

REPO = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def tutor_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tutor", *args]


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen]]:
    """Every process a test starts is killed at the end, whatever happened."""
    procs: list[subprocess.Popen] = []
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            with contextlib.suppress(Exception):
                p.wait(timeout=30)


# -- the web server --------------------------------------------------------------------------

REPLY = (
    "Let us look at it together, one small step at a time, so that every part makes sense "
    "before we go on. What do you notice first about the question, and which idea from the "
    "lesson could help you here?"
)


def echo(messages: list[dict[str, Any]]) -> str:
    """The reply names the learner's message, so a reply stored in the wrong place shows."""
    last = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    return f"About '{last}': {REPLY}"


def reply_to(question: str) -> str:
    """The whole reply the tutor gives: the model's, streamed (guide mode, no problem open)."""
    return echo([{"role": "user", "content": question}])


def flat(chat: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], message_text(m["content"])) for m in chat]


def make_accounts(home: Path, names: list[str]) -> None:
    from tutor.store import LearnerStore

    with LearnerStore(f"sqlite:///{home / 'learners.sqlite'}", kdf_n=2) as store:
        for name in names:
            lid = store.add_learner(name, display_name=name.capitalize()).id
            store.add_user(name, PASSWORD, role="student", learner_id=lid)


def start_server(
    procs: list[subprocess.Popen], home: Path, port: int, lm_url: str, log: Path
) -> subprocess.Popen:
    cmd = tutor_cmd(
        "serve",
        "--port",
        str(port),
        "--backend",
        "openai",
        "--base-url",
        lm_url,
        "--set",
        "lm.api_model=scripted",
        "--set",
        "ui.login_delay=0",
    )
    with log.open("a") as out:
        proc = subprocess.Popen(
            cmd, env={**ENV, "TUTOR_HOME": str(home)}, cwd=REPO, stdout=out, stderr=out
        )
    procs.append(proc)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"tutor serve exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                return proc
        time.sleep(0.2)
    raise AssertionError(f"tutor serve did not come up:\n{log.read_text()}")


def together(fn: Any, args: Any) -> list[Any]:
    """``fn(a)`` for every ``a`` at once, in threads (students act in parallel); re-raises."""
    from concurrent.futures import ThreadPoolExecutor

    args = list(args)
    with ThreadPoolExecutor(len(args)) as pool:
        return list(pool.map(fn, args))


class Learner:
    """A student in a browser: what it was shown, and what the server acknowledged."""

    def __init__(self, url: str, name: str) -> None:
        from gradio_client import Client

        self.name = name
        self.client = Client(url, auth=(name, PASSWORD), verbose=False, analytics_enabled=False)
        page = self.client.predict(api_name="/page_load")
        self.sid = page[2]
        self.seen = flat(page[3])  # the chat as last shown after a finished turn
        self.acked: list[str] = []  # messages the server stored (it began to answer them)
        self.attempts: list[str] = []  # answers whose grading came back
        self.streaming = threading.Event()
        self.partial = ""

    def turn(self, api: str, *args: Any, sent: str, until_streaming: bool = False) -> Any:
        job = self.client.submit(*args, api_name=api)
        known = len(self.seen)
        for out in job:
            chat = flat(out[0])
            if len(chat) > known and sent not in self.acked[-1:]:
                assert chat[known] == ("user", sent)
                self.acked.append(sent)  # the first output: the message is stored
            if len(chat) > known + 1 and chat[known + 1][0] == "assistant":
                self.partial = chat[known + 1][1]
                if until_streaming and self.partial:
                    self.streaming.set()
        if until_streaming:
            return None  # the server was killed: the job ends without a result
        chat, card = job.result(timeout=60)
        self.seen = flat(chat)
        return card

    def ask(self, question: str, **kw: Any) -> None:
        # guide mode: the model's reply streams (explain mode would answer a question the
        # course does not cover with the fixed notice alone, and nothing would stream)
        self.turn("/send", question, "guide", self.sid, sent=question, **kw)

    def practise(self, db: Path) -> None:
        """Take the next problem and solve it (its answer read from the store): a graded
        attempt, and no problem left open, so the next question streams the model's reply
        (a question with a problem open is answered from the course instead)."""
        from tutor.items import load_default_bank
        from tutor.store import LearnerStore
        from ui.handlers import NEXT_MESSAGE

        self.turn("/next_problem", self.sid, sent=NEXT_MESSAGE)
        with LearnerStore(f"sqlite:///{db}", fallback_bank=load_default_bank, kdf_n=2) as store:
            state = store.get_state(self.sid)
            assert state.item_id, "no practice item was served"
            item = store.get_item(store.get_session(self.sid).collection, state.item_id)
        answer = str(item.answer.value)
        card = self.turn("/check", answer, self.sid, sent=answer)
        assert "Correct" in card, card  # graded
        self.attempts.append(answer)


# -- the phases of the web-server fault ------------------------------------------------------


def kill_while_streaming(server: subprocess.Popen, learners: dict[str, Learner]) -> None:
    """SIGKILL ``tutor serve`` while every learner's answer streams."""

    def interrupted(lr: Learner) -> None:
        with contextlib.suppress(Exception):  # the server dies under this request
            lr.ask(f"why is the sky blue, asks {lr.name}?", until_streaming=True)

    threads = [
        threading.Thread(target=interrupted, args=(lr,), daemon=True) for lr in learners.values()
    ]
    for t in threads:
        t.start()
    for lr in learners.values():
        assert lr.streaming.wait(60), f"{lr.name}'s answer never started"
    time.sleep(random.uniform(0.0, 0.5))
    server.send_signal(signal.SIGKILL)
    assert server.wait(30) == -signal.SIGKILL
    for t in threads:  # a request to a dead server may hang on: it is not waited for
        t.join(2)


def assert_store_intact(db: Path) -> None:
    """The SQLite file on disk, before anything opens it again."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def assert_acknowledged_stored(db: Path, learners: dict[str, Learner]) -> None:
    """Every acknowledged message and attempt stored in its session; the finished turns as
    shown; the interrupted reply absent or a stopped partial of the real reply."""
    from tutor.store import LearnerStore
    from ui.render import history_messages

    with LearnerStore(f"sqlite:///{db}", kdf_n=2) as store:
        for lr in learners.values():
            learner = store.find_learner(lr.name)
            msgs = store.messages(lr.sid, learner_id=learner.id)
            assert [m.content for m in msgs if m.role == "user"] == lr.acked
            assert len(lr.acked) == 4  # question, next problem, answer, interrupted question
            # the finished turns are stored as they were shown
            shown = flat(history_messages(msgs))
            assert shown[: len(lr.seen)] == lr.seen
            # the interrupted reply: absent, or a stopped partial of the real reply
            full = reply_to(lr.acked[-1])
            last_user = max(m.id for m in msgs if m.role == "user")
            tail = [m for m in msgs if m.id > last_user]
            assert all(
                m.role == "assistant" and m.meta.get("stopped") and full.startswith(m.content)
                for m in tail
            ), tail
            got = [a.response for a in store.attempts(learner.id, session_id=lr.sid)]
            assert got == lr.attempts


def assert_students_go_on(url: str, db: Path, learners: dict[str, Learner]) -> None:
    """On the restarted server each student opens the same session and gets a whole answer."""
    from tutor.store import LearnerStore

    names = list(learners)

    def go_on(name: str) -> None:
        old = learners[name]
        lr = Learner(url, name)
        assert lr.sid == old.sid  # the latest session opens again
        assert lr.seen[: len(old.seen)] == old.seen
        lr.acked = list(old.acked)
        lr.ask(f"and what about clouds, asks {name}?")
        assert lr.seen[-1] == ("assistant", reply_to(f"and what about clouds, asks {name}?"))

    together(go_on, names)
    with LearnerStore(f"sqlite:///{db}", kdf_n=2) as store:
        for name in names:
            lr_id = store.find_learner(name).id
            msgs = store.messages(learners[name].sid, learner_id=lr_id)
            users = [m.content for m in msgs if m.role == "user"]
            assert users == [*learners[name].acked, f"and what about clouds, asks {name}?"]
            assert msgs[-1].role == "assistant" and not msgs[-1].meta.get("stopped")
            assert msgs[-1].content == reply_to(users[-1])
