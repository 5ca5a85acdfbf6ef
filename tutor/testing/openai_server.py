"""A scripted OpenAI-compatible chat-completions server with fixed token timing.

It speaks the real protocol (``POST /v1/chat/completions`` with ``stream: true`` -> SSE
``data: {...}`` events ending in ``data: [DONE]``; ``GET /v1/models``) so the ``openai``
backend, the UI and load tests can run against it on loopback with no model. Faults can be
scripted: refuse with an HTTP status, or drop the connection after N tokens.

    python -m tutor.testing.openai_server --port 8001 --token-delay 0.02
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    """How the server answers. ``reply(messages) -> text`` decides the content."""

    reply: Callable[[list[dict[str, Any]]], str] = lambda msgs: (
        "Let us think about it step by step. What do you notice first?"
    )
    token_delay: float = 0.0
    first_token_delay: float = 0.0
    fail_status: int = 0  # answer every request with this HTTP status
    drop_after: int = -1  # close the connection after this many tokens (no [DONE])
    model: str = "scripted"
    max_model_len: int = 4096
    refuse_fields: tuple[str, ...] = ()  # answer HTTP 400 to a request that has one of these
    requests: list[dict[str, Any]] = field(default_factory=list)


def _tokens(text: str) -> list[str]:
    out, word = [], ""
    for ch in text:
        word += ch
        if ch == " ":
            out.append(word)
            word = ""
    if word:
        out.append(word)
    return out


class _Handler(BaseHTTPRequestHandler):
    """Answers as ``script`` says (``make_handler`` binds a script to a subclass)."""

    protocol_version = "HTTP/1.1"
    script: Script

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _event(self, payload: dict[str, Any], done: bool = False) -> None:
        tail = "data: [DONE]\n\n" if done else ""
        self.wfile.write(f"data: {json.dumps(payload)}\n\n{tail}".encode())
        self.wfile.flush()

    def do_GET(self) -> None:
        if not self.path.rstrip("/").endswith("/models"):
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        model = {
            "id": self.script.model,
            "object": "model",
            "max_model_len": self.script.max_model_len,
        }
        self._json(200, {"object": "list", "data": [model]})

    def _request(self) -> dict[str, Any] | None:
        """The request body, recorded; None when an error was answered instead."""
        script = self.script
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._json(400, {"error": {"message": "invalid JSON"}})
            return None
        script.requests.append(body)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return None
        if script.fail_status:
            message = f"scripted failure {script.fail_status}"
            self._json(script.fail_status, {"error": {"message": message}})
            return None
        refused = [f for f in script.refuse_fields if f in body]
        if refused:
            self._json(400, {"error": {"message": f"unknown field(s) {', '.join(refused)}"}})
            return None
        if body.get("model") not in (script.model, None):
            message = f"The model `{body.get('model')}` does not exist."
            self._json(404, {"error": {"message": message}})
            return None
        return body

    def do_POST(self) -> None:
        body = self._request()
        if body is None:
            return
        text = self.script.reply(body.get("messages", []))
        every = _tokens(text)
        tokens = every[: int(body.get("max_tokens") or 10**9)]
        finish = "length" if len(tokens) < len(every) else "stop"
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(tokens)}
            choice = {"index": 0, "message": message, "finish_reason": finish}
            self._json(200, {"choices": [choice]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self._stream(tokens, finish)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _stream(self, tokens: list[str], finish: str) -> None:
        script = self.script
        time.sleep(script.first_token_delay)
        for i, tok in enumerate(tokens):
            if i == script.drop_after:
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            delta = {"index": 0, "delta": {"content": tok}, "finish_reason": None}
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": script.model,
                "choices": [delta],
            }
            self._event(chunk)
            if script.token_delay:
                time.sleep(script.token_delay)
        final = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
        }
        self._event(final, done=True)


def make_handler(script: Script) -> type[BaseHTTPRequestHandler]:
    """A request handler class that answers as ``script`` says."""
    return type("ScriptedHandler", (_Handler,), {"script": script})


class ScriptedServer:
    """Context manager: ``with ScriptedServer(Script(...)) as srv: srv.base_url``."""

    def __init__(self, script: Script | None = None, host: str = "127.0.0.1", port: int = 0):
        self.script = script or Script()
        self.httpd = ThreadingHTTPServer((host, port), make_handler(self.script))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--token-delay", type=float, default=0.02, help="seconds between tokens")
    p.add_argument("--first-token-delay", type=float, default=0.0)
    p.add_argument("--model", default="scripted")
    args = p.parse_args()
    srv = ScriptedServer(
        Script(
            token_delay=args.token_delay, first_token_delay=args.first_token_delay, model=args.model
        ),
        args.host,
        args.port,
    )
    print(f"serving {srv.base_url}", flush=True)
    srv.httpd.serve_forever()


if __name__ == "__main__":
    main()
