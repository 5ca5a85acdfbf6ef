"""HTML -> blocks (BeautifulSoup): headings, paragraphs, lists, tables; scripts and
navigation skipped.
"""

from __future__ import annotations

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
# Containers nested deeper than this are read as one paragraph each (real pages stay far below).
MAX_HTML_DEPTH = 100


def parse_html(data: bytes, name: str) -> tuple[str, list[Block], str]:
    """HTML -> blocks of the main text: navigation, headers, footers and scripts are dropped;
    ``<main>`` or a single ``<article>`` is preferred when present."""
    import warnings

    from bs4 import BeautifulSoup, Comment, NavigableString, Tag

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
    # Drop elements hidden from readers and site chrome by role. (Not ``tag.decomposed``: on a
    # live tag bs4 4.x answers it by searching the tag's whole subtree, which made deeply
    # nested pages quadratic; a decomposed tag has the flag in its own __dict__.)
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
    b = Builder()
    h1 = ""

    # Every helper below visits each node once, with an explicit stack: a hostile page may nest
    # thousands of elements (recursion would overflow; per-node ancestor walks were cubic).
    def text_of(node: Tag, skip_lists: bool = False) -> str:
        """Readable text of an element; ``skip_lists`` leaves out nested lists (of an <li>)."""
        parts: list[str] = []
        in_math = node.name == "math"  # MathML is read from its alttext (see walk)
        stack = list(reversed(node.contents))
        while stack:
            d = stack.pop()
            if isinstance(d, Comment):
                continue
            if isinstance(d, NavigableString):
                if not in_math:
                    parts.append(str(d))
                continue
            if not isinstance(d, Tag):
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

    def own_lists(li: Tag) -> list[Tag]:
        """The lists nested in ``li`` itself (not in a deeper <li>), in document order."""
        out: list[Tag] = []
        stack = list(reversed(li.contents))
        while stack:
            d = stack.pop()
            if not isinstance(d, Tag) or d.name == "li":
                continue
            if d.name in ("ul", "ol"):
                out.append(d)
            stack.extend(reversed(d.contents))
        return out

    def walk(node: Tag, depth: int = 0) -> None:
        nonlocal h1
        inline: list[str] = []

        def flush() -> None:
            text = collapse("".join(inline))
            inline.clear()
            if text:
                b.add(para_kind(text), text)

        for child in list(node.children):
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                inline.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            tag = child.name
            if tag in _HEADINGS:
                flush()
                text = text_of(child)
                if text:
                    b.add("heading", text, level=_HEADINGS[tag])
                    if _HEADINGS[tag] == 1 and not h1:
                        h1 = text
            elif tag == "li":
                flush()
                deep = depth >= MAX_HTML_DEPTH  # then the nested lists stay in the item's text
                text = text_of(child, skip_lists=not deep)
                if text:
                    b.add("list_item", text)
                for sub in [] if deep else own_lists(child):
                    walk(sub, depth + 1)
            elif tag == "tr":
                flush()
                cells = [text_of(c) for c in child.find_all(["td", "th"], recursive=False)]
                if any(cells):
                    b.add("table_row", "| " + " | ".join(cells) + " |")
            elif tag == "pre":
                flush()
                b.add("code", child.get_text())
            elif tag == "math" and child.get("display") == "block":
                flush()
                b.add("math", child.get("alttext") or text_of(child))
            elif tag in _LEAVES or (tag in _CONTAINERS and depth >= MAX_HTML_DEPTH):
                # (containers nested deeper than any real page become one paragraph)
                flush()
                text = text_of(child)
                if text:
                    b.add(para_kind(text), text)
            elif tag in _CONTAINERS:
                flush()
                walk(child, depth + 1)
            elif tag == "br":
                inline.append(" ")
            elif tag == "math":
                inline.append(f" {child.get('alttext') or text_of(child)} ")
            else:
                inline.append(child.get_text())
        flush()

    walk(root)
    return b.text, b.blocks, title or h1
