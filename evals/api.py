"""``run_eval(options, config)``: check the inputs, run the suites, write the report.

Inputs are checked before any model loads, so a dataset in the wrong form fails in a second
with its file, line and field. Ctrl-C stops the run between items: what finished is already in
``results.jsonl``, a partial report (``complete: false``) is written, and the same command
resumes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.run import EvalOptions, EvalRun, SuiteResult
from tutor.errors import InputError

if TYPE_CHECKING:
    from knowledge_base.embed import Embedder
    from tutor.lm.base import Generator

log = logging.getLogger(__name__)


def _suite_functions() -> dict[str, Callable[[EvalRun], SuiteResult]]:
    from evals.calibration import run_calibration
    from evals.grounding import run_grounding
    from evals.keyfacts import run_keyfacts
    from evals.learner_model import run_learner_model
    from evals.pedagogy import run_pedagogy
    from evals.retrieval import run_retrieval
    from evals.simulation import run_simulation

    return {
        "retrieval": run_retrieval,
        "pedagogy": run_pedagogy,
        "simulation": run_simulation,
        "grounding": run_grounding,
        "keyfacts": run_keyfacts,
        "learner-model": run_learner_model,
        "judge-calibration": run_calibration,
    }


def preflight(options: EvalOptions) -> None:
    """Read every input the chosen suites need; raise on the first bad one."""
    from evals.datasets import load_contexts
    from evals.retrieval import parse_qa_spec

    suites = set(options.suites)
    files: list[str] = []
    if "pedagogy" in suites:
        files += options.data
    if "simulation" in suites:
        files += options.sim_data
    for f in dict.fromkeys(files):
        load_contexts(f, skipped=[])
    if "judge-calibration" in suites:
        if not options.calibration_data:
            raise InputError(
                "judge-calibration needs human-annotated responses: --calibration-data FILE "
                "(MRBench form: conversation_history + anno_llm_responses with annotation labels)"
            )
        for f in options.calibration_data:
            if not any(c.responses for c in load_contexts(f)):
                raise InputError(
                    f"{f}: no annotated responses (anno_llm_responses / tutor_responses)"
                )
    if suites & {"retrieval", "grounding"}:
        from knowledge_base.evaluate import load_qa

        for spec in options.qa if "retrieval" in suites else options.qa[:1]:
            qa, _ = parse_qa_spec(spec)
            if qa.is_file():
                load_qa(qa)
    if "keyfacts" in suites and Path(options.keyfacts).is_file():
        from evals.keyfacts import load_keyfacts

        load_keyfacts(options.keyfacts)
    if "learner-model" in suites:
        from tutor.kt_data import load_answers

        for src in options.attempts:
            if src != "store":
                load_answers(src, options.columns or None)


def run_eval(
    options: EvalOptions,
    config: Any,
    *,
    generator: Generator | None = None,
    embedder: Embedder | None = None,
    judge_generator: Generator | None = None,
) -> dict[str, Any]:
    """Run ``options.suites`` and write the report into ``options.out``; returns the report."""
    from evals.report import write_report

    preflight(options)
    funcs = _suite_functions()
    if config.lm.temperature > 0:
        try:
            import torch

            torch.manual_seed(options.seed)
        except ImportError:  # pragma: no cover
            pass
    run = EvalRun(
        options, config, generator=generator, embedder=embedder, judge_generator=judge_generator
    )
    if run.store.resumed:
        log.info("resuming: %d items already done in %s", run.store.resumed, options.out)
    results: list[SuiteResult] = []
    current = ""
    try:
        for name in options.suites:
            current = name
            t0 = time.perf_counter()
            log.info("suite %s", name)
            r = funcs[name](run)
            r.seconds = time.perf_counter() - t0
            results.append(r)
        return write_report(run, results, complete=True)
    except KeyboardInterrupt:
        done = {r.name for r in results}
        if current and current not in done:
            keys = [k for k, rec in run.store.records.items() if rec.get("suite") == current]
            results.append(
                SuiteResult(current, keys=keys, notes=["interrupted: partial items, no summary"])
            )
        write_report(run, results, complete=False)
        raise
    finally:
        run.close()


def default_name(suite: str, config: Any) -> str:
    """``pedagogy-smollm2-135m-instruct`` (+ ``-tutoring`` for the shipped LoRA, or
    ``-<adapter dir name>``): stable, so the same command resumes into the same directory."""
    import re

    def slug(s: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(s).name if "/" in s else s).strip("-")[:60]

    from tutor.lm.bundled_lora import adapter_label, short_name

    name = f"{suite}-{slug(config.lm.model)}"
    label = adapter_label(config.lm)  # "tutoring" for the shipped LoRA, "" for none
    if label:
        name += "-" + slug(short_name(label))
    return name
