"""Source passages in the browser (issue 16, what a first-time user hit): a passage showed a
literal ``<br>`` inside its formulas and raw ``**bold**`` markers. Passages now go through the
answers' own path (Markdown, then KaTeX, under the Chatbot's sanitizer), checked in Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_ui_browser import _browser_or_skip, _sign_in
from tutor.testing.fake_lm import ScriptedGenerator
from ui import render
from ui.app import create_app
from ui.testing import CHROMIUM, ServerThread, sample_context
from ui.testing import CHROMIUM_FLAGS as FLAGS

DOC = (
    "# Areas\n\n## Circles\n\nThe area of a circle is **pi times the radius squared**:\n\n"
    "$$\nA = \\pi r^2\n$$\n\nFor $r = 2$ the area is $4\\pi$, about *12.6* square units.\n"
)
REPLY = "The area of a circle is $\\pi r^2$ [1]. What is it for a radius of 3?"


def test_a_passage_is_markdown_with_math_in_one_block_of_its_own() -> None:
    block = render.sources_html([(1, "Areas — Circles", DOC, True)])
    assert "<br>" not in block and "$$\nA = \\pi r^2\n$$" in block  # the formula stays whole
    assert "**pi times the radius squared**" in block  # left for the Markdown renderer
    assert "\\(4\\pi\\)" in block  # inline math delimited as in answers
    # a code fence cut open by the chunker is closed, so it cannot swallow what follows
    cut = render.sources_html([(1, "c", "Run this:\n\n```python\nprint(1)\n", True)])
    assert cut.count("```") == 2 and cut.rstrip().endswith("</div>")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("ui-sources")
    docs = root / "course"
    docs.mkdir()
    (docs / "areas.md").write_text(DOC, encoding="utf-8")
    ctx = sample_context(root, ScriptedGenerator(REPLY), docs_dir=docs)
    with ServerThread(create_app(ctx)) as srv:
        srv.ctx = ctx
        yield srv


@pytest.mark.browser
def test_passages_render_bold_and_formulas_in_the_browser(server: Any, tmp_path: Path) -> None:
    sync_playwright = _browser_or_skip()
    assert CHROMIUM.exists()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = _sign_in(browser, server, "ana")
            page.wait_for_selector("#sessions")
            page.fill("#msg textarea", "What is the area of a circle?")
            page.press("#msg textarea", "Enter")
            page.wait_for_selector("#chat .tutor-sources summary", timeout=30_000)
            page.locator("#chat .tutor-sources summary").first.click()
            passage = page.locator("#chat .src-passage").first
            text = passage.inner_text()
            assert "pi times the radius squared" in text
            assert "**" not in text and "<br>" not in text and "$$" not in text, text
            assert passage.locator("strong").count() >= 1 and passage.locator("em").count() >= 1
            assert passage.locator(".katex").count() >= 3  # the display formula and two inline
            assert "\\pi" not in text
            page.screenshot(path=str(tmp_path / "sources.png"))
            assert not page.errors, page.errors
        finally:
            browser.close()
