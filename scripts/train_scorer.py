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
from sklearn.linear_model import LogisticRegression

from distillguard.engines.local import account_table_for_training
from distillguard.scoring.model import DEFAULT_MODEL, AccountModel, feature_matrix
from distillguard.sim import simulate

TRAIN = [("medium", 101), ("adaptive", 102), ("small", 103), ("adaptive", 104)]
CALIBRATE = [("medium", 201), ("adaptive", 202)]
MODEL_PATH = Path(__file__).resolve().parents[1] / "src/distillguard/scoring/models" / DEFAULT_MODEL


def labelled_features(scenario: str, seed: int, work: Path, scale: float) -> pa.Table:
    cache = work / f"{scenario}-{seed}-{scale}.parquet"
    if cache.exists():
        return pq.read_table(cache)
    sim_dir = work / f"{scenario}-{seed}-{scale}"
    if not (sim_dir / "truth.csv").exists():
        simulate(scenario, seed, sim_dir, scale=scale)
    table = account_table_for_training(sim_dir)
    with (sim_dir / "truth.csv").open() as fh:
        labels = {row["account_id"]: row["label"] == "campaign" for row in csv.DictReader(fh)}
    table = table.append_column("label", pa.array([labels[a] for a in table.column("account_id").to_pylist()]))
    pq.write_table(table, cache)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-out/train"))
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--C", type=float, default=0.3, help="inverse L2 regularisation strength")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    train = pa.concat_tables([labelled_features(s, seed, args.work, args.scale) for s, seed in TRAIN])
    calib = pa.concat_tables([labelled_features(s, seed, args.work, args.scale) for s, seed in CALIBRATE])
    features = tuple(n for n in train.column_names if n not in {"account_id", "n_exchanges", "label"})
    x = feature_matrix(train, features)
    y = np.asarray(train.column("label").to_pylist())
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    clf = LogisticRegression(C=args.C, max_iter=5000).fit((x - mean) / scale, y)
    model = AccountModel(
        features=features,
        mean=mean,
        scale=scale,
        coef=clf.coef_[0],
        intercept=float(clf.intercept_[0]),
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
