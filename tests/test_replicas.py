"""Scale-out as docs/operations.md describes it, command by command, where this machine allows.

- The LM behind an OpenAI-compatible server that serves the LoRA adapter under its own model
  name (what vLLM does with ``--lora-modules tutor-lora=…``): ``tutor ask``/``tutor serve`` with
  ``--set lm.api_model=tutor-lora`` against ``ScriptedServer`` named ``tutor-lora``.
- FAISS HNSW and IVF for large courses through ``tutor kb add/stats/search`` and ``tutor.toml``.
- A read-only copy of the knowledge base (a replica on another host): search works, writes are
  refused with a clear message, nothing is written into the copy.
- Two ``tutor serve`` replicas on one PostgreSQL (``TUTOR_TUTOR__DATABASE_URL``; the first
  account made with ``tutor users add``) and one knowledge base (the second replica reads it
  through a read-only mount): a sign-in made on one replica works on the other, a chat and
  graded attempts go on across replicas in one session and land in PostgreSQL in order, a
  sign-out reaches the other replica within the 5 s token cache; a queue event started on one
  replica is unknown to the other (why the proxy routes by cookie).
- The nginx config of docs/operations.md, run as written (its ports, certificate and paths
  replaced): HTTP redirects to HTTPS, the sign-in cookie is ``Secure``, every request of a
  browser reaches one replica, answers stream through the proxy, ``/login`` is rate-limited,
  and when a replica is killed its students go on, signed in, in the same sessions.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tutor.testing.openai_server import Script, ScriptedServer
from ui.auth import CACHE_S, COOKIE
from ui.testing import PASSWORD, free_port, message_text

REPO = Path(__file__).resolve().parents[1]
OPERATIONS = REPO / "docs" / "operations.md"
ADAPTER = "tutor-lora"
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "OMP_NUM_THREADS": "1",
}


def echo(messages: list[dict[str, Any]]) -> str:
    last = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    return f"About '{last}': let us look at it step by step. What do you notice first?"


def doc_block(lang: str) -> str:
    """The first fenced ``lang`` block of docs/operations.md (the tests run what it shows)."""
    m = re.search(rf"```{lang}\n(.*?)```", OPERATIONS.read_text(encoding="utf-8"), re.S)
    assert m, f"no ```{lang} block in {OPERATIONS}"
    return m.group(1)


# -- the model on an OpenAI-compatible server, the adapter under its own name -------------------


def test_the_adapter_is_asked_for_by_its_served_name(
    tutor_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tutor.cli import main

    script = Script(model=ADAPTER, reply=lambda m: "Rewrite both with a common denominator.")
    with ScriptedServer(script) as lm:
        args = ["ask", "--backend", "openai", "--base-url", lm.base_url]
        assert main([*args, "--set", f"lm.api_model={ADAPTER}", "What is 3/4 + 1/8?"]) == 0
        assert "common denominator" in capsys.readouterr().out
        sent = lm.script.requests[-1]
        assert sent["model"] == ADAPTER and sent["stream"] is True
        assert sent["messages"][-1] == {"role": "user", "content": "What is 3/4 + 1/8?"}

        assert main([*args, "--set", "lm.api_model=tutor-lroa", "What is 3/4 + 1/8?"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: the server at {lm.base_url}")
        assert "HTTP 404" in err[0] and "tutor-lroa" in err[0]
    down = f"http://127.0.0.1:{free_port()}/v1"
    assert main(["ask", "--backend", "openai", "--base-url", down, "hello there"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot reach the OpenAI-compatible server")


# -- FAISS HNSW / IVF for large courses ---------------------------------------------------------


@pytest.fixture
def kb_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """``tutor …`` in-process with the hashing embedder, in ``tmp_path`` (where tutor.toml is)."""
    import tutor.builders
    from knowledge_base.testing import HashEmbedder
    from tutor.cli import main

    monkeypatch.setattr(tutor.builders, "build_embedder", lambda config: HashEmbedder())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUTOR_HOME", str(tmp_path / "home"))

    def run(*args: str) -> tuple[int, str]:
        code = main(list(args))
        return code, capsys.readouterr().out

    return run


def course(d: Path, n: int, prefix: str = "unit") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (d / f"{prefix}{i:03d}.md").write_text(
            f"# {prefix.title()} {i}\n\nAdding fractions, part {i}: rewrite both with a common "
            f"denominator, then add the numerators.\n",
            encoding="utf-8",
        )
    return d


def collections(run: Any) -> dict[str, Any]:
    import json

    code, out = run("kb", "stats", "--check", "--json")
    assert code == 0, out
    stats = json.loads(out)
    assert stats["problems"] == []
    return {c["name"]: c for c in stats["collections"]}


def test_hnsw_and_ivf_for_large_courses(kb_cli: Any, tmp_path: Path) -> None:
    toml = tmp_path / "tutor.toml"
    # the guide's tutor.toml, as written
    block = re.search(r"```toml\n(# tutor.toml\n\[kb\].*?)```", OPERATIONS.read_text(), re.S)
    assert block, "the [kb] tutor.toml block of docs/operations.md"
    toml.write_text(block.group(1), encoding="utf-8")
    big = course(tmp_path / "big-course", 40)
    assert kb_cli("kb", "add", str(big), "--collection", "big")[0] == 0
    info = collections(kb_cli)["big"]
    assert info["index_kind"] == "hnsw" and info["vectors"] == info["chunks"] == 40
    code, out = kb_cli("kb", "search", "adding fractions", "--collection", "big", "-k", "4")
    assert code == 0 and "Unit" in out

    # the default (auto) in a process that writes turns a small HNSW collection back to flat
    toml.unlink()
    course(big, 41)  # one more file
    assert kb_cli("kb", "add", str(big), "--collection", "big")[0] == 0
    assert collections(kb_cli)["big"]["index_kind"] == "flat"

    # auto: flat below kb.ann_threshold, IVF from there on
    toml.write_text("[kb]\nindex = 'auto'\nann_threshold = 100\n", encoding="utf-8")
    many = course(tmp_path / "many", 90, prefix="lesson")
    assert kb_cli("kb", "add", str(many), "--collection", "many")[0] == 0
    assert collections(kb_cli)["many"]["index_kind"] == "flat"
    course(many, 120, prefix="lesson")
    assert kb_cli("kb", "add", str(many), "--collection", "many")[0] == 0
    info = collections(kb_cli)["many"]
    assert info["index_kind"] == "ivf" and info["vectors"] == 120
    code, out = kb_cli("kb", "search", "common denominator", "--collection", "many", "-k", "3")
    assert code == 0 and "Lesson" in out


# -- a read-only copy of the knowledge base ------------------------------------------------------


@contextlib.contextmanager
def read_only_view(src: Path, where: Path) -> Iterator[Path]:
    """``src`` seen read-only: a read-only bind mount as root, else ``src`` with write
    permission taken away (restored afterwards)."""
    if os.geteuid() == 0:
        where.mkdir(parents=True, exist_ok=True)
        if subprocess.run(["mount", "--bind", str(src), str(where)]).returncode != 0:
            pytest.skip("cannot bind-mount here")
        try:
            r = subprocess.run(["mount", "-o", "remount,ro,bind", str(where)])
            assert r.returncode == 0
            yield where
        finally:
            if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(where)], capture_output=True)
        return
    modes = {p: p.stat().st_mode for p in [src, *src.rglob("*")]}
    try:
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        yield src
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_a_read_only_copy_of_the_knowledge_base_searches_and_refuses_writes(
    tmp_path: Path,
) -> None:
    from knowledge_base import KnowledgeBase, StoreError
    from knowledge_base.testing import HashEmbedder

    kb = KnowledgeBase.open(tmp_path / "kb", HashEmbedder(), show_progress=False)
    kb.add([course(tmp_path / "course", 5)])
    before = kb.search("adding fractions", k=3)
    doc = kb.list_documents()[0].doc_id
    kb.close()
    files = sorted(p.name for p in (tmp_path / "kb").rglob("*"))
    with read_only_view(tmp_path / "kb", tmp_path / "ro") as ro:
        copy = KnowledgeBase.open(ro, HashEmbedder(), show_progress=False)
        assert copy.store.read_only
        assert [p.chunk_id for p in copy.search("adding fractions", k=3)] == [
            p.chunk_id for p in before
        ]
        assert copy.store.check() == [] and copy.stats().documents == 5
        extra = course(tmp_path / "more", 1, prefix="extra")
        with pytest.raises(StoreError, match="read-only for this process"):
            copy.add([extra])
        with pytest.raises(StoreError, match="read-only for this process"):
            copy.remove(doc)
        copy.close()
    assert sorted(p.name for p in (tmp_path / "kb").rglob("*")) == files  # nothing written


# -- two replicas on one PostgreSQL ----------------------------------------------------------------


@dataclass
class Replicas:
    a: str
    b: str
    db_url: str
    lm: Any
    procs: dict[str, subprocess.Popen]
    logs: dict[str, Path]
    kb_read_only: bool
    extra: dict[str, Any] = field(default_factory=dict)


def tutor_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tutor", *args]


def wait_up(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"tutor serve exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "login", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"tutor serve did not come up:\n{log.read_text()}")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Replicas]:
    import sqlalchemy as sa

    from knowledge_base import KnowledgeBase

    base = tmp_path_factory.mktemp("replicas")
    name = f"tutor_replicas_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db_url = sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    procs: dict[str, subprocess.Popen] = {}
    mounted: list[Path] = []
    lm = ScriptedServer(Script(reply=echo, model=ADAPTER, token_delay=0.02))
    lm.__enter__()
    try:
        home_a, home_b = base / "a", base / "b"
        KnowledgeBase.open(home_a / "kb").close()  # an empty knowledge base, initialised
        (home_b / "kb").mkdir(parents=True)
        kb_read_only = False
        if os.geteuid() == 0:  # replica B reads the knowledge base through a read-only mount
            ok = subprocess.run(["mount", "--bind", str(home_a / "kb"), str(home_b / "kb")])
            if ok.returncode == 0:
                mounted.append(home_b / "kb")
                r = subprocess.run(["mount", "-o", "remount,ro,bind", str(home_b / "kb")])
                kb_read_only = r.returncode == 0
        if not mounted:
            home_b = home_a  # one host, one data dir
        env = {**ENV, "TUTOR_TUTOR__DATABASE_URL": db_url}
        # the first account, made with the CLI, straight into PostgreSQL
        r = subprocess.run(
            tutor_cmd("users", "add", "ana", "--student", "--password-stdin"),
            input=PASSWORD + "\n",
            env={**env, "TUTOR_HOME": str(home_a)},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        urls, logs = {}, {}
        for key, home in (("a", home_a), ("b", home_b)):
            port = free_port()
            urls[key] = f"http://127.0.0.1:{port}/"
            logs[key] = base / f"serve-{key}.log"
            cmd = tutor_cmd(
                "serve", "--port", str(port), "--backend", "openai", "--base-url", lm.base_url,
                "--set", f"lm.api_model={ADAPTER}", "--set", "ui.login_delay=0",
            )  # fmt: skip
            with logs[key].open("w") as out:
                procs[key] = subprocess.Popen(
                    cmd, env={**env, "TUTOR_HOME": str(home)}, cwd=REPO, stdout=out, stderr=out
                )
        for key in ("a", "b"):
            wait_up(procs[key], urls[key], logs[key])
        yield Replicas(urls["a"], urls["b"], db_url, lm, procs, logs, kb_read_only)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
            with contextlib.suppress(Exception):
                p.wait(timeout=30)
        for m in mounted:
            if subprocess.run(["umount", str(m)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(m)], capture_output=True)
        lm.__exit__(None, None, None)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def client(url: str, *, user: str | None = None, token: str | None = None, **kw: Any) -> Any:
    from gradio_client import Client

    if user:
        kw["auth"] = (user, PASSWORD)
    if token:
        kw["headers"] = {"Cookie": f"{COOKIE}={token}"}
    return Client(url, verbose=False, analytics_enabled=False, **kw)


def sign_in(url: str, user: str, **kw: Any) -> str:
    r = httpx.post(url + "login", data={"username": user, "password": PASSWORD}, **kw)
    assert r.status_code == 200, r.text
    return r.cookies[COOKIE]


def add_students(db_url: str, *names: str) -> None:
    from tutor.store import LearnerStore

    with LearnerStore(db_url, kdf_n=2) as store:
        for n in names:
            lid = store.add_learner(n, display_name=n.capitalize()).id
            store.add_user(n, PASSWORD, role="student", learner_id=lid)


@pytest.mark.postgres
@pytest.mark.slow
def test_replicas_share_sign_in_chat_and_attempts_on_postgresql(replicas: Replicas) -> None:
    from tutor.store import LearnerStore
    from ui.handlers import NEXT_MESSAGE

    a, b = replicas.a, replicas.b
    assert replicas.kb_read_only or os.geteuid() != 0
    token = sign_in(a, "ana")
    assert httpx.get(b + "config", cookies={COOKIE: token}).status_code == 200

    on_a = client(a, token=token)
    sid = on_a.predict(api_name="/page_load")[2]
    q1 = "How do plants make their food?"
    chat, _ = on_a.predict(q1, "guide", sid, api_name="/send")
    assert echo([{"role": "user", "content": q1}]) in message_text(chat[-1]["content"])
    on_a.predict(sid, api_name="/next_problem")
    _, card = on_a.predict("999", sid, api_name="/check")
    assert "attempt 1" in card

    from tutor.items import load_default_bank

    with LearnerStore(replicas.db_url, kdf_n=2, fallback_bank=load_default_bank) as store:
        state = store.get_state(sid)
        right = store.get_item("default", state.item_id).answer.value

    # the same browser (its cookie) on replica B: the same session, A's turns in it
    on_b = client(b, token=token)
    page = on_b.predict(api_name="/page_load")
    assert page[2] == sid
    assert any(q1 in message_text(m["content"]) for m in page[3])
    _, card = on_b.predict(right, sid, api_name="/check")
    assert "✅" in card
    q2 = "And why is the sky blue?"
    chat, _ = on_b.predict(q2, "guide", sid, api_name="/send")
    assert echo([{"role": "user", "content": q2}]) in message_text(chat[-1]["content"])

    with LearnerStore(replicas.db_url, kdf_n=2) as store:
        ana = store.find_learner("ana")
        msgs = store.messages(sid, learner_id=ana.id)
        assert [m.content for m in msgs if m.role == "user"] == [q1, NEXT_MESSAGE, "999", right, q2]
        assert [m.role for m in msgs] == ["user", "assistant"] * 5
        assert msgs[-1].content.endswith(echo([{"role": "user", "content": q2}]))
        tries = store.attempts(ana.id, session_id=sid)
        assert [(t.response, t.correct) for t in tries] == [("999", False), (right, True)]
        assert [s.id for s in store.list_sessions(ana.id)] == [sid]

    # signing out on A reaches B within the token cache
    assert httpx.post(a + "logout", cookies={COOKIE: token}).status_code == 303
    t0 = time.monotonic()
    while httpx.get(b + "config", cookies={COOKIE: token}).status_code != 401:
        assert time.monotonic() - t0 < CACHE_S + 3, "B still accepts a signed-out session"
        time.sleep(0.2)
    assert all(r["model"] == ADAPTER for r in replicas.lm.script.requests)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_queue_event_lives_in_the_replica_that_started_it(replicas: Replicas) -> None:
    add_students(replicas.db_url, "bea")
    token = sign_in(replicas.a, "bea")
    jar = {COOKIE: token}
    config = httpx.get(replicas.a + "config", cookies=jar).json()
    fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "page_load")
    session_hash = uuid.uuid4().hex[:10]
    join = httpx.post(
        replicas.a + "gradio_api/queue/join",
        cookies=jar,
        json={"data": [], "fn_index": fn, "session_hash": session_hash},
    )
    assert join.status_code == 200 and join.json()["event_id"]
    url = f"gradio_api/queue/data?session_hash={session_hash}"
    with httpx.stream("GET", replicas.b + url, cookies=jar, timeout=30) as r:
        first = next(line for line in r.iter_lines() if line.startswith("data:"))
    assert '"session_not_found": true' in first.replace('":true', '": true')
    with httpx.stream("GET", replicas.a + url, cookies=jar, timeout=30) as r:
        events = [line for line in r.iter_lines() if line.startswith("data:")]
    assert any("process_completed" in e and '"success": true' in e.replace('":true', '": true')
               for e in events)  # fmt: skip


# -- nginx in front (the guide's config) -----------------------------------------------------------


@dataclass
class Proxy:
    https: str
    http: str
    access_log: Path

    def upstream_of(self, token: str) -> set[str]:
        """The replica addresses nginx sent this sign-in's requests to."""
        out = set()
        for line in self.access_log.read_text().splitlines():
            cookie, _, upstream = line.partition(" ")
            if cookie == token:
                out.update(u.strip() for u in upstream.split(",") if u.strip() != "-")
        return out


@pytest.fixture(scope="module")
def proxy(replicas: Replicas, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    nginx, openssl = shutil.which("nginx"), shutil.which("openssl")
    if not nginx or not openssl:
        pytest.skip("nginx and openssl are needed (Debian: apt-get install nginx-light openssl)")
    d = tmp_path_factory.mktemp("nginx")
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (d / sub).mkdir()
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    https_port, http_port = free_port(), free_port()
    conf = doc_block("nginx")
    for old, new in (
        ("127.0.0.1:7861", replicas.a.removeprefix("http://").rstrip("/")),
        ("127.0.0.1:7862", replicas.b.removeprefix("http://").rstrip("/")),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("/etc/ssl/tutor/fullchain.pem", str(cert)),
        ("/etc/ssl/tutor/privkey.pem", str(key)),
    ):
        assert conf.count(old) == 1, f"the guide's nginx config no longer has {old!r}"
        conf = conf.replace(old, new)
    (d / "tutor.conf").write_text(conf)
    main = d / "nginx.conf"
    main.write_text(
        f"{'user root;' if os.geteuid() == 0 else ''}\nworker_processes 1;\ndaemon off;\n"
        f"pid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 512; }}\n"
        "http {\n"
        "  log_format upstream '$cookie_tutor_session $upstream_addr';\n"
        f"  access_log {d}/access.log upstream;\n"
        + "".join(f"  {s}_temp_path {d}/{s};\n" for s in ("proxy", "fastcgi", "uwsgi", "scgi"))
        + f"  client_body_temp_path {d}/client_body;\n"
        f"  include {d}/tutor.conf;\n}}\n"
    )
    check = subprocess.run([nginx, "-t", "-c", str(main), "-p", str(d)], capture_output=True)
    assert check.returncode == 0, check.stderr.decode()
    proc = subprocess.Popen(
        [nginx, "-c", str(main), "-p", str(d)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        https = f"https://127.0.0.1:{https_port}/"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(https + "login", verify=False, timeout=2)
                break
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.1)
        yield Proxy(https, f"http://127.0.0.1:{http_port}/", d / "access.log")
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)
        if proc.stdout:
            proc.stdout.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_behind_nginx_with_tls_sticky_routing_and_a_replica_lost(
    replicas: Replicas, proxy: Proxy
) -> None:
    from tutor.store import LearnerStore

    r = httpx.get(proxy.http + "login")
    assert r.status_code == 301 and r.headers["location"].startswith("https://")
    r = httpx.post(
        proxy.https + "login", data={"username": "ana", "password": PASSWORD}, verify=False
    )
    assert r.status_code == 200 and "secure" in r.headers["set-cookie"].lower()

    # students until both replicas have some (nginx picks by the cookie: the log says where)
    a_addr = replicas.a.removeprefix("http://").rstrip("/")
    b_addr = replicas.b.removeprefix("http://").rstrip("/")
    students: dict[str, tuple[str, str]] = {}  # name -> (token, replica)
    for i in range(16):
        name = f"kid{i:02d}"
        add_students(replicas.db_url, name)
        token = sign_in(replicas.a, name)  # the token is valid everywhere; nginx routes by it
        assert httpx.get(proxy.https + "config", cookies={COOKIE: token}, verify=False).is_success
        time.sleep(0.05)
        (where,) = proxy.upstream_of(token)
        students[name] = (token, where)
        if {w for _, w in students.values()} == {a_addr, b_addr} and len(students) >= 3:
            break
    assert {w for _, w in students.values()} == {a_addr, b_addr}

    sessions: dict[str, str] = {}
    for name, (token, _) in students.items():
        c = client(proxy.https, token=token, ssl_verify=False)
        sessions[name] = c.predict(api_name="/page_load")[2]
        q = f"What is a fraction, asks {name}?"
        job = c.submit(q, "guide", sessions[name], api_name="/send")
        partials = {message_text(out[0][-1]["content"]) for out in job if len(out[0]) >= 2}
        assert len(partials) >= 3, "the answer arrived in one piece: the proxy buffered it"
        assert echo([{"role": "user", "content": q}]) in message_text(
            job.result()[0][-1]["content"]
        )
    for name, (token, where) in students.items():
        assert proxy.upstream_of(token) == {where}, f"{name}'s requests went to both replicas"

    # replica A is lost: its students carry on through nginx, signed in, in the same sessions
    replicas.procs["a"].send_signal(signal.SIGKILL)
    replicas.procs["a"].wait(30)
    for name, (token, _) in students.items():
        c = client(proxy.https, token=token, ssl_verify=False)
        assert c.predict(api_name="/page_load")[2] == sessions[name]
        q = f"And a decimal, asks {name}?"
        chat, _ = c.predict(q, "guide", sessions[name], api_name="/send")
        assert echo([{"role": "user", "content": q}]) in message_text(chat[-1]["content"])
    with LearnerStore(replicas.db_url, kdf_n=2) as store:
        for name in students:
            lid = store.find_learner(name).id
            msgs = store.messages(sessions[name], learner_id=lid)
            assert [m.content for m in msgs if m.role == "user"] == [
                f"What is a fraction, asks {name}?",
                f"And a decimal, asks {name}?",
            ]
            assert [m.role for m in msgs] == ["user", "assistant"] * 2

    # /login is rate-limited for the whole site, in front of the replicas' own counters
    codes = [
        httpx.post(
            proxy.https + "login",
            data={"username": f"nobody{i}", "password": "wrong-password"},
            verify=False,
        ).status_code
        for i in range(10)
    ]
    assert codes.count(401) >= 5 and codes[-1] == 429, codes
