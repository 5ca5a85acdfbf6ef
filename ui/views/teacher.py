"""The teacher view: the class overview, students (accounts, details, notes, deletion), course
documents and practice-item banks.

``layout`` builds the components (inside the page's Blocks), ``wire`` connects them to the
teacher handlers.
"""

from __future__ import annotations

from typing import Any

from ui.handlers import (
    CLASS_OUTPUTS,
    CREATE_OUTPUTS,
    DELETE_OUTPUTS,
    DETAIL_OUTPUTS,
    DOCS_OUTPUTS,
    ITEMS_OUTPUTS,
    REMOVE_OUTPUTS,
)
from ui.views import Wiring


def layout(h: Any, c: dict[str, Any]) -> None:
    """The teacher view's column (hidden until the page load shows it) and its tabs."""
    import gradio as gr

    with gr.Column(visible=False, elem_id="teacher-view") as c["teacher_view"]:
        with gr.Tabs():
            with gr.Tab("📊 Class", id="class") as c["class_tab"]:
                _class_tab(c)
            with gr.Tab("🧑‍🎓 Students", id="students"):
                with gr.Row(equal_height=False):
                    _accounts_column(c)
                    _learner_column(c)
            with gr.Tab("📚 Course material", id="docs"):
                _docs_tab(c, h.ctx.max_upload_mb)
            with gr.Tab("📝 Practice items", id="items"):
                _items_tab(c)


def _class_tab(c: dict[str, Any]) -> None:
    import gradio as gr

    gr.Markdown("### Mastery by learner and skill")
    c["class_heatmap"] = gr.HTML(elem_id="class-heatmap")
    gr.Markdown("### At-risk learners")
    gr.Markdown(
        "Learners whose predicted success on the next problem is low on a skill "
        "they have practised.",
        elem_classes="section-note",
    )
    c["class_risk"] = gr.HTML(elem_id="class-risk")


def _accounts_column(c: dict[str, Any]) -> None:
    import gradio as gr

    with gr.Column(scale=2):
        gr.Markdown("### Learners")
        c["students_table"] = gr.HTML(elem_id="students-table")
        with gr.Accordion("Add a student account", open=True):
            with gr.Row():
                c["new_username"] = gr.Textbox(label="User name", placeholder="e.g. ana.k")
                c["new_display"] = gr.Textbox(label="Name the tutor uses", placeholder="e.g. Ana")
            c["new_password"] = gr.Textbox(
                label="Password",
                type="password",
                placeholder="leave empty to generate one",
            )
            c["create_btn"] = gr.Button("Create account", variant="primary")
            c["new_status"] = gr.Markdown()


def _learner_column(c: dict[str, Any]) -> None:
    import gradio as gr

    with gr.Column(scale=3):
        c["learner_pick"] = gr.Dropdown(label="Learner", choices=[], elem_id="learner-pick")
        c["learner_info"] = gr.HTML(elem_id="learner-info")
        c["learner_export"] = gr.HTML()
        c["learner_notes"] = gr.Textbox(
            label="Teacher notes (the tutor reads them; the student cannot edit them)",
            lines=2,
            max_length=2000,
        )
        c["save_notes_btn"] = gr.Button("Save notes", size="sm")
        with gr.Accordion("Recent sessions", open=False):
            c["learner_sessions"] = gr.HTML()
        with gr.Accordion("Attempts", open=False):
            c["learner_attempts"] = gr.HTML()
        with gr.Group(elem_id="danger-zone"):
            c["delete_confirm"] = gr.Textbox(
                label="Delete all of this learner's data (cannot be undone)",
                placeholder="type the learner's name, as shown above, to confirm",
            )
            c["delete_btn"] = gr.Button("Delete learner", variant="stop", size="sm")


def _docs_tab(c: dict[str, Any], max_upload_mb: float) -> None:
    import gradio as gr

    gr.Markdown(
        "Upload .md, .txt, .pdf, .docx or .html files. Unchanged files are "
        f"skipped; a changed file replaces its old version. Limit "
        f"{max_upload_mb:g} MB per file.",
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
    c["add_docs_btn"] = gr.Button("Add to course", variant="primary")
    c["ingest_table"] = gr.HTML(elem_id="ingest-table")
    gr.Markdown("### Documents in this course")
    c["docs_table"] = gr.HTML(elem_id="docs-table")
    with gr.Row():
        c["doc_pick"] = gr.Dropdown(label="Document", choices=[], scale=4)
        c["ask_remove_btn"] = gr.Button("Remove…", variant="stop", scale=1)
    with gr.Group(visible=False, elem_id="remove-row") as c["remove_row"]:
        c["remove_text"] = gr.Markdown()
        with gr.Row():
            c["confirm_remove_btn"] = gr.Button("Yes, remove it", variant="stop")
            c["cancel_remove_btn"] = gr.Button("Cancel")


def _items_tab(c: dict[str, Any]) -> None:
    import gradio as gr

    gr.Markdown(
        "Upload item banks (.yaml, .yml, .json or .jsonl; the format is described "
        "in tutor/items/__init__.py). A bank with an error is not loaded at all; the error "
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
    c["add_items_btn"] = gr.Button("Validate and load", variant="primary")
    c["items_status"] = gr.HTML()
    gr.Markdown("### Skills and items in this course")
    c["bank_table"] = gr.HTML(elem_id="bank-table")


# (component.event, handler, input names, output names, api name): the teacher view's events,
# in the order the app has always registered them
EVENTS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], str], ...] = (
    ("class_tab.select", "class_view", (), CLASS_OUTPUTS, "class_view"),
    ("create_btn.click", "create_student", ("new_username", "new_display", "new_password"), CREATE_OUTPUTS, "create_student"),
    ("learner_pick.change", "learner_detail", ("learner_pick",), DETAIL_OUTPUTS, "learner_detail"),
    ("save_notes_btn.click", "save_notes", ("learner_pick", "learner_notes"), ("learner_notes",), "save_notes"),
    ("delete_btn.click", "delete_learner", ("learner_pick", "delete_confirm"), DELETE_OUTPUTS, "delete_learner"),
    ("add_docs_btn.click", "add_documents", ("doc_files",), DOCS_OUTPUTS, "add_documents"),
    ("ask_remove_btn.click", "ask_remove", ("doc_pick",), ("remove_row", "remove_text"), "ask_remove"),
    ("cancel_remove_btn.click", "cancel_remove", (), ("remove_row",), "cancel_remove"),
    ("confirm_remove_btn.click", "remove_document", ("doc_pick",), REMOVE_OUTPUTS, "remove_document"),
    ("add_items_btn.click", "add_items", ("item_files",), ITEMS_OUTPUTS, "add_items"),
)  # fmt: skip


def wire(h: Any, c: dict[str, Any], w: Wiring) -> None:
    """Connect the teacher view's events (``EVENTS``) to the teacher handlers."""
    for source, handler, inputs, outputs, api_name in EVENTS:
        name, event = source.split(".")
        trigger = getattr(c[name], event)
        w.on(trigger, getattr(h, handler), w.out(*inputs), w.out(*outputs), api_name=api_name)
