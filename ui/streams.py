"""Answer streams belong to the user who started them (issue 16, V12).

Gradio's queue keys a browser's events by a ``session_hash`` the page makes up, and streams them
to whoever asks ``/gradio_api/queue/data?session_hash=…``; the HTTP API keys them by an
``event_id``. Gradio checks only that the asker is signed in, so any signed-in user who learned
another's session hash or event id could read that user's answers.

``StreamGuard`` binds each session hash and event id to the signed-in user who used it first
(``queue/join``, ``call/<api>``) and refuses (403) every later use by another user: joining,
reading the stream, cancelling, the heartbeat, and reading an API call's result. A hash no
one has used yet passes to Gradio, which answers ``session_not_found`` and closes the stream (so
no one can wait on a hash that someone else will use; a replica that did not start an event
answers this way too, docs/operations.md). The map keeps the most recent ``MAX_ENTRIES``.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qs

PREFIX = "/gradio_api"
MAX_ENTRIES = 50_000
MAX_BODY = 8 * 1024 * 1024  # a queue/join body: chat text and file references, never files
REFUSED = b"This stream belongs to another user."


class Owners:
    """Key -> user name, the first user wins, bounded (least recently used go first)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._owner: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, key: str, user: str) -> bool:
        """Bind ``key`` to ``user`` unless another user holds it; whether ``user`` holds it."""
        with self._lock:
            held = self._owner.get(key)
            if held is not None and held != user:
                return False
            self._owner[key] = user
            self._owner.move_to_end(key)
            while len(self._owner) > self.max_entries:
                self._owner.popitem(last=False)
            return True

    def allows(self, key: str, user: str) -> bool:
        """Whether ``user`` may use ``key``: it holds it, or no one does yet."""
        with self._lock:
            return self._owner.get(key, user) == user

    def __len__(self) -> int:
        return len(self._owner)


class StreamGuard:
    """ASGI middleware in front of Gradio's queue routes (see the module doc)."""

    def __init__(self, app: Any, signin: Any) -> None:
        self.app = app
        self.signin = signin
        self.owners = Owners()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        route = path[len(PREFIX) :]
        method = scope.get("method", "GET")
        if method == "POST" and route in ("/queue/join", "/cancel"):
            await self._with_body(scope, receive, send, route)
        elif method == "GET" and route == "/queue/data":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            await self._check(scope, receive, send, "s:" + query.get("session_hash", [""])[0])
        elif method == "GET" and route.startswith("/heartbeat/"):
            await self._check(scope, receive, send, "s:" + route.rsplit("/", 1)[-1])
        elif method == "GET" and route.startswith("/call/") and route.count("/") >= 3:
            await self._check(scope, receive, send, "e:" + route.rstrip("/").rsplit("/", 1)[-1])
        elif method == "POST" and route.startswith("/call/"):
            await self._record_event(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _user(self, scope: Any) -> str | None:
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request

        user: str | None = await run_in_threadpool(self.signin.user_for_request, Request(scope))
        return user

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.responses import Response

        await Response(REFUSED, status_code=403, media_type="text/plain")(scope, receive, send)

    async def _check(self, scope: Any, receive: Any, send: Any, key: str) -> None:
        user = await self._user(scope)
        if user is not None and not self.owners.allows(key, user):
            await self._refuse(scope, receive, send)
            return
        await self.app(scope, receive, send)  # a signed-out request gets Gradio's own 401

    async def _with_body(self, scope: Any, receive: Any, send: Any, route: str) -> None:
        """``queue/join`` claims its session hash; ``cancel`` must hold it."""
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                from starlette.responses import Response

                await Response(b"Request too large.", status_code=413)(scope, receive, send)
                return
        user = await self._user(scope)
        if user is not None:
            try:
                session = str(json.loads(body or b"{}").get("session_hash") or "")
            except (ValueError, AttributeError):
                session = ""
            key = "s:" + session
            ok = (
                self.owners.claim(key, user)
                if route == "/queue/join"
                else self.owners.allows(key, user)
            )
            if session and not ok:
                await self._refuse(scope, receive, send)
                return
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _record_event(self, scope: Any, receive: Any, send: Any) -> None:
        """``POST call/<api>``: the event id in the answer belongs to the caller."""
        user = await self._user(scope)
        chunks: list[bytes] = []
        status = 0

        async def keep(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False) and user is not None:
                    try:
                        event = str(json.loads(b"".join(chunks)).get("event_id") or "")
                    except (ValueError, AttributeError):
                        event = ""
                    if event:
                        self.owners.claim("e:" + event, user)
            await send(message)

        await self.app(scope, receive, keep)
