"""What every handler group shares: the per-process context, the components the handlers
update, and small helpers (Gradio imported late, uploaded file paths).

A handler returns ``{component: value}`` for the outputs it updates (``HandlerBase._out``);
Gradio leaves the event's other outputs as they are. ``ui.app.build_blocks`` binds the
components (``HandlerBase.components``) when it builds the page, so handlers work only after that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ui.auth import SignIn

if TYPE_CHECKING:
    from knowledge_base import KnowledgeBase
    from tutor.agent import TutorAgent
    from tutor.config import Config
    from tutor.store.protocol import LearnerStoreLike


def _gr() -> Any:
    import gradio as gr

    return gr


def _skip() -> Any:
    return _gr().skip()


@dataclass
class UIContext:
    """What the handlers work with: built once per server process and shared."""

    config: Config
    store: LearnerStoreLike
    agent: TutorAgent
    kb: KnowledgeBase | None
    signin: SignIn
    collection: str = "default"
    model_name: str = ""
    max_upload_mb: float = 50.0
    title: str = "Offline Tutor"
    extra: dict[str, Any] = field(default_factory=dict)


class HandlerBase:
    """The context, the bound components and the helpers both views' handlers use."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx
        self.signin = ctx.signin
        self.store = ctx.store
        self.agent = ctx.agent
        self.kb = ctx.kb
        self.collection = ctx.collection
        # the page's components by name, set by ui.app.build_blocks: what ``_out`` keys by
        self.components: dict[str, Any] = {}

    def _out(self, **values: Any) -> dict[Any, Any]:
        """``{component: value}`` for the named outputs (Gradio skips the event's others)."""
        try:
            return {self.components[name]: value for name, value in values.items()}
        except KeyError as e:
            raise RuntimeError(
                f"no component {e.args[0]!r}: build the page (ui.app.build_blocks) before "
                "calling the handlers"
            ) from None

    def _skill_name(self, skill: str) -> str:
        skills = self.store.skills(self.collection)
        return skills[skill].name if skill in skills else skill


def _paths(files: Any) -> list[str]:
    """The uploaded files' paths, each checked to lie in the upload folder (``ui.uploads``).

    Gradio checks this itself only in an app it launched, not in one mounted as ours is, so a
    crafted request could name any server file (issue 16, V3)."""
    from ui.uploads import check_uploaded

    if not files:
        return []
    items = files if isinstance(files, (list, tuple)) else [files]
    out = []
    for f in items:
        path = f if isinstance(f, str) else getattr(f, "name", None) or getattr(f, "path", None)
        if path:
            out.append(check_uploaded(str(path)))
    return out


def _upload_name(path: str) -> str:
    """The name the user gave the file (Gradio keeps it as the last path component)."""
    return Path(path).name
