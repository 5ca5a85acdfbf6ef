"""Offline evals: retrieval, pedagogy, grounding and the learner model, with reports."""
