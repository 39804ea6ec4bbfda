"""Train the shipped account scoring model: fit on one generator's worlds, read the operating
point on the other generator's.

The worlds and their seeds are `benchmarks/worlds.PLAN` (training, calibration and test seeds never
overlap, and the README's cross-world tables report on the test seeds). The shipped model is fitted
on generator `--fit` and calibrated on the other one, so its operating point was chosen on traffic
unlike the traffic it learned from, as it will be at a provider. Usage:

    .venv/bin/python scripts/train_scorer.py [--kind stumps] [--fit sim] [--scale 0.5] [--calibrate-only]

`--calibrate-only` keeps the shipped model and re-reads only the operating point. Prints each
indicator's effect (its partial dependence) as the markdown table of `docs/scoring.md`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from cross_world import SCORED, calibrate, load, report  # noqa: E402
from worlds import PLAN  # noqa: E402

from distillguard.scoring import DEFAULT_FPR_BUDGET, DEFAULT_SEGMENT_FPR_BUDGET  # noqa: E402
from distillguard.scoring.fit import KINDS, fit  # noqa: E402
from distillguard.scoring.model import DEFAULT_MODEL, REASON_OF_FEATURE, AccountModel  # noqa: E402

MODEL_PATH = ROOT / "src/distillguard/scoring/models" / DEFAULT_MODEL


def effects_table(model: AccountModel, x: np.ndarray) -> str:
    """Each feature's partial dependence: the mean change in log-odds over accounts `x` when the
    feature is set to its 5th, 50th, 95th and 99.5th percentile and its maximum there, against
    its typical (median legitimate) value."""
    qs = (0.05, 0.5, 0.95, 0.995, 1.0)
    rng = np.random.default_rng(0)
    sample = x[rng.choice(len(x), min(len(x), 2000), replace=False)]
    lines = ["| feature | reason code | typical | p5 | p50 | p95 | p99.5 | max |", "|---|---|---|---|---|---|---|---|"]
    for j, name in enumerate(model.features):
        values = np.quantile(x[:, j], qs)

        def mean_logit(v: float, j: int = j) -> float:
            rows = sample.copy()
            rows[:, j] = v
            return float(model.logit(rows).mean())

        base = mean_logit(model.typical[j])
        cells = [f"{mean_logit(v) - base:+.2f} ({v:.3g})" for v in values]
        lines.append(f"| `{name}` | {REASON_OF_FEATURE.get(name, name)} | {model.typical[j]:.3g} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, default="stumps")
    parser.add_argument("--fit", choices=sorted(PLAN), default="sim", help="generator to fit on")
    parser.add_argument("--work", type=Path, default=Path("bench-out/worlds"))
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--calibrate-only", action="store_true", help="Keep the shipped model; recalibrate.")
    args = parser.parse_args()
    other = next(g for g in PLAN if g != args.fit)

    if args.calibrate_only:
        model = AccountModel.load(MODEL_PATH)
    else:
        train = load(PLAN[args.fit]["train"], args.work, args.scale)
        model = fit(args.kind, train.x, train.y, SCORED, np.where(train.y, train.campaign, train.actor))
        model.meta["train"] = PLAN[args.fit]["train"]
        model.meta["scale"] = args.scale
        print(f"fitted {args.kind} on {len(train.y)} accounts ({train.y.sum()} campaign) of {args.fit}")
    calib = load(PLAN[other]["calibrate"], args.work, args.scale)
    threshold = calibrate(model, calib, PLAN[other]["calibrate"])
    model.save(MODEL_PATH)
    print(f"operating point on {other} ({len(calib.y)} accounts): risk > {threshold:.4f} "
          f"(at most {DEFAULT_FPR_BUDGET:.1%} of legitimate accounts, {DEFAULT_SEGMENT_FPR_BUDGET:.2%} per type)")
    for name in PLAN:
        test = load(PLAN[name]["test"], args.work, args.scale)
        r = report(model, threshold, test)
        print(f"test worlds of {name}: recall {r['recall']:.3f}, FPR {r['fpr']:.3%}, ROC-AUC {r['roc_auc']:.4f}")
    print(f"wrote {MODEL_PATH}\n")
    print(effects_table(model, calib.x))


if __name__ == "__main__":
    main()
