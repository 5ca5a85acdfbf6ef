"""The one place that turns configuration into heavy objects (LM, embedder, stores, agent).

Everything else receives these objects as arguments, so tests hand in tiny or fake ones.
Heavy imports happen inside the functions.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tutor.config import Config
from tutor.errors import ConfigError

if TYPE_CHECKING:
    from knowledge_base import KnowledgeBase
    from knowledge_base.embed import Embedder
    from tutor.agent import TutorAgent
    from tutor.lm.base import Generator
    from tutor.protocols import KnowledgeBaseLike
    from tutor.store import LearnerStore
    from tutor.store.protocol import TutorStore

log = logging.getLogger(__name__)


def build_generator(config: Config) -> Generator:
    """The configured LM backend (``lm.backend``): ``hf``, ``openai`` or ``llamacpp``."""
    lm = config.lm
    if lm.backend == "hf":
        from tutor.lm.hf import HFGenerator

        return HFGenerator.from_config(lm, config.paths.models_dir)
    if lm.backend == "openai":
        from tutor.lm.openai import OpenAIGenerator

        return OpenAIGenerator.from_config(lm)
    if lm.backend == "llamacpp":
        from tutor.lm.llamacpp import LlamaCppGenerator

        return LlamaCppGenerator.from_config(lm)
    raise ConfigError(f"lm.backend={lm.backend!r} is not known; use 'hf', 'openai' or 'llamacpp'")


def build_learner_store(config: Config) -> LearnerStore:
    """The learner store at ``config.database_url`` (SQLite file in the data dir by default),
    with the ``[tutor]`` BKT defaults and the fallback item bank (``tutor.item_bank`` or the
    shipped sample bank) for collections that have none loaded."""
    from tutor.store import LearnerStore

    return LearnerStore.from_config(config)


def build_embedder(config: Config) -> Embedder:
    """The knowledge-base embedder (``kb.embedder``): the bundled all-MiniLM-L6-v2 by default,
    or any sentence-transformers model by name or path. Lazy: the model loads on first use."""
    from knowledge_base.embed import SentenceTransformerEmbedder

    kb = config.kb
    return SentenceTransformerEmbedder(kb.embedder, device=kb.device, batch_size=kb.batch_size)


def build_knowledge_base(config: Config, embedder: Embedder | None = None) -> KnowledgeBase:
    """The knowledge base in ``paths.kb_dir`` with the ``[kb]`` options; ``embedder`` defaults
    to ``build_embedder(config)``."""
    from knowledge_base import KnowledgeBase

    emb = embedder if embedder is not None else build_embedder(config)
    return KnowledgeBase.open(config.paths.kb_dir, emb, options=config.kb)


def build_agent(
    config: Config,
    *,
    generator: Generator | None = None,
    store: TutorStore | None = None,
    kb: KnowledgeBaseLike | None = None,
    show_prompt: bool = False,
) -> TutorAgent:
    """The tutor agent with the configured LM, learner store and knowledge base (each can be
    handed in instead, e.g. one shared model for every UI session)."""
    from tutor.agent import AgentSettings, TutorAgent

    return TutorAgent(
        generator if generator is not None else build_generator(config),
        store if store is not None else build_learner_store(config),
        kb if kb is not None else build_knowledge_base(config),
        AgentSettings.from_config(config),
        show_prompt=show_prompt,
    )
