"""Hostile input: property-based tests (hypothesis) for every parser a stranger can feed.

Targets: the document loaders and the chunker (random bytes under each extension, damaged
PDF/docx/HTML/Markdown, deeply nested HTML, huge lines, odd Unicode), the answer checker
(``grade``, ``mentions_answer``), the learner-problem solver and the intent rules
(``tutor.problems``, ``tutor.modes``), and the item-bank parser.

The properties: no exception but the module's own typed error (``LoadError``, ``ItemBankError``
/ ``InputError``), structural invariants on what comes back, and a time bound per input. Each
call is timed; the bounds in ``BOUNDS`` are generous (5-20x the maxima measured on a shared
2-core machine, see docs/reliability.md) so they catch hangs and quadratic blow-ups, not noise.
``TUTOR_HOSTILE_REPORT=path.json`` writes the counts and maxima per target;
``TUTOR_FUZZ_SCALE=N`` multiplies every property's example count (a deeper run).

Each bug these properties found is kept below as a plain regression test (``test_regression_*``).
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import string
import tempfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from knowledge_base.chunk import Chunk, chunk_document
from knowledge_base.errors import LoadError
from knowledge_base.load import Document, load_document
from tutor.errors import InputError
from tutor.grading import FEEDBACK_CODES, AnswerSpec, GradeResult, grade, mentions_answer
from tutor.items import ITEM_FIELDS, ItemBankError, load_bank, load_default_bank
from tutor.modes import Intent, computable_problem, detect_intent, looks_like_answer
from tutor.problems import KnownProblem, scaffold, solve

# Per-call time bounds (seconds) by target. Measured maxima are in docs/reliability.md.
BOUNDS = {
    "load": 5.0,  # one document of up to a few KB (random or mutated)
    "load-big": 30.0,  # the regression documents of 0.5-1 MB or 3,000 levels of nesting
    "chunk": 5.0,
    "kb-add": 10.0,
    "kb-search": 5.0,
    "grade": 2.0,
    "mentions": 2.0,
    "solve": 2.0,
    "intent": 2.0,
    "items": 5.0,
}
STATS: dict[str, list[float]] = defaultdict(list)
SURROGATE = re.compile("[\ud800-\udfff]")
BLOCK_KINDS = {"heading", "paragraph", "list_item", "table_row", "math", "code"}

FUZZ = settings(
    deadline=None,  # timing is asserted per call against BOUNDS instead (see the docstring)
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def fuzz(examples: int) -> settings:
    """``examples`` per property; ``TUTOR_FUZZ_SCALE=10`` runs ten times as many (a deep run)."""
    return settings(FUZZ, max_examples=examples * int(os.environ.get("TUTOR_FUZZ_SCALE", "1")))


def timed(target: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``, record its time under ``target`` and assert the bound (also when it raised)."""
    t0 = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        dt = time.perf_counter() - t0
        STATS[target].append(dt)
        assert dt <= BOUNDS[target], f"{target}: {dt:.2f}s > {BOUNDS[target]}s on {args!r:.300}"


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    # sympy's first import (~1.5 s) is not the checker's time
    grade("2x + 6", "2(x + 3)")
    solve("2x + 3 = 11")
    yield
    rows = {
        k: {
            "inputs": len(v),
            "max_s": round(max(v), 4),
            "mean_ms": round(1000 * sum(v) / len(v), 2),
        }
        for k, v in sorted(STATS.items())
    }
    out = os.environ.get("TUTOR_HOSTILE_REPORT")
    if out:
        Path(out).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print("\nhostile inputs:", json.dumps(rows))


# ============================================================================ documents


def check_document(doc: Document) -> None:
    n = len(doc.text)
    assert isinstance(doc.text, str) and not SURROGATE.search(doc.text)
    assert doc.title and isinstance(doc.title, str) and not SURROGATE.search(doc.title)
    assert doc.blocks and any(b.kind != "heading" for b in doc.blocks)
    for b in doc.blocks:
        assert b.kind in BLOCK_KINDS
        assert 0 <= b.start <= b.end <= n, (b, n)
        assert not SURROGATE.search(b.heading)


def check_chunks(doc: Document, chunks: list[Chunk]) -> None:
    """Chunks are exact, trimmed slices of the text, in order, covering all content."""
    text = doc.text
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    covered = bytearray(len(text))
    for c in chunks:
        assert 0 <= c.char_start < c.char_end <= len(text)
        assert text[c.char_start : c.char_end] == c.text
        assert c.text == c.text.strip() and c.n_tokens >= 1
        covered[c.char_start : c.char_end] = b"\x01" * (c.char_end - c.char_start)
    content = [b for b in doc.blocks if b.kind != "heading"]
    for b in content:
        for i in range(b.start, b.end):
            if not covered[i] and not text[i].isspace():
                raise AssertionError(f"{text[i]!r} at {i} of a {b.kind} is in no chunk")
    if any(not text[i].isspace() for b in content for i in range(b.start, b.end)):
        assert chunks


def load_and_chunk(data: bytes, name: str, budget: int = 64, target: str = "load") -> Any:
    """Load ``data``; a refusal must be a ``LoadError`` naming the file; else check it all."""
    try:
        doc = timed(target, load_document, data=data, name=name)
    except LoadError as e:
        assert e.path == name and e.reason and str(e).startswith(name)
        return None
    check_document(doc)
    chunks = timed("chunk", chunk_document, doc, max_tokens=budget, overlap=budget // 5)
    check_chunks(doc, chunks)
    return doc


EXTENSIONS = [".md", ".txt", ".pdf", ".docx", ".html", ".htm", ".xhtml", ".csv", ""]

# Text that stresses the parsers: Markdown structure, math, tables, odd Unicode, controls.
_PIECES = [
    "# ",
    "## ",
    "###### ",
    "\n",
    "\n\n",
    "$$",
    "$",
    "\\[",
    "\\]",
    "|",
    "| --- |",
    "- ",
    "* ",
    "1. ",
    "> ",
    "```",
    "~~~",
    "---",
    "===",
    "<",
    ">",
    "&amp;",
    "&#0;",
    "&#xd800;",
    "\t",
    "\r",
    "\r\n",
    "\x00",
    "\x1b[2J",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\u0301",
    "\U0001f600",
    "\u2028",
    "\u00a0",
    "e.g.",
    "Fig.",
    "3/4",
    "x^2",
    "\\frac{1}{2}",
    "A. ",
    "? ",
    "! ",
]
markup_text = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=12)), max_size=120).map(
    "".join
)


@fuzz(160)
@given(data=st.binary(max_size=4096), ext=st.sampled_from(EXTENSIONS))
def test_loaders_on_random_bytes(data: bytes, ext: str) -> None:
    load_and_chunk(data, "upload" + ext)


@fuzz(120)
@given(
    text=markup_text,
    ext=st.sampled_from([".md", ".txt", ".html", ""]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "surrogatepass"]),
    budget=st.integers(8, 200),
)
def test_loaders_and_chunker_on_odd_text(text: str, ext: str, encoding: str, budget: int) -> None:
    if encoding == "surrogatepass":
        data = text.encode("utf-8", "surrogatepass")
    else:
        data = text.encode(encoding)
    load_and_chunk(data, "notes" + ext, budget)


# ---- damaged real files


@functools.cache
def _samples() -> dict[str, bytes]:
    """A real PDF, docx, HTML page and Markdown file to damage (made once per process)."""
    from tests.test_kb_load import make_docx, make_pdf

    d = Path(tempfile.mkdtemp(prefix="hostile-samples-"))
    pdf = make_pdf(
        d / "s.pdf",
        [("Fractions", ["A fraction has a numerator.", "• a bullet", "12"]), ("Ratios", ["x"])],
        title="Sample",
    )
    html = (
        "<!doctype html><html><head><title>T</title><script>x()</script></head><body><nav>n</nav>"
        "<main><h1>Water</h1><p>Rain <b>falls</b>.</p><ul><li>one<ul><li>two</li></ul></li></ul>"
        "<table><tr><th>a</th><td>b</td></tr></table><math alttext='x^2'><mi>x</mi></math>"
        "<pre>code</pre></main></body></html>"
    )
    md = (Path(__file__).resolve().parents[1] / "data" / "curriculum" / "fractions.md").read_text()
    out = {
        ".pdf": pdf.read_bytes(),
        ".docx": make_docx(d / "s.docx").read_bytes(),
        ".html": html.encode(),
        ".md": md.encode(),
    }
    shutil.rmtree(d, ignore_errors=True)
    return out


@fuzz(120)
@given(
    kind=st.sampled_from([".pdf", ".docx", ".html", ".md"]),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=6),
    insert=st.binary(max_size=64),
)
def test_damaged_files(kind: str, cut: float, flips: list, insert: bytes) -> None:
    """Truncated, bit-flipped and spliced PDF, docx, HTML and Markdown files."""
    data = bytearray(_samples()[kind])
    for where, byte in flips:
        data[int(where * (len(data) - 1))] = byte
    pos = int(cut * len(data))
    data = data[:pos] + insert + (data[pos:] if insert else b"")
    load_and_chunk(bytes(data), "damaged" + kind)


def spliced_docx(cut: float, junk: str) -> bytes:
    """The sample .docx with ``junk`` spliced into word/document.xml at ``cut`` (0..1)."""
    src = zipfile.ZipFile(io.BytesIO(_samples()[".docx"]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n in src.namelist():
            body = src.read(n)
            if n == "word/document.xml":
                pos = int(cut * len(body))
                body = body[:pos] + junk.encode("utf-8", "surrogatepass") + body[pos:]
            z.writestr(n, body)
    return out.getvalue()


@fuzz(60)
@given(cut=st.floats(0, 1), junk=markup_text)
def test_docx_with_damaged_xml(cut: float, junk: str) -> None:
    """A valid zip whose word/document.xml is truncated or has text spliced in."""
    load_and_chunk(spliced_docx(cut, junk), "spliced.docx")


def test_regression_docx_without_a_word_body() -> None:
    """Found: XML still well-formed but no longer a Word document (here "~~~" spliced into the
    root element's name) raised AttributeError ('_Element' has no 'body'); now a LoadError
    (knowledge_base/loaders/docx.py wraps the whole docx walk)."""
    for cut in (0.2, 0.25, 0.3):
        load_and_chunk(spliced_docx(cut, "~~~"), "spliced.docx")
    doc = spliced_docx(0.0, "")  # unchanged: still loads
    assert load_and_chunk(doc, "fine.docx") is not None


# ---- HTML structure

_TAGS = [
    "div",
    "section",
    "article",
    "main",
    "ul",
    "ol",
    "li",
    "table",
    "tr",
    "td",
    "th",
    "p",
    "span",
    "b",
    "h1",
    "h3",
    "pre",
    "br",
    "math",
    "nav",
    "script",
    "style",
    "blockquote",
    "details",
    "summary",
    "template",
    "svg",
    "a",
    "img",
    "dl",
    "dd",
]
_ATTRS = [
    "",
    " hidden",
    ' role="navigation"',
    ' aria-hidden="true"',
    ' alttext="x^2"',
    ' display="block"',
    ' onerror="alert(1)"',
    ' href="javascript:alert(1)"',
    " role",
]


def _html_node(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda tag, attr, inner, close: (
            f"<{tag}{attr}>{''.join(inner)}" + (f"</{tag}>" if close else "")
        ),
        st.sampled_from(_TAGS),
        st.sampled_from(_ATTRS),
        st.lists(children, max_size=4),
        st.booleans(),
    )


html_tree = st.recursive(
    st.one_of(st.text(max_size=20), st.sampled_from(["&lt;", "&#xd800;", "<!-- c -->", "$$x$$"])),
    _html_node,
    max_leaves=60,
)


@fuzz(100)
@given(body=html_tree, wrap=st.booleans())
def test_html_structures(body: str, wrap: bool) -> None:
    page = f"<html><head><title>t</title></head><body>{body}</body></html>" if wrap else body
    doc = load_and_chunk(page.encode("utf-8", "surrogatepass"), "page.html")
    if doc is not None:
        assert "alert(1)" not in doc.text  # scripts and event handlers never become text


@pytest.mark.parametrize(
    "opening,closing",
    [
        ("<div>", "</div>"),
        ("<ul><li>a", "</li></ul>"),
        ("<table><tr><td>c", "</td></tr></table>"),
        ("<span>", "</span>"),
        ("<nav>", "</nav>"),
        ("<div><p>t", ""),
    ],
    ids=["div", "ul-li", "table", "span", "nav", "unclosed"],
)
def test_regression_deeply_nested_html(opening: str, closing: str) -> None:
    """Found: 1,000 nested <div>/<ul> raised RecursionError; 500 nested <ul><li> took 4.7 s and
    5,000 took 294 s (an ancestor walk per list, and bs4's ``tag.decomposed`` searching the
    subtree). Fixed in knowledge_base/loaders/: iterative walks, deep containers flattened."""
    depth = 3000
    page = "<html><body><p>start</p>" + opening * depth + "end" + closing * depth + "</body></html>"
    doc = load_and_chunk(page.encode(), "deep.html", target="load-big")
    assert doc is not None and "start" in doc.text
    assert ("end" in doc.text) == (opening != "<nav>")


def test_regression_huge_line_and_many_sentences() -> None:
    load_and_chunk(b"word " * 200_000, "line.txt", target="load-big")  # 1 MB, no newline
    load_and_chunk(b"# T\n\n" + b"x" * 1_000_000, "x.md", target="load-big")  # one 1 MB word
    load_and_chunk(b"A. " * 60_000, "short.txt", target="load-big")
    load_and_chunk(b"$$ " * 60_000, "dollars.md", target="load-big")


def test_regression_abbreviations_and_formulas_do_not_make_chunking_quadratic() -> None:
    """Found: "Dr. Smith said e.g. " repeated 25,000 times (500 KB, one paragraph) did not finish
    chunking in 5 minutes: every candidate sentence end re-scanned the paragraph so far for an
    abbreviation (and every inline formula). Fixed in knowledge_base/chunk.py (a bounded look
    back, a binary search over the formulas)."""
    load_and_chunk(b"Dr. Smith said e.g. " * 25_000, "abbr.txt", target="load-big")
    load_and_chunk(b"$x$. And " * 25_000, "formulas.txt", target="load-big")


def test_regression_lone_surrogates_in_text_are_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found: a lone surrogate in a name (or in text a broken PDF font map yields) cannot be
    stored as UTF-8: SQLite raised UnicodeEncodeError and the whole batch failed. Fixed in
    knowledge_base/loaders/ (text: U+FFFD, one for one) and kb.py (names)."""
    import knowledge_base.loaders as L
    from knowledge_base.load import Block

    text = "Title \ud800\n\nbody \udfff text"
    monkeypatch.setattr(
        L, "parse_html", lambda data, name: (text, [Block("paragraph", 9, 24)], "T\ud83d")
    )
    doc = load_document(data=b"<html><body>x</body></html>", name="s.html")
    assert doc.text == text.replace("\ud800", "\ufffd").replace("\udfff", "\ufffd")
    assert doc.title == "T\ufffd" and doc.block_text(doc.blocks[0]) == "body \ufffd text"


# ---- through the knowledge base (SQLite FTS + FAISS with odd Unicode)


@pytest.fixture(scope="module")
def fuzz_kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from knowledge_base import KnowledgeBase
    from knowledge_base.testing import HashEmbedder

    kb = KnowledgeBase.open(
        tmp_path_factory.mktemp("kb"), HashEmbedder(), show_progress=False, checkpoint_chunks=10**6
    )
    kb.add([("seed.md", b"# Seed\n\nFractions and ratios.\n")])
    yield kb
    assert kb.store.check() == []  # index and rows still agree after everything
    kb.close()


@fuzz(30)
@given(text=markup_text, name=st.text(max_size=40), ext=st.sampled_from([".md", ".txt", ".html"]))
def test_kb_add_odd_documents(fuzz_kb: Any, text: str, name: str, ext: str) -> None:
    report = timed("kb-add", fuzz_kb.add, [(name + ext, text.encode("utf-8", "surrogatepass"))])
    assert len(report.files) == 1
    f = report.files[0]
    assert f.status in ("added", "skipped", "replaced", "error")
    if f.status == "error":
        assert f.message


@fuzz(60)
@given(
    query=st.one_of(markup_text, st.text(max_size=200)), mode=st.sampled_from(["hybrid", "bm25"])
)
def test_kb_search_odd_queries(fuzz_kb: Any, query: str, mode: str) -> None:
    try:
        hits = timed("kb-search", fuzz_kb.search, query, k=3, mode=mode)
    except InputError:
        assert not query.strip()
        return
    assert all(h.text and h.citation for h in hits)


# ============================================================================ answer checker


def _bank_specs() -> list[Any]:
    bank = load_default_bank()
    by_kind: dict[str, list[Any]] = defaultdict(list)
    for it in bank.items:
        by_kind[it.kind].append(it)
    items = [x for kind in sorted(by_kind) for x in by_kind[kind][:3]]
    return items + [
        AnswerSpec(kind="number", value="2.5", tolerance=0.05),
        AnswerSpec(kind="quantity", value="12 cm^2", unit_required=True),
        AnswerSpec(kind="expression", value="2x + 6", form="expanded"),
        AnswerSpec(kind="expression", value="2(x + 3)", form="factored"),
        AnswerSpec(kind="expression", value="2x + 3 = 11", strict_form=True),
        AnswerSpec(kind="fraction", value="3/4", simplify=True, accepted=("0.75",)),
        AnswerSpec(kind="percent", value="75%"),
        AnswerSpec(kind="choice", value="B", choices=("cat", "3/4", "dog")),
        AnswerSpec(kind="text", value="evaporation"),
        AnswerSpec(kind="integer", value="-42"),
        "7/8",
    ]


SPECS = _bank_specs()

_NUMBER_WORDS = "zero one two nine ten twelve twenty ninety hundred thousand million half quarter thirds point and a minus negative percent".split()
adversarial = st.one_of(
    st.text(alphabet=string.digits, min_size=1, max_size=6000),  # very long digit strings
    st.builds(
        lambda a, b: f"{a}.{b}",
        st.text(string.digits, min_size=1, max_size=600),
        st.text(string.digits, min_size=1, max_size=600),
    ),
    st.lists(st.integers(0, 999), min_size=2, max_size=8).map(
        lambda xs: "^".join(map(str, xs))
    ),  # 9^9^9 towers
    st.lists(st.integers(0, 999), min_size=2, max_size=8).map(lambda xs: "**".join(map(str, xs))),
    st.integers(-(10**7), 10**7).map(lambda e: f"1e{e}"),
    st.integers(0, 10**6).map(lambda e: f"10**{e}"),
    st.integers(1, 800).map(lambda n: "(" * n + "x+1" + ")" * n),
    st.integers(1, 800).map(lambda n: "(" * n),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=40),
    st.lists(st.sampled_from(_NUMBER_WORDS), min_size=1, max_size=300).map(" ".join),
    st.lists(
        st.sampled_from(
            [
                "\\frac{",
                "}",
                "{",
                "\\sqrt",
                "^",
                "$",
                "\\left(",
                "\\right)",
                "\\%",
                "1",
                "x",
                "/",
                "cm^2",
                "%",
            ]
        ),
        max_size=60,
    ).map("".join),
    st.lists(
        st.sampled_from(["1", ",", "0", ".", " ", "/", "-", "+", "=", "x", "%", "$"]), max_size=300
    ).map("".join),
)
answers = st.one_of(st.text(max_size=300), adversarial, markup_text)


def check_result(r: GradeResult) -> None:
    assert isinstance(r, GradeResult) and r.code in FEEDBACK_CODES
    assert isinstance(r.correct, bool) and isinstance(r.normalized, str) and r.message


@fuzz(260)
@given(spec=st.sampled_from(SPECS), response=answers)
def test_grade_never_raises_and_is_bounded(spec: Any, response: str) -> None:
    r = timed("grade", grade, spec, response)
    check_result(r)
    assert grade(spec, response) == r  # deterministic


@fuzz(160)
@given(spec=st.sampled_from(SPECS), text=st.lists(answers, max_size=6).map(" ".join))
def test_mentions_answer_never_raises_and_is_bounded(spec: Any, text: str) -> None:
    assert isinstance(timed("mentions", mentions_answer, text, spec), bool)


ADVERSARIAL_ANSWERS = [
    "9^9^9",
    "10**100000",
    "9" * 5000,
    "0." + "9" * 5000,
    "9" * 400 + ".5",
    "1e999999",
    "(" * 1000 + "1" + ")" * 1000,
    "٣/٤",
    "𝟑/𝟒",
    "½",
    "nine hundred " + "hundred " * 600,
    "zero point " + "nine " * 600,
    "1/" + "0" * 300,
    "-" * 1000 + "3",
    "3/4 " * 250,
    "\\frac{" * 200,
    "1," * 500,
    "x" * 119,
    "2^(9*9*9)",
    "99999999999999999999^12",
]


@pytest.mark.parametrize("spec", SPECS[-11:], ids=lambda s: getattr(s, "kind", str(s)))
def test_regression_adversarial_answers(spec: Any) -> None:
    """Found: a 400-digit decimal answer crashed ``grade`` (OverflowError: float(value) in
    ``Number.canonical``); a number of more than 4300 digits (or 600 "hundred"s) crashed
    ``mentions_answer`` (ValueError: Python's int/str limit). Fixed in tutor/grading/."""
    for text in ADVERSARIAL_ANSWERS:
        check_result(timed("grade", grade, spec, text))
        assert isinstance(timed("mentions", mentions_answer, text * 2, spec), bool)
    assert grade("3/4", "9" * 400 + ".5").code in ("incorrect", "not_parsed")
    assert not mentions_answer("9" * 5000, "3/4")


def test_regression_nonfinite_tolerance_is_refused() -> None:
    """Found: ``tolerance: .inf`` crashed grading (OverflowError); ``.nan`` silently meant 0."""
    for tol in (float("inf"), float("nan"), -1.0):
        with pytest.raises(InputError, match="tolerance"):
            AnswerSpec(kind="number", value="2.5", tolerance=tol)


# ============================================================================ problems and intents

_EXPR_ATOMS = ["x", "0", "1", "2", "9", "12", "99", "0.5", "1/0", "999999999999"]
expression = st.recursive(
    st.sampled_from(_EXPR_ATOMS),
    lambda ch: st.one_of(
        st.tuples(ch, st.sampled_from(["+", "-", "*", "/", "^", "**", " ", "="]), ch).map("".join),
        ch.map(lambda e: f"({e})"),
    ),
    max_leaves=20,
)
messages = st.one_of(
    expression,
    expression.map(lambda e: f"what is {e}?"),
    expression.map(lambda e: f"solve {e}"),
    st.text(max_size=400),
    markup_text,
    adversarial.map(lambda s: s[:4000]),
    st.lists(
        st.sampled_from(["( ", "1 ", "x ", "= ", "+ ", "solve ", "hint ", "is it "]), max_size=1000
    ).map("".join),
)


@fuzz(200)
@given(text=messages)
def test_solve_and_scaffold_never_raise_and_are_bounded(text: str) -> None:
    known = timed("solve", solve, text, text)
    assert known is None or (isinstance(known, KnownProblem) and known.answer)
    if known is not None:
        # p/q, or a short exact decimal when the problem was written in decimals
        assert re.fullmatch(r"(x = )?-?\d+(/\d+|\.\d{1,6})?", known.answer), known
        assert len(known.answer) <= 2 * 1001 + 5  # p/q, each at most MAX_DIGITS digits
    assert isinstance(scaffold(text), list)


@fuzz(200)
@given(
    text=messages,
    mode=st.sampled_from(["auto", "explain", "guide", "practice", "teacher", ""]),
    problem_open=st.booleans(),
)
def test_intent_rules_never_raise_and_are_bounded(text: str, mode: str, problem_open: bool) -> None:
    intent = timed("intent", detect_intent, text, explicit_mode=mode, problem_open=problem_open)
    assert isinstance(intent, Intent)
    assert intent.mode in ("explain", "guide", "practice", "offtopic")
    expr = timed("intent", computable_problem, text)
    if expr is not None:
        timed("solve", solve, expr, text)
    assert isinstance(looks_like_answer(text), bool)


@pytest.mark.parametrize(
    "text",
    [
        "what is 9^9^9?",
        "9**9**9",
        "(9^9)^(9^9)",
        "9^(9^9)",
        "9.9^9.9^9.9",
        "(x+1)^50 = 3",
        "(x+1)^4 = 3",
        "x^99 = 2",
        "(((2^12)^12)^12)^12",
        "1<<99999999999",
        "'9'*99999999999",
        "(99!)!",
        "2^(99*99*99*99)",
    ],
)
def test_regression_solve_cannot_hang(text: str) -> None:
    """Found: "what is 9^9^9?" (and towers like it) hung ``solve`` for minutes (a 370-million
    digit power); "(x+1)^50 = 3" hung ``sympy.solve``; a quartic took 3.5 s. Fixed in
    tutor/problems.py: a character whitelist, size and degree bounds before evaluating."""
    assert timed("solve", solve, text, text) is None
    expr = computable_problem(text)
    assert expr is None or timed("solve", solve, expr, text) is None


def test_regression_solve_is_right_on_what_it_accepts() -> None:
    assert solve("2x + 3 = 11").answer == "x = 4"
    assert solve("3/4 + 1/8").answer == "7/8"
    assert solve("(2x+1)/(3x-1) = 5").answer == "x = 6/13"
    assert solve("2^(9*9)").answer == str(2**81)
    # found: "x/0 = 1" was "solved" as x = 0 and "1/(1/0)" as 0; neither has a solution
    assert solve("x/0 = 1") is None and solve("1/(1/0)") is None
    # found by a deep run: an empty side raised IndexError inside sympy's parser
    assert solve("=x") is None and solve("x=") is None and solve(" = ") is None
    # found: decimals were 15-digit floats, so "123456789012345678 + 0.5" lost its half (and
    # an equation with a decimal had no exact solution); they are exact now
    assert solve("123456789012345678 + 0.5").answer == "123456789012345678.5"
    assert solve("0.1 + 0.2").answer == "0.3" and solve(".1").answer == "0.1"
    assert solve("x + 0.1 = 0.3").answer == "x = 0.2" and solve("2x = 0.7").answer == "x = 0.35"
    assert solve("1/3 + 0.1").answer == "13/30"


def test_regression_long_runs_of_operators_are_fast() -> None:
    """Found: 4,000 characters of "( ( ( ..." took 2-3 s in the problem regex (every start
    scanned to the end); it is bounded now (tutor/modes.py)."""
    for text in ["( " * 2000, "(1+" * 1333, "x " * 2000]:
        for open_ in (False, True):
            timed("intent", detect_intent, text, problem_open=open_)
    assert max(STATS["intent"][-6:]) < 1.0


# ============================================================================ item banks

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(10**280, 10**300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        ["3/4", "2x+6", "B", "12 cm^2", "75%", "evaporation", "9^9^9", "", "???", "x", "a1"]
    ),
)
_value = st.recursive(
    _scalar,
    lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=6), ch, max_size=3),
    max_leaves=10,
)
_item = st.builds(
    lambda base, over: {**base, **over},
    st.fixed_dictionaries(
        {
            "id": st.sampled_from(["a1", "b-2", "a1"]),
            "skill": st.just("s1"),
            "prompt": st.just("What is 1/4 + 2/4?"),
            "answer": st.sampled_from(["3/4", "0.75", "B", "2x+6"]),
        }
    ),
    st.dictionaries(st.sampled_from(sorted(ITEM_FIELDS)) | st.text(max_size=6), _value, max_size=4),
)
_skill = st.dictionaries(
    st.sampled_from(["id", "name", "prerequisites", "description", "other"]),
    st.one_of(_value, st.sampled_from(["s1", "s2", ["s1"], ["s2"], "s3"])),
    max_size=4,
)
bank_doc = st.one_of(
    st.lists(_item, max_size=4),
    st.fixed_dictionaries(
        {},
        optional={
            "items": st.one_of(st.lists(_item, max_size=4), _value),
            "skills": st.one_of(st.lists(_skill, max_size=4), _value),
            "source": _value,
            "extra": _value,
        },
    ),
    _value,
)


def load_bank_text(tmp_path: Path, text: str | bytes, suffix: str, declared: bool = False) -> None:
    path = tmp_path / f"bank{suffix}"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        bank = timed("items", load_bank, [path], require_declared_skills=declared)
    except ItemBankError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e).strip()
        return
    except InputError:  # allowed by the contract, but every known case names the file now
        raise
    for it in bank.items:
        assert grade(it, it.answer.value).correct  # a bank that loads is a bank that grades
        check_result(grade(it, "9^9^9"))


@fuzz(120)
@given(doc=bank_doc, fmt=st.sampled_from(["yaml", "json", "jsonl"]))
def test_item_bank_structures(tmp_path: Path, doc: Any, fmt: str) -> None:
    """Random YAML / JSON / JSON Lines structures: only ``ItemBankError``, never a bare
    KeyError/TypeError/RecursionError."""
    if fmt == "jsonl":
        lines = doc if isinstance(doc, list) else [doc]
        text = "\n".join(json.dumps(x, allow_nan=True) for x in lines)
        load_bank_text(tmp_path, text, ".jsonl")
    elif fmt == "json":
        load_bank_text(tmp_path, json.dumps(doc, allow_nan=True), ".json")
    else:
        load_bank_text(tmp_path, yaml.safe_dump(doc, allow_unicode=True), ".yaml")


@fuzz(80)
@given(
    text=st.one_of(st.text(max_size=400), markup_text, st.binary(max_size=400)),
    suffix=st.sampled_from([".yaml", ".jsonl"]),
)
def test_item_bank_raw_text(tmp_path: Path, text: Any, suffix: str) -> None:
    load_bank_text(tmp_path, text, suffix)


@fuzz(60)
@given(
    line=st.integers(0, 200),
    junk=st.sampled_from(
        [
            "",
            ":",
            "- ",
            "  ",
            "{",
            "[",
            "!!python/object:os.system",
            "&a",
            "*a",
            "\t",
            "'",
            "\x00",
            "tolerance: .inf",
            "tolerance: .nan",
            "answer: " + "9" * 5000,
        ]
    ),
)
def test_item_bank_damaged_shipped_file(tmp_path: Path, line: int, junk: str) -> None:
    src = Path(__file__).resolve().parents[1] / "data" / "items" / "fractions.yaml"
    lines = src.read_text(encoding="utf-8").splitlines()
    assume(lines)
    i = line % len(lines)
    lines[i] = junk + lines[i]
    load_bank_text(tmp_path, "\n".join(lines) + "\n", ".yaml")


@pytest.mark.parametrize(
    "text,suffix",
    [
        ("- {id: a, skill: s, prompt: p, answer: '3', tolerance: .inf}", ".yaml"),
        ("- {id: a, skill: s, prompt: p, answer: '3', tolerance: .nan}", ".yaml"),
        ('{"id": "a", "skill": "s", "prompt": "p", "answer": "3", "tolerance": NaN}', ".jsonl"),
        ("[" * 100_000, ".jsonl"),
        ("[" * 100_000, ".yaml"),
        ("- {id: a, skill: s, prompt: p, answer: " + "9" * 5000 + "}", ".yaml"),
        ('{"id": "a", "skill": "s", "prompt": "p", "answer": ' + "9" * 5000 + "}", ".jsonl"),
        ("- {id: a, skill: s, prompt: p, answer: '???'}", ".yaml"),
        ("- {id: a, skill: s, prompt: p, answer: .inf}", ".yaml"),
        ("\x00\x01", ".yaml"),
        ('{"id": "a", "skills": true, "prompt": "p", "answer": "3"}', ".jsonl"),
        ('{"\\n": null}', ".jsonl"),
        (
            "skills:\n"
            + "".join(f"  - {{id: s{i}, prerequisites: [s{i + 1}]}}\n" for i in range(3000))
            + "  - {id: s3000, prerequisites: [s0]}\n",
            ".yaml",
        ),
    ],
    ids=[
        "inf-tolerance",
        "nan-tolerance",
        "jsonl-nan",
        "jsonl-deep",
        "yaml-deep",
        "yaml-bigint",
        "jsonl-bigint",
        "empty-answer",
        "inf-answer",
        "nul",
        "skills-not-a-list",
        "newline-key",
        "prereq-cycle-3000",
    ],
)
def test_regression_item_bank(tmp_path: Path, text: str, suffix: str) -> None:
    """Found, each a bare exception before: OverflowError (.inf tolerance), TypeError
    (`skills: true` in a JSON Lines record, found by test_item_bank_structures), RecursionError
    (deep JSON/YAML, a 3,000-skill prerequisite chain), ValueError (5,000-digit integers),
    ReaderError (NUL), an InputError without file or line (answer '???') and a message broken
    over two lines by a key holding a newline (found by the same property). All are now
    ``ItemBankError`` naming the file (tutor/items/, tutor/grading/)."""
    path = tmp_path / f"bank{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ItemBankError) as e:
        timed("items", load_bank, [path], require_declared_skills=False)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
