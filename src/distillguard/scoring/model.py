"""Account scoring: a calibrated risk with reason codes, shared by batch analysis and the gateway.

The model is a logistic regression over standardised account features. It is small on purpose:
every unit of log-odds can be traced to a feature, and features map to stable reason codes, so an
analyst can check *why* an account scored high. It ships as JSON (never pickle) with the
distribution of risks of legitimate training accounts, from which the operating point for any
false-positive budget is read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from distillguard.errors import InputError

# Stable, documented reason codes (README "Reason codes"). Several features may feed one code.
REASON_OF_FEATURE: dict[str, str] = {
    "log_exchanges": "high-volume",
    "log_per_active_day": "high-volume",
    "log_peak_hour": "burst-volume",
    "active_days_share": "sustained-activity",
    "hour_entropy": "round-the-clock",
    "gap_regularity": "machine-timing",
    "e_reasoning_share": "reasoning-extraction",
    "e_rubric_share": "grader-rubric",
    "e_generation_share": "synthetic-data-generation",
    "e_rewrite_share": "sensitive-rewrite",
    "e_agent_trace_share": "agent-trace-harvest",
    "elicit_any_share": "elicitation",
    "top_frame_share": "template-concentration",
    "top_tail_share": "template-concentration",
    "frame_diversity": "template-concentration",
    "top_skeleton_share": "template-concentration",
    "top_system_share": "template-concentration",
    "capability_entropy": "capability-focus",
    "high_value_share": "capability-focus",
    "single_turn_share": "single-turn",
    "tool_turn_share": "tool-use-focus",
    "log_out_in_ratio": "long-outputs",
    "log_mean_output": "long-outputs",
    "max_tokens_stop_share": "long-outputs",
    "new_model_pivot": "new-model-pivot",
    "young_account": "new-account",
    "entry_point_tier": "entry-point-tier",
    "unverified": "unverified",
    "cluster_risk": "coordinated-cluster",
    "cluster_log_accounts": "coordinated-cluster",
    "content_risk": "shared-harvest-content",
    "watchlist": "watchlist-match",
}

# The direction in which each feature is *suspicious*, fixed by the threat model rather than learnt:
# training constrains every weight to agree with it, so the model cannot learn a shortcut such as
# "small accounts are suspicious" from one simulator's population. Features not listed: +1.
SUSPICIOUS_DIRECTION: dict[str, int] = {"frame_diversity": -1, "capability_entropy": -1}

Z_CLIP = 4.0

# A reason is reported when it adds at least this much log-odds over a typical account.
REASON_MIN_LOGODDS = 0.5
DEFAULT_MODEL = "account_model.json"


@dataclass
class AccountModel:
    """Logistic regression on standardised features; `risk` is P(campaign | features)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    # Sorted risks of the legitimate accounts the model was calibrated on: the operating point.
    legit_risks: np.ndarray = field(default_factory=lambda: np.zeros(0))
    meta: dict = field(default_factory=dict)

    def _z(self, x: np.ndarray) -> np.ndarray:
        # Clipped so that no single feature, however extreme, outweighs the rest of the evidence.
        return np.clip((np.asarray(x, dtype=np.float64) - self.mean) / self.scale, -Z_CLIP, Z_CLIP)

    def logit(self, x: np.ndarray) -> np.ndarray:
        return self._z(x) @ self.coef + self.intercept

    def risk(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(x)))

    def threshold(self, fpr_budget: float) -> float:
        """Smallest risk above which at most `fpr_budget` of calibration legit accounts fall."""
        if not 0 <= fpr_budget < 1:
            raise InputError(f"false-positive budget must be in [0, 1), got {fpr_budget}")
        if len(self.legit_risks) == 0:
            return 0.5
        allowed = int(np.floor(fpr_budget * len(self.legit_risks)))
        # Flag risk > threshold: the allowed-th largest legit risk (or just above the max if none allowed).
        ordered = np.sort(self.legit_risks)[::-1]
        return float(ordered[allowed]) if allowed < len(ordered) else 0.0

    def reasons(self, x: np.ndarray, limit: int = 5) -> list[list[str]]:
        """Reason codes per row, strongest first: summed positive log-odds contributions per code."""
        contrib = self._z(x) * self.coef
        codes = [REASON_OF_FEATURE.get(f, f) for f in self.features]
        out: list[list[str]] = []
        for row in contrib:
            per_code: dict[str, float] = {}
            for code, value in zip(codes, row, strict=True):
                per_code[code] = per_code.get(code, 0.0) + float(value)
            ranked = sorted((v, c) for c, v in per_code.items() if v >= REASON_MIN_LOGODDS)
            out.append([c for _, c in reversed(ranked)][:limit])
        return out

    def to_json(self) -> dict:
        return {
            "kind": "logistic-regression",
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "legit_risks": np.round(self.legit_risks, 6).tolist(),
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict) -> AccountModel:
        try:
            return cls(
                features=tuple(data["features"]),
                mean=np.asarray(data["mean"], dtype=np.float64),
                scale=np.asarray(data["scale"], dtype=np.float64),
                coef=np.asarray(data["coef"], dtype=np.float64),
                intercept=float(data["intercept"]),
                legit_risks=np.asarray(data.get("legit_risks", []), dtype=np.float64),
                meta=dict(data.get("meta", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"invalid scoring model file: {exc}") from exc

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: Path | None = None) -> AccountModel:
        if path is None:
            text = resources.files("distillguard.scoring").joinpath("models", DEFAULT_MODEL).read_text()
        else:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise InputError(f"cannot read scoring model {path}: {exc.strerror}") from exc
        try:
            return cls.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InputError(f"scoring model {path or DEFAULT_MODEL} is not JSON: {exc}") from exc


def feature_matrix(table, features: Sequence[str]) -> np.ndarray:
    """Columns of an Arrow table (or dict of arrays) as a float matrix in `features` order; nulls -> 0."""
    cols = []
    for name in features:
        col = table[name]
        arr = col.to_numpy(zero_copy_only=False) if hasattr(col, "to_numpy") else np.asarray(col)
        cols.append(np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0))
    return np.column_stack(cols) if cols else np.zeros((0, 0))
