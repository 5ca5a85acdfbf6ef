"""Core commands: ``tutor config show``, ``tutor ask``, ``tutor chat``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tutor.errors import InputError, TutorError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from tutor.cli import add_lm_options

    p = sub.add_parser("config", parents=[common], help="show the resolved configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = csub.add_parser("show", parents=[common], help="print the resolved config as TOML")
    show.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    add_lm_options(show)
    show.set_defaults(func=cmd_config_show)

    p = sub.add_parser("ask", parents=[common], help="stream one answer to stdout")
    p.add_argument("question", nargs="+", help="the question")
    p.add_argument("--system", default=None, help="system prompt (default: the tutor persona)")
    add_lm_options(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", parents=[common], help="chat in the terminal (keeps history)")
    p.add_argument("--system", default=None, help="system prompt (default: the tutor persona)")
    add_lm_options(p)
    p.set_defaults(func=cmd_chat)


def cmd_config_show(args: argparse.Namespace, config: Any) -> int:
    if args.json:
        import json

        print(json.dumps(config.to_dict(), indent=2))
    else:
        print(config.to_toml(), end="")
    return 0


DEFAULT_SYSTEM = (
    "You are a patient, encouraging tutor. Explain clearly and briefly, check understanding "
    "with a question, and guide the student to the answer instead of just giving it."
)


def _stream_to_stdout(gen: Any, messages: list[dict[str, str]]) -> str:
    parts: list[str] = []
    for delta in gen.stream(messages):
        parts.append(delta)
        sys.stdout.write(delta)
        sys.stdout.flush()
    sys.stdout.write("\n")
    sys.stdout.flush()
    return "".join(parts)


def cmd_ask(args: argparse.Namespace, config: Any) -> int:
    from tutor.builders import build_generator

    question = " ".join(args.question).strip()
    if not question:
        raise InputError(
            'the question is empty; pass the question as text: tutor ask "What is 3/4 of 8?"'
        )
    gen = build_generator(config)
    messages = [
        {"role": "system", "content": args.system or DEFAULT_SYSTEM},
        {"role": "user", "content": question},
    ]
    _stream_to_stdout(gen, messages)
    return 0


def cmd_chat(args: argparse.Namespace, config: Any) -> int:
    from tutor.builders import build_generator

    gen = build_generator(config)
    history: list[dict[str, str]] = []
    system = {"role": "system", "content": args.system or DEFAULT_SYSTEM}
    print(
        f"Chatting with {gen.name}. /reset clears the history, /quit (or Ctrl-D) leaves.",
        file=sys.stderr,
    )
    while True:
        try:
            line = input("you> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0
        text = line.strip()
        if text in {"/quit", "/exit"}:
            return 0
        if text == "/reset":
            history.clear()
            print("history cleared", file=sys.stderr)
            continue
        if not text:
            print("error: the message is empty; type a question or an answer", file=sys.stderr)
            continue
        turn = [system, *history, {"role": "user", "content": text}]
        sys.stdout.write("tutor> ")
        try:
            answer = _stream_to_stdout(gen, turn)
        except KeyboardInterrupt:
            print("\n(stopped)", file=sys.stderr)
            continue
        except TutorError as e:
            print(f"\nerror: {e}", file=sys.stderr)
            continue
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
