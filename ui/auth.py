"""Sign-in for the web app, all in this module: the sign-in page, sessions, sign-out, limits.

- ``GET /login`` shows the sign-in page; ``POST /login`` (form fields ``username`` and
  ``password``, as Gradio's own login and ``gradio_client.Client(url, auth=(user, pw))`` send
  them) checks the password with the learner store (scrypt) and starts a server-side session:
  a random token in an HttpOnly, SameSite=Lax cookie (Secure over https), stored hashed in the
  store with an expiry of ``ui.session_hours``. Browsers get a redirect, API clients JSON.
- ``user_for_request`` is Gradio's ``auth_dependency``: every Gradio route (page config, queue,
  uploads, files, API) answers 401 unless the cookie names a live session. An expired session
  is refused like a missing one; the page script then sends the browser to the sign-in page.
- A wrong password and an unknown user get the same answer after the same delay
  (``ui.login_delay``). Each attempt is counted before the password is checked, per account and
  address together (``ui.login_attempts`` in 15 minutes), per address (3 ×) and per account
  (10 ×); past a limit sign-in is refused (429). ``ui.limiter`` says why, in bounded memory.
  The form is at most ``MAX_FORM_BYTES`` (413 past it, unread).
- ``--demo`` (loopback only): without a session cookie everyone is the one demo student.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from fastapi import Request

from knowledge_base.errors import StoreError
from tutor.errors import NotFoundError, PermissionDeniedError
from ui.limiter import FailureLimiter

if TYPE_CHECKING:
    from tutor.store.protocol import LearnerStoreLike

log = logging.getLogger(__name__)

COOKIE = "tutor_session"
# Not a valid user name (those start with a letter or digit), so no account can be mistaken
# for the demo student.
DEMO_USER = "~demo"
DEMO_LEARNER = "demo"
DEMO_DISPLAY = "Demo student"
KDF_SLOTS = 2  # password checks (scrypt) at once
CACHE_S = 5.0  # how long a checked session token is trusted without reading the store
WRONG = "Wrong user name or password."
MAX_FORM_BYTES = 16 * 1024  # a sign-in form is two short fields; more is refused unread (413)
_TEMPLATE = Path(__file__).with_name("templates") / "login.jinja"
SIGN_IN_FORM = Template(
    """<form method="post" action="/login" autocomplete="on">
    <label for="username">User name</label>
    <input id="username" name="username" value="$username" autocomplete="username" required autofocus>
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
    <button type="submit">Sign in</button>
  </form>"""
)
SIGN_OUT_FORM = """<form method="post" action="/logout">
    <button type="submit" autofocus>Sign out</button>
  </form>"""


@dataclass(frozen=True)
class Principal:
    """Who is asking: resolved on the server for every handler call."""

    username: str
    role: str  # "student" | "teacher"
    learner_id: int | None
    display_name: str
    demo: bool = False

    @property
    def is_teacher(self) -> bool:
        return self.role == "teacher"


class SignIn:
    """Sessions and the sign-in routes for one app (``install`` adds the routes)."""

    def __init__(
        self,
        store: LearnerStoreLike,
        *,
        session_hours: float = 12.0,
        demo: bool = False,
        delay_s: float = 1.0,
        max_failures: int = 10,
        title: str = "Offline Tutor",
    ) -> None:
        self.store = store
        self.session_hours = session_hours
        self.demo = demo
        self.delay_s = delay_s
        self.limiter = FailureLimiter(max_failures)
        self.title = title
        self._demo_learner: int | None = None
        self._cache: dict[str, tuple[str, float]] = {}
        self._kdf_slots: dict[int, asyncio.Semaphore] = {}

    def _slots(self) -> asyncio.Semaphore:
        """The password-check slots of the running event loop (an asyncio semaphore belongs to
        one loop; tests and benchmarks serve the same SignIn from several)."""
        loop = id(asyncio.get_running_loop())
        if loop not in self._kdf_slots:
            self._kdf_slots[loop] = asyncio.Semaphore(KDF_SLOTS)
        return self._kdf_slots[loop]

    # -- who is signed in -------------------------------------------------------------------

    def token(self, request: Any) -> str | None:
        return request.cookies.get(COOKIE) or None

    def user_for_request(self, request: Any) -> str | None:
        """Gradio's ``auth_dependency``: the user name of a live session, else None (401).

        Gradio calls this on its event loop for every request (each queue join and stream), so a
        checked token is remembered for ``CACHE_S`` seconds instead of reading the database each
        time; signing out here forgets it at once, an expiry or a revocation elsewhere (CLI,
        another replica) takes effect within ``CACHE_S``.
        """
        token = self.token(request)
        if not token:
            return DEMO_USER if self.demo else None
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and now - hit[1] < CACHE_S:
            return hit[0]
        user = self.store.auth_session_user(token)
        if user is None:
            self._cache.pop(token, None)
            return None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (user.username, now)
        return user.username

    def forget(self, token: str | None = None) -> None:
        """Drop one checked token from the cache (all of them without ``token``)."""
        if token:
            self._cache.pop(token, None)
        elif token is None:
            self._cache.clear()

    def principal(self, username: str | None) -> Principal:
        """The signed-in user behind a Gradio request's ``username`` (checked on every call)."""
        if not username:
            raise PermissionDeniedError("you are not signed in; sign in again")
        if username == DEMO_USER:
            if not self.demo:
                raise PermissionDeniedError("the demo is not enabled on this server; sign in")
            return Principal(DEMO_USER, "student", self.demo_learner_id(), DEMO_DISPLAY, True)
        try:
            user = self.store.get_user(username)
        except NotFoundError:
            raise PermissionDeniedError(
                "your account no longer exists; ask your teacher, then sign in again"
            ) from None
        name = username
        if user.learner_id is not None:
            try:
                lr = self.store.get_learner(user.learner_id)
                name = lr.display_name or lr.name
            except NotFoundError:
                raise PermissionDeniedError(
                    "your learner record was deleted; ask your teacher"
                ) from None
        return Principal(user.username, user.role, user.learner_id, name)

    def demo_learner_id(self) -> int:
        if self._demo_learner is None:
            lr = self.store.get_or_create_learner(DEMO_LEARNER, display_name=DEMO_DISPLAY)
            self._demo_learner = lr.id
        return self._demo_learner

    # -- routes -----------------------------------------------------------------------------

    def install(self, app: Any) -> None:
        """Add ``/login``, ``/logout`` and the redirect of a signed-out page load to ``app``."""
        from fastapi.responses import HTMLResponse, RedirectResponse
        from starlette.concurrency import run_in_threadpool

        @app.get("/login", include_in_schema=False)
        async def login_page(request: Request, expired: str = "") -> HTMLResponse:
            notice = "Your session has ended. Please sign in again." if expired else ""
            return HTMLResponse(self.page(notice=notice))

        @app.post("/login", include_in_schema=False)
        async def login(request: Request) -> Any:
            return await self._login(request)

        async def sign_out_to(request: Request, where: str) -> Any:
            """Revoke the request's sign-in (if any), drop the cookie, redirect to ``where``."""
            token = self.token(request)
            if token:
                self.forget(token)
                await run_in_threadpool(self.store.revoke_auth_session, token)
            resp = RedirectResponse(where, status_code=303)
            resp.delete_cookie(COOKIE, path="/")
            return resp

        @app.post("/logout", include_in_schema=False)
        async def logout(request: Request) -> Any:
            return await sign_out_to(request, "/login")

        @app.get("/logout", include_in_schema=False)
        async def logout_page(request: Request) -> HTMLResponse:
            # a GET signs no one out (a link or an image on any site could): it shows a button
            # that posts here; the page script posts directly (ui/static/app.js)
            return HTMLResponse(self.page(sign_out=True))

        if self.demo:

            @app.get("/demo", include_in_schema=False)
            async def as_demo(request: Request) -> Any:
                return await sign_out_to(request, "/")

        @app.middleware("http")
        async def signed_out_page_to_login(request: Request, call_next: Any) -> Any:
            # Only the page itself: Gradio's API routes answer 401 on their own.
            if request.method == "GET" and request.url.path == "/":
                user = await run_in_threadpool(self.user_for_request, request)
                if user is None:
                    target = "/login?expired=1" if self.token(request) else "/login"
                    return RedirectResponse(target, status_code=303)
            return await call_next(request)

    async def _login(self, request: Request) -> Any:
        """``POST /login``: check the password (within the failure limits), start a session."""
        from starlette.concurrency import run_in_threadpool

        wants_html = "text/html" in request.headers.get("accept", "")
        form = await _small_form(request)
        if form is None:
            return self._refuse(wants_html, "", 413, "The sign-in form is too large.")
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        address = request.client.host if request.client else ""
        pair, at_address, account = self.limiter.keys_for(username, address)
        keys = (pair, account)
        # the attempt is counted on the account before the password is checked, so parallel
        # guesses cannot pass the limit while the first ones are being checked; the address
        # counts known failures only, so a class behind one address can sign in at once
        wait, stamp = self.limiter.reserve(*keys, check=(at_address,))
        if wait > 0:
            await asyncio.sleep(self.delay_s)
            minutes = max(1, round(wait / 60))
            # ids and addresses at INFO and above, never names (docs/reliability.md)
            log.warning("sign-in refused from %s: too many failures", address)
            log.debug("refused user name: %r", username[:64])
            return self._refuse(
                wants_html,
                username,
                429,
                f"Too many failed sign-ins. Try again in about {minutes} minutes.",
            )
        user = None
        try:
            if username and password and len(username) <= 64:
                # scrypt is CPU-heavy on purpose: a class signing in at once takes turns, so
                # chats already running keep their CPU
                async with self._slots():
                    user = await run_in_threadpool(self.store.authenticate, username, password)
            token = None
            if user is not None:
                token = await run_in_threadpool(
                    self.store.create_auth_session,
                    user.id,
                    hours=self.session_hours,
                    address=address,
                )
        except StoreError as e:  # a full disk, the store file gone: say so, not a bare 500
            self.limiter.release(stamp, *keys)  # not the user's failure
            log.error("sign-in from %s failed: %s", address, e)
            return self._refuse(wants_html, username, 503, f"Cannot sign in now: {e}.")
        if user is None or token is None:
            self.limiter.fail(at_address)
            await asyncio.sleep(self.delay_s)  # the same delay for every kind of failure
            log.info("failed sign-in from %s", address)
            log.debug("failed user name: %r", username[:64])
            return self._refuse(wants_html, username, 401, WRONG)
        self.limiter.release(stamp, *keys)
        self.limiter.clear(keys[0])
        log.info("%s (user %d) signed in from %s", user.role, user.id, address)
        return self._signed_in(request, token, user.username, user.role, wants_html)

    def _refuse(self, wants_html: bool, username: str, status: int, message: str) -> Any:
        """A refused sign-in: the page again with the message for a browser, JSON otherwise."""
        from fastapi.responses import HTMLResponse, JSONResponse

        if wants_html:
            return HTMLResponse(self.page(error=message, username=username), status_code=status)
        return JSONResponse({"detail": message}, status_code=status)

    def _signed_in(
        self, request: Request, token: str, username: str, role: str, wants_html: bool
    ) -> Any:
        """The answer to a good sign-in: a redirect (browser) or JSON, with the session cookie."""
        from fastapi.responses import JSONResponse, RedirectResponse

        resp: Any = (
            RedirectResponse("/", status_code=303)
            if wants_html
            else JSONResponse({"success": True, "user": username, "role": role})
        )
        resp.set_cookie(
            COOKIE,
            token,
            max_age=int(self.session_hours * 3600),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
        return resp

    def page(
        self, *, error: str = "", notice: str = "", username: str = "", sign_out: bool = False
    ) -> str:
        """The sign-in page; with ``sign_out``, the sign-out button instead of the form."""
        from ui.render import esc

        if sign_out:
            return Template(_TEMPLATE.read_text(encoding="utf-8")).substitute(
                title=esc(self.title),
                error="",
                notice="",
                form=SIGN_OUT_FORM,
                sub="Sign out of this browser?",
                demo="",
            )

        demo = (
            '<p class="demo">No account? <a href="/demo">Continue as the demo student</a></p>'
            if self.demo
            else ""
        )
        return Template(_TEMPLATE.read_text(encoding="utf-8")).substitute(
            title=esc(self.title),
            error=f'<div class="msg err" role="alert">{esc(error)}</div>' if error else "",
            notice=f'<div class="msg note">{esc(notice)}</div>' if notice else "",
            form=SIGN_IN_FORM.substitute(username=esc(username[:64])),
            sub="Sign in to continue learning.",
            demo=demo,
        )


async def _small_form(request: Request) -> Any:
    """The request's form, or None when its body is over ``MAX_FORM_BYTES`` (not read further)."""
    from starlette.requests import Request as StarletteRequest

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return await StarletteRequest(request.scope, replay).form()
