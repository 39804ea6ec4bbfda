"""The account scoring model: exported trees agree with scikit-learn, monotone, reasons, operating point."""

import numpy as np
import pyarrow as pa
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from distillguard.scoring.assign import WATCHLIST_LOGODDS, score_table
from distillguard.scoring.model import REASON_OF_FEATURE, AccountModel, TreeModel, Trees

FEATURES = ("e_reasoning_share", "top_frame_share", "frame_diversity")


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    n = 3000
    x = rng.uniform(0, 1, size=(n, 3))
    # Campaign when it extracts reasoning through one wrapper; diversity makes it less likely.
    logit = 6 * x[:, 0] + 3 * x[:, 1] - 2 * x[:, 2] - 4
    y = rng.uniform(size=n) < 1 / (1 + np.exp(-logit))
    clf = HistGradientBoostingClassifier(max_iter=60, monotonic_cst=[1, 1, -1], random_state=0).fit(x, y)
    model = TreeModel(
        features=FEATURES,
        trees=Trees.from_sklearn(clf),
        baseline=float(np.ravel(clf._baseline_prediction)[0]),
        typical=np.median(x[~y], axis=0),
        legit_risks=np.sort(clf.predict_proba(x[~y])[:, 1]),
    )
    return clf, model, x


def test_exported_trees_match_sklearn(fitted):
    clf, model, x = fitted
    assert np.allclose(model.logit(x), clf.decision_function(x))
    assert np.allclose(model.risk(x), clf.predict_proba(x)[:, 1])


def test_few_rows_score_as_sklearn_and_as_many(fitted):
    """The gateway's path (one or two rows per call) gives the leaves of the all-rows walk."""
    clf, model, x = fitted
    one_by_one = np.concatenate([model.logit(x[i : i + 1]) for i in range(200)])
    pairs = np.concatenate([model.logit(x[i : i + 2]) for i in range(0, 200, 2)])
    assert np.allclose(one_by_one, clf.decision_function(x[:200]))
    assert np.array_equal(one_by_one, pairs)
    assert np.allclose(one_by_one, model.logit(x[:200]))


def test_json_round_trip_is_exact(fitted):
    _, model, x = fitted
    again = AccountModel.from_json(model.to_json())
    assert np.array_equal(again.logit(x), model.logit(x))


def test_risk_is_monotone_in_the_suspicious_direction(fitted):
    _, model, _ = fitted
    grid = np.linspace(0, 1, 21)
    base = np.full((21, 3), 0.5)
    up = base.copy()
    up[:, 0] = grid
    down = base.copy()
    down[:, 2] = grid
    assert np.all(np.diff(model.risk(up)) >= 0)
    assert np.all(np.diff(model.risk(down)) <= 0)


def test_reasons_name_the_driving_signal(fitted):
    _, model, _ = fitted
    reasons = model.reasons(np.array([[0.98, 0.2, 0.5], [0.1, 0.1, 0.9]]))
    assert reasons[0][0] == "reasoning-extraction"
    assert reasons[1] == []


def test_threshold_respects_the_budget(fitted):
    _, model, _ = fitted
    for budget in (0.0, 0.001, 0.01, 0.1):
        thr = model.threshold(budget)
        assert np.mean(model.legit_risks > thr) <= budget
    with pytest.raises(Exception, match="budget"):
        model.threshold(1.5)


def test_threshold_keeps_every_calibration_segment_within_its_own_budget(fitted):
    """An overall budget can be spent on one kind of customer alone; the segment budget stops that."""
    _, model, _ = fitted
    rng = np.random.default_rng(1)
    # 10,000 ordinary accounts that score low, and 300 look-alikes (a classroom, say) that often score high.
    crowd, look_alikes = rng.uniform(0, 0.3, 10_000), rng.uniform(0.2, 0.95, 300)
    model = TreeModel(features=model.features, trees=model.trees, baseline=model.baseline, typical=model.typical,
                         legit_risks=np.sort(np.concatenate([crowd, look_alikes])),
                         legit_risks_by_segment={"crowd": np.sort(crowd), "look_alike": np.sort(look_alikes),
                                                 "tiny": np.array([0.99] * 10)})
    overall_only = model.threshold(0.01, 1.0)
    assert np.mean(look_alikes > overall_only) > 0.1, "the overall budget alone flags many look-alikes"
    for budget in (0.0, 0.0025, 0.01):
        thr = model.threshold(0.01, budget)
        assert np.mean(look_alikes > thr) <= budget
        assert np.mean(model.legit_risks > thr) <= 0.01
        assert thr < 0.99, "segments under MIN_SEGMENT_ACCOUNTS set no limit"
    again = AccountModel.from_json(model.to_json())
    assert again.threshold(0.01, 0.0025) == pytest.approx(model.threshold(0.01, 0.0025), abs=1e-8)
    with pytest.raises(Exception, match="segment"):
        model.threshold(0.01, 1.5)


def test_watchlist_match_raises_risk_and_leads_the_reasons(fitted):
    _, model, _ = fitted
    table = pa.table({"account_id": ["a", "b"], **{f: [0.3, 0.3] for f in FEATURES},
                      "watchlist": [0.0, 1.0], "link_reasons": [None, None]})
    scored = score_table(table, model, threshold=0.5).to_pylist()
    logit = np.log(scored[1]["risk"] / (1 - scored[1]["risk"])) - np.log(scored[0]["risk"] / (1 - scored[0]["risk"]))
    assert logit == pytest.approx(WATCHLIST_LOGODDS)
    assert scored[1]["reasons"].split(";")[0] == "watchlist-match"


def test_shipped_model_loads_and_has_an_operating_point():
    model = AccountModel.load()
    assert set(model.features) <= set(REASON_OF_FEATURE), "every feature maps to a documented reason code"
    assert len(model.features) == len(model.typical) > 20
    assert len(model.legit_risks) > 1000
    assert 0 < model.threshold(0.001) < 1
    assert sum(len(r) for r in model.legit_risks_by_segment.values()) == len(model.legit_risks)
    assert model.threshold(0.001) >= model.threshold(0.001, 1.0)


def test_stumps_are_additive_and_monotone_and_the_shipped_model_is_one():
    """The shipped recipe: every tree splits once, so each feature's effect is a step function of
    that feature alone (its partial dependence, whatever the other features are), non-decreasing in
    its suspicious direction; tool turns, a hard case's everyday traffic, are not scored."""
    from distillguard.scoring.fit import fit, scored_features
    from distillguard.scoring.model import UNSCORED_FEATURES

    rng = np.random.default_rng(4)
    n = 3000
    y = rng.uniform(size=n) < 0.3
    x = np.column_stack([np.where(y, rng.beta(5, 2, n), rng.beta(1, 8, n)), rng.uniform(size=n),
                         np.where(y, rng.beta(2, 5, n), rng.beta(5, 2, n))])
    features = ("e_reasoning_share", "log_exchanges", "frame_diversity")
    model = fit("stumps", x, y, features, np.where(y, "campaign", "chat"))
    assert model.trees._depth == 1
    risk = model.risk(x)
    assert np.mean(risk[y]) > 0.7 > 0.3 > np.mean(risk[~y])
    # Additive: moving one feature changes the log-odds by the same amount for every row.
    for j, direction in enumerate((1, 1, -1)):
        lo, hi = x.copy(), x.copy()
        lo[:, j], hi[:, j] = 0.2, 0.8
        step = model.logit(hi) - model.logit(lo)
        assert np.allclose(step, step[0])
        assert direction * step[0] >= 0

    shipped = AccountModel.load()
    assert shipped.trees._depth == 1
    assert not set(UNSCORED_FEATURES) & set(shipped.features)
    assert set(scored_features(shipped.features)) == set(shipped.features)
