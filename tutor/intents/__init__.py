"""The learner-message intent classifier: what a message is (a question, an answer attempt, a
step of work, a hint request, …) given the conversation state. ``features`` builds the inputs,
``model`` predicts from shipped JSON weights, ``train`` fits and scores it
(``tutor intents train|eval``; data in ``data/intents/``)."""

from tutor.intents.features import KINDS, LABELS, TurnState, turn_state
from tutor.intents.model import Example, IntentModel, IntentReader, Prediction, load_examples

__all__ = [
    "KINDS",
    "LABELS",
    "Example",
    "IntentModel",
    "IntentReader",
    "Prediction",
    "TurnState",
    "load_examples",
    "turn_state",
]
