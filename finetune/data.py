"""Training data: read files (JSONL, JSON, CSV, TSV), convert every record to a chat example,
drop duplicates, split train/validation by problem (no problem on both sides), count.

Every error names the file, the line and the field, e.g.
``data/x.jsonl:12: messages[3].role: unknown role 'bot'; use one of assistant, system, user``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.formats import (
    FORMATS,
    ChatExample,
    DataError,
    RecordError,
    convert,
    detect_format,
    step_system,
)

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv")


@dataclass
class FileReport:
    path: str
    format: str
    sha256: str
    records: int = 0
    examples: int = 0
    invalid: int = 0
    first_error: str = ""


@dataclass
class DataStats:
    """What goes into training, printed before it starts and kept in the training card."""

    files: list[FileReport] = field(default_factory=list)
    eval_files: list[FileReport] = field(default_factory=list)
    duplicates: int = 0
    leaked: int = 0  # train examples dropped because their problem is in the eval files
    train_examples: int = 0
    eval_examples: int = 0
    train_groups: int = 0
    eval_groups: int = 0
    assistant_turns: int = 0
    moves: dict[str, int] = field(default_factory=dict)
    # filled in by tokenization
    train_tokens: int = 0
    train_label_tokens: int = 0
    eval_tokens: int = 0
    max_tokens: int = 0
    mean_tokens: float = 0.0
    telling: int = 0  # teacher turns labelled "telling"
    telling_policy: str = "keep"  # what finetune.telling_turns did with them
    windowed: int = 0  # examples longer than max_length, split into windows
    windows: int = 0  # the rows those examples became
    too_long: int = 0  # examples with no row: not one of their answers fits
    dropped_turns: int = 0  # target teacher turns that fit no window (too long alone)
    target_tokens: int = 0  # target teacher tokens of both splits, encoded without a limit
    trained_target_tokens: int = 0  # how many of them are labelled in some row
    packed_rows: int = 0

    @property
    def coverage(self) -> float:
        """Share of the target teacher tokens that are trained on (at ``max_length``)."""
        return self.trained_target_tokens / self.target_tokens if self.target_tokens else 0.0

    def render(self) -> str:
        lines = ["training data:"]
        for f in self.files + self.eval_files:
            role = "eval" if f in self.eval_files else "train"
            bad = f", {f.invalid} invalid skipped (first: {f.first_error})" if f.invalid else ""
            lines.append(
                f"  [{role}] {f.path} ({f.format}): {f.records} records -> {f.examples} examples{bad}"
            )
        lines.append(
            f"  {self.train_examples} train examples ({self.train_groups} problems), "
            f"{self.eval_examples} validation examples ({self.eval_groups} problems)"
        )
        lines.append(
            f"  {self.duplicates} duplicates dropped, {self.leaked} train examples dropped "
            f"because their problem is in the validation files"
        )
        if self.moves:
            ranked = sorted(self.moves.items(), key=lambda x: (-x[1], x[0]))
            top = ", ".join(f"{k[:24]} {v}" for k, v in ranked[:10])
            top += f", ... ({len(ranked) - 10} more)" if len(ranked) > 10 else ""
            lines.append(f"  {self.assistant_turns} assistant turns; teacher moves: {top}")
        if self.train_tokens:
            share = self.train_label_tokens / max(1, self.train_tokens)
            lines.append(
                f"  tokens: {self.train_tokens} train ({share:.0%} labelled), {self.eval_tokens} "
                f"validation; mean {self.mean_tokens:.0f}, max {self.max_tokens} per example"
            )
            lines.append(
                f"  teacher tokens trained on: {self.coverage:.1%} ({self.trained_target_tokens} "
                f"of {self.target_tokens}); {self.windowed} long examples split into "
                f"{self.windows} windows, {self.dropped_turns} turns and {self.too_long} examples "
                f"dropped as too long"
                + (f"; packed into {self.packed_rows} rows" if self.packed_rows else "")
            )
        if self.telling:
            lines.append(f"  {self.telling} telling turns: {TELLING_NOTES[self.telling_policy]}")
        return "\n".join(lines)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- reading files -------------------------------------------------------------------------------
def _json_array(text: str, path: Path) -> Iterator[tuple[int, Any]]:
    """Items of a top-level JSON array with the line each starts on."""
    decoder = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    if not text[pos:].startswith("["):
        raise DataError(f"{path}: expected a JSON array of records (or use .jsonl, one per line)")
    pos += 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return
        line = text.count("\n", 0, pos) + 1
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from e
        yield line, item


@dataclass
class BadLine:
    """A line that is not a record at all (not JSON, too many CSV cells): yielded in place of a
    record so ``skip_invalid`` can count it like any other invalid record."""

    problem: str


def read_records(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line, record)`` for every record of a data file; a JSONL line that is not valid JSON
    or a CSV row with extra cells comes as ``(line, BadLine)``."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'}; use {', '.join(SUFFIXES)}"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    if suffix in (".jsonl", ".ndjson"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as e:
                yield n, BadLine(f"not valid JSON ({e.msg}, column {e.colno})")
    elif suffix == ".json":
        yield from _json_array(text, path)
    else:
        reader = csv.DictReader(
            io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ","
        )
        line_no = 1
        for row in reader:
            yield line_no + 1, BadLine("more cells than header columns") if None in row else row
            line_no = reader.line_num


def load_file(
    path: str | Path,
    *,
    data_format: str = "auto",
    qa_mode: str = "auto",
    skip_invalid: bool = False,
    max_examples: int = 0,
) -> tuple[list[ChatExample], FileReport]:
    """Read one file into chat examples. Raises ``DataError`` on the first bad record unless
    ``skip_invalid`` (then bad records are counted and the first error is kept)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(
            f"data file {p} does not exist; check finetune.data (paths are relative to the "
            f"directory you run from: {Path.cwd()})"
        )
    if data_format != "auto" and data_format not in FORMATS:
        raise DataError(f"unknown data format {data_format!r}; use auto or {', '.join(FORMATS)}")
    report = FileReport(path=str(path), format=data_format, sha256=file_sha256(p))
    examples: list[ChatExample] = []
    fmt = None if data_format == "auto" else data_format
    for line, record in read_records(p):
        report.records += 1
        where = f"{path}:{line}"
        if isinstance(record, BadLine):
            if not skip_invalid:
                raise DataError(
                    f"{where}: {record.problem}; fix the line, or set finetune.skip_invalid=true"
                )
            report.invalid += 1
            report.first_error = report.first_error or f"{where}: {record.problem}"
            continue
        if fmt is None:
            fmt = detect_format(record) if isinstance(record, dict) else None
            if fmt is None:
                keys = ", ".join(sorted(record)) if isinstance(record, dict) else type(record)
                raise DataError(
                    f"{where}: cannot tell the data format from the fields ({keys}); set "
                    f"finetune.data_format to one of {', '.join(FORMATS)}"
                )
            report.format = fmt
        try:
            examples.append(convert(record, fmt, source=where, qa_mode=qa_mode))
        except RecordError as e:
            message = f"{where}: {e} ({fmt} format)"
            if not skip_invalid:
                raise DataError(
                    message + "; fix the record, or set finetune.skip_invalid=true"
                ) from e
            report.invalid += 1
            report.first_error = report.first_error or message
            continue
        if max_examples and len(examples) >= max_examples:
            break
    if report.records == 0:
        raise DataError(f"data file {path} is empty: it has no records")
    if not examples:
        raise DataError(
            f"data file {path} has no usable example ({report.invalid} invalid; first: "
            f"{report.first_error})"
        )
    if report.invalid:
        log.warning(
            "%s: skipped %d invalid records; first: %s", path, report.invalid, report.first_error
        )
    report.examples = len(examples)
    return examples, report


def load_files(paths: Sequence[str], **kwargs: Any) -> tuple[list[ChatExample], list[FileReport]]:
    if not paths:
        raise DataError(
            "no training data: set finetune.data to one or more files, e.g. "
            "--data data/dialogues/tutoring_sample.jsonl"
        )
    examples: list[ChatExample] = []
    reports = []
    for path in paths:
        ex, report = load_file(path, **kwargs)
        examples += ex
        reports.append(report)
    return examples, reports


# -- dedupe and split --------------------------------------------------------------------------
def example_key(ex: ChatExample) -> str:
    text = json.dumps([(m["role"], " ".join(m["content"].split())) for m in ex.messages])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def dedupe(examples: Sequence[ChatExample]) -> tuple[list[ChatExample], int]:
    """Drop exact repeats (same roles and texts, whitespace ignored); keep the first."""
    seen: set[str] = set()
    out = []
    for ex in examples:
        key = example_key(ex)
        if key not in seen:
            seen.add(key)
            out.append(ex)
    return out, len(examples) - len(out)


def split_by_problem(
    examples: Sequence[ChatExample], eval_fraction: float, seed: int
) -> tuple[list[ChatExample], list[ChatExample]]:
    """Hold out whole problems: a problem's dialogues and QA pairs all land on one side.

    Problems are ordered by a seeded hash, so the split is stable when data is appended.
    """
    if eval_fraction <= 0:
        return list(examples), []
    groups = sorted(
        {ex.group for ex in examples},
        key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest(),
    )
    if len(groups) < 2:
        raise DataError(
            f"cannot hold out a validation split: all {len(examples)} examples share one "
            f"problem; add data, pass validation files with finetune.eval_data, or set "
            f"finetune.eval_fraction=0"
        )
    n_eval = min(len(groups) - 1, max(1, round(eval_fraction * len(groups))))
    held = set(groups[:n_eval])
    train = [ex for ex in examples if ex.group not in held]
    val = [ex for ex in examples if ex.group in held]
    return train, val


TELLING_NOTES = {
    "keep": "learned under the guide prompt (which says never to state the answer)",
    "drop": "kept as context only, not learned",
    "prompt": "learned under the prompt that allows a worked step",
}


def apply_telling(examples: Sequence[ChatExample], policy: str) -> tuple[list[ChatExample], int]:
    """Teacher turns labelled "telling" (they state a step or the answer) under the guide
    prompt would teach the model to break it. ``drop``: they stay as context but are not
    targets. ``prompt``: they are learned in a copy of the dialogue whose system prompt is the
    tutor's own at the "show one worked step" help level; the other turns as before. ``keep``:
    learned like any turn. A dialogue without a problem has no such prompt: ``prompt`` acts as
    ``drop`` there. -> (examples, number of telling turns)."""
    out: list[ChatExample] = []
    n_telling = 0
    for ex in examples:
        answers = [i for i, m in enumerate(ex.messages) if m["role"] == "assistant"]
        telling = {i for i, move in zip(answers, ex.moves, strict=False) if move == "telling"}
        n_telling += len(telling)
        if not telling or policy == "keep":
            out.append(ex)
            continue
        others = tuple(i for i in answers if i not in telling)
        if others:
            out.append(dataclasses.replace(ex, targets=others))
        if policy == "prompt" and ex.problem and ex.messages[0]["role"] == "system":
            system = {"role": "system", "content": step_system(ex.problem)}
            messages = [system, *ex.messages[1:]]
            out.append(dataclasses.replace(ex, messages=messages, targets=tuple(sorted(telling))))
    return out, n_telling


def prepare_examples(cfg: Any) -> tuple[list[ChatExample], list[ChatExample], DataStats]:
    """``finetune`` config -> (train, validation, stats): load, dedupe, split by problem."""
    opts = dict(
        data_format=cfg.data_format,
        qa_mode=cfg.qa_mode,
        skip_invalid=cfg.skip_invalid,
        max_examples=cfg.max_examples,
    )
    stats = DataStats()
    examples, stats.files = load_files(cfg.data, **opts)
    if cfg.eval_data:
        val, stats.eval_files = load_files(cfg.eval_data, **opts)
        n_all = len(examples) + len(val)
        everything, stats.duplicates = dedupe(val + examples)
        val_keys = {example_key(ex) for ex in val}
        val = [ex for ex in everything if example_key(ex) in val_keys]
        held = {ex.group for ex in val}
        train = [ex for ex in everything if example_key(ex) not in val_keys]
        stats.leaked = sum(ex.group in held for ex in train)
        train = [ex for ex in train if ex.group not in held]
        assert len(train) + len(val) + stats.duplicates + stats.leaked == n_all
    else:
        examples, stats.duplicates = dedupe(examples)
        train, val = split_by_problem(examples, cfg.eval_fraction, cfg.seed)
    if not train:
        raise DataError(
            "no training examples left after removing duplicates and validation problems; "
            "add data or use other validation files"
        )
    stats.assistant_turns = sum(ex.assistant_turns for ex in train)
    stats.moves = dict(Counter(m for ex in train for m in ex.moves if m))
    train, stats.telling = apply_telling(train, cfg.telling_turns)
    val, _ = apply_telling(val, cfg.telling_turns)
    stats.telling_policy = cfg.telling_turns
    if not train:
        raise DataError(
            "no training examples left: every teacher turn is a telling turn and "
            "finetune.telling_turns=drop; use telling_turns=prompt, or add data"
        )
    stats.train_examples, stats.eval_examples = len(train), len(val)
    stats.train_groups = len({ex.group for ex in train})
    stats.eval_groups = len({ex.group for ex in val})
    return train, val, stats
