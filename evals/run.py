"""One eval run: options, the run directory, incremental results, resume, shared resources.

The run directory (``--out``, default ``<paths.reports_dir>/<name>``) holds::

    config.json     the eval options, the resolved tutor config and their hash
    results.jsonl   one line per item result, appended and flushed as each item finishes
    report.json     summary metrics + every item + config (written at the end, or on Ctrl-C)
    report.md       tables for people; report.html the same with the plots embedded
    plots/*.png     per-dimension bars, reliability diagram, retrieval curves
    learners.sqlite scratch learner store for the agent's eval sessions

The eval knowledge base (the QA sets' documents, one collection per set) is a cache shared by
runs with the same embedder: ``<paths.home>/eval-kb/<embedder>``.

Resume: a rerun with the same config hash skips the items already in ``results.jsonl``.
Item keys carry the dataset file's content hash, so a changed file gets fresh results; the
config hash covers what changes an item's result (model, adapter, generation settings, KB and
tutor settings, seed, judge, student simulator), not sizes such as ``--limit``, so a larger
limit reuses the items already done. A run directory made with another config is refused
unless ``--overwrite`` is given.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from evals.machine import load_average
from knowledge_base.atomic import write_atomic
from tutor.errors import InputError

if TYPE_CHECKING:
    from knowledge_base.embed import Embedder
    from tutor.lm.base import Generator

log = logging.getLogger(__name__)

SUITES = (
    "retrieval",
    "pedagogy",
    "simulation",
    "grounding",
    "keyfacts",
    "learner-model",
    "judge-calibration",
)
ALL_SUITES = ("retrieval", "pedagogy", "simulation", "grounding", "keyfacts", "learner-model")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TUTOR_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")


def default_dialogues() -> list[str]:
    d = SHARED_DATA / "dialogues"
    return [str(d / "mathdial_sample.jsonl"), str(d / "bridge_train_sample.jsonl")]


def default_qa_sets() -> list[str]:
    """``QA=CORPUS`` pairs: the sample course's QA set and the OpenStax one."""
    return [
        f"{REPO_ROOT / 'data' / 'curriculum' / 'qa.jsonl'}={REPO_ROOT / 'data' / 'curriculum'}",
        f"{REPO_ROOT / 'evals' / 'data' / 'openstax_qa.jsonl'}={SHARED_DATA / 'curriculum'}",
    ]


@dataclass
class EvalOptions:
    """Everything ``tutor eval`` was asked to do (besides the tutor config)."""

    suites: tuple[str, ...] = ALL_SUITES
    out: Path = Path("reports/eval")
    seed: int = 0
    systems: tuple[str, ...] = ("agent", "raw", "reference")
    # pedagogy: dialogue files (MathDial/shared dialogue form or MRBench form), contexts per file
    data: list[str] = field(default_factory=default_dialogues)
    limit: int = 6
    # simulated tutoring
    sim_data: list[str] = field(default_factory=lambda: default_dialogues()[:1])
    sim_limit: int = 3
    max_turns: int = 3
    student: str = "scripted"  # scripted | lm
    # retrieval and grounding: "QA_FILE=CORPUS_DIR" pairs
    qa: list[str] = field(default_factory=default_qa_sets)
    qa_limit: int = 0  # questions per QA set for retrieval; 0 = all
    grounding_limit: int = 4
    # explain key-fact correctness: the question set and questions per kind (in / out of course)
    keyfacts: str = field(
        default_factory=lambda: str(REPO_ROOT / "evals" / "data" / "keyfacts.jsonl")
    )
    keyfacts_limit: int = 6
    support_threshold: float | None = None  # None = calibrated on the corpus
    # learner model
    attempts: list[str] = field(default_factory=list)  # files, or "store" (the learner store)
    columns: str = ""
    sim_learners: int = 100  # simulated learners per split and skill
    # judge calibration (MRBench form with human labels)
    calibration_data: list[str] = field(default_factory=list)
    calibration_limit: int = 0
    # fine-tune runs whose training problems are left out of pedagogy and simulation
    exclude_runs: list[str] = field(default_factory=list)
    # the LM judge: None = no judge
    judge: dict[str, Any] | None = None
    # eval's own generation budget (lm.max_new_tokens unless set on the command line)
    max_new_tokens: int = 60
    overwrite: bool = False
    plots: bool = True
    progress: bool | None = None  # None: on when logging is at INFO

    def __post_init__(self) -> None:
        bad = [s for s in self.suites if s not in SUITES]
        if bad:
            raise InputError(
                f"unknown eval suite {bad[0]!r}; use one of {', '.join(SUITES)} or all"
            )
        bad = [s for s in self.systems if s not in ("agent", "raw", "reference")]
        if bad:
            raise InputError(f"unknown tutor system {bad[0]!r}; use agent, raw or reference")
        if self.student not in ("scripted", "lm"):
            raise InputError(f"--student must be scripted or lm, got {self.student!r}")
        for name in (
            "limit",
            "sim_limit",
            "max_turns",
            "grounding_limit",
            "keyfacts_limit",
            "sim_learners",
            "max_new_tokens",
        ):
            if getattr(self, name) < 0:
                raise InputError(
                    f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}"
                )
        if self.max_turns == 0:
            raise InputError("--max-turns must be >= 1")
        if self.support_threshold is not None and not -1.0 <= self.support_threshold <= 1.0:
            raise InputError(
                f"--support-threshold must be a cosine within -1..1, got {self.support_threshold}"
            )

    def hashed(self) -> dict[str, Any]:
        """The options that change an item's result (see module docstring)."""
        return {
            "seed": self.seed,
            "max_turns": self.max_turns,
            "student": self.student,
            "support_threshold": self.support_threshold,
            "judge": self.judge,
            "max_new_tokens": self.max_new_tokens,
            "columns": self.columns,
        }

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["out"] = str(self.out)
        return d


def file_tag(path: str | Path) -> str:
    """``name@sha8`` of a data file: item keys change when the file's content changes."""
    p = Path(path)
    h = hashlib.sha256(p.read_bytes()).hexdigest()[:8] if p.is_file() else "missing"
    return f"{p.name}@{h}"


def seeded_sample(items: Sequence[Any], limit: int, seed: int, salt: str) -> list[Any]:
    """The first ``limit`` items of a permutation seeded by ``(seed, salt)`` (all when limit
    is 0); a larger limit gives a superset, so resumed runs reuse earlier items."""
    order = list(range(len(items)))
    random.Random(f"{seed}:{salt}").shuffle(order)
    if limit:
        order = order[:limit]
    return [items[i] for i in order]


def config_fingerprint(config: Any, options: EvalOptions) -> dict[str, Any]:
    d = config.to_dict()
    lm = {
        k: v
        for k, v in d["lm"].items()
        if k not in ("device", "timeout", "connect_timeout", "api_key")
    }
    kb = {
        k: v for k, v in d["kb"].items() if k not in ("device", "batch_size", "checkpoint_chunks")
    }
    return {"lm": lm, "kb": kb, "tutor": d["tutor"], "eval": options.hashed()}


def config_hash(blob: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RunStore:
    """``results.jsonl`` with resume by key; the config hash guards against mixing runs."""

    def __init__(
        self, out: Path, blob: dict[str, Any], meta: dict[str, Any], *, overwrite: bool = False
    ):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.hash = config_hash(blob)
        self.results_path = self.out / "results.jsonl"
        cfg_path = self.out / "config.json"
        if cfg_path.is_file():
            try:
                old = json.loads(cfg_path.read_text(encoding="utf-8")).get("config_hash")
            except (json.JSONDecodeError, UnicodeDecodeError):
                old = None
            if old != self.hash:
                if not overwrite:
                    raise InputError(
                        f"the run in {self.out} was made with another config (hash {old}, now "
                        f"{self.hash}); pass another --out, or --overwrite to start it afresh"
                    )
                self.results_path.unlink(missing_ok=True)
                for name in ("report.json", "report.md", "report.html"):
                    (self.out / name).unlink(missing_ok=True)
        elif overwrite:
            self.results_path.unlink(missing_ok=True)
        write_atomic(
            cfg_path,
            json.dumps(
                {"config_hash": self.hash, "fingerprint": blob, **meta}, indent=2, default=str
            ),
        )
        self.records: dict[str, dict[str, Any]] = {}
        self.resumed = 0
        self._load()
        self._fh = self.results_path.open("a", encoding="utf-8")

    def _load(self) -> None:
        if not self.results_path.is_file():
            return
        lines = self.results_path.read_text(encoding="utf-8").splitlines()
        good: list[str] = []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                # a line cut by a kill mid-write: drop it (and keep the file clean)
                log.warning("results.jsonl line %d is incomplete; that item will run again", n)
                continue
            self.records[rec["key"]] = rec
            good.append(line)
        if len(good) != sum(1 for ln in lines if ln.strip()):
            write_atomic(self.results_path, "".join(g + "\n" for g in good))
        self.resumed = len(self.records)

    def has(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> dict[str, Any]:
        return self.records[key]

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        assert "key" in record, "every result needs a key"
        self._fh.write(json.dumps(record, default=_json_default, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records[record["key"]] = record
        return record

    def close(self) -> None:
        self._fh.close()


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)  # type: ignore[arg-type]
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


@dataclass
class SuiteResult:
    """What a suite hands the report: summary, flat metrics, tables, item keys and notes."""

    name: str
    summary: dict[str, Any] = field(default_factory=dict)
    # name -> {"value": float, "higher_is_better": bool | None}
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: list[dict[str, Any]] = field(default_factory=list)  # {title, columns, rows, note}
    keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # what did not run, and why
    # input that was read but not used (e.g. human labels in an unknown form): the report
    # is then not complete
    incomplete: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def metric(self, name: str, value: float | None, higher_is_better: bool | None) -> None:
        if value is None:
            return
        self.metrics[f"{self.name}/{name}"] = {
            "value": float(value),
            "higher_is_better": higher_is_better,
        }

    def table(self, title: str, columns: list[str], rows: list[list[Any]], note: str = "") -> None:
        self.tables.append({"title": title, "columns": columns, "rows": rows, "note": note})


class CachingEmbedder:
    """Remembers each text's vector: dense and hybrid retrieval embed a question once, and
    grounding re-embeds the same passages across answers."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode(self, texts: Sequence[str], **kwargs: Any) -> Any:
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vecs = np.asarray(self.inner.encode(missing, **kwargs), dtype=np.float32)
            self._cache.update(zip(missing, vecs, strict=True))
        if not texts:
            return np.zeros((0, int(getattr(self.inner, "dimension", 0) or 0)), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


class EvalRun:
    """Shared state of one run: options, config, results, and the heavy objects, built lazily
    from the config unless handed in (tests pass a fake generator and the hashing embedder)."""

    def __init__(
        self,
        options: EvalOptions,
        config: Any,
        *,
        generator: Generator | None = None,
        embedder: Embedder | None = None,
        judge_generator: Generator | None = None,
    ) -> None:
        self.options = options
        self.config = config
        self._generator = generator
        self._embedder = embedder
        self._judge_generator = judge_generator
        self._kb: Any = None
        self._store: Any = None
        self._judge: Any = None
        self._agents: dict[str, Any] = {}
        self._excluded: set[str] | None = None
        self.rng = random.Random(options.seed)
        blob = config_fingerprint(config, options)
        self.store = RunStore(
            options.out,
            blob,
            {"options": options.to_dict(), "config": config.to_dict(), "argv": sys.argv[1:]},
            overwrite=options.overwrite,
        )
        self.started = time.time()
        self.load_before = load_average()

    # -- data --------------------------------------------------------------------------------
    def usable(self, contexts: Sequence[Any]) -> tuple[list[Any], int]:
        """``contexts`` minus those on a problem a ``--exclude-run`` fine-tune trained on."""
        if self._excluded is None:
            from evals.datasets import training_problems

            self._excluded = set()
            for d in self.options.exclude_runs:
                self._excluded |= training_problems(d, base=REPO_ROOT)
        if not self._excluded:
            return list(contexts), 0
        from evals.datasets import context_key

        kept = [c for c in contexts if context_key(c) not in self._excluded]
        return kept, len(contexts) - len(kept)

    # -- progress ------------------------------------------------------------------------------
    def show_progress(self) -> bool:
        if self.options.progress is not None:
            return self.options.progress
        return logging.getLogger("evals").getEffectiveLevel() <= logging.INFO

    def progress(self, items: Iterable[Any], total: int | None, desc: str) -> Iterator[Any]:
        from tqdm.auto import tqdm

        yield from tqdm(
            items,
            total=total,
            desc=desc,
            disable=not self.show_progress(),
            file=sys.stderr,
            leave=False,
        )

    # -- resources -----------------------------------------------------------------------------
    @property
    def generator(self) -> Any:
        if self._generator is None:
            from tutor.builders import build_generator

            log.info("loading the LM %s", self.config.lm.model)
            self._generator = build_generator(self.config)
        return self._generator

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from tutor.builders import build_embedder

            self._embedder = build_embedder(self.config)
        if not isinstance(self._embedder, CachingEmbedder):
            self._embedder = CachingEmbedder(self._embedder)
        return self._embedder

    @property
    def kb_dir(self) -> Path:
        """The eval knowledge base, shared by runs with the same embedder (a cache in the data
        dir: re-running with another model does not embed the corpora again)."""
        name = str(getattr(self.embedder, "name", "embedder"))
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:80] or "embedder"
        return self.config.paths.home_dir / "eval-kb" / slug

    @property
    def kb(self) -> Any:
        if self._kb is None:
            from knowledge_base import KnowledgeBase

            self._kb = KnowledgeBase.open(
                self.kb_dir,
                self.embedder,
                options=self.config.kb,
                show_progress=self.show_progress(),
            )
        return self._kb

    @property
    def learner_store(self) -> Any:
        if self._store is None:
            from tutor import kt
            from tutor.store import LearnerStore

            self._store = LearnerStore(
                f"sqlite:///{self.options.out / 'learners.sqlite'}",
                bkt_defaults=kt.BKTParams.from_config(self.config.tutor),
            )
        return self._store

    def agent(self, *, with_kb: bool) -> Any:
        """The real agent over a recording wrapper of the LM (one per KB setting)."""
        key = "kb" if with_kb else "nokb"
        if key not in self._agents:
            from evals.tutors import RecordingGenerator
            from tutor.agent import AgentSettings, TutorAgent

            self._agents[key] = TutorAgent(
                RecordingGenerator(self.generator),
                self.learner_store,
                self.kb if with_kb else None,
                AgentSettings.from_config(self.config),
            )
        return self._agents[key]

    @property
    def judge(self) -> Any:
        """The judge (the LM judge, or the move classifier for ``backend: classifier``), or
        None when none was asked for."""
        if self._judge is None and (self.options.judge or self._judge_generator is not None):
            from evals.judge import Judge

            gen = self._judge_generator
            spec = self.options.judge or {}
            if spec.get("backend") == "classifier":
                from evals.move_judge import ClassifierJudge

                self._judge = ClassifierJudge.load(spec.get("weights") or None)
                return self._judge
            if gen is None:
                if spec.get("model") == "self":
                    gen = self.generator
                else:
                    gen = build_judge_generator(self.config, spec)
            name = spec.get("model") or getattr(gen, "name", "judge")
            self._judge = Judge(gen, name=cast(str, name))
        return self._judge

    def close(self) -> None:
        self.store.close()
        if self._store is not None:
            self._store.close()
        if self._kb is not None:
            self._kb.close()


def build_judge_generator(config: Any, spec: dict[str, Any]) -> Any:
    """The judge's LM: the config's ``[lm]`` with the judge's model, backend and base URL on
    top (a base URL alone means the ``openai`` backend), greedy, no adapter."""
    from tutor.builders import build_generator
    from tutor.config import LMConfig

    lm = dict(config.to_dict()["lm"])
    lm.update({"model": spec.get("model") or lm["model"], "adapter": "", "temperature": 0.0})
    if spec.get("base_url"):
        lm["base_url"] = spec["base_url"]
        lm["backend"] = "openai"
    if spec.get("backend"):
        lm["backend"] = spec["backend"]
    if lm["backend"] == "openai" and spec.get("model"):
        lm["api_model"] = spec["model"]
    return build_generator(dataclasses.replace(config, lm=LMConfig(**lm)))
