"""The human labels of one tutor response in an MRBench-form file.

Accepted forms of a response's labels (``annotation`` or ``annotations``):

- MRBench V1: ``{"Mistake_Identification": "Yes", "Tutor_Tone": "Encouraging", ...}``, one
  label per dimension field;
- several annotators: a field's value is a list of labels (``{"Mistake_Identification":
  ["Yes", "Yes", "No"]}``), or ``annotations`` is a list with one such object per annotator.

Several labels for a dimension become the majority label. A tie (no label has more votes than
every other) gives that dimension no label: it is counted as a tie and left out of agreement,
never guessed. Fields that name no MRBench dimension are kept by name in ``unknown``, so a
report can say which labels it did not use. A label that is not one of the dimension's labels
raises ``LabelError`` naming the field.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evals.dimensions import DIMENSIONS, dimension_for_field, normalize_label


class LabelError(ValueError):
    """A label that cannot be read; ``field`` is its path within the record."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name} {problem}")
        self.field = field_name
        self.problem = problem


@dataclass
class ResponseLabels:
    labels: dict[str, str] = field(default_factory=dict)  # dimension -> (majority) label
    votes: dict[str, list[str]] = field(default_factory=dict)  # only when 2+ labels were given
    ties: list[str] = field(default_factory=list)  # dimensions whose votes tie: no label
    unknown: list[str] = field(default_factory=list)  # fields that name no dimension


def _annotators(ann: Any, where: str) -> list[tuple[str, Mapping[str, Any]]]:
    if isinstance(ann, Mapping):
        return [(where, ann)]
    if isinstance(ann, list):
        out = []
        for i, a in enumerate(ann):
            if not isinstance(a, Mapping):
                raise LabelError(f"{where}[{i}]", "must be an object of labels (one annotator)")
            out.append((f"{where}[{i}]", a))
        return out
    raise LabelError(
        where,
        f"must be an object of labels or a list of them (one per annotator), got {type(ann).__name__}",
    )


def _read_values(dim: str, value: Any, where: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise LabelError(where, "is an empty list; give a label or a list of labels")
    out = []
    for v in values:
        label = None if isinstance(v, (Mapping, list)) else normalize_label(dim, v)
        if label is None:
            allowed = " / ".join(DIMENSIONS[dim].labels)
            raise LabelError(where, f"has label {v!r}; use one of {allowed}")
        out.append(label)
    return out


def read_labels(ann: Any, where: str) -> ResponseLabels:
    """The labels of one response from its ``annotation(s)`` value; ``where`` names that
    value in errors (``tutor_responses.Expert.annotations``)."""
    out = ResponseLabels()
    votes: dict[str, list[str]] = {}
    for prefix, annotator in _annotators(ann, where):
        seen: dict[str, str] = {}
        for fname, value in annotator.items():
            name = str(fname)
            dim = dimension_for_field(name)
            if dim is None:
                if name not in out.unknown:
                    out.unknown.append(name)
                continue
            if dim in seen:
                raise LabelError(
                    f"{prefix}.{name}", f"labels {dim!r} again (already {prefix}.{seen[dim]})"
                )
            seen[dim] = name
            votes.setdefault(dim, []).extend(_read_values(dim, value, f"{prefix}.{name}"))
    for dim, vs in votes.items():
        counts = Counter(vs).most_common()
        if len(vs) > 1:
            out.votes[dim] = vs
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            out.ties.append(dim)
        else:
            out.labels[dim] = counts[0][0]
    return out
