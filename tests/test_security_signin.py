"""Attacks on sign-in (issue 16, docs/reliability.md "Attacks tried"): a flood of huge user names
(V1: the limiter's memory stays flat), parallel guesses (V2: the limit holds), and locking
someone else's account (the lock is per account and address; account-wide needs far more).
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.testclient import TestClient

from tutor.store import LearnerStore
from ui.auth import MAX_FORM_BYTES, SignIn
from ui.limiter import ACCOUNT_FACTOR, ADDRESS_FACTOR, FailureLimiter
from ui.testing import PASSWORD, ServerThread


def signin_app(tmp_path: Path, max_failures: int = 3) -> tuple[FastAPI, SignIn, LearnerStore]:
    store = LearnerStore(f"sqlite:///{tmp_path / 'l.sqlite'}", kdf_n=2)
    store.add_user("mrs-k", PASSWORD, role="teacher")
    signin = SignIn(store, delay_s=0.0, max_failures=max_failures)
    app = FastAPI()
    signin.install(app)
    return app, signin, store


def at(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, client=(address, 1000))


def limiter_bytes(signin: SignIn) -> int:
    fails: dict[str, Any] = signin.limiter._fails  # the same field before and after the fix
    return sum(len(k) + 8 * len(q) for k, q in fails.items())


# -- V1: bounded limiter state -------------------------------------------------------------------


def test_a_flood_of_long_user_names_keeps_memory_flat(tmp_path: Path) -> None:
    app, signin, _ = signin_app(tmp_path, max_failures=10)
    clients = [at(app, f"10.0.0.{i}") for i in range(1, 4)]
    # a name far over the form limit is refused unread
    r = clients[0].post("/login", data={"username": "x" * 1_000_000, "password": "guess"})
    assert r.status_code == 413

    def flood(round_: int) -> None:
        for i in range(120):
            name = f"{round_:03d}{i:05d}" + "x" * 10_000  # under the form limit, far over a name
            r = clients[i % 3].post("/login", data={"username": name, "password": "guess"})
            assert r.status_code in (401, 429), r.status_code

    flood(0)  # warm-up: imports, caches, the limiter's first keys
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for round_ in range(1, 4):
            flood(round_)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 360 more names of 10 KB each (3.6 MB) were sent; the server keeps none of them
    assert after - before < 512 * 1024, f"grew by {(after - before) / 2**20:.1f} MB"
    assert limiter_bytes(signin) < 16 * 1024
    assert MAX_FORM_BYTES < 1_000_000


def test_the_limiter_holds_a_bounded_number_of_keys() -> None:
    lim = FailureLimiter(5, max_keys=1000)
    for i in range(50_000):
        lim.reserve(*lim.keys_for(f"user{i}" + "y" * 500, f"10.{i % 250}.{i // 250 % 250}.1"))
    assert len(lim) <= 1000
    assert lim.size_bytes() < 1000 * 600
    # the newest keys are the ones kept, and they still count
    keys = lim.keys_for("someone", "10.9.9.9")
    for _ in range(5):
        assert lim.reserve(*keys)[0] == 0
    assert lim.reserve(*keys)[0] > 0


# -- V2: parallel guesses ------------------------------------------------------------------------


def test_parallel_guesses_cannot_pass_the_limit(tmp_path: Path) -> None:
    app, signin, store = signin_app(tmp_path, max_failures=3)
    checked = []
    real = store.authenticate

    def slow_check(username: str, password: str) -> Any:
        checked.append(password)
        time.sleep(0.3)  # scrypt at its real cost takes about this long
        return real(username, password)

    store.authenticate = slow_check  # type: ignore[method-assign]
    with ServerThread(app) as srv:
        codes: list[int] = []

        def guess(i: int) -> None:
            r = httpx.post(
                srv.url + "login", data={"username": "mrs-k", "password": f"guess-{i:04d}"}
            )
            codes.append(r.status_code)

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        # every guess has been checked or refused (the first ones may still be in the check)
        deadline = time.monotonic() + 30
        while len(checked) + codes.count(429) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        right = httpx.post(srv.url + "login", data={"username": "mrs-k", "password": PASSWORD})
        for t in threads:
            t.join()
    assert len(checked) <= 3, f"{len(checked)} guesses were checked"
    assert sorted(codes) == [401] * 3 + [429] * 27
    assert right.status_code == 429


def test_a_class_behind_one_address_signs_in_at_once(tmp_path: Path) -> None:
    """A school's NAT: 40 students (over the address's 3 x 10 failures) sign in at the same
    moment from one address. Right passwords in flight are not failures: all get in."""
    app, signin, store = signin_app(tmp_path, max_failures=10)
    names = [f"student{i:02d}" for i in range(40)]
    for name in names:
        store.add_user(name, PASSWORD, role="student", learner_name=name)
    real = store.authenticate

    def slow_check(username: str, password: str) -> Any:
        time.sleep(0.05)  # every sign-in is still being checked while the others arrive
        return real(username, password)

    store.authenticate = slow_check  # type: ignore[method-assign]
    codes: list[int] = []
    with ServerThread(app) as srv:

        def sign_in(name: str) -> None:
            r = httpx.post(srv.url + "login", data={"username": name, "password": PASSWORD})
            codes.append(r.status_code)

        threads = [threading.Thread(target=sign_in, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert codes.count(200) == 40, sorted(codes)


def test_a_right_password_gives_its_reserved_attempt_back(tmp_path: Path) -> None:
    app, _, _ = signin_app(tmp_path, max_failures=3)
    here = at(app, "10.0.0.1")
    right = {"username": "mrs-k", "password": PASSWORD}
    for _ in range(5):
        assert here.post("/login", data=right).status_code == 200
    for _ in range(2):
        assert here.post("/login", data={**right, "password": "wrong-one"}).status_code == 401
    assert here.post("/login", data=right).status_code == 200


# -- anyone can lock any account ----------------------------------------------------------------


def test_failures_from_one_place_do_not_lock_the_account_elsewhere(tmp_path: Path) -> None:
    app, _, store = signin_app(tmp_path, max_failures=3)
    here, elsewhere = at(app, "10.0.0.1"), at(app, "10.0.0.2")
    wrong = {"username": "mrs-k", "password": "guess-guess"}
    right = {"username": "mrs-k", "password": PASSWORD}
    for _ in range(3):
        assert here.post("/login", data=wrong).status_code == 401
    # the guesser's own place is locked for this account, even with the right password ...
    assert here.post("/login", data=right).status_code == 429
    # ... but the teacher at her own machine still signs in
    assert elsewhere.post("/login", data=right).status_code == 200
    # one place spraying guesses over many accounts is stopped at 3 × the limit
    store.add_user("mr-t", PASSWORD, role="teacher")
    for i in range(3 * (ADDRESS_FACTOR - 1)):
        assert here.post("/login", data={"username": f"u{i}", "password": "x"}).status_code == 401
    assert here.post("/login", data={"username": "mr-t", "password": PASSWORD}).status_code == 429
    assert (
        elsewhere.post("/login", data={"username": "mr-t", "password": PASSWORD}).status_code == 200
    )


def test_the_account_wide_lock_needs_far_more_failures(tmp_path: Path) -> None:
    limit = 2
    app, _, _ = signin_app(tmp_path, max_failures=limit)
    wrong = {"username": "mrs-k", "password": "guess-guess"}
    total = limit * ACCOUNT_FACTOR
    for i in range(total):
        r = at(app, f"10.1.{i // limit}.1").post("/login", data=wrong)
        assert r.status_code == 401, (i, r.status_code)
    # guesses from many places add up: now the account is locked from everywhere
    r = at(app, "10.2.0.1").post("/login", data={"username": "mrs-k", "password": PASSWORD})
    assert r.status_code == 429
