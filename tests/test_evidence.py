"""The bounded evidence scorer: monotone and bounded per indicator, exact reasons, size-blind weighting."""

import numpy as np
import pytest

from distillguard.scoring.evidence import EvidenceModel, fit_evidence, group_weights
from distillguard.scoring.model import AccountModel

FEATURES = ("e_reasoning_share", "top_frame_share", "frame_diversity", "log_exchanges")


@pytest.fixture(scope="module")
def world():
    """Campaign accounts extract reasoning through one wrapper; legitimate ones vary their prompts.
    Volume says nothing here: campaign and legitimate accounts are drawn from the same sizes."""
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.uniform(size=n) < 0.2
    x = np.column_stack([
        np.where(y, rng.beta(5, 2, n), rng.beta(1, 12, n)),
        np.where(y, rng.beta(4, 2, n), rng.beta(1, 4, n)),
        np.where(y, rng.beta(2, 5, n), rng.beta(5, 2, n)),
        rng.uniform(0, 8, n),
    ])
    return x, y


@pytest.fixture(scope="module")
def model(world):
    x, y = world
    return fit_evidence(x, y, FEATURES, max_logodds=3.0)


def test_separates_and_gives_uninformative_features_little_weight(world, model):
    x, y = world
    risk = model.risk(x)
    assert np.mean(risk[y]) > 0.8 > 0.2 > np.mean(risk[~y])
    totals = model.weights.sum(axis=1)
    assert totals[FEATURES.index("log_exchanges")] < 0.5 < totals[FEATURES.index("e_reasoning_share")]


def test_every_indicator_is_monotone_in_its_suspicious_direction_and_bounded(model):
    grid = np.linspace(-0.5, 9, 200)
    for f in FEATURES:
        effect = model.effect(f, grid)
        step = np.diff(effect)
        assert np.all(step >= -1e-12) if f != "frame_diversity" else np.all(step <= 1e-12), f
        assert effect.max() - effect.min() <= 3.0 + 1e-9, f


def test_more_evidence_never_lowers_risk(world, model):
    x, _ = world
    rng = np.random.default_rng(1)
    rows = x[rng.choice(len(x), 300)]
    more = rows.copy()
    more[:, 0] += rng.uniform(0, 0.5, 300)  # more elicitation
    more[:, 2] -= rng.uniform(0, 0.5, 300)  # less diversity
    assert np.all(model.logit(more) >= model.logit(rows) - 1e-12)


def test_reasons_are_the_additive_contributions(model):
    row = np.array([[0.9, 0.2, 0.6, 3.0], [0.02, 0.1, 0.9, 3.0]])
    logit, reasons = model.explain(row)
    assert reasons[0][0] == "reasoning-extraction"
    assert reasons[1] == []
    parts = model.contributions(row)
    assert np.allclose(logit, model.baseline + parts.sum(axis=1))


def test_json_round_trip_and_load_by_kind(model, tmp_path, world):
    x, y = world
    model.calibrate(x[~y], np.array(["crowd"] * int((~y).sum())), ["test"])
    path = tmp_path / "m.json"
    model.save(path)
    again = AccountModel.load(path)
    assert isinstance(again, EvidenceModel)
    assert np.array_equal(again.logit(x), model.logit(x))
    assert again.threshold(0.01) == pytest.approx(model.threshold(0.01))


def test_a_model_file_with_negative_weights_is_refused(model):
    data = model.to_json()
    data["weights"][0][0] = -1.0
    with pytest.raises(Exception, match="weights"):
        AccountModel.from_json(data)


def test_group_weights_give_each_campaign_and_each_kind_the_same_total():
    labels = np.array([True] * 1000 + [True] * 10 + [False] * 500 + [False] * 5)
    groups = np.array(["hydra"] * 1000 + ["few"] * 10 + ["chat"] * 500 + ["classroom"] * 5, dtype=object)
    w = group_weights(labels, groups)
    totals = {g: w[groups == g].sum() for g in ("hydra", "few", "chat", "classroom")}
    assert totals["hydra"] == pytest.approx(totals["few"])
    assert totals["chat"] == pytest.approx(totals["classroom"])
    assert totals["hydra"] + totals["few"] == pytest.approx(totals["chat"] + totals["classroom"])
