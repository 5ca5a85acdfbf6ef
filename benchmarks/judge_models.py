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
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler

    from knowledge_base.embed import bundled_model_path
    from tutor.judge.data import MOVES, load_moves, split_by_problem
    from tutor.judge.features import features
    from tutor.judge.model import MoveClassifier, context_text

    torch.set_num_threads(args.threads)
    rec = Recorder("judge_models", args)
    examples = load_moves(args.data)
    train, held = split_by_problem(examples, 0.2, 0)
    everything = train + held
    tr = np.arange(len(train))
    te = np.arange(len(train), len(everything))
    y = np.array([MOVES.index(e.label) for e in everything])
    groups = np.array([e.group for e in train])
    wanted = [[int(k) for k in t.split("+")] for t in args.layers.split(",") if t.strip()]
    layers = sorted({k for t in wanted for k in t})

    num = np.array([features(e) for e in everything])
    scaler = StandardScaler().fit(num[tr])
    reps: dict[str, tuple[Any, Callable[[Any], Any]]] = {}
    reps["features"] = (scaler.transform(num), lambda e: scaler.transform([features(e)]))
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    tfidf.fit([e.reply for e in train])

    def tf_one(e: Any) -> Any:
        return hstack([tfidf.transform([e.reply]), csr_matrix(scaler.transform([features(e)]))])

    x_tf = hstack([tfidf.transform([e.reply for e in everything]), csr_matrix(reps["features"][0])])
    reps["tf-idf"] = (x_tf.tocsr(), lambda e: tf_one(e).tocsr())

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(bundled_model_path()), device="cpu")

    def st_pair(es: Sequence[Any]) -> Any:
        r = st.encode([e.reply for e in es], batch_size=64, normalize_embeddings=True)
        c = [context_text(e.problem, e.student, e.answer) for e in es]
        return np.hstack([r, st.encode(c, batch_size=64, normalize_embeddings=True)])

    t0 = time.perf_counter()
    x_st = st_pair(everything)
    rec.meta(minilm_encode_s=round(time.perf_counter() - t0, 1))
    reps["MiniLM (frozen)"] = (
        np.hstack([x_st, reps["features"][0]]),
        lambda e: np.hstack([st_pair([e]), scaler.transform([features(e)])]),
    )
    t0 = time.perf_counter()
    states, lm_one = _lm_states(everything, layers, args.ctx_tokens)
    rec.meta(lm_states_s=round(time.perf_counter() - t0, 1), ctx_tokens=args.ctx_tokens)
    for ks in wanted:
        x_lm = np.hstack([states[k] for k in ks])
        sk = StandardScaler().fit(x_lm[tr])
        label = "+".join(str(k) for k in ks)
        reps[f"SmolLM2 layer{'s' * (len(ks) > 1)} {label} (frozen)"] = (
            np.hstack([sk.transform(x_lm), reps["features"][0]]),
            lambda e, ks=ks, sk=sk: np.hstack(
                [
                    sk.transform([np.hstack([lm_one(e)[k] for k in ks])]),
                    scaler.transform([features(e)]),
                ]
            ),
        )

    rows, probs, scores = [], {}, {}
    for name, (x, one) in reps.items():
        c, cv = _cv_pick(x[tr], y[tr], groups)
        m = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x[tr], y[tr])
        probs[name] = m.predict_proba(x[te])
        t0 = time.perf_counter()
        for e in held[:TIMED]:
            m.predict_proba(one(e))
        ms = (time.perf_counter() - t0) * 1000 / TIMED
        scores[name] = cv
        rows.append((name, f"{c:g}", cv, probs[name], ms))
        print(f"{name}: C={c:g} cv {cv:.3f}", flush=True)

    shipped = MoveClassifier.load()
    probs["shipped"] = np.asarray(shipped.probabilities(held))
    t0 = time.perf_counter()
    for e in held[:TIMED]:
        shipped.probabilities([e])
    ms_shipped = (time.perf_counter() - t0) * 1000 / TIMED
    rows.append(("shipped classifier (MiniLM + LoRA)", "–", None, probs["shipped"], ms_shipped))
    best = max(scores, key=lambda k: scores[k])
    ms_best = next(r[4] for r in rows if r[0] == best)
    both = (probs["shipped"] + probs[best]) / 2
    rows.append((f"shipped + {best}", "–", None, both, ms_shipped + ms_best))

    table = []
    for name, c, cv, p, ms in rows:
        per = f1_score(y[te], p.argmax(1), average=None, labels=range(len(MOVES)))
        macro = float(np.mean(per))
        rec.samples(name, {"per_move_f1": per.tolist(), "macro_f1": macro, "cv_macro_f1": cv})
        table.append(
            [
                name,
                c,
                "–" if cv is None else f"{cv:.3f}",
                *(f"{v:.3f}" for v in per),
                f"{macro:.3f}",
                f"{ms:.0f}",
            ]
        )
    rec.meta(
        examples=len(everything),
        train=len(train),
        heldout=len(held),
        heldout_problems=len({e.group for e in held}),
        best_frozen=best,
    )
    cols = [
        "judge",
        "C (by CV)",
        "CV macro-F1 (train problems)",
        *(f"{m} F1" for m in MOVES),
        "held-out macro-F1",
        "ms/turn",
    ]
    print(rec.table("judges", cols, table, align="lrrrrrrrr"))
    rec.write()


if __name__ == "__main__":
    main()
