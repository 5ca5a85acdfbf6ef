"""The learner store: isolation under concurrent writes, durability, migrations from an old
schema, mastery updates, item banks, accounts, and export/deletion of every learner table."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tutor import kt
from tutor.accounts import hash_password, needs_rehash, verify_password
from tutor.errors import InputError, NotFoundError, PermissionDeniedError
from tutor.grading import grade
from tutor.items import load_default_bank
from tutor.store import (
    MIGRATIONS,
    LearnerStore,
    SessionState,
    applied_migrations,
    make_engine,
    migrate,
)
from tutor.store import migrations as M
from tutor.store import schema as S

FAST_KDF = 2**8  # scrypt cost for tests only


@pytest.fixture(scope="module")
def bank():  # type: ignore[no-untyped-def]
    return load_default_bank()


PG_URL = os.environ.get("TUTOR_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, and (with TUTOR_TEST_POSTGRES_URL=postgresql+psycopg://
    user@host/db) a new PostgreSQL database per test, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'learners.sqlite'}"
        return
    pg_url = PG_URL or request.getfixturevalue("postgres_url")
    name = f"tutor_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def store(db_url: str, bank) -> LearnerStore:  # type: ignore[no-untyped-def]
    s = LearnerStore(db_url, fallback_bank=bank, kdf_n=FAST_KDF)
    yield s
    s.close()


# --------------------------------------------------------------------------------------------
# Learners, profiles, sessions, messages, state


def test_learners_and_profiles(store: LearnerStore) -> None:
    ana = store.add_learner("ana", display_name="Ana")
    assert store.find_learner("ana") == ana == store.get_learner(ana.id)
    with pytest.raises(InputError, match="already exists"):
        store.add_learner("ana")
    with pytest.raises(NotFoundError):
        store.find_learner("nobody")
    with pytest.raises(InputError):
        store.add_learner("")
    assert store.get_or_create_learner("ana") == ana
    # a profile is editable by the learner and the teacher; teacher notes only by the teacher
    p = store.update_profile(ana.id, {"goals": "fractions", "grade_level": "6"})
    assert (p.goals, p.grade_level, p.updated_by) == ("fractions", "6", "learner")
    p = store.update_profile(ana.id, {"teacher_notes": "likes visuals"}, editor="teacher")
    assert store.get_profile(ana.id).to_dict()["teacher_notes"] == "likes visuals"
    assert store.get_profile(ana.id).goals == "fractions"
    with pytest.raises(PermissionDeniedError):
        store.update_profile(ana.id, {"teacher_notes": "x"}, editor="learner")
    with pytest.raises(InputError, match="unknown profile field"):
        store.update_profile(ana.id, {"shoe_size": "9"})


def test_sessions_messages_and_state(store: LearnerStore) -> None:
    ana, ben = store.add_learner("ana"), store.add_learner("ben")
    s = store.start_session(ana.id, collection="sample")
    for i in range(5):
        store.add_message(s.id, "user" if i % 2 == 0 else "assistant", f"m{i}", meta={"i": i})
    msgs = store.messages(s.id)
    assert [m.content for m in msgs] == [f"m{i}" for i in range(5)]
    assert msgs[1].meta == {"i": 1} and msgs[0].learner_id == ana.id
    assert [m.content for m in store.messages(s.id, limit=2)] == ["m3", "m4"]
    # a session is only visible to its own learner
    with pytest.raises(NotFoundError):
        store.get_session(s.id, learner_id=ben.id)
    with pytest.raises(NotFoundError):
        store.messages(s.id, learner_id=ben.id)
    with pytest.raises(NotFoundError):
        store.add_message(s.id, "user", "sneaky", learner_id=ben.id)
    with pytest.raises(InputError, match="role"):
        store.add_message(s.id, "teacher", "x")
    # per-session tutoring state
    assert store.get_state(s.id) == SessionState()
    st = SessionState().with_item("frac-01")
    store.set_state(s.id, st)
    new = store.update_state(s.id, attempts=2, hint_level=1, solution_earned=True)
    assert store.get_state(s.id) == new
    assert (new.item_id, new.attempts, new.hint_level, new.solution_earned) == (
        "frac-01",
        2,
        1,
        True,
    )
    with pytest.raises(InputError, match="unknown session state"):
        store.update_state(s.id, color="red")
    assert SessionState.from_dict({"item_id": "x", "custom": 1}).extra == {"custom": 1}
    assert [x.id for x in store.list_sessions(ana.id)] == [s.id]
    store.end_session(s.id)
    assert store.get_session(s.id).ended_at is not None


def test_acknowledged_writes_are_durable(db_url: str, bank) -> None:  # type: ignore[no-untyped-def]
    a = LearnerStore(db_url, fallback_bank=bank)
    lr = a.add_learner("ana")
    s = a.start_session(lr.id)
    a.add_message(s.id, "user", "hello")
    it = bank.item("frac-01")
    a.record_attempt(lr.id, it, "3/5", grade(it, "3/5"), session_id=s.id)
    # another engine (as another process would) sees them at once, without closing the first
    b = LearnerStore(db_url, fallback_bank=bank)
    assert [m.content for m in b.messages(s.id)] == ["hello"]
    assert len(b.attempts(lr.id)) == 1
    if a.engine.dialect.name == "sqlite":
        with a.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    a.close()
    b.close()


def test_concurrent_learners_never_mix_histories(store: LearnerStore, bank) -> None:  # type: ignore[no-untyped-def]
    n_threads, n_msgs = 8, 20
    item = bank.item("frac-01")
    sessions: dict[int, tuple[int, str]] = {}
    for i in range(n_threads):
        lr = store.add_learner(f"learner-{i}")
        sessions[i] = (lr.id, store.start_session(lr.id).id)
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def work(i: int) -> None:
        try:
            lid, sid = sessions[i]
            barrier.wait()
            for k in range(n_msgs):
                store.add_message(sid, "user", f"{i}:{k}", learner_id=lid)
                if k % 5 == 0:
                    store.record_attempt(lid, item, "3/5", grade(item, "3/5"))
                store.update_state(sid, attempts=k)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, (lid, sid) in sessions.items():
        msgs = store.messages(sid, learner_id=lid)
        assert [m.content for m in msgs] == [f"{i}:{k}" for k in range(n_msgs)]
        assert {m.learner_id for m in msgs} == {lid}
        assert store.get_state(sid).attempts == n_msgs - 1
        m = store.mastery(lid)["fractions"]
        assert m.n_attempts == m.n_correct == n_msgs // 5  # no lost update
    with store.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(S.messages)).scalar()
    assert total == n_threads * n_msgs


def _process_writer(url: str, name: str, n: int) -> None:
    s = LearnerStore(url, kdf_n=FAST_KDF, fallback_bank=None)
    lr = s.get_or_create_learner(name)
    sess = s.start_session(lr.id)
    for k in range(n):
        s.add_message(sess.id, "user", f"{name}:{k}")
    s.close()


def test_processes_write_concurrently(db_url: str) -> None:
    LearnerStore(db_url).close()  # migrate once up front
    # forkserver: children fork from a fresh, single-threaded server that imported the store once
    # (a plain fork of the pytest process, which may hold threads, is not safe; spawn is slow)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    procs = [ctx.Process(target=_process_writer, args=(db_url, f"p{i}", 30)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    s = LearnerStore(db_url)
    for i in range(2):
        lr = s.find_learner(f"p{i}")
        (sess,) = s.list_sessions(lr.id)
        assert [m.content for m in s.messages(sess.id)] == [f"p{i}:{k}" for k in range(30)]
    s.close()


# --------------------------------------------------------------------------------------------
# Migrations


def test_fresh_database_matches_the_schema(store: LearnerStore) -> None:
    with store.engine.connect() as conn:
        assert applied_migrations(conn) == [n for n, _ in MIGRATIONS]
        insp = sa.inspect(conn)
        assert set(insp.get_table_names()) == set(S.metadata.tables)
        for name, table in S.metadata.tables.items():
            assert {c["name"] for c in insp.get_columns(name)} == set(table.c.keys()), name
    assert migrate(store.engine) == []  # applied once only


def test_migrating_an_old_database_keeps_its_data(db_url: str, bank) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    assert migrate(engine, upto="m002_attempts_mastery") == [
        "m001_learners_sessions_messages",
        "m002_attempts_mastery",
    ]
    with engine.begin() as conn:  # data written by the old version
        conn.execute(
            sa.text(
                "INSERT INTO learners (name, display_name, created_at) VALUES ('old', 'Old', 't0')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO profiles (learner_id, data, updated_at) VALUES (1, '{\"goals\": \"pass\"}', 't0')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO sessions (id, learner_id, collection, started_at, last_active_at) VALUES ('s1', 1, 'default', 't0', 't0')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO messages (session_id, learner_id, role, content, meta, created_at) VALUES ('s1', 1, 'user', 'hi', '{}', 't0')"
            )
        )
        assert "state" not in {c["name"] for c in sa.inspect(conn).get_columns("sessions")}
    engine.dispose()
    store = LearnerStore(db_url, fallback_bank=bank, kdf_n=FAST_KDF)  # migrates the rest
    with store.engine.connect() as conn:
        assert applied_migrations(conn) == [n for n, _ in MIGRATIONS]
    lr = store.find_learner("old")
    assert store.get_profile(lr.id).goals == "pass"
    assert [m.content for m in store.messages("s1")] == ["hi"]
    assert store.get_state("s1") == SessionState()
    store.update_state("s1", item_id="frac-01")
    assert store.add_user("old", "password1", role="student", learner_id=lr.id).learner_id == lr.id
    store.close()


def test_a_failing_migration_is_not_recorded_and_leaves_no_trace(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def m999_broken(conn: sa.Connection) -> None:
        conn.execute(sa.text("CREATE TABLE half_done (x INTEGER)"))
        raise RuntimeError("boom")

    monkeypatch.setattr(M, "MIGRATIONS", [*M.MIGRATIONS, ("m999_broken", m999_broken)])
    engine = make_engine(db_url)
    with pytest.raises(RuntimeError, match="boom"):
        M.migrate(engine)
    with engine.connect() as conn:
        assert "m999_broken" not in applied_migrations(conn)
        assert "half_done" not in sa.inspect(conn).get_table_names()
        assert applied_migrations(conn) == [n for n, _ in MIGRATIONS]
    engine.dispose()


def test_migrations_compile_for_postgresql() -> None:
    """Every table of every migration compiles to PostgreSQL DDL (portable types only)."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateTable

    for table in S.metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=postgresql.dialect()))
        assert "CREATE TABLE" in ddl


# --------------------------------------------------------------------------------------------
# Attempts, mastery, knowledge tracing


def test_attempts_update_mastery_once_per_item_and_session(store: LearnerStore, bank) -> None:  # type: ignore[no-untyped-def]
    lr = store.add_learner("ana")
    s = store.start_session(lr.id)
    it = bank.item("rp-02")  # skills: ratios-percents and fractions
    p = store.bkt_defaults
    out = store.record_attempt(lr.id, it, "50%", grade(it, "50%"), session_id=s.id, hint_level=1)
    assert out.counted and not out.attempt.correct
    for skill in ("ratios-percents", "fractions"):
        assert out.mastery_before[skill] == p.prior
        assert out.mastery_after[skill] == pytest.approx(kt.update(p.prior, False, p))
    retry = store.record_attempt(lr.id, it, "60%", grade(it, "60%"), session_id=s.id)
    assert retry.attempt.correct and not retry.counted
    assert retry.mastery_after == retry.mastery_before == out.mastery_after
    m = store.mastery(lr.id, ["decimals"])
    assert m["fractions"].n_attempts == 1 and m["fractions"].n_correct == 0
    assert m["decimals"].p_mastery == p.prior and m["decimals"].n_attempts == 0
    assert m["fractions"].p_correct == pytest.approx(kt.p_correct(m["fractions"].p_mastery, p))
    # a new session counts again
    s2 = store.start_session(lr.id)
    assert store.record_attempt(lr.id, it, "60%", grade(it, "60%"), session_id=s2.id).counted
    assert [a.hint_level for a in store.attempts(lr.id)] == [1, 0, 0]
    assert len(store.attempts(lr.id, skill="fractions", counted_only=True)) == 2
    # predictions for every learner x skill
    store.add_learner("ben")
    preds = store.predictions()
    assert {(x.learner_name, x.skill) for x in preds} == {
        (n, s) for n in ("ana", "ben") for s in bank.skills
    }


def test_fit_kt_from_the_attempts_log(store: LearnerStore) -> None:
    true = kt.BKTParams(prior=0.3, learn=0.15, guess=0.2, slip=0.1)
    sim = kt.simulate(true, 300, 12, rng=5)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(S.learners),
            [
                dict(name=f"sim-{i}", display_name="", created_at="t")
                for i in range(len(sim.correct))
            ],
        )
    ids = [store.find_learner(f"sim-{i}").id for i in range(len(sim.correct))]
    rows = [
        dict(
            learner_id=lid,
            session_id=None,
            collection="default",
            item_id=f"item-{t}",
            skills=["fractions"],
            response="",
            correct=bool(c),
            code="correct" if c else "incorrect",
            normalized="",
            hint_level=0,
            counted=True,
            created_at=f"2026-01-01T00:00:{t:02d}.{lid:06d}",
        )
        for t in range(sim.correct.shape[1])
        for lid, c in zip(ids, sim.correct[:, t], strict=True)
    ]
    with store.engine.begin() as conn:
        conn.execute(sa.insert(S.attempts), rows)
    fits = store.fit_kt(min_observations=50)
    p = fits["fractions"].params
    # the store hands the fit each learner's attempts in time order: same as fitting directly
    direct = kt.fit_skill(sim.sequences(), init=store.bkt_defaults).params
    assert p.to_dict() == pytest.approx(direct.to_dict())
    for name in ("prior", "learn", "guess", "slip"):
        assert getattr(p, name) == pytest.approx(getattr(true, name), abs=0.07), (name, p)
    assert store.kt_params()["fractions"] == p
    assert store.params_for("decimals") == store.bkt_defaults  # no data: the defaults
    # mastery was recomputed with the fitted parameters
    row0 = [int(c) for c in sim.correct[0]]
    assert store.mastery(ids[0])["fractions"].p_mastery == pytest.approx(kt.trace(row0, p)[1][-1])


def test_next_item_follows_prerequisites(store: LearnerStore) -> None:
    lr = store.add_learner("ana")
    seen = set()
    for _ in range(5):
        sel = store.next_item(lr.id)
        assert sel is not None
        assert sel.skill not in ("ratios-percents", "linear-equations", "area-perimeter")
        seen.add(sel.item.id)
    with store.engine.begin() as conn:
        for skill in ("fractions", "decimals"):
            conn.execute(
                sa.insert(S.mastery).values(
                    learner_id=lr.id,
                    skill=skill,
                    p_mastery=0.99,
                    n_attempts=9,
                    n_correct=9,
                    updated_at="t",
                )
            )
    for skill in ("order-of-operations", "water-cycle", "photosynthesis"):
        with store.engine.begin() as conn:
            conn.execute(
                sa.insert(S.mastery).values(
                    learner_id=lr.id,
                    skill=skill,
                    p_mastery=0.5,
                    n_attempts=1,
                    n_correct=1,
                    updated_at="t",
                )
            )
    sel = store.next_item(lr.id)
    assert sel is not None and sel.skill == "ratios-percents"


# --------------------------------------------------------------------------------------------
# Item banks per collection


def test_item_banks_per_collection(store: LearnerStore, bank) -> None:  # type: ignore[no-untyped-def]
    assert store.collections() == []
    assert len(store.items("anything")) == len(bank.items)  # the fallback bank
    report = store.add_items(bank, collection="sample")
    assert (report.n_items, report.n_replaced) == (len(bank.items), 0)
    assert store.collections() == ["sample"]
    assert [i.id for i in store.items("sample")] == [i.id for i in bank.items]
    assert store.get_item("sample", "wc-01") == bank.item("wc-01")
    assert list(store.skills("sample")) == list(bank.skills)
    assert store.add_items(bank, collection="sample").n_replaced == len(bank.items)
    assert len(store.items("sample", skill="photosynthesis")) == len(
        bank.for_skill("photosynthesis")
    )
    assert store.remove_items("sample", ["wc-01"]) == 1
    with pytest.raises(NotFoundError):
        store.get_item("sample", "wc-01")
    with pytest.raises(InputError):
        store.add_items(bank, collection="bad name!")


# --------------------------------------------------------------------------------------------
# Accounts


def test_password_hashing() -> None:
    h1, h2 = hash_password("correct horse", n=FAST_KDF), hash_password("correct horse", n=FAST_KDF)
    assert h1 != h2 and h1.startswith("scrypt$n=256,r=8,p=1$")  # salted
    assert "correct horse" not in h1
    assert verify_password("correct horse", h1)
    assert not verify_password("correct horsE", h1)
    assert not verify_password("correct horse", h1[:-4] + "AAA=")
    assert not verify_password("correct horse", "plain")
    assert needs_rehash(h1) and not needs_rehash(hash_password("x" * 8))
    with pytest.raises(InputError, match="at least"):
        hash_password("short")


def test_users(store: LearnerStore) -> None:
    teacher = store.add_user("mrs-k", "teacherpass", role="teacher")
    ana = store.add_learner("ana")
    student = store.add_user("ana", "studentpass", role="student", learner_id=ana.id)
    assert (teacher.role, teacher.learner_id, student.learner_id) == ("teacher", None, ana.id)
    assert store.authenticate("ana", "studentpass") is not None
    assert store.authenticate("ana", "wrongpass1") is None
    assert store.authenticate("nobody", "studentpass") is None
    assert store.get_user("ana").last_login_at is not None
    with pytest.raises(InputError, match="already exists"):
        store.add_user("ana", "studentpass", role="student", learner_id=ana.id)
    with pytest.raises(InputError, match="needs a learner"):
        store.add_user("ben", "studentpass", role="student")
    with pytest.raises(InputError, match="role"):
        store.add_user("ben", "studentpass", role="admin")  # type: ignore[arg-type]
    store.set_password("ana", "newpassword")
    assert store.authenticate("ana", "newpassword") is not None
    assert [u.username for u in store.list_users()] == ["ana", "mrs-k"]
    assert store.count_users("teacher") == 1
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(S.users.c.password_hash)).scalars().all()
    assert all(h.startswith("scrypt$") and "pass" not in h for h in stored)


# --------------------------------------------------------------------------------------------
# Export and deletion cover every table that holds learner data


def _fill(store: LearnerStore, bank, name: str) -> int:  # type: ignore[no-untyped-def]
    lr = store.add_learner(name)
    store.update_profile(lr.id, {"goals": f"{name} goals"})
    s = store.start_session(lr.id)
    store.add_message(s.id, "user", f"{name} says hi")
    it = bank.item("frac-01")
    store.record_attempt(lr.id, it, "3/5", grade(it, "3/5"), session_id=s.id)
    store.set_state(s.id, SessionState().with_item("frac-01"))
    user = store.add_user(name, "password1", role="student", learner_id=lr.id)
    store.create_auth_session(user.id, hours=1.0, address=f"{name}-address")  # a web sign-in
    return lr.id


def test_export_and_delete_cover_every_learner_table(store: LearnerStore, bank) -> None:  # type: ignore[no-untyped-def]
    ana, ben = _fill(store, bank, "ana"), _fill(store, bank, "ben")
    with store.engine.connect() as conn:
        insp = sa.inspect(conn)
        learner_tables = {
            t
            for t in insp.get_table_names()
            if any(c["name"] == "learner_id" for c in insp.get_columns(t))
        } | {"learners"}
    assert learner_tables == set(S.LEARNER_TABLES)
    learner_tables |= set(S.LEARNER_LINKED_TABLES)  # web sign-in sessions, through users

    export = store.export_learner(ana)
    assert export["format"] == "offline-tutor.learner-export" and export["learner"]["name"] == "ana"
    assert set(export["tables"]) == learner_tables
    text = json.dumps(export)
    assert "ben" not in text  # nothing of another learner
    assert "password_hash" not in text and "scrypt$" not in text and "token_hash" not in text
    assert export["tables"]["auth_sessions"][0]["address"] == "ana-address"
    for table in learner_tables:
        assert export["tables"][table], f"{table} exported no row"
    assert export["tables"]["messages"][0]["content"] == "ana says hi"
    assert export["tables"]["sessions"][0]["state"]["item_id"] == "frac-01"

    counts = store.delete_learner(ana)
    assert set(counts) == learner_tables and all(counts.values())
    with store.engine.connect() as conn:
        sessions = S.auth_sessions.c.address
        n = conn.execute(sa.select(sessions).order_by(sessions)).scalars().all()
        assert n == ["ben-address"]  # ana's sign-in sessions went with her
        for table in S.LEARNER_TABLES:
            t = S.metadata.tables[table]
            col = t.c.id if table == "learners" else t.c.learner_id
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(t).where(col == ana)).scalar()
                == 0
            )
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(t).where(col == ben)).scalar()
                >= 1
            )
    with pytest.raises(NotFoundError):
        store.export_learner(ana)
    assert store.authenticate("ana", "password1") is None
    assert store.export_learner(ben)["tables"]["messages"][0]["content"] == "ben says hi"
