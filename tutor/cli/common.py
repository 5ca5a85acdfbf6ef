"""Shared pieces of the ``tutor`` command line: global options, LM options, logging, config.

Options whose ``dest`` is ``section.key`` (for example ``--model`` -> ``lm.model``) are CLI
config overrides: ``resolve_config`` makes them win over the environment, ``tutor.toml`` and
the defaults. Light on purpose: every command module imports it, and ``tutor --help`` must
stay instant.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    g.add_argument(
        "--backend", dest="lm.backend", choices=["hf", "openai", "llamacpp"], default=None
    )
    g.add_argument(
        "--adapter",
        dest="lm.adapter",
        default=None,
        help="auto (default: the shipped tutoring LoRA on the bundled model), none, tutoring, "
        "or a peft LoRA directory",
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


OUR_LOGGERS = ("tutor", "knowledge_base", "finetune", "evals", "ui")
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def _ours_or_errors(record: logging.LogRecord) -> bool:
    """The terminal's filter without ``-v``: the project's records, and errors from anyone."""
    return record.levelno >= logging.ERROR or record.name.split(".")[0] in OUR_LOGGERS


def setup_logging(verbosity: int, quiet: bool) -> None:
    """Log level of the project's loggers from ``-v``/``-q``; library chatter only with ``-v``.

    Without ``-v``, warnings from libraries (bitsandbytes' "offline mode", Python
    ``warnings``) stay off the terminal, where they landed inside the tutor's answers; the
    commands that answer (``chat``, ``ask``, ``serve``) keep them in the log file
    (``log_to_file``).
    """
    level = logging.ERROR if quiet else (logging.DEBUG if verbosity >= 2 else logging.INFO)
    root = logging.getLogger()
    configured = bool(root.handlers)  # by an embedding program (or pytest): leave them be
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, stream=sys.stderr)
    if not configured:
        logging.captureWarnings(True)  # Python warnings become records of 'py.warnings'
        if verbosity < 1:
            for handler in root.handlers:
                handler.addFilter(_ours_or_errors)
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if verbosity < 1:
        # transformers/hub chatter goes to stderr only with -v
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


class _LogFile(logging.handlers.RotatingFileHandler):
    """The data dir's log file: opened at the first record; a write that fails (a full disk,
    a read-only dir) is dropped rather than printed into the terminal."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def log_to_file(path: Path) -> Path:
    """Keep every warning and error (libraries' included) in ``path`` (1 MB, 2 old files
    kept); replaces the log file a previous call set."""
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, _LogFile)]:
        root.removeHandler(h)
        h.close()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return path  # nowhere to write: the terminal's filter still applies
    handler = _LogFile(path, maxBytes=2**20, backupCount=2, encoding="utf-8", delay=True)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s " + LOG_FORMAT))
    root.addHandler(handler)
    return path


def private_home(config: Any) -> None:
    """Create the data dir owner-only (0700) when it does not exist yet, whichever command comes
    first (``make run`` starts with ``tutor kb add``): it will hold chats and password hashes.
    An existing one keeps its mode; one that cannot be made is left to the command to report."""
    with contextlib.suppress(OSError):
        config.paths.home_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def resolve_config(args: argparse.Namespace) -> Any:
    """The config for one command: ``--set`` and ``section.key`` options over ``--config``,
    the environment and the defaults."""
    from tutor.config import load_config, parse_overrides

    overrides: dict[str, dict[str, Any]] = parse_overrides(getattr(args, "set", None) or [])
    for key, value in vars(args).items():
        if "." in key and value is not None:
            section, _, name = key.partition(".")
            overrides.setdefault(section, {})[name] = value
    return load_config(getattr(args, "config", None), os.environ, overrides)
