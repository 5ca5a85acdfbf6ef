"""Test and benchmark helpers for the web app: a small course, and a real server (uvicorn) on a
loopback port in a background thread. The fake model is ``tutor.testing.fake_lm``.

    ctx = sample_context(tmp_path, ScriptedGenerator("Plants use light [1]."))
    with ServerThread(create_app(ctx)) as srv:
        Client(srv.url, auth=("ana", PASSWORD))
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from knowledge_base.embed import Embedder
    from tutor.accounts import Role
    from tutor.lm.base import Generator
    from tutor.store.protocol import LearnerStoreLike
    from ui.handlers import UIContext

PASSWORD = "correct-horse-1"
# Headless Chromium from Debian's package (`make browser-deps`), as the browser tests and the
# UI latency benchmark launch it through Playwright.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def message_text(content: Any) -> str:
    """A chat message's content as text (gradio_client returns a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(message_text(p) for p in content)
    if isinstance(content, dict):
        if content.get("type") == "text" or "text" in content:
            return str(content.get("text", ""))
        return json.dumps(content, sort_keys=True)
    return str(content)


DOCS = {
    "photosynthesis.md": (
        "# Photosynthesis\n\n## What a plant needs\n\nPlants make glucose from carbon dioxide and "
        "water using light energy captured by chlorophyll in the leaves. The overall reaction is "
        "$6CO_2 + 6H_2O \\rightarrow C_6H_{12}O_6 + 6O_2$.\n"
    ),
    "fractions.md": (
        "# Fractions\n\n## Adding fractions\n\nTo add fractions with different denominators, "
        "rewrite both with a common denominator, then add the numerators: "
        "$\\frac{1}{2} + \\frac{1}{3} = \\frac{5}{6}$.\n"
    ),
}


def sample_context(
    root: Path,
    generator: Generator,
    *,
    demo: bool = False,
    users: tuple[tuple[str, Role], ...] = (
        ("mrs-k", "teacher"),
        ("ana", "student"),
        ("ben", "student"),
    ),
    login_delay: float = 0.05,
    overrides: dict[str, dict[str, Any]] | None = None,
    docs_dir: Path | None = None,
    embedder: Embedder | None = None,
    kdf_n: int = 2,
) -> UIContext:
    """A ``UIContext`` over a fresh data dir in ``root``: a two-document course embedded with
    the hashing test embedder, the shipped item bank, and accounts (password ``PASSWORD``).

    Benchmarks pass ``docs_dir`` (e.g. ``data/curriculum``), a real ``embedder`` and the real
    ``kdf_n`` to measure the product as it ships."""
    from knowledge_base import KnowledgeBase
    from knowledge_base.testing import HashEmbedder
    from tutor.config import load_config
    from tutor.items import load_default_bank
    from tutor.store import LearnerStore
    from ui.server import build_context

    home = root / "home"
    docs = docs_dir
    if docs is None:
        docs = root / "docs"
        docs.mkdir(parents=True, exist_ok=True)
        for name, text in DOCS.items():
            (docs / name).write_text(text, encoding="utf-8")
    values: dict[str, dict[str, Any]] = {
        "paths": {"home": str(home)},
        "kb": {"min_score": 0.05} if embedder is None else {},
        "ui": {"demo": demo},
    }
    for section, kv in (overrides or {}).items():
        values.setdefault(section, {}).update(kv)
    config = load_config(env={}, file_values=values)
    store = LearnerStore(config.database_url, fallback_bank=load_default_bank, kdf_n=kdf_n)
    kb = KnowledgeBase.open(
        config.paths.kb_dir, embedder or HashEmbedder(), options=config.kb, show_progress=False
    )
    kb.add([docs], collection=config.kb.collection)
    for username, role in users:
        learner_id = None
        if role == "student":
            learner_id = store.add_learner(username, display_name=username.capitalize()).id
        store.add_user(username, PASSWORD, role=role, learner_id=learner_id)
    return build_context(config, generator=generator, store=store, kb=kb, login_delay=login_delay)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerThread:
    """Serve an ASGI app with uvicorn on a loopback port in a daemon thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None) -> None:
        import uvicorn

        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="ui-server")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the UI server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def seed_class(store: LearnerStoreLike, collection: str = "default", seed: int = 7) -> None:
    """Give the class some history (attempts on every skill, deterministic), so the dashboard and
    progress views have something to show: one strong learner, one struggling, the rest mixed."""
    import random

    from tutor.grading import grade

    rng = random.Random(seed)
    bank = store.bank(collection)
    ability = {"ana": 0.75, "ben": 0.35, "chloe": 0.9, "dev": 0.55, "eli": 0.2}
    for name, p in ability.items():
        try:
            lr = store.find_learner(name)
        except Exception:
            lr = store.add_learner(name, display_name=name.capitalize())
        for skill in list(bank.skills)[: 6 if name != "eli" else 3]:
            for item in bank.for_skill(skill)[:4]:
                right = rng.random() < p
                answer = item.answer.value if right else "999"
                store.record_attempt(
                    lr.id, item, answer, grade(item, answer), collection=collection
                )


def by_name(h: Any, names: Sequence[str], returned: dict[Any, Any]) -> dict[str, Any]:
    """A handler's ``{component: value}`` as ``{name: value}`` over an event's output ``names``,
    filled as Gradio fills it: ``gr.skip()`` for an output the handler left out. A component
    that is not among ``names`` raises, as it does in the app. ``h`` must be bound to its
    components (``ui.app.build_blocks``)."""
    import gradio as gr

    wanted = {id(h.components[n]) for n in names}
    extra = [k for k in returned if id(k) not in wanted]
    if extra:
        raise ValueError(f"returned components that are not outputs of the event: {extra}")
    return {n: returned.get(h.components[n], gr.skip()) for n in names}
