"""The ``tutor`` command line: one parser, one module per command group.

Commands are thin: parse, resolve the config, call one library function, render. Errors from
the library (``TutorError``) become one-line messages here and nowhere else. Heavy libraries
are imported inside the command functions, so ``tutor --help`` is instant.

``tutor.cli`` is the top floor of the house: the only package that imports every other one
(``knowledge_base``, ``finetune``, ``evals``, ``ui``); nothing else imports it.
Options whose ``dest`` is ``section.key`` (for example ``--model`` -> ``lm.model``) are CLI
config overrides: they win over the environment, ``tutor.toml`` and the defaults.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from finetune import cli as finetune_cli
from tutor.cli import chat, intents, judge, kb, learners, serve, users
from tutor.cli import eval as eval_cli
from tutor.cli.common import (
    CommandFn,
    add_lm_options,
    common_parser,
    private_home,
    resolve_config,
    setup_logging,
)
from tutor.errors import TutorError

Registrar = Callable[[Any, argparse.ArgumentParser], None]

# Command group -> the function that adds its subcommands; the order is the order in --help.
COMMAND_GROUPS: dict[str, Registrar] = {
    "config, ask, chat": chat.register,
    "kb": kb.register,
    "finetune": finetune_cli.register,
    "learners, items": learners.register,
    "users": users.register,
    "serve": serve.register,
    "eval": eval_cli.register,
    "intents": intents.register,
    "judge": judge.register,
}

__all__ = [
    "COMMAND_GROUPS",
    "CommandFn",
    "add_lm_options",
    "build_parser",
    "common_parser",
    "main",
    "resolve_config",
    "setup_logging",
]


class Parser(argparse.ArgumentParser):
    """No prefix matching of long options (``allow_abbrev``): ``tutor ask --mode guide`` was
    taken as ``--model guide`` and failed with "model 'guide' was not found". Sub-commands'
    parsers are of this class too (argparse makes them ``type(parent)``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The ``tutor`` parser with every command group registered."""
    common = common_parser()
    parser = Parser(
        prog="tutor",
        description="An offline, personal AI tutor. Run `tutor COMMAND --help` for details.",
        parents=[common],
    )
    from tutor import __version__

    parser.add_argument("--version", action="version", version=f"tutor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in COMMAND_GROUPS.values():
        register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``tutor`` command; returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    setup_logging(getattr(args, "verbose", 0) or 0, getattr(args, "quiet", False))
    try:
        config = resolve_config(args)
        private_home(config)
        return int(args.func(args, config) or 0)
    except TutorError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
