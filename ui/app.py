"""The Gradio app: layout and event wiring for both views, and the FastAPI app around it.

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

from ui import render
from ui.guard import role_of
from ui.handlers import (
    CLASS_OUTPUTS,
    CREATE_OUTPUTS,
    DELETE_OUTPUTS,
    DETAIL_OUTPUTS,
    DOCS_OUTPUTS,
    ITEMS_OUTPUTS,
    NEW_SESSION_OUTPUTS,
    PAGE_OUTPUTS,
    REMOVE_OUTPUTS,
    SESSION_OUTPUTS,
    TURN_OUTPUTS,
    Handlers,
    UIContext,
)

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
LM_GROUP = "lm"  # every event that may run the language model shares this concurrency group


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
    """The Blocks and its components by name (the names the handlers' output lists use)."""
    import gradio as gr

    c: dict[str, Any] = {}
    max_chars = int(getattr(h.ctx.config.tutor, "max_message_chars", 4000))

    def out(*names: str) -> list[Any]:
        return [c[n] for n in names]

    def on(trigger: Any, fn: Any, inputs: list[Any], outputs: list[Any], **kw: Any) -> Any:
        # Every server function is a guarded handler; an unguarded one cannot be wired.
        if role_of(fn) is None:
            raise TypeError(f"{fn!r} has no role check (ui.guard)")
        return trigger(fn, inputs, outputs, **kw)

    with gr.Blocks(title=h.ctx.title, analytics_enabled=False, fill_width=True) as blocks:
        c["header"] = gr.HTML(elem_id="header")

        # ----------------------------------------------------------------- student view
        with gr.Column(visible=False, elem_id="student-view") as c["student_view"]:
            with gr.Tabs():
                with gr.Tab("💬 Tutor", id="tutor"):
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=1, min_width=200):
                            new_btn = gr.Button("+ New session", size="sm", elem_id="new-session")
                            c["sessions"] = gr.Radio(
                                label="Your sessions", choices=[], elem_id="sessions"
                            )
                            # the session the chat shows: what turn handlers act on (checked
                            # on the server to belong to the signed-in learner)
                            c["session_id"] = gr.Textbox(visible=False, elem_id="session-id")
                        with gr.Column(scale=4, min_width=420):
                            c["chat"] = gr.Chatbot(
                                elem_id="chat",
                                height=540,
                                show_label=False,
                                latex_delimiters=render.LATEX_DELIMITERS,
                                sanitize_html=True,
                                feedback_options=None,
                                buttons=["copy"],
                                layout="bubble",
                                placeholder=(
                                    "### Hi! What shall we learn today?\n"
                                    "Ask about your course, bring a problem you are stuck on, "
                                    "or press **Next problem** to practise."
                                ),
                            )
                            with gr.Row(equal_height=False, elem_classes="tool-row"):
                                c["mode"] = gr.Radio(
                                    choices=[
                                        ("Auto", "auto"),
                                        ("Explain", "explain"),
                                        ("Guide me", "guide"),
                                        ("Practice", "practice"),
                                    ],
                                    value="auto",
                                    show_label=False,
                                    elem_id="mode",
                                    scale=5,
                                    container=False,
                                )
                                hint_btn = gr.Button(
                                    "💡 Hint", scale=1, min_width=100, elem_id="hint"
                                )
                            with gr.Row(equal_height=True):
                                c["msg"] = gr.Textbox(
                                    placeholder="Ask a question, or type your answer…  (Enter sends)",
                                    show_label=False,
                                    elem_id="msg",
                                    scale=8,
                                    lines=1,
                                    max_lines=6,
                                    max_length=max_chars,
                                    autofocus=True,
                                    container=False,
                                )
                                send_btn = gr.Button(
                                    "Send", variant="primary", scale=1, min_width=90, elem_id="send"
                                )
                                stop_btn = gr.Button(
                                    "Stop", variant="stop", scale=1, min_width=90, elem_id="stop"
                                )
                        with gr.Column(scale=2, min_width=280, elem_id="practice-card"):
                            gr.Markdown("### 📝 Practice")
                            # the open problem and the feedback on the last answer
                            c["card"] = gr.Markdown(
                                render.PRACTICE_EMPTY,
                                elem_id="card",
                                latex_delimiters=render.LATEX_DELIMITERS,
                                sanitize_html=True,
                            )
                            c["card_answer"] = gr.Textbox(
                                label="Your answer",
                                placeholder="e.g. 3/4, 12 cm, x = 4, B",
                                elem_id="card-answer",
                                max_length=200,
                            )
                            with gr.Row():
                                check_btn = gr.Button("Check", variant="primary", elem_id="check")
                                card_hint_btn = gr.Button("💡 Hint", elem_id="card-hint")
                            next_btn = gr.Button("Next problem →", elem_id="next-problem")
                with gr.Tab("📈 My progress", id="progress") as progress_tab:
                    c["progress"] = gr.HTML(elem_id="progress")
                with gr.Tab("👤 My profile", id="profile"):
                    gr.Markdown(
                        "Tell the tutor about yourself; it adapts its explanations to this.",
                        elem_classes="section-note",
                    )
                    with gr.Row():
                        c["prof_grade"] = gr.Textbox(label="Grade or level", max_length=200)
                        c["prof_language"] = gr.Textbox(label="Language you prefer", max_length=200)
                    c["prof_goals"] = gr.Textbox(label="My goals", lines=2, max_length=2000)
                    c["prof_preferences"] = gr.Textbox(
                        label="How I like to learn",
                        lines=2,
                        max_length=2000,
                        placeholder="e.g. short explanations, lots of examples, pictures in words",
                    )
                    c["prof_interests"] = gr.Textbox(
                        label="Interests (for examples)", max_length=2000
                    )
                    save_profile_btn = gr.Button("Save profile", variant="primary")
                    c["prof_status"] = gr.Markdown()

        # ----------------------------------------------------------------- teacher view
        with gr.Column(visible=False, elem_id="teacher-view") as c["teacher_view"]:
            with gr.Tabs():
                with gr.Tab("📊 Class", id="class") as class_tab:
                    gr.Markdown("### Mastery by learner and skill")
                    c["class_heatmap"] = gr.HTML(elem_id="class-heatmap")
                    gr.Markdown("### At-risk learners")
                    gr.Markdown(
                        "Learners whose predicted success on the next problem is low on a skill "
                        "they have practised.",
                        elem_classes="section-note",
                    )
                    c["class_risk"] = gr.HTML(elem_id="class-risk")
                with gr.Tab("🧑‍🎓 Students", id="students"):
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=2):
                            gr.Markdown("### Learners")
                            c["students_table"] = gr.HTML(elem_id="students-table")
                            with gr.Accordion("Add a student account", open=True):
                                with gr.Row():
                                    c["new_username"] = gr.Textbox(
                                        label="User name", placeholder="e.g. ana.k"
                                    )
                                    c["new_display"] = gr.Textbox(
                                        label="Name the tutor uses", placeholder="e.g. Ana"
                                    )
                                c["new_password"] = gr.Textbox(
                                    label="Password",
                                    type="password",
                                    placeholder="leave empty to generate one",
                                )
                                create_btn = gr.Button("Create account", variant="primary")
                                c["new_status"] = gr.Markdown()
                        with gr.Column(scale=3):
                            c["learner_pick"] = gr.Dropdown(
                                label="Learner", choices=[], elem_id="learner-pick"
                            )
                            c["learner_info"] = gr.HTML(elem_id="learner-info")
                            c["learner_export"] = gr.HTML()
                            c["learner_notes"] = gr.Textbox(
                                label="Teacher notes (the tutor reads them; the student cannot edit them)",
                                lines=2,
                                max_length=2000,
                            )
                            save_notes_btn = gr.Button("Save notes", size="sm")
                            with gr.Accordion("Recent sessions", open=False):
                                c["learner_sessions"] = gr.HTML()
                            with gr.Accordion("Attempts", open=False):
                                c["learner_attempts"] = gr.HTML()
                            with gr.Group(elem_id="danger-zone"):
                                c["delete_confirm"] = gr.Textbox(
                                    label="Delete all of this learner's data (cannot be undone)",
                                    placeholder="type the learner's name to confirm",
                                )
                                delete_btn = gr.Button("Delete learner", variant="stop", size="sm")
                with gr.Tab("📚 Course material", id="docs"):
                    gr.Markdown(
                        "Upload .md, .txt, .pdf, .docx or .html files. Unchanged files are "
                        f"skipped; a changed file replaces its old version. Limit "
                        f"{h.ctx.max_upload_mb:g} MB per file.",
                        elem_classes="section-note",
                    )
                    c["doc_files"] = gr.File(
                        file_count="multiple",
                        file_types=[".md", ".txt", ".pdf", ".docx", ".html", ".htm"],
                        type="filepath",
                        label="Curriculum files",
                        height=150,
                        elem_id="doc-files",
                    )
                    add_docs_btn = gr.Button("Add to course", variant="primary")
                    c["ingest_table"] = gr.HTML(elem_id="ingest-table")
                    gr.Markdown("### Documents in this course")
                    c["docs_table"] = gr.HTML(elem_id="docs-table")
                    with gr.Row():
                        c["doc_pick"] = gr.Dropdown(label="Document", choices=[], scale=4)
                        ask_remove_btn = gr.Button("Remove…", variant="stop", scale=1)
                    with gr.Group(visible=False, elem_id="remove-row") as c["remove_row"]:
                        c["remove_text"] = gr.Markdown()
                        with gr.Row():
                            confirm_remove_btn = gr.Button("Yes, remove it", variant="stop")
                            cancel_remove_btn = gr.Button("Cancel")
                with gr.Tab("📝 Practice items", id="items"):
                    gr.Markdown(
                        "Upload item banks (.yaml, .yml, .json or .jsonl; the format is described "
                        "in tutor/items.py). A bank with an error is not loaded at all; the error "
                        "names the file, line and field.",
                        elem_classes="section-note",
                    )
                    c["item_files"] = gr.File(
                        file_count="multiple",
                        file_types=[".yaml", ".yml", ".json", ".jsonl"],
                        type="filepath",
                        label="Item bank files",
                        height=150,
                    )
                    add_items_btn = gr.Button("Validate and load", variant="primary")
                    c["items_status"] = gr.HTML()
                    gr.Markdown("### Skills and items in this course")
                    c["bank_table"] = gr.HTML(elem_id="bank-table")

        # ----------------------------------------------------------------- wiring
        on(blocks.load, h.page_load, [], out(*PAGE_OUTPUTS), api_name="page_load")

        # Chat turns: one concurrency group for the model; progress shown on the chat only
        # (a spinner on every card field costs the browser ~50 ms before the request leaves).
        lm = {
            "concurrency_limit": lm_limit,
            "concurrency_id": LM_GROUP,
            "show_progress": "minimal",
            "show_progress_on": [c["chat"]],
        }
        turn_outputs = out(*TURN_OUTPUTS)
        turns: list[Any] = []

        def turn(trigger: Any, fn: Any, inputs: list[Any], clear: Any = None, **kw: Any) -> None:
            event = on(trigger, fn, inputs, turn_outputs, **lm, **kw)
            turns.append(event)
            # after the turn, the sessions list (a new session is named after its first message)
            event.then(h.session_list, out("session_id"), out("sessions"), api_visibility="private")
            if clear is not None:
                # empty the box in the browser right away (registered after the turn, so the
                # turn has read the text first): no round trip, no extra output per token
                trigger(None, None, clear, js="() => ''", queue=False)

        turn(c["msg"].submit, h.send, out("msg", "mode", "session_id"), c["msg"], api_name="send")
        turn(
            send_btn.click,
            h.send,
            out("msg", "mode", "session_id"),
            c["msg"],
            api_visibility="private",
        )
        turn(hint_btn.click, h.hint, out("session_id"), api_name="hint")
        turn(card_hint_btn.click, h.hint, out("session_id"), api_visibility="private")
        turn(
            check_btn.click,
            h.check,
            out("card_answer", "session_id"),
            c["card_answer"],
            api_name="check",
        )
        turn(
            c["card_answer"].submit,
            h.check,
            out("card_answer", "session_id"),
            c["card_answer"],
            api_visibility="private",
        )
        turn(next_btn.click, h.next_problem, out("session_id"), api_name="next_problem")
        on(stop_btn.click, h.stop, out("session_id"), out("chat"), api_name="stop", cancels=turns)
        on(
            c["sessions"].input,
            h.open_session,
            out("sessions"),
            out(*SESSION_OUTPUTS),
            api_name="open_session",
        )
        on(new_btn.click, h.new_session, [], out(*NEW_SESSION_OUTPUTS), api_name="new_session")
        on(progress_tab.select, h.my_progress, [], out("progress"), api_name="my_progress")
        on(
            save_profile_btn.click,
            h.save_profile,
            out("prof_grade", "prof_language", "prof_goals", "prof_preferences", "prof_interests"),
            out("prof_status"),
            api_name="save_profile",
        )

        on(class_tab.select, h.class_view, [], out(*CLASS_OUTPUTS), api_name="class_view")
        on(
            create_btn.click,
            h.create_student,
            out("new_username", "new_display", "new_password"),
            out(*CREATE_OUTPUTS),
            api_name="create_student",
        )
        on(
            c["learner_pick"].change,
            h.learner_detail,
            out("learner_pick"),
            out(*DETAIL_OUTPUTS),
            api_name="learner_detail",
        )
        on(
            save_notes_btn.click,
            h.save_notes,
            out("learner_pick", "learner_notes"),
            out("learner_notes"),
            api_name="save_notes",
        )
        on(
            delete_btn.click,
            h.delete_learner,
            out("learner_pick", "delete_confirm"),
            out(*DELETE_OUTPUTS),
            api_name="delete_learner",
        )
        on(
            add_docs_btn.click,
            h.add_documents,
            out("doc_files"),
            out(*DOCS_OUTPUTS),
            api_name="add_documents",
        )
        on(
            ask_remove_btn.click,
            h.ask_remove,
            out("doc_pick"),
            out("remove_row", "remove_text"),
            api_name="ask_remove",
        )
        on(
            cancel_remove_btn.click,
            h.cancel_remove,
            [],
            out("remove_row"),
            api_name="cancel_remove",
        )
        on(
            confirm_remove_btn.click,
            h.remove_document,
            out("doc_pick"),
            out(*REMOVE_OUTPUTS),
            api_name="remove_document",
        )
        on(
            add_items_btn.click,
            h.add_items,
            out("item_files"),
            out(*ITEMS_OUTPUTS),
            api_name="add_items",
        )
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
    app.state.handlers = handlers
    app.state.blocks = blocks
    return app
