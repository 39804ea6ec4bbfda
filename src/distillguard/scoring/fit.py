"""Fitting the account scorers from labelled account tables (used by `scripts/train_scorer.py` and
`benchmarks/cross_world.py`; the engines only load fitted models)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distillguard.scoring.evidence import fit_evidence, group_weights
from distillguard.scoring.model import SUSPICIOUS_DIRECTION, AccountModel, TreeModel, Trees

KINDS = ("evidence", "trees", "trees-balanced")


def fit_trees(x: np.ndarray, y: np.ndarray, features: Sequence[str], sample_weight: np.ndarray | None = None
              ) -> TreeModel:
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=15, l2_regularization=1.0,
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
        return fit_trees(x, y, features)
    weights = group_weights(y, np.asarray(groups, dtype=object))
    if kind == "trees-balanced":
        return fit_trees(x, y, features, weights)
    if kind == "evidence":
        return fit_evidence(x, y, features, sample_weight=weights, **options)
    raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")
