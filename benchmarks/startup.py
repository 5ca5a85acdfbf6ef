"""Cached start of the tutor: seconds until the first question can be answered at full speed.

Each sample is a fresh Python process (imports, model and embedder from a warm disk cache),
interleaved over rounds:

- ``one after the other`` (before issue 16): the model loads, then the knowledge base, and the
  embedder loads at the first search, as the first student's question used to pay it;
- ``load_models``: ``tutor.startup.load_models`` (two threads on more than 2 cores, else one), then the same search;
- ``tutor serve, first page``: ``tutor serve`` from its start until ``/login`` answers 200 (the
  app listens once both are loaded), and the ``ready in N s`` it prints.

The data dir is a temporary one: the sample course (``data/curriculum``) added with the bundled
embedder, the models linked from ``--models`` (default ``.tutor/models``).

    python benchmarks/startup.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from results import ROOT, Recorder, summary  # noqa: E402

QUESTION = "How do I add fractions with different denominators?"
SEQUENTIAL = f"""
from tutor.builders import build_generator, build_knowledge_base
from tutor.config import load_config
import os
config = load_config(env=os.environ)
build_generator(config)
build_knowledge_base(config).search({QUESTION!r}, k=4)
print("READY", flush=True)
"""
PARALLEL = f"""
import io
from tutor.config import load_config
from tutor.startup import load_models
import os
config = load_config(env=os.environ)
_, kb = load_models(config, out=io.StringIO())
kb.search({QUESTION!r}, k=4)
print("READY", flush=True)
"""


MEMORY_STEPS = """
import io, json, os, re
def rss():
    text = open("/proc/self/status").read()
    return int(re.search(r"^VmRSS:\\s+(\\d+) kB", text, re.M).group(1)) / 1024
steps = [("Python", rss())]
from tutor.config import load_config
import torch
steps.append(("+ import torch", rss()))
import gradio
steps.append(("+ import gradio", rss()))
from tutor.startup import load_models
load_models(load_config(env=os.environ), out=io.StringIO())
import sys
modelling = "transformers.modeling_utils" in sys.modules
steps.append((f"+ the model and the embedder loaded (transformers' modelling code imported: "
              f"{'yes' if modelling else 'no'})", rss()))
print("STEPS", json.dumps(steps), flush=True)
"""


def memory_steps(env: dict[str, str]) -> list[tuple[str, float]]:
    """RSS of a fresh process after each step of a start, in MB."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_STEPS], env=env, capture_output=True, text=True, check=True
    )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("STEPS "))
    return [(str(n), float(v)) for n, v in json.loads(line.removeprefix("STEPS "))]


def timed_script(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "READY" in out.stdout, out.stderr[-2000:]
    return time.perf_counter() - t0


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB (Linux; NaN elsewhere)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(m.group(1)) / 1024 if m else float("nan")


def timed_ask(env: dict[str, str]) -> float:
    """Seconds for a whole ``tutor ask`` (start, load, a 32-token answer, exit)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "tutor", "ask", "--max-new-tokens", "32", QUESTION]
    subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0


def timed_serve(env: dict[str, str], port: int) -> tuple[float, float, float]:
    """(seconds until /login answers 200, the 'ready in N s' the server printed, and the
    server's peak RSS in MB at that point)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "tutor", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"tutor serve exited: {proc.stderr.read() if proc.stderr else ''}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        first_page = time.perf_counter() - t0
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    m = re.search(r"^ready in ([\d.]+) s", err or "", re.M)
    return first_page, float(m.group(1)) if m else float("nan"), rss


def make_home(models: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="tutor-startup-"))
    (home / "models").symlink_to(models.resolve())
    env = {**os.environ, "TUTOR_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "tutor", "kb", "add", str(ROOT / "data" / "curriculum")],
        env=env,
        check=True,
        capture_output=True,
    )
    return home


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", type=Path, default=ROOT / ".tutor" / "models")
    ap.add_argument("--port", type=int, default=7911)
    ap.add_argument("--tag", default="", help="result file suffix (results/startup-TAG.json)")
    args = ap.parse_args()
    rec = Recorder("startup", args, tag=args.tag)
    home = make_home(args.models)
    env = {**os.environ, "TUTOR_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    timed_script(PARALLEL, env)  # warm the disk cache; not counted
    seq: list[float] = []
    par: list[float] = []
    page: list[float] = []
    ready: list[float] = []
    rss: list[float] = []
    ask: list[float] = []
    for _ in range(args.rounds):
        ask.append(timed_ask(env))
        seq.append(timed_script(SEQUENTIAL, env))
        par.append(timed_script(PARALLEL, env))
        p, r, m = timed_serve(env, args.port)
        page.append(p)
        ready.append(r)
        rss.append(m)
    rows = []
    for name, xs in (
        ("one after the other (before): model, then embedder at the first question", seq),
        ("load_models (now; two threads on more than 2 cores), then the first question", par),
        ("`tutor serve` (now): start to the sign-in page", page),
        ("`tutor serve` (now): its own 'ready in N s' (model and embedder)", ready),
        ("`tutor ask` with a 32-token answer, start to exit", ask),
    ):
        rec.latency(name, xs, unit="s")
        s = summary(xs)
        rows.append([name, f"{s['p50']:.1f}", f"{s['min']:.1f}", f"{s['max']:.1f}", s["n"]])
    rec.latency("tutor serve peak RSS at the sign-in page", rss, unit="MB")
    s = summary(rss)
    memory = [
        [
            "`tutor serve`, peak RSS (VmHWM) when the sign-in page answers",
            f"{s['p50']:.0f}",
            f"{s['min']:.0f}",
            f"{s['max']:.0f}",
            s["n"],
        ]
    ]
    steps = memory_steps(env)
    rec.samples("rss after each start step (MB)", steps)
    memory += [[f"one process: {name}", f"{mb:.0f}", "", "", 1] for name, mb in steps]
    rec.meta(model_dir=str(args.models), home=str(home), question=QUESTION)
    print(
        rec.table("start", ["cached start", "median s", "min s", "max s", "n"], rows, align="lrrrr")
    )
    print(
        rec.table(
            "memory", ["process", "median MB", "min MB", "max MB", "n"], memory, align="lrrrr"
        )
    )
    rec.write()


if __name__ == "__main__":
    main()
