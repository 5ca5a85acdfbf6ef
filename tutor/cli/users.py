"""``tutor users …``: web UI accounts (add, list).

Thin: parse, call the learner store, render. Passwords are read from the terminal (twice) or,
with ``--password-stdin``, from the first line of stdin; diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from tutor.errors import InputError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("users", parents=[common], help="web UI accounts: add, list")
    usub = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    x = usub.add_parser("add", parents=[common], help="create an account (asks for the password)")
    x.add_argument("name")
    role = x.add_mutually_exclusive_group()
    role.add_argument("--teacher", dest="role", action="store_const", const="teacher")
    role.add_argument("--student", dest="role", action="store_const", const="student")
    x.add_argument(
        "--learner", default=None, help="learner to link a student to (default: the user name)"
    )
    x.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    x.set_defaults(func=cmd_users_add, role="student")
    x = usub.add_parser("list", parents=[common], help="list accounts")
    x.set_defaults(func=cmd_users_list)


def _store(config: Any) -> Any:
    from tutor.builders import build_learner_store

    return build_learner_store(config)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InputError("no terminal to ask for the password; pass --password-stdin")
    pw = getpass.getpass("password: ")
    if getpass.getpass("again: ") != pw:
        raise InputError("the two passwords differ; try again")
    return pw


def cmd_users_add(args: argparse.Namespace, config: Any) -> int:
    from tutor.services import create_account

    store = _store(config)
    password = _read_password(args)
    if args.role != "student" and args.learner:
        raise InputError("--learner is only for student accounts")
    user, learner = create_account(store, args.name, password, role=args.role, learner=args.learner)
    linked = f", linked to learner {learner.name}" if learner is not None else ""
    print(f"added {user.role} {user.username}{linked}", file=sys.stderr)
    return 0


def cmd_users_list(args: argparse.Namespace, config: Any) -> int:
    store = _store(config)
    users = store.list_users()
    if not users:
        print(
            "no users yet; create the first teacher with `tutor users add NAME --teacher`",
            file=sys.stderr,
        )
        return 0
    names = {s.learner.id: s.learner.name for s in store.list_learners()}
    print(f"{'user':24} {'role':8} {'learner':20} last login")
    for u in users:
        print(
            f"{u.username:24} {u.role:8} {names.get(u.learner_id, '-') if u.learner_id else '-':20} "
            f"{(u.last_login_at or '-')[:19]}"
        )
    return 0
