"""How long the web UI adds before the first token: from pressing Enter to the first token
painted in a real browser (headless Chromium), against the backend's own time to first token
for the same turn.

For each turn the page records ``performance.now()`` at the Enter keydown and at the first
animation frame after the answer's first text reached the DOM; the server wraps the generator
and records the time from ``stream()`` to its first delta. UI overhead = browser TTFT - backend
TTFT, paired per turn: sign-in check, Gradio's queue and SSE, the agent (profile, retrieval with
the bundled MiniLM, prompt, persistence of the question) and rendering.

    python benchmarks/ui_latency.py                       # OpenAI-compatible fake backend
    python benchmarks/ui_latency.py --backend hf --turns 8   # the bundled SmolLM2 in-process
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import Recorder  # noqa: E402
from ui_common import (  # noqa: E402
    REPLY,
    TimedGenerator,
    build,
    median,
    ms,
    pct,
    questions,
    time_turns,
)

from ui.testing import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

WATCH = """() => {
  window.__t = {};
  let before = null;
  const box = document.querySelector('#msg textarea');
  box.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    before = document.querySelectorAll("#chat [data-testid='bot']").length;
    window.__t.enter = performance.now();
  }, {once: true});
  const obs = new MutationObserver(() => {
    if (before === null || window.__t.text) return;
    const bots = document.querySelectorAll("#chat [data-testid='bot']");
    if (bots.length > before && bots[bots.length - 1].innerText.trim().length > 0) {
      window.__t.text = performance.now();
      requestAnimationFrame(() => { window.__t.paint = performance.now(); });
      obs.disconnect();
    }
  });
  obs.observe(document.querySelector('#chat'), {childList: true, subtree: true, characterData: true});
}"""
# resolves once the chat has not changed for `ms` milliseconds
QUIET = """(ms) => new Promise((resolve) => {
  let timer = setTimeout(done, ms);
  const obs = new MutationObserver(() => { clearTimeout(timer); timer = setTimeout(done, ms); });
  function done() { obs.disconnect(); resolve(true); }
  obs.observe(document.querySelector('#chat'), {childList: true, subtree: true, characterData: true});
})"""


def n_messages(ctx: object) -> int:
    store = ctx.store  # type: ignore[attr-defined]
    lid = store.find_learner("s00").id
    return sum(len(store.messages(s.id)) for s in store.list_sessions(lid))


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["openai", "hf"], default="openai")
    ap.add_argument("--turns", type=int, default=15)
    ap.add_argument("--first-token-delay", type=float, default=0.25, help="fake backend only")
    ap.add_argument("--token-delay", type=float, default=0.02, help="fake backend only")
    ap.add_argument("--max-new-tokens", type=int, default=24, help="hf backend only")
    return ap.parse_args()


def _generator(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """The fake server (or None), the inner generator, and the backend's label."""
    if args.backend == "openai":
        from tutor.lm.openai import OpenAIGenerator
        from tutor.testing.openai_server import Script, ScriptedServer

        fake = ScriptedServer(
            Script(
                reply=lambda m: REPLY,
                first_token_delay=args.first_token_delay,
                token_delay=args.token_delay,
            )
        ).__enter__()
        label = (
            f"OpenAI-compatible fake (first token {args.first_token_delay * 1000:.0f} ms, "
            f"then {args.token_delay * 1000:.0f} ms/token)"
        )
        return fake, OpenAIGenerator(fake.base_url, "scripted"), label
    from tutor.builders import build_generator
    from tutor.config import load_config

    config = load_config(env={}, file_values={"lm": {"max_new_tokens": args.max_new_tokens}})
    t0 = time.perf_counter()
    inner = build_generator(config)
    print(f"# model loaded in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return None, inner, f"in-process {inner.name} (hf)"


def _sign_in(page: Any, url: str) -> None:
    from ui.testing import PASSWORD

    page.goto(url + "login")
    page.fill("#username", "s00")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#msg textarea", timeout=60_000)


def _browser_turns(
    page: Any, ctx: Any, gen: Any, turn_starts: list[float], turns: int
) -> tuple[list[float], list[float], list[float]]:
    """Per turn after the warm-up: browser TTFT, backend TTFT, the agent's time before the LM."""
    browser_ttft, backend_ttft, agent_pre = [], [], []
    for i, q in enumerate(questions(turns + 1)):
        n_before = len(gen.ttft)
        page.evaluate(WATCH)
        page.fill("#msg textarea", q)
        page.press("#msg textarea", "Enter")
        page.wait_for_function("() => window.__t.paint", timeout=300_000)
        t = page.evaluate("() => window.__t")
        # the turn is over once the reply is stored (the agent does that last)
        deadline = time.monotonic() + 300
        while n_messages(ctx) < 2 * (i + 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        page.evaluate(QUIET, 400)
        if len(gen.ttft) <= n_before:
            print(f"# turn {i}: no LM call ({q!r}); skipped", file=sys.stderr)
            continue
        if i == 0:
            continue  # warm-up: first query loads the embedder
        browser_ttft.append((t["paint"] - t["enter"]) / 1000)
        backend_ttft.append(gen.ttft[-1])
        agent_pre.append(gen.started[-1] - turn_starts[-1])
    return browser_ttft, backend_ttft, agent_pre


def _print_table(
    rec: Recorder,
    label: str,
    browser_ttft: list[float],
    backend_ttft: list[float],
    agent_pre: list[float],
) -> None:
    web = [b - k - a for b, k, a in zip(browser_ttft, backend_ttft, agent_pre, strict=True)]
    added = [b - k for b, k in zip(browser_ttft, backend_ttft, strict=True)]
    print(f"\nBackend: {label}; {len(added)} turns after one warm-up turn.\n")
    rows = [
        ("backend alone (`stream()` to first delta)", "backend", backend_ttft),
        ("browser: Enter to first token painted", "browser", browser_ttft),
        ("added in all (browser - backend, paired per turn)", "added", added),
        ("- the agent before the LM (question saved, retrieval, prompt)", "agent", agent_pre),
        ("- the web layer (sign-in check, queue, SSE, handler, rendering)", "web", web),
    ]
    table = []
    for name, key, v in rows:
        rec.latency(key, v, scale=1000)
        table.append([name, len(v), ms(median(v)), ms(pct(v, 0.95))])
    rec.meta(backend=label, warmup_turns=1)
    columns = ["time to first token", "turns", "p50 (ms)", "p95 (ms)"]
    print(rec.table("ttft", columns, table, align="lrrr"))


def main() -> None:
    args = _parse_args()
    rec = Recorder("ui_latency", args, tag="" if args.backend == "openai" else args.backend)

    from playwright.sync_api import sync_playwright

    from ui.app import create_app
    from ui.testing import ServerThread

    fake, inner, label = _generator(args)
    gen = TimedGenerator(inner)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = build(Path(tmp), gen, students=1)
        ctx.agent.settings.max_new_tokens = args.max_new_tokens
        turn_starts = time_turns(ctx.agent)
        with ServerThread(create_app(ctx)) as srv, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            _sign_in(page, srv.url)
            measured = _browser_turns(page, ctx, gen, turn_starts, args.turns)
            browser.close()
    if fake is not None:
        fake.__exit__(None, None, None)
    _print_table(rec, label, *measured)
    rec.write()


if __name__ == "__main__":
    main()
