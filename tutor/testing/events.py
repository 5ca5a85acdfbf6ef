"""What a student reads from a turn's events, for tests: the UI rebuilds the text this way."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def seen(events: Iterable[Any]) -> str:
    """The text a student is left with: text deltas, restarted at every reset."""
    out = ""
    for e in events:
        if e.kind == "reset":
            out = ""
        elif e.kind == "text":
            out += e.text
    return out


def ever_shown(events: Iterable[Any]) -> str:
    """Every piece of text that reached the screen, even if withdrawn later."""
    return "".join(e.text for e in events if e.kind == "text")
