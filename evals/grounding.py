"""Grounding suite: are explain-mode answers supported by the passages they cite?

For questions of a QA set, the real agent answers in explain mode over the eval knowledge base.
Per answer:

- **citation validity**: the share of ``[n]`` markers that point at a passage which was actually
  retrieved (1 <= n <= passages shown), measured on the answer as shown and on the LM's own
  output before the agent's citation filter;
- **supported sentences**: the share of the answer's statements (sentences that are not
  questions) supported by the cited passages: a statement is supported when its embedding's
  cosine similarity to some sentence of a cited passage reaches a threshold; also against all
  retrieved passages. With an LM judge, the judge decides instead (Yes/No per statement).

The threshold is calibrated on the corpus unless given (``--support-threshold``): sentences of
the corpus with a quarter of their words dropped are compared with the sentences of their own
passage (supported) and of a passage from another document (not supported); the threshold that
maximises balanced accuracy is used, and its balanced accuracy is reported. It measures
"says what a passage says"; paraphrase that a small embedder misses counts as unsupported.
"""

from __future__ import annotations

import logging
import random
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from evals import metrics as M
from evals.datasets import DialogueContext, Turn
from evals.retrieval import ensure_collection, parse_qa_spec
from evals.run import EvalRun, SuiteResult, file_tag, seeded_sample
from evals.tutors import AgentConversation

if TYPE_CHECKING:
    from knowledge_base.embed import Embedder

log = logging.getLogger(__name__)

_CITE = re.compile(r"\[(\d+)\]")
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9$\"'(])")
NOT_COVERED_PREFIX = "Your course material doesn't cover this"

SUPPORT_SYSTEM = (
    "You check whether a statement is supported by reference passages. Answer Yes if the "
    "passages say what the statement says, otherwise No. Answer with one word."
)


def sentences(text: str) -> list[str]:
    """Split into sentences (a citation after the full stop stays with its sentence); keep
    those with at least 3 words."""
    text = re.sub(r"([.!?])\s*((?:\[\d+\]\s*)+)", r" \2\1 ", text or "")
    parts: list[str] = []
    for block in re.split(r"\n+", text):
        parts.extend(s.strip() for s in _SENT.split(block.strip()) if s.strip())
    return [p for p in parts if len(p.split()) >= 3]


def _is_claim(sentence: str) -> bool:
    s = sentence.strip()
    if s.endswith(("?", ":")) or s.startswith(NOT_COVERED_PREFIX) or s.startswith("#"):
        return False  # a question, a lead-in ("Here is what your course says:"), the notice
    return len(re.findall(r"[A-Za-z]{2,}", strip_citations(s))) >= 3  # not a bare formula


def statements(answer: str) -> list[str]:
    """The answer's claims: its sentences minus questions, lead-ins ending in a colon, headings,
    bare formulas and the fixed not-covered notice."""
    return [s for s in sentences(answer) if _is_claim(s)]


def strip_citations(text: str) -> str:
    return _CITE.sub("", text).strip()


def citation_validity(text: str, n_passages: int) -> tuple[int, int]:
    """``(valid markers, all markers)`` of ``[n]`` in ``text``."""
    marks = [int(m) for m in _CITE.findall(text or "")]
    return sum(1 <= m <= n_passages for m in marks), len(marks)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def max_similarity(embedder: Embedder, claims: list[str], evidence: list[str]) -> list[float]:
    """For each claim, the best cosine similarity to any evidence sentence (-1 when none)."""
    if not claims:
        return []
    if not evidence:
        return [-1.0] * len(claims)
    c = _unit(np.asarray(embedder.encode([strip_citations(x) for x in claims]), dtype=np.float32))
    e = _unit(np.asarray(embedder.encode(evidence), dtype=np.float32))
    return [float(x) for x in (c @ e.T).max(axis=1)]


def _drop_words(sentence: str, rng: random.Random, share: float = 0.25) -> str:
    words = sentence.split()
    keep = [w for w in words if rng.random() >= share]
    return " ".join(keep if len(keep) >= 3 else words)


def calibrate_threshold(run: EvalRun, collection: str, n: int = 150) -> dict[str, Any]:
    """Pick the support threshold on the corpus (see module docstring)."""
    rng = random.Random(f"{run.options.seed}:support")
    kb = run.kb
    docs = kb.store.documents(collection)
    by_doc = {d.doc_id: [c.text for c in kb.store.doc_chunks(d.doc_id)] for d in docs}
    chunks = [
        (doc, text) for doc, texts in by_doc.items() for text in texts if len(sentences(text)) >= 2
    ]
    if len(by_doc) < 2 or len(chunks) < 4:
        return {
            "threshold": 0.5,
            "balanced_accuracy": None,
            "pairs": 0,
            "note": "corpus too small; default 0.5",
        }
    pos, neg = [], []
    for _ in range(n):
        doc, text = rng.choice(chunks)
        sents = sentences(text)
        claim = _drop_words(rng.choice(sents), rng)
        other_doc, other = rng.choice(chunks)
        tries = 0
        while other_doc == doc and tries < 20:
            other_doc, other = rng.choice(chunks)
            tries += 1
        if other_doc == doc:
            continue
        pos.append((claim, sents))
        neg.append((claim, sentences(other)))
    # one batch for every text (the caching embedder then serves the per-pair lookups)
    claims = [strip_citations(c) for c, _ in pos]
    texts = list(dict.fromkeys(claims + [x for _, ev in pos + neg for x in ev]))
    for start in range(0, len(texts), 256):
        run.embedder.encode(texts[start : start + 256])
    ps = [max_similarity(run.embedder, [c], ev)[0] for c, ev in pos]
    ns = [max_similarity(run.embedder, [c], ev)[0] for c, ev in neg]
    best_t, best_ba = 0.5, -1.0
    for t in sorted(set(ps + ns)):
        tpr = sum(x >= t for x in ps) / len(ps)
        tnr = sum(x < t for x in ns) / len(ns)
        ba = (tpr + tnr) / 2
        if ba > best_ba:
            best_t, best_ba = t, ba
    return {
        "threshold": round(best_t, 4),
        "balanced_accuracy": round(best_ba, 4),
        "pairs": len(ps) + len(ns),
    }


def judge_supported(judge: Any, claim: str, evidence: list[str]) -> bool | None:
    from tutor.errors import BackendError

    if judge is None or not judge.available:
        return None
    if not evidence:
        return False
    passages = "\n".join(f"- {e}" for e in evidence[:40])
    msgs = [
        {"role": "system", "content": SUPPORT_SYSTEM},
        {
            "role": "user",
            "content": f"Passages:\n{passages}\n\nStatement: {strip_citations(claim)}\n\nSupported? Yes or No.",
        },
    ]
    try:
        out = (
            "".join(judge.generator.stream(msgs, max_new_tokens=4, temperature=0.0)).strip().lower()
        )
    except BackendError as e:
        judge.skipped = f"judge backend unreachable: {e}"
        return None
    if out.startswith("yes"):
        return True
    if out.startswith("no"):
        return False
    return None


def _support_calibration(run: EvalRun, collection: str) -> dict[str, Any]:
    """The support threshold: the one given (``--support-threshold``) or calibrated on the corpus."""
    if run.options.support_threshold is not None:
        return {
            "threshold": run.options.support_threshold,
            "balanced_accuracy": None,
            "pairs": 0,
            "note": "given",
        }
    return calibrate_threshold(run, collection)


def _grounding_record(
    run: EvalRun, agent: Any, key: str, i: int, question: str, collection: str
) -> dict[str, Any]:
    """Ask the agent one question in explain mode; score its claims and citations."""
    ctx = DialogueContext(id=f"q{i}", source="qa", history=[Turn("student", question)])
    turn = AgentConversation(agent, ctx, key=key, mode="explain", collection=collection).say(
        question
    )
    srcs = turn.sources
    cited = [s for s in srcs if s["cited"]]
    claims = statements(turn.text)
    cited_ev = [x for s in cited for x in sentences(s["text"])]
    all_ev = [x for s in srcs for x in sentences(s["text"])]
    sim_cited = max_similarity(run.embedder, claims, cited_ev)
    sim_all = max_similarity(run.embedder, claims, all_ev)
    judged = (
        [judge_supported(run.judge, c, cited_ev) for c in claims] if run.judge is not None else []
    )
    valid, marks = citation_validity(turn.text, len(srcs))
    raw_text = turn.lm_outputs[-1] if turn.lm_outputs else ""
    raw_valid, raw_marks = citation_validity(raw_text, len(srcs))
    return {
        "key": key,
        "suite": "grounding",
        "question": question,
        "answer": turn.text,
        "lm_output": raw_text,
        "mode": turn.mode,
        "sources": [
            {"index": s["index"], "citation": s["citation"], "cited": s["cited"]} for s in srcs
        ],
        "claims": [
            {
                "text": c,
                "sim_cited": round(a, 4),
                "sim_retrieved": round(b, 4),
                "judge": judged[j] if judged else None,
            }
            for j, (c, a, b) in enumerate(zip(claims, sim_cited, sim_all, strict=True))
        ],
        "citations": {
            "valid": valid,
            "all": marks,
            "lm_valid": raw_valid,
            "lm_all": raw_marks,
        },
        "seconds": round(turn.seconds, 3),
    }


def run_grounding(run: EvalRun) -> SuiteResult:
    from knowledge_base.evaluate import load_qa

    res = SuiteResult("grounding")
    opts = run.options
    if not opts.qa:
        res.skipped["grounding"] = "no QA set given"
        return res
    qa_path, corpus = parse_qa_spec(opts.qa[0])
    if not qa_path.is_file() or not corpus.is_dir():
        res.skipped["grounding"] = f"QA set {qa_path} or corpus {corpus} not found"
        return res
    coll = ensure_collection(run, qa_path, corpus)
    tag = file_tag(qa_path)
    cal = _support_calibration(run, coll)
    threshold = float(cal["threshold"])
    items = seeded_sample(
        list(enumerate(load_qa(qa_path))), opts.grounding_limit, opts.seed, f"grounding:{tag}"
    )
    agent = run.agent(with_kb=True)
    for i, item in run.progress(items, len(items), "grounding"):
        key = f"grounding|{tag}|{i}"
        res.keys.append(key)
        if run.store.has(key):
            continue
        run.store.add(_grounding_record(run, agent, key, i, item.question, coll))
    recs = [run.store.get(k) for k in res.keys]
    summarize_grounding(res, recs, threshold, cal)
    if run.judge is not None and run.judge.skipped:
        res.skipped["judge"] = run.judge.skipped
    return res


def summarize_grounding(
    res: SuiteResult, recs: list[dict[str, Any]], threshold: float, cal: dict[str, Any]
) -> None:
    claims = [c for r in recs for c in r["claims"]]
    valid = sum(r["citations"]["valid"] for r in recs)
    marks = sum(r["citations"]["all"] for r in recs)
    lm_valid = sum(r["citations"]["lm_valid"] for r in recs)
    lm_marks = sum(r["citations"]["lm_all"] for r in recs)
    judged = [c["judge"] for c in claims if c.get("judge") is not None]
    s = {
        "answers": len(recs),
        "statements": len(claims),
        "threshold": threshold,
        "calibration": cal,
        "supported_by_cited": M.mean([float(c["sim_cited"] >= threshold) for c in claims]),
        "supported_by_retrieved": M.mean([float(c["sim_retrieved"] >= threshold) for c in claims]),
        "supported_by_cited_judge": M.mean([float(x) for x in judged]) if judged else None,
        "answers_with_citation": M.mean([float(r["citations"]["valid"] > 0) for r in recs]),
        "citation_validity": valid / marks if marks else None,
        "lm_citation_validity": lm_valid / lm_marks if lm_marks else None,
        "citations": marks,
        "lm_citations": lm_marks,
        "not_covered": M.mean([float(r["answer"].startswith(NOT_COVERED_PREFIX)) for r in recs]),
    }
    res.summary = s
    res.metric("supported_by_cited", s["supported_by_cited"], True)
    res.metric("supported_by_retrieved", s["supported_by_retrieved"], True)
    res.metric("supported_by_cited_judge", s["supported_by_cited_judge"], True)
    res.metric("citation_validity", s["citation_validity"], True)
    res.metric("lm_citation_validity", s["lm_citation_validity"], True)
    res.metric("answers_with_citation", s["answers_with_citation"], True)

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.0f}%"

    ba = cal.get("balanced_accuracy")
    res.table(
        "Grounding of explain-mode answers",
        [
            "answers",
            "statements",
            "supported by cited",
            "supported by retrieved",
            "judge: supported",
            "answers citing",
            "valid citations (shown)",
            "valid citations (LM output)",
        ],
        [
            [
                s["answers"],
                s["statements"],
                pct(s["supported_by_cited"]),
                pct(s["supported_by_retrieved"]),
                pct(s["supported_by_cited_judge"]),
                pct(s["answers_with_citation"]),
                f"{pct(s['citation_validity'])} of {marks}",
                f"{pct(s['lm_citation_validity'])} of {lm_marks}",
            ]
        ],
        f"Support threshold {threshold:.3f} (cosine"
        + (
            f"; calibrated on {cal['pairs']} corpus pairs, balanced accuracy {ba:.2f}"
            if ba is not None
            else f"; {cal.get('note', '')}"
        )
        + ").",
    )
