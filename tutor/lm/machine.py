"""The CPU's identity (model name and a hash of its flags): what a measured decode path and a
compiled native decode step are valid for. No torch import (``tutor config show`` uses it)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def cpu_key() -> dict[str, str]:
    """The CPU's model name and a hash of its flags (no torch import: ``config show`` uses it)."""
    cpu, flags = "unknown", ""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        info = ""
    for line in info.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name" and cpu == "unknown":
            cpu = value.strip()
        elif name.strip() == "flags" and not flags:
            flags = " ".join(sorted(value.split()))
    if cpu == "unknown":
        import platform

        cpu = platform.processor() or platform.machine() or "unknown"
    return {"cpu": cpu, "flags_sha": hashlib.sha256(flags.encode()).hexdigest()[:16]}
