"""Key-fact suite: does an explain-mode answer state the course's key fact, and does a question
the course does not cover get an honest "not covered"?

Question set (``evals/data/keyfacts.jsonl``, written for this project; see its README): one
JSON object a line, ``{"id", "question", "corpus": "course" | "openstax", "covered": bool,
"document", "must": [regex, ...], "must_not": [regex, ...]}``. Patterns are Python regular
expressions matched case-insensitively anywhere in the answer. The questions are asked of the
real agent in explain mode over the corpus's own eval collection (the sample course,
``data/curriculum``, or the OpenStax chapters, ``../shared/data/curriculum``), the same
collections the retrieval and grounding suites use.

Scoring (own patterns; nothing of the agent's is called, not even its not-covered constant):

- **in course** (``covered``): correct when every ``must`` pattern matches and no ``must_not``
  pattern does (a stated misconception or a wrong number). An answer that says the course does
  not cover the question is counted apart and is not correct.
- **out of course**: honest when the answer says the material does not cover the question
  (``says_not_covered``), no ``must_not`` pattern (the words a made-up answer would use)
  matches, and no other statement names a content word of the question
  (``answered_anyway``: a sentence that is not a question, not the notice and not about the
  course or the teacher); an answer that prints the disclaimer and then answers anyway is
  made up.

What it sees: the key fact in the wording the patterns allow (numbers, terms, short phrases)
and the listed wrong facts. What it cannot see: a right fact in words the patterns miss (a
false "wrong"), a false statement next to the key fact that no ``must_not`` names, whether the
answer is supported by the passages (the grounding suite's business), and made-up content in
an out-of-course answer that avoids both the listed words and the question's own words
("Actor: A.J. Abreu" for "Who wrote Romeo and Juliet?").
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals import metrics as M
from evals.datasets import DatasetError, DialogueContext, Turn
from evals.run import REPO_ROOT, SHARED_DATA, EvalRun, SuiteResult, file_tag, seeded_sample
from evals.tutors import AgentConversation

log = logging.getLogger(__name__)

DEFAULT_KEYFACTS = REPO_ROOT / "evals" / "data" / "keyfacts.jsonl"
# corpus name -> (the QA file whose eval collection holds it, the corpus directory)
CORPORA: dict[str, tuple[Path, Path]] = {
    "course": (REPO_ROOT / "data" / "curriculum" / "qa.jsonl", REPO_ROOT / "data" / "curriculum"),
    "openstax": (REPO_ROOT / "evals" / "data" / "openstax_qa.jsonl", SHARED_DATA / "curriculum"),
}

_NOT_COVERED = re.compile(
    r"\b(?:(?:does|do|is|are)\s*n[o']?t|does not|do not|is not|are not)\s+"
    r"(?:cover|include|mention|explain|discuss|talk about|deal with|have (?:any )?"
    r"(?:information|material|sources?|passages?))\b"
    r"|\bnot covered\b|\bno (?:information|source|sources|material|passage)s? (?:about|on|for|to)\b"
    r"|\b(?:is ?n[o']t|is not|not) (?:in|part of|covered (?:in|by)) (?:your|the|this) "
    r"(?:course|material|lesson|notes)"
    r"|\bcan(?:not|['’]t) find (?:this|that|it|anything about)\b",
    re.I,
)


@dataclass(frozen=True)
class KeyFact:
    id: str
    question: str
    corpus: str
    covered: bool
    document: str
    must: tuple[str, ...]
    must_not: tuple[str, ...]


def _patterns(path: Path, line: int, rec: dict[str, Any], name: str) -> tuple[str, ...]:
    pats = rec.get(name, [])
    if not isinstance(pats, list) or not all(isinstance(p, str) for p in pats):
        raise DatasetError(path, line, name, "must be a list of regular expressions")
    for p in pats:
        try:
            re.compile(p)
        except re.error as e:
            raise DatasetError(
                path, line, name, f"holds a bad regular expression {p!r} ({e})"
            ) from None
    return tuple(pats)


def load_keyfacts(path: str | Path) -> list[KeyFact]:
    """The question set; ``DatasetError`` names the file, line and field of a bad record."""
    p = Path(path)
    out = []
    for n, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError as e:
            raise DatasetError(p, n, "(line)", f"is not JSON ({e})") from None
        if not isinstance(rec, dict):
            raise DatasetError(p, n, "(line)", "is not a JSON object")
        for name in ("id", "question", "corpus"):
            if not isinstance(rec.get(name), str) or not rec[name].strip():
                raise DatasetError(p, n, name, "is missing or empty")
        if rec["corpus"] not in CORPORA:
            raise DatasetError(p, n, "corpus", f"must be one of {', '.join(CORPORA)}")
        if not isinstance(rec.get("covered"), bool):
            raise DatasetError(p, n, "covered", "must be true or false")
        item = KeyFact(
            id=rec["id"],
            question=rec["question"],
            corpus=rec["corpus"],
            covered=rec["covered"],
            document=str(rec.get("document", "")),
            must=_patterns(p, n, rec, "must"),
            must_not=_patterns(p, n, rec, "must_not"),
        )
        if item.covered and not item.must:
            raise DatasetError(p, n, "must", "is empty: an in-course question needs its key fact")
        out.append(item)
    return out


def says_not_covered(text: str) -> bool:
    """The answer says that the course material does not cover the question."""
    return bool(_NOT_COVERED.search(text or ""))


_SENT = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[A-Za-z]{4,}")
_STOP = frozenset(
    "what which when where does how about your with that this from have into there their "
    "they them explain tell work works mean means called find difference between".split()
)
# a sentence about the course or the teacher, not about the topic ("Ask your teacher about ...")
_ABOUT_COURSE = re.compile(r"\b(?:course|material|teacher|source|notes|lesson|ask)\b", re.I)


def answered_anyway(question: str, answer: str) -> list[str]:
    """The sentences of ``answer`` that talk about the question's topic beyond a not-covered
    notice: statements (not questions, not the notice, not about the course or the teacher)
    that name a content word of the question."""
    topic = {w.lower() for w in _WORD.findall(question)} - _STOP
    out = []
    for sentence in _SENT.split(answer or ""):
        s = sentence.strip()
        if not s or s.endswith("?") or says_not_covered(s) or _ABOUT_COURSE.search(s):
            continue
        if topic & {w.lower() for w in _WORD.findall(s)}:
            out.append(s)
    return out


def score_keyfact(item: KeyFact, answer: str) -> dict[str, Any]:
    """``correct`` (in course: key facts stated, none forbidden; out of course: an honest "not
    covered" with nothing forbidden), the patterns missing and forbidden ones found."""
    text = answer or ""
    missing = [p for p in item.must if not re.search(p, text, re.I)]
    forbidden = [p for p in item.must_not if re.search(p, text, re.I)]
    not_covered = says_not_covered(text)
    anyway = [] if item.covered else answered_anyway(item.question, text)
    if item.covered:
        correct = not missing and not forbidden and not not_covered
    else:
        correct = not_covered and not forbidden and not anyway
    return {
        "correct": correct,
        "not_covered": not_covered,
        "missing": missing,
        "forbidden": forbidden,
        "answered_anyway": anyway,
    }


def _record(run: EvalRun, agent: Any, key: str, item: KeyFact, collection: str) -> dict[str, Any]:
    ctx = DialogueContext(id=item.id, source="keyfacts", history=[Turn("student", item.question)])
    turn = AgentConversation(agent, ctx, key=key, mode="explain", collection=collection).say(
        item.question
    )
    return {
        "key": key,
        "suite": "keyfacts",
        "id": item.id,
        "corpus": item.corpus,
        "covered": item.covered,
        "question": item.question,
        "answer": turn.text,
        "mode": turn.mode,
        "sources": len(turn.sources),
        **score_keyfact(item, turn.text),
        "seconds": round(turn.seconds, 3),
    }


def run_keyfacts(run: EvalRun) -> SuiteResult:
    res = SuiteResult("keyfacts")
    opts = run.options
    path = Path(opts.keyfacts)
    if not path.is_file():
        res.skipped["keyfacts"] = f"question set {path} not found"
        return res
    items = load_keyfacts(path)
    tag = file_tag(path)
    chosen: list[KeyFact] = []
    for covered in (True, False):
        group = [i for i in items if i.covered is covered]
        chosen += seeded_sample(group, opts.keyfacts_limit, opts.seed, f"keyfacts:{tag}:{covered}")
    agent = None
    collections: dict[str, str] = {}
    for item in run.progress(chosen, len(chosen), "keyfacts"):
        key = f"keyfacts|{tag}|{item.id}"
        if run.store.has(key):
            rec = run.store.get(key)
            scored = score_keyfact(item, rec["answer"])
            if any(rec.get(k) != v for k, v in scored.items()):  # scored by an older scorer
                run.store.add(dict(rec, **scored))
            res.keys.append(key)
            continue
        if item.corpus not in collections:
            from evals.retrieval import ensure_collection

            qa_path, corpus = CORPORA[item.corpus]
            if not corpus.is_dir():
                res.skipped[item.corpus] = f"corpus {corpus} not found"
                collections[item.corpus] = ""
            else:
                collections[item.corpus] = ensure_collection(run, qa_path, corpus)
        if not collections[item.corpus]:
            continue
        agent = agent or run.agent(with_kb=True)
        run.store.add(_record(run, agent, key, item, collections[item.corpus]))
        res.keys.append(key)
    summarize_keyfacts(res, [run.store.get(k) for k in res.keys])
    return res


def _share(recs: list[dict[str, Any]], field: str) -> tuple[float | None, int, int]:
    vals = [bool(r[field]) for r in recs]
    return M.mean([float(v) for v in vals]), sum(vals), len(vals)


def summarize_keyfacts(res: SuiteResult, recs: list[dict[str, Any]]) -> None:
    def cell(x: tuple[float | None, int, int]) -> str:
        return "–" if x[0] is None else f"{100 * x[0]:.0f}% ({x[1]}/{x[2]})"

    summary: dict[str, Any] = {}
    rows = []
    for corpus in (None, *CORPORA):
        rs = [r for r in recs if corpus is None or r["corpus"] == corpus]
        inside = [r for r in rs if r["covered"]]
        outside = [r for r in rs if not r["covered"]]
        made_up = [dict(r, made_up=not r["correct"]) for r in outside]
        s = {
            "in_course_correct": _share(inside, "correct"),
            "in_course_not_covered": _share(inside, "not_covered"),
            "out_of_course_honest": _share(outside, "correct"),
            "out_of_course_made_up": _share(made_up, "made_up"),
        }
        name = corpus or "all"
        summary[name] = {k: {"rate": v[0], "k": v[1], "n": v[2]} for k, v in s.items()}
        prefix = "" if corpus is None else f"{corpus}/"
        res.metric(f"{prefix}in_course_correct", s["in_course_correct"][0], True)
        res.metric(f"{prefix}out_of_course_honest", s["out_of_course_honest"][0], True)
        res.metric(f"{prefix}out_of_course_made_up", s["out_of_course_made_up"][0], False)
        res.metric(f"{prefix}in_course_not_covered", s["in_course_not_covered"][0], None)
        rows.append([name, *[cell(v) for v in s.values()]])
    res.summary = summary
    res.table(
        "Explain key-fact correctness",
        [
            "corpus",
            "in course: key fact right",
            "in course: said not covered",
            "out of course: honest 'not covered'",
            "out of course: made-up content",
        ],
        rows,
        "In course: every 'must' pattern matches the explain-mode answer and no 'must_not' does. "
        "Out of course: the answer says the material does not cover it and uses none of the "
        "words a made-up answer would (evals/keyfacts.py, evals/data/keyfacts.jsonl; the "
        "agent's own checks are not used).",
    )
