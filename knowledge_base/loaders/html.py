"""HTML -> blocks (BeautifulSoup): headings, paragraphs, lists, tables; scripts and
navigation skipped.
"""

from __future__ import annotations

from typing import Any

from knowledge_base.loaders.blocks import Block, Builder, collapse, para_kind

_SKIP_TAGS = {
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "canvas",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "button",
    "select",
    "head",
    "object",
    "embed",
    "video",
    "audio",
}
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_CONTAINERS = {
    "html",
    "body",
    "main",
    "article",
    "section",
    "div",
    "ul",
    "ol",
    "dl",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "blockquote",
    "figure",
    "details",
    "center",
    "hgroup",
}
_LEAVES = {"p", "dt", "dd", "figcaption", "caption", "address", "summary", "legend"}
_BLOCK_TAGS = {"li", "tr", "pre", "math"}  # "math" only with display="block" (see walk)
# Containers nested deeper than this are read as one paragraph each (real pages stay far below).
MAX_HTML_DEPTH = 100


def parse_html(data: bytes, name: str) -> tuple[str, list[Block], str]:
    """HTML -> blocks of the main text: navigation, headers, footers and scripts are dropped;
    ``<main>`` or a single ``<article>`` is preferred when present."""
    import warnings

    from bs4 import BeautifulSoup

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        soup = BeautifulSoup(data, "html.parser")
    title = ""
    if soup.title and soup.title.string:
        title = collapse(soup.title.string)
    root = soup.find("main")
    if root is None:
        articles = soup.find_all("article")
        root = articles[0] if len(articles) == 1 else (soup.body or soup)
    _drop_hidden(root)
    reader = _Reader()
    reader.walk(root)
    return reader.b.text, reader.b.blocks, title or reader.h1


def _drop_hidden(root: Any) -> None:
    """Drop elements hidden from readers and site chrome by role. (Not ``tag.decomposed``: on a
    live tag bs4 4.x answers it by searching the tag's whole subtree, which made deeply nested
    pages quadratic; a decomposed tag has the flag in its own __dict__.)"""
    for tag in root.find_all(True):
        if "_decomposed" in vars(tag):
            continue
        role = (tag.get("role") or "").lower() if tag.attrs else ""
        if (
            tag.name in _SKIP_TAGS
            or role in ("navigation", "banner", "contentinfo", "search")
            or (tag.attrs and tag.has_attr("hidden"))
            or (tag.attrs and tag.get("aria-hidden") == "true")
        ):
            tag.decompose()


class _Reader:
    """Turns the element tree into blocks.

    Every method visits each node once, with an explicit stack: a hostile page may nest
    thousands of elements (recursion would overflow; per-node ancestor walks were cubic).
    """

    def __init__(self) -> None:
        from bs4 import Comment, NavigableString, Tag

        self.Comment, self.NavigableString, self.Tag = Comment, NavigableString, Tag
        self.b = Builder()
        self.h1 = ""

    def text_of(self, node: Any, skip_lists: bool = False) -> str:
        """Readable text of an element; ``skip_lists`` leaves out nested lists (of an <li>)."""
        parts: list[str] = []
        in_math = node.name == "math"  # MathML is read from its alttext (see walk)
        stack = list(reversed(node.contents))
        while stack:
            d = stack.pop()
            if isinstance(d, self.Comment):
                continue
            if isinstance(d, self.NavigableString):
                if not in_math:
                    parts.append(str(d))
                continue
            if not isinstance(d, self.Tag):
                continue
            if d.name == "br":
                parts.append(" ")
            elif d.name == "math":
                parts.append(f" {d.get('alttext') or d.get_text(' ')} ")
                continue
            elif skip_lists and d.name in ("ul", "ol"):
                continue
            stack.extend(reversed(d.contents))
        return collapse("".join(parts))

    def own_lists(self, li: Any) -> list[Any]:
        """The lists nested in ``li`` itself (not in a deeper <li>), in document order."""
        out: list[Any] = []
        stack = list(reversed(li.contents))
        while stack:
            d = stack.pop()
            if not isinstance(d, self.Tag) or d.name == "li":
                continue
            if d.name in ("ul", "ol"):
                out.append(d)
            stack.extend(reversed(d.contents))
        return out

    def walk(self, node: Any, depth: int = 0) -> None:
        """Blocks of ``node``'s children; runs of inline content become paragraphs."""
        b = self.b
        inline: list[str] = []

        def flush() -> None:
            text = collapse("".join(inline))
            inline.clear()
            if text:
                b.add(para_kind(text), text)

        for child in list(node.children):
            if isinstance(child, self.Comment):
                continue
            if isinstance(child, self.NavigableString):
                inline.append(str(child))
                continue
            if not isinstance(child, self.Tag):
                continue
            tag = child.name
            if tag == "br":
                inline.append(" ")
            elif tag == "math" and child.get("display") != "block":
                inline.append(f" {child.get('alttext') or self.text_of(child)} ")
            elif tag in _HEADINGS or tag in _BLOCK_TAGS or tag in _LEAVES or tag in _CONTAINERS:
                flush()
                self._block(child, depth)
            else:
                inline.append(child.get_text())
        flush()

    def _block(self, child: Any, depth: int) -> None:
        """A block-level element: a heading, list item, table row, code, display math, a leaf
        paragraph, or a container walked in turn."""
        b, tag = self.b, child.name
        if tag in _HEADINGS:
            text = self.text_of(child)
            if text:
                b.add("heading", text, level=_HEADINGS[tag])
                if _HEADINGS[tag] == 1 and not self.h1:
                    self.h1 = text
        elif tag == "li":
            deep = depth >= MAX_HTML_DEPTH  # then the nested lists stay in the item's text
            text = self.text_of(child, skip_lists=not deep)
            if text:
                b.add("list_item", text)
            for sub in [] if deep else self.own_lists(child):
                self.walk(sub, depth + 1)
        elif tag == "tr":
            cells = [self.text_of(c) for c in child.find_all(["td", "th"], recursive=False)]
            if any(cells):
                b.add("table_row", "| " + " | ".join(cells) + " |")
        elif tag == "pre":
            b.add("code", child.get_text())
        elif tag == "math":
            b.add("math", child.get("alttext") or self.text_of(child))
        elif tag in _LEAVES or depth >= MAX_HTML_DEPTH:
            # (containers nested deeper than any real page become one paragraph)
            text = self.text_of(child)
            if text:
                b.add(para_kind(text), text)
        else:
            self.walk(child, depth + 1)
