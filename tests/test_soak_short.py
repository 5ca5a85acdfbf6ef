"""A short soak (``benchmarks/soak.py``): 8 students chat at once through the real web app
(uvicorn on loopback, ``gradio_client`` students in another process, the OpenAI-compatible
scripted LM in a third) for 15 s. Zero errors, and every message each student sent, every reply
it was shown and every answer it had graded is in the store, in its own session, in order.

The check itself is tested too: a reply deleted, a message moved into another student's
session, or an attempt lost afterwards is reported.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import soak  # noqa: E402

pytestmark = pytest.mark.timeout(240)


def test_short_soak_stores_everything_with_zero_errors(tmp_path: Path) -> None:
    r = soak.soak(8, 15, think=0.5, embedder="hash", root=tmp_path)
    assert r["errors"] == []
    check = r["store"]
    assert check["integrity"] == "ok" and check["problems"] == [] and r["all_stored"]
    kinds = r["kinds"]
    # every kind of turn ran, for every student, and each student moved to a second session
    assert kinds["question"] >= 16 and kinds["practice"] >= 8 and kinds["answer"] >= 8
    assert kinds["new_session"] >= 8 and check["sessions"] >= 16 and check["unverifiable"] == 0
    assert check["sent"] == r["turns"] == sum(v for k, v in kinds.items() if k != "new_session")
    assert check["replies"] == r["turns"] and check["attempts"] == kinds["answer"]
    assert r["ttft_s"]["n"] == kinds["question"] and r["ttft_s"]["p99"] < 30

    # the check catches what it claims to catch
    url, records = r["database_url"], r["records"]
    path = url.removeprefix("sqlite:///")
    assert soak.verify(url, records)["problems"] == []
    with sqlite3.connect(path) as db:
        db.execute(
            "DELETE FROM messages WHERE id = (SELECT max(id) FROM messages WHERE role='assistant')"
        )
    assert any("differs from what was shown" in p for p in soak.verify(url, records)["problems"])

    with sqlite3.connect(path) as db:
        (a_sess, a_learner), (b_sess, b_learner) = db.execute(
            "SELECT id, learner_id FROM sessions GROUP BY learner_id ORDER BY learner_id LIMIT 2"
        ).fetchall()
        db.execute(
            "UPDATE messages SET session_id=?, learner_id=? WHERE id = (SELECT min(id) FROM "
            "messages WHERE session_id=? AND role='user')",
            (b_sess, b_learner, a_sess),
        )
    problems = soak.verify(url, records)["problems"]
    assert any(a_sess in p and "stored" in p for p in problems)
    assert any(b_sess in p for p in problems)

    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM attempts WHERE id = (SELECT max(id) FROM attempts)")
    assert any("attempts graded" in p for p in soak.verify(url, records)["problems"])
