"""``tutor users …``: web UI accounts (add, list, remove, reset-password, sign-out).

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
    p = sub.add_parser(
        "users",
        parents=[common],
        help="web UI accounts: add, list, remove, reset-password, sign-out",
    )
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
    x = usub.add_parser(
        "remove",
        parents=[common],
        help="delete an account and sign it out everywhere (the learner's data stays)",
    )
    x.add_argument("name")
    x.set_defaults(func=cmd_users_remove)
    x = usub.add_parser(
        "reset-password",
        parents=[common],
        help="set a new password (asks for it) and sign the account out everywhere",
    )
    x.add_argument("name")
    x.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    x.set_defaults(func=cmd_users_reset_password)
    x = usub.add_parser(
        "sign-out", parents=[common], help="end every signed-in session of an account"
    )
    x.add_argument("name")
    x.set_defaults(func=cmd_users_sign_out)


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


def cmd_users_remove(args: argparse.Namespace, config: Any) -> int:
    store = _store(config)
    user = store.get_user(args.name)  # NotFoundError names the user
    if user.role == "teacher" and store.count_users("teacher") == 1:
        print(
            f"warning: {user.username} was the last teacher; add one with "
            "`tutor users add NAME --teacher`",
            file=sys.stderr,
        )
    ended = store.revoke_user_sessions(user.username)
    store.delete_user(user.username)
    kept = ""
    if user.learner_id is not None:
        kept = "; the learner's data stays (`tutor learners delete` removes it)"
    print(
        f"removed {user.role} {user.username} ({_sessions(ended)} signed out){kept}",
        file=sys.stderr,
    )
    return 0


def cmd_users_reset_password(args: argparse.Namespace, config: Any) -> int:
    from tutor.accounts import check_password_policy

    store = _store(config)
    user = store.get_user(args.name)  # before asking for a password
    password = _read_password(args)
    check_password_policy(password)
    store.set_password(user.username, password)  # also signs every session out
    print(f"new password set for {user.username}; every session signed out", file=sys.stderr)
    return 0


def cmd_users_sign_out(args: argparse.Namespace, config: Any) -> int:
    store = _store(config)
    user = store.get_user(args.name)
    ended = store.revoke_user_sessions(user.username)
    print(f"{user.username}: {_sessions(ended)} signed out", file=sys.stderr)
    return 0


def _sessions(n: int) -> str:
    return f"{n} session{'' if n == 1 else 's'}"
