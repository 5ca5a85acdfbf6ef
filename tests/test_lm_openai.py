"""The openai backend against a real SSE server on loopback: streaming, errors, drops, cancel."""

from __future__ import annotations

import socket
import threading

import pytest

from tutor.config import load_config
from tutor.errors import BackendError
from tutor.lm.base import generate
from tutor.lm.openai import OpenAIGenerator
from tutor.testing.openai_server import Script, ScriptedServer

MSGS = [{"role": "system", "content": "be kind"}, {"role": "user", "content": "What is 1/2 + 1/4?"}]
REPLY = "What do you get if you write both fractions with the same denominator? "


def make(srv: ScriptedServer, **kw) -> OpenAIGenerator:
    return OpenAIGenerator(srv.base_url, "scripted", timeout=5, connect_timeout=2, **kw)


def test_streams_deltas_and_sends_the_request():
    with ScriptedServer(Script(reply=lambda m: REPLY)) as srv:
        gen = make(srv)
        deltas = list(gen.stream(MSGS, max_new_tokens=50, temperature=0.2))
        assert len(deltas) > 5
        assert "".join(deltas) == REPLY
        req = srv.script.requests[-1]
        assert req["stream"] is True and req["messages"] == MSGS
        assert req["max_tokens"] == 50 and req["temperature"] == 0.2
        assert gen.context_window == 4096  # read from /models (max_model_len)


def test_built_from_config():
    with ScriptedServer(Script(reply=lambda m: "ok then")) as srv:
        cfg = load_config(
            file_values={
                "lm": {"backend": "openai", "base_url": srv.base_url, "api_model": "scripted"}
            },
            env={},
        )
        from tutor.builders import build_generator

        gen = build_generator(cfg)
        assert generate(gen, MSGS) == "ok then"


def test_server_refuses():
    with ScriptedServer(Script(fail_status=503)) as srv:
        with pytest.raises(BackendError, match="HTTP 503: scripted failure 503"):
            list(make(srv).stream(MSGS))


def test_unknown_model_names_the_setting():
    with ScriptedServer(Script()) as srv:
        gen = OpenAIGenerator(srv.base_url, "other-model", timeout=5, connect_timeout=2)
        with pytest.raises(BackendError, match="lm.api_model"):
            list(gen.stream(MSGS))


def test_stream_dropped_mid_answer():
    with ScriptedServer(Script(reply=lambda m: REPLY, drop_after=4)) as srv:
        got = []
        with pytest.raises(BackendError, match="mid-answer"):
            for d in make(srv).stream(MSGS):
                got.append(d)
        assert len(got) == 4  # what arrived before the drop was delivered


def test_connection_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    gen = OpenAIGenerator(
        f"http://127.0.0.1:{port}/v1", "m", context_window=2048, connect_timeout=1
    )
    with pytest.raises(BackendError, match="cannot reach .* lm.base_url"):
        list(gen.stream(MSGS))


def test_stop_string_and_cancel():
    with ScriptedServer(
        Script(reply=lambda m: "one two three END four five", token_delay=0.01)
    ) as srv:
        gen = make(srv)
        assert generate(gen, MSGS, stop=["END"]) == "one two three "
        cancel = threading.Event()
        got = []
        for d in gen.stream(MSGS, cancel=cancel):
            got.append(d)
            cancel.set()
        assert got == ["one "]


def test_token_budget_trims_history():
    with ScriptedServer(Script(reply=lambda m: "fine", max_model_len=300)) as srv:
        gen = make(srv)
        history = []
        for i in range(50):
            history += [
                {"role": "user", "content": f"question {i} " * 10},
                {"role": "assistant", "content": "answer " * 10},
            ]
        generate(gen, [MSGS[0], *history, MSGS[1]], max_new_tokens=50)
        sent = srv.script.requests[-1]["messages"]
        assert sent[0] == MSGS[0] and sent[-1] == MSGS[1]
        assert len(sent) < 20
