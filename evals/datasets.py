"""Eval data readers: dialogue contexts (MathDial / shared dialogue form and MRBench form) and
attempt logs. QA sets with gold sections are read by ``knowledge_base.evaluate.load_qa``.

A **dialogue context** is a conversation that ends in a student's mistake or confusion; the
tutor's next turn is what the pedagogy suite generates and scores.

- Shared dialogue form (``../shared/data/dialogues/*.jsonl``, ``data/dialogues/``): one JSON
  object a line, ``{"id", "source", "problem", "ground_truth", "messages": [{"role":
  "teacher"|"student", "content"}], ...}``. The context is cut where the source puts the
  mistake: BRIDGE before the expert's response (``expert_response_index``), CIMA before the
  final tutor response, MathDial (and dialogues without either) after the first student turn
  (the student explaining a wrong solution). The teacher turn that follows the cut is kept as
  the human reference response.
- MRBench form (a JSON array or JSONL): ``{"conversation_id", "conversation_history":
  "Tutor: ...\\nStudent: ...", "Ground_Truth_Solution", "anno_llm_responses" (or
  "tutor_responses"): {TUTOR: {"response", "annotation" (or "annotations"):
  {"Mistake_Identification": "Yes", ...}}}}``; field names are matched case-insensitively.
  Several annotators' labels become a majority label (``evals.labels``). A ``conversation_id``
  that occurs again (MRBench V2 / BEA-2025) gives a context of its own, ``<id>#2``, ``<id>#3``...
  in file order; ``meta["conversation_id"]`` keeps the file's id.

Errors name the file, the line and the field (``DatasetError``).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evals.labels import LabelError, read_labels
from tutor.errors import InputError


class DatasetError(InputError):
    """A dataset file is not in the expected form; the message names file, line and field."""

    def __init__(self, path: str | Path, line: int | None, field_name: str, problem: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: field {field_name!r} {problem}")
        self.path = str(path)
        self.line = line
        self.field = field_name


class UnusableRecord(DatasetError):
    """A well-formed record that gives no context to respond to (e.g. no student turn before
    the cut). ``load_contexts`` skips and reports these when asked to."""


@dataclass
class Turn:
    role: str  # "teacher" | "student"
    content: str


@dataclass
class AnnotatedResponse:
    """A tutor response with human labels per dimension (MRBench form; see ``evals.labels``)."""

    tutor: str
    text: str
    labels: dict[str, str] = field(default_factory=dict)  # dimension -> (majority) label
    votes: dict[str, list[str]] = field(default_factory=dict)  # several annotators' labels
    ties: list[str] = field(default_factory=list)  # dimensions whose annotators tie: no label
    unknown: list[str] = field(default_factory=list)  # annotation fields naming no dimension
    annotation_field: str = ""  # "annotation" / "annotations"; "" when the response has none


@dataclass
class DialogueContext:
    id: str
    source: str
    history: list[Turn]  # ends with the student's turn the tutor must answer
    problem: str = ""
    answer: str = ""  # the final answer ("" when the source has none)
    solution: str = ""  # the reference solution text
    wrong_answer: str = ""  # the student's (wrong) final answer, when known
    wrong_solution: str = ""
    reference: str = ""  # the human tutor's next turn in the source, when there is one
    responses: list[AnnotatedResponse] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def last_student(self) -> str:
        return self.history[-1].content if self.history else ""

    @property
    def ends_with_student(self) -> bool:
        return bool(self.history) and self.history[-1].role == "student"

    def transcript(self, max_chars: int = 4000) -> str:
        lines = [
            f"{'Tutor' if t.role == 'teacher' else 'Student'}: {t.content}" for t in self.history
        ]
        text = "\n".join(lines)
        return text if len(text) <= max_chars else "…" + text[-max_chars:]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reading records ---------------------------------------------------------------------------


def read_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """``(line, record)`` from a JSONL file or a JSON array (line of each element's start)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"dataset file {p} does not exist; pass an existing .jsonl or .json file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(p, None, "(file)", f"is not UTF-8 text ({e})") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        yield from _json_array(text, p)
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(p, n, "(line)", f"is not valid JSON ({e.msg})") from None


def _json_array(text: str, path: Path) -> Iterator[tuple[int, Any]]:
    dec = json.JSONDecoder()
    i = text.index("[") + 1

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text):
            raise DatasetError(path, line_of(i), "(file)", "ends before the closing ']'")
        if text[i] == "]":
            return
        try:
            obj, end = dec.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise DatasetError(
                path, line_of(e.pos), "(record)", f"is not valid JSON ({e.msg})"
            ) from None
        yield line_of(i), obj
        i = end


def _get(rec: Mapping[str, Any], *names: str) -> Any:
    """A field by any of ``names``, matched case-insensitively."""
    lower = {str(k).lower(): v for k, v in rec.items()}
    for n in names:
        if n.lower() in lower:
            return lower[n.lower()]
    return None


def _text(value: Any, path: Path, line: int, name: str, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise DatasetError(path, line, name, "is missing")
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise DatasetError(path, line, name, f"must be text, got {type(value).__name__}")
    return str(value)


# -- answers -----------------------------------------------------------------------------------


def final_answer(solution: str) -> str:
    """The final answer of a worked solution: after ``####`` (GSM8K), else the last line when it
    is a number, else the last number of the last line; "" when there is none."""
    from tutor.grading import find_numbers, parse_number

    text = (solution or "").strip()
    if not text or text.lower().startswith("not available"):
        return ""
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ""
    last = lines[-1]
    n = parse_number(last)
    if n is not None:
        return n.canonical()
    nums = find_numbers(last)
    if nums:
        return nums[-1].canonical()
    return last if len(last) <= 40 else ""


# -- dialogue form -----------------------------------------------------------------------------


def _messages(value: Any, path: Path, line: int) -> list[Turn]:
    if not isinstance(value, list) or not value:
        raise DatasetError(path, line, "messages", "must be a non-empty list of turns")
    turns = []
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(m, Mapping):
            raise DatasetError(path, line, where, "must be an object with role and content")
        role = m.get("role")
        if role in ("tutor", "assistant"):
            role = "teacher"
        if role == "user":
            role = "student"
        if role not in ("teacher", "student"):
            raise DatasetError(
                path, line, f"{where}.role", f"must be 'teacher' or 'student', got {role!r}"
            )
        content = m.get("content")
        if not isinstance(content, str):
            raise DatasetError(path, line, f"{where}.content", "must be text")
        turns.append(Turn(role, content.strip()))
    return turns


def dialogue_context(rec: Any, path: Path, line: int) -> DialogueContext:
    if not isinstance(rec, Mapping):
        raise DatasetError(
            path, line, "(record)", f"must be a JSON object, got {type(rec).__name__}"
        )
    rid = _text(rec.get("id"), path, line, "id") or f"{path.stem}-{line}"
    turns = _messages(rec.get("messages"), path, line)
    source = _text(rec.get("source"), path, line, "source") or path.stem
    cut: int | None = None
    idx = rec.get("expert_response_index")
    if idx is not None:
        if not isinstance(idx, int) or not 0 < idx <= len(turns):
            raise DatasetError(
                path, line, "expert_response_index", f"must be a turn index within 1..{len(turns)}"
            )
        cut = idx
    elif source == "cima":
        cut = len(turns) - 1 if turns[-1].role == "teacher" else len(turns)
    else:
        first_student = next((i for i, t in enumerate(turns) if t.role == "student"), None)
        if first_student is None:
            raise DatasetError(path, line, "messages", "has no student turn to respond to")
        cut = first_student + 1
    history = [t for t in turns[:cut] if t.content]
    if not history or history[-1].role != "student":
        raise UnusableRecord(
            path, line, "messages", f"must have a student turn right before the cut at turn {cut}"
        )
    reference = turns[cut].content if cut < len(turns) and turns[cut].role == "teacher" else ""
    solution = _text(rec.get("ground_truth"), path, line, "ground_truth")
    answer = _text(rec.get("answer"), path, line, "answer") or final_answer(solution)
    wrong = _text(rec.get("student_incorrect_solution"), path, line, "student_incorrect_solution")
    return DialogueContext(
        id=rid,
        source=source,
        history=history,
        problem=_text(rec.get("problem"), path, line, "problem"),
        answer=answer,
        solution=solution,
        wrong_answer=final_answer(wrong) if wrong else "",
        wrong_solution=wrong,
        reference=reference,
        meta={"file": str(path), "line": line},
    )


# -- MRBench form ------------------------------------------------------------------------------

_SPEAKER = re.compile(r"^\s*(tutor|teacher|student|[A-Z][a-zA-Z]{1,20})\s*:\s?(.*)$")


def parse_history(text: str) -> list[Turn]:
    """``"Tutor: hi\\nStudent: 3/8\\n  more"`` -> turns (lines without a speaker continue the
    previous turn; speakers other than Tutor/Teacher are the student)."""
    turns: list[Turn] = []
    for raw in str(text).splitlines():
        m = _SPEAKER.match(raw)
        if m:
            role = "teacher" if m.group(1).lower() in ("tutor", "teacher") else "student"
            turns.append(Turn(role, m.group(2).strip()))
        elif raw.strip() and turns:
            turns[-1].content = (turns[-1].content + "\n" + raw.strip()).strip()
        elif raw.strip():
            turns.append(Turn("student", raw.strip()))
    return [t for t in turns if t.content]


def mrbench_context(rec: Any, path: Path, line: int) -> DialogueContext:
    if not isinstance(rec, Mapping):
        raise DatasetError(
            path, line, "(record)", f"must be a JSON object, got {type(rec).__name__}"
        )
    rid = (
        _text(_get(rec, "conversation_id", "id"), path, line, "conversation_id")
        or f"{path.stem}-{line}"
    )
    hist_raw = _get(rec, "conversation_history")
    if not isinstance(hist_raw, str) or not hist_raw.strip():
        raise DatasetError(path, line, "conversation_history", "must be non-empty text")
    history = parse_history(hist_raw)
    if not history:
        raise DatasetError(path, line, "conversation_history", "has no 'Tutor:'/'Student:' turn")
    solution = _text(
        _get(rec, "Ground_Truth_Solution", "ground_truth"), path, line, "Ground_Truth_Solution"
    )
    responses: list[AnnotatedResponse] = []
    raw = _get(rec, "anno_llm_responses", "tutor_responses")
    if raw is not None:
        if _get(rec, "anno_llm_responses") is not None and _get(rec, "tutor_responses") is not None:
            raise DatasetError(path, line, "tutor_responses", "and 'anno_llm_responses' both given")
        name = (
            "anno_llm_responses"
            if _get(rec, "anno_llm_responses") is not None
            else "tutor_responses"
        )
        if not isinstance(raw, Mapping):
            raise DatasetError(
                path, line, name, "must be an object {tutor: {response, annotation}}"
            )
        for tutor, body in raw.items():
            responses.append(_annotated_response(str(tutor), body, f"{name}.{tutor}", path, line))
    data = _text(_get(rec, "Data"), path, line, "Data")
    return DialogueContext(
        id=rid,
        source=f"mrbench:{data.lower()}" if data else "mrbench",
        history=history,
        problem=_text(_get(rec, "problem"), path, line, "problem"),
        answer=_text(_get(rec, "answer"), path, line, "answer") or final_answer(solution),
        solution=solution,
        responses=responses,
        meta={
            "file": str(path),
            "line": line,
            "conversation_id": rid,
            "topic": _text(_get(rec, "Topic"), path, line, "Topic"),
        },
    )


def _annotated_response(
    tutor: str, body: Any, where: str, path: Path, line: int
) -> AnnotatedResponse:
    if not isinstance(body, Mapping):
        raise DatasetError(path, line, where, "must be an object with 'response'")
    text = body.get("response")
    if not isinstance(text, str):
        raise DatasetError(path, line, f"{where}.response", "must be text")
    keys = [k for k in body if str(k).lower() in ("annotation", "annotations")]
    if len(keys) > 1:
        raise DatasetError(path, line, where, f"has both {keys[0]!r} and {keys[1]!r}; keep one")
    if not keys or body[keys[0]] is None:
        return AnnotatedResponse(tutor, text.strip())
    try:
        read = read_labels(body[keys[0]], f"{where}.{keys[0]}")
    except LabelError as e:
        raise DatasetError(path, line, e.field, e.problem) from None
    return AnnotatedResponse(
        tutor, text.strip(), read.labels, read.votes, read.ties, read.unknown, str(keys[0])
    )


def detect_form(rec: Any) -> str:
    if isinstance(rec, Mapping):
        if _get(rec, "conversation_history") is not None:
            return "mrbench"
        if "messages" in rec:
            return "dialogue"
    return "unknown"


def load_contexts(
    path: str | Path, *, form: str = "auto", skipped: list[str] | None = None
) -> list[DialogueContext]:
    """Every context in a dialogue file (``form``: auto, dialogue or mrbench).

    Records in the wrong form raise ``DatasetError``. Well-formed records that give no context
    (``UnusableRecord``) raise too, unless a ``skipped`` list is passed: then their messages
    are appended to it and loading goes on.
    """
    if form not in ("auto", "dialogue", "mrbench"):
        raise InputError(f"dataset form {form!r} is not known; use auto, dialogue or mrbench")
    p = Path(path)
    out: list[DialogueContext] = []
    seen: set[str] = set()
    for line, rec in read_records(p):
        f = detect_form(rec) if form == "auto" else form
        try:
            if f == "mrbench":
                ctx = mrbench_context(rec, p, line)
            elif f == "dialogue":
                ctx = dialogue_context(rec, p, line)
            else:
                ctx = None
        except UnusableRecord as e:
            if skipped is None:
                raise
            skipped.append(str(e))
            continue
        if ctx is None:
            raise DatasetError(
                p,
                line,
                "(record)",
                "is neither dialogue form ('messages') nor MRBench form ('conversation_history')",
            )
        if ctx.id in seen and f == "mrbench":
            # MRBench V2 / BEA-2025 files repeat a conversation_id for different records: each
            # record stays its own context, the later ones "<id>#2", "<id>#3"... (file order)
            n = 2
            while f"{ctx.id}#{n}" in seen:
                n += 1
            ctx.id = f"{ctx.id}#{n}"
        if ctx.id in seen:
            raise DatasetError(p, line, "id", f"{ctx.id!r} occurs twice")
        seen.add(ctx.id)
        out.append(ctx)
    if not out:
        raise DatasetError(p, None, "(file)", "has no records")
    return out


# -- fine-tune training data (to keep it out of an eval) ---------------------------------------


def normalize_problem(text: str) -> str:
    return re.sub(r"\s+", " ", (text or "").strip().lower())


def _opening(messages: Any) -> str | None:
    """The key of a dialogue without a problem: its first non-empty turn, normalized."""
    texts = [m.get("content") for m in messages or [] if isinstance(m, Mapping)]
    first = next((t for t in texts if isinstance(t, str) and t.strip()), None)
    return None if first is None else "opening: " + normalize_problem(first)


def context_key(context: DialogueContext) -> str:
    """What ``training_problems`` holds for the record a context comes from."""
    turns = [{"content": t.content} for t in context.history]
    return normalize_problem(context.problem) or _opening(turns) or ""


def training_problems(run_dir: str | Path, *, base: Path | None = None) -> set[str]:
    """The problems a ``tutor finetune`` run trained on (its ``config.toml``: data files,
    ``max_examples``): a record's ``problem`` or GSM8K ``question``, else (BRIDGE, CIMA) the
    first turn of its dialogue (``context_key`` gives a context's key)."""
    import tomllib

    d = Path(run_dir)
    if d.name == "adapter":
        d = d.parent
    cfg_path = d / "config.toml"
    if not cfg_path.is_file():
        raise InputError(f"{d} is not a fine-tune run directory (no config.toml); pass runs/<name>")
    try:
        ft = tomllib.loads(cfg_path.read_text(encoding="utf-8")).get("finetune", {})
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{cfg_path} is not valid TOML ({e})") from None
    limit = int(ft.get("max_examples") or 0)
    out: set[str] = set()
    for name in [*ft.get("data", []), *ft.get("eval_data", [])]:
        candidates = [Path(name), (base or Path.cwd()) / name]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            continue
        n = 0
        for _line, rec in read_records(path):
            if not isinstance(rec, Mapping):
                continue
            text = rec.get("problem") or rec.get("question")
            if isinstance(text, str) and text.strip():
                out.add(normalize_problem(text))
            elif (opening := _opening(rec.get("messages"))) is not None:
                out.add(opening)  # no problem (BRIDGE, CIMA): the dialogue's first turn
            n += 1
            if limit and n >= limit:
                break
    return out


# -- attempt logs ------------------------------------------------------------------------------

ATTEMPT_COLUMNS = ("learner", "skill", "correct", "order")
_TRUE = {"1", "true", "yes", "y", "correct", "right", "t"}
_FALSE = {"0", "false", "no", "n", "incorrect", "wrong", "f"}


@dataclass(frozen=True)
class AttemptRow:
    learner: str
    skill: str
    correct: bool
    order: float  # sort key within a learner (time, index); file order when not mapped


def parse_columns(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"learner=user_id,skill=kc,correct=correct,order=timestamp"`` -> mapping (defaults:
    each role's own name)."""
    mapping = {c: c for c in ATTEMPT_COLUMNS}
    if spec is None or spec == "":
        return mapping
    items = (
        spec.items()
        if isinstance(spec, Mapping)
        else (tuple(part.split("=", 1)) for part in str(spec).split(",") if part.strip())
    )
    for item in items:
        if len(item) != 2:
            raise InputError(f"--columns expects ROLE=COLUMN pairs, got {item!r}")
        role, col = (str(x).strip() for x in item)
        if role not in ATTEMPT_COLUMNS:
            raise InputError(f"--columns: unknown role {role!r}; use {', '.join(ATTEMPT_COLUMNS)}")
        mapping[role] = col
    return mapping


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    try:
        f = float(text)
    except ValueError:
        return None
    return bool(f) if f in (0.0, 1.0) else None


def load_attempts(
    path: str | Path, columns: str | Mapping[str, str] | None = None
) -> list[AttemptRow]:
    """Attempts from a CSV (header row) or JSONL file, in time order per learner."""
    p = Path(path)
    mapping = parse_columns(columns)
    if not p.is_file():
        raise InputError(f"attempts file {p} does not exist")
    rows: list[tuple[int, Mapping[str, Any]]] = []
    if p.suffix.lower() in (".jsonl", ".json"):
        for line, rec in read_records(p):
            if not isinstance(rec, Mapping):
                raise DatasetError(p, line, "(record)", "must be a JSON object")
            rows.append((line, rec))
    else:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            for role in ("learner", "skill", "correct"):
                if mapping[role] not in header:
                    raise DatasetError(
                        p,
                        1,
                        mapping[role],
                        f"is not a column (columns: {', '.join(header)}); map it with --columns {role}=NAME",
                    )
            for rec in reader:
                rows.append((reader.line_num, rec))
    out = []
    for i, (line, rec) in enumerate(rows):
        vals = {}
        for role in ("learner", "skill", "correct"):
            v = rec.get(mapping[role])
            if v is None or str(v).strip() == "":
                raise DatasetError(p, line, mapping[role], f"is missing (the {role} column)")
            vals[role] = v
        ok = _bool(vals["correct"])
        if ok is None:
            raise DatasetError(
                p, line, mapping["correct"], f"must be 0/1 or true/false, got {vals['correct']!r}"
            )
        order: float = float(i)
        if mapping["order"] in rec and str(rec[mapping["order"]]).strip() != "":
            raw = rec[mapping["order"]]
            try:
                order = float(raw)
            except (TypeError, ValueError):
                from datetime import datetime

                try:
                    order = datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
                except ValueError:
                    raise DatasetError(
                        p, line, mapping["order"], f"must be a number or an ISO time, got {raw!r}"
                    ) from None
        out.append(AttemptRow(str(vals["learner"]), str(vals["skill"]), ok, order))
    if not out:
        raise DatasetError(p, None, "(file)", "has no attempts")
    out.sort(key=lambda r: (r.learner, r.order))
    return out
