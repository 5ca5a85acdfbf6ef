"""Test fixtures: no network (loopback allowed), offline Hugging Face, tiny models, temp data dir."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
    from tests.tiny import save_tiny_llama

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
        pytest.skip(f"shared data not found at {SHARED_DATA}")
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
