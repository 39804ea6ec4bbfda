"""Train the shipped account scoring model on simulated traffic with ground truth.

The model is fit on training seeds, its operating point (the distribution of legitimate risks) is
read on separate calibration seeds, and neither set overlaps the seeds reported in the README
(`benchmarks/evaluate_detection.py` uses seeds 1 and 2). Usage:

    .venv/bin/python scripts/train_scorer.py [--work bench-out/train] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.optimize import minimize

from distillguard.behaviour.features import FEATURES
from distillguard.engines.local import account_table_for_training
from distillguard.linking import CLUSTER_FEATURES
from distillguard.scoring.model import DEFAULT_MODEL, SUSPICIOUS_DIRECTION, AccountModel, feature_matrix
from distillguard.sim import simulate

TRAIN = [("medium", 101), ("adaptive", 102), ("large", 103)]
CALIBRATE = [("medium", 201), ("adaptive", 202)]
MODEL_PATH = Path(__file__).resolve().parents[1] / "src/distillguard/scoring/models" / DEFAULT_MODEL


def labelled_features(scenario: str, seed: int, work: Path, scale: float) -> pa.Table:
    name = f"{scenario}-{seed}-{scale}"
    cache = work / f"{name}.parquet"
    if cache.exists():
        return pq.read_table(cache)
    sim_dir = work / name
    if not (sim_dir / "truth.csv").exists():
        # A quarter of `large` mixes naive and adaptive campaigns at about the size of `medium`.
        simulate(scenario, seed, sim_dir, scale=scale / 4 if scenario == "large" else scale)
    table = account_table_for_training(sim_dir)
    with (sim_dir / "truth.csv").open() as fh:
        labels = {row["account_id"]: row["label"] == "campaign" for row in csv.DictReader(fh)}
    table = table.append_column("label", pa.array([labels[a] for a in table.column("account_id").to_pylist()]))
    pq.write_table(table, cache)
    return table


def fit_sign_constrained(z: np.ndarray, y: np.ndarray, signs: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression whose weights agree in sign with `signs` (L-BFGS-B bounds)."""
    t = np.where(y, 1.0, -1.0)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:-1], params[-1]
        margin = t * (z @ w + b)
        value = np.logaddexp(0, -margin).sum() + 0.5 / c * w @ w
        g = -t * np.exp(-np.logaddexp(0, margin))  # d loss / d score
        return value, np.append(z.T @ g + w / c, g.sum())

    bounds = [(0, None) if s > 0 else (None, 0) for s in signs] + [(None, None)]
    result = minimize(loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 5000})
    return result.x[:-1], float(result.x[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-out/train"))
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--C", type=float, default=0.3, help="inverse L2 regularisation strength")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    train = pa.concat_tables([labelled_features(s, seed, args.work, args.scale) for s, seed in TRAIN])
    calib = pa.concat_tables([labelled_features(s, seed, args.work, args.scale) for s, seed in CALIBRATE])
    features = (*FEATURES, *CLUSTER_FEATURES)
    x = feature_matrix(train, features)
    y = np.asarray(train.column("label").to_pylist())
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    signs = np.array([SUSPICIOUS_DIRECTION.get(f, 1) for f in features])
    coef, intercept = fit_sign_constrained((x - mean) / scale, y, signs, args.C)
    model = AccountModel(
        features=features,
        mean=mean,
        scale=scale,
        coef=coef,
        intercept=intercept,
        meta={"train": [f"{s}:{seed}" for s, seed in TRAIN], "calibrate": [f"{s}:{seed}" for s, seed in CALIBRATE],
              "scale": args.scale, "C": args.C},
    )
    xc = feature_matrix(calib, features)
    yc = np.asarray(calib.column("label").to_pylist())
    model.legit_risks = np.sort(model.risk(xc[~yc]))
    model.save(MODEL_PATH)
    thr = model.threshold(0.001)
    rc = model.risk(xc)
    print(f"train accounts {len(y)} ({y.sum()} campaign), calibration {len(yc)} ({yc.sum()} campaign)")
    print(f"threshold at 0.1% FPR: {thr:.4f}; calibration recall {np.mean(rc[yc] > thr):.3f}")
    for name, c in sorted(zip(features, model.coef, strict=True), key=lambda t: -abs(t[1])):
        print(f"  {name:28s} {c:+.3f}")
    print(f"wrote {MODEL_PATH}")


if __name__ == "__main__":
    main()
