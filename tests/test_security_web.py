"""Attacks on the web app from other origins, over HTTP against a real server on loopback
(issue 16, docs/reliability.md "Attacks tried"): a page on another localhost port acting as the
signed-in teacher (V6), login CSRF and a GET sign-out (V7), and the security headers (V11).
The same attacks from a real browser page on a second loopback origin are in
``tests/test_security_browser.py``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tutor.testing.fake_lm import ScriptedGenerator
from ui.app import create_app
from ui.auth import COOKIE
from ui.security import same_origin
from ui.testing import PASSWORD, ServerThread, free_port, sample_context

HEADERS = (
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    ctx = sample_context(
        tmp_path_factory.mktemp("sec-web"),
        ScriptedGenerator("Plants use light [1]."),
        overrides={"ui": {"allowed_origins": ["https://tutor.school.example"]}},
    )
    app = create_app(ctx)
    with ServerThread(app) as srv:
        srv.ctx, srv.app = ctx, app
        srv.own = f"http://127.0.0.1:{srv.port}"
        srv.evil = f"http://127.0.0.1:{free_port()}"  # another port on the same machine
        yield srv


def teacher(server: Any) -> dict[str, str]:
    r = httpx.post(server.url + "login", data={"username": "mrs-k", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {COOKIE: r.cookies[COOKIE]}


def cors_granted(r: httpx.Response) -> bool:
    return any(k.lower().startswith("access-control-allow-") for k in r.headers)


# -- V6: another localhost origin -----------------------------------------------------------


def test_a_page_on_another_local_port_cannot_act_as_the_teacher(server: Any) -> None:
    jar = teacher(server)
    before = len(server.ctx.store.list_learners())
    for origin in (server.evil, "http://localhost:1234", "null"):
        # reading: the browser would let the page read the answer if CORS allowed it
        r = httpx.get(server.url + "config", cookies=jar, headers={"origin": origin})
        assert r.status_code == 403 and not cors_granted(r), (origin, r.status_code, r.headers)
        pre = httpx.options(
            server.url + "gradio_api/queue/join",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        assert pre.status_code == 403 and not cors_granted(pre), origin
        # acting: create a student through the API
        r = httpx.post(
            server.url + "gradio_api/call/create_student",
            json={"data": ["mallory", "Mallory", ""]},
            cookies=jar,
            headers={"origin": origin},
        )
        assert r.status_code == 403, (origin, r.status_code, r.text)
    assert len(server.ctx.store.list_learners()) == before
    # the export route sits outside Gradio and is refused the same way
    ana = server.ctx.store.find_learner("ana").id
    r = httpx.get(
        server.url + f"export/learner/{ana}", cookies=jar, headers={"origin": server.evil}
    )
    assert r.status_code == 403 and "ana" not in r.text


def test_the_apps_own_origin_and_a_configured_proxy_origin_work(server: Any) -> None:
    jar = teacher(server)
    for origin in (server.own, "https://tutor.school.example"):
        r = httpx.get(server.url + "config", cookies=jar, headers={"origin": origin})
        assert r.status_code == 200, origin
        assert not cors_granted(r)  # same-origin needs no CORS grant; nothing else gets one
    # a client that sends no Origin (gradio_client, scripts) is no browser page: it passes
    assert httpx.get(server.url + "config", cookies=jar).status_code == 200


def test_same_origin_rules() -> None:
    assert same_origin("http://127.0.0.1:7860", "127.0.0.1:7860")
    assert not same_origin("http://127.0.0.1:9999", "127.0.0.1:7860")
    assert not same_origin("http://localhost:7860", "127.0.0.1:7860")
    assert not same_origin("null", "127.0.0.1:7860")
    assert not same_origin("", "127.0.0.1:7860")
    assert same_origin("https://school.example:8443", "school.example")  # nginx: Host $host
    assert same_origin("https://tutor.example", "127.0.0.1:7860", ["https://tutor.example/"])
    assert same_origin("http://[::1]:7860", "[::1]:7860")
    assert not same_origin("http://[::1]:7861", "[::1]:7860")


# -- V7: login CSRF, sign-out by GET ---------------------------------------------------------


def test_a_cross_site_form_cannot_sign_a_browser_in(server: Any) -> None:
    mallory = {"username": "mrs-k", "password": PASSWORD}  # the attacker's own account
    for headers in (
        {"origin": server.evil},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},  # a browser that left the Origin out
    ):
        r = httpx.post(server.url + "login", data=mallory, headers=headers)
        assert r.status_code == 403, (headers, r.status_code)
        assert COOKIE not in r.cookies
    # the app's own sign-in page posts with its own origin
    r = httpx.post(server.url + "login", data=mallory, headers={"origin": server.own})
    assert r.status_code == 200 and COOKIE in r.cookies


def test_sign_out_is_a_post_from_this_app(server: Any) -> None:
    jar = teacher(server)
    # a GET (a link or an image on any page) signs no one out: it shows a button
    r = httpx.get(server.url + "logout", cookies=jar)
    assert r.status_code == 200 and 'action="/logout"' in r.text and 'method="post"' in r.text
    assert httpx.get(server.url + "config", cookies=jar).status_code == 200
    # nor does a POST from another origin
    r = httpx.post(server.url + "logout", cookies=jar, headers={"origin": server.evil})
    assert r.status_code == 403
    assert httpx.get(server.url + "config", cookies=jar).status_code == 200
    r = httpx.post(server.url + "logout", cookies=jar, headers={"origin": server.own})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert httpx.get(server.url + "config", cookies=jar).status_code == 401


# -- V11: security headers ------------------------------------------------------------------


def test_every_answer_carries_the_security_headers(server: Any) -> None:
    jar = teacher(server)
    answers = [
        httpx.get(server.url + "login"),
        httpx.get(server.url, cookies=jar),
        httpx.get(server.url + "config", cookies=jar),
        httpx.get(server.url + "config"),  # 401
        httpx.get(server.url + "config", headers={"origin": server.evil}),  # 403
    ]
    for r in answers:
        for h in HEADERS:
            assert h in r.headers, (r.url, r.status_code, h)
        csp = r.headers["content-security-policy"]
        assert "img-src 'self' data: blob:" in csp  # no remote image is ever fetched
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"


# -- V12: answer streams belong to their user -------------------------------------------------


def student(server: Any, name: str) -> dict[str, str]:
    r = httpx.post(server.url + "login", data={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {COOKIE: r.cookies[COOKIE]}


def fn_index(server: Any, api_name: str) -> int:
    blocks = server.app.state.blocks
    return next(i for i, f in blocks.fns.items() if f.api_name == api_name)


def sse(server: Any, path: str, jar: dict[str, str]) -> tuple[int, str]:
    with httpx.stream("GET", server.url + path, cookies=jar, timeout=30) as r:
        return r.status_code, "".join(r.iter_text())


def test_another_user_cannot_read_a_queue_stream(server: Any) -> None:
    ana, ben = student(server, "ana"), student(server, "ben")
    join = {"data": [], "fn_index": fn_index(server, "page_load"), "session_hash": "ana-tab-1"}
    r = httpx.post(server.url + "gradio_api/queue/join", json=join, cookies=ana)
    assert r.status_code == 200, r.text
    # ben knows the hash: he can neither read its stream nor join events to it
    code, text = sse(server, "gradio_api/queue/data?session_hash=ana-tab-1", ben)
    assert code == 403 and "Ana" not in text
    r = httpx.post(server.url + "gradio_api/queue/join", json=join, cookies=ben)
    assert r.status_code == 403
    # ana reads her own
    code, text = sse(server, "gradio_api/queue/data?session_hash=ana-tab-1", ana)
    assert code == 200 and "Ana" in text and "process_completed" in text
    # a hash no one has used yet cannot be waited on: Gradio closes the stream at once
    code, text = sse(server, "gradio_api/queue/data?session_hash=someone-later", ben)
    assert code == 404 or "session_not_found" in text, (code, text)


def test_another_user_cannot_read_an_api_result(server: Any) -> None:
    ana, ben = student(server, "ana"), student(server, "ben")
    r = httpx.post(server.url + "gradio_api/call/page_load", json={"data": []}, cookies=ana)
    assert r.status_code == 200
    event = r.json()["event_id"]
    code, text = sse(server, f"gradio_api/call/page_load/{event}", ben)
    assert code == 403 and "Ana" not in text
    code, text = sse(server, f"gradio_api/call/page_load/{event}", ana)
    assert code == 200 and "Ana" in text
