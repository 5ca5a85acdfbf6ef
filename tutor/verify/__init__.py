"""Checks on what the LM writes, before a student reads it (issue 13, items 1 and 2).

- ``judgements``: sentences that judge the learner's work ("That's right", "Not quite") and
  whether the grader's verdict backs them (``find_judgement``, ``agrees``);
- ``arithmetic``: arithmetic and algebraic claims ("7 × 6 = 42", "20% of 50 is 10",
  "3.5 km = 3500 m", "x = 4" for a known equation), checked with sympy under size bounds
  (``find_claims``, ``check_claim``: True, False, or None for unverified);
- ``gate``: ``SentenceGate``, which releases a streamed reply sentence by sentence after both
  checks (``tutor.turns.stream_reply`` runs it before the leak guard).

Pure functions on strings; nothing here calls the LM or the store.
"""

from __future__ import annotations

from tutor.verify.arithmetic import Claim, check_claim, find_claims
from tutor.verify.gate import GateReport, SentenceGate, VerifyContext, check_sentence
from tutor.verify.judgements import (
    LAST_ANSWER_WRONG,
    STEP_RIGHT,
    STEP_WRONG,
    Judgement,
    Verdict,
    agrees,
    find_judgement,
)

__all__ = [
    "LAST_ANSWER_WRONG",
    "STEP_RIGHT",
    "STEP_WRONG",
    "Claim",
    "GateReport",
    "Judgement",
    "SentenceGate",
    "Verdict",
    "VerifyContext",
    "agrees",
    "check_claim",
    "check_sentence",
    "find_claims",
    "find_judgement",
]
