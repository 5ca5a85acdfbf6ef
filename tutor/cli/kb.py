"""``tutor kb``: add, list, remove, search and inspect the knowledge base.

Thin commands: parse, build the knowledge base from the config (``tutor.builders``), call one
method, render. Per-file results go to stdout, progress and diagnostics to stderr. ``kb add``
exits with 1 when some file failed (the others are still loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from typing import Any


def _kb_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("knowledge base")
    g.add_argument(
        "--embedder",
        dest="kb.embedder",
        default=None,
        help="sentence-transformers name/path or the bundled alias all-minilm-l6-v2",
    )


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "kb",
        parents=[common],
        help="knowledge base: add course documents, search them",
        description="Load course documents (.md .txt .pdf .docx .html) and search them.",
    )
    ksub = p.add_subparsers(dest="kb_command", metavar="ACTION", required=True)

    a = ksub.add_parser("add", parents=[common], help="add files or directories to a collection")
    a.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (walked)")
    a.add_argument(
        "--collection",
        "-c",
        dest="kb.collection",
        default=None,
        help="collection (one per course; default: kb.collection = 'default')",
    )
    a.add_argument("--json", action="store_true", help="print the report as JSON")
    _kb_options(a)
    a.set_defaults(func=cmd_add)

    ls = ksub.add_parser("list", parents=[common], help="list stored documents")
    ls.add_argument("--collection", "-c", default=None, help="only this collection")
    ls.add_argument("--json", action="store_true")
    _kb_options(ls)
    ls.set_defaults(func=cmd_list)

    rm = ksub.add_parser(
        "remove", parents=[common], help="remove documents by id (or a whole collection)"
    )
    rm.add_argument("ids", nargs="*", metavar="ID", help="document ids (see `tutor kb list`)")
    rm.add_argument(
        "--collection",
        dest="drop_collection",
        default=None,
        metavar="NAME",
        help="remove the whole collection NAME and all its documents",
    )
    _kb_options(rm)
    rm.set_defaults(func=cmd_remove)

    s = ksub.add_parser("search", parents=[common], help="search and show cited passages")
    s.add_argument("query", nargs="+", help="what to search for")
    s.add_argument("-k", "--top-k", dest="kb.top_k", type=int, default=None, help="passages")
    s.add_argument("--collection", "-c", default=None, help="only this collection")
    s.add_argument("--document", "-d", default=None, metavar="ID", help="only this document")
    s.add_argument(
        "--mode",
        dest="kb.mode",
        choices=["hybrid", "dense", "bm25"],
        default=None,
        help="hybrid (default): dense + BM25 fused by reciprocal rank",
    )
    s.add_argument(
        "--mmr",
        dest="kb.mmr",
        action="store_const",
        const=True,
        default=None,
        help="re-rank for diversity (maximal marginal relevance)",
    )
    s.add_argument("--json", action="store_true")
    _kb_options(s)
    s.set_defaults(func=cmd_search)

    st = ksub.add_parser("stats", parents=[common], help="collections, sizes, embedder")
    st.add_argument("--check", action="store_true", help="also verify index/rows agreement")
    st.add_argument("--json", action="store_true")
    _kb_options(st)
    st.set_defaults(func=cmd_stats)


def _open(config: Any) -> Any:
    from tutor.builders import build_knowledge_base

    return build_knowledge_base(config)


def _short(path: str) -> str:
    if path.startswith("upload:"):
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith("../..") else path


def cmd_add(args: argparse.Namespace, config: Any) -> int:
    kb = _open(config)
    try:
        report = kb.add(args.paths, collection=config.kb.collection)
    finally:
        kb.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for f in report.files:
            what = f"{f.doc_id or '-'}"
            detail = f"{f.chunks} chunks" if f.status in ("added", "replaced") else f.message
            if f.status == "replaced":
                detail += ", " + (f.message if f.replaced == f.doc_id else f"replaced {f.replaced}")
            print(f"{f.status:<9} {_short(f.path)}  {what}  ({detail})")
        print(report.summary(), file=sys.stderr)
    return 0 if report.ok else 1


def cmd_list(args: argparse.Namespace, config: Any) -> int:
    kb = _open(config)
    try:
        docs = kb.list_documents(args.collection)
    finally:
        kb.close()
    if args.json:
        print(json.dumps([d.to_dict() for d in docs], indent=2))
        return 0
    if not docs:
        print("no documents yet; add some with: tutor kb add PATH", file=sys.stderr)
        return 0
    rows = [("ID", "COLLECTION", "CHUNKS", "TYPE", "TITLE", "SOURCE")]
    rows += [
        (d.doc_id, d.collection, str(d.n_chunks), d.format, d.title, _short(d.source)) for d in docs
    ]
    widths = [min(max(len(r[i]) for r in rows), 40) for i in range(5)]
    for r in rows:
        cells = [r[i][: widths[i]].ljust(widths[i]) for i in range(5)]
        print("  ".join([*cells, r[5]]))
    return 0


def cmd_remove(args: argparse.Namespace, config: Any) -> int:
    from tutor.errors import InputError

    if not args.ids and not args.drop_collection:
        raise InputError("give document ids to remove (see `tutor kb list`) or --collection NAME")
    kb = _open(config)
    try:
        if args.drop_collection:
            info = kb.remove_collection(args.drop_collection)
            print(f"removed collection {info.name} ({info.documents} documents)")
        for doc_id in args.ids:
            d = kb.remove(doc_id)
            print(f"removed {d.doc_id}  {d.title}  ({d.n_chunks} chunks)")
    finally:
        kb.close()
    return 0


def cmd_search(args: argparse.Namespace, config: Any) -> int:
    from knowledge_base.errors import DocumentNotFoundError

    query = " ".join(args.query)
    kb = _open(config)
    try:
        if args.collection is not None:
            names = [c.name for c in kb.collections()]
            if args.collection not in names:
                raise DocumentNotFoundError(
                    f"no collection named {args.collection!r} "
                    f"(collections: {', '.join(names) or 'none yet'})"
                )
        passages = kb.search(query, collection=args.collection, document=args.document)
    finally:
        kb.close()
    if args.json:
        print(json.dumps([p.to_dict() for p in passages], indent=2, ensure_ascii=False))
        return 0
    if not passages:
        print("no matching passages", file=sys.stderr)
        return 0
    for n, p in enumerate(passages, start=1):
        sim = f", similarity {p.similarity:.2f}" if p.similarity is not None else ""
        print(f"[{n}] {p.citation}  (score {p.score:.4f}{sim})")
        body = " ".join(p.text.split())
        print(textwrap.indent(textwrap.fill(textwrap.shorten(body, 400), 96), "    "))
        print(f"    {p.chunk_id}  {_short(p.source)}")
    return 0


def cmd_stats(args: argparse.Namespace, config: Any) -> int:
    kb = _open(config)
    try:
        st = kb.stats()
        problems = kb.store.check() if args.check else None
    finally:
        kb.close()
    if args.json:
        d = st.to_dict()
        if problems is not None:
            d["problems"] = problems
        print(json.dumps(d, indent=2))
        return 1 if problems else 0
    print(f"knowledge base  {st.path}")
    print(f"embedder        {st.embedder or '(none yet)'}  ({st.dimension or '-'} dimensions)")
    formats = ", ".join(f"{k}: {v}" for k, v in st.formats.items()) or "-"
    print(f"documents       {st.documents}  ({formats})")
    print(f"chunks          {st.chunks}")
    print(f"on disk         {st.disk_bytes / 1e6:.1f} MB")
    for c in st.collections:
        print(
            f"  {c.name}: {c.documents} documents, {c.chunks} chunks, "
            f"{c.vectors} vectors, {c.index_kind} index"
        )
    if problems is not None:
        print("check           " + ("ok" if not problems else "; ".join(problems)))
    return 1 if problems else 0
