"""Many students at once: simulated students chat through ``gradio_client`` with the web app,
which talks to an OpenAI-compatible fake backend on loopback with fixed token timing.

The students run in a separate process (as they would on other machines), one thread each;
each signs in (real scrypt), loads the page, then asks ``--turns`` questions one after the other; the time to first token is taken on the client, from submitting a question to the
first output that holds answer text. A single student alone, measured in the same run, is the
baseline. Errors: any exception, or a turn without a stored reply.

    python benchmarks/ui_load.py --students 20 --turns 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import Recorder  # noqa: E402
from ui_common import (  # noqa: E402
    REPLY,
    TimedGenerator,
    build,
    median,
    ms,
    pct,
    questions,
)


def student(
    url: str,
    name: str,
    turns: int,
    out: dict[str, Any],
    start: threading.Event,
    ready: threading.Semaphore,
) -> None:
    from gradio_client import Client

    from ui.testing import PASSWORD

    ttft, total, errors = [], [], []
    try:
        # a browser waits for the sign-in page as long as it takes; gradio_client's default
        # 5 s would fail a class signing in at once on a small machine (scrypt is slow)
        c = Client(
            url,
            auth=(name, PASSWORD),
            verbose=False,
            analytics_enabled=False,
            httpx_kwargs={"timeout": 60},
        )
        sid = c.predict(api_name="/page_load")[2]
        ready.release()
        start.wait()
        for q in questions(turns):
            t0 = time.perf_counter()
            first = None
            job = c.submit(q, "auto", sid, api_name="/send")
            for o in job:
                chat = o[0]
                if first is None and len(chat) >= 2 and chat[-1]["role"] == "assistant":
                    first = time.perf_counter() - t0
            job.result()
            total.append(time.perf_counter() - t0)
            if first is None:
                errors.append(f"{name}: no answer text for {q!r}")
            else:
                ttft.append(first)
    except Exception as e:  # noqa: BLE001 - counted and reported
        import traceback

        where = traceback.extract_tb(e.__traceback__)[:7]
        errors.append(
            f"{name}: {type(e).__name__}: {e} at "
            + " < ".join(f"{f.name}:{f.lineno}" for f in where)
        )
        ready.release()
    out[name] = {"ttft": ttft, "total": total, "errors": errors}


def clients(url: str, names: list[str], turns: int, conn: Any) -> None:
    """In its own process (students are other machines): run the students, send back results."""
    out: dict[str, Any] = {}
    start = threading.Event()
    ready = threading.Semaphore(0)
    threads = [
        threading.Thread(target=student, args=(url, n, turns, out, start, ready)) for n in names
    ]
    for t in threads:
        t.start()
    for _ in names:  # everyone signed in (scrypt) and on the page before the clock starts
        ready.acquire(timeout=300)
    time.sleep(0.5)
    t0 = time.perf_counter()
    start.set()
    for t in threads:
        t.join(timeout=600)
    conn.send((out, time.perf_counter() - t0))
    conn.close()


def run(
    url: str, names: list[str], turns: int
) -> tuple[list[float], list[float], list[str], float]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=clients, args=(url, names, turns, child))
    proc.start()
    out, wall = parent.recv()
    proc.join()
    ttft = [x for r in out.values() for x in r["ttft"]]
    total = [x for r in out.values() for x in r["total"]]
    errors = [e for r in out.values() for e in r["errors"]]
    errors += [f"{n}: did not finish" for n in names if n not in out]
    return ttft, total, errors, wall


def fake_backend(port: int, first: float, per_token: float, ready: Any) -> None:
    """The LM server, in its own process like a real one (vLLM, llama.cpp) would be."""
    from tutor.testing.openai_server import Script, ScriptedServer

    script = Script(reply=lambda m: REPLY, first_token_delay=first, token_delay=per_token)
    srv = ScriptedServer(script, port=port)
    ready.set()
    srv.httpd.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=20)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--first-token-delay", type=float, default=0.25)
    ap.add_argument("--token-delay", type=float, default=0.02)
    ap.add_argument("--limits", default="0,1", help="ui.concurrency_limit values (0 = automatic)")
    ap.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    args = ap.parse_args()
    rec = Recorder("ui_load", args, tag="" if args.embedder == "minilm" else args.embedder)

    import multiprocessing as mp

    from tutor.lm.openai import OpenAIGenerator
    from ui.app import create_app, lm_concurrency
    from ui.testing import ServerThread, free_port

    n_tokens = len(REPLY.split())
    rows = []
    port = free_port()
    spawn = mp.get_context("spawn")
    up = spawn.Event()
    lm = spawn.Process(
        target=fake_backend,
        args=(port, args.first_token_delay, args.token_delay, up),
        daemon=True,
    )
    lm.start()
    up.wait(60)
    with tempfile.TemporaryDirectory() as tmp:
        gen = TimedGenerator(OpenAIGenerator(f"http://127.0.0.1:{port}/v1", "scripted"))
        ctx = build(Path(tmp), gen, students=args.students, embedder=args.embedder)
        ctx.config.lm.backend = "openai"
        names = [f"s{i:02d}" for i in range(args.students)]
        for limit in [int(x) for x in args.limits.split(",")]:
            ctx.config.ui.concurrency_limit = limit
            effective = lm_concurrency(ctx.config)
            with ServerThread(create_app(ctx)) as srv:
                run(srv.url, names[:1], 1)  # warm-up: loads the embedder
                for who in (names[:1], names):
                    ttft, total, errors, wall = run(srv.url, who, args.turns)
                    rows.append((effective, len(who), ttft, total, errors, wall))
                    for e in errors[:5]:
                        print("#", e, file=sys.stderr)
    lm.terminate()
    lm.join()
    print(
        f"\nFake backend: first token {args.first_token_delay * 1000:.0f} ms, then "
        f"{args.token_delay * 1000:.0f} ms/token, {n_tokens} tokens; {args.turns} questions per "
        f"student; embedder {args.embedder}.\n"
    )
    columns = ["turns at once (ui.concurrency_limit)", "students", "turns", "TTFT p50 (ms)"]
    columns += ["TTFT p95 (ms)", "p50 vs alone", "turn p50 (s)", "errors", "turns/s"]
    table = []
    alone: list[float] = []
    for limit, n, ttft, total, errors, wall in rows:
        if n == 1:
            alone = ttft
        ratio = median(ttft) / median(alone) if ttft and alone else float("nan")
        rec.latency(f"limit{limit}.students{n}.ttft", ttft, scale=1000)
        rec.latency(f"limit{limit}.students{n}.turn", total, unit="s")
        rec.samples(f"limit{limit}.students{n}.errors", [str(e) for e in errors])
        table.append(
            [
                limit,
                n,
                len(ttft),
                ms(median(ttft)),
                ms(pct(ttft, 0.95)),
                f"{ratio:.2f}x",
                f"{median(total):.2f}",
                len(errors),
                f"{len(total) / wall:.1f}",
            ]
        )
    rec.meta(reply_tokens=n_tokens, backend="ScriptedServer (OpenAI-compatible fake)")
    print(rec.table("load", columns, table, align="rrrrrrrrr"))
    rec.write()


if __name__ == "__main__":
    main()
