"""Baseline detectors that the real detector is measured against.

Both follow the scikit-learn discipline: parameters in `__init__`, learned state with a trailing
underscore, `fit(features)` then `score(features)`, where `features` is the per-account table of
`distillguard.evaluate.features.FEATURE_SCHEMA`. `score` returns the contract columns of
`accounts.csv` (account_id, risk, flagged, cluster_id, reasons) as an Arrow table, so the
harness treats baselines and the real detector alike. Neither baseline links accounts, so
`cluster_id` is always empty.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyarrow as pa
from sklearn.ensemble import IsolationForest

from distillguard.evaluate.tables import PREDICTION_SCHEMA


class AccountDetector(Protocol):
    """What the harness needs from a detector working on per-account features."""

    def fit(self, features: pa.Table) -> AccountDetector: ...

    def score(self, features: pa.Table) -> pa.Table: ...


def scores_table(account_id: pa.Array, risk: np.ndarray, flagged: np.ndarray, reasons: list[str]) -> pa.Table:
    """Assemble the contract columns; cluster ids are null because baselines find no clusters."""
    return pa.table(
        {
            "account_id": account_id,
            "risk": pa.array(risk, pa.float64()),
            "flagged": pa.array(flagged, pa.bool_()),
            "cluster_id": pa.nulls(len(risk), pa.string()),
            "reasons": pa.array(reasons, pa.string()),
        },
        schema=PREDICTION_SCHEMA,
    )


def rate_limit_reasons(minute_load: float, day_load: float) -> str:
    """Codes of the limits exceeded (load above 1), the most exceeded first."""
    loads = sorted(((minute_load, "rate_limit_minute"), (day_load, "rate_limit_day")), reverse=True)
    return ";".join(code for load, code in loads if load > 1.0)


class RateLimitBaseline:
    """Per-account rate limiting, the industry default.

    An account is flagged when, in any UTC calendar minute, it sent more than `rpm` requests,
    or, in any UTC calendar day, more than `per_day` (fixed windows, as API limits are usually
    counted). With x = max(peak minute / rpm, peak day / per_day), the load relative to the
    tighter limit, risk = x / (1 + x): monotone in x, near 0 for a light account, exactly 0.5 at the
    limit and approaching 1 far above it, so `flagged` is the same as `risk > 0.5`.
    Reasons: `rate_limit_minute`, `rate_limit_day`, the most exceeded first.
    """

    def __init__(self, rpm: int = 60, per_day: int = 10_000) -> None:
        self.rpm = rpm
        self.per_day = per_day

    def fit(self, features: pa.Table) -> RateLimitBaseline:
        """Nothing to learn: limits are fixed policy. Kept for the common detector interface."""
        return self

    def score(self, features: pa.Table) -> pa.Table:
        minute = features.column("peak_minute_rate").to_numpy() / self.rpm
        day = features.column("peak_daily_rate").to_numpy() / self.per_day
        load = np.maximum(minute, day)
        reasons = [rate_limit_reasons(m, d) for m, d in zip(minute.tolist(), day.tolist(), strict=True)]
        return scores_table(features.column("account_id"), load / (1.0 + load), load > 1.0, reasons)


# Statistics the anomaly baseline looks at. Counts, rates, token means and the ratio are
# heavy-tailed, so they enter as log1p; the single-turn share is already in [0, 1].
ANOMALY_LOG_FEATURES = (
    "n_exchanges",
    "active_days",
    "mean_hourly_rate",
    "peak_hourly_rate",
    "mean_input_tokens",
    "mean_output_tokens",
    "output_input_ratio",
    "n_models",
    "n_ips",
)
ANOMALY_LINEAR_FEATURES = ("single_turn_share",)


def anomaly_matrix(features: pa.Table) -> np.ndarray:
    """The model input: one row per account, log1p of heavy-tailed statistics, shares as they are."""
    logged = [np.log1p(features.column(name).to_numpy().astype(np.float64)) for name in ANOMALY_LOG_FEATURES]
    linear = [features.column(name).to_numpy().astype(np.float64) for name in ANOMALY_LINEAR_FEATURES]
    return np.column_stack(logged + linear)


class AnomalyBaseline:
    """Unsupervised per-account anomaly detection with an Isolation Forest.

    Risk is the anomaly score of the Isolation Forest paper (Liu et al. 2008),
    s = 2^(-E[h(x)] / c(n)), which scikit-learn exposes as `-score_samples`: already in (0, 1],
    about 0.5 for ordinary accounts and near 1 for accounts isolated in few splits; it does not
    depend on the other accounts' scores, so it is comparable across runs of the same model.
    `flagged` is the model's own decision at `contamination`: the `contamination` share of the
    fitted accounts with the highest risk. Reason: `anomaly`.
    """

    def __init__(self, contamination: float = 0.01, n_estimators: int = 200, random_state: int = 0) -> None:
        self.contamination = contamination
        self.n_estimators = n_estimators
        self.random_state = random_state

    def fit(self, features: pa.Table) -> AnomalyBaseline:
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            contamination=self.contamination,
            random_state=self.random_state,
        ).fit(anomaly_matrix(features))
        return self

    def score(self, features: pa.Table) -> pa.Table:
        matrix = anomaly_matrix(features)
        risk = -self.forest_.score_samples(matrix)
        flagged = self.forest_.predict(matrix) == -1
        return scores_table(
            features.column("account_id"), risk, flagged, ["anomaly" if f else "" for f in flagged]
        )
