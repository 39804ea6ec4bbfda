"""Account scoring: a calibrated risk with reason codes, shared by batch analysis and the gateway.

The shipped model is gradient-boosted trees over the account and cluster features, each feature
constrained to be monotone in the direction the threat model calls suspicious
(`SUSPICIOUS_DIRECTION`): more elicitation can only raise risk, more prompt diversity can only
lower it. That keeps the model from learning shortcuts of one simulated population ("small
accounts are suspicious"). Its trees have depth 1 (`fit.STUMPS`), so it is additive: deeper trees
combined signals the way one generator's campaigns combine them and did not transfer to traffic
from another (docs/scoring.md).

The trees ship as plain JSON arrays (never pickle) and are evaluated here with numpy. With them
ships the distribution of risks of legitimate calibration accounts, from which the operating point
for any false-positive budget is read.

Reason codes are read by occlusion: for each code, its features are set to their value for a
typical legitimate account and the drop in log-odds is that code's contribution.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

from distillguard.errors import InputError
from distillguard.scoring import DEFAULT_SEGMENT_FPR_BUDGET

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
    "cluster_log_accounts": "coordinated-cluster",
    "cluster_log_exchanges": "coordinated-cluster",
    "cluster_elicit_share": "coordinated-cluster",
    "cluster_template_share": "coordinated-cluster",
    "cluster_sync": "coordinated-cluster",
    "cluster_infra_share": "coordinated-cluster",
    "cluster_capability_focus": "coordinated-cluster",
    "cluster_pivot": "new-model-pivot",
    "cluster_creation_burst": "creation-burst",
    "cluster_content_risk": "shared-harvest-content",
    "content_risk": "shared-harvest-content",
    "watchlist": "watchlist-match",
}

# The direction in which each feature is *suspicious*, fixed by the threat model rather than learnt:
# training constrains the model to be monotone in it, so it cannot learn a shortcut such as
# "small accounts are suspicious" from one simulator's population. Features not listed: +1.
SUSPICIOUS_DIRECTION: dict[str, int] = {"frame_diversity": -1, "capability_entropy": -1}

# Computed and reported, but not scored. Tool turns are what agentic coding tools used by real
# developers send all day (a hard case of DESIGN.md), so "more tool turns" is no evidence of
# harvesting in itself; a scorer fitted on the simulator, whose developers use fewer tools than
# its campaigns, learned it as one and flagged 1.8% of the independent generator's developers.
# Agentic harvesting still shows as capability focus, agent-trace elicitation and coordination.
UNSCORED_FEATURES: tuple[str, ...] = ("tool_turn_share",)

# A reason is reported when it adds at least this much log-odds over a typical account.
REASON_MIN_LOGODDS = 0.5
DEFAULT_MODEL = "account_model.json"
# Smaller segments say too little to set a threshold on.
MIN_SEGMENT_ACCOUNTS = 100
# Rows scored per vectorised step: bounds the (rows x trees) node matrix to a few MB.
_ROWS_PER_STEP = 2048
# Up to this many rows, `Trees.per_tree` decides every node's split per row (measured faster than
# walking all rows together up to two or three rows).
_FEW_ROWS = 2
# Tree walks per vectorised call when explaining (a few arrays of this length are alive at once).
_WALKS_PER_STEP = 1 << 20


@dataclass
class Trees:
    """One boosted ensemble as flat node arrays: tree t's nodes are rows offsets[t]:offsets[t+1]."""

    feature: np.ndarray  # int32, feature index of a split node
    threshold: np.ndarray  # float64, go left when x <= threshold
    left: np.ndarray  # int32, node index within the tree
    right: np.ndarray
    is_leaf: np.ndarray  # bool
    value: np.ndarray  # float64, leaf value (log-odds)
    offsets: np.ndarray  # int64, len = n_trees + 1

    def __post_init__(self) -> None:
        # Derived once for `raw`: children as global node indices, leaves pointing at themselves (so
        # a walk may run past a leaf and stay there), and the depth of the deepest tree.
        self._tree_of = np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))
        base = self.offsets[:-1][self._tree_of]
        own = np.arange(len(self.feature), dtype=np.int64)
        self._left = np.where(self.is_leaf, own, base + self.left).astype(np.int64)
        self._right = np.where(self.is_leaf, own, base + self.right).astype(np.int64)
        # Leaves compare against +inf (always "left", i.e. stay) on feature 0.
        self._feature = np.where(self.is_leaf, 0, self.feature).astype(np.int64)
        self._threshold = np.where(self.is_leaf, np.inf, self.threshold)
        depth = np.zeros(len(self.feature), dtype=np.int64)
        for t in range(len(self.offsets) - 1):  # parents precede their children within a tree
            for i in range(self.offsets[t], self.offsets[t + 1]):
                if not self.is_leaf[i]:
                    depth[self._left[i]] = depth[self._right[i]] = depth[i] + 1
        self._depth = int(depth.max()) if len(depth) else 0
        # The same in 32 bits for `_per_tree_few`, which reads every node per row.
        self._left32, self._right32 = self._left.astype(np.int32), self._right.astype(np.int32)
        self._roots32 = self.offsets[:-1].astype(np.int32)

    @property
    def n_trees(self) -> int:
        return len(self.offsets) - 1

    def leaves(self, x: np.ndarray, rows: np.ndarray, trees: np.ndarray) -> np.ndarray:
        """Leaf value that row `rows[i]` of x reaches in tree `trees[i]`, for every i.

        All pairs advance together, one level per step, over flat arrays, so the cost is (depth x a
        few numpy calls) whatever the number of trees: a single account (the gateway's case) scores
        in well under a millisecond instead of one numpy loop per tree."""
        flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        base = rows.astype(np.int64) * x.shape[1]
        node = self.offsets[trees]
        for _ in range(self._depth):
            go_left = flat[base + self._feature[node]] <= self._threshold[node]
            node = np.where(go_left, self._left[node], self._right[node])
        return self.value[node]

    def per_tree(self, x: np.ndarray) -> np.ndarray:
        """(rows x trees) leaf values."""
        if len(x) <= _FEW_ROWS:
            return self._per_tree_few(x)
        out = np.zeros((len(x), self.n_trees))
        for lo in range(0, len(x), _ROWS_PER_STEP):
            chunk = x[lo : lo + _ROWS_PER_STEP]
            rows = np.repeat(np.arange(len(chunk)), self.n_trees)
            trees = np.tile(np.arange(self.n_trees), len(chunk))
            out[lo : lo + len(chunk)] = self.leaves(chunk, rows, trees).reshape(len(chunk), self.n_trees)
        return out

    def _per_tree_few(self, x: np.ndarray) -> np.ndarray:
        """`per_tree` for a few rows (the gateway scores one to a handful per call), row by row:
        every node's split is decided at once, then each level of the walks is a single lookup,
        a dozen numpy calls in all instead of eight per level. Same comparisons, same leaves."""
        x = np.asarray(x, dtype=np.float64)
        out = np.empty((len(x), self.n_trees))
        for r, row in enumerate(x):
            step = np.where(row.take(self._feature) <= self._threshold, self._left32, self._right32)
            node = self._roots32
            for _ in range(self._depth):
                node = step.take(node)
            out[r] = self.value.take(node)
        return out

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Sum of leaf values over all trees for each row of x."""
        return self.per_tree(x).sum(axis=1)

    def trees_using(self, features: Sequence[int]) -> np.ndarray:
        """The trees that split on any of `features`: the only ones whose leaf can change with them."""
        return np.unique(self._tree_of[~self.is_leaf & np.isin(self.feature, features)])

    @classmethod
    def from_sklearn(cls, clf) -> Trees:
        """A fitted binary `HistGradientBoostingClassifier` as flat arrays (one tree per iteration)."""
        parts = [predictors[0].nodes for predictors in clf._predictors]
        nodes = np.concatenate(parts)
        return cls(
            feature=nodes["feature_idx"].astype(np.int32),
            threshold=nodes["num_threshold"].astype(np.float64),
            left=nodes["left"].astype(np.int32),
            right=nodes["right"].astype(np.int32),
            is_leaf=nodes["is_leaf"].astype(bool),
            value=nodes["value"].astype(np.float64),
            offsets=np.concatenate(([0], np.cumsum([len(p) for p in parts]))).astype(np.int64),
        )

    def to_json(self) -> dict:
        return {k: getattr(self, k).tolist() for k in ("feature", "threshold", "left", "right", "is_leaf", "value",
                                                        "offsets")}

    @classmethod
    def from_json(cls, data: dict) -> Trees:
        return cls(
            feature=np.asarray(data["feature"], dtype=np.int32),
            threshold=np.asarray(data["threshold"], dtype=np.float64),
            left=np.asarray(data["left"], dtype=np.int32),
            right=np.asarray(data["right"], dtype=np.int32),
            is_leaf=np.asarray(data["is_leaf"], dtype=bool),
            value=np.asarray(data["value"], dtype=np.float64),
            offsets=np.asarray(data["offsets"], dtype=np.int64),
        )


@dataclass(kw_only=True)
class AccountModel:
    """A scorer of account feature rows: `risk` is P(campaign | features), with reason codes and the
    operating point read from the risks of legitimate calibration accounts. Two kinds ship:
    `TreeModel` (monotone boosted trees) and `scoring.evidence.EvidenceModel` (bounded additive
    per-indicator evidence); `load` returns whichever a model file holds."""

    features: tuple[str, ...]
    typical: np.ndarray  # feature values of a typical legitimate account (medians), for reasons
    # Sorted risks of the legitimate accounts the model was calibrated on: the operating point.
    legit_risks: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # The same, per kind of legitimate customer in the calibration data (enterprise apps,
    # classrooms, researchers...): a budget over all accounts can be spent on one kind alone.
    legit_risks_by_segment: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    KIND = ""

    def logit(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def explain(
        self, x: np.ndarray, *, limit: int = 5, min_risk: float = 0.05
    ) -> tuple[np.ndarray, list[list[str]]]:
        """`logit(x)` and `reasons(x)` from one pass."""
        raise NotImplementedError

    def risk(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(x)))

    def threshold(self, fpr_budget: float, segment_budget: float = DEFAULT_SEGMENT_FPR_BUDGET) -> float:
        """Smallest risk above which at most `fpr_budget` of the calibration legit accounts fall, and
        at most `segment_budget` of each calibration segment of `MIN_SEGMENT_ACCOUNTS` or more
        (1: no per-segment limit)."""
        if not 0 <= fpr_budget < 1:
            raise InputError(f"false-positive budget must be in [0, 1), got {fpr_budget}")
        if not 0 <= segment_budget <= 1:
            raise InputError(f"segment false-positive budget must be in [0, 1], got {segment_budget}")
        if len(self.legit_risks) == 0:
            return 0.5
        threshold = _budget_threshold(self.legit_risks, fpr_budget)
        for risks in self.legit_risks_by_segment.values():
            if len(risks) >= MIN_SEGMENT_ACCOUNTS:
                threshold = max(threshold, _budget_threshold(risks, segment_budget))
        return threshold

    def calibrate(self, x: np.ndarray, segments: np.ndarray, where: list[str]) -> None:
        """Read the operating point from legitimate accounts `x` (their kinds in `segments`)."""
        risks = self.risk(x)
        self.legit_risks = np.sort(risks)
        self.legit_risks_by_segment = {str(s): np.sort(risks[segments == s]) for s in sorted(set(segments))}
        self.meta["calibrate"] = list(where)

    def reasons(self, x: np.ndarray, *, limit: int = 5, min_risk: float = 0.05) -> list[list[str]]:
        """Reason codes per row, strongest first, for rows with risk >= `min_risk` (others: none)."""
        return self.explain(x, limit=limit, min_risk=min_risk)[1]

    def _params_json(self) -> dict:
        raise NotImplementedError

    def to_json(self) -> dict:
        return {
            "kind": self.KIND,
            "features": list(self.features),
            "typical": self.typical.tolist(),
            **self._params_json(),
            "legit_risks": np.round(self.legit_risks, 8).tolist(),
            "legit_risks_by_segment": {k: np.round(v, 8).tolist() for k, v in self.legit_risks_by_segment.items()},
            "meta": self.meta,
        }

    @classmethod
    def _from_params(cls, data: dict, common: dict) -> AccountModel:
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: dict) -> AccountModel:
        from distillguard.scoring.evidence import EvidenceModel

        kinds: dict[str, type[AccountModel]] = {TreeModel.KIND: TreeModel, EvidenceModel.KIND: EvidenceModel}
        try:
            kind = kinds[data.get("kind", TreeModel.KIND)]
            common = {
                "features": tuple(data["features"]),
                "typical": np.asarray(data["typical"], dtype=np.float64),
                "legit_risks": np.asarray(data.get("legit_risks", []), dtype=np.float64),
                "legit_risks_by_segment": {str(k): np.asarray(v, dtype=np.float64)
                                           for k, v in data.get("legit_risks_by_segment", {}).items()},
                "meta": dict(data.get("meta", {})),
            }
            return kind._from_params(data, common)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"invalid scoring model file: {exc!r}") from exc

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), separators=(",", ":")))

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
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"scoring model {path or DEFAULT_MODEL} is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InputError(f"scoring model {path or DEFAULT_MODEL} is not a JSON object")
        return cls.from_json(data)


@dataclass(kw_only=True)
class TreeModel(AccountModel):
    """Boosted trees over account features, monotone in each feature's suspicious direction."""

    trees: Trees
    baseline: float  # log-odds before the first tree

    KIND = "monotone-gradient-boosting"

    def logit(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return self.baseline + self.trees.raw(x) if len(x) else np.zeros(0)

    def explain(
        self, x: np.ndarray, *, limit: int = 5, min_risk: float = 0.05
    ) -> tuple[np.ndarray, list[list[str]]]:
        """`logit(x)` and `reasons(x)` from one pass over the trees."""
        x = np.asarray(x, dtype=np.float64)
        out: list[list[str]] = [[] for _ in range(len(x))]
        cut = np.log(min_risk / (1 - min_risk))
        # Leaf values per tree of the rows to explain, kept: they are the "before" of every
        # occlusion below. Only those rows' are kept (all of `large`'s would be 120 MB).
        logit = np.empty(len(x))
        kept = []
        for lo in range(0, len(x), _ROWS_PER_STEP):
            per_tree = self.trees.per_tree(x[lo : lo + _ROWS_PER_STEP])
            logit[lo : lo + len(per_tree)] = self.baseline + per_tree.sum(axis=1)
            kept.append(per_tree[logit[lo : lo + len(per_tree)] >= cut])
        rows = np.flatnonzero(logit >= cut)
        if len(rows) == 0:
            return logit, out
        per_tree = np.concatenate(kept)  # row i of it is x[rows[i]]
        # Occlude each reason's features (set them to a typical account's values) and measure the
        # drop in log-odds. Only the trees that split on those features can change, so only they
        # are walked again: all (code, row, tree) walks of a block of rows in one vectorised call.
        # Blocks bound memory: one call over 15,000 rows held 45 million walks (1.7 GB).
        codes = self._reason_codes
        names = list(codes)
        code_of, tree_of = self._reason_pairs
        block = max(1, _WALKS_PER_STEP // len(tree_of))
        for lo in range(0, len(rows), block):
            chunk = rows[lo : lo + block]
            k = len(chunk)
            occluded = np.repeat(x[chunk][None, :, :], len(names), axis=0)
            for c, name in enumerate(names):
                occluded[c][:, codes[name][0]] = self.typical[codes[name][0]]
            # Walk j of row r: occluded row code_of[j] * k + r in tree tree_of[j].
            pair_rows = (code_of[None, :] * k + np.arange(k)[:, None]).reshape(-1)
            pair_trees = np.tile(tree_of, k)
            changed = self.trees.leaves(occluded.reshape(-1, x.shape[1]), pair_rows, pair_trees)
            before = per_tree[lo : lo + k][pair_rows % k, pair_trees]
            drop = np.bincount(pair_rows, weights=before - changed, minlength=len(names) * k).reshape(len(names), k)
            for j, row in enumerate(chunk):
                ranked = sorted(((drop[c, j], name) for c, name in enumerate(names)
                                 if drop[c, j] >= REASON_MIN_LOGODDS), reverse=True)
                out[row] = [name for _, name in ranked[:limit]]
        return logit, out

    @cached_property
    def _reason_codes(self) -> dict[str, tuple[list[int], np.ndarray]]:
        """Each reason code's feature columns and the trees that split on them."""
        columns: dict[str, list[int]] = {}
        for j, name in enumerate(self.features):
            columns.setdefault(REASON_OF_FEATURE.get(name, name), []).append(j)
        return {name: (cols, self.trees.trees_using(cols)) for name, cols in columns.items()}

    @cached_property
    def _reason_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """For every (reason code, tree it can change): the code's position and the tree."""
        trees = [t for _, t in self._reason_codes.values()]
        return np.repeat(np.arange(len(trees)), [len(t) for t in trees]), np.concatenate(trees)

    def _params_json(self) -> dict:
        return {"baseline": self.baseline, "trees": self.trees.to_json()}

    @classmethod
    def _from_params(cls, data: dict, common: dict) -> TreeModel:
        return cls(trees=Trees.from_json(data["trees"]), baseline=float(data["baseline"]), **common)


def _budget_threshold(risks: np.ndarray, budget: float) -> float:
    """Flag risk > threshold: the threshold lets at most floor(budget x n) of `risks` above it."""
    allowed = int(np.floor(budget * len(risks)))
    ordered = np.sort(risks)[::-1]
    return float(ordered[allowed]) if allowed < len(ordered) else 0.0


def feature_matrix(table, features: Sequence[str]) -> np.ndarray:
    """Columns of an Arrow table (or dict of arrays) as a float matrix in `features` order; nulls -> 0."""
    cols = []
    for name in features:
        col = table[name]
        arr = col.to_numpy(zero_copy_only=False) if hasattr(col, "to_numpy") else np.asarray(col)
        cols.append(np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0))
    return np.column_stack(cols) if cols else np.zeros((0, 0))
