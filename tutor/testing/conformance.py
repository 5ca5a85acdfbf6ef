"""Static checks that the real classes and the fakes satisfy the layer protocols.

Nothing here runs: ``mypy`` (``[tool.mypy]`` in pyproject.toml) type-checks each function, so a
backend, a store, a knowledge base or a fake that drifts from its protocol fails ``make check``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knowledge_base import KnowledgeBase
    from knowledge_base.embed import Embedder, SentenceTransformerEmbedder
    from knowledge_base.retrieve import Passage
    from knowledge_base.testing import HashEmbedder
    from tutor.lm.base import Generator
    from tutor.lm.hf import HFGenerator
    from tutor.lm.openai import OpenAIGenerator
    from tutor.protocols import KnowledgeBaseLike, PassageLike
    from tutor.store import LearnerStore
    from tutor.store.protocol import LearnerStoreLike, TutorStore
    from tutor.testing.fake_lm import ScriptedGenerator


def generators(
    hf: HFGenerator, openai: OpenAIGenerator, fake: ScriptedGenerator
) -> list[Generator]:
    return [hf, openai, fake]


def embedders(real: SentenceTransformerEmbedder, fake: HashEmbedder) -> list[Embedder]:
    return [real, fake]


def knowledge_bases(kb: KnowledgeBase, passage: Passage) -> tuple[KnowledgeBaseLike, PassageLike]:
    return kb, passage


def stores(store: LearnerStore) -> tuple[TutorStore, LearnerStoreLike]:
    return store, store
