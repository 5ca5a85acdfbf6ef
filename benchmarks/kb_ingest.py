"""Ingest throughput: ``tutor kb add`` vs the embedder's raw ``encode`` on the same chunks.

The baseline is ``SentenceTransformer.encode`` (batch 64, normalized) over exactly the texts the
knowledge base embeds for the same files, with the model already loaded. The ingest side is
``KnowledgeBase.add`` on a fresh store (read, sniff, parse, chunk with the model's tokenizer,
embed, write FAISS + SQLite atomically) with the same warm model; the two alternate for
``--repeats`` rounds and medians are reported, since this machine's 2 cores are shared. The
``tutor kb add`` command line end to end (a new process: imports, model load) is timed once.

    python benchmarks/kb_ingest.py                  # the OpenStax chapters in ../shared/data
    python benchmarks/kb_ingest.py --data data/curriculum
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from results import Recorder  # noqa: E402

from knowledge_base import KnowledgeBase, SentenceTransformerEmbedder  # noqa: E402
from knowledge_base.chunk import chunk_document  # noqa: E402
from knowledge_base.load import iter_files, load_document  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "curriculum"


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA if DEFAULT_DATA.is_dir() else REPO / "data" / "curriculum",
    )
    ap.add_argument("--limit", type=int, default=0, help="use only the first N files")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI run")
    return ap.parse_args()


def _chunk_texts(files: list[Path], emb: Any, tmp: Path, batch_size: int) -> list[str]:
    """The texts the knowledge base embeds for ``files``, chunked as a fresh store would."""
    probe = KnowledgeBase.open(tmp / "probe", emb, show_progress=False, batch_size=batch_size)
    texts: list[str] = []
    for f in files:
        doc = load_document(f)
        chunks = chunk_document(
            doc,
            max_tokens=probe.max_chunk_tokens(),
            overlap=probe.options.chunk_overlap,
            count_tokens=emb.count_tokens,
        )
        texts += [c.embedding_text() for c in chunks]
    probe.close()
    return texts


def _alternate(
    files: list[Path], texts: list[str], emb: Any, tmp: Path, args: argparse.Namespace
) -> tuple[list[float], list[float], list[float]]:
    """Raw encode and ``KnowledgeBase.add``, alternating: chunks/s of each, add's embed share."""
    raw, kb_rates, embed_share = [], [], []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        emb.model.encode(
            texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        raw.append(len(texts) / (time.perf_counter() - t0))

        kb = KnowledgeBase.open(
            tmp / f"kb{r}", emb, show_progress=False, batch_size=args.batch_size
        )
        report = kb.add(files)
        kb.close()
        assert report.ok and report.chunks == len(texts), (report.summary(), len(texts))
        kb_rates.append(report.chunks / report.seconds)
        embed_share.append(report.embed_seconds / report.seconds)
    return raw, kb_rates, embed_share


def _cli_rate(files: list[Path], n_texts: int, tmp: Path) -> float:
    """Chunks/s of the ``tutor kb add`` command end to end, in a new process."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tutor",
            "--home",
            str(tmp / "cli"),
            "-q",
            "kb",
            "add",
            *map(str, files),
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return n_texts / (time.perf_counter() - t0)


def _rows(
    args: argparse.Namespace,
    raw: list[float],
    kb_rates: list[float],
    embed_share: list[float],
    cli: float | None,
) -> list[list[str]]:
    raw_m, kb_m = statistics.median(raw), statistics.median(kb_rates)
    rows = [
        [f"raw `SentenceTransformer.encode` (median of {args.repeats})", f"{raw_m:.1f}", "1.00x"]
    ]
    rows.append(
        [
            f"`KnowledgeBase.add` = `tutor kb add` in-process, warm model (median of {args.repeats}; "
            f"embedding = {100 * statistics.median(embed_share):.0f}% of its time)",
            f"{kb_m:.1f}",
            f"{kb_m / raw_m:.2f}x",
        ]
    )
    if cli is not None:
        rows.append(
            [
                "`tutor kb add` command end to end (new process: imports + model load), one run",
                f"{cli:.1f}",
                f"{cli / raw_m:.2f}x",
            ]
        )
    return rows


def main() -> None:
    args = _parse_args()
    rec = Recorder("kb_ingest", args)

    import torch

    files = list(iter_files(args.data))
    if args.limit:
        files = files[: args.limit]
    emb = SentenceTransformerEmbedder("all-minilm-l6-v2", batch_size=args.batch_size)
    t0 = time.perf_counter()
    emb.encode(["warm up"])
    load_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        texts = _chunk_texts(files, emb, Path(tmp), args.batch_size)
        raw, kb_rates, embed_share = _alternate(files, texts, emb, Path(tmp), args)
        cli = None if args.no_cli else _cli_rate(files, len(texts), Path(tmp))

    print(
        f"# {len(files)} files from {args.data}, {len(texts)} chunks; batch {args.batch_size}; "
        f"torch threads {torch.get_num_threads()}; model load {load_s:.1f}s (not counted)"
    )
    rec.meta(files=len(files), chunks=len(texts), model_load_s=load_s, dtype="float32")
    rec.samples("raw_chunks_per_s", raw)
    rec.samples("add_chunks_per_s", kb_rates)
    rec.samples("add_embed_share", embed_share)
    rec.samples("cli_chunks_per_s", [] if cli is None else [cli])
    rows = _rows(args, raw, kb_rates, embed_share, cli)
    print()
    print(rec.table("ingest", ["measurement", "chunks/s", "vs raw encode"], rows, align="lrr"))
    print()
    print(
        "raw runs:",
        ", ".join(f"{x:.1f}" for x in raw),
        "| add runs:",
        ", ".join(f"{x:.1f}" for x in kb_rates),
    )
    rec.write()


if __name__ == "__main__":
    main()
