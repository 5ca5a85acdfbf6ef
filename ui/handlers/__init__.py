"""The web app's handlers: thin functions from a signed-in user and form values to the library.

Every public method is decorated with its role (``ui.guard``) and gets the ``Principal`` as
``p``; learner data always comes from ``p.learner_id``, never from an input. A handler returns
``{component: value}`` for the outputs it updates (the ``*_OUTPUTS`` name lists say which
components an event may update; ``ui.views`` wires them); Gradio leaves the others as they are.

The handlers are grouped by view: ``ui.handlers.student`` (sessions, chat turns, practice,
progress, profile) and ``ui.handlers.teacher`` (class, students, documents, item banks);
``Handlers`` is both, plus the page load that shows the signed-in role's view.
"""

from __future__ import annotations

from typing import Any

from tutor.services import MODES
from ui import render
from ui.auth import Principal
from ui.guard import signed_in
from ui.handlers.base import UIContext, _gr
from ui.handlers.student import (
    BUTTON_MESSAGES,
    HINT_MESSAGE,
    MAX_SESSIONS_LISTED,
    NEW_SESSION_OUTPUTS,
    NEXT_MESSAGE,
    PROFILE_FIELDS,
    SESSION_OUTPUTS,
    STREAM_EVERY,
    STUDENT_PAGE_OUTPUTS,
    TURN_OUTPUTS,
    StudentHandlers,
    Turns,
)
from ui.handlers.teacher import (
    BANK_SUFFIXES,
    CLASS_OUTPUTS,
    CREATE_OUTPUTS,
    DELETE_OUTPUTS,
    DETAIL_OUTPUTS,
    DOC_SUFFIXES,
    DOCS_OUTPUTS,
    ITEMS_OUTPUTS,
    PICK_LEARNER,
    REMOVE_OUTPUTS,
    TEACHER_PAGE_OUTPUTS,
    TeacherHandlers,
)

__all__ = [
    "BANK_SUFFIXES",
    "BUTTON_MESSAGES",
    "CLASS_OUTPUTS",
    "CREATE_OUTPUTS",
    "DELETE_OUTPUTS",
    "DETAIL_OUTPUTS",
    "DOCS_OUTPUTS",
    "DOC_SUFFIXES",
    "HINT_MESSAGE",
    "ITEMS_OUTPUTS",
    "MAX_SESSIONS_LISTED",
    "MODES",
    "NEW_SESSION_OUTPUTS",
    "NEXT_MESSAGE",
    "PAGE_OUTPUTS",
    "PICK_LEARNER",
    "PROFILE_FIELDS",
    "REMOVE_OUTPUTS",
    "SESSION_OUTPUTS",
    "STREAM_EVERY",
    "TURN_OUTPUTS",
    "Handlers",
    "Turns",
    "UIContext",
]

# What the page load may update: the header, which view shows, and that view's contents.
PAGE_OUTPUTS = (
    "header",
    "student_view",
    "teacher_view",
    *STUDENT_PAGE_OUTPUTS,
    *TEACHER_PAGE_OUTPUTS,
)


class Handlers(StudentHandlers, TeacherHandlers):
    """All handlers of one app. ``signin`` is what ``ui.guard`` checks every call against."""

    @signed_in
    def page_load(self, p: Principal) -> dict[Any, Any]:
        """The page for whoever signed in: their view, filled; the other view stays hidden."""
        gr = _gr()
        view = self._teacher_page() if p.is_teacher else self._student_page(p)
        return {
            **self._out(
                header=self._header(p),
                student_view=gr.update(visible=not p.is_teacher),
                teacher_view=gr.update(visible=p.is_teacher),
            ),
            **view,
        }

    def _header(self, p: Principal) -> str:
        esc = render.esc
        initial = esc((p.display_name or p.username or "?")[:1].upper())
        if p.demo:
            account = (
                '<span class="role">demo mode</span>'
                '<a class="hdr-link" href="/login">Teacher sign-in</a>'
            )
        else:
            account = f'<span class="role">{esc(p.role)}</span><a class="hdr-link" href="/logout">Sign out</a>'
        model = (
            f'<span class="hdr-model">{esc(self.ctx.model_name)}</span>'
            if self.ctx.model_name
            else ""
        )
        return (
            '<div class="topbar"><div class="brand"><span class="logo">🎓</span>'
            f"<span>{esc(self.ctx.title)}</span></div>"
            f'<div class="course">Course <b>{esc(self.collection)}</b>{model}</div>'
            f'<div class="who"><span class="avatar">{initial}</span>'
            f'<span class="name">{esc(p.display_name)}</span>{account}</div></div>'
        )
