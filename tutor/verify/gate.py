"""``SentenceGate``: the streamed reply released sentence by sentence, each one checked first.

A sentence is checked at its end (``.``, ``!``, ``?`` before a space, or a line break); its words
stream out earlier only while nothing in it can start a claim or a judgement. At the end:

- a judgement of the learner's work that the grader's verdict does not back is withheld and
  replaced by the verdict line (once per reply) or by nothing;
- a sentence with an arithmetic claim that is false or cannot be verified trips the gate
  (``tripped``; the agent withdraws the reply and regenerates once with a stricter instruction)
  or, with ``drop_bad_math`` (the regeneration), is dropped;
- with a grounding check (explain mode, ``tutor.explain``): a statement no passage sentence
  supports is dropped (``"unsupported"``), a supported one gets its passage's ``[n]``
  (``"cite"``, the marker as the detail) in place of any marker the LM wrote.

So no judgement word, number or equation the student reads has failed a check: from the first
risky word on, text is released only after the check.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tutor.verify.arithmetic import check_claim, find_claims
from tutor.verify.judgements import Verdict, agrees, find_judgement

# the end of a sentence: terminal punctuation (and closing quotes/brackets) before whitespace,
# or a line break
_BOUNDARY = re.compile(r"[.!?][\"')\]*_]*\s+|\n+")
MAX_SENTENCE_CHARS = 600  # a run-on "sentence" is checked at this length, not held forever
_CITATION = re.compile(r"\[\d{1,2}\]")
# what can start a claim or a judgement: a number, a math sign, a judgement word or lead-in
_RISK = re.compile(
    r"(?<![a-z])\d|[=+×÷*/^%√<>≈−$\\]|n't\b|\b(?:correct|incorrect|right|wrong|indeed|yes|yeah|yep|no|"
    r"not|exactly|well|done|great|good|nice|perfect|excellent|quite|almost|close|try|mistake|"
    r"error|nailed|bravo|spot|got|bingo|absolutely|job|work|true|false|times|plus|minus|"
    r"equals?|that's|that|you're|your|it's)\b",
    re.I,
)


@dataclass(frozen=True)
class VerifyContext:
    """What a reply is checked against: the grader's verdict on the learner's latest answer or
    step (with the sentence that states it), the problem's equations (for ``x = 5``)."""

    verdict: Verdict = "unknown"
    verdict_line: str = ""  # the grader's sentence; "" when already shown this turn
    equations: tuple[str, ...] = ()
    variables: frozenset[str] = frozenset()


@dataclass
class GateReport:
    judgements_withdrawn: int = 0
    verdicts_inserted: int = 0
    false_claims: int = 0
    unverified_claims: int = 0
    sentences_dropped: int = 0
    unsupported: int = 0
    cut_dropped: int = 0  # a last sentence the token budget cut, withdrawn after complete ones
    check_ms: float = 0.0
    withheld: list[str] = field(default_factory=list)  # for logs and tests; never shown


def check_sentence(sentence: str, ctx: VerifyContext) -> tuple[str, str]:
    """(``"ok"`` | ``"judgement"`` | ``"false"`` | ``"unverified"``, detail) for one sentence."""
    judgement = find_judgement(sentence)
    if judgement is not None and not agrees(judgement, ctx.verdict):
        return "judgement", judgement
    worst = "ok"
    for claim in find_claims(sentence, ctx.variables):
        result = check_claim(claim, ctx.equations)
        if result is False:
            return "false", " = ".join(claim.sides)
        if result is None:
            worst = "unverified"
    return worst, ""


class SentenceGate:
    """Feed deltas, get the text that may be shown now (see the module docstring).

    Words of a sentence stream out at once while the sentence so far has no number, math sign
    or judgement word (``_RISK``); from the first one on, the rest of the sentence is held
    and the whole sentence is checked at its end. When a sentence whose start was already
    shown fails, ``retract`` says how many characters of the shown text to withdraw (the
    caller resets the text and shows it again without them); the failing part itself is never
    shown.
    """

    def __init__(
        self,
        ctx: VerifyContext,
        *,
        drop_bad_math: bool = False,
        check: Callable[[str, VerifyContext], tuple[str, str]] = check_sentence,
        early: bool = True,
    ):
        self.ctx = ctx
        self.drop_bad_math = drop_bad_math
        self.check = check
        self.early = early  # False: nothing of a sentence shows before its check
        self.pending = ""  # the held rest of the current sentence
        self.shown = ""  # the start of the current sentence, already released
        self.retract = 0
        self.tripped = False
        self.released = 0  # sentences that passed their check and went out
        self.last_sentence = ""  # the last of them, as shown
        self.run_on = False  # the sentence going out is a run-on, released in parts
        self.report = GateReport()
        self._verdict_said = not ctx.verdict_line or ctx.verdict == "unknown"

    def feed(self, delta: str) -> str:
        if self.tripped:
            return ""
        self.pending += delta
        out = []
        while True:
            m = _BOUNDARY.search(self.pending)
            if m is None and len(self.shown) + len(self.pending) < MAX_SENTENCE_CHARS:
                break
            end = m.end() if m is not None else len(self.pending)
            tail, self.pending = self.pending[:end], self.pending[end:]
            self.run_on = m is None  # a run-on's first part: no whole sentence
            out.append(self._release(tail))
            if self.tripped:
                return ""
        out.append(self._early())
        return "".join(out)

    def finish(self) -> str:
        """The held end of the answer. It ends at a whole sentence: a last sentence that never
        ended (cut by the token budget, which the backends mark with " …", or left without its
        full stop) is withdrawn when whole sentences came before it, and so is a last shown
        sentence that introduces what never came ("Here's the corrected version:")."""
        if self.tripped:
            return ""
        out = ""
        if self.pending or self.shown:
            tail, self.pending = self.pending, ""
            if self.released and not self.run_on and unfinished(self.shown + tail):
                self._withdraw_cut(self.shown + tail, len(self.shown))
                self.shown = ""
            else:
                out = self._release(tail)
                if self.tripped:
                    return ""
        if not out.strip() and self.released > 1 and unfinished(self.last_sentence):
            self._withdraw_cut(self.last_sentence, len(self.last_sentence))
            self.released -= 1
        return out

    def _withdraw_cut(self, sentence: str, on_screen: int) -> None:
        self.report.cut_dropped += 1
        self.report.sentences_dropped += 1
        self.report.withheld.append(sentence.strip())
        self.retract += on_screen

    def _early(self) -> str:
        """The words of the unfinished sentence that carry no risk yet."""
        cut = max(self.pending.rfind(" "), self.pending.rfind("\n"))
        if cut < 0 or not self.early:
            return ""
        candidate = self.pending[: cut + 1]
        if _RISK.search(_CITATION.sub("", self.shown + candidate)):
            return ""
        self.shown += candidate
        self.pending = self.pending[cut + 1 :]
        return candidate

    def _passed(self, shown: str, out: str) -> str:
        """A sentence passed its check: ``out`` goes out after its ``shown`` start."""
        if not self.run_on:
            self.released += 1
            self.last_sentence = shown + out
        return out

    def _release(self, tail: str) -> str:
        sentence, shown = self.shown + tail, self.shown
        self.shown = ""
        if not sentence.strip():
            return tail
        t0 = time.perf_counter()
        detail = ""
        try:
            verdict, detail = self.check(sentence, self.ctx)
        except Exception:  # a checker bug must not crash the turn: the sentence is unverified
            verdict = "unverified"
        finally:
            self.report.check_ms += (time.perf_counter() - t0) * 1000
        if verdict == "ok":
            return self._passed(shown, tail)
        if verdict == "cite":  # supported: the supporting passage's marker, not the LM's
            body = _CITATION.sub("", tail).rstrip()
            end = len(body.rstrip(".!?:;\"')"))
            return self._passed(
                shown, f"{body[:end].rstrip()} {detail}{body[end:]}{_trailing_space(tail)}"
            )
        self.report.withheld.append(sentence.strip())
        if verdict == "unsupported":
            self.report.unsupported += 1
            self.report.sentences_dropped += 1
            self.retract += len(shown)
            return ""
        if verdict == "judgement":
            self.report.judgements_withdrawn += 1
            self.retract += len(shown)
            if not self._verdict_said:
                self._verdict_said = True
                self.report.verdicts_inserted += 1
                return self.ctx.verdict_line + _trailing_space(sentence)
            self.report.sentences_dropped += 1
            return ""
        if verdict == "false":
            self.report.false_claims += 1
        else:
            self.report.unverified_claims += 1
        if not self.drop_bad_math:
            self.tripped = True
        self.retract += len(shown)
        self.report.sentences_dropped += 1
        return ""


_FINISHED = re.compile(r"(?:[.!?]|\$|```)[\"')\]}»”’*_]*\s*$")


def unfinished(sentence: str) -> bool:
    """A sentence that stops before its end: no closing ``.``, ``!`` or ``?`` (closing quotes or
    brackets aside; math or a code block may end it too), so also one that introduces what
    never comes ("Here's the corrected version:"), or the backends' cut mark " …"."""
    text = sentence.rstrip()
    return bool(text) and (text.endswith("…") or not _FINISHED.search(text))


def _trailing_space(sentence: str) -> str:
    return sentence[len(sentence.rstrip()) :] or " "
