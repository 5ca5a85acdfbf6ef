"""Retrieval suite: recall@k, MRR@10 and nDCG@10 of dense, BM25 and hybrid search on QA sets
with gold sections.

Each QA set (``knowledge_base.evaluate`` form: question, document, section) comes with the
directory of its documents; they are loaded into their own collection of the run's eval
knowledge base (unchanged files are skipped on reruns). A retrieved passage is relevant when
it comes from the gold document and section (``knowledge_base.evaluate.is_hit``); nDCG counts
every chunk of the gold section as relevant (sections can span several chunks).
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals import metrics as M
from evals.run import EvalRun, SuiteResult, file_tag, seeded_sample
from tutor.errors import InputError

if TYPE_CHECKING:
    from knowledge_base import KnowledgeBase
    from knowledge_base.evaluate import QAItem

log = logging.getLogger(__name__)

MODES = ("dense", "bm25", "hybrid")
KS = (1, 3, 5, 10)
DOC_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx")


def parse_qa_spec(spec: str) -> tuple[Path, Path]:
    """``QA_FILE=CORPUS_DIR`` -> paths (the corpus defaults to the QA file's directory)."""
    qa, sep, corpus = spec.partition("=")
    qa_path = Path(qa).expanduser()
    corpus_path = Path(corpus).expanduser() if sep else qa_path.parent
    return qa_path, corpus_path


def corpus_files(directory: Path) -> list[Path]:
    """The documents under ``directory`` (README files and non-document files left out)."""
    if not directory.is_dir():
        raise InputError(f"corpus directory {directory} does not exist; pass QA_FILE=CORPUS_DIR")
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file()
        and p.suffix.lower() in DOC_SUFFIXES
        and not p.name.lower().startswith("readme")
    )


def dataset_name(qa_path: Path) -> str:
    """``openstax_qa``; a generic ``qa.jsonl`` is named after its folder (``curriculum-qa``)."""
    stem = qa_path.stem
    return f"{qa_path.parent.name}-{stem}" if stem in ("qa", "questions", "test") else stem


def collection_name(qa_path: Path) -> str:
    return "eval-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset_name(qa_path)).strip("-")[:40]


def ensure_collection(run: EvalRun, qa_path: Path, corpus: Path) -> str:
    """Load the corpus into the eval KB (its own collection); returns the collection name."""
    coll = collection_name(qa_path)
    files = corpus_files(corpus)
    if not files:
        raise InputError(
            f"corpus directory {corpus} holds no documents ({', '.join(DOC_SUFFIXES)})"
        )
    t0 = time.perf_counter()
    report = run.kb.add(files, collection=coll)
    if report.errors:
        log.warning("%d corpus file(s) failed to load: %s", len(report.errors), report.errors[0])
    log.info("eval KB %s: %s (%.1f s)", coll, report.summary(), time.perf_counter() - t0)
    return coll


def relevant_counts(kb: KnowledgeBase, collection: str) -> dict[tuple[str, str], int]:
    """``(source path, section) -> number of chunks`` for the collection."""
    out: dict[tuple[str, str], int] = {}
    for doc in kb.store.documents(collection):
        for row in kb.store.doc_chunks(doc.doc_id):
            key = (Path(doc.source).as_posix(), row.section)
            out[key] = out.get(key, 0) + 1
    return out


def _n_relevant(counts: dict[tuple[str, str], int], document: str, sections: list[str]) -> int:
    n = 0
    for (source, section), c in counts.items():
        if (source == document or source.endswith("/" + document)) and section in sections:
            n += c
    return n


def _search_record(
    run: EvalRun,
    key: str,
    dataset: str,
    mode: str,
    i: int,
    item: QAItem,
    collection: str,
    counts: dict[tuple[str, str], int],
) -> dict[str, Any]:
    """Search for one QA item's question in one mode; where the gold passages rank, and timing."""
    from knowledge_base.evaluate import is_hit

    t0 = time.perf_counter()
    passages = run.kb.search(
        item.question, k=max(KS), collection=collection, mode=mode, min_score=-1.0
    )
    ms = (time.perf_counter() - t0) * 1000
    ranks = [r for r, p in enumerate(passages, start=1) if is_hit(p, item)]
    return {
        "key": key,
        "suite": "retrieval",
        "dataset": dataset,
        "mode": mode,
        "index": i,
        "question": item.question,
        "want": f"{item.document}: {' | '.join(item.sections)}",
        "ranks": ranks,
        "n_relevant": max(_n_relevant(counts, item.document, item.sections), 1 if ranks else 0),
        "top": [p.citation for p in passages[:3]],
        "ms": round(ms, 2),
    }


def _retrieval_table(res: SuiteResult, per_set: dict[str, dict[str, dict[str, Any]]]) -> None:
    """The metrics and the table of every QA set and mode."""
    rows = []
    for name, modes in per_set.items():
        for mode, s in modes.items():
            rows.append(
                [
                    name,
                    mode,
                    s["n"],
                    *[f"{s[f'recall@{k}']:.3f}" for k in KS],
                    f"{s['mrr@10']:.3f}",
                    f"{s['ndcg@10']:.3f}",
                    f"{s['ms']:.1f}",
                ]
            )
            for k in KS:
                res.metric(f"{name}/{mode}/recall@{k}", s[f"recall@{k}"], True)
            res.metric(f"{name}/{mode}/mrr@10", s["mrr@10"], True)
            res.metric(f"{name}/{mode}/ndcg@10", s["ndcg@10"], True)
    res.table(
        "Retrieval: dense vs BM25 vs hybrid",
        [
            "QA set",
            "mode",
            "questions",
            *[f"recall@{k}" for k in KS],
            "MRR@10",
            "nDCG@10",
            "ms/query",
        ],
        rows,
        "A hit is a passage from the gold document and section; nDCG counts every chunk of the gold "
        "section. ms/query: search time, the query vectors embedded beforehand in one batch.",
    )


def run_retrieval(run: EvalRun) -> SuiteResult:
    from knowledge_base.evaluate import load_qa

    res = SuiteResult("retrieval")
    opts = run.options
    per_set: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in opts.qa:
        qa_path, corpus = parse_qa_spec(spec)
        if not qa_path.is_file():
            res.skipped[qa_path.name] = f"QA set {qa_path} not found"
            log.warning("retrieval: QA set %s not found; skipped", qa_path)
            continue
        if not corpus.is_dir():
            res.skipped[qa_path.name] = f"corpus {corpus} not found"
            log.warning("retrieval: corpus %s not found; skipped", corpus)
            continue
        items = load_qa(qa_path)
        tag = file_tag(qa_path)
        name = dataset_name(qa_path)
        chosen = seeded_sample(list(enumerate(items)), opts.qa_limit, opts.seed, tag)
        coll = ensure_collection(run, qa_path, corpus)
        counts = relevant_counts(run.kb, coll)
        per_set[name] = {}
        # embed the questions in one batch: every search then finds its vector in the cache
        pending = [
            it.question.strip()
            for i, it in chosen
            if not run.store.has(f"retrieval|{tag}|hybrid|{i}")
        ]
        if pending:
            run.embedder.encode(pending)
        todo = [(mode, i, it) for mode in MODES for i, it in chosen]
        for mode, i, item in run.progress(todo, len(todo), f"retrieval {name}"):
            key = f"retrieval|{tag}|{mode}|{i}"
            res.keys.append(key)
            if run.store.has(key):
                continue
            run.store.add(_search_record(run, key, name, mode, i, item, coll, counts))
        for mode in MODES:
            recs = [run.store.get(f"retrieval|{tag}|{mode}|{i}") for i, _ in chosen]
            per_set[name][mode] = summarize(recs)
    res.summary = {"sets": per_set, "ks": list(KS)}
    _retrieval_table(res, per_set)
    return res


def summarize(recs: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(recs)
    out: dict[str, Any] = {"n": n}
    for k in range(1, 11):
        out[f"recall@{k}"] = sum(M.recall_at(r["ranks"], k) for r in recs) / n if n else 0.0
    out["mrr@10"] = sum(M.reciprocal_rank(r["ranks"], 10) for r in recs) / n if n else 0.0
    out["ndcg@10"] = sum(M.ndcg_at(r["ranks"], r["n_relevant"], 10) for r in recs) / n if n else 0.0
    out["ms"] = sum(r.get("ms", 0.0) for r in recs) / n if n else 0.0
    out["curve"] = [out[f"recall@{k}"] for k in range(1, 11)]
    return out
