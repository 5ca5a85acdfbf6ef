"""Hostile names and markup at the upload and display boundaries.

Upload names: ``KnowledgeBase.add([(name, bytes)])`` and the web app's document upload never
write a file named after an upload (the store keeps ``upload:NAME`` as the source), so names
with ``../``, absolute paths, NUL, control characters, lone surrogates or 10,000 characters can
write nothing outside the data dir; the name kept is a printable base name.

Markup: a message, a model reply and a document carrying ``<script>``, ``<img onerror>``,
``javascript:`` links are stored verbatim and shown inert: no tag can open in what the handlers
return, and every component that renders Markdown has Gradio's sanitizer on (it drops
``javascript:`` URLs in the browser; tests/test_hostile_browser.py checks that in Chromium).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge_base import KnowledgeBase
from knowledge_base.testing import HashEmbedder
from tutor.testing.fake_lm import ScriptedGenerator
from ui import render
from ui.app import build_blocks
from ui.handlers import DOCS_OUTPUTS, PAGE_OUTPUTS, SESSION_OUTPUTS, TURN_OUTPUTS, Handlers
from ui.testing import by_name, sample_context

HOSTILE_NAMES = [
    "../../../../etc/passwd.md",
    "/etc/passwd",
    "/tmp/evil.md",
    "..\\..\\evil.md",
    "C:\\Windows\\System32\\evil.md",
    "\\\\server\\share\\x.md",
    "a\x00b.md",
    "\x00",
    "",
    ".",
    "..",
    "/",
    "~/x.md",
    "$(rm -rf ~).md",
    "x" * 10_000 + ".md",
    "\ud800.md",
    "\u202egnp.md",
    "name\nwith\nnewlines.md",
    "\x1b]0;title\x07\x1b[2J.md",
    "<img src=x onerror=alert(1)>.md",
    "%2e%2e%2fevil.md",
    "file:///etc/passwd",
    "con.md",
]
STORED_FILES = re.compile(r"^(kb\.sqlite(-wal|-shm)?|write\.lock|index(/[\w.\-]+\.\d+\.faiss)?)$")


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")
    }


def check_name(name: str) -> None:
    assert name and len(name) <= 200
    assert "/" not in name and "\\" not in name and name not in (".", "..")
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name)


@pytest.fixture(scope="module")
def upload_kb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("uploads")
    kb = KnowledgeBase.open(root / "home" / "kb", HashEmbedder(), show_progress=False)
    yield root, kb
    kb.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=st.one_of(
        st.sampled_from(HOSTILE_NAMES),
        st.text(max_size=300),
        st.lists(
            st.sampled_from(["..", ".", "/", "\\", "etc", "x.md", "\x00", "~"]), max_size=12
        ).map("".join),
    ),
    body=st.sampled_from(
        [b"# Notes\n\nWater boils at 100 C.\n", b"<html><body><p>x</p></body></html>"]
    ),
)
def test_kb_upload_names_cannot_leave_the_data_dir(upload_kb: Any, name: str, body: bytes) -> None:
    root, kb = upload_kb
    before = tree(root)
    report = kb.add([(name, body + name.encode("utf-8", "surrogatepass"))])
    after = tree(root)
    changed = {p for p, st_ in after.items() if before.get(p) != st_}
    kb_dir = Path("home") / "kb"
    for p in changed:
        rel = Path(p)
        assert kb_dir in rel.parents, f"{name!r} wrote {p}"
        assert STORED_FILES.match(str(rel.relative_to(kb_dir))), f"{name!r} wrote {p}"
    (f,) = report.files
    check_name(f.path)
    if f.status in ("added", "replaced"):
        doc = kb.store.document(f.doc_id)
        assert doc is not None and doc.name == f.path and doc.source == f"upload:{f.path}"


def test_upload_name_examples() -> None:
    from knowledge_base.kb import upload_name

    assert upload_name("../../../../etc/passwd.md") == "passwd.md"
    assert upload_name("C:\\Windows\\evil.md") == "evil.md"
    assert upload_name("a\x00b.md") == "ab.md"
    assert upload_name("") == upload_name("/") == upload_name("..") == "upload"
    long = upload_name("x" * 10_000 + ".md")
    assert len(long) == 200 and long.endswith(".md")
    assert upload_name("\ud800notes.md") == "notes.md"


# ------------------------------------------------------------------------------- the web app


def req(username: str | None) -> gr.Request:
    return gr.Request(username=username)


@pytest.fixture
def h(tmp_path: Path) -> Handlers:
    reply = (
        'See [this link](javascript:window.__pwned=1) and <img src=x onerror="window.__pwned=2"> '
        "<script>window.__pwned=3</script> what do plants need [1]?"
    )  # a question: explain mode shows the model's first question (it states nothing)
    h = Handlers(sample_context(tmp_path, ScriptedGenerator(reply)))
    build_blocks(h, 1)  # binds the components the handlers return values for
    return h


LEGAL_FILE_NAMES = [  # what a browser can send and a Linux file can be called
    "evil\nname.md",
    "\x1b[31mred.md",
    "<img src=x onerror=alert(1)>.md",
    "a" * 240 + ".md",
    "ünï 名前 😀.md",
    "..md",
    "-rf .md",
    "%2e%2e%2fevil.md",
    "C:\\evil\\x.md",
    ".hidden.md",
    "noextension",
]


def test_web_upload_writes_only_into_the_knowledge_base(
    h: Handlers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = tmp_path / "gradio-upload-cache"
    up.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(up))  # handlers take only uploads
    paths = []
    for i, name in enumerate(LEGAL_FILE_NAMES):
        d = up / str(i)
        d.mkdir()
        (d / name).write_text(f"# Upload {i}\n\nRain falls from clouds number {i}.\n")
        paths.append(str(d / name))
    home = h.ctx.config.paths.home_dir
    before = tree(tmp_path)
    added = by_name(h, DOCS_OUTPUTS, h.add_documents(paths, request=req("mrs-k")))
    ingest, docs, pick, cleared = added.values()
    after = tree(tmp_path)
    # the uploads were read, then deleted (issue 16, V4): their folder is left empty
    assert up.name in after and not [p for p in after if p.startswith(up.name + "/")]
    changed = {p for p, st_ in after.items() if before.get(p) != st_ and p != up.name}
    kb_rel = h.ctx.config.paths.kb_dir.relative_to(tmp_path)
    assert changed and all(kb_rel in Path(p).parents for p in changed), changed
    assert not h.ctx.config.paths.uploads_dir.exists()  # nothing kept beside the store
    assert home in h.ctx.config.paths.uploads_dir.parents
    # every file got a row, and no name opened a tag in the teacher's tables
    assert ingest.count("<tr><td>") == len(LEGAL_FILE_NAMES)
    for html_ in (ingest, docs):
        assert "<img" not in html_ and "&lt;img" in html_
    added = [d for d in h.kb.list_documents("default") if d.source.startswith("upload:")]
    assert len(added) == len(LEGAL_FILE_NAMES) - 1  # "noextension" is refused by the handler
    for d in added:
        check_name(d.name)


HOSTILE_MESSAGE = (
    '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> '
    '[click me](javascript:window.__pwned=3) <a href="javascript:window.__pwned=4">a</a> '
    '<svg onload="window.__pwned=5"> <iframe src="javascript:alert(1)"></iframe> how do plants grow?'
)
TAG = re.compile(r"<(script|img|svg|iframe|a)\b", re.I)


def test_messages_and_replies_are_stored_verbatim_and_shown_inert(h: Handlers) -> None:
    page = by_name(h, PAGE_OUTPUTS, h.page_load(request=req("ana")))
    sid = page["session_id"]
    outs = [
        by_name(h, TURN_OUTPUTS, o)
        for o in h.send(HOSTILE_MESSAGE, "auto", sid, request=req("ana"))
    ]
    chat = outs[-1]["chat"]
    user = [m["content"] for m in chat if m["role"] == "user"][-1]
    bot = [m["content"] for m in chat if m["role"] == "assistant"]
    # stored exactly as typed / generated
    stored = h.store.messages(sid)
    # (the course does not cover a message that is mostly markup: the reply is the notice)
    assert (
        stored[-2].content == HOSTILE_MESSAGE
        and stored[-1].content == bot[-1].split('<div class="tutor-sources">')[0].strip()
    )
    # shown: no tag can open (the text stays readable), in the live turn and after a reload
    assert not TAG.search(user) and "&lt;script" in user and "click me" in user
    assert not any(TAG.search(m.split('<div class="tutor-sources">')[0]) for m in bot)
    reloaded = by_name(h, SESSION_OUTPUTS, h.open_session(sid, request=req("ana")))["chat"]
    assert not any(
        TAG.search(m["content"].split('<div class="tutor-sources">')[0]) for m in reloaded
    )


def test_documents_with_markup_are_stored_verbatim_and_cited_inert(h: Handlers) -> None:
    md = (
        "# Hostile notes\n\n## Plants\n\nPlants grow with light. <script>window.__pwned=6</script> "
        '<img src=x onerror="window.__pwned=7"> [click](javascript:window.__pwned=8)\n'
    )
    html_doc = (
        '<html><body><h1>Hostile page</h1><p onclick="x()">Plants grow <a href="javascript:alert(1)">'
        "here</a>.</p><script>window.__pwned=9</script><img src=x onerror=alert(1)></body></html>"
    )
    report = h.kb.add([("hostile.md", md.encode()), ("hostile.html", html_doc.encode())])
    assert [f.status for f in report.files] == ["added", "added"]
    md_doc = next(d for d in h.kb.list_documents() if d.name == "hostile.md")
    chunk = h.kb.store.doc_chunks(md_doc.doc_id)[0]
    assert "<script>window.__pwned=6</script>" in chunk.text  # Markdown is kept as written
    html_chunks = " ".join(
        c.text
        for d in h.kb.list_documents()
        if d.name == "hostile.html"
        for c in h.kb.store.doc_chunks(d.doc_id)
    )
    assert "Plants grow here" in html_chunks and "pwned" not in html_chunks  # scripts dropped
    passages = h.kb.search("plants grow light", k=4)
    block = render.sources_html([(i + 1, p.citation, p.text, True) for i, p in enumerate(passages)])
    assert "pwned=6" in block and not TAG.search(block)


def test_every_markdown_component_sanitizes(h: Handlers) -> None:
    _, components = build_blocks(h, 1)
    rendering = [c for c in components.values() if isinstance(c, (gr.Chatbot, gr.Markdown))]
    assert rendering and all(c.sanitize_html for c in rendering)
