"""The `tutor` command line: instant help, ask/chat streaming, one-line errors, REPL history."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tutor.testing.openai_server import Script, ScriptedServer


def tutor(*args: str, input: str | None = None, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "tutor", *args],
        capture_output=True,
        text=True,
        input=input,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=300,
    )


def test_help_does_not_import_heavy_libraries():
    code = "import sys; from tutor.cli import build_parser; build_parser(); print(sorted(m for m in ('torch','transformers','gradio','faiss','sentence_transformers') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    r = tutor("--help")
    assert r.returncode == 0 and "ask" in r.stdout and "chat" in r.stdout


def test_ask_streams_answer_to_stdout_with_tiny_model(tiny_llama_dir: Path, tmp_path: Path):
    r = tutor(
        "ask",
        "what",
        "is",
        "a",
        "fraction",
        "?",
        "--model",
        str(tiny_llama_dir),
        "--max-new-tokens",
        "8",
        env={"TUTOR_HOME": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "expected an answer on stdout"
    assert "Traceback" not in r.stderr


def test_ask_against_openai_server(tmp_path: Path):
    with ScriptedServer(Script(reply=lambda m: "Think about the denominators first. ")) as srv:
        r = tutor(
            "ask",
            "1/2 + 1/4?",
            "--backend",
            "openai",
            "--base-url",
            srv.base_url,
            "--set",
            "lm.api_model=scripted",
            env={"TUTOR_HOME": str(tmp_path)},
        )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Think about the denominators first. \n"
    # the raw model's text is never passed off as checked: stderr says nothing verified it
    assert "no course passage, grader or verifier checked it" in r.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["ask", "  "], "the question is empty"),
        (["ask", "hi", "--model", "/no/such/model/dir"], "does not exist"),
        (
            ["ask", "hi", "--model", "no-such-org/no-such-model-xyz"],
            "not in the local Hugging Face cache",
        ),
        (
            ["ask", "hi", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"],
            "cannot reach",
        ),
    ],
)
def test_errors_are_one_line(args, fragment, tmp_path: Path):
    r = tutor(*args, env={"TUTOR_HOME": str(tmp_path)})
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and fragment in last


def test_chat_repl_keeps_history_through_errors(tmp_path: Path):
    with ScriptedServer(Script(reply=lambda m: f"turns={len(m)} ")) as srv:
        r = tutor(
            "chat",
            "--raw",
            "--backend",
            "openai",
            "--base-url",
            srv.base_url,
            "--set",
            "lm.api_model=scripted",
            input="hello\n\nsecond\n/reset\nthird\n/quit\n",
            env={"TUTOR_HOME": str(tmp_path)},
        )
    assert r.returncode == 0, r.stderr
    assert "error: the message is empty" in r.stderr
    # system+user=2, then system+user+assistant+user=4 (empty line changed nothing), reset -> 2
    answers = [line.split("tutor> ")[-1] for line in r.stdout.splitlines() if "turns=" in line]
    assert answers == ["turns=2 ", "turns=4 ", "turns=2 "]
    assert "nothing it says is checked" in r.stderr  # the raw model is not passed off as checked


def test_chat_backend_failure_keeps_repl_alive(tmp_path: Path):
    with ScriptedServer(Script(reply=lambda m: "a b c d e f g ", drop_after=2)) as srv:
        r = tutor(
            "chat",
            "--raw",
            "--backend",
            "openai",
            "--base-url",
            srv.base_url,
            "--set",
            "lm.api_model=scripted",
            input="one\ntwo\n",
            env={"TUTOR_HOME": str(tmp_path)},
        )
    assert r.returncode == 0
    assert r.stderr.count("error: the server") == 2


@pytest.mark.slow
def test_bundled_model_end_to_end(bundled_model_dir: Path, tmp_path: Path):
    """The real bundled SmolLM2 answers through `tutor ask`, offline, from the cache."""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "smollm2-135m-instruct").symlink_to(bundled_model_dir)
    r = tutor(
        "ask",
        "What is a fraction? Answer in one sentence.",
        "--max-new-tokens",
        "24",
        env={"TUTOR_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    assert len(words) >= 5
    assert any(
        w.lower().strip(".,") in {"fraction", "part", "whole", "number", "fractions"} for w in words
    ), r.stdout


def test_chat_starts_in_tutor_default_mode_and_mode_flag_overrides_it(tmp_path: Path):
    """``tutor.default_mode`` is the mode ``tutor chat`` starts in: 'hello' is a greeting in
    auto mode and a request for a problem in practice mode; ``--mode`` beats the config."""
    runs = {
        "default": ([], {}),
        "config practice": ([], {"TUTOR_TUTOR__DEFAULT_MODE": "practice"}),
        "flag beats config": (["--mode", "auto"], {"TUTOR_TUTOR__DEFAULT_MODE": "practice"}),
    }
    modes = {}
    with ScriptedServer(Script(reply=lambda m: "Hello there. ")) as srv:
        for name, (flags, env) in runs.items():
            r = tutor(
                "chat",
                "--backend",
                "openai",
                "--base-url",
                srv.base_url,
                "--set",
                "lm.api_model=scripted",
                *flags,
                input="hello\n/quit\n",
                env={"TUTOR_HOME": str(tmp_path / name.replace(" ", "-")), **env},
            )
            assert r.returncode == 0, r.stderr
            modes[name] = [ln for ln in r.stderr.splitlines() if ln.startswith("(")][-1]
    assert modes["default"].startswith("(offtopic;")
    assert modes["config practice"].startswith("(practice;")
    assert modes["flag beats config"].startswith("(offtopic;")


def test_a_long_option_is_never_taken_for_a_longer_one(capsys: pytest.CaptureFixture):
    """``--mode`` is not an option of ``ask``; argparse's prefix matching used to take it as
    ``--model`` and fail on a model named 'guide'. Now it is an unknown option, named."""
    from tutor.cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["ask", "--mode", "guide", "What is 2+2?"])
    assert e.value.code == 2
    assert "unrecognized arguments: --mode" in capsys.readouterr().err
    args = parser.parse_args(["ask", "--model", "smollm2-135m-instruct", "hi"])
    assert vars(args)["lm.model"] == "smollm2-135m-instruct"  # the full name still works
