"""Markup in the browser: what a learner types, what the model writes and what a document says
never runs. Headless Chromium (``make browser-deps``) against a real server.

The learner's message, the (scripted) model's reply and a course document each carry
``<script>``, ``<img onerror>``, ``<svg onload>`` and ``javascript:`` links, every one of which
would set ``window.__pwned``. After the turn, with every source expanded and every link in the
chat clicked, nothing has run, no element has an event-handler attribute or a ``javascript:``
URL, and the text is still readable.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_ui_browser import _browser_or_skip, _sign_in
from tutor.testing.fake_lm import ScriptedGenerator
from ui.app import create_app
from ui.testing import CHROMIUM as CHROMIUM_PATH
from ui.testing import CHROMIUM_FLAGS as FLAGS
from ui.testing import ServerThread, sample_context

pytestmark = pytest.mark.browser

MESSAGE = (
    '<img src=x onerror="window.__pwned=1"> [click me](javascript:window.__pwned=2) '
    '<a href="javascript:window.__pwned=3">a link</a> <svg onload="window.__pwned=4"></svg> '
    "<script>window.__pwned=5</script> how do plants grow?"
)
REPLY = (
    "Plants grow with light [1]. See [this page](javascript:window.__pwned=6) or "
    '<img src=x onerror="window.__pwned=7"> <b onmouseover="window.__pwned=8">bold</b> '
    "[data](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19wd25lZD05PC9zY3JpcHQ+)"
)
DOC = (
    "# Hostile plants\n\n## Growing\n\nPlants grow with light and water. "
    '<img src=x onerror="window.__pwned=10"> [grow](javascript:window.__pwned=11) '
    "<script>window.__pwned=12</script>\n"
)
EVIL = """() => {
    const chat = document.querySelector('#chat');
    const bad = [];
    for (const el of chat.querySelectorAll('*')) {
        for (const a of el.attributes) {
            const v = (a.value || '').trim().toLowerCase();
            if (a.name.startsWith('on') || v.startsWith('javascript:') || v.startsWith('data:text'))
                bad.push(el.tagName + ' ' + a.name + '=' + a.value);
        }
        if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED'].includes(el.tagName)) bad.push(el.tagName);
    }
    return bad;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("ui-hostile")
    ctx = sample_context(root, ScriptedGenerator(REPLY, token_delay=0.01))
    ctx.kb.add([("hostile.md", DOC.encode())], collection=ctx.collection)
    with ServerThread(create_app(ctx)) as srv:
        srv.ctx = ctx
        yield srv


def test_markup_never_runs_in_the_browser(server: Any) -> None:
    sync_playwright = _browser_or_skip()
    assert CHROMIUM_PATH.exists()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM_PATH), headless=True, args=FLAGS)
        try:
            page = _sign_in(browser, server, "ana")
            page.wait_for_selector("#sessions")
            page.fill("#msg textarea", MESSAGE)
            page.press("#msg textarea", "Enter")
            page.wait_for_function(
                # the course's hostile sentence is quoted (the model's unsupported markup is
                # dropped); either way nothing of it may run
                "() => document.querySelector('#chat').innerText.includes('grow with light')",
                timeout=30_000,
            )
            assert page.evaluate(EVIL) == [] and page.evaluate("window.__pwned") is None
            page.wait_for_selector("#chat .tutor-sources", timeout=30_000)
            for summary in page.locator("#chat .tutor-sources summary").all():
                summary.click()
            text = page.inner_text("#chat")
            assert "how do plants grow?" in text and "click me" in text  # readable, as text
            assert "Plants grow with light" in text
            assert page.evaluate(EVIL) == []
            # click every link the chat shows (a javascript: one would run now)
            for link in page.locator("#chat a").all():
                if link.is_visible():
                    link.click(no_wait_after=True)
            page.wait_for_timeout(300)
            assert page.evaluate("window.__pwned") is None
            # and the same after a reload, rendered from the stored history
            page.reload()
            page.wait_for_selector("#chat .tutor-sources", timeout=30_000)
            assert page.evaluate(EVIL) == [] and page.evaluate("window.__pwned") is None
            stored = server.ctx.store.messages(
                max(
                    server.ctx.store.list_sessions(server.ctx.store.find_learner("ana").id),
                    key=lambda s: s.last_active_at,
                ).id
            )
            assert stored[0].content == MESSAGE  # kept verbatim
            assert not page.errors, page.errors
        finally:
            browser.close()
