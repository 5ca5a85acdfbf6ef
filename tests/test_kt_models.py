"""Learner models beyond BKT: the answer log and its file formats, the simulator, Best-LR/PFA,
and the side-by-side comparison (tutor.kt_data, tutor.kt_sim, tutor.kt_lr, tutor.kt_models)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tutor import kt, kt_lr, kt_models, kt_sim
from tutor.errors import InputError
from tutor.kt_data import Answer, AnswerLog, AttemptsFileError, load_answers


def small_log() -> AnswerLog:
    h = 3600.0
    return AnswerLog.from_answers(
        [
            Answer("a", ("x",), False, "i1", 0.0),
            Answer("a", ("x",), True, "i2", 0.5 * h),
            Answer("a", ("x", "y"), True, "i3", 2 * h),
            Answer("a", ("y",), False, "i1", 50 * h),
            Answer("b", ("y",), True, "i1", 0.0),
        ]
    )


def test_group_prior_counts_only_earlier_rows_of_the_same_group() -> None:
    keys = np.array([0, 1, 0, 0, 1])
    y = np.array([1, 0, 0, 1, 1])
    t = np.array([0.0, 10.0, 100.0, 5000.0, 90000.0])
    g = kt_lr.group_prior(keys, y, t)
    assert g["count"].tolist() == [0, 0, 1, 2, 1]
    assert g["wins"].tolist() == [0, 0, 1, 1, 0]
    # within the last hour row 3 (t=5000) sees nothing (row 2 is at t=100 < 5000-3600)
    assert g["count_3600"].tolist() == [0, 0, 1, 0, 0]
    assert g["count_86400"].tolist() == [0, 0, 1, 2, 0]
    assert np.isnan(g["gap"][0]) and g["gap"][2] == 100.0 and g["gap"][4] == 89990.0


def test_answer_log_keeps_multi_skill_answers_on_one_row() -> None:
    log = small_log()
    assert len(log) == 5 and log.skills == ["x", "y"] and log.items == ["i1", "i2", "i3"]
    assert log.skill_sequences() == {"x": {"a": [0, 1, 1]}, "y": {"a": [1, 0], "b": [1]}}
    # BKT's prediction of the two-skill answer is the mean over its skills
    p = kt.BKTParams()
    pred = kt_models.bkt_predict(log, {}, p)
    px, _ = kt.trace([0, 1], p)
    assert pred[2] == pytest.approx(
        (kt.p_correct(kt.update(kt.update(p.prior, False, p), True, p), p) + p_correct_prior(p)) / 2
    )
    assert pred[0] == pytest.approx(px[0])
    train, test = log.split(seed=0)
    assert len(train) + len(test) == 5 and set(train.learners).isdisjoint(test.learners)
    assert [a.skills for a in log.answers()][2] == ("x", "y")


def p_correct_prior(p: kt.BKTParams) -> float:
    return kt.p_correct(p.prior, p)


def test_csv_merges_an_answer_repeated_per_skill_and_splits_skill_lists(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text(
        "user,kc,ok,order_id,problem\n"
        "u1,add,1,10,p1\n"
        "u1,sub,1,10,p1\n"  # the same answer (order 10, item p1) tagged with a second skill
        "u1,add;mul,0,11,p2\n"
        "u2,add,1,5,p1\n"
    )
    log = load_answers(f, "learner=user,skill=kc,correct=ok,order=order_id,item=problem")
    ans = log.answers()
    assert [(a.learner, a.skills, a.correct) for a in ans] == [
        ("u1", ("add", "sub"), True),
        ("u1", ("add", "mul"), False),
        ("u2", ("add",), True),
    ]
    j = tmp_path / "a.jsonl"
    j.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"learner": "x", "skill": "s", "correct": True, "time": "2026-01-01T10:00:00Z"},
                {"learner": "x", "skill": "s", "correct": "0", "time": "2026-01-01T11:00:00Z"},
            ]
        )
    )
    jl = load_answers(j)
    assert jl.has_time and jl.time[1] - jl.time[0] == 3600.0


def test_three_line_format(tmp_path: Path) -> None:
    f = tmp_path / "builder_train.csv"
    f.write_text("3\n1,2,1,\n1,0,1,\n2\n2,1_2\n0,1\n")
    log = load_answers(f)
    assert len(log.learners) == 2 and len(log) == 5
    assert [a.skills for a in log.answers()][-1] == ("1", "2")
    f.write_text("3\n1,2\n1,0,1\n")
    with pytest.raises(AttemptsFileError, match="says 3 answers but has 2 skills"):
        load_answers(f)


@pytest.mark.parametrize(
    "text,columns,match",
    [
        ("a,b\n1,2\n", None, "no column 'learner'"),
        ("learner,skill,correct\nx,s,maybe\n", None, "must be 0/1"),
        ("learner,skill,correct\nx,,1\n", None, "the skill"),
        ("learner,skill,correct,order\nx,s,1,soon\n", None, "number or an ISO time"),
        ("learner,skill,correct\n", None, "has no attempts"),
    ],
)
def test_bad_attempts_files_get_a_clear_error(tmp_path: Path, text: str, columns, match) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InputError, match=match):
        load_answers(f, columns)
    with pytest.raises(InputError, match="unknown role"):
        load_answers(f, "student=x")
    with pytest.raises(InputError, match="does not exist"):
        load_answers(tmp_path / "none.csv")


def test_best_lr_beats_bkt_on_learners_with_ability_and_item_difficulty() -> None:
    data = kt_sim.simulate(kt_sim.SimConfig(n_learners=500), seed=4)
    train, test = data.log.split(seed=0)
    c = kt_models.compare(train, test, kt.BKTParams())
    auc = {m: kt.auc(c.y, p) for m, p in c.preds.items()}
    assert auc["Best-LR"] > auc["BKT fitted (EM)"] + 0.04, auc
    assert auc["Best-LR"] > auc["PFA"] + 0.03 and auc["Best-LR"] > auc["learner running rate"]
    # the simulator's own P(correct) is the ceiling nobody passes by much
    held = np.isin(data.log.learner, [data.log.learners.index(n) for n in test.learners])
    assert auc["Best-LR"] < kt.auc(test.correct, data.p_true[held]) + 0.01
    assert kt_models.choose({"Best-LR": auc["Best-LR"], "BKT": auc["BKT fitted (EM)"]}) == "Best-LR"
    assert kt_models.choose({"Best-LR": 0.6, "BKT": 0.7}) == "BKT"


def test_lr_model_round_trips_through_json_and_predicts_from_history() -> None:
    data = kt_sim.simulate(kt_sim.SimConfig(n_learners=60), seed=2)
    m = kt_lr.fit(data.log)
    again = kt_lr.LRModel.from_dict(json.loads(json.dumps(m.to_dict())))
    assert np.allclose(m.predict(data.log), again.predict(data.log), atol=1e-5)
    hist = [a for a in data.log.answers() if a.learner == "sim-0"]
    right = [Answer("sim-0", hist[0].skills, True, hist[0].item, hist[0].time)] * 6
    wrong = [Answer("sim-0", hist[0].skills, False, hist[0].item, hist[0].time)] * 6
    cand = [Answer("sim-0", hist[0].skills, False, hist[0].item, hist[0].time)]
    # more earlier right answers on the skill -> a higher predicted success
    assert m.predict_next(right, cand)[0] > m.predict_next(wrong, cand)[0]
    bad = m.to_dict()
    bad["coef"] = bad["coef"][:-1]
    with pytest.raises(InputError, match="weights"):
        kt_lr.LRModel.from_dict(bad)
    with pytest.raises(InputError, match="malformed"):
        kt_lr.LRModel.from_dict({"name": "x"})


def test_simulator_has_ability_difficulty_and_forgetting() -> None:
    data = kt_sim.simulate(kt_sim.SimConfig(n_learners=300), seed=1)
    log = data.log
    assert log.has_time and len(log.items) > 100
    # multi-skill items exist and learners differ in ability: per-learner rates spread widely
    assert (np.bincount(log.pair_answer) > 1).any()
    rates = [log.correct[log.learner == i].mean() for i in range(len(log.learners))]
    assert np.std(rates) > 0.12
    # harder bank difficulty -> lower correct rate
    diff = np.array([data.bank_difficulty[log.items[i]] for i in log.item])
    assert log.correct[diff == 1].mean() > log.correct[diff == 5].mean() + 0.2


def test_bkt_skills_fitted_in_parallel_equal_the_serial_fit() -> None:
    log = kt_sim.simulate(kt_sim.SimConfig(n_learners=80, n_skills=3), seed=6).log
    seen: list[str] = []

    def progress(it, total, desc):
        seen.append(f"{desc}/{total}")
        return it

    one = kt_models.fit_bkt(log, restarts=1, max_iter=30)
    two = kt_models.fit_bkt(log, restarts=1, max_iter=30, workers=2, progress=progress)
    assert set(one) == set(two) == set(log.skills) and seen == ["BKT per skill/3"]
    for s in one:
        assert one[s].params == two[s].params


def test_the_eval_reports_every_model_on_a_three_line_log(tmp_path: Path) -> None:
    from evals.learner_model import SAMPLE_ANSWERS, SAMPLE_SEQUENCES, evaluate

    data = kt_sim.simulate(kt_sim.SimConfig(n_learners=150), seed=9)
    bounds = data.log.learner_bounds()
    ans = data.log.answers()
    lines = []
    for i in range(len(data.log.learners)):
        rows = ans[bounds[i] : bounds[i + 1]]
        lines += [
            str(len(rows)),
            ",".join("_".join(a.skills) for a in rows),
            ",".join(str(int(a.correct)) for a in rows),
        ]
    f = tmp_path / "kt.txt"
    f.write_text("\n".join(lines) + "\n")
    train, test = load_answers(f).split(0, "x")
    r = evaluate(train, test, kt.BKTParams())
    assert set(r["models"]) == {
        "BKT fitted (EM)",
        "BKT defaults",
        "PFA",
        "Best-LR",
        "learner running rate",
        "per-skill rate",
    }
    for m in r["models"].values():
        lo, hi = m["auc_ci95"]
        assert lo <= m["auc"] <= hi and hi - lo < 0.15
    assert r["chosen_predictor"] in ("Best-LR", "BKT fitted (EM)")
    seqs = r["sequences_sampled"]
    assert len(seqs) == min(SAMPLE_SEQUENCES, len(test.learners))
    assert all(len(s["y"]) <= SAMPLE_ANSWERS and len(s["p"]["PFA"]) == len(s["y"]) for s in seqs)
