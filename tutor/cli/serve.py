"""``tutor serve``: the web app for students and teachers."""

from __future__ import annotations

import argparse
from typing import Any

from tutor.cli.common import add_lm_options, log_to_file


def register(sub: Any, common: argparse.ArgumentParser) -> None:

    p = sub.add_parser(
        "serve",
        parents=[common],
        help="start the web app (students chat, teachers run their course)",
        description="Start the web app on http://127.0.0.1:7860. Students sign in to chat with "
        "the tutor, practise and see their progress; teachers upload course material and item "
        "banks, add student accounts and watch the class. Create the first teacher with "
        "`tutor users add NAME --teacher`. --demo (this machine only) skips sign-in with one "
        "demo student.",
    )
    p.add_argument(
        "--host",
        dest="ui.host",
        default=None,
        help="address to listen on (default 127.0.0.1; anything else needs TLS in front)",
    )
    p.add_argument("--port", dest="ui.port", type=int, default=None, help="default 7860")
    p.add_argument(
        "--demo",
        dest="ui.demo",
        action="store_const",
        const=True,
        default=None,
        help="no sign-in: everyone is the one demo student (loopback host only)",
    )
    p.add_argument(
        "--collection",
        dest="ui.collection",
        default=None,
        metavar="NAME",
        help="course collection to serve (default: kb.collection)",
    )
    p.add_argument(
        "--concurrency-limit",
        dest="ui.concurrency_limit",
        type=int,
        default=None,
        metavar="N",
        help="chat turns generated at once (default: 1 in-process, 32 with --backend openai)",
    )
    add_lm_options(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace, config: Any) -> int:
    from ui.server import serve

    make_private_dirs(config)
    log_to_file(config.paths.home_dir / "logs" / "tutor.log")
    return serve(config)


def make_private_dirs(config: Any) -> None:
    """The data dir and the uploads folder, owner-only (0700) when this creates them: they hold
    chats, password hashes and the course's uploaded files. Existing ones keep their mode."""
    for d in (config.paths.home_dir, config.paths.uploads_dir):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
