"""Commands for the learner model: ``tutor learners …`` and ``tutor items …``.

Thin: parse, call the store, render. Personal data goes to stdout (or a file written
atomically with mode 0600); diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tutor.errors import InputError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    # -- learners
    p = sub.add_parser(
        "learners", parents=[common], help="learners: list, show, export, delete, fit-kt"
    )
    lsub = p.add_subparsers(dest="learners_command", metavar="ACTION", required=True)
    x = lsub.add_parser("list", parents=[common], help="list learners with their activity")
    x.set_defaults(func=cmd_learners_list)
    x = lsub.add_parser("add", parents=[common], help="add a learner")
    x.add_argument("name")
    x.add_argument("--display-name", default="", help="name the tutor uses when talking")
    x.set_defaults(func=cmd_learners_add)
    x = lsub.add_parser(
        "show", parents=[common], help="profile, mastery and predictions of a learner"
    )
    x.add_argument("name")
    _collection_option(x)
    x.set_defaults(func=cmd_learners_show)
    x = lsub.add_parser("export", parents=[common], help="export all data of a learner as JSON")
    x.add_argument("name")
    x.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (mode 0600) instead of stdout"
    )
    x.set_defaults(func=cmd_learners_export)
    x = lsub.add_parser("delete", parents=[common], help="delete all data of a learner")
    x.add_argument("name")
    x.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    x.set_defaults(func=cmd_learners_delete)
    x = lsub.add_parser(
        "fit-kt",
        parents=[common],
        help="fit BKT per skill and the course's P(correct) predictor from an attempts log",
    )
    x.add_argument(
        "--min-attempts",
        type=int,
        default=20,
        help="skills with fewer graded attempts keep their parameters (default 20)",
    )
    x.add_argument(
        "--attempts",
        metavar="FILE",
        default=None,
        help="a past attempts log (CSV/JSONL, or the three-line KT format) instead of the "
        "store's own attempts",
    )
    x.add_argument(
        "--columns",
        default="",
        help="column mapping for --attempts, e.g. learner=user_id,skill=skill_id,"
        "correct=correct,order=order_id,item=problem_id,time=timestamp",
    )
    _collection_option(x)
    x.set_defaults(func=cmd_learners_fit_kt)

    # -- items
    p = sub.add_parser("items", parents=[common], help="practice items: add, list, check")
    isub = p.add_subparsers(dest="items_command", metavar="ACTION", required=True)
    x = isub.add_parser(
        "add", parents=[common], help="validate bank files and load them into a collection"
    )
    x.add_argument(
        "files", nargs="+", metavar="FILE", help=".yaml/.jsonl bank files or directories"
    )
    _collection_option(x)
    x.set_defaults(func=cmd_items_add)
    x = isub.add_parser("list", parents=[common], help="list the items of a collection")
    _collection_option(x)
    x.add_argument("--skill", default=None, help="only items of this skill")
    x.set_defaults(func=cmd_items_list)
    x = isub.add_parser("check", parents=[common], help="validate bank files without loading them")
    x.add_argument("files", nargs="+", metavar="FILE")
    x.set_defaults(func=cmd_items_check)


def _collection_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--collection",
        dest="kb.collection",
        default=None,
        metavar="NAME",
        help="course collection (default: kb.collection, 'default')",
    )


def _store(config: Any) -> Any:
    from tutor.builders import build_learner_store

    return build_learner_store(config)


# -- learners ------------------------------------------------------------------------------------


def cmd_learners_list(args: argparse.Namespace, config: Any) -> int:
    store = _store(config)
    rows = store.list_learners()
    if not rows:
        print("no learners yet", file=sys.stderr)
        return 0
    print(f"{'name':24} {'sessions':>8} {'messages':>8} {'attempts':>8}  last active")
    for r in rows:
        print(
            f"{r.learner.name:24} {r.n_sessions:>8} {r.n_messages:>8} {r.n_attempts:>8}  "
            f"{(r.last_active_at or '-')[:19]}"
        )
    return 0


def cmd_learners_add(args: argparse.Namespace, config: Any) -> int:
    store = _store(config)
    lr = store.add_learner(args.name, display_name=args.display_name)
    print(f"added learner {lr.name} (id {lr.id})", file=sys.stderr)
    return 0


def cmd_learners_show(args: argparse.Namespace, config: Any) -> int:
    store = _store(config)
    lr = store.find_learner(args.name)
    profile = store.get_profile(lr.id)
    print(f"learner: {lr.name}" + (f" ({lr.display_name})" if lr.display_name else ""))
    for k, v in profile.to_dict().items():
        if v:
            print(f"  {k}: {v}")
    skills = store.skills(config.kb.collection)
    m = store.mastery(lr.id, skills)
    print(f"\n{'skill':24} {'P(mastery)':>10} {'P(correct)':>10} {'attempts':>8} {'correct':>8}")
    for s, v in m.items():
        flag = "  mastered" if v.mastered else ""
        print(
            f"{s:24} {v.p_mastery:>10.2f} {v.p_correct:>10.2f} {v.n_attempts:>8} {v.n_correct:>8}{flag}"
        )
    sel = store.next_item(lr.id, config.kb.collection)
    if sel is not None:
        print(
            f"\nnext item: {sel.item.id} ({sel.skill}, difficulty {sel.item.difficulty}, "
            f"target {sel.target_difficulty}, P(correct) {sel.p_correct:.2f} by {sel.predictor}): "
            f"{sel.reason}"
        )
    return 0


def cmd_learners_export(args: argparse.Namespace, config: Any) -> int:
    store = _store(config)
    lr = store.find_learner(args.name)
    data = store.export_learner(lr.id)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if not args.output:
        sys.stdout.write(text)
        return 0
    from knowledge_base.atomic import write_atomic

    out = Path(args.output)
    write_atomic(out, text, mode=0o600)
    n = sum(len(v) for v in data["tables"].values())
    print(f"exported {n} rows of {lr.name} to {out}", file=sys.stderr)
    return 0


def cmd_learners_delete(args: argparse.Namespace, config: Any) -> int:
    store = _store(config)
    lr = store.find_learner(args.name)
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError(f"refusing to delete {lr.name!r} without confirmation; pass --yes")
        answer = input(f"Delete ALL data of learner {lr.name!r}? Type the name to confirm: ")
        if answer.strip() != lr.name:
            print("not deleted", file=sys.stderr)
            return 1
    counts = store.delete_learner(lr.id)
    detail = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    print(f"deleted learner {lr.name}: {detail}", file=sys.stderr)
    return 0


def cmd_learners_fit_kt(args: argparse.Namespace, config: Any) -> int:
    from tutor.kt_data import answers_from_store, load_answers

    store = _store(config)
    coll = config.kb.collection
    if args.attempts:
        log = load_answers(args.attempts, args.columns or None)
        source = str(args.attempts)
    else:
        attempts = store.attempts(counted_only=True)
        if not attempts:
            print(
                f"no skill has {args.min_attempts} graded attempts yet; the defaults stay in use",
                file=sys.stderr,
            )
            return 0
        log, source = answers_from_store(attempts), "learner store"
    rep = store.fit_learner_models(
        log, collection=coll, min_observations=args.min_attempts, source=source
    )
    if not rep.bkt:
        print(
            f"no skill has {args.min_attempts} graded attempts yet; the BKT defaults stay in use",
            file=sys.stderr,
        )
    else:
        print(
            f"{'skill':24} {'prior':>6} {'learn':>6} {'guess':>6} {'slip':>6} {'learners':>8} {'attempts':>8}"
        )
    for s, r in sorted(rep.bkt.items()):
        p = r.params
        print(
            f"{s:24} {p.prior:>6.3f} {p.learn:>6.3f} {p.guess:>6.3f} {p.slip:>6.3f} "
            f"{r.n_sequences:>8} {r.n_observations:>8}"
        )
    pred = store.predictor(coll)
    print(
        f"{rep.n_answers} answers of {rep.n_learners} learners ({source}); predictor for "
        f"collection {coll!r}: {pred.label if pred else rep.chosen}",
        file=sys.stderr,
    )
    if rep.unknown_skills:
        shown = ", ".join(rep.unknown_skills[:8]) + (" ..." if len(rep.unknown_skills) > 8 else "")
        print(
            f"warning: {len(rep.unknown_skills)} skills of the log are not in the course's "
            f"bank ({shown}); their parameters are stored but no item uses them",
            file=sys.stderr,
        )
    return 0


# -- items ---------------------------------------------------------------------------------------


def cmd_items_add(args: argparse.Namespace, config: Any) -> int:
    from tutor.services import add_item_bank

    store = _store(config)
    coll = config.kb.collection
    # items may use the skills stored for the collection, else the shipped ones
    report = add_item_bank(store, args.files, collection=coll)
    print(
        f"loaded {report.n_items} items ({report.n_replaced} replaced) and {report.n_skills} skills "
        f"into collection {coll!r}",
        file=sys.stderr,
    )
    return 0


def cmd_items_list(args: argparse.Namespace, config: Any) -> int:
    store = _store(config)
    coll = config.kb.collection
    stored = coll in store.collections()
    items = store.items(coll, skill=args.skill)
    if not stored:
        print(
            f"collection {coll!r} has no items loaded; showing the default bank "
            "(`tutor items add FILE` loads one)",
            file=sys.stderr,
        )
    print(f"{'id':14} {'skill':20} {'type':10} {'diff':>4}  prompt")
    for it in items:
        prompt = it.prompt.replace("\n", " ")
        print(
            f"{it.id:14} {it.skill:20} {it.kind:10} {it.difficulty:>4}  "
            f"{prompt[:60] + ('…' if len(prompt) > 60 else '')}"
        )
    print(f"{len(items)} items", file=sys.stderr)
    return 0


def cmd_items_check(args: argparse.Namespace, config: Any) -> int:
    from tutor.services import check_item_bank

    bank = check_item_bank(args.files)  # against the shipped skills
    kinds: dict[str, int] = {}
    for it in bank.items:
        kinds[it.kind] = kinds.get(it.kind, 0) + 1
    used = sorted({s for it in bank.items for s in it.skills})
    print(
        f"ok: {len(bank.items)} items over {len(used)} skills "
        f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})"
    )
    return 0
