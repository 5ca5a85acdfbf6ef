"""TUTOR_TEST_STRICT=1 (set by .ci/run) turns every skip except a GPU test's into a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SAMPLE = """
import pytest

def test_needs_a_browser():
    pytest.skip("no Chromium here")

@pytest.mark.skipif(True, reason="nginx missing")
def test_needs_nginx():
    pass

@pytest.mark.gpu
def test_needs_cuda():
    pass

def test_plain():
    pass
"""


def _run(tmp_path: Path, strict: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    gpu: needs CUDA\n")
    env = {**os.environ, "TUTOR_TEST_STRICT": strict, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_strict_turns_skips_into_failures_with_the_reason(tmp_path: Path) -> None:
    r = _run(tmp_path, "1")
    assert r.returncode == 1, r.stdout
    assert "would have been skipped: Skipped: no Chromium here" in r.stdout
    assert "nginx missing" in r.stdout
    assert "1 failed, 1 passed, 1 skipped, 1 error" in r.stdout  # the GPU test alone skips


def test_without_strict_skips_stay_skips(tmp_path: Path) -> None:
    r = _run(tmp_path, "0")
    assert r.returncode == 0, r.stdout
    assert "1 passed, 3 skipped" in r.stdout
