"""Attacks through uploads (issue 16, docs/reliability.md "Attacks tried"), against a real server
on loopback with its own upload folder: a teacher's request naming a server file instead of an
upload (V3), and filling the disk through ``/gradio_api/upload`` (V4: students, size, quota,
cap, leftovers).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tutor.errors import InputError
from tutor.testing.fake_lm import ScriptedGenerator
from ui.app import create_app
from ui.auth import COOKIE
from ui.testing import PASSWORD, ServerThread, sample_context
from ui.uploads import CAP_FACTOR, KEEP_S, QUOTA_FACTOR, check_uploaded, sweep

MAX_MB = 1.0  # so the quota is 10 MB an hour and the cap 20 MB
SECRET = "The staff room code is 4711."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("sec-uploads")
    uploads = root / "uploads"
    (uploads / "old").mkdir(parents=True)
    stale = [uploads / "old" / "left.md", uploads / "tmp_empty"]
    stale[0].write_text("# Left over\n")
    stale[1].write_bytes(b"")
    for p in stale:
        os.utime(p, (time.time() - KEEP_S - 60,) * 2)
    secret = root / "server" / "operations.md"
    secret.parent.mkdir()
    secret.write_text(f"# Operations\n\n{SECRET}\n")
    saved = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(uploads)
    try:
        ctx = sample_context(
            root,
            ScriptedGenerator("Plants use light [1]."),
            users=(("mrs-k", "teacher"), ("mr-t", "teacher"), ("ana", "student")),
            overrides={"ui": {"max_upload_mb": MAX_MB}},
        )
        with ServerThread(create_app(ctx)) as srv:
            srv.ctx, srv.uploads, srv.stale, srv.secret = ctx, uploads, stale, secret
            yield srv
    finally:
        if saved is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = saved


def jar(server: Any, user: str) -> dict[str, str]:
    r = httpx.post(server.url + "login", data={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {COOKIE: r.cookies[COOKIE]}


def upload(server: Any, cookies: dict[str, str], name: str, size: int) -> httpx.Response:
    body = b"# Notes\n\n" + b"a" * max(0, size - 9)
    return httpx.post(
        server.url + "gradio_api/upload", files={"files": (name, body)}, cookies=cookies
    )


def call(server: Any, cookies: dict[str, str], api: str, data: list[Any]) -> str:
    """Run an API event over plain HTTP (what a crafted request sends); the SSE answer."""
    r = httpx.post(server.url + f"gradio_api/call/{api}", json={"data": data}, cookies=cookies)
    assert r.status_code == 200, r.text
    event = r.json()["event_id"]
    with httpx.stream(
        "GET", server.url + f"gradio_api/call/{api}/{event}", cookies=cookies, timeout=60
    ) as s:
        return "".join(s.iter_text())


def course_text(server: Any) -> str:
    kb = server.ctx.kb
    return " ".join(
        c.text for d in kb.list_documents("default") for c in kb.store.doc_chunks(d.doc_id)
    )


# -- V3: server paths --------------------------------------------------------------------------


def test_a_server_path_is_not_taken_as_an_upload(server: Any) -> None:
    teacher = jar(server, "mrs-k")
    link = server.uploads / "innocent.md"
    link.symlink_to(server.secret)
    for path in (str(server.secret), str(link), str(server.uploads / ".." / "server" / "x.md")):
        fd = {"path": path, "orig_name": "operations.md", "meta": {"_type": "gradio.FileData"}}
        answer = call(server, teacher, "add_documents", [[fd]])
        # refused by Gradio's own check (switched on by ui.app) or, behind it, by ours
        assert "event: error" in answer, answer
        assert "not uploaded by a user" in answer or "not a file uploaded" in answer, answer
    link.unlink()
    assert SECRET not in course_text(server)
    # a real upload still goes in
    r = upload(server, teacher, "leaves.md", 200)
    assert r.status_code == 200, r.text
    fd = {"path": r.json()[0], "orig_name": "leaves.md", "meta": {"_type": "gradio.FileData"}}
    answer = call(server, teacher, "add_documents", [[fd]])
    assert "event: complete" in answer and "leaves.md" in json.dumps(answer)
    assert not Path(r.json()[0]).exists()  # read into the course: the upload is gone


def test_check_uploaded(tmp_path: Path) -> None:
    root = tmp_path / "up"
    (root / "a").mkdir(parents=True)
    assert check_uploaded(str(root / "a" / "x.md"), root) == str(root / "a" / "x.md")
    for bad in (tmp_path / "x.md", root / ".." / "x.md", Path("/etc/passwd"), root):
        with pytest.raises(InputError, match="not a file uploaded"):
            check_uploaded(str(bad), root)


# -- V4: filling the disk ----------------------------------------------------------------------


def test_students_cannot_upload(server: Any) -> None:
    r = upload(server, jar(server, "ana"), "notes.md", 100)
    assert r.status_code == 403 and "teachers" in r.text


def test_an_upload_must_say_its_size_and_keep_under_the_request_limit(server: Any) -> None:
    teacher = jar(server, "mrs-k")

    def chunks() -> Iterator[bytes]:
        yield b"--x\r\n"

    r = httpx.post(
        server.url + "gradio_api/upload",
        content=chunks(),
        cookies=teacher,
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 411
    # a declared size over the limit is refused before the body is read (a raw socket: an
    # HTTP client will not declare more than it sends)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Cookie: {COOKIE}={teacher[COOKIE]}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=x\r\n"
            + b"Content-Length: 99999999\r\nConnection: close\r\n\r\n--x\r\n"
        )
        got = b""
        while chunk := sock.recv(4096):
            got += chunk
        head = got.decode(errors="replace")
    assert head.startswith("HTTP/1.1 413") and "At most" in head, head


def test_each_user_has_an_hourly_quota(server: Any) -> None:
    teacher = jar(server, "mr-t")
    each = int(0.9 * 2**20)
    quota = QUOTA_FACTOR * MAX_MB * 2**20
    codes = [upload(server, teacher, f"n{i}.md", each).status_code for i in range(14)]
    n_ok = codes.count(200)
    assert n_ok * each <= quota < (n_ok + 1) * (each + 1024), codes
    assert codes[n_ok:] == [429] * (14 - n_ok), codes
    # another teacher is not held up by this one
    assert upload(server, jar(server, "mrs-k"), "other.md", 100).status_code == 200


def test_the_upload_folder_has_a_cap(server: Any) -> None:
    filler = server.uploads / "filler.bin"
    filler.write_bytes(b"\0" * int(CAP_FACTOR * MAX_MB * 2**20))
    try:
        r = upload(server, jar(server, "mrs-k"), "late.md", 100)
        assert r.status_code == 507 and "upload space is full" in r.text
    finally:
        filler.unlink()
    assert upload(server, jar(server, "mrs-k"), "later.md", 100).status_code == 200


def test_old_uploads_and_empty_temp_files_are_swept(server: Any, tmp_path: Path) -> None:
    upload(server, jar(server, "mrs-k"), "fresh.md", 100)
    assert not any(p.exists() for p in server.stale)  # swept when the app started
    assert not (server.uploads / "old").exists()
    root = tmp_path / "up"
    (root / "d").mkdir(parents=True)
    old, new = root / "d" / "old.md", root / "new.md"
    old.write_text("x")
    new.write_text("y")
    os.utime(old, (time.time() - KEEP_S - 1,) * 2)
    assert sweep(root) == 1
    assert new.exists() and not old.exists() and not (root / "d").exists()
