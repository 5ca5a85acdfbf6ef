"""knowledge_base.atomic: the project's one atomic-write helper (file and directory)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from knowledge_base.atomic import atomic_dir, atomic_path, write_atomic


def _temps(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp"))


def test_write_atomic_text_bytes_and_mode(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "a.json"
    write_atomic(p, "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    write_atomic(p, b"\x00\x01", mode=0o600)
    assert p.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert _temps(p.parent) == []


def test_atomic_path_failure_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    p = tmp_path / "index.faiss"
    p.write_text("old")
    with pytest.raises(OSError, match="disk full"):
        with atomic_path(p) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".index.faiss.")
            tmp.write_text("partial")
            raise OSError("disk full")
    assert p.read_text() == "old"
    assert _temps(tmp_path) == []
    with atomic_path(p) as tmp:
        tmp.write_text("new")
    assert p.read_text() == "new" and _temps(tmp_path) == []


def test_atomic_dir_replaces_a_directory_whole(tmp_path: Path) -> None:
    out = tmp_path / "adapter"
    out.mkdir()
    (out / "old.bin").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "new.bin").write_text("half")
            raise RuntimeError("killed")
    assert [p.name for p in out.iterdir()] == ["old.bin"]
    with atomic_dir(out) as tmp:
        (tmp / "new.bin").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]
