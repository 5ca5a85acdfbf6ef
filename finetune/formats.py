"""Data adapters: one record of any supported format -> one ``ChatExample``.

A chat example is a list of system/user/assistant messages. Teacher turns become assistant
turns and student turns user turns. Records without their own system message get the tutor's
system prompt from ``tutor.prompts`` (the prompt builder the tutor uses at run time), so the
tuned model is trained on exactly what it will see when serving:

- tutoring dialogues: the ``guide`` mode, with the dialogue's problem as the open problem;
- QA (Alpaca, QA pairs, GSM8K, single chats): the ``explain`` mode when the record carries
  reference passages; otherwise the ``guide`` mode at the top of the hint ladder ("the student
  has earned the full solution"), because ``explain`` without passages tells the model to
  decline (``finetune.qa_mode`` forces either one).

Converters raise ``RecordError(field, problem)``; ``finetune.data`` adds the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from finetune.errors import DataError
from tutor.prompts import HINT_LADDER, ProblemState, PromptPassage, system_prompt

__all__ = ["DataError", "ChatExample", "RecordError", "FORMATS", "convert", "detect_format"]

FORMATS: tuple[str, ...] = ("openai", "sharegpt", "alpaca", "qa", "gsm8k", "dialogue", "mathdial")

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "system": "system",
}
DIALOGUE_ROLES = {
    "teacher": "assistant",
    "tutor": "assistant",
    "assistant": "assistant",
    "student": "user",
    "user": "user",
}
QA_KEYS = (("question", "answer"), ("prompt", "response"), ("prompt", "completion"))


class RecordError(ValueError):
    """One record is invalid: ``field`` is a path into the record (``messages[2].role``)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass
class ChatExample:
    """One training conversation. ``group`` is its problem key: examples sharing one never
    end up on both sides of the train/validation split."""

    messages: list[dict[str, str]]
    group: str
    source: str  # "file:line"
    format: str
    id: str = ""
    # the labelled move of each assistant message, in order ("" where unlabelled)
    moves: tuple[str, ...] = ()
    problem: str = ""  # the problem a dialogue is about (its system prompt states it)
    # indices of the assistant messages to learn; None = all (see finetune.data.apply_telling)
    targets: tuple[int, ...] | None = None

    @property
    def assistant_turns(self) -> int:
        return sum(m["role"] == "assistant" for m in self.messages)


def normalize(text: str) -> str:
    """The grouping / dedupe key of a text: lowercase, whitespace collapsed."""
    return " ".join(text.lower().split())


# -- format detection --------------------------------------------------------------------------
def detect_format(record: dict[str, Any]) -> str | None:
    """Guess a record's format from its fields; ``None`` when nothing fits."""
    if isinstance(record.get("messages"), list):
        roles = {m.get("role") for m in record["messages"] if isinstance(m, dict)}
        return "dialogue" if roles & {"teacher", "student", "tutor"} else "openai"
    if isinstance(record.get("conversations"), list):
        return "sharegpt"
    if isinstance(record.get("conversation"), str) and "question" in record:
        return "mathdial"
    if "instruction" in record and "output" in record:
        return "alpaca"
    if "question" in record and "answer" in record:
        answer = record["answer"]
        return "gsm8k" if isinstance(answer, str) and "\n####" in answer else "qa"
    if any(q in record and a in record for q, a in QA_KEYS):
        return "qa"
    return None


# -- field helpers -----------------------------------------------------------------------------
def _text(record: dict[str, Any], key: str, *, required: bool = True, where: str = "") -> str:
    name = where or key
    value = record.get(key)
    if value is None:
        if required:
            raise RecordError(name, "is missing")
        return ""
    if not isinstance(value, str):
        raise RecordError(name, f"must be text, got {type(value).__name__} {value!r:.60}")
    if required and not value.strip():
        raise RecordError(name, "is empty")
    return value.strip()


def _content(value: Any, where: str) -> str:
    """Message content: a string, or OpenAI content parts ``[{"type": "text", "text": ...}]``."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        parts = []
        for j, part in enumerate(value):
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text":
                parts.append(_text(part, "text", where=f"{where}[{j}].text"))
            else:
                raise RecordError(f"{where}[{j}]", "only text content parts are supported")
        text = "".join(parts)
    elif value is None:
        raise RecordError(where, "is missing")
    else:
        raise RecordError(where, f"must be text, got {type(value).__name__}")
    if not text.strip():
        raise RecordError(where, "is empty")
    return text.strip()


def _passages(record: dict[str, Any]) -> list[PromptPassage]:
    """Reference passages of a QA record: ``context`` (text or list) or ``passages``."""
    raw = record.get("passages", record.get("context"))
    key = "passages" if "passages" in record else "context"
    if raw is None or raw == "":
        return []
    items = raw if isinstance(raw, list) else [raw]
    out: list[PromptPassage] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            citation, text = "reference", item
        elif isinstance(item, dict):
            text = _text(item, "text", where=f"{key}[{i}].text")
            citation = str(item.get("citation") or item.get("title") or "reference")
        else:
            raise RecordError(f"{key}[{i}]", "must be text or {citation, text}")
        if text.strip():
            out.append(PromptPassage(index=len(out) + 1, citation=citation, text=text.strip()))
    return out


# -- system prompts: always from the tutor's prompt builder ------------------------------------
def dialogue_system(problem: str | None) -> str:
    """A tutoring dialogue: guide mode, the dialogue's problem as the open problem."""
    return system_prompt("guide", problem=ProblemState(problem=problem) if problem else None)


def step_system(problem: str) -> str:
    """A dialogue turn that shows a step (MathDial "telling"): guide mode at the help level
    that allows one worked step."""
    return system_prompt("guide", problem=ProblemState(problem=problem, hint_level=2))


def qa_system(question: str, passages: Sequence[PromptPassage] = (), qa_mode: str = "auto") -> str:
    """A QA example: explain mode with passages, else the earned-full-solution guide mode."""
    mode = qa_mode if qa_mode != "auto" else ("explain" if passages else "solution")
    if mode == "explain":
        return system_prompt("explain", passages=passages)
    top = len(HINT_LADDER) - 1
    return system_prompt("guide", problem=ProblemState(problem=question, hint_level=top))


# -- the converters ----------------------------------------------------------------------------
def _finish(
    turns: list[dict[str, str]],
    *,
    field: str,
    system: Callable[[], str] | None,
) -> list[dict[str, str]]:
    """Drop trailing non-assistant turns, require an assistant turn, add the system prompt."""
    while turns and turns[-1]["role"] != "assistant":
        turns.pop()
    if not any(t["role"] == "assistant" for t in turns):
        raise RecordError(field, "has no assistant (teacher) turn, so there is nothing to learn")
    if turns[0]["role"] != "system" and system is not None:
        turns.insert(0, {"role": "system", "content": system()})
    return turns


def _chat_turns(items: Any, field: str, role_key: str, text_key: str, roles: dict) -> list:
    if not isinstance(items, list):
        raise RecordError(field, "must be a list of turns")
    if not items:
        raise RecordError(field, "is empty")
    turns: list[dict[str, str]] = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise RecordError(where, "must be an object")
        role = item.get(role_key)
        if role not in roles:
            known = ", ".join(sorted(roles))
            raise RecordError(f"{where}.{role_key}", f"unknown role {role!r}; use one of {known}")
        if roles[role] == "system" and i != 0:
            raise RecordError(f"{where}.{role_key}", "a system message must come first")
        turns.append(
            {"role": roles[role], "content": _content(item.get(text_key), f"{where}.{text_key}")}
        )
    return turns


def _chat(record: dict, turns: list[dict[str, str]], field: str, qa_mode: str) -> tuple:
    problem = record.get("problem") if isinstance(record.get("problem"), str) else None
    first_user = next((t["content"] for t in turns if t["role"] == "user"), "")
    if problem:
        system: Callable[[], str] = lambda: dialogue_system(problem)  # noqa: E731
    else:
        passages = _passages(record)
        system = lambda: qa_system(first_user, passages, qa_mode)  # noqa: E731
    messages = _finish(turns, field=field, system=system)
    return messages, problem or first_user or messages[1]["content"]


def from_openai(record: dict[str, Any], qa_mode: str = "auto") -> tuple:
    roles = {"system": "system", "user": "user", "assistant": "assistant"}
    turns = _chat_turns(record.get("messages"), "messages", "role", "content", roles)
    return _chat(record, turns, "messages", qa_mode)


def from_sharegpt(record: dict[str, Any], qa_mode: str = "auto") -> tuple:
    turns = _chat_turns(
        record.get("conversations"), "conversations", "from", "value", SHAREGPT_ROLES
    )
    return _chat(record, turns, "conversations", qa_mode)


def from_alpaca(record: dict[str, Any], qa_mode: str = "auto") -> tuple:
    instruction = _text(record, "instruction")
    extra = _text(record, "input", required=False)
    output = _text(record, "output")
    question = f"{instruction}\n\n{extra}" if extra else instruction
    system = _text(record, "system", required=False) or qa_system(
        question, _passages(record), qa_mode
    )
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": question},
        {"role": "assistant", "content": output},
    ]
    return messages, question


def from_qa(record: dict[str, Any], qa_mode: str = "auto") -> tuple:
    keys = next(((q, a) for q, a in QA_KEYS if q in record and a in record), None)
    if keys is None:
        q_key = next((q for q, _ in QA_KEYS if q in record), None)
        missing = {"question": "answer", "prompt": "response"}.get(q_key or "", "question")
        raise RecordError(
            missing, "is missing (QA records need question/answer or prompt/response)"
        )
    question, answer = _text(record, keys[0]), _text(record, keys[1])
    messages = [
        {"role": "system", "content": qa_system(question, _passages(record), qa_mode)},
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]
    return messages, question


_CALC = re.compile(r"<<[^<>]*>>")
_FINAL = re.compile(r"\n?####\s*(.+?)\s*$", re.S)


def gsm8k_answer(answer: str) -> str:
    """GSM8K's worked answer without calculator annotations; ``#### N`` -> "The answer is N."."""
    text = _CALC.sub("", answer).strip()
    m = _FINAL.search(text)
    if not m:
        raise RecordError("answer", "has no final '#### <answer>' line (is this GSM8K?)")
    body = text[: m.start()].rstrip()
    final = f"The answer is {m.group(1).strip()}."
    return f"{body}\n{final}" if body else final


def from_gsm8k(record: dict[str, Any], qa_mode: str = "auto") -> tuple:
    question = _text(record, "question")
    answer = gsm8k_answer(_text(record, "answer"))
    messages = [
        {"role": "system", "content": qa_system(question, (), qa_mode)},
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]
    return messages, question


def _dialogue(
    problem: str | None, raw: list[tuple[str, str, str]], field: str, group: str
) -> tuple:
    """Teacher/student turns -> messages; consecutive turns of one speaker are merged."""
    turns: list[dict[str, str]] = []
    moves: list[str] = []  # one per assistant message; merged turns: "telling" wins
    for role, text, move in raw:
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n" + text
            if role == "assistant" and (move == "telling" or not moves[-1]):
                moves[-1] = move or moves[-1]
        else:
            turns.append({"role": role, "content": text})
            if role == "assistant":
                moves.append(move)
    messages = _finish(turns, field=field, system=lambda: dialogue_system(problem))
    return messages, problem or group, tuple(moves), problem or ""


def from_dialogue(record: dict[str, Any], qa_mode: str = "auto") -> tuple:
    problem = _text(record, "problem", required=False) or None
    items = record.get("messages")
    if not isinstance(items, list) or not items:
        raise RecordError("messages", "must be a non-empty list of teacher/student turns")
    raw = []
    for i, m in enumerate(items):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise RecordError(where, "must be an object")
        role = m.get("role")
        if role not in DIALOGUE_ROLES:
            raise RecordError(f"{where}.role", f"unknown role {role!r}; use teacher or student")
        move = m.get("move") or ""
        if not isinstance(move, str):
            raise RecordError(f"{where}.move", f"must be text, got {type(move).__name__}")
        raw.append((DIALOGUE_ROLES[role], _content(m.get("content"), f"{where}.content"), move))
    # Dialogues without a problem (BRIDGE) are grouped by their opening turn, which items
    # annotated twice share.
    return _dialogue(problem, raw, "messages", raw[0][1])


_SPEAKER = re.compile(r"^\s*([^:|]{1,40}?):\s*(?:\((\w+)\))?\s*(.*)$", re.S)


def parse_mathdial_conversation(text: str) -> list[tuple[str, str, str]]:
    """MathDial's ``conversation``: ``Teacher: (probing)text|EOM|Name: text|EOM|...``."""
    turns = []
    for i, chunk in enumerate(text.split("|EOM|")):
        if not chunk.strip():
            continue
        m = _SPEAKER.match(chunk)
        if not m:
            raise RecordError(
                f"conversation (turn {i + 1})", f"no 'Speaker:' prefix in {chunk!r:.60}"
            )
        speaker, move, body = m.group(1).strip(), m.group(2) or "", m.group(3).strip()
        if not body:
            continue  # the source has a few empty "Teacher: (focus)" placeholders
        role = "assistant" if speaker.lower() == "teacher" else "user"
        turns.append((role, body, move))
    if not turns:
        raise RecordError("conversation", "has no turns")
    return turns


def from_mathdial(record: dict[str, Any], qa_mode: str = "auto") -> tuple:
    problem = _text(record, "question")
    raw = parse_mathdial_conversation(_text(record, "conversation"))
    return _dialogue(problem, raw, "conversation", problem)


CONVERTERS: dict[str, Callable[..., tuple]] = {
    "openai": from_openai,
    "sharegpt": from_sharegpt,
    "alpaca": from_alpaca,
    "qa": from_qa,
    "gsm8k": from_gsm8k,
    "dialogue": from_dialogue,
    "mathdial": from_mathdial,
}


def convert(record: Any, fmt: str, *, source: str, qa_mode: str = "auto") -> ChatExample:
    """One record -> ``ChatExample``; raises ``RecordError`` naming the bad field."""
    if not isinstance(record, dict):
        raise RecordError("record", f"must be a JSON object, got {type(record).__name__}")
    out = CONVERTERS[fmt](record, qa_mode)
    messages, group = out[0], out[1]
    moves = out[2] if len(out) > 2 else ()
    problem = out[3] if len(out) > 3 else ""
    rid = record.get("id", record.get("qid", ""))
    return ChatExample(
        messages=messages,
        group=normalize(group),
        source=source,
        format=fmt,
        id=str(rid) if rid is not None else "",
        moves=moves,
        problem=problem,
    )
