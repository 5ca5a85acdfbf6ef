"""The small interfaces the tutor layer needs from the layers below it.

``TutorAgent`` (and the UI and evals that hand it objects) depend on these, not on the concrete
classes, so tests pass fakes and ``knowledge_base`` never has to import ``tutor``:

- ``Generator`` (``tutor.lm.base``): a chat LM that streams text deltas;
- ``LearnerStoreLike`` (``tutor.store.protocol``): what the agent reads and writes per turn;
- ``KnowledgeBaseLike`` / ``PassageLike`` (here): retrieval with citations;
- ``Embedder`` (``knowledge_base.embed``): texts to vectors.

``knowledge_base.KnowledgeBase`` and its ``Passage`` satisfy the two protocols defined here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


class PassageLike(Protocol):
    """One retrieved chunk as the agent shows and cites it."""

    @property
    def chunk_id(self) -> str: ...

    @property
    def doc_id(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def citation(self) -> str:
        """``Title — Section, p. N``."""
        ...

    @property
    def score(self) -> float:
        """The ranking score of the search mode (best first)."""
        ...

    @property
    def similarity(self) -> float | None:
        """Cosine similarity to the query, comparable to ``kb.min_score`` (None: not known)."""
        ...


@runtime_checkable
class KnowledgeBaseLike(Protocol):
    """What the agent calls on the knowledge base: a search, best passages first."""

    def search(
        self, query: str, k: int | None = None, collection: str | None = None
    ) -> Sequence[PassageLike]: ...
