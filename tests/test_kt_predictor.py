"""The course's learner-performance predictor in the tutor: ``tutor learners fit-kt --attempts``
fits BKT and Best-LR on a past log, stores them, next-item selection targets a predicted
P(correct) and the teacher's at-risk list says which predictor it uses."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tutor import kt, kt_sim
from tutor.cli import main
from tutor.grading import grade
from tutor.items import Item, load_default_bank
from tutor.progress import class_overview


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def school_log(path: Path, n_learners: int = 300) -> Path:
    """A past log on the default bank's skills and items, from learners with ability and item
    difficulty (tutor.kt_sim), one row per answer, multi-skill answers as 'a;b'."""
    bank = load_default_bank()
    skills = list(bank.skills)
    by_skill = {s: [it.id for it in bank.items if it.skills[0] == s] for s in skills}
    data = kt_sim.simulate(
        kt_sim.SimConfig(n_learners=n_learners, n_skills=len(skills), items_per_skill=7), seed=3
    )
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "kc", "ok", "ts", "problem"])
        for a in data.log.answers():
            k, j = (int(x) for x in a.item[1:].split("-"))
            names = ";".join(skills[int(s.split("-")[1])] for s in a.skills)
            w.writerow([a.learner, names, int(a.correct), a.time, by_skill[skills[k]][j]])
    return path


def store_of(home: Path):
    from tutor.builders import build_learner_store
    from tutor.config import load_config

    return build_learner_store(load_config(env={"TUTOR_HOME": str(home)}))


def test_fit_kt_attempts_round_trips_into_the_tutor(
    tutor_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = school_log(tmp_path / "school.csv")
    cols = "learner=user,skill=kc,correct=ok,order=ts,time=ts,item=problem"
    rc, out, err = run(capsys, "learners", "fit-kt", "--attempts", str(f), "--columns", cols)
    assert rc == 0, err
    assert "predictor for collection 'default': Best-LR (chosen by held-out AUC" in err
    assert {line.split()[0] for line in out.splitlines()[1:]} == set(load_default_bank().skills)
    store = store_of(tutor_home)
    pred = store.predictor("default")
    assert pred is not None and pred.chosen == "Best-LR" and pred.lr is not None
    assert pred.heldout["Best-LR"] > pred.heldout["BKT"] + 0.02
    assert set(store.kt_params()) == set(load_default_bank().skills)
    assert all(p.guess <= kt.MAX_GUESS for p in store.kt_params().values())

    # a learner of this school: the next item is the one whose predicted success is nearest 0.7
    lr = store.add_learner("newcomer")
    bank = store.bank("default")
    for it in [i for i in bank.items if i.skills == ("decimals",)][:3]:
        store.record_attempt(lr.id, it, "no idea", grade(it, "no idea"))
    sel = store.next_item(lr.id, "default", exclude=())
    assert sel is not None and sel.predictor == "Best-LR"
    cands = [i for i in bank.items if sel.skill in i.skills]
    ps = store.item_p_correct(lr.id, cands, pred.lr)
    assert sel.p_correct == pytest.approx(min(ps, key=lambda p: abs(p - 0.7)))
    assert "nearest 0.70" in sel.reason
    store.target_p_correct = 0.99
    easier = store.next_item(lr.id, "default", exclude=())
    assert easier is not None and easier.p_correct == pytest.approx(max(ps))

    # the teacher's at-risk list uses the chosen predictor and says so
    ov = class_overview(store, "default", threshold=0.99)
    assert ov.predictor.startswith("Best-LR (chosen by held-out AUC")
    risky = {r.skill: r.p_correct for a in ov.at_risk if a.learner_id == lr.id for r in a.weak}
    want = store.skill_p_correct({lr.id: list(risky)}, pred.lr)
    assert risky and all(risky[s] == pytest.approx(want[(lr.id, s)]) for s in risky)

    # a refit by another process replaces the cached predictor here
    other = store_of(tutor_home)
    other.set_predictor("default", "BKT", None, {"BKT": 0.7, "Best-LR": 0.6})
    assert store.predictor("default").chosen == "BKT"
    assert store.next_item(lr.id, "default").predictor == "BKT"


def test_fit_kt_without_a_predictor_keeps_bkt_and_says_so(
    tutor_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_of(tutor_home)
    assert class_overview(store, "default").predictor == "BKT (no predictor fitted yet)"
    f = tmp_path / "tiny.csv"
    f.write_text("learner,skill,correct\n" + "".join(f"a,decimals,{i % 2}\n" for i in range(30)))
    rc, _, err = run(capsys, "learners", "fit-kt", "--attempts", str(f))
    assert rc == 0 and "BKT (no held-out comparison: too few learners)" in err
    assert store.predictor("default").chosen == "BKT"
    lr = store.add_learner("x")
    sel = store.next_item(lr.id, "default")
    assert sel is not None and sel.predictor == "BKT"


@pytest.mark.parametrize(
    "text,columns,match",
    [
        ("user,kc\nu,s\n", "", "no column 'learner'"),
        ("learner,skill,correct\nu,s,perhaps\n", "", "must be 0/1"),
        ("learner,skill,correct\n", "", "has no attempts"),
        ("learner,skill,correct\nu,s,1\n", "pupil=learner", "unknown role 'pupil'"),
    ],
)
def test_fit_kt_bad_attempts_file_is_a_clear_error(
    tutor_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    columns: str,
    match: str,
) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text)
    argv = ["learners", "fit-kt", "--attempts", str(f)] + (
        ["--columns", columns] if columns else []
    )
    rc, _, err = run(capsys, *argv)
    assert rc != 0 and match in err
    rc, _, err = run(capsys, "learners", "fit-kt", "--attempts", str(tmp_path / "none.csv"))
    assert rc != 0 and "does not exist" in err
    assert store_of(tutor_home).predictor("default") is None


def test_selection_targets_the_predicted_p_correct() -> None:
    bank = load_default_bank()
    items = [it for it in bank.items if it.skills == ("decimals",)]
    p = {it.id: 0.3 + 0.6 * k / (len(items) - 1) for k, it in enumerate(items)}

    def score(its: list[Item]) -> list[float]:
        return [p[it.id] for it in its]

    for target in (0.5, 0.7, 0.9):
        sel = kt.select_next_item(
            items, bank.skills, {}, kt.BKTParams(), score_items=score, target_p_correct=target
        )
        assert sel is not None and sel.predictor == "Best-LR"
        assert sel.p_correct == min(p.values(), key=lambda v: abs(v - target))
    # recent items are avoided even when one of them fits the target better
    best = min(items, key=lambda it: abs(p[it.id] - 0.7))
    sel = kt.select_next_item(
        items, bank.skills, {}, kt.BKTParams(), exclude={best.id}, score_items=score
    )
    assert sel is not None and sel.item.id != best.id
