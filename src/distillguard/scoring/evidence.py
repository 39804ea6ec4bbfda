"""Evidence scoring: each indicator adds a bounded, non-negative amount of log-odds, and they sum.

    logit(x) = baseline + sum_f g_f(x_f),   g_f(v) = sum_k w_fk * ramp_k(direction_f * v)

Every `g_f` is a non-decreasing piecewise-linear function of the feature taken in its suspicious
direction (`model.SUSPICIOUS_DIRECTION`): knots at fixed quantiles of the training accounts,
weights `w_fk >= 0`. So

- strong evidence can only raise risk, whatever the account's size or its cluster's: there is no
  feature that can lower risk, and no interaction through which "small" or "few accounts" can
  cancel elicitation, template concentration or coordination;
- each indicator's whole effect is bounded (`max_logodds` per feature at fitting), so no single
  feature of one simulator can carry the verdict alone; flagging takes several independent traces;
- the reason codes are exact: an indicator's contribution is `g_f(x) - g_f(typical)`, read off
  the same sum that makes the score, and `g_f` itself is the feature's partial dependence.

The weights are fitted by penalised logistic regression under those bounds (L-BFGS-B), with each
campaign and each legitimate actor type weighted as a whole, so that a 10-account operation counts
as much as a 20,000-account reseller and a rare hard case as much as the crowd of chat users.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from distillguard.scoring.model import (
    REASON_MIN_LOGODDS,
    REASON_OF_FEATURE,
    SUSPICIOUS_DIRECTION,
    AccountModel,
)

# The traces DESIGN.md names as strong, independent evidence of harvesting: each keeps at least
# `min_logodds` of effect at its top whatever one generator's data says, so that a world where it
# happened not to separate cannot teach the model to ignore it.
STRONG_INDICATORS = (
    "e_reasoning_share", "e_rubric_share", "e_generation_share", "e_rewrite_share", "e_agent_trace_share",
    "top_skeleton_share", "top_frame_share", "high_value_share", "log_exchanges", "new_model_pivot",
    "cluster_sync", "cluster_infra_share", "cluster_template_share", "cluster_content_risk", "content_risk",
)

# Knots of every indicator's ramps, as quantiles of the training accounts' values.
KNOT_QUANTILES = (0.5, 0.75, 0.9, 0.97, 0.995, 1.0)


@dataclass(kw_only=True)
class EvidenceModel(AccountModel):
    direction: np.ndarray  # (F,) +1 or -1: the suspicious direction of each feature
    knots: np.ndarray  # (F, K + 1) ascending, in suspicious-direction units
    weights: np.ndarray  # (F, K) >= 0: log-odds gained across each ramp
    baseline: float

    KIND = "bounded-evidence"

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(rows x features) log-odds each indicator adds."""
        return (ramps(np.asarray(x, dtype=np.float64) * self.direction, self.knots) * self.weights).sum(axis=2)

    def logit(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return self.baseline + self.contributions(x).sum(axis=1) if len(x) else np.zeros(0)

    def explain(
        self, x: np.ndarray, *, limit: int = 5, min_risk: float = 0.05
    ) -> tuple[np.ndarray, list[list[str]]]:
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            return np.zeros(0), []
        parts = self.contributions(x)
        logit = self.baseline + parts.sum(axis=1)
        by_code = (parts - self._typical_parts) @ self._code_matrix  # (rows x codes)
        cut = np.log(min_risk / (1 - min_risk))
        out: list[list[str]] = [[] for _ in range(len(x))]
        for row in np.flatnonzero(logit >= cut):
            order = np.argsort(-by_code[row], kind="stable")[:limit]
            out[row] = [self._codes[c] for c in order if by_code[row, c] >= REASON_MIN_LOGODDS]
        return logit, out

    @cached_property
    def _codes(self) -> list[str]:
        return list(dict.fromkeys(REASON_OF_FEATURE.get(f, f) for f in self.features))

    @cached_property
    def _code_matrix(self) -> np.ndarray:
        codes = self._codes
        m = np.zeros((len(self.features), len(codes)))
        for j, f in enumerate(self.features):
            m[j, codes.index(REASON_OF_FEATURE.get(f, f))] = 1.0
        return m

    @cached_property
    def _typical_parts(self) -> np.ndarray:
        return self.contributions(self.typical[None, :])[0]

    def effect(self, feature: str, values: Sequence[float]) -> np.ndarray:
        """Log-odds the indicator adds at each of `values` (its partial dependence)."""
        j = self.features.index(feature)
        row = np.tile(self.typical, (len(values), 1))
        row[:, j] = values
        return self.contributions(row)[:, j]

    def _params_json(self) -> dict:
        return {"baseline": self.baseline, "direction": self.direction.tolist(), "knots": self.knots.tolist(),
                "weights": self.weights.tolist()}

    @classmethod
    def _from_params(cls, data: dict, common: dict) -> EvidenceModel:
        n = len(common["features"])
        direction = np.asarray(data["direction"], dtype=np.float64)
        knots = np.asarray(data["knots"], dtype=np.float64)
        weights = np.asarray(data["weights"], dtype=np.float64)
        if direction.shape != (n,) or knots.ndim != 2 or knots.shape[0] != n or weights.shape != (n, knots.shape[1] - 1):
            raise ValueError("evidence model arrays do not match its features")
        if np.any(weights < 0) or np.any(np.diff(knots, axis=1) <= 0):
            raise ValueError("evidence model weights must be >= 0 and knots strictly ascending")
        return cls(direction=direction, knots=knots, weights=weights, baseline=float(data["baseline"]), **common)


def directions(features: Sequence[str]) -> np.ndarray:
    return np.array([SUSPICIOUS_DIRECTION.get(f, 1) for f in features], dtype=np.float64)


def make_knots(z: np.ndarray, quantiles: Sequence[float] = KNOT_QUANTILES) -> np.ndarray:
    """(F, K + 1) strictly ascending knots per column of `z` (suspicious-direction values).

    A column whose quantiles coincide (a share that is 0 for most accounts) gets its ramps spread
    over the upper part of its range instead, so each ramp still spans a real interval."""
    k = len(quantiles)
    out = np.empty((z.shape[1], k))
    for j in range(z.shape[1]):
        q = np.quantile(z[:, j], quantiles)
        lo, hi = q[0], max(q[-1], q[0] + 1e-6)
        for i in range(1, k):
            q[i] = max(q[i], q[i - 1] + (hi - lo) / (4 * k))
        out[j] = q
    return out


def ramps(z: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """(rows x F x K) ramp activations of suspicious-direction values `z`."""
    lo, hi = knots[:, :-1], knots[:, 1:]
    return np.clip((z[:, :, None] - lo) / (hi - lo), 0.0, 1.0)


def group_weights(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Sample weights giving every group (a campaign, a legitimate actor type) the same total, and
    the positive and negative classes the same total."""
    w = np.zeros(len(labels))
    for cls in (True, False):
        mask = labels == cls
        names = np.unique(groups[mask])
        for g in names:
            sel = mask & (groups == g)
            w[sel] = 1.0 / (sel.sum() * len(names))
    return w * len(labels) / w.sum()


def fit_evidence(
    x: np.ndarray,
    y: np.ndarray,
    features: Sequence[str],
    *,
    sample_weight: np.ndarray | None = None,
    max_logodds: float = 4.0,
    l2: float = 1e-3,
    min_logodds: float = 0.0,
    typical: np.ndarray | None = None,
) -> EvidenceModel:
    """Fit the bounded evidence model: every feature's total effect is at most `max_logodds`, and
    each of `STRONG_INDICATORS` adds at least `min_logodds` across its top ramp."""
    from scipy.optimize import minimize

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=bool)
    sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    sw = sw / sw.mean()
    direction = directions(features)
    z = x * direction
    knots = make_knots(z)
    r = ramps(z, knots).reshape(len(x), -1)  # rows x (F * K)
    f, k = knots.shape[0], knots.shape[1] - 1
    target = y.astype(np.float64)
    n = len(y)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b, w = theta[0], theta[1:]
        logit = b + r @ w
        p = 1.0 / (1.0 + np.exp(-logit))
        ll = np.logaddexp(0.0, logit) - target * logit
        value = float(sw @ ll) / n + l2 * float(w @ w)
        g = sw * (p - target) / n
        # The per-feature bound: a smooth penalty on each feature's total beyond max_logodds.
        totals = w.reshape(f, k).sum(axis=1)
        over = np.maximum(totals - max_logodds, 0.0)
        value += 10.0 * float(over @ over)
        grad_w = r.T @ g + 2 * l2 * w + np.repeat(20.0 * over, k)
        return value, np.concatenate(([g.sum()], grad_w))

    floor = np.zeros((f, k))
    floor[[j for j, name in enumerate(features) if name in STRONG_INDICATORS], -1] = min_logodds
    bounds = [(None, None)] + [(lo, max_logodds) for lo in floor.ravel()]
    theta0 = np.concatenate(([0.0], floor.ravel()))
    res = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})
    weights = np.maximum(res.x[1:], 0.0).reshape(f, k)
    # The penalty lets a total overshoot slightly; scale those back so the bound is exact.
    totals = weights.sum(axis=1)
    scale = np.where(totals > max_logodds, max_logodds / np.maximum(totals, 1e-12), 1.0)
    weights *= scale[:, None]
    return EvidenceModel(
        features=tuple(features),
        typical=np.median(x[~y], axis=0) if typical is None else typical,
        direction=direction,
        knots=knots,
        weights=weights,
        baseline=float(res.x[0]),
        meta={"max_logodds": max_logodds, "min_logodds": min_logodds, "l2": l2, "converged": bool(res.success)},
    )
