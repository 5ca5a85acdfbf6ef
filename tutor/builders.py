"""The one place that turns configuration into heavy objects (LM, embedder, stores, agent).

Everything else receives these objects as arguments, so tests hand in tiny or fake ones.
Heavy imports happen inside the functions.
"""

from __future__ import annotations

import logging
from typing import Any

from tutor.config import Config
from tutor.errors import ConfigError

log = logging.getLogger(__name__)


def build_generator(config: Config) -> Any:
    """The configured LM backend (``lm.backend``): ``hf`` or ``openai``."""
    lm = config.lm
    if lm.backend == "hf":
        from tutor.lm.hf import HFGenerator

        return HFGenerator.from_config(lm, config.paths.models_dir)
    if lm.backend == "openai":
        from tutor.lm.openai import OpenAIGenerator

        return OpenAIGenerator.from_config(lm)
    raise ConfigError(f"lm.backend={lm.backend!r} is not known; use 'hf' or 'openai'")


def build_learner_store(config: Config) -> Any:
    """The learner store at ``config.database_url`` (SQLite file in the data dir by default),
    with the ``[tutor]`` BKT defaults and the fallback item bank (``tutor.item_bank`` or the
    shipped sample bank) for collections that have none loaded."""
    from tutor.store import LearnerStore

    return LearnerStore.from_config(config)
