"""Role checks for every handler, in one place, and the one boundary where errors become messages.

A handler is a method ``fn(self, p, *inputs)`` decorated with ``@student``, ``@teacher`` or
``@signed_in``. The wrapper Gradio sees is ``fn(*inputs, request)``: Gradio passes the request
(its ``username`` comes from the sign-in cookie, see ``ui.auth``), the wrapper resolves the
``Principal`` on the server, refuses a wrong role, and calls the method with it. Learner data is
always taken from the principal, never from an input, so a student can only reach their own.

Library errors (``TutorError``) become one-line ``gr.Error`` messages; anything unexpected is
logged with its traceback and shown as a short apology, never as a stack trace.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from tutor.errors import PermissionDeniedError, TutorError

log = logging.getLogger(__name__)

ROLE_ATTR = "__tutor_role__"
ROLES = ("student", "teacher", "signed_in")
F = TypeVar("F", bound=Callable[..., Any])
UNEXPECTED = "Something went wrong on the server; it was logged. Please try again."


def user_message(err: BaseException) -> str:
    """A library error as a sentence for the UI (first letter up, one line)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text[0].upper() + text[1:]


def _as_gr_error(err: BaseException) -> Exception:
    import gradio as gr

    if isinstance(err, gr.Error):
        return err
    if isinstance(err, TutorError):
        # gr.Error renders its message as HTML: escape it (it may quote user input)
        return gr.Error(
            html.escape(user_message(err), quote=False), title="Sorry", print_exception=False
        )
    log.error("unexpected error in a handler", exc_info=err)
    return gr.Error(UNEXPECTED, title="Error", print_exception=False)


def _split_request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[Any], Any]:
    import gradio as gr

    request = kwargs.pop("request", None)
    rest = []
    for a in args:
        if request is None and isinstance(a, gr.Request):
            request = a
        else:
            rest.append(a)
    return rest, request


def authorize(signin: Any, role: str, username: str | None) -> Any:
    """The ``Principal`` behind ``username`` when it has ``role``; else PermissionDeniedError."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    p = signin.principal(username)
    if role == "teacher" and p.role != "teacher":
        raise PermissionDeniedError("this is for teachers only")
    if role == "student" and (p.role != "student" or p.learner_id is None):
        raise PermissionDeniedError("this is for students only")
    return p


def _authorize(owner: Any, role: str, request: Any) -> Any:
    return authorize(owner.signin, role, getattr(request, "username", None) if request else None)


def _guard(role: str) -> Callable[[F], F]:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def deco(fn: F) -> F:
        import gradio as gr

        params = list(inspect.signature(fn).parameters.values())
        if len(params) < 2 or params[0].name != "self" or params[1].name != "p":
            raise TypeError(f"{fn.__name__}: a handler is fn(self, p, *inputs)")
        shown = [params[0], *params[2:]]
        if not any(q.name == "request" for q in shown):
            shown.append(
                inspect.Parameter(
                    "request",
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=None,
                    annotation=gr.Request,
                )
            )

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                rest, request = _split_request(args, kwargs)
                try:
                    p = _authorize(self, role, request)
                    yield from fn(self, p, *rest, **kwargs)
                except Exception as e:
                    raise _as_gr_error(e) from None

        else:

            @functools.wraps(fn)
            def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                rest, request = _split_request(args, kwargs)
                try:
                    p = _authorize(self, role, request)
                    return fn(self, p, *rest, **kwargs)
                except Exception as e:
                    raise _as_gr_error(e) from None

        wrapper.__signature__ = inspect.Signature(shown)  # type: ignore[attr-defined]
        # Gradio finds the request parameter by its type hint.
        wrapper.__annotations__ = {"request": gr.Request}
        setattr(wrapper, ROLE_ATTR, role)
        return wrapper  # type: ignore[return-value]

    return deco


student = _guard("student")
teacher = _guard("teacher")
signed_in = _guard("signed_in")


def role_of(fn: Any) -> str | None:
    """The role a (bound) handler requires, or None when it has no check."""
    return getattr(getattr(fn, "__func__", fn), ROLE_ATTR, None)
