"""The Gradio app: the page (header and both views, ``ui.views``), and the FastAPI app around it.

``create_app(ctx)`` returns an ASGI app: the sign-in routes (``ui.auth``), the learner export
route, and the Gradio Blocks mounted at ``/`` with ``auth_dependency`` so every Gradio route
needs a live session. Both views live in one Blocks; the page load shows the one for the
signed-in role, and every handler checks the role again on the server (``ui.guard``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fastapi import Request

from ui.handlers import PAGE_OUTPUTS, Handlers, UIContext
from ui.views import Wiring
from ui.views import student as student_view
from ui.views import teacher as teacher_view
from ui.views.student import LM_GROUP

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
__all__ = ["LM_GROUP", "build_blocks", "create_app", "lm_concurrency"]


def _theme() -> Any:
    import gradio as gr

    # Local fonts only: the app must not reach for a font CDN on an offline machine.
    return gr.themes.Soft(
        primary_hue="indigo",
        secondary_hue="sky",
        neutral_hue="slate",
        font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Liberation Sans", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Liberation Mono", "monospace"],
    )


def build_blocks(h: Handlers, lm_limit: int) -> tuple[Any, dict[str, Any]]:
    """The Blocks and its components by name (the names the handlers' output lists use).

    Binds the components to ``h`` (handlers return ``{component: value}``)."""
    import gradio as gr

    c: dict[str, Any] = {}
    w = Wiring(c)
    with gr.Blocks(title=h.ctx.title, analytics_enabled=False, fill_width=True) as blocks:
        c["header"] = gr.HTML(elem_id="header")
        student_view.layout(h, c)
        teacher_view.layout(h, c)
        w.on(blocks.load, h.page_load, [], w.out(*PAGE_OUTPUTS), api_name="page_load")
        student_view.wire(h, c, w, lm_limit)
        teacher_view.wire(h, c, w)
    h.components = c
    return blocks, c


def lm_concurrency(config: Any) -> int:
    """``ui.concurrency_limit``, or automatic: 1 for the in-process model, 32 for a server
    (vLLM and the like batch many requests; 20 students at once measured in docs/benchmarks.md)."""
    limit = int(config.ui.concurrency_limit)
    if limit > 0:
        return limit
    return 32 if config.lm.backend == "openai" else 1


def create_app(ctx: UIContext) -> Any:
    """The ASGI app: sign-in routes, the export route and the Gradio app at ``/``."""
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    from tutor.errors import NotFoundError, PermissionDeniedError
    from ui.guard import authorize
    from ui.security import SecurityMiddleware
    from ui.streams import StreamGuard
    from ui.uploads import UploadGuard

    handlers = Handlers(ctx)
    blocks, _ = build_blocks(handlers, lm_concurrency(ctx.config))
    blocks.queue(default_concurrency_limit=8)

    app = FastAPI(title=ctx.title, docs_url=None, redoc_url=None, openapi_url=None)
    ctx.signin.install(app)

    @app.get("/export/learner/{learner_id}", include_in_schema=False)
    async def export_learner(learner_id: int, request: Request) -> Response:
        username = await run_in_threadpool(ctx.signin.user_for_request, request)
        try:
            p = authorize(ctx.signin, "teacher", username)
            data = await run_in_threadpool(handlers.export_learner, p, learner_id)
        except PermissionDeniedError as e:
            status = 401 if username is None else 403
            return JSONResponse({"detail": str(e)}, status_code=status)
        except NotFoundError as e:
            return JSONResponse({"detail": str(e)}, status_code=404)
        name = data["learner"]["name"]
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        return Response(
            json.dumps(data, indent=2, ensure_ascii=False),
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="learner-{safe}.json"',
                "Cache-Control": "no-store",
            },
        )

    css = (STATIC / "style.css").read_text(encoding="utf-8")
    js = (STATIC / "app.js").read_text(encoding="utf-8")
    gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth_dependency=ctx.signin.user_for_request,
        max_file_size=f"{ctx.max_upload_mb:g}mb",
        ssr_mode=False,
        footer_links=[],
        run_history=False,
        mcp_server=False,
        show_error=True,
        theme=_theme(),
        css=css,
        head=f"<script>{js}</script>",
    )
    # Gradio checks that a request's file paths lie in its upload folder only in an app it
    # launched (`has_launched`), not in a mounted one: without this a crafted request could make
    # a handler read any server file (issue 16, V3; ui.uploads.check_uploaded checks again)
    blocks.has_launched = True
    # uploads: teachers only, within a quota and a cap, old files swept (ui.uploads)
    app.add_middleware(UploadGuard, signin=ctx.signin, max_upload_mb=ctx.max_upload_mb)
    # answer streams: each session hash and event id belongs to the user who started it
    app.add_middleware(StreamGuard, signin=ctx.signin)
    # outermost: foreign origins refused, CORS grants dropped, security headers (ui.security)
    app.add_middleware(SecurityMiddleware, allowed_origins=ctx.config.ui.allowed_origins)
    app.state.handlers = handlers
    app.state.blocks = blocks
    return app
