"""Deterministic answer checking: the LM never decides whether an answer is correct.

``grade(item_or_spec, response)`` reads the learner's answer in whatever notation they used
(``3/4``, ``3 / 4``, ``0,75``, ``three quarters``, ``75%``, ``1 1/2``, ``12 cm²``, ``2(x+3)``,
``B``) and returns a :class:`GradeResult`: the verdict, the answer as the checker read it, and a
feedback code that says what went wrong (``close_but_rounding``, ``sign_error``,
``unit_missing``, ``wrong_form``, ``not_parsed``, ...) so the agent can point at the mistake.

``mentions_answer(text, item_or_answer)`` is the answer-leak check: True when a tutor response
states the answer in any form the checker would accept (``0.75``, ``75%``, ``three quarters`` for
3/4), but not when it only repeats numbers from the problem statement.

``reads_as_step(response)`` says when a message states an intermediate quantity in a sentence
(``He sold 20 crates over the weekend.``) rather than a final answer (``60 crates``, ``I got 60``,
``So he sold 60 crates in total.``). ``grade`` grades only the number the learner asserts: a
number they negate or take back (``not 18``, ``18 is wrong``, ``I first thought 18 but ...``) is
not their answer (``rejected_numbers`` lists those). ``asks_for_percent(prompt)``: the question
asks for a percentage, so ``20%`` answers a bare 20 (``grade`` reads an item's prompt for it).

Answer kinds: ``integer``, ``number`` (decimals, with an optional tolerance), ``fraction``
(fractions and mixed numbers), ``percent``, ``quantity`` (a number with a unit, converted
between units of one dimension), ``expression`` (algebra, by sympy equivalence), ``choice``
(multiple choice) and ``text`` (a short word answer).

The modules, each importing only the ones listed before it:

- ``normalize``: unicode and LaTeX math to plain text, commas, lead-in words;
- ``units``: the unit table and ``parse_unit``;
- ``numbers``: ``Number``, ``parse_number``, ``find_numbers``, ``format_number``;
- ``meaning``: the number a response asserts (negations, retractions), ``asks_for_percent``,
  ``reads_as_step``;
- ``expressions``: algebra through sympy (whitelisted input), equivalence and form checks;
- ``words``: word answers and multiple-choice options;
- ``spec``: answer kinds, feedback codes, ``GradeResult``, ``AnswerSpec`` and its target;
- ``grade``: ``grade`` and ``expected_text``;
- ``leaks``: ``mentions_answer``.

This package re-exports the public API: import from ``tutor.grading``.
"""

from __future__ import annotations

from tutor.grading.grade import expected_text, grade
from tutor.grading.leaks import mentions_answer
from tutor.grading.meaning import asks_for_percent, reads_as_step, rejected_numbers
from tutor.grading.normalize import normalize_text
from tutor.grading.numbers import (
    MAX_NUMBER_DIGITS,
    Number,
    NumberForm,
    find_numbers,
    format_number,
    parse_number,
)
from tutor.grading.spec import (
    ANSWER_KINDS,
    CLOSE_CODES,
    FEEDBACK_CODES,
    AnswerKind,
    AnswerSpec,
    ExpressionForm,
    FeedbackCode,
    GradeResult,
    ItemLike,
)
from tutor.grading.units import UNITS, Dimension, Unit, parse_unit

__all__ = [
    "ANSWER_KINDS",
    "CLOSE_CODES",
    "FEEDBACK_CODES",
    "MAX_NUMBER_DIGITS",
    "UNITS",
    "AnswerKind",
    "AnswerSpec",
    "Dimension",
    "ExpressionForm",
    "FeedbackCode",
    "GradeResult",
    "ItemLike",
    "Number",
    "NumberForm",
    "Unit",
    "asks_for_percent",
    "expected_text",
    "find_numbers",
    "format_number",
    "grade",
    "mentions_answer",
    "normalize_text",
    "parse_number",
    "parse_unit",
    "reads_as_step",
    "rejected_numbers",
]
