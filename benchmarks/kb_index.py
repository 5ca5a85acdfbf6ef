"""Vector index benchmark: flat vs IVF vs HNSW query latency and recall@10 vs exact search.

Synthetic data shaped like sentence embeddings: unit vectors in 384 dimensions drawn around
topic centres (cosine ~0.6 to their centre), queries drawn the same way (not copies of stored
vectors). The indexes are built with ``knowledge_base.index`` exactly as the store builds them.

    python benchmarks/kb_index.py                       # 10k, 100k, 1M
    python benchmarks/kb_index.py --sizes 10000,100000 --nprobe 8,16,32,64

Latency is per single query (what the tutor does), p50/p95 over the query set, on the
threads FAISS is given (``--threads``). Peak memory at 1M is about 5 GB (the data, the flat
index and one approximate index at a time).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import Recorder  # noqa: E402

from knowledge_base import index as ix  # noqa: E402

COLUMNS = ["vectors", "index", "build s", "p50 ms", "p95 ms", "recall@10", "speed-up vs flat (p50)"]


def synthetic(n: int, rotation: np.ndarray, seed: int, alpha: float = 1.0) -> np.ndarray:
    """Unit vectors from an anisotropic Gaussian (eigenvalues ~ i^-alpha, randomly rotated)
    plus a shared mean direction: nearest neighbours at cosine ~0.55, random pairs ~0.08,
    which is how sentence embeddings behave (not well-separated clusters, which would make
    IVF look perfect)."""
    dim = rotation.shape[0]
    rng = np.random.default_rng(seed)
    scale = np.sqrt(np.arange(1, dim + 1, dtype=np.float32) ** -alpha)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x = (rng.standard_normal((m, dim), dtype=np.float32) * scale) @ rotation.T
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        x += 0.3 * rotation[:, -1]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start : start + m] = x
    return out


QUERY_THREADS = 1
BUILD_THREADS = 0


def latencies(
    index, queries: np.ndarray, k: int, opts: ix.IndexOptions
) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Single-query latencies (ms) and results, with ``QUERY_THREADS`` FAISS threads."""
    import faiss

    if QUERY_THREADS:
        faiss.omp_set_num_threads(QUERY_THREADS)
    times = np.empty(len(queries))
    ids = np.empty((len(queries), k), dtype=np.int64)
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        _, found = ix.search(index, q[None, :], k, opts)
        times[i] = time.perf_counter() - t0
        ids[i] = found[0]
    faiss.omp_set_num_threads(BUILD_THREADS)
    return times * 1000, ids


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nprobe", default="32,64,128,256", help="IVF nprobe values to sweep")
    ap.add_argument("--ef", default="64,128,256", help="HNSW efSearch values to sweep")
    ap.add_argument(
        "--hnsw-max",
        type=int,
        default=100_000,
        help="skip HNSW above this size (its build takes >10 min at 1M on 2 cores)",
    )
    ap.add_argument("--threads", type=int, default=1, help="FAISS threads for queries (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="", help="result file suffix (results/kb_index-TAG.json)")
    return ap.parse_args()


class Table:
    """The indexes table: each row recorded, kept and printed as it is measured."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.rows: list[list[str]] = []

    def emit(
        self, n: int, name: str, build: float, lat: np.ndarray, rcl: float, flat50: float
    ) -> float:
        p50 = float(np.percentile(lat, 50))
        self.rec.latency(f"{n}.{name}", list(lat))
        row = [f"{n:,}", name, f"{build:.1f}", f"{p50:.2f}", f"{np.percentile(lat, 95):.2f}"]
        row += [f"{rcl:.3f}", f"{(flat50 or p50) / p50:.1f}x"]
        self.rows.append(row)
        print("| " + " | ".join(row) + " |", flush=True)
        return p50


def _sweep(
    kind: str,
    settings: list[tuple[str, ix.IndexOptions]],
    n: int,
    args: argparse.Namespace,
    ids: np.ndarray,
    data: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    flat_p50: float,
    table: Table,
) -> None:
    """Build one approximate index and time it under each (row name, query options)."""
    t0 = time.perf_counter()
    index = ix.build(kind, args.dim, ids, data, ix.IndexOptions())
    build = time.perf_counter() - t0
    for name, o in settings:
        lat, found = latencies(index, queries, args.k, o)
        table.emit(n, name, build, lat, recall(found, truth), flat_p50)
    del index
    gc.collect()


def _bench_size(n: int, args: argparse.Namespace, rng: np.random.Generator, table: Table) -> None:
    """Flat (the exact truth), IVF over the nprobe sweep, HNSW over the efSearch sweep."""
    rotation, _ = np.linalg.qr(rng.standard_normal((args.dim, args.dim)))
    rotation = rotation.astype(np.float32)
    data = synthetic(n, rotation, args.seed + 1)
    queries = synthetic(args.queries, rotation, args.seed + 2)
    ids = np.arange(n, dtype=np.int64)
    opts = ix.IndexOptions()

    t0 = time.perf_counter()
    flat = ix.build("flat", args.dim, ids, data, opts)
    build = time.perf_counter() - t0
    _, truth = flat.search(queries, args.k)  # exact, batched
    lat, found = latencies(flat, queries, args.k, opts)
    flat_p50 = table.emit(n, "flat", build, lat, recall(found, truth), 0.0)
    del flat
    gc.collect()

    nlist = ix.IndexOptions().nlist_for(n)
    ivf = [
        (f"ivf nlist={nlist} nprobe={p}", ix.IndexOptions(ivf_nprobe=p))
        for p in (int(s) for s in args.nprobe.split(","))
    ]
    _sweep("ivf", ivf, n, args, ids, data, queries, truth, flat_p50, table)
    if n <= args.hnsw_max:
        hnsw = [
            (f"hnsw M={opts.hnsw_m} ef={ef}", ix.IndexOptions(hnsw_ef_search=ef))
            for ef in (int(s) for s in args.ef.split(","))
        ]
        _sweep("hnsw", hnsw, n, args, ids, data, queries, truth, flat_p50, table)
    del data
    gc.collect()


def main() -> None:
    args = _parse_args()
    rec = Recorder("kb_index", args, tag=args.tag)

    import faiss

    global QUERY_THREADS, BUILD_THREADS
    QUERY_THREADS = args.threads
    BUILD_THREADS = faiss.omp_get_max_threads()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(args.seed)
    print(
        f"# dim={args.dim} k={args.k} queries={args.queries}; FAISS threads: "
        f"{BUILD_THREADS} to build, {QUERY_THREADS or BUILD_THREADS} per query"
    )
    print()
    print("| " + " | ".join(COLUMNS) + " |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    table = Table(rec)
    for n in sizes:
        _bench_size(n, args, rng, table)
    rec.table("indexes", COLUMNS, table.rows, align="rlrrrrr")
    rec.write()


if __name__ == "__main__":
    main()
