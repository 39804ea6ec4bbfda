"""Fitting the account scorers from labelled account tables (used by `scripts/train_scorer.py` and
`benchmarks/cross_world.py`; the engines only load fitted models)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distillguard.scoring.evidence import fit_evidence, group_weights
from distillguard.scoring.model import SUSPICIOUS_DIRECTION, UNSCORED_FEATURES, AccountModel, TreeModel, Trees

KINDS = ("evidence", "stumps", "trees", "trees-balanced")

# Fitted on one generator and reported on the other (docs/scoring.md), trees of depth 1 (an
# additive model: each feature's effect is a monotone step function of it alone) transferred
# better both ways than deeper trees, which learn one generator's combinations.
STUMPS = {"max_depth": 1, "max_iter": 600}


def scored_features(features: Sequence[str]) -> tuple[str, ...]:
    """The features a scorer is fitted on: all of `features` but `UNSCORED_FEATURES`."""
    return tuple(f for f in features if f not in UNSCORED_FEATURES)


def fit_trees(x: np.ndarray, y: np.ndarray, features: Sequence[str], sample_weight: np.ndarray | None = None,
              *, max_iter: int = 300, max_leaf_nodes: int = 15, max_depth: int | None = None,
              learning_rate: float = 0.05, max_features: float = 1.0) -> TreeModel:
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes, max_depth=max_depth,
        l2_regularization=1.0, max_features=max_features,
        monotonic_cst=[SUSPICIOUS_DIRECTION.get(f, 1) for f in features], random_state=0,
    ).fit(x, y, sample_weight=sample_weight)
    model = TreeModel(features=tuple(features), trees=Trees.from_sklearn(clf),
                      baseline=float(np.ravel(clf._baseline_prediction)[0]), typical=np.median(x[~y], axis=0))
    if not np.allclose(model.logit(x[:500]), clf.decision_function(x[:500])):
        raise AssertionError("tree export disagrees with scikit-learn")
    return model


def fit(kind: str, x: np.ndarray, y: np.ndarray, features: Sequence[str], groups: np.ndarray,
        **options: float) -> AccountModel:
    """A scorer of `kind` fitted on rows `x` with labels `y`. `groups` names each row's campaign
    (campaign rows) or legitimate actor type (others): the balanced kinds weight each group as a whole."""
    y = np.asarray(y, dtype=bool)
    if kind == "trees":
        return fit_trees(x, y, features, **options)
    weights = group_weights(y, np.asarray(groups, dtype=object))
    if kind == "trees-balanced":
        return fit_trees(x, y, features, weights, **options)
    if kind == "stumps":
        return fit_trees(x, y, features, weights, **{**STUMPS, **options})
    if kind == "evidence":
        return fit_evidence(x, y, features, sample_weight=weights, **options)
    raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")
