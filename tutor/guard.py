"""Filters on the streamed reply: the answer-leak guard and the citation filter.

``LeakGuard`` releases text word by word, only after checking that everything released so far
does not state the open problem's answer (``tutor.grading.mentions_answer``). When it would,
nothing more is released and the agent regenerates or falls back to the next hint; the words
already shown never contain the answer, because the check runs before each release.

``CitationFilter`` removes ``[n]`` markers that point at no retrieved passage, so the tutor
never shows an invented citation, and records which passages were really cited.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_CITE = re.compile(r"\[(\d{1,2})\]")


class LeakGuard:
    def __init__(self, leaks: Callable[[str], bool]):
        self.leaks = leaks
        self.released = ""
        self.pending = ""
        self.tripped = False

    def feed(self, delta: str) -> str:
        """Return the text that is safe to show now ("" while holding back)."""
        if self.tripped:
            return ""
        self.pending += delta
        cut = max(self.pending.rfind(" "), self.pending.rfind("\n"))
        if cut < 0:
            return ""
        candidate, rest = self.pending[: cut + 1], self.pending[cut + 1 :]
        if self.leaks(self.released + candidate):
            self.tripped = True
            return ""
        self.released += candidate
        self.pending = rest
        return candidate

    def finish(self) -> str:
        if self.tripped:
            return ""
        if self.pending and self.leaks(self.released + self.pending):
            self.tripped = True
            return ""
        out, self.pending = self.pending, ""
        self.released += out
        return out


class CitationFilter:
    def __init__(self, n_passages: int):
        self.n = n_passages
        self.buffer = ""
        self.cited: list[int] = []

    def _clean(self, text: str) -> str:
        def repl(m: re.Match[str]) -> str:
            i = int(m.group(1))
            if 1 <= i <= self.n:
                if i not in self.cited:
                    self.cited.append(i)
                return m.group(0)
            return ""

        return _CITE.sub(repl, text)

    def feed(self, delta: str) -> str:
        self.buffer += delta
        # hold back an unfinished "[12" at the end
        open_at = self.buffer.rfind("[")
        if open_at >= 0 and "]" not in self.buffer[open_at:] and len(self.buffer) - open_at <= 4:
            ready, self.buffer = self.buffer[:open_at], self.buffer[open_at:]
        else:
            ready, self.buffer = self.buffer, ""
        return self._clean(ready)

    def finish(self) -> str:
        out, self.buffer = self._clean(self.buffer), ""
        return out
