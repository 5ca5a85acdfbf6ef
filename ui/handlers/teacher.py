"""The teacher view's handlers: the class overview, student accounts and learner details,
course documents and item banks."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from tutor import progress as prog
from tutor.errors import InputError, NotFoundError
from tutor.items import BANK_SUFFIXES, ItemBankError
from tutor.services import add_item_bank, create_account, generate_password
from ui import render
from ui.auth import Principal
from ui.guard import teacher
from ui.handlers.base import HandlerBase, _gr, _paths, _upload_name
from ui.uploads import discard_uploads

log = logging.getLogger(__name__)

DOC_SUFFIXES = (".md", ".markdown", ".txt", ".text", ".pdf", ".docx", ".html", ".htm", ".xhtml")
PICK_LEARNER = (
    '<div class="empty">Pick a learner to see their profile, progress and sessions.</div>'
)

# The components each teacher event updates (``ui.views.teacher`` wires them in this order).
CLASS_OUTPUTS = ("class_heatmap", "class_risk")
CREATE_OUTPUTS = (
    "new_status",
    "students_table",
    "learner_pick",
    "new_username",
    "new_display",
    "new_password",
)
DETAIL_OUTPUTS = (
    "learner_info",
    "learner_notes",
    "learner_sessions",
    "learner_attempts",
    "learner_export",
    "delete_confirm",
)
DELETE_OUTPUTS = ("students_table", "learner_pick", *DETAIL_OUTPUTS, *CLASS_OUTPUTS)
DOCS_OUTPUTS = ("ingest_table", "docs_table", "doc_pick", "doc_files")
REMOVE_OUTPUTS = ("docs_table", "doc_pick", "remove_row", "remove_text")
ITEMS_OUTPUTS = ("items_status", "bank_table", "item_files")
# what the page load fills in the teacher view
TEACHER_PAGE_OUTPUTS = (
    *CLASS_OUTPUTS,
    "students_table",
    "learner_pick",
    "docs_table",
    "doc_pick",
    "bank_table",
)


class TeacherHandlers(HandlerBase):
    """The teacher's handlers (every one checks the teacher role, ``ui.guard``)."""

    # ===================================================================== teacher: class

    def _class_outputs(self) -> dict[Any, Any]:
        ov = prog.class_overview(self.store, self.collection)
        note = f'<p class="risk-predictor">Predicted success by {render.esc(ov.predictor)}.</p>'
        return self._out(class_heatmap=render.heatmap(ov), class_risk=note + render.at_risk(ov))

    @teacher
    def class_view(self, p: Principal) -> dict[Any, Any]:
        return self._class_outputs()

    def _teacher_page(self) -> dict[Any, Any]:
        """``TEACHER_PAGE_OUTPUTS``: the class, the learners, the documents and the bank."""
        return {
            **self._class_outputs(),
            **self._out(
                students_table=self._students_table(),
                learner_pick=_gr().update(choices=self._learner_choices(), value=None),
                bank_table=self._bank_table(),
            ),
            **self._docs_outputs(),
        }

    # ===================================================================== teacher: students

    def _students_table(self) -> str:
        accounts: dict[int, str] = {}
        for u in self.store.list_users():
            if u.learner_id is not None:
                accounts[u.learner_id] = u.username
        rows = []
        for s in self.store.list_learners():
            lr = s.learner
            rows.append(
                [
                    accounts.get(lr.id, "—"),
                    lr.display_name or lr.name,
                    s.n_sessions,
                    s.n_attempts,
                    render.when(s.last_active_at),
                ]
            )
        return render.table(render.STUDENT_HEADERS, rows, empty="No learners yet.")

    def _learner_choices(self) -> list[tuple[str, int]]:
        return [
            (
                f"{s.learner.display_name} ({s.learner.name})"
                if s.learner.display_name
                else s.learner.name,
                s.learner.id,
            )
            for s in self.store.list_learners()
        ]

    @teacher
    def create_student(
        self, p: Principal, username: str, display_name: str, password: str
    ) -> dict[Any, Any]:
        gr = _gr()
        username = (username or "").strip()
        display_name = (display_name or "").strip()
        generated = not password
        if generated:
            password = generate_password()
        user, learner = create_account(
            self.store, username, password, role="student", display_name=display_name
        )
        assert learner is not None  # a student account is linked to its learner
        log.info(
            "teacher %s created a student account (user %d, learner %d)",
            p.username,
            user.id,
            learner.id,
        )
        status = f"✅ Created the student account **{render.esc(username)}**."
        if generated:
            status += (
                f" Password: `{password}` — give it to the student now; it is not shown again."
            )
        return self._out(
            new_status=status,
            students_table=self._students_table(),
            learner_pick=gr.update(choices=self._learner_choices()),
            new_username="",
            new_display="",
            new_password="",
        )

    def _learner(self, learner_id: Any) -> Any:
        if learner_id in (None, ""):
            raise InputError("pick a learner first")
        try:
            return self.store.get_learner(int(learner_id))
        except (TypeError, ValueError):
            raise InputError(f"{learner_id!r} is not a learner id") from None

    @teacher
    def learner_detail(self, p: Principal, learner_id: Any) -> dict[Any, Any]:
        gr = _gr()
        if learner_id in (None, ""):
            return self._no_learner_detail()
        lr = self._learner(learner_id)
        profile = self.store.get_profile(lr.id)
        accounts = [u.username for u in self.store.list_users() if u.learner_id == lr.id]
        fields = [
            ("Account", ", ".join(accounts) or "none (learner only)"),
            ("Grade / level", profile.grade_level),
            ("Language", profile.language),
            ("Goals", profile.goals),
            ("Preferences", profile.preferences),
            ("Interests", profile.interests),
        ]
        none = '<span class="muted">—</span>'
        dl = "".join(
            f"<dt>{render.esc(k)}</dt><dd>{render.esc(v) if v else none}</dd>" for k, v in fields
        )
        rows = prog.learner_progress(self.store, lr.id, self.collection)
        info = (
            f'<div class="learner-card"><h3>{render.esc(lr.display_name or lr.name)}</h3>'
            f'<dl class="profile">{dl}</dl>{render.progress_chart(rows)}</div>'
        )
        sessions = []
        for s in sorted(
            self.store.list_sessions(lr.id), key=lambda s: s.last_active_at, reverse=True
        )[:20]:
            msgs = self.store.messages(s.id, learner_id=lr.id)
            first = next((m.content for m in msgs if m.role == "user"), "")
            sessions.append(
                [
                    render.when(s.started_at),
                    render.when(s.last_active_at),
                    len(msgs),
                    render.message_snippet(first, 60),
                ]
            )
        attempts = [
            [
                render.when(a.created_at),
                a.item_id,
                ", ".join(self._skill_name(s) for s in a.skills),
                render.message_snippet(a.response, 40),
                "✅ correct" if a.correct else f"✗ {a.code}",
                a.hint_level,
            ]
            for a in reversed(self.store.attempts(lr.id)[-50:])
        ]
        export = f'<a class="tutor-btn" href="/export/learner/{lr.id}" download>⬇ Export all data (JSON)</a>'
        return self._out(
            learner_info=info,
            learner_notes=profile.teacher_notes,
            learner_sessions=render.table(
                render.SESSION_HEADERS, sessions, empty="No sessions yet."
            ),
            learner_attempts=render.table(
                render.ATTEMPT_HEADERS, attempts, empty="No attempts yet."
            ),
            learner_export=export,
            delete_confirm=gr.update(value="", placeholder=f"type {lr.name} to confirm"),
        )

    def _no_learner_detail(self) -> dict[Any, Any]:
        """``DETAIL_OUTPUTS`` while no learner is picked: the hint, the other panels empty."""
        empty = dict.fromkeys(DETAIL_OUTPUTS, "")
        return self._out(**{**empty, "learner_info": PICK_LEARNER})

    @teacher
    def save_notes(self, p: Principal, learner_id: Any, notes: str) -> str:
        lr = self._learner(learner_id)
        self.store.update_profile(lr.id, {"teacher_notes": notes or ""}, editor="teacher")
        _gr().Info(f"Notes saved for {render.esc(lr.display_name or lr.name)}.")
        return notes or ""

    def export_learner(self, p: Principal, learner_id: int) -> dict[str, Any]:
        """Everything stored about one learner (the export route checks the role first)."""
        return self.store.export_learner(self._learner(learner_id).id)

    @teacher
    def delete_learner(self, p: Principal, learner_id: Any, confirm: str) -> dict[Any, Any]:
        gr = _gr()
        lr = self._learner(learner_id)
        if not _confirms(confirm, lr):
            shown = f"{lr.display_name!r} or {lr.name!r}" if lr.display_name else repr(lr.name)
            raise InputError(f"nothing was deleted: type the learner's name {shown} to confirm")
        counts = self.store.delete_learner(lr.id)
        log.warning("teacher %s deleted learner %d (%s)", p.username, lr.id, counts)
        n = sum(counts.values())
        gr.Info(f"Deleted all data of {render.esc(lr.name)} ({n} records).")
        return {
            **self._out(
                students_table=self._students_table(),
                learner_pick=gr.update(choices=self._learner_choices(), value=None),
            ),
            **self._no_learner_detail(),
            **self._class_outputs(),
        }

    # ===================================================================== teacher: documents

    def _docs_outputs(self) -> dict[Any, Any]:
        """The documents table and the document picker, for the course as it is now."""
        gr = _gr()
        docs = self.kb.list_documents(self.collection) if self.kb is not None else []
        table = render.table(
            render.DOC_HEADERS,
            render.document_rows(docs),
            empty="No documents in this course yet: upload some above.",
        )
        if self.kb is not None and self.kb.index_problem(self.collection):
            table = render.INDEX_WARNING + table  # the reason (with the path) is in the log
        return self._out(
            docs_table=table,
            doc_pick=gr.update(choices=[render.doc_choice(d) for d in docs], value=None),
        )

    def _need_kb(self) -> Any:
        if self.kb is None:
            raise InputError("this server runs without a knowledge base; documents cannot be added")
        return self.kb

    @teacher
    def add_documents(self, p: Principal, files: Any, progress: Any = None) -> dict[Any, Any]:
        kb = self._need_kb()
        paths = _paths(files)
        if not paths:
            raise InputError("choose one or more files first (.md, .txt, .pdf, .docx or .html)")
        limit = int(self.ctx.max_upload_mb * 1024 * 1024)
        results: list[tuple[str, str, int, str]] = []
        uploads: list[tuple[str, bytes]] = []
        for path in paths:
            name = _upload_name(path)
            if Path(name).suffix.lower() not in DOC_SUFFIXES:
                results.append(
                    (name, "error", 0, "not a supported type; use .md, .txt, .pdf, .docx or .html")
                )
                continue
            size = os.path.getsize(path)
            if size > limit:
                results.append(
                    (
                        name,
                        "error",
                        0,
                        f"{size / 2**20:.1f} MB is over the {self.ctx.max_upload_mb:g} MB limit (ui.max_upload_mb)",
                    )
                )
                continue
            uploads.append((name, Path(path).read_bytes()))
        if uploads:

            def report_progress(done: int, total: int, what: str) -> None:
                if progress is not None:
                    progress((done, total) if total else None, desc=what)

            report = kb.add(uploads, collection=self.collection, progress=report_progress)
            results += [(f.path, f.status, f.chunks, f.message) for f in report.files]
            log.info("teacher %s added documents: %s", p.username, report.summary())
            _gr().Info(report.summary())
        table = render.table(render.INGEST_HEADERS, render.ingest_rows(results))
        discard_uploads(paths)  # read or refused: the copies in the upload folder go now
        return {**self._out(ingest_table=table, doc_files=None), **self._docs_outputs()}

    @teacher
    def ask_remove(self, p: Principal, doc_id: str) -> dict[Any, Any]:
        gr = _gr()
        if not doc_id:
            raise InputError("pick a document to remove first")
        doc = self._doc(doc_id)
        text = (
            f"Remove **{render.esc(doc.title)}** ({render.esc(doc.name)}, {doc.n_chunks} chunks) "
            "from the course? Answers will no longer cite it."
        )
        return self._out(remove_row=gr.update(visible=True), remove_text=text)

    @teacher
    def cancel_remove(self, p: Principal) -> Any:
        return _gr().update(visible=False)

    def _doc(self, doc_id: str) -> Any:
        kb = self._need_kb()
        for d in kb.list_documents(self.collection):
            if d.doc_id == doc_id:
                return d
        raise NotFoundError(
            f"no document {doc_id!r} in this course; it may have been removed already"
        )

    @teacher
    def remove_document(self, p: Principal, doc_id: str) -> dict[Any, Any]:
        gr = _gr()
        doc = self._doc(doc_id)
        self._need_kb().remove(doc.doc_id)
        log.info("teacher %s removed document %s (%s)", p.username, doc.doc_id, doc.name)
        gr.Info(f"Removed {render.esc(doc.title)}.")
        return {
            **self._docs_outputs(),
            **self._out(remove_row=gr.update(visible=False), remove_text=""),
        }

    # ===================================================================== teacher: item banks

    def _bank_table(self) -> str:
        bank = self.store.bank(self.collection)
        rows = [
            [s.id, s.name, len(bank.for_skill(s.id)), ", ".join(s.prerequisites)]
            for s in bank.skills.values()
        ]
        note = (
            ""
            if self.collection in self.store.collections()
            else '<div class="section-note">No bank loaded for this course yet: these are the '
            "shipped sample items.</div>"
        )
        return note + render.table(render.BANK_HEADERS, rows, empty="No practice items yet.")

    @teacher
    def add_items(self, p: Principal, files: Any) -> dict[Any, Any]:
        paths = _paths(files)
        if not paths:
            raise InputError(
                "choose one or more item-bank files first (.yaml, .yml, .json, .jsonl)"
            )
        for path in paths:
            if Path(_upload_name(path)).suffix.lower() not in BANK_SUFFIXES:
                raise InputError(
                    f"{_upload_name(path)}: not an item bank; use .yaml, .yml, .json or .jsonl"
                )
        # items may use the skills already stored for the course (else the shipped ones)
        source = ", ".join(_upload_name(x) for x in paths)
        try:
            report = add_item_bank(
                self.store, paths, collection=self.collection, source_file=source
            )
        except ItemBankError as e:
            msg = str(e).replace(e.path, _upload_name(e.path))
            # the bank table and the chosen files stay as they are
            return self._out(
                items_status=f'<div class="fb fb-no">❌ Nothing was loaded. {render.esc(msg)}</div>'
            )
        log.info("teacher %s loaded %d items", p.username, report.n_items)
        status = (
            f'<div class="fb fb-ok">✅ Loaded {report.n_items} items ({report.n_replaced} replaced) '
            f"and {report.n_skills} skills into the course.</div>"
        )
        discard_uploads(paths)  # loaded: the copies in the upload folder go now
        return self._out(items_status=status, bank_table=self._bank_table(), item_files=None)


def _confirms(typed: str | None, learner: Any) -> bool:
    """Whether ``typed`` names ``learner`` as the page shows it: the display name, the learner
    name or the picker's "Display (name)" label; case and extra spaces do not matter."""

    def norm(text: str) -> str:
        return " ".join(text.split()).casefold()

    names = {learner.name, learner.display_name, f"{learner.display_name} ({learner.name})"}
    return bool(norm(typed or "")) and norm(typed or "") in {norm(n) for n in names if n}
