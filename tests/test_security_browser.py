"""Attacks from a real browser (headless Chromium, as in ``tests/test_ui_browser.py``): a page on a
second loopback origin acting as the signed-in teacher (V6) and signing the browser into another
account (V7, login CSRF); a model reply with a remote Markdown image (V11); the header's sign-out
(a POST since V7). The attacker's pages and the "remote" image are served by a small HTTP server
on another loopback port that counts the requests it gets.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tutor.errors import NotFoundError
from tutor.testing.fake_lm import ScriptedGenerator
from ui.app import create_app
from ui.testing import CHROMIUM, PASSWORD, ServerThread, free_port, sample_context
from ui.testing import CHROMIUM_FLAGS as FLAGS

pytestmark = pytest.mark.browser


class Attacker:
    """Pages on another loopback origin (same site as the app: only the port differs)."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                body = outer.pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("content-type", "text/html" if body else "image/png")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def attacker() -> Iterator[Attacker]:
    a = Attacker()
    yield a
    a.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, attacker: Attacker) -> Any:
    reply = (
        f"Plants use light [1]. ![leaf]({attacker.url}/pixel.png) "
        f'<img src="{attacker.url}/tag.png"> Which part of the leaf?'
    )
    ctx = sample_context(tmp_path_factory.mktemp("sec-browser"), ScriptedGenerator(reply))
    with ServerThread(create_app(ctx)) as srv:
        srv.ctx = ctx
        yield srv


@pytest.fixture(scope="module")
def browser(server: Any) -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: `make browser-deps` installs Debian's package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield b
        b.close()


def sign_in(context: Any, server: Any, user: str) -> Any:
    page = context.new_page()
    page.goto(server.url + "login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#header .topbar", timeout=30_000)
    return page


def test_a_page_on_another_local_port_cannot_act_as_the_teacher(
    browser: Any, server: Any, attacker: Attacker
) -> None:
    app = server.url.rstrip("/")
    attacker.pages["/steal.html"] = f"""<script>
    (async () => {{
      const out = [];
      try {{
        const r = await fetch("{app}/config", {{credentials: "include"}});
        out.push("read:" + r.status + ":" + (await r.text()).length);
      }} catch (e) {{ out.push("read:blocked"); }}
      try {{
        const r = await fetch("{app}/gradio_api/call/create_student", {{
          method: "POST", credentials: "include", headers: {{"content-type": "application/json"}},
          body: JSON.stringify({{data: ["mallory", "Mallory", ""]}})}});
        out.push("write:" + r.status);
      }} catch (e) {{ out.push("write:blocked"); }}
      document.title = out.join(" ");
    }})();
    </script>"""
    context = browser.new_context()
    sign_in(context, server, "mrs-k").close()
    page = context.new_page()
    page.goto(attacker.url + "/steal.html")
    page.wait_for_function("() => document.title.includes('write:')", timeout=15_000)
    title = page.title()
    assert "read:blocked" in title, title  # the browser let the page read nothing
    assert "write:403" in title or "write:blocked" in title, title
    with pytest.raises(NotFoundError):
        server.ctx.store.find_learner("mallory")
    context.close()


def test_a_cross_site_form_cannot_sign_the_browser_in(
    browser: Any, server: Any, attacker: Attacker
) -> None:
    app = server.url.rstrip("/")
    attacker.pages["/csrf.html"] = f"""<form id="f" method="post" action="{app}/login">
      <input name="username" value="ben"><input name="password" value="{PASSWORD}"></form>
      <script>document.getElementById("f").submit();</script>"""
    context = browser.new_context()
    page = context.new_page()
    page.goto(attacker.url + "/csrf.html")
    page.wait_for_url(f"{app}/login", timeout=15_000)
    assert "refused" in page.inner_text("body")
    page.goto(server.url)
    assert page.url.endswith("/login")  # not signed in as the attacker's account
    context.close()


def test_a_remote_image_in_a_reply_is_never_fetched(
    browser: Any, server: Any, attacker: Attacker
) -> None:
    context = browser.new_context()
    page = sign_in(context, server, "ana")
    page.wait_for_selector("#sessions")
    page.fill("#msg textarea", "What do leaves do?")
    page.press("#msg textarea", "Enter")
    page.wait_for_function(
        "() => document.querySelector('#chat').innerText.includes('Which part of the leaf')",
        timeout=30_000,
    )
    page.wait_for_timeout(1000)  # time for any image request to go out
    assert not [h for h in attacker.hits if h.endswith(".png")], attacker.hits
    context.close()


def test_the_header_sign_out_posts_and_ends_the_session(browser: Any, server: Any) -> None:
    context = browser.new_context()
    page = sign_in(context, server, "ana")
    page.click("#header a[href='/logout']")
    page.wait_for_url("**/login", timeout=15_000)
    page.goto(server.url)
    assert page.url.endswith("/login")  # the session ended on the server, not just the page
    context.close()
