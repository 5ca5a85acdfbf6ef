"""Tables in the docs, generated from the benchmarks' result files.

A table in a Markdown doc sits between two markers and names its result file and table:

    <!-- table:kb_index/indexes -->
    (generated: the table, then a line naming the result file, commit, date, machine and load)
    <!-- /table -->

``kb_index/indexes`` is the table ``indexes`` of ``benchmarks/results/kb_index.json`` (see
``benchmarks/results.py``). Without options the docs are rewritten in place; ``--check`` only
compares and exits 1 when a table differs from what its result file gives (or the file is
missing), so a figure in a table can always be traced to a run.

    python benchmarks/tables.py            # rewrite docs/benchmarks.md
    python benchmarks/tables.py --check    # what the tests run
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import RESULTS, ROOT, markdown  # noqa: E402

DOCS = [ROOT / "docs" / "benchmarks.md"]
BLOCK = re.compile(r"(<!-- table:([\w.-]+)/([\w.-]+) -->\n)(.*?)(<!-- /table -->)", re.S)


def _load(a: list[float] | None) -> str:
    return f"{a[0]:.1f}" if a else "?"


def source_line(path: Path, data: dict[str, Any]) -> str:
    """Where a table comes from: result file, commit, date, machine, load and duration."""
    git, m = data.get("git", {}), data.get("machine", {})
    commit = git.get("short") or "?"
    if git.get("dirty"):
        commit += " + uncommitted changes"
    when = data.get("started_utc", "?").replace("T", " ")[:16] + " UTC"
    cpu = f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('ram_gib', '?')} GiB"
    cpu += ", avx512_bf16" if m.get("avx512_bf16") else ", no avx512_bf16"
    if m.get("torch"):
        cpu += f", torch {m['torch']}"
    load = f"load {_load(data.get('load_before'))} before, {_load(data.get('load_after'))} after"
    kind = "" if data.get("kind", "full") == "full" else f"{data['kind']} run · "
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    minutes = data.get("duration_s", 0) / 60
    return (
        f"<sub>{kind}`{rel}` · commit {commit} · {when} · {cpu} · {load} "
        f"(1-min average) · run took {minutes:.1f} min</sub>"
    )


def render(stem: str, table: str, results: Path) -> str:
    """The generated text between the markers of ``stem/table``."""
    path = results / f"{stem}.json"
    if not path.is_file():
        return f"*Pending: no result file `{path.name}` yet (not yet run).*\n"
    data = json.loads(path.read_text())
    t = data.get("tables", {}).get(table)
    if t is None:
        raise SystemExit(f"{path}: no table {table!r} (has: {', '.join(data.get('tables', {}))})")
    body = markdown(t["columns"], t["rows"], t.get("align", ""))
    return f"{body}\n\n{source_line(path, data)}\n"


def rewrite(text: str, results: Path) -> str:
    """The doc with every marked table regenerated."""
    return BLOCK.sub(lambda m: m[1] + render(m[2], m[3], results) + m[5], text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    ap.add_argument("--doc", type=Path, action="append", help="doc(s) to process (repeatable)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="result files' folder")
    args = ap.parse_args(argv)
    status = 0
    for doc in args.doc or DOCS:
        text = doc.read_text(encoding="utf-8")
        new = rewrite(text, args.results)
        old_blocks = {f"{m[2]}/{m[3]}": m[4] for m in BLOCK.finditer(text)}
        new_blocks = {f"{m[2]}/{m[3]}": m[4] for m in BLOCK.finditer(new)}
        stale = [k for k in old_blocks if old_blocks[k] != new_blocks[k]]
        if args.check:
            for name in stale:
                print(f"{doc}: table {name} differs from {args.results}/{name.split('/')[0]}.json")
            status |= bool(stale)
        elif new != text:
            doc.write_text(new, encoding="utf-8")
            print(f"{doc}: rewrote {len(stale)} table(s): {', '.join(stale)}")
        print(f"{doc}: {len(old_blocks)} generated table(s)", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
