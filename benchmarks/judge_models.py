"""Which model should judge tutor moves? Held-out macro-F1 and CPU cost of the candidates.

The move classifier of ``tutor judge`` (issue 15) is chosen "by held-out score and CPU speed".
This script scores, on the judge's own split of the MathDial sample (``tutor judge train``'s
defaults: 20% of the problems held out, seed 0), the shipped classifier against simpler and
larger representations, each with the judge's six number features and a logistic regression
(class-balanced; its C picked by 5-fold cross-validation grouped by problem on the training
problems only, so the held-out part chooses nothing):

- ``features``: the six number features alone;
- ``tf-idf``: the reply's words and word pairs;
- ``MiniLM (frozen)``: the bundled sentence encoder's vectors of the reply and of the context;
- ``SmolLM2 layer k (frozen)``: the bundled LM's hidden states over the reply's tokens (mean and
  last token), read after the context (problem cut first, 160 tokens), at layer k (or two
  layers side by side);
- ``shipped classifier``: ``tutor/judge/weights/moves.*`` (MiniLM + LoRA, fine-tuned);
- ``shipped + best frozen``: the average of the shipped classifier's probabilities and those of
  the representation with the best cross-validated score (weights fixed at 1/2 beforehand).

ms/turn is one turn at a time on the benchmark's thread count, encoding included. What it cannot
see: labels of other datasets (MathDial's moves were chosen by crowd teachers as they wrote, and
some are inconsistent: "yes that's correct." is labelled telling), and the 231 held-out turns of
36 problems move per-move F1 by several points between splits.

    python benchmarks/judge_models.py [--threads 2] [--layers 8,16,24,30,16+24]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from results import Recorder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TUTOR_SHARED_DATA") or ROOT.parent / "shared" / "data")
GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
TIMED = 40  # held-out turns timed one at a time


def _lm_states(examples: Sequence[Any], layers: Sequence[int], ctx_tokens: int) -> Any:
    """{layer: array [n, 2 * hidden]}: the bundled LM's states over each reply (mean, last)."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tutor.config import load_config
    from tutor.lm.resolve import ensure_bundled_cache

    d = ensure_bundled_cache("smollm2-135m-instruct", load_config().paths.models_dir)
    tok = AutoTokenizer.from_pretrained(str(d))
    lm = AutoModelForCausalLM.from_pretrained(str(d), dtype=torch.float32).eval()
    top = max(layers)
    lm.model.layers = lm.model.layers[:top]  # nothing above the highest layer read is run

    def one(e: Any) -> dict[int, Any]:
        ctx = f"Problem: {e.problem}\nAnswer: {e.answer}\nStudent: {e.student}\nTeacher:"
        a = tok(ctx, add_special_tokens=False)["input_ids"][-ctx_tokens:]
        b = tok(" " + e.reply, add_special_tokens=False)["input_ids"][:64]
        with torch.inference_mode():
            ids = torch.tensor([a + b])
            hs = lm.model(ids, output_hidden_states=True, use_cache=False).hidden_states
        out = {}
        for k in layers:
            h = hs[k][0, len(a) :]
            out[k] = torch.cat([h.mean(0), h[-1]]).numpy()
        return out

    rows = [one(e) for e in examples]
    return {k: np.stack([r[k] for r in rows]) for k in layers}, one


def _cv_pick(x: Any, y: Any, groups: Any) -> tuple[float, float]:
    """(C, mean macro-F1) of the best C on 5 folds grouped by problem."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold

    best = (GRID[0], -1.0)
    for c in GRID:
        scores = []
        for a, b in GroupKFold(5).split(x, y, groups):
            m = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x[a], y[a])
            scores.append(f1_score(y[b], m.predict(x[b]), average="macro"))
        if np.mean(scores) > best[1]:
            best = (c, float(np.mean(scores)))
    return best


Rep = tuple[Any, Callable[[Any], Any]]  # (all examples' rows, one example -> its row)


def _text_reps(train: Sequence[Any], everything: Sequence[Any], rec: Recorder) -> dict[str, Rep]:
    """The number features alone, tf-idf and frozen MiniLM, each with the number features."""
    import numpy as np
    from scipy.sparse import csr_matrix, hstack
    from sentence_transformers import SentenceTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import StandardScaler

    from knowledge_base.embed import bundled_model_path
    from tutor.judge.features import features
    from tutor.judge.model import context_text

    scaler = StandardScaler().fit([features(e) for e in train])
    x_num = scaler.transform([features(e) for e in everything])
    reps: dict[str, Rep] = {"features": (x_num, lambda e: scaler.transform([features(e)]))}
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    tfidf.fit([e.reply for e in train])

    def tf_one(e: Any) -> Any:
        return hstack([tfidf.transform([e.reply]), csr_matrix(scaler.transform([features(e)]))])

    x_tf = hstack([tfidf.transform([e.reply for e in everything]), csr_matrix(x_num)])
    reps["tf-idf"] = (x_tf.tocsr(), lambda e: tf_one(e).tocsr())
    st = SentenceTransformer(str(bundled_model_path()), device="cpu")

    def st_pair(es: Sequence[Any]) -> Any:
        r = st.encode([e.reply for e in es], batch_size=64, normalize_embeddings=True)
        c = [context_text(e.problem, e.student, e.answer) for e in es]
        return np.hstack([r, st.encode(c, batch_size=64, normalize_embeddings=True)])

    t0 = time.perf_counter()
    x_st = st_pair(everything)
    rec.meta(minilm_encode_s=round(time.perf_counter() - t0, 1))
    reps["MiniLM (frozen)"] = (
        np.hstack([x_st, x_num]),
        lambda e: np.hstack([st_pair([e]), scaler.transform([features(e)])]),
    )
    return reps


def _lm_reps(
    numbers: Rep,
    n_train: int,
    everything: Sequence[Any],
    wanted: Sequence[Sequence[int]],
    args: Any,
    rec: Recorder,
) -> dict[str, Rep]:
    """The bundled LM's states at each layer (or layers side by side) of ``wanted``, each beside
    the number features ``numbers`` (the "features" representation of ``_text_reps``)."""
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    x_num, num_one = numbers
    t0 = time.perf_counter()
    states, lm_one = _lm_states(everything, sorted({k for t in wanted for k in t}), args.ctx_tokens)
    rec.meta(lm_states_s=round(time.perf_counter() - t0, 1), ctx_tokens=args.ctx_tokens)
    reps: dict[str, Rep] = {}
    for ks in wanted:
        x_lm = np.hstack([states[k] for k in ks])
        sk = StandardScaler().fit(x_lm[:n_train])
        label = "+".join(str(k) for k in ks)

        def one(e: Any, ks: Sequence[int] = ks, sk: Any = sk) -> Any:
            row = sk.transform([np.hstack([lm_one(e)[k] for k in ks])])
            return np.hstack([row, num_one(e)])

        reps[f"SmolLM2 layer{'s' * (len(ks) > 1)} {label} (frozen)"] = (
            np.hstack([sk.transform(x_lm), x_num]),
            one,
        )
    return reps


def _fitted_rows(
    reps: dict[str, Rep], train: Sequence[Any], held: Sequence[Any], y: Any
) -> list[tuple[str, str, float | None, Any, float]]:
    """(judge, C, CV macro-F1, held-out probabilities, ms/turn) per representation, then the
    shipped classifier and its average with the representation that cross-validated best."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from tutor.judge.model import MoveClassifier

    tr, groups = np.arange(len(train)), np.array([e.group for e in train])
    te = np.arange(len(train), len(train) + len(held))
    rows: list[tuple[str, str, float | None, Any, float]] = []
    for name, (x, one) in reps.items():
        c, cv = _cv_pick(x[tr], y[tr], groups)
        m = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x[tr], y[tr])
        t0 = time.perf_counter()
        for e in held[:TIMED]:
            m.predict_proba(one(e))
        rows.append((name, f"{c:g}", cv, m.predict_proba(x[te]), _ms(t0)))
        print(f"{name}: C={c:g} cv {cv:.3f}", flush=True)
    best = max(rows, key=lambda r: r[2] or 0.0)
    shipped = MoveClassifier.load()
    p_shipped = np.asarray(shipped.probabilities(held))
    t0 = time.perf_counter()
    for e in held[:TIMED]:
        shipped.probabilities([e])
    ms = _ms(t0)
    rows.append(("shipped classifier (MiniLM + LoRA)", "–", None, p_shipped, ms))
    rows.append((f"shipped + {best[0]}", "–", None, (p_shipped + best[3]) / 2, ms + best[4]))
    return rows


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000 / TIMED


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(SHARED / "dialogues" / "mathdial_sample.jsonl"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--layers",
        default="8,16,24,30,16+24",
        help="LM layers to read, comma-separated (a+b: both)",
    )
    ap.add_argument("--ctx-tokens", type=int, default=160)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch
    from sklearn.metrics import f1_score

    from tutor.judge.data import MOVES, load_moves, split_by_problem

    torch.set_num_threads(args.threads)
    rec = Recorder("judge_models", args)
    train, held = split_by_problem(load_moves(args.data), 0.2, 0)
    everything = train + held
    y = np.array([MOVES.index(e.label) for e in everything])
    wanted = [[int(k) for k in t.split("+")] for t in args.layers.split(",") if t.strip()]
    reps = _text_reps(train, everything, rec)
    reps |= _lm_reps(reps["features"], len(train), everything, wanted, args, rec)
    rows = _fitted_rows(reps, train, held, y)
    table = []
    for name, c, cv, p, ms in rows:
        per = f1_score(y[len(train) :], p.argmax(1), average=None, labels=range(len(MOVES)))
        macro = float(np.mean(per))
        rec.samples(name, {"per_move_f1": per.tolist(), "macro_f1": macro, "cv_macro_f1": cv})
        cells = [f"{v:.3f}" for v in [*per, macro]]
        table.append([name, c, "–" if cv is None else f"{cv:.3f}", *cells, f"{ms:.0f}"])
    rec.meta(
        examples=len(everything),
        train=len(train),
        heldout=len(held),
        heldout_problems=len({e.group for e in held}),
        best_frozen=rows[-1][0].removeprefix("shipped + "),
    )
    cols = ["judge", "C (by CV)", "CV macro-F1 (train problems)", *(f"{m} F1" for m in MOVES)]
    cols += ["held-out macro-F1", "ms/turn"]
    print(rec.table("judges", cols, table, align="lrrrrrrrr"))
    rec.write()


if __name__ == "__main__":
    main()
