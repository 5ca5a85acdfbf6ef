"""Structure-following chunking: headings first, then paragraphs, then sentences, to a token budget.

A document's blocks are grouped into sections (a heading and the blocks under it); a chunk never
spans two sections, so each chunk has one section path (``Fractions > Adding fractions``).
Inside a section, units are sentences of paragraphs and whole list items, table rows, math and
code blocks. Units are packed greedily up to the budget; a chunk preferably ends at a block
boundary (when that keeps it at least half full), otherwise between sentences, never inside a
math block, table row or list item unless one alone is over the budget. Consecutive chunks of a
section overlap by up to ``overlap`` tokens of whole sentences/units.

Every chunk's text is the slice ``document.text[char_start:char_end]``; the text that gets
embedded adds the title and section path in front (``embedding_text``).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from knowledge_base.loaders import Block, Document

# Bump when chunk boundaries change for the same settings: stored documents get re-chunked.
CHUNKER_VERSION = 1

# Counts tokens for a batch of texts (the embedder's tokenizer, or ``approx_token_counts``).
TokenCounter = Callable[[Sequence[str]], list[int]]

_WORDISH = re.compile(r"\w+|[^\w\s]")


def approx_token_counts(texts: Sequence[str]) -> list[int]:
    """Word-piece-like estimate (words + punctuation) for embedders without a tokenizer."""
    return [len(_WORDISH.findall(t)) for t in texts]


@dataclass
class Chunk:
    doc_id: str
    ordinal: int  # position in the document, from 0
    text: str
    title: str
    section: str  # heading path, "A > B"; "" before the first heading
    pages: list[int] = field(default_factory=list)
    char_start: int = 0
    char_end: int = 0
    n_tokens: int = 0

    @property
    def chunk_id(self) -> str:
        return f"{self.doc_id}:{self.ordinal}"

    def embedding_text(self) -> str:
        return embedding_text(self.title, self.section, self.text)


def section_label(title: str, section: str) -> str:
    """The section path without a leading element that repeats the document title."""
    parts = [p for p in section.split(" > ") if p] if section else []
    if parts and _same(parts[0], title):
        parts = parts[1:]
    return " > ".join(parts)


def _same(a: str, b: str) -> bool:
    return re.sub(r"\W+", "", a).lower() == re.sub(r"\W+", "", b).lower()


def embedding_text(title: str, section: str, text: str) -> str:
    """What gets embedded: the title and section path give every chunk its context."""
    label = section_label(title, section)
    header = f"{title} > {label}" if label else title
    return f"{header}\n{text}" if header else text


@dataclass
class _Unit:
    start: int
    end: int
    tokens: int
    block_start: bool  # first unit of a block: the preferred place to end a chunk before
    kind: str
    page: int | None


# Sentence ends: . ! ? followed by space and an upper-case letter, digit, quote or bracket.
_SENT = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[$\\])")
_ABBREV = re.compile(r"(?i)\b(e\.g|i\.e|etc|vs|fig|eq|no|p|pp|dr|mr|mrs|ms|st|approx|ca|cf)\.$")
_ABBREV_WINDOW = 9  # the longest abbreviation ("approx.") and the character before it
_INLINE_MATH = re.compile(r"\$[^$\n]+\$|\\\(.+?\\\)")


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) spans of sentences of ``text`` (shifted by ``offset``).

    Never splits inside inline math (``$...$``, ``\\(...\\)``) or after common abbreviations.
    """
    protected = [(m.start(), m.end()) for m in _INLINE_MATH.finditer(text)]
    starts = [a for a, _ in protected]  # sorted, non-overlapping
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENT.finditer(text):
        cut = m.start()
        # (constant work per candidate: "Dr. Smith said e.g. ..." repeated, or many inline
        # formulas, made these checks quadratic in the paragraph's length)
        k = bisect.bisect_right(starts, cut) - 1
        if k >= 0 and cut < protected[k][1]:
            continue
        if _ABBREV.search(text, max(start, cut - _ABBREV_WINDOW), cut):
            continue
        piece_end = m.start() + len(m.group(0).rstrip())
        if text[start:piece_end].strip():
            spans.append((start, piece_end))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return [(offset + a, offset + b) for a, b in spans]


def _split_lines(text: str, offset: int) -> list[tuple[int, int]]:
    spans = []
    pos = 0
    for line in text.split("\n"):
        if line.strip():
            lead = len(line) - len(line.lstrip())
            spans.append((offset + pos + lead, offset + pos + len(line.rstrip())))
        pos += len(line) + 1
    return spans


def _split_words(text: str, offset: int, budget: int, count: TokenCounter) -> list[tuple[int, int]]:
    """Last resort for a single over-long sentence/line: windows of whole words."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    if not words:
        return []
    sizes = count([text[a:b] for a, b in words])
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        total = 0
        j = i
        while j < len(words) and (total + sizes[j] <= budget or j == i):
            total += sizes[j]
            j += 1
        spans.append((offset + words[i][0], offset + words[j - 1][1]))
        i = j
    return spans


def _sections(doc: Document) -> list[tuple[list[str], list[Block]]]:
    """Blocks grouped under their heading path; a heading starts a new section."""
    out: list[tuple[list[str], list[Block]]] = []
    stack: list[tuple[int, str]] = []
    current: list[Block] = []
    path: list[str] = []
    for b in doc.blocks:
        if b.kind == "heading":
            if current:
                out.append((path, current))
            while stack and stack[-1][0] >= b.level:
                stack.pop()
            stack.append((b.level, b.heading or doc.block_text(b).strip()))
            path = [h for _, h in stack]
            current = [b]
        else:
            current.append(b)
    if current:
        out.append((path, current))
    # A section made of its heading alone yields no chunk (its name lives on in the paths
    # of the sections below it).
    return [(p, bl) for p, bl in out if any(x.kind != "heading" for x in bl)]


def chunk_document(
    doc: Document,
    *,
    max_tokens: int = 300,
    overlap: int = 40,
    count_tokens: TokenCounter = approx_token_counts,
) -> list[Chunk]:
    """Split ``doc`` into chunks of at most ``max_tokens`` tokens of embedded text.

    The budget covers the title/section header that ``embedding_text`` prepends, so the
    embedder sees every chunk whole.
    """
    if max_tokens < 8:
        raise ValueError(f"max_tokens must be >= 8, got {max_tokens}")
    overlap = max(0, min(overlap, max_tokens // 2))
    chunks: list[Chunk] = []
    sections = _sections(doc)
    headers = [embedding_text(doc.title, " > ".join(p), "") for p, _ in sections]
    header_tokens = count_tokens(headers) if headers else []
    for (path, blocks), htok in zip(sections, header_tokens, strict=True):
        section = " > ".join(path)
        budget = max(8, max_tokens - htok - 1)
        units = _units(doc, blocks, budget, count_tokens)
        for a, b in _pack(units, budget, overlap):
            text = doc.text[units[a].start : units[b - 1].end]
            pages = sorted({u.page for u in units[a:b] if u.page is not None})
            chunks.append(
                Chunk(
                    doc_id=doc.doc_id,
                    ordinal=len(chunks),
                    text=text,
                    title=doc.title,
                    section=section,
                    pages=pages,
                    char_start=units[a].start,
                    char_end=units[b - 1].end,
                )
            )
    if chunks:
        counts = count_tokens([c.embedding_text() for c in chunks])
        for c, n in zip(chunks, counts, strict=True):
            c.n_tokens = n
    return chunks


def _units(doc: Document, blocks: list[Block], budget: int, count: TokenCounter) -> list[_Unit]:
    """Blocks -> packable units: sentences of paragraphs; whole atomic blocks when they fit."""
    raw: list[tuple[int, int, bool, str, int | None]] = []
    for blk in blocks:
        text = doc.text[blk.start : blk.end]
        if blk.kind in ("paragraph", "heading"):
            spans = split_sentences(text, blk.start) if blk.kind == "paragraph" else []
            spans = spans or [(blk.start, blk.end)]
        else:
            spans = [(blk.start, blk.end)]
        for k, (s, e) in enumerate(spans):
            # no chunk starts or ends in whitespace ("## Heading " keeps its trailing space in
            # the block, a list line its indentation)
            while e > s and doc.text[e - 1].isspace():
                e -= 1
            while s < e and doc.text[s].isspace():
                s += 1
            if s < e:
                raw.append((s, e, k == 0, blk.kind, blk.page))
    sizes = count([doc.text[s:e] for s, e, *_ in raw])
    units: list[_Unit] = []
    for (s, e, first, kind, page), n in zip(raw, sizes, strict=True):
        if n <= budget:
            units.append(_Unit(s, e, n, first, kind, page))
            continue
        # Over budget alone: split atomic blocks by lines (math, code, tables, long items),
        # then by sentences, then by words.
        text = doc.text[s:e]
        pieces = _split_lines(text, s) if kind in ("math", "code", "table_row") else []
        if len(pieces) <= 1:
            pieces = split_sentences(text, s)
        if len(pieces) <= 1:
            pieces = _split_words(text, s, budget, count)
        psizes = count([doc.text[a:b] for a, b in pieces])
        for k, ((a, b), m) in enumerate(zip(pieces, psizes, strict=True)):
            if m > budget:
                words = _split_words(doc.text[a:b], a, budget, count)
                wsizes = count([doc.text[x:y] for x, y in words])
                for w, ((x, y), ws) in enumerate(zip(words, wsizes, strict=True)):
                    units.append(_Unit(x, y, ws, first and k == 0 and w == 0, kind, page))
            else:
                units.append(_Unit(a, b, m, first and k == 0, kind, page))
    return units


def _pack(units: list[_Unit], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing into [a, b) unit ranges with block-boundary preference and overlap."""
    out: list[tuple[int, int]] = []
    n = len(units)
    i = 0
    prev_end = 0
    while i < n:
        total = 0
        j = i
        while j < n and (total + units[j].tokens <= budget or j == i):
            total += units[j].tokens
            j += 1
        if j < n:
            # Prefer ending before a block start if the chunk stays at least half full.
            acc = 0
            best = None
            for b in range(i + 1, j + 1):
                acc += units[b - 1].tokens
                if b < n and b > prev_end and units[b].block_start and acc >= budget // 2:
                    best = b
            if best is not None:
                j = best
            # Never end a chunk on a heading: it belongs with what follows.
            while j - 1 > max(i, prev_end) and units[j - 1].kind == "heading":
                j -= 1
        out.append((i, j))
        prev_end = j
        if j >= n:
            break
        # Overlap: restart a few whole units back, without re-including a heading.
        k = j
        acc = 0
        while k - 1 > i and acc + units[k - 1].tokens <= overlap and units[k - 1].kind != "heading":
            k -= 1
            acc += units[k].tokens
        if k < j:
            # The next chunk must still reach past j; otherwise drop the overlap.
            t = sum(u.tokens for u in units[k:j])
            if t + units[j].tokens > budget:
                k = j
        i = k
    return out
