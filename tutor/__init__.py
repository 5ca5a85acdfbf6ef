"""The offline AI tutor: config, CLI, LM backends, prompts and pedagogy, learner model."""

__version__ = "0.1.0"
