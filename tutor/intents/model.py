"""The trained intent classifier: a logistic regression on the bundled embedder's sentence
vector plus ``tutor.intents.features``, stored as plain JSON weights (``model.json`` here, a
few hundred KB) so that predicting needs numpy only.

``IntentModel.predict(text, state)`` gives the label and the probabilities of all labels. The
shipped weights were fitted on the vectors of one embedder (``embedder`` in the file); with any
other embedder they mean nothing, so ``load_for`` returns None and the agent keeps its rules.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tutor.errors import InputError, TutorError
from tutor.intents.features import FEATURE_NAMES, KINDS, LABELS, TurnState, feature_rows

log = logging.getLogger(__name__)

FORMAT = "tutor-intent-model/1"
SHIPPED = Path(__file__).resolve().parent / "model.json"


@dataclass(frozen=True)
class Example:
    """One labelled learner message with the state it was sent in."""

    text: str
    label: str
    state: TurnState
    source: str = ""


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float
    probabilities: dict[str, float]


def load_examples(path: str | Path) -> list[Example]:
    """Examples from a JSONL file (``data/intents/README.md`` has the format); an
    ``InputError`` names the line and the field to fix."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file; pass a JSONL file of labelled messages")
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            text, label = d["text"], d["label"]
            if not isinstance(text, str) or not text.strip():
                raise ValueError("'text' must be a non-empty string")
            if label not in LABELS:
                raise ValueError(f"'label' {label!r} is not one of {', '.join(LABELS)}")
            kind = d.get("problem_kind", "none")
            if kind not in KINDS:
                raise ValueError(f"'problem_kind' {kind!r} is not one of {', '.join(KINDS)}")
            state = TurnState(
                bool(d.get("problem_open", False)), kind, bool(d.get("last_tutor_question", False))
            )
        except (ValueError, KeyError, TypeError) as e:
            what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
            raise InputError(f"{p}:{n}: {what}") from e
        out.append(Example(text, label, state, str(d.get("source", ""))))
    if not out:
        raise InputError(f"{p}: no examples in the file")
    return out


def file_sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


# Hashed n-grams next to the sentence vector: character 2-4-grams (typos, "hellooo", emoji,
# greetings in other languages) and word 1-2-grams; no vocabulary to ship.
HASHING = {"char": (2, 4, 2**13), "word": (1, 2, 2**12)}


def hashed(texts: Sequence[str]) -> Any:
    """The texts' hashed n-gram counts, L2-normalised per kind (a sparse matrix)."""
    from scipy import sparse
    from sklearn.feature_extraction.text import HashingVectorizer

    parts = []
    for kind, (lo, hi, n) in HASHING.items():
        vec = HashingVectorizer(
            analyzer="char_wb" if kind == "char" else "word",
            ngram_range=(lo, hi),
            n_features=n,
            alternate_sign=False,
            token_pattern=r"(?u)\b\w+\b",
        )
        parts.append(vec.transform([t[:4000] for t in texts]))
    return sparse.hstack(parts).tocsr()


class IntentModel:
    """Weights over ``[embedding, FEATURE_NAMES]`` (standardised with ``mean`` / ``scale``) and
    the hashed n-grams (times ``ngram_weight``)."""

    def __init__(self, weights: dict[str, Any], embedder: Any) -> None:
        self.meta = weights
        self.labels: tuple[str, ...] = tuple(weights["labels"])
        self.mean = np.asarray(weights["mean"], dtype=np.float32)
        self.scale = np.asarray(weights["scale"], dtype=np.float32)
        self.coef = np.asarray(weights["coef"], dtype=np.float32)
        self.intercept = np.asarray(weights["intercept"], dtype=np.float32)
        self.ngram_coef = np.asarray(weights["ngram_coef"], dtype=np.float32)
        self.ngram_weight = float(weights["ngram_weight"])
        self.embedder = embedder
        n_hashed = sum(n for _, _, n in HASHING.values())
        if self.coef.shape != (len(self.labels), self.mean.shape[0]) or (
            self.ngram_coef.shape != (len(self.labels), n_hashed)
        ):
            raise InputError("intent model: the weights' shapes disagree; retrain it")

    @classmethod
    def load(cls, path: str | Path, embedder: Any) -> IntentModel:
        try:
            weights = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: not an intent model ({e}); run `tutor intents train`") from e
        if weights.get("format") != FORMAT or list(weights.get("features", [])) != list(
            FEATURE_NAMES
        ):
            raise InputError(
                f"{path}: an intent model of another version; run `tutor intents train`"
            )
        return cls(weights, embedder)

    @classmethod
    def load_for(cls, embedder: Any, path: str | Path = SHIPPED) -> IntentModel | None:
        """The model when its weights fit ``embedder``, else None (the caller keeps rules)."""
        if embedder is None or not Path(path).is_file():
            return None
        model = cls.load(path, embedder)
        if model.meta.get("embedder") != getattr(embedder, "name", None):
            log.info(
                "intent model: trained on %s, the embedder is %s; using the rules",
                model.meta.get("embedder"),
                getattr(embedder, "name", None),
            )
            return None
        return model

    def matrix(self, texts: Sequence[str], states: Sequence[TurnState]) -> np.ndarray:
        vecs = np.asarray(self.embedder.encode(list(texts)), dtype=np.float32)
        return np.hstack([vecs, feature_rows(texts, states)])

    def probabilities(self, x: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.coef.T + self.intercept
        z += self.ngram_weight * np.asarray(hashed(texts) @ self.ngram_coef.T)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_many(self, texts: Sequence[str], states: Sequence[TurnState]) -> list[str]:
        if not texts:
            return []
        p = self.probabilities(self.matrix(texts, states), texts)
        return [self.labels[i] for i in p.argmax(axis=1)]

    def predict(self, text: str, state: TurnState) -> Prediction:
        text = text or " "
        p = self.probabilities(self.matrix([text], [state]), [text])[0]
        i = int(p.argmax())
        return Prediction(
            self.labels[i],
            float(p[i]),
            {lab: float(v) for lab, v in zip(self.labels, p, strict=True)},
        )


class IntentReader:
    """The agent's handle on the model: loaded on first use from the embedder the knowledge
    base has (``embedder()``); ``classifier(state)`` is message -> label, or None when the
    model is off, does not fit the embedder or cannot be read (the rules decide then)."""

    def __init__(self, embedder: Callable[[], Any], *, enabled: bool = True) -> None:
        self._embedder = embedder
        self._enabled = enabled
        self._model: IntentModel | None = None
        self._tried = False

    @property
    def model(self) -> IntentModel | None:
        if not self._tried:
            self._tried = True
            if self._enabled:
                try:
                    self._model = IntentModel.load_for(self._embedder())
                except TutorError as e:  # a damaged weights file: the rules still work
                    log.warning("intent model not loaded (%s); using the rules", e)
        return self._model

    def classifier(self, state: TurnState) -> Callable[[str], str] | None:
        model = self.model
        if model is None:
            return None
        return lambda text: model.predict(text, state).label
