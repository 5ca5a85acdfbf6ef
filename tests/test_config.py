"""Config: defaults, precedence (defaults < file < env < CLI), unknown keys, bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tutor.config import load_config, parse_overrides
from tutor.errors import ConfigError


def test_defaults_without_file_or_env():
    cfg = load_config(file_values={}, env={})
    assert cfg.lm.backend == "hf"
    assert cfg.lm.model == "smollm2-135m-instruct"
    assert cfg.kb.top_k == 4
    assert cfg.paths.home == ".tutor"
    assert cfg.database_url.startswith("sqlite:///") and cfg.database_url.endswith(
        "learners.sqlite"
    )


def test_precedence_file_env_cli(tmp_path: Path):
    f = tmp_path / "tutor.toml"
    f.write_text(
        '[lm]\nmodel = "from-file"\nmax_new_tokens = 10\ntemperature = 0.5\n[kb]\ntop_k = 7\n'
    )
    env = {"TUTOR_LM__MODEL": "from-env", "TUTOR_LM__MAX_NEW_TOKENS": "20"}
    cli = {"lm": {"model": "from-cli"}}
    cfg = load_config(f, env, cli)
    assert cfg.lm.model == "from-cli"  # CLI beats env and file
    assert cfg.lm.max_new_tokens == 20  # env beats file, typed
    assert cfg.lm.temperature == 0.5  # file beats default
    assert cfg.kb.top_k == 7
    assert cfg.ui.port == 7860  # default untouched


def test_tutor_home_env_sets_data_dir(tmp_path: Path):
    cfg = load_config(file_values={}, env={"TUTOR_HOME": str(tmp_path)})
    assert cfg.paths.home_dir == tmp_path.resolve()
    assert cfg.paths.kb_dir == tmp_path.resolve() / "kb"
    assert str(tmp_path.resolve()) in cfg.database_url


@pytest.mark.parametrize("order", ["shorthand first", "generic first"])
def test_tutor_paths__home_wins_over_tutor_home_in_any_order(tmp_path: Path, order: str):
    pairs = [("TUTOR_HOME", str(tmp_path / "short")), ("TUTOR_PATHS__HOME", str(tmp_path / "gen"))]
    env = dict(pairs if order == "shorthand first" else pairs[::-1])
    cfg = load_config(file_values={}, env=env)
    assert cfg.paths.home_dir == (tmp_path / "gen").resolve()
    # and a CLI --home still beats both
    cfg = load_config(file_values={}, env=env, overrides={"paths": {"home": str(tmp_path / "c")}})
    assert cfg.paths.home_dir == (tmp_path / "c").resolve()


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"lm": {"modle": "x"}}, "lm.modle"),
        ({"llm": {"model": "x"}}, "[llm]"),
        ({"lm": {"max_new_tokens": "many"}}, "lm.max_new_tokens"),
        ({"lm": {"backend": "vllm"}}, "'hf', 'openai'"),
        ({"lm": {"load_in_4bit": "perhaps"}}, "true or false"),
        ({"lm": {"temperature": -1}}, "lm.temperature"),
        ({"kb": {"chunk_overlap": 1000}}, "kb.chunk_overlap"),
        ({"ui": {"port": 0}}, "ui.port"),
    ],
)
def test_bad_values_name_the_key(values, fragment):
    with pytest.raises(ConfigError) as e:
        load_config(file_values=values, env={})
    assert fragment in str(e.value)


def test_unknown_env_key_is_rejected():
    with pytest.raises(ConfigError, match="lm.colour"):
        load_config(file_values={}, env={"TUTOR_LM__COLOUR": "red"})


def test_ui_share_is_not_a_config_key(tmp_path: Path):
    # the tutor is offline (a Gradio share link needs an internet tunnel): ui.share was accepted
    # and ignored, so it is gone, and a file that still sets it gets the unknown-key error
    f = tmp_path / "tutor.toml"
    f.write_text("[ui]\nshare = true\n")
    with pytest.raises(ConfigError, match=r"unknown config key ui\.share in .*tutor\.toml"):
        load_config(f, env={})
    assert not hasattr(load_config(file_values={}, env={}).ui, "share")


def test_lists_from_env_and_overrides():
    cfg = load_config(file_values={}, env={"TUTOR_LM__STOP": "###,END"})
    assert cfg.lm.stop == ["###", "END"]
    cfg = load_config(file_values={}, env={"TUTOR_LM__STOP": '["a", "b,c"]'})
    assert cfg.lm.stop == ["a", "b,c"]
    assert parse_overrides(["kb.top_k=8"]) == {"kb": {"top_k": "8"}}
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        parse_overrides(["top_k=8"])


def test_missing_and_invalid_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[lm\nmodel=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})


def test_round_trip_through_toml(tmp_path: Path):
    cfg = load_config(file_values={"lm": {"stop": ["</s>"], "temperature": 0.3}}, env={})
    f = tmp_path / "out.toml"
    f.write_text(cfg.to_toml())
    again = load_config(f, env={})
    assert again.to_dict() == cfg.to_dict()


def run_cli(
    *args: str, env_extra: dict | None = None, cwd: Path | None = None, input: str | None = None
):
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "tutor", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        input=input,
        timeout=300,
    )


def test_config_show_reflects_precedence(tmp_path: Path):
    (tmp_path / "tutor.toml").write_text('[kb]\ntop_k = 5\n[lm]\nmodel = "file-model"\n')
    r = run_cli(
        "config",
        "show",
        "--set",
        "lm.max_new_tokens=99",
        "--model",
        "cli-model",
        env_extra={"TUTOR_KB__TOP_K": "6", "TUTOR_HOME": str(tmp_path / "h")},
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert 'model = "cli-model"' in r.stdout  # CLI flag beats the file
    assert "top_k = 6" in r.stdout and "max_new_tokens = 99" in r.stdout
    assert f'home = "{tmp_path / "h"}"' in r.stdout


def test_cli_reports_config_errors_in_one_line(tmp_path: Path):
    r = run_cli("config", "show", "--set", "lm.nope=1", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("error: unknown config key lm.nope")
    assert "Traceback" not in r.stderr
