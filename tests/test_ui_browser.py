"""The web app in a real browser: headless Chromium (Debian's package, installed by
``make browser-deps``) driven by Playwright, against a real server with the scripted generator.

A student signs in, asks a question, sees tokens arrive before the answer is complete, sees a
rendered formula and an expandable source, answers a practice problem; a teacher sees the class
dashboard. Screenshots go to the test's tmp dir, and also to ``$TUTOR_SCREENSHOTS`` when set.
They show the scripted reply; the README's images come from ``docs/screenshots/make.py``, which
runs the real default model.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tutor.testing.fake_lm import ScriptedGenerator
from ui.app import create_app
from ui.testing import (
    CHROMIUM,
    PASSWORD,
    ServerThread,
    sample_context,
    seed_class,
)
from ui.testing import CHROMIUM_FLAGS as FLAGS

pytestmark = pytest.mark.browser

REPLY = (
    "Plants make glucose from carbon dioxide and water, using light energy that chlorophyll "
    "captures [1]. In $6CO_2 + 6H_2O \\rightarrow C_6H_{12}O_6 + 6O_2$, "
    "which of these ingredients do you think comes from the air?"
)  # explain mode shows the supported sentence and the model's first question


def _browser_or_skip() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: `make browser-deps` installs Debian's package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    return sync_playwright


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("ui-browser")
    ctx = sample_context(root, ScriptedGenerator(REPLY, token_delay=0.06, first_token_delay=0.2))
    seed_class(ctx.store)
    ctx.store.update_profile(
        ctx.store.find_learner("ana").id,
        {"grade_level": "Grade 6", "goals": "Get ready for the science test"},
    )
    with ServerThread(create_app(ctx)) as srv:
        srv.ctx = ctx
        yield srv


@pytest.fixture(scope="module")
def browser(server: Any) -> Any:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield b
        b.close()


def _shot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path))
    target = os.environ.get("TUTOR_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(target) / name)
    return path


def _sign_in(browser: Any, server: Any, user: str) -> Any:
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(server.url)
    assert page.url.endswith("/login")  # signed out: the sign-in page
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#header .topbar", timeout=30_000)
    return page


def test_student_signs_in_and_sees_a_streamed_answer(
    browser: Any, server: Any, tmp_path: Path
) -> None:
    page = _sign_in(browser, server, "ana")
    page.wait_for_selector("#sessions")
    assert "Ana" in page.inner_text("#header")
    # a practice problem, answered right on the card
    page.click("#next-problem")
    page.wait_for_function(
        "() => document.querySelector('#card').innerText.includes('difficulty')",
        timeout=30_000,
    )
    store = server.ctx.store
    ana = store.find_learner("ana").id
    sid = max(store.list_sessions(ana), key=lambda s: s.last_active_at).id
    item = store.get_item("default", store.get_state(sid).item_id)
    page.fill("#card-answer textarea, #card-answer input", item.answer.value)
    page.click("#check")
    page.wait_for_function(
        "() => document.querySelector('#card').innerText.includes('mastery')",
        timeout=30_000,
    )
    assert "Correct" in page.inner_text("#card")
    # a question: tokens are painted while the answer is still being written
    page.fill("#msg textarea", "How do plants make glucose?")
    page.press("#msg textarea", "Enter")
    last_bot = "[...document.querySelectorAll(\"#chat [data-testid='bot']\")].pop()"
    page.wait_for_function(
        f"""() => {{
            const m = {last_bot};
            return m && m.innerText.includes("Plants make") && !m.innerText.includes("from the air?");
        }}""",
        timeout=20_000,
    )
    partial = page.evaluate(f"() => {last_bot}.innerText")
    page.wait_for_selector("#chat .tutor-sources", timeout=30_000)
    answer = page.locator("#chat [data-testid='bot']").nth(-2)
    final = answer.inner_text()
    assert "from the air?" in final and "from the air?" not in partial
    assert final.startswith(partial.strip()[:40])
    # the formula is rendered by KaTeX, not shown as source text
    assert answer.locator(".katex").count() >= 1
    assert "\\rightarrow" not in final
    # the source: citation label, and the passage expands
    summary = page.locator("#chat .tutor-sources summary").first
    assert "Photosynthesis — What a plant needs" in summary.inner_text()
    assert not page.locator("#chat .src-passage").first.is_visible()
    summary.click()
    assert "chlorophyll" in page.locator("#chat .src-passage").first.inner_text()
    page.locator("#chat .tutor-sources").last.scroll_into_view_if_needed()
    path = _shot(page, tmp_path, "student.png")
    assert path.stat().st_size > 20_000
    # HTML typed into the chat is shown as text and never runs
    page.fill("#msg textarea", '<img src=x onerror="window.__pwned=1"> is that right?')
    page.press("#msg textarea", "Enter")
    page.wait_for_function(  # the course does not cover it: the notice, with no sources
        "() => document.querySelector('#chat').innerText.includes(\"doesn't cover this\")",
        timeout=30_000,
    )
    assert page.evaluate("window.__pwned") is None
    assert '<img src=x onerror="window.__pwned=1"> is that right?' in page.inner_text("#chat")
    # the history survives a reload
    page.reload()
    page.wait_for_selector("#chat .tutor-sources", timeout=30_000)
    assert "How do plants make glucose?" in page.inner_text("#chat")
    # progress as a chart
    page.get_by_role("tab", name="My progress").click()
    page.wait_for_selector("#progress .pc-row", timeout=15_000)
    assert page.locator("#progress .pc-row").count() == 8
    _shot(page, tmp_path, "progress.png")
    assert not page.errors, page.errors
    page.close()


def test_teacher_sees_the_class(browser: Any, server: Any, tmp_path: Path) -> None:
    page = _sign_in(browser, server, "mrs-k")
    page.wait_for_selector("#class-heatmap table.heatmap", timeout=20_000)
    cells = page.locator("#class-heatmap td.hm-cell")
    assert cells.count() >= 20
    assert "Eli" in page.inner_text("#class-risk")  # the struggling learner is flagged
    assert page.locator("#student-view").is_hidden()
    _shot(page, tmp_path, "teacher.png")
    page.get_by_role("tab", name="Students").click()
    page.locator("#learner-pick input").click()
    page.get_by_role("option", name="Ana (ana)").click()
    page.wait_for_selector("#learner-info .learner-card", timeout=15_000)
    assert "Get ready for the science test" in page.inner_text("#learner-info")
    _shot(page, tmp_path, "teacher-learner.png")
    assert not page.errors, page.errors
    page.close()


def test_wrong_password_in_the_browser(browser: Any, server: Any) -> None:
    page = browser.new_page()
    page.goto(server.url + "login")
    page.fill("#username", "ana")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    page.wait_for_selector(".msg.err")
    assert page.inner_text(".msg.err") == "Wrong user name or password."
    assert page.input_value("#username") == "ana" and page.input_value("#password") == ""
    page.close()


def test_an_ended_session_sends_the_browser_to_sign_in(browser: Any, server: Any) -> None:
    page = _sign_in(browser, server, "ben")
    page.wait_for_selector("#sessions")
    server.ctx.store.revoke_user_sessions("ben")  # expired, or signed out elsewhere
    server.ctx.signin.forget()  # as if the 5 s cache had run out
    page.fill("#msg textarea", "hello")
    page.press("#msg textarea", "Enter")
    page.wait_for_url("**/login?expired=1", timeout=20_000)
    assert "Your session has ended. Please sign in again." in page.inner_text("body")
    assert "Traceback" not in page.content()
    page.close()


def test_a_question_with_a_problem_open_keeps_the_card_in_sync(browser: Any, server: Any) -> None:
    page = _sign_in(browser, server, "ben")
    page.wait_for_selector("#sessions")
    page.click("#next-problem")
    page.wait_for_function(
        "() => document.querySelector('#card').innerText.includes('difficulty')", timeout=30_000
    )
    store = server.ctx.store
    ben = store.find_learner("ben").id
    sid = max(store.list_sessions(ben), key=lambda s: s.last_active_at).id
    first = store.get_state(sid).item_id
    prompt = store.get_item("default", first).prompt.splitlines()[0][:40]
    assert prompt in page.inner_text("#card")
    # a question about something else: answered in the chat, not graded; the card keeps it
    page.fill("#msg textarea", "why do plants need light?")
    page.press("#msg textarea", "Enter")
    page.wait_for_function(  # the whole answer: its question and its sources
        "() => document.querySelector('#chat').innerText.includes('comes from the air?')"
        " && document.querySelectorAll('#chat .tutor-sources').length >= 1",
        timeout=30_000,
    )
    assert "Not quite" not in page.inner_text("#chat")
    assert prompt in page.inner_text("#card") and store.get_state(sid).item_id == first
    assert not store.attempts(ben, session_id=sid)
    # "next" in the chat serves a new problem, and the card shows the same one
    page.fill("#msg textarea", "next")
    page.press("#msg textarea", "Enter")
    page.wait_for_function(
        f"() => !document.querySelector('#card').innerText.includes({prompt!r})", timeout=30_000
    )
    served = store.get_item("default", store.get_state(sid).item_id)
    assert served.id != first
    assert served.prompt.splitlines()[0][:40] in page.inner_text("#card")
    assert served.prompt.splitlines()[0][:40] in page.inner_text("#chat")
    assert not page.errors, page.errors
    page.close()
