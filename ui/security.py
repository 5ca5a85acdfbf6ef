"""The web app's outer wall: which origins may talk to it, and the headers every answer carries.

``SecurityMiddleware`` wraps the whole ASGI app (sign-in routes, export, Gradio):

- **Origins.** A request that names an ``Origin`` other than the app's own (the ``Host`` it
  was sent to) or one in ``ui.allowed_origins`` (a reverse proxy's public address) is refused
  with 403 before any route runs, and so is a state-changing request that a browser marks
  ``Sec-Fetch-Site: cross-site``. So a page on another port of the same machine cannot act as
  the signed-in teacher, and a cross-site form cannot sign a browser into someone else's account
  (login CSRF). No answer carries ``Access-Control-Allow-*``: Gradio's own CORS layer allows
  any localhost origin with credentials, and those headers are dropped here.
- **Headers.** Every answer gets a Content-Security-Policy (scripts, styles, images and
  connections from this origin only, plus ``data:``/``blob:`` images: a model reply with a
  remote Markdown image makes the browser fetch nothing; no framing; forms post only here),
  ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and
  ``Referrer-Policy: same-origin`` (not ``no-referrer``: with it Chromium sends
  ``Origin: null`` on the page's own form posts).

Clients that send no ``Origin`` (``gradio_client``, curl, scripts) are not browsers acting for
another site, so they pass; they need the session cookie like everyone else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

CSP = "; ".join(
    [
        "default-src 'self'",
        # Gradio's page and ours carry inline scripts and styles, and Gradio turns the page's
        # JavaScript hooks into functions from strings (without 'unsafe-eval' the page is blank)
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "media-src 'self' data: blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REFUSED = b"Cross-origin request refused: this app only answers pages it served itself."


def normal_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, default ports dropped; "" when not an origin."""
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    try:
        port = parts.port
    except ValueError:
        return ""
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def same_origin(origin: str, host: str, allowed: Iterable[str] = ()) -> bool:
    """Whether a browser's ``Origin`` is this app: the ``Host`` the request was sent to (in the
    origin's scheme: a TLS proxy in front speaks https, the app http), or one of ``allowed``."""
    o = normal_origin(origin)
    if not o:
        return False  # "null" (sandboxed frames, file pages) and anything unparsable
    if o in {normal_origin(a) for a in allowed}:
        return True
    scheme = o.split("://", 1)[0]
    host = host.strip().lower()
    if not host or normal_origin(f"{scheme}://{host}") == "":
        return False
    if normal_origin(f"{scheme}://{host}") == o:
        return True
    # a proxy that passes `Host $host` (nginx, docs/operations.md) drops the port: then the
    # host name decides
    sent = urlsplit(f"//{host}")
    return sent.port is None and sent.hostname == urlsplit(o).hostname


class SecurityMiddleware:
    """Refuse foreign origins, drop CORS grants, add the security headers (see the module doc)."""

    def __init__(self, app: Any, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = tuple(allowed_origins)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers

        headers = Headers(scope=scope)
        if self._foreign(scope, headers):
            await self._refuse(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-allow-")
                ]
                present = {k.lower() for k, _ in kept}
                kept += [
                    (k.encode(), v.encode())
                    for k, v in HEADERS.items()
                    if k.encode() not in present
                ]
                message = {**message, "headers": kept}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _foreign(self, scope: Any, headers: Any) -> bool:
        origin = headers.get("origin")
        if origin is not None:
            return not same_origin(origin, headers.get("host", ""), self.allowed)
        method = scope.get("method", "GET")
        return method not in SAFE_METHODS and headers.get("sec-fetch-site") == "cross-site"

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(REFUSED)).encode()),
                    *((k.encode(), v.encode()) for k, v in HEADERS.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": REFUSED})
