"""Regenerate the README's screenshots with the REAL default model (not a scripted one).

    .venv/bin/python docs/screenshots/make.py            # writes docs/screenshots/*.png

What it runs: the web app as `make run` ships it — the bundled SmolLM2-135M with the default
config, the bundled MiniLM embedder over the sample curriculum (data/curriculum), the shipped
item bank — with a seeded class (one strong, one struggling learner, the rest mixed) so that the
teacher's dashboard has something to show. Headless Chromium (`make browser-deps`) takes the
pictures. The student's question is answered by the real model, so the picture shows what a
student would read, wording and all; it is not checked for content here.

The model cache of the default data dir (./.tutor, filled by `make run`) is reused when present;
otherwise the bundled GGUF is converted once (~20 s idle, longer on a busy machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
QUESTION = "How do plants make glucose?"


def build_server_context(root: Path) -> Any:
    from tutor.builders import build_embedder, build_generator
    from tutor.config import load_config
    from ui.testing import sample_context, seed_class

    # the shipped defaults (model, dtype, quantization), with the repo's default data dir for
    # the model cache; the course, accounts and learner store live in a throw-away dir
    config = load_config(env={}, file_values={"paths": {"home": str(REPO / ".tutor")}})
    print(f"loading the default model {config.lm.model} ...", file=sys.stderr)
    generator = build_generator(config)
    embedder = build_embedder(config)
    ctx = sample_context(
        root,
        generator,
        docs_dir=REPO / "data" / "curriculum",
        embedder=embedder,
        login_delay=0.0,
    )
    seed_class(ctx.store)
    ctx.store.update_profile(
        ctx.store.find_learner("ana").id,
        {"grade_level": "Grade 6", "goals": "Get ready for the science test"},
    )
    return ctx


def sign_in(browser: Any, url: str, user: str) -> Any:
    from ui.testing import PASSWORD

    page = browser.new_page(viewport={"width": 1360, "height": 900})
    page.goto(url)
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#header .topbar", timeout=60_000)
    return page


LAST_BOT = (
    "([...document.querySelectorAll(\"#chat [data-testid='bot']\")].pop() || {innerText: ''})"
)


def ask(page: Any, question: str, timeout_s: float = 300.0, quiet_s: float = 6.0) -> None:
    """Send ``question``; return once the new reply has its sources or stopped changing."""
    import time

    before = page.evaluate(f"() => {LAST_BOT}.innerText")
    n_sources = page.locator("#chat .tutor-sources").count()
    page.fill("#msg textarea", question)
    page.press("#msg textarea", "Enter")
    seen, since, deadline = before, time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.locator("#chat .tutor-sources").count() > n_sources:
            return
        text = page.evaluate(f"() => {LAST_BOT}.innerText")
        if text != seen:
            seen, since = text, time.monotonic()
        elif text != before and time.monotonic() - since > quiet_s:
            return
        page.wait_for_timeout(500)
    raise TimeoutError(f"no complete reply within {timeout_s:.0f} s")


def student_pictures(browser: Any, url: str, out: Path) -> None:
    page = sign_in(browser, url, "ana")
    page.wait_for_selector("#sessions")
    page.click("#next-problem")
    page.wait_for_function(
        "() => document.querySelector('#card').innerText.includes('difficulty')", timeout=60_000
    )
    ask(page, QUESTION)
    summary = page.locator("#chat .tutor-sources summary")
    if summary.count():
        summary.first.click()
        page.locator("#chat .tutor-sources").last.scroll_into_view_if_needed()
    page.screenshot(path=str(out / "student.png"))
    page.get_by_role("tab", name="My progress").click()
    page.wait_for_selector("#progress .pc-row", timeout=30_000)
    page.screenshot(path=str(out / "progress.png"))
    page.close()


def teacher_pictures(browser: Any, url: str, out: Path) -> None:
    page = sign_in(browser, url, "mrs-k")
    page.wait_for_selector("#class-heatmap table.heatmap", timeout=60_000)
    page.screenshot(path=str(out / "teacher.png"))
    page.get_by_role("tab", name="Students").click()
    page.locator("#learner-pick input").click()
    page.get_by_role("option", name="Ana (ana)").click()
    page.wait_for_selector("#learner-info .learner-card", timeout=30_000)
    page.screenshot(path=str(out / "teacher-learner.png"))
    page.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from ui.app import create_app
    from ui.testing import CHROMIUM, CHROMIUM_FLAGS, ServerThread

    if not CHROMIUM.exists():
        print(f"no Chromium at {CHROMIUM}: run `make browser-deps` first", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tutor-shots-") as tmp:
        ctx = build_server_context(Path(tmp))
        with ServerThread(create_app(ctx)) as srv, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
            )
            student_pictures(browser, srv.url, args.out)
            teacher_pictures(browser, srv.url, args.out)
            browser.close()
    print(f"wrote 4 screenshots to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
