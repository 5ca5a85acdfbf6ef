"""Markdown and plain text -> blocks. The text *is* the file, so offsets point into it."""

from __future__ import annotations

import re

from knowledge_base.loaders.blocks import Block, BlockKind

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_ATX_EMPTY = re.compile(r"^ {0,3}(#{1,6})[ \t]*$")
_LIST = re.compile(r"^([ \t]*)([-*+•]|\d{1,3}[.)])[ \t]+\S")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HR = re.compile(r"^ {0,3}([-*_])([ \t]*\1){2,}[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def clean_inline(text: str) -> str:
    """Heading text without Markdown emphasis, links and trailing colons."""
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__|\*|_|`)(.+?)\1", r"\2", text)
    return re.sub(r"\s+", " ", text).strip()


def _lines(text: str) -> list[tuple[int, int, str]]:
    """(start, end-without-newline, line) for each line."""
    out = []
    pos = 0
    for line in text.split("\n"):
        out.append((pos, pos + len(line), line))
        pos += len(line) + 1
    return out


def parse_markdown(text: str) -> tuple[str, list[Block], str]:
    """Markdown -> blocks with offsets into ``text`` (which is returned unchanged)."""
    parser = _Markdown(text)
    parser.run()
    return text, parser.blocks, parser.title


Line = tuple[int, int, str]  # (start, end without the newline, the line)


class _Markdown:
    """One pass over the lines. Each block rule looks at line ``i``: when the rule applies it
    adds its block and returns the index of the next line to read, else None."""

    def __init__(self, text: str) -> None:
        self.lines = _lines(text)
        self.n = len(self.lines)
        self.blocks: list[Block] = []
        self.title = ""
        self.para: list[Line] = []  # the current paragraph's lines

    def run(self) -> None:
        rules = (
            self._fence,
            self._math,
            self._atx_heading,
            self._setext_heading,
            self._rule,
            self._table_row,
            self._list_item,
        )
        i = self._front_matter()
        while i < self.n:
            if not self.lines[i][2].strip():
                self._flush_para()
                i += 1
                continue
            for rule in rules:
                nxt = rule(i)
                if nxt is not None:
                    break
            else:
                # A paragraph line (a block quote too: one paragraph per quote, until a blank).
                self.para.append(self.lines[i])
                nxt = i + 1
            i = nxt
        self._flush_para()

    def _front_matter(self) -> int:
        """YAML front matter is skipped, but its title is used; the first line to read."""
        lines, n = self.lines, self.n
        if n and lines[0][2].strip() == "---":
            for j in range(1, min(n, 60)):
                if lines[j][2].strip() in ("---", "..."):
                    for _, _, ln in lines[1:j]:
                        m = re.match(r"^title:\s*[\"']?(.*?)[\"']?\s*$", ln)
                        if m:
                            self.title = m.group(1)
                    return j + 1
        return 0

    def _flush_para(self, kind: BlockKind = "paragraph") -> None:
        para = self.para
        if para:
            first = para[0][2].lstrip()
            k: BlockKind = kind
            if kind == "paragraph" and (first.startswith("$$") or first.startswith("\\[")):
                k = "math"
            self.blocks.append(Block(k, para[0][0] + _indent(para[0][2]), para[-1][1]))
            para.clear()

    def _heading(self, start: int, end: int, level: int, heading: str) -> None:
        self.blocks.append(Block("heading", start, end, level, heading=heading))
        if level == 1 and not self.title:
            self.title = heading

    def _fence(self, i: int) -> int | None:
        start, _, line = self.lines[i]
        m = _FENCE.match(line)
        if not m:
            return None
        self._flush_para()
        fence = m.group(1)
        j = i + 1
        while j < self.n and not self.lines[j][2].strip().startswith(fence[:3]):
            j += 1
        j = min(j, self.n - 1)
        self.blocks.append(Block("code", start, self.lines[j][1]))
        return j + 1

    def _math(self, i: int) -> int | None:
        start, _, line = self.lines[i]
        stripped = line.strip()
        if not (stripped.startswith("$$") or stripped.startswith("\\[")):
            return None
        self._flush_para()
        closer = "$$" if stripped.startswith("$$") else "\\]"
        j = i
        if closer not in stripped[2:]:
            j = i + 1
            while j < self.n and closer not in self.lines[j][2]:
                j += 1
            j = min(j, self.n - 1)
        self.blocks.append(Block("math", start + _indent(line), self.lines[j][1]))
        return j + 1

    def _atx_heading(self, i: int) -> int | None:
        start, end, line = self.lines[i]
        m = _ATX.match(line) or _ATX_EMPTY.match(line)
        if not m:
            return None
        self._flush_para()
        level = len(m.group(1))
        heading = clean_inline(m.group(2)) if m.lastindex and m.lastindex >= 2 else ""
        if heading:
            self._heading(start + _indent(line), end, level, heading)
        return i + 1

    def _setext_heading(self, i: int) -> int | None:
        """A one-line paragraph underlined with ``===`` or ``---``."""
        _, end, line = self.lines[i]
        para = self.para
        if not (
            para
            and len(para) == 1
            and _SETEXT.match(line)
            and not _LIST.match(para[0][2])
            and not para[0][2].lstrip().startswith(("|", ">"))
        ):
            return None
        level = 1 if line.strip().startswith("=") else 2
        self._heading(para[0][0] + _indent(para[0][2]), end, level, clean_inline(para[0][2]))
        para.clear()
        return i + 1

    def _rule(self, i: int) -> int | None:
        if not _HR.match(self.lines[i][2]):
            return None
        self._flush_para()
        return i + 1

    def _table_row(self, i: int) -> int | None:
        start, _, line = self.lines[i]
        if not line.strip().startswith("|"):
            return None
        self._flush_para()
        # A table row; the header row absorbs the |---| separator under it.
        j = i
        if i + 1 < self.n and _TABLE_SEP.match(self.lines[i + 1][2]):
            j = i + 1
        self.blocks.append(Block("table_row", start + _indent(line), self.lines[j][1]))
        return j + 1

    def _list_item(self, i: int) -> int | None:
        start, _, line = self.lines[i]
        lm = _LIST.match(line)
        if not lm:
            return None
        self._flush_para()
        lines, n = self.lines, self.n
        indent = len(lm.group(1).expandtabs(4))
        j = i + 1
        # Continuation lines: non-blank, not a new item/heading/table, indented or lazy.
        while j < n:
            nxt = lines[j][2]
            if not nxt.strip() or _LIST.match(nxt) or _ATX.match(nxt) or _FENCE.match(nxt):
                break
            if nxt.strip().startswith(("|", "$$")) and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            j += 1
        # A blank line followed by an indented paragraph still belongs to the item.
        while (
            j + 1 < n
            and not lines[j][2].strip()
            and lines[j + 1][2].strip()
            and _indent(lines[j + 1][2]) > indent + 1
            and not _LIST.match(lines[j + 1][2])
        ):
            j += 2
            while j < n and lines[j][2].strip() and not _LIST.match(lines[j][2]):
                j += 1
        self.blocks.append(Block("list_item", start + _indent(line), lines[j - 1][1]))
        return j


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def parse_text(text: str) -> tuple[str, list[Block], str]:
    """Plain text: paragraphs split on blank lines; list lines and underlined headings kept.

    A short first line followed by a blank line is taken as the title.
    """
    lines = _lines(text)
    blocks: list[Block] = []
    title = ""
    para: list[tuple[int, int, str]] = []

    def flush() -> None:
        if para:
            blocks.append(Block("paragraph", para[0][0] + _indent(para[0][2]), para[-1][1]))
            para.clear()

    first_text = next((k for k, ln in enumerate(lines) if ln[2].strip()), None)
    for k, (start, end, line) in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            flush()
            continue
        if para and len(para) == 1 and _SETEXT.match(line) and len(stripped) >= 3:
            level = 1 if stripped.startswith("=") else 2
            heading = para[0][2].strip()
            blocks.append(
                Block("heading", para[0][0] + _indent(para[0][2]), end, level, heading=heading)
            )
            title = title or (heading if level == 1 else "")
            para.clear()
            continue
        if (
            k == first_text
            and len(stripped) <= 100
            and (k + 1 >= len(lines) or not lines[k + 1][2].strip())
            and not stripped.endswith((".", ",", ";"))
            and not _LIST.match(line)
        ):
            blocks.append(Block("heading", start + _indent(line), end, 1, heading=stripped))
            title = stripped
            continue
        if _LIST.match(line):
            flush()
            blocks.append(Block("list_item", start + _indent(line), end))
            continue
        if blocks and blocks[-1].kind == "list_item" and not para and _indent(line) > 0:
            # indented continuation of the previous list line
            prev = blocks.pop()
            blocks.append(Block("list_item", prev.start, end))
            continue
        para.append((start, end, line))
    flush()
    return text, blocks, title
