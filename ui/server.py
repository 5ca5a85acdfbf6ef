"""``tutor serve``: build the heavy objects once, wrap them in the app, run it with uvicorn.

One process holds one model: with the in-process (``hf``) backend every chat turn goes through
the Gradio queue's ``lm`` group (``ui.concurrency_limit``, automatically 1) and the model's own
lock, so generations never interleave; with the ``openai`` backend turns run concurrently.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

from tutor.errors import ConfigError, InputError

if TYPE_CHECKING:
    from knowledge_base import KnowledgeBase
    from tutor.config import Config
    from tutor.lm.base import Generator
    from tutor.store.protocol import LearnerStoreLike
    from ui.handlers import UIContext

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(config: Any) -> list[str]:
    """Refuse ``--demo`` off loopback; the warnings to print for the chosen host."""
    ui = config.ui
    warnings = []
    if ui.demo and not is_loopback(ui.host):
        raise ConfigError(
            f"--demo signs everyone in as the demo student, so it only runs on a loopback host "
            f"(127.0.0.1), not on {ui.host}; drop --demo or --host"
        )
    if not is_loopback(ui.host):
        warnings.append(
            f"serving on {ui.host}: other machines can reach this app, and without TLS in front "
            "passwords and session cookies cross the network unencrypted. Put a TLS reverse "
            "proxy (Caddy, nginx) in front, or keep the default host 127.0.0.1."
        )
    return warnings


def build_context(
    config: Config,
    *,
    generator: Generator | None = None,
    store: LearnerStoreLike | None = None,
    kb: KnowledgeBase | None = None,
    login_delay: float | None = None,
) -> UIContext:
    """The ``UIContext`` for ``config``; pass ``generator``/``store``/``kb`` to reuse or fake them."""
    from tutor.builders import (
        build_agent,
        build_generator,
        build_knowledge_base,
        build_learner_store,
    )
    from ui.auth import SignIn
    from ui.handlers import UIContext

    store = store if store is not None else build_learner_store(config)
    if generator is None and kb is None:
        from tutor.startup import load_models

        # both at once, with progress in the terminal (the embedder no longer loads at the
        # first question)
        generator, kb = load_models(config)
    kb = kb if kb is not None else build_knowledge_base(config)
    generator = generator if generator is not None else build_generator(config)
    agent = build_agent(config, generator=generator, store=store, kb=kb)
    ui = config.ui
    signin = SignIn(
        store,
        session_hours=ui.session_hours,
        demo=ui.demo,
        delay_s=ui.login_delay if login_delay is None else login_delay,
        max_failures=ui.login_attempts,
    )
    return UIContext(
        config=config,
        store=store,
        agent=agent,
        kb=kb,
        signin=signin,
        collection=ui.collection or config.kb.collection,
        model_name=str(getattr(generator, "name", "")),
        max_upload_mb=ui.max_upload_mb,
    )


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def serve(config: Any) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # Gradio keeps every uploaded file (documents, item banks) in its cache: inside the data
    # dir, not in the system's /tmp, so all the server's data stays in one place.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(config.paths.uploads_dir))
    ui = config.ui
    for w in check_host(config):
        log.warning("%s", w)
    if not _port_free(ui.host, ui.port):
        raise InputError(
            f"port {ui.port} on {ui.host} is in use; pass --port N (or stop the other app)"
        )
    ctx = build_context(config)  # the model and the embedder load at once, with progress
    n_docs = len(ctx.kb.list_documents(ctx.collection)) if ctx.kb is not None else 0
    if n_docs == 0:
        log.warning(
            "course %r has no documents yet: answers cannot cite anything. Add some with "
            "`tutor kb add DIR --collection %s` or in the teacher view",
            ctx.collection,
            ctx.collection,
        )
    if ctx.store.count_users("teacher") == 0:
        print(
            "no teacher account yet: create one with `tutor users add NAME --teacher`, then sign "
            "in at /login",
            file=sys.stderr,
        )

    import uvicorn

    from ui.app import create_app, lm_concurrency

    app = create_app(ctx)
    url = f"http://{'localhost' if is_loopback(ui.host) else ui.host}:{ui.port}"
    mode = " (demo: everyone is the demo student; teachers sign in at /login)" if ui.demo else ""
    print(
        f"tutor on {url}{mode} · course {ctx.collection!r}, {n_docs} documents · "
        f"{lm_concurrency(config)} turn(s) at a time · Ctrl-C stops",
        file=sys.stderr,
    )
    uvicorn.run(
        app,
        host=ui.host,
        port=ui.port,
        log_level="warning",
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )
    return 0
