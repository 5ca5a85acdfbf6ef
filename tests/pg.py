"""A throwaway PostgreSQL server on loopback for the tests (Debian's postgresql package).

``start_postgres(base)`` runs initdb into a fresh directory, starts the server on a free port
listening on 127.0.0.1 only, and returns its SQLAlchemy URL and a stop function. As root (CI
containers) the server runs as the ``postgres`` system user, since PostgreSQL refuses root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_postgres(base: Path) -> tuple[str, Callable[[], None]]:
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError(
            "PostgreSQL server binaries not found (install Debian's postgresql: make postgres-deps)"
        )
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        runuser = shutil.which("runuser")
        if not runuser:
            raise RuntimeError(
                "running as root without runuser: cannot start PostgreSQL as another user"
            )
        prefix = [runuser, "-u", "postgres", "--"]
    base.mkdir(parents=True, exist_ok=True)
    data, sock = base / "data", base / "sock"
    sock.mkdir(exist_ok=True)
    if as_root:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        os.chmod(base, 0o700)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(
        [
            *prefix,
            initdb,
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    log = base / "server.log"
    opts = f"-p {port} -c listen_addresses=127.0.0.1 -k {sock} -c fsync=off -c max_connections=200"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", opts, "-l", str(log), "-w", "-t", "60", "start"],
        check=True,
        capture_output=True,
        env=env,
        timeout=90,
    )

    def stop() -> None:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)

    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", stop
