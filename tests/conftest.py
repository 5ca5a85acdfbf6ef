"""Test fixtures: no network (loopback allowed), offline Hugging Face, tiny models, temp data dir.

Two switches, both read from the environment:

- ``TUTOR_TEST_STRICT=1`` (set by ``.ci/run``): a test that would be skipped fails instead, with
  the reason (a missing browser, PostgreSQL, nginx, tmpfs mount or ``../shared/data``), so a CI run
  cannot turn green by skipping. Only tests marked ``gpu`` or ``llamacpp`` may still skip.
- ``TUTOR_TEST_CPU_BF16=1`` / ``=0``: in-process code sees a CPU with / without native bf16, so
  ``dtype="auto"`` resolves as it would on the other kind of CPU. With ``TUTOR_LM__DTYPE`` set to
  ``bfloat16`` / ``float32`` as well (subprocesses read the config), one machine runs the suite as
  either kind of CPU would.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# the native decode step (tutor.lm.native) is compiled once per machine for every test's data dir
os.environ.setdefault(
    "TUTOR_NATIVE_DIR", str(Path(tempfile.gettempdir()) / f"tutor-native-tests-{os.getuid()}")
)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# the openly licensed data next to the checkout (../shared/data), or TUTOR_SHARED_DATA for a
# checkout elsewhere (as evals.run reads it too)
SHARED_DATA = Path(
    os.environ.get("TUTOR_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)


def _is_loopback(host: object) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return str(host).endswith(".localhost")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Block every connection and name lookup that is not loopback."""
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(host):
            raise OSError(f"network access blocked in tests: {address!r}")
        return real_connect(self, address)

    def guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if not _is_loopback(host):
            raise socket.gaierror(f"network access blocked in tests: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


STRICT = os.environ.get("TUTOR_TEST_STRICT", "") not in ("", "0")
FORCE_CPU_BF16 = os.environ.get("TUTOR_TEST_CPU_BF16", "")


@pytest.fixture(autouse=True)
def forced_cpu_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """TUTOR_TEST_CPU_BF16=1/0: pretend the CPU has (or lacks) native bf16 for dtype="auto"."""
    if FORCE_CPU_BF16 in ("0", "1"):
        from tutor.lm import resolve

        monkeypatch.setattr(resolve, "cpu_supports_bf16", lambda: FORCE_CPU_BF16 == "1")


@pytest.fixture(autouse=True)
def fixed_decode_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """``dtype="auto"`` on CPU picks float32, bf16 or int4 by timing them (tutor.lm.speed), so
    in-process tests would depend on the machine's load. Here the timer is a fixed ranking
    instead: int4 with the native decode step where it builds (as by default on every CPU
    measured so far), int4, then bf16 on a CPU with native bf16 (as ``TUTOR_TEST_CPU_BF16``
    says), then float32, at torch's thread count; nothing is cached. Tests marked
    ``real_decode_timer`` time for real."""
    if request.node.get_closest_marker("real_decode_timer"):
        return
    from tutor.lm import resolve, speed

    def ranked(model: object, *, threads: int = 0) -> object:
        import torch

        from tutor.lm.quant import Int4Linear

        if any(isinstance(m, Int4Linear) for m in model.modules()):  # type: ignore[attr-defined]
            rate = 3.5 if getattr(model, "tutor_native_dir", None) is not None else 3.0
        elif model.dtype == torch.bfloat16:  # type: ignore[attr-defined]
            rate = 2.0 if resolve.cpu_supports_bf16() else 0.5
        else:
            rate = 1.0
        return lambda: rate

    monkeypatch.setattr(speed, "decode_timer", ranked)
    monkeypatch.setattr(speed, "thread_options", lambda available: [available])  # untimed
    monkeypatch.setattr(speed, "cached_choice", lambda models_dir, key: None)
    monkeypatch.setattr(speed, "save_choice", lambda models_dir, choice: None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """Under TUTOR_TEST_STRICT=1 a skip is a failure, except for GPU and llama.cpp tests (the
    llamacpp extra compiles for 20-45 min, so CI does not install it)."""
    outcome = yield
    report = outcome.get_result()
    if not (STRICT and report.skipped) or "gpu" in item.keywords or "llamacpp" in item.keywords:
        return
    if hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"TUTOR_TEST_STRICT=1: {item.nodeid} would have been skipped: {reason}\n"
        "Install what it needs (make test installs it on Debian as root) or unset TUTOR_TEST_STRICT."
    )


@pytest.fixture
def tutor_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data dir, exported as TUTOR_HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("TUTOR_HOME", str(home))
    return home


@pytest.fixture
def tiny_llama_dir(tmp_path: Path) -> Path:
    """A freshly written tiny random Llama model directory (with ChatML template)."""
    from tutor.testing.tiny_llama import save_tiny_llama

    return save_tiny_llama(tmp_path / "tiny-llama")


@pytest.fixture(scope="session")
def bundled_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real bundled SmolLM2, cached once per test session (for tests marked slow)."""
    from tutor.lm.resolve import ensure_bundled_cache

    cache = Path(os.environ.get("TUTOR_TEST_MODEL_CACHE", tmp_path_factory.mktemp("models")))
    return ensure_bundled_cache("smollm2-135m-instruct", cache)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory):
    """An admin URL of a PostgreSQL server: TUTOR_TEST_POSTGRES_URL when set, else a throwaway
    server started on loopback for this test session (skipped, with the reason, only when the
    server truly cannot start here)."""
    url = os.environ.get("TUTOR_TEST_POSTGRES_URL", "")
    if url:
        yield url
        return
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed (pip install '.[postgres]')")
    from tests.pg import start_postgres

    base = Path(tempfile.mkdtemp(prefix="tutor-pg-"))
    try:
        url, stop = start_postgres(base)
    except Exception as e:  # binaries missing, no runuser, initdb failure
        pytest.skip(f"PostgreSQL could not start here: {e}")
    try:
        yield url
    finally:
        stop()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set TUTOR_SHARED_DATA=DIR)")
    return SHARED_DATA


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
