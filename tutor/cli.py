"""The ``tutor`` command line: one parser, subcommands registered by each package.

Commands are thin: parse, resolve the config, call one library function, render. Errors from
the library (``TutorError``) become one-line messages here and nowhere else. Heavy libraries
are imported inside the command functions, so ``tutor --help`` is instant.

Options whose ``dest`` is ``section.key`` (for example ``--model`` -> ``lm.model``) are CLI
config overrides: they win over the environment, ``tutor.toml`` and the defaults.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tutor.errors import TutorError

# Each module exposes ``register(subparsers, common)``; the order is the order in --help.
REGISTRARS: tuple[str, ...] = (
    "tutor.commands",
    "knowledge_base.cli",
    "finetune.cli",
    "tutor.learner_cli",
    "ui.cli",
    "evals.cli",
)

CommandFn = Callable[[argparse.Namespace, Any], int | None]


def common_parser() -> argparse.ArgumentParser:
    """Options every subcommand accepts (also accepted before the subcommand)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("global options")
    g.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML config file (default: ./tutor.toml when present)",
    )
    g.add_argument(
        "--set",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=argparse.SUPPRESS,
        help="override one config value, e.g. --set kb.top_k=8 (repeatable)",
    )
    g.add_argument(
        "--home",
        dest="paths.home",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="data dir (env TUTOR_HOME; default ./.tutor)",
    )
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more diagnostics on stderr (-vv for debug)",
    )
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only errors on stderr",
    )
    return p


def add_lm_options(parser: argparse.ArgumentParser) -> None:
    """LM overrides shared by ask, chat, serve and eval."""
    g = parser.add_argument_group("model")
    g.add_argument(
        "--model",
        dest="lm.model",
        default=None,
        help="HF id, local dir, .gguf file or bundled alias",
    )
    g.add_argument("--backend", dest="lm.backend", choices=["hf", "openai"], default=None)
    g.add_argument(
        "--adapter", dest="lm.adapter", default=None, help="peft LoRA directory to load on top"
    )
    g.add_argument(
        "--dtype", dest="lm.dtype", choices=["auto", "float32", "bfloat16", "float16"], default=None
    )
    g.add_argument("--device", dest="lm.device", default=None, help="auto, cpu, cuda, cuda:N")
    g.add_argument(
        "--load-in-4bit",
        dest="lm.load_in_4bit",
        action="store_const",
        const=True,
        default=None,
        help="NF4 via bitsandbytes ([gpu] extra)",
    )
    g.add_argument("--max-new-tokens", dest="lm.max_new_tokens", type=int, default=None)
    g.add_argument("--temperature", dest="lm.temperature", type=float, default=None)
    g.add_argument(
        "--base-url",
        dest="lm.base_url",
        default=None,
        help="OpenAI-compatible server URL (backend openai)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = common_parser()
    parser = argparse.ArgumentParser(
        prog="tutor",
        description="An offline, personal AI tutor. Run `tutor COMMAND --help` for details.",
        parents=[common],
    )
    from tutor import __version__

    parser.add_argument("--version", action="version", version=f"tutor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in REGISTRARS:
        importlib.import_module(module_name).register(sub, common)
    return parser


def setup_logging(verbosity: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.DEBUG if verbosity >= 2 else logging.INFO)
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for name in ("tutor", "knowledge_base", "finetune", "evals", "ui"):
        logging.getLogger(name).setLevel(level)
    if verbosity < 1:
        # transformers/hub chatter goes to stderr only with -v
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def resolve_config(args: argparse.Namespace) -> Any:
    from tutor.config import load_config, parse_overrides

    overrides: dict[str, dict[str, Any]] = parse_overrides(getattr(args, "set", None) or [])
    for key, value in vars(args).items():
        if "." in key and value is not None:
            section, _, name = key.partition(".")
            overrides.setdefault(section, {})[name] = value
    return load_config(getattr(args, "config", None), os.environ, overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    setup_logging(getattr(args, "verbose", 0) or 0, getattr(args, "quiet", False))
    try:
        config = resolve_config(args)
        return int(args.func(args, config) or 0)
    except TutorError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
