"""Soak: N simulated students chat through the real web app for M minutes, then the store is
checked. Every message a student sent, every reply it was shown and every answer it had graded
must be stored, in that student's own session, in order; the errors must be zero.

The app is the one ``tutor serve`` builds (``ui_common.build``: the sample course, real scrypt
accounts) on a loopback port; the LM is the OpenAI-compatible ``ScriptedServer`` in its own
process with fixed token timing, whose reply names the marker of the question it answers (so an
answer shown to the wrong student, or stored in the wrong session, is caught). The students run
in another process, one ``gradio_client`` thread each, like ``ui_load.py``. Each repeats until
the time is up: two course questions, a practice problem (``/next_problem``, up to two wrong
answers through ``/check``, then "show me the full solution"), every other cycle a new session,
and one more question.

A student records what it saw: each session's chat as the server last sent it (``/send``
streams the whole chat). Checked after the run, on a fresh connection to the store:

- ``PRAGMA integrity_check`` of the SQLite file is ``ok``;
- per session, the stored messages rendered as the app renders a reloaded chat
  (``ui.render.history_messages``) equal the chat the student was shown, element by element;
- per session, the stored attempts are exactly the answers the student had graded, in order;
- every session belongs to its student, and the store holds no other user messages.

Time to first token (TTFT) is taken on the client, from submitting a question to the first
output holding answer text, for course questions only (practice turns answer with fixed text).
A question asked while a practice problem is open in that session is a follow-up: its reply
may be a move on that problem (a template), so neither its marker nor its TTFT is checked.

    python benchmarks/soak.py --students 50 --minutes 5
    python benchmarks/soak.py --students 8 --seconds 20 --embedder hash   # what the test runs
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import Recorder, markdown  # noqa: E402
from ui_common import TimedGenerator, build, median, pct, questions  # noqa: E402

from ui.testing import message_text  # noqa: E402

MARK_RE = re.compile(r"\(ref (zq[a-z]+)\)")
SOLUTION_REQUEST = "show me the full solution"
WRONG_ANSWERS = ("999", "-999/7")
TURN_TIMEOUT_S = 120.0


def marker(student: int, turn: int) -> str:
    """A marker without digits (a digit could read as a practice answer): ``zq`` + letters."""

    def letters(n: int) -> str:
        s = ""
        while True:
            s = chr(ord("a") + n % 26) + s
            n //= 26
            if n == 0:
                return s

    return f"zq{letters(student)}x{letters(turn)}"


def echo_reply(messages: list[dict[str, Any]]) -> str:
    """The fake LM's answer: names the marker of the last user message."""
    last = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = last.get("content", "")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    found = MARK_RE.search(str(content))
    ref = f" (answering {found.group(1)})" if found else ""
    return (
        "Let us think about it step by step. The course explains this idea [1]. What do you "
        f"notice first, and which rule could you use here{ref}?"
    )


def fake_backend(port: int, first: float, per_token: float, ready: Any) -> None:
    """The LM server, in its own process like a real one (vLLM, llama.cpp) would be."""
    from tutor.testing.openai_server import Script, ScriptedServer

    script = Script(reply=echo_reply, first_token_delay=first, token_delay=per_token)
    srv = ScriptedServer(script, port=port)
    ready.set()
    srv.httpd.serve_forever()


# -- the students (a separate process) ---------------------------------------------------------


def flat(chat: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], message_text(m["content"])) for m in chat]


class Student:
    """One simulated student: signs in, then runs turns until ``deadline``."""

    def __init__(self, url: str, name: str, index: int, think: float, seed: int) -> None:
        self.url = url
        self.name = name
        self.index = index
        self.think = think
        self.rng = random.Random(seed)
        self.sessions: dict[str, dict[str, Any]] = {}
        self.sid = ""
        self.turns = 0
        self.ttft: list[float] = []  # course questions (LM answers)
        self.turn_s: list[float] = []
        self.kinds: dict[str, int] = {}
        self.errors: list[str] = []
        self.client: Any = None

    def session(self, sid: str, chat: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        if sid not in self.sessions:
            self.sessions[sid] = {
                "chat": flat(chat or []),
                "sent": [],
                "attempts": [],
                "verifiable": True,
            }
        return self.sessions[sid]

    def sign_in(self) -> None:
        from gradio_client import Client

        from ui.testing import PASSWORD

        # a browser waits for the sign-in page as long as it takes; gradio_client's default
        # 5 s would fail a class signing in at once on a small machine (scrypt is slow)
        self.client = Client(
            self.url,
            auth=(self.name, PASSWORD),
            verbose=False,
            analytics_enabled=False,
            httpx_kwargs={"timeout": 60},
        )
        page = self.client.predict(api_name="/page_load")
        self.sid = page[2]
        self.session(self.sid, page[3])

    def turn(self, kind: str, api: str, *args: Any, sent: str) -> tuple[list, str]:
        """One chat turn; returns (final chat, final card). Raises on any failure."""
        sess = self.sessions[self.sid]
        t0 = time.perf_counter()
        first = None
        job = self.client.submit(*args, api_name=api)
        for out in job:
            chat = out[0]
            if (
                first is None
                and chat
                and chat[-1]["role"] == "assistant"
                and message_text(chat[-1]["content"]).strip()
            ):
                first = time.perf_counter() - t0
        chat, card = job.result(timeout=TURN_TIMEOUT_S)
        self.turn_s.append(time.perf_counter() - t0)
        self.turns += 1
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        shown = flat(chat)
        known = sess["chat"]
        # the turn starts from the chat as stored: it must be what the student saw before
        if shown[: len(known)] != known:
            raise AssertionError(
                f"{self.name}: the chat the server showed at turn {self.turns} differs from "
                f"what it showed before (session {self.sid})"
            )
        if len(shown) < len(known) + 2 or shown[len(known)][0] != "user":
            raise AssertionError(f"{self.name}: turn {self.turns} added no user message + reply")
        sess["chat"] = shown
        sess["sent"].append(sent)
        if kind == "question":
            if first is not None:
                self.ttft.append(first)
            mark = MARK_RE.search(sent)
            reply = shown[len(known) + 1][1]
            if mark and f"answering {mark.group(1)}" not in reply:
                raise AssertionError(
                    f"{self.name}: the answer to {mark.group(1)} does not name it: {reply[:120]!r}"
                )
        return chat, card

    def pause(self) -> None:
        if self.think > 0:
            time.sleep(self.rng.uniform(0, 2 * self.think))

    def cycle(self, n: int, qs: list[str], deadline: float) -> None:
        def ask(i: int) -> None:
            q = f"{qs[(self.index * 7 + n * 3 + i) % len(qs)]} (ref {marker(self.index, self.turns)})"
            # guide mode: the model's reply (naming the question) streams; explain would quote
            # the course and drop the fake model's sentences. With a practice problem still
            # open, guide mode answers with a move on that problem (a template) instead.
            kind = "follow-up" if self.sessions[self.sid].get("problem") else "question"
            self.turn(kind, "/send", q, "guide", self.sid, sent=q)

        ask(0)
        self.pause()
        if time.perf_counter() >= deadline:
            return
        ask(1)
        self.pause()
        if time.perf_counter() >= deadline:
            return
        from ui.handlers import NEXT_MESSAGE

        _, card = self.turn("practice", "/next_problem", self.sid, sent=NEXT_MESSAGE)
        if "No problem open" in card or "no practice items" in card:
            raise AssertionError(f"{self.name}: no practice problem was served")
        self.sessions[self.sid]["problem"] = True
        solved = False
        for answer in WRONG_ANSWERS:
            self.pause()
            _, card = self.turn("answer", "/check", answer, self.sid, sent=answer)
            self.sessions[self.sid]["attempts"].append(answer)  # graded: acknowledged
            if "✅" in card:  # right by chance: the problem is closed
                solved = True
                self.sessions[self.sid]["problem"] = False
                break
        if not solved:
            self.pause()
            self.turn(
                "solution", "/send", SOLUTION_REQUEST, "auto", self.sid, sent=SOLUTION_REQUEST
            )
        if n % 2 == 0:  # the first cycle and every other one go on in a new session
            out = self.client.predict(api_name="/new_session")
            self.sid = out[1]
            self.session(self.sid, out[2])
            self.kinds["new_session"] = self.kinds.get("new_session", 0) + 1
        self.pause()
        if time.perf_counter() >= deadline:
            return
        ask(2)
        self.pause()

    def run(self, deadline: float, qs: list[str]) -> None:
        n = 0
        while time.perf_counter() < deadline:
            try:
                self.cycle(n, qs, deadline)
            except Exception as e:  # noqa: BLE001 - counted and reported
                import traceback

                where = traceback.extract_tb(e.__traceback__)[-4:]
                self.errors.append(
                    f"{self.name}: {type(e).__name__}: {str(e)[:300]} at "
                    + " < ".join(f"{f.name}:{f.lineno}" for f in where)
                )
                # what the student saw of this session is no longer complete: start a new one
                if self.sid in self.sessions:
                    self.sessions[self.sid]["verifiable"] = False
                try:
                    out = self.client.predict(api_name="/new_session")
                    self.sid = out[1]
                    self.session(self.sid, out[2])
                except Exception as e2:  # noqa: BLE001
                    self.errors.append(f"{self.name}: cannot start a new session: {e2}")
                    return
            n += 1

    def result(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "turns": self.turns,
            "ttft": self.ttft,
            "turn_s": self.turn_s,
            "kinds": self.kinds,
            "errors": self.errors,
        }


def clients(url: str, names: list[str], seconds: float, think: float, conn: Any) -> None:
    """In its own process (students are other machines): run the students, send back results."""
    out: dict[str, Any] = {}
    ready = threading.Semaphore(0)
    start = threading.Event()
    clock: dict[str, float] = {}
    # questions without numbers: guide mode answers a question holding a calculation with a
    # move on that problem (a template), not with the model's reply naming the question
    qs = [q for q in questions(64) if not any(c.isdigit() for c in q)]

    def one(i: int, name: str) -> None:
        s = Student(url, name, i, think, seed=i)
        try:
            s.sign_in()
        except Exception as e:  # noqa: BLE001
            s.errors.append(f"{name}: sign-in failed: {type(e).__name__}: {e}")
            ready.release()
            out[name] = s.result()
            return
        ready.release()
        start.wait()
        # students do not start in lockstep: each begins within its first think time
        if think > 0:
            time.sleep(s.rng.uniform(0, think))
        s.run(clock["deadline"], qs)
        out[name] = s.result()

    threads = [threading.Thread(target=one, args=(i, n), daemon=True) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for _ in names:  # everyone signed in (scrypt) and on the page before the clock starts
        ready.acquire(timeout=600)
    time.sleep(0.5)
    t0 = time.perf_counter()
    clock["deadline"] = t0 + seconds
    start.set()
    for t in threads:
        # a turn started before the deadline may run until TURN_TIMEOUT_S after it
        t.join(timeout=max(1.0, clock["deadline"] + TURN_TIMEOUT_S + 30 - time.perf_counter()))
    wall = time.perf_counter() - t0
    for name in names:
        if name not in out:
            out[name] = {
                "sessions": {},
                "turns": 0,
                "ttft": [],
                "turn_s": [],
                "kinds": {},
                "errors": [f"{name}: did not finish within {TURN_TIMEOUT_S:.0f} s of the end"],
            }
    conn.send((out, wall))
    conn.close()


# -- checking the store -----------------------------------------------------------------------


def verify(db_url: str, results: dict[str, Any]) -> dict[str, Any]:
    """Compare what every student saw with what the store holds (a fresh connection)."""
    from tutor.store import LearnerStore
    from ui.render import history_messages

    problems: list[str] = []
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        total_user = db.execute("SELECT count(*) FROM messages WHERE role='user'").fetchone()[0]
    if integrity != "ok":
        problems.append(f"integrity_check: {integrity}")
    store = LearnerStore(db_url, kdf_n=2)
    counts = {"sessions": 0, "sent": 0, "replies": 0, "attempts": 0, "unverifiable": 0}
    try:
        for name, r in results.items():
            learner = store.find_learner(name)
            for sid, sess in r["sessions"].items():
                if not sess["verifiable"]:
                    counts["unverifiable"] += 1
                    continue
                counts["sessions"] += 1
                try:
                    msgs = store.messages(sid, learner_id=learner.id)  # its own session only
                except Exception as e:  # noqa: BLE001
                    problems.append(f"{name}: session {sid}: {e}")
                    continue
                stored = flat(history_messages(msgs))
                seen = [tuple(x) for x in sess["chat"]]
                if stored != seen:
                    at = next(
                        (i for i, (a, b) in enumerate(zip(stored, seen, strict=False)) if a != b),
                        min(len(stored), len(seen)),
                    )
                    problems.append(
                        f"{name}: session {sid}: stored chat differs from what was shown at "
                        f"element {at} (stored {len(stored)}, shown {len(seen)}): "
                        f"{stored[at : at + 1]!r} vs {seen[at : at + 1]!r}"
                    )
                users = [m.content for m in msgs if m.role == "user"]
                if users != sess["sent"]:
                    problems.append(
                        f"{name}: session {sid}: {len(sess['sent'])} messages sent, "
                        f"{len(users)} stored"
                    )
                counts["sent"] += len(sess["sent"])
                counts["replies"] += sum(1 for m in msgs if m.role == "assistant")
                got = [a.response for a in store.attempts(learner.id, session_id=sid)]
                if got != sess["attempts"]:
                    problems.append(
                        f"{name}: session {sid}: attempts graded {sess['attempts']!r}, "
                        f"stored {got!r}"
                    )
                counts["attempts"] += len(got)
        expected_user = sum(
            len(s["sent"]) for r in results.values() for s in r["sessions"].values()
        )
        if total_user != expected_user:
            problems.append(f"the store holds {total_user} user messages, {expected_user} sent")
    finally:
        store.close()
    return {"integrity": integrity, "problems": problems, **counts}


# -- the run ----------------------------------------------------------------------------------


def _figures(results: dict[str, Any], wall: float, lm_ttft: list[float]) -> dict[str, Any]:
    """What the students saw, pooled: turns, kinds, rate, TTFT, turn time and errors."""
    ttft = [x for r in results.values() for x in r["ttft"]]
    turn_s = [x for r in results.values() for x in r["turn_s"]]
    errors = [e for r in results.values() for e in r["errors"]]
    kinds: dict[str, int] = {}
    for r in results.values():
        for k, v in r["kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    turns = sum(r["turns"] for r in results.values())
    return {
        "turns": turns,
        "kinds": kinds,
        "turns_per_s": round(turns / wall, 2) if wall else 0.0,
        "ttft_s": {
            "n": len(ttft),
            "p50": median(ttft),
            "p95": pct(ttft, 0.95),
            "p99": pct(ttft, 0.99),
            "max": max(ttft, default=float("nan")),
        },
        "backend_ttft_p50_s": median(lm_ttft),
        "turn_s": {"p50": median(turn_s), "p95": pct(turn_s, 0.95)},
        "errors": errors,
    }


def soak(
    students: int,
    seconds: float,
    *,
    think: float = 1.0,
    embedder: str = "minilm",
    first_token_delay: float = 0.25,
    token_delay: float = 0.02,
    concurrency_limit: int = 0,
    root: Path | None = None,
) -> dict[str, Any]:
    """Run the soak; returns the figures and the store check (see the module docstring)."""
    import multiprocessing as mp

    from tutor.lm.openai import OpenAIGenerator
    from ui.app import create_app, lm_concurrency
    from ui.testing import ServerThread, free_port

    if not 1 <= students <= 500:
        raise ValueError(f"students must be within 1..500, got {students}")
    if not 0 < seconds <= 3600:
        raise ValueError(f"the run must last 0..3600 s, got {seconds}")
    spawn = mp.get_context("spawn")
    port = free_port()
    up = spawn.Event()
    lm = spawn.Process(
        target=fake_backend, args=(port, first_token_delay, token_delay, up), daemon=True
    )
    lm.start()
    tmp = tempfile.TemporaryDirectory(prefix="soak-") if root is None else None
    base = Path(tmp.name) if tmp is not None else Path(root)  # type: ignore[arg-type]
    try:
        if not up.wait(60):
            raise RuntimeError("the fake LM server did not start")
        gen = TimedGenerator(OpenAIGenerator(f"http://127.0.0.1:{port}/v1", "scripted"))
        ctx = build(base, gen, students=students, embedder=embedder)
        ctx.config.lm.backend = "openai"
        ctx.config.ui.concurrency_limit = concurrency_limit
        names = [f"s{i:02d}" for i in range(students)]
        with ServerThread(create_app(ctx)) as srv:
            parent, child = spawn.Pipe()
            proc = spawn.Process(
                target=clients, args=(srv.url, names, seconds, think, child), daemon=True
            )
            proc.start()
            results, wall = parent.recv()
            proc.join(30)
        check = verify(ctx.config.database_url, results)
        ctx.store.close()
    finally:
        lm.terminate()
        lm.join(10)
        if tmp is not None:
            tmp.cleanup()
    return {
        "students": students,
        "seconds": seconds,
        "wall_s": round(wall, 1),
        "think_s": think,
        "embedder": embedder,
        "lm_turns_at_once": lm_concurrency(ctx.config),
        "backend": {"first_token_s": first_token_delay, "token_s": token_delay},
        **_figures(results, wall, gen.ttft),
        "store": check,
        "all_stored": not check["problems"] and check["integrity"] == "ok",
        "database_url": ctx.config.database_url,
        "records": results,  # what each student saw (for ``verify``); not in --json
    }


SOAK_COLUMNS = (
    "students,minutes,turns,turns/s,TTFT p50 (ms),p95,p99,max,turn p95 (s),errors,"
    "messages sent / stored,replies stored,attempts stored,all stored"
).split(",")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def soak_row(r: dict[str, Any]) -> list[str]:
    """The summary row of a soak under ``SOAK_COLUMNS``."""
    t, s = r["ttft_s"], r["store"]
    return [
        str(r["students"]),
        f"{round(r['seconds'] / 60, 2):g}",
        str(r["turns"]),
        str(r["turns_per_s"]),
        ms(t["p50"]),
        ms(t["p95"]),
        ms(t["p99"]),
        ms(t["max"]),
        f"{r['turn_s']['p95']:.2f}",
        str(len(r["errors"])),
        f"{s['sent']} / {s['sent'] if not s['problems'] else '?'}",
        str(s["replies"]),
        str(s["attempts"]),
        "yes" if r["all_stored"] else "NO",
    ]


def report(r: dict[str, Any]) -> str:
    t, s = r["ttft_s"], r["store"]
    lines = [
        f"Soak: {r['students']} students x {round(r['seconds'] / 60, 2):g} min (wall {r['wall_s']} s), "
        f"think time {r['think_s']:g} s (mean), embedder {r['embedder']}, "
        f"{r['lm_turns_at_once']} LM turns at once; fake LM: first token "
        f"{ms(r['backend']['first_token_s'])} ms, then {ms(r['backend']['token_s'])} ms/token.",
        "",
        markdown(SOAK_COLUMNS, [soak_row(r)], "rrrrrrrrrrlrrl"),
        "",
        f"Turns by kind: {json.dumps(r['kinds'], sort_keys=True)}; TTFT over {t['n']} course "
        f"questions; backend's own TTFT p50 {ms(r['backend_ttft_p50_s'])} ms; sessions checked "
        f"{s['sessions']} (unverifiable after an error: {s['unverifiable']}); SQLite "
        f"integrity_check: {s['integrity']}.",
    ]
    lines += [f"error: {e}" for e in r["errors"][:10]] + [f"store: {p}" for p in s["problems"][:10]]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=50)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--minutes", type=float, default=None)
    g.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--think", type=float, default=1.0, help="mean pause between turns (s)")
    ap.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    ap.add_argument("--first-token-delay", type=float, default=0.25)
    ap.add_argument("--token-delay", type=float, default=0.02)
    ap.add_argument("--limit", type=int, default=0, help="ui.concurrency_limit (0 = automatic)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    rec = Recorder("soak", args)
    seconds = args.seconds if args.seconds is not None else 60 * (args.minutes or 5)
    r = soak(
        args.students,
        seconds,
        think=args.think,
        embedder=args.embedder,
        first_token_delay=args.first_token_delay,
        token_delay=args.token_delay,
        concurrency_limit=args.limit,
    )
    print(report(r))
    records = r["records"].values()
    rec.latency("ttft", [x for one in records for x in one["ttft"]], scale=1000)
    rec.latency("turn", [x for one in records for x in one["turn_s"]], unit="s")
    rec.samples("figures", {k: v for k, v in r.items() if k not in ("records", "database_url")})
    rec.meta(model="ScriptedServer: OpenAI-compatible fake LM with fixed token timing")
    rec.table("soak", SOAK_COLUMNS, [soak_row(r)], align="rrrrrrrrrrlrrl")
    rec.write()
    if args.json:
        figures = {k: v for k, v in r.items() if k != "records"}
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
    return 0 if r["all_stored"] and not r["errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
