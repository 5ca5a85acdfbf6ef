"""Pure formatting for the web app: library records in, Markdown/HTML strings and table rows out.

Nothing here touches the store or Gradio, so every function is testable with plain values.
Two rules hold for everything shown:

- **Inert**: text from people and documents never becomes markup. Chat text goes through
  ``inert`` (a ``<`` that would open a tag is escaped; the Chatbot's sanitizer is the second
  line), and every value put into our own HTML goes through ``html.escape``.
- **Math**: ``$…$`` and ``$$…$$`` render as LaTeX. ``$…$`` follows Pandoc's rule (no space
  inside the delimiters, no digit right after the closing one) and is rewritten to ``\\(…\\)``,
  so prices like "$40 … $34" stay text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

# KaTeX delimiters given to gr.Chatbot / gr.Markdown. ``$…$`` is not among them on purpose:
# ``math`` turns the real ones into ``\(…\)`` (see the module docstring).
LATEX_DELIMITERS: list[dict[str, Any]] = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
    {"left": "\\[", "right": "\\]", "display": True},
]

_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
# $…$ with non-space next to both delimiters, no newline inside, not followed by a digit
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?=[^\s$])([^$\n]*?[^\s\\$])\$(?![\d$])")
_DISPLAY_MATH = re.compile(r"\$\$.+?\$\$", re.S)
_FENCE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)

STATUS_LABELS = {
    "added": "✅ added",
    "replaced": "🔄 replaced (new version)",
    "skipped": "⏭️ unchanged",
    "error": "❌ failed",
}


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def inert(text: str) -> str:
    """Text that cannot open an HTML tag (``<b>`` shows as ``<b>``); everything else untouched."""
    return _TAG_OPEN.sub("&lt;", text or "")


def math(text: str) -> str:
    """Rewrite ``$…$`` math to ``\\(…\\)``, leaving code and ``$$…$$`` alone."""

    def inline(segment: str) -> str:
        out, pos = [], 0
        for m in _DISPLAY_MATH.finditer(segment):
            out.append(_INLINE_MATH.sub(r"\\(\1\\)", segment[pos : m.start()]))
            out.append(m.group(0))
            pos = m.end()
        out.append(_INLINE_MATH.sub(r"\\(\1\\)", segment[pos:]))
        return "".join(out)

    parts = _FENCE.split(text or "")
    return "".join(p if i % 2 else inline(p) for i, p in enumerate(parts))


def chat_text(text: str) -> str:
    """A chat message as the Chatbot should get it: inert, with math delimiters."""
    return math(inert(text))


def message_snippet(text: str, n: int = 48) -> str:
    one = " ".join((text or "").split())
    return one if len(one) <= n else one[: n - 1].rstrip() + "…"


def when(ts: str | None) -> str:
    """An ISO timestamp as '28 Nov 17:02' in the server's local time ('' for None)."""
    if not ts:
        return ""
    try:
        dt = datetime.fromisoformat(ts).astimezone()
    except ValueError:
        return ts[:16]
    return dt.strftime("%d %b %H:%M").lstrip("0")


# -- chat ---------------------------------------------------------------------------------------


def sources_html(sources: Sequence[tuple[int, str, str, bool]]) -> str:
    """Sources under an answer: ``(index, citation, passage, cited)``; each passage expands.

    Shows the cited passages when the answer cites any, else every retrieved one. The frame
    (``<details>``, citation, badge) is HTML with every value escaped; each passage inside it is
    Markdown, set off by blank lines, so the Chatbot renders it exactly like an answer: inert
    (``chat_text``), bold and lists as Markdown, formulas by KaTeX (before, the passage was
    escaped into the HTML with ``<br>`` for its line breaks, which showed raw ``**`` and broke
    every multi-line formula).
    """
    if not sources:
        return ""
    cited = [s for s in sources if s[3]]
    shown = cited or list(sources)
    title = "Sources" if cited else "Related course material"
    items = []
    for index, citation, passage, was_cited in shown:
        badge = '<span class="src-cited">cited</span>' if was_cited else ""
        items.append(
            f'<details class="src"><summary><span class="src-n">[{index}]</span> '
            f'{esc(citation)}{badge}</summary><div class="src-passage">\n\n'
            f"{passage_markdown(passage)}\n\n</div></details>"
        )
    return (
        f'<div class="tutor-sources"><div class="src-title">{title}</div>\n\n'
        + "\n\n".join(items)
        + "\n\n</div>"
    )


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def passage_markdown(passage: str) -> str:
    """A passage as Markdown to show inside its source: the answers' path (``chat_text``), its
    headings as bold lines (the citation names the section), and a code fence the chunker cut
    open closed again, so it cannot swallow the rest of the block."""
    text = _HEADING.sub(lambda m: f"**{m.group(1)}**" if m.group(1) else "", _passage_body(passage))
    text = chat_text(text)
    if len(re.findall(r"^\s{0,3}```", text, re.M)) % 2:
        text += "\n```"
    return text


def turn_error(message: str) -> str:
    """An error that ended one turn, shown in the chat under that turn (inert)."""
    return chat_text(f"⚠️ *{message.strip()}*")


def _passage_body(passage: str) -> str:
    """A chunk's text without its leading Markdown headings (the citation names the section)."""
    lines = passage.strip().splitlines()
    while lines and (lines[0].lstrip().startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines).strip() or passage.strip()


def history_messages(messages: Iterable[Any]) -> list[dict[str, Any]]:
    """Stored messages (``tutor.store.Message``) as Chatbot messages, sources included."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "user":
            out.append({"role": "user", "content": chat_text(m.content)})
        elif m.role == "assistant":
            text = m.content
            if m.meta.get("stopped"):
                text = (text + "\n\n" if text else "") + "*⏹ Stopped.*"
            out.append({"role": "assistant", "content": chat_text(text) if text else "…"})
            block = sources_html(stored_sources(m.meta))
            if block:
                out.append({"role": "assistant", "content": block})
    return out


def stored_sources(meta: dict[str, Any]) -> list[tuple[int, str, str, bool]]:
    """The sources of a stored reply (its ``meta``), as ``sources_html`` takes them."""
    citations = list(meta.get("sources") or [])
    passages = list(meta.get("passages") or [])
    cited = set(meta.get("cited") or [])
    return [
        (i + 1, c, passages[i] if i < len(passages) else "", (i + 1) in cited)
        for i, c in enumerate(citations)
    ]


def event_sources(sources: Iterable[Any]) -> list[tuple[int, str, str, bool]]:
    """``tutor.events.SourceRef`` objects, as ``sources_html`` takes them."""
    return [(s.index, s.citation, s.text, bool(s.cited)) for s in sources]


def session_label(session: Any, first_message: str | None) -> str:
    topic = message_snippet(first_message or "", 36) if first_message else "New session"
    return f"{when(session.last_active_at)} · {topic}"


# -- practice card --------------------------------------------------------------------------------


def practice_item(prompt: str, skill_name: str, difficulty: int, *, solved: bool = False) -> str:
    stars = "●" * max(1, min(int(difficulty or 1), 5)) + "○" * (
        5 - max(1, min(int(difficulty or 1), 5))
    )
    status = " · ✅ solved" if solved else ""
    return (
        f'<div class="card-meta">{esc(skill_name)} · difficulty {stars}{status}</div>\n\n'
        f"{chat_text(prompt)}"
    )


PRACTICE_EMPTY = (
    '<div class="card-empty">No problem open. Press <b>Next problem</b> for one picked for '
    "you, or type a problem of your own in the chat.</div>"
)


NEXT_HINT = '<div class="card-empty">Solved! Press <b>Next problem</b> for another one.</div>'


def grading_feedback(correct: bool, message: str, attempts: int) -> str:
    if correct:
        head = '<div class="fb fb-ok">✅ Correct!</div>'
    else:
        head = f'<div class="fb fb-no">✗ Not yet — attempt {attempts}</div>'
    return head + ("\n\n" + chat_text(message) if message and not correct else "")


def mastery_line(
    skill_name: str, before: float, after: float, p_next: float, why_unmoved: str = ""
) -> str:
    """The card's mastery line; ``why_unmoved`` says why the shown value stayed put."""
    arrow = "▲" if after > before else ("▼" if after < before else "•")
    why = f' <span class="fb-why">({esc(why_unmoved)})</span>' if why_unmoved else ""
    return (
        f'<div class="fb-mastery">{arrow} {esc(skill_name)}: mastery {before:.0%} → '
        f"<b>{after:.0%}</b>{why} · next-problem success {p_next:.0%}</div>"
    )


# -- progress ---------------------------------------------------------------------------------------


def _bar(value: float, cls: str) -> str:
    pct = max(0.0, min(1.0, float(value))) * 100
    return (
        f'<div class="pc-track"><div class="pc-fill {cls}" style="width:{pct:.0f}%"></div>'
        f'<span class="pc-val">{pct:.0f}%</span></div>'
    )


def progress_chart(rows: Sequence[Any], *, title: str = "") -> str:
    """Mastery and predicted success per skill (``tutor.progress.SkillProgress`` rows)."""
    if not rows:
        return '<div class="empty">No skills in this course yet.</div>'
    practised = [r for r in rows if r.practised]
    ready = sum(r.p_correct for r in practised) / len(practised) if practised else None
    mastered = sum(1 for r in rows if r.mastered)
    summary = (
        f"<b>{mastered}</b> of {len(rows)} skills mastered"
        + (
            f" · predicted success on practised skills <b>{ready:.0%}</b>"
            if ready is not None
            else ""
        )
        + ("" if practised else " · answer a few practice problems to see your readiness")
    )
    lines = []
    for r in rows:
        detail = f"{r.n_correct}/{r.n_attempts} correct" if r.practised else "not practised yet"
        star = ' <span class="pc-star" title="mastered">★</span>' if r.mastered else ""
        lines.append(
            f'<div class="pc-row{"" if r.practised else " pc-new"}">'
            f'<div class="pc-name">{esc(r.name)}{star}<small>{detail}</small></div>'
            f'<div class="pc-bars">{_bar(r.p_mastery, "pc-m")}{_bar(r.p_correct, "pc-p")}</div>'
            f"</div>"
        )
    head = f"<h3>{esc(title)}</h3>" if title else ""
    legend = (
        '<div class="pc-legend"><span><i class="pc-m"></i>Mastery</span>'
        '<span><i class="pc-p"></i>Predicted success on the next problem</span></div>'
    )
    return (
        f'<div class="progress-chart">{head}<div class="pc-summary">{summary}</div>{legend}'
        f"{''.join(lines)}</div>"
    )


def _heat(p: float) -> str:
    hue = 120 * max(0.0, min(1.0, p))  # red (0) -> green (120)
    return f"hsl({hue:.0f}, 70%, 82%)"


def heatmap(ov: Any) -> str:
    """The class grid: learner x skill mastery, coloured; untouched skills shown pale."""
    if not ov.learners:
        return '<div class="empty">No learners yet. Add students in the <b>Students</b> tab.</div>'
    if not ov.skills:
        return (
            '<div class="empty">No skills yet. Upload an item bank in <b>Practice items</b>.</div>'
        )
    head = "".join(f'<th title="{esc(sid)}">{esc(name)}</th>' for sid, name in ov.skills)
    body = []
    for lid, name, last in ov.learners:
        cells = []
        for sid, sname in ov.skills:
            c = ov.cells.get((lid, sid))
            if c is None or not c.practised:
                cells.append(f'<td class="hm-none" title="{esc(sname)}: not practised">·</td>')
                continue
            tip = (
                f"{sname}: mastery {c.p_mastery:.0%}, predicted success {c.p_correct:.0%}, "
                f"{c.n_correct}/{c.n_attempts} correct"
            )
            risk = " hm-risk" if c.p_correct < ov.threshold else ""
            cells.append(
                f'<td class="hm-cell{risk}" style="background:{_heat(c.p_mastery)}" '
                f'title="{esc(tip)}">{c.p_mastery:.0%}</td>'
            )
        body.append(
            f'<tr><th class="hm-learner" title="last active {esc(when(last))}">{esc(name)}</th>'
            f"{''.join(cells)}</tr>"
        )
    legend = (
        '<div class="hm-legend">Mastery: <span style="background:hsl(0,70%,82%)">0%</span>'
        '<span style="background:hsl(60,70%,82%)">50%</span>'
        '<span style="background:hsl(120,70%,82%)">100%</span>'
        ' · <span class="hm-none">·</span> not practised · outlined: predicted success below '
        f"{ov.threshold:.0%}</div>"
    )
    return (
        f'<div class="heatmap-wrap"><table class="heatmap"><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{legend}</div>"
    )


def at_risk(ov: Any) -> str:
    if not ov.at_risk:
        return (
            '<div class="empty">Nobody is at risk: no learner has a predicted success below '
            f"{ov.threshold:.0%} on a skill they practised.</div>"
        )
    rows = []
    for a in ov.at_risk:
        weak = ", ".join(f"{esc(r.name)} <b>{r.p_correct:.0%}</b>" for r in a.weak)
        rows.append(
            f"<tr><td>{esc(a.name)}</td><td>{weak}</td><td>{a.mean_p_correct:.0%}</td>"
            f"<td>{esc(when(a.last_active_at))}</td></tr>"
        )
    return (
        '<table class="tutor-table"><thead><tr><th>Learner</th><th>Weak skills (predicted '
        "success on the next problem)</th><th>Mean over practised skills</th><th>Last active</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


# -- teacher tables -----------------------------------------------------------------------------

INDEX_WARNING = (
    '<div class="kb-warning">⚠️ The search index of this course is damaged, so answers find '
    "course passages by keywords only. On the server, <code>tutor kb stats --check</code> names "
    "the problem; to rebuild the index, remove the course's documents and add them again.</div>"
)
DOC_HEADERS = ["Title", "File", "Format", "Pages", "Chunks", "Added"]
INGEST_HEADERS = ["File", "Result", "Chunks", "Details"]
STUDENT_HEADERS = ["Account", "Learner", "Sessions", "Attempts", "Last active"]
SESSION_HEADERS = ["Started", "Last active", "Messages", "First message"]
ATTEMPT_HEADERS = ["When", "Item", "Skills", "Answer", "Result", "Hint level"]
BANK_HEADERS = ["Skill", "Name", "Items", "Prerequisites"]


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str = "", cls: str = ""
) -> str:
    """An HTML table; every cell is escaped."""
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    if not body:
        return f'<div class="empty">{esc(empty)}</div>' if empty else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return (
        f'<div class="table-wrap"><table class="tutor-table {cls}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def document_rows(docs: Iterable[Any]) -> list[list[Any]]:
    rows = []
    for d in docs:
        added = datetime.fromtimestamp(d.added_at).strftime("%d %b %Y %H:%M").lstrip("0")
        rows.append([d.title, d.name, d.format, d.pages or "", d.n_chunks, added])
    return rows


def ingest_rows(results: Iterable[tuple[str, str, int, str]]) -> list[list[Any]]:
    return [[name, STATUS_LABELS.get(st, st), n or "", msg] for name, st, n, msg in results]


def doc_choice(d: Any) -> tuple[str, str]:
    return (f"{d.title} ({d.name})", d.doc_id)
