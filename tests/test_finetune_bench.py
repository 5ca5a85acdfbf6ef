"""benchmarks/qlora_gpu.py: without CUDA it stops with a clear message; ``--cpu-smoke`` runs
both variants (bf16 LoRA, NF4 QLoRA through bitsandbytes on CPU) end to end on a tiny shape."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "qlora_gpu.py"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}


def test_qlora_gpu_benchmark_without_cuda_says_so() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT)], env=ENV, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "needs a CUDA GPU" in proc.stderr and "--cpu-smoke" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_qlora_gpu_benchmark_cpu_smoke_runs_both_variants() -> None:
    pytest.importorskip("bitsandbytes")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-smoke"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=280,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = re.findall(r"^\| (lora-bf16|qlora-nf4) \| (\d+) \| ([\d.]+)x \|", proc.stdout, re.M)
    assert [r[0] for r in rows] == ["lora-bf16", "qlora-nf4"]
    assert all(int(r[1]) > 0 for r in rows) and rows[0][2] == "1.00"
    assert "peak RSS GiB" in proc.stdout
