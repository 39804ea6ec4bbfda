"""The evaluation harness: metrics against hand-computed figures, and refusal of bad predictions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.errors import InputError
from distillguard.evaluate.metrics import compute_metrics
from distillguard.evaluate.tables import read_predictions, read_truth

TRUTH_ROWS = [
    # account, label, campaign, actor_type
    ("c1", "campaign", "alpha", "naive"),
    ("c2", "campaign", "alpha", "naive"),
    ("c3", "campaign", "alpha", "hydra"),
    ("c4", "campaign", "alpha", "hydra"),
    ("d1", "campaign", "beta", "paraphrase"),
    ("d2", "campaign", "beta", "paraphrase"),
    ("l1", "legit", "", "enterprise"),
    ("l2", "legit", "", "enterprise"),
    ("l3", "legit", "", "classroom"),
    ("l4", "legit", "", "classroom"),
    ("l5", "legit", "", "classroom"),
    ("l6", "legit", "", "benchmark"),
]

# Ranking by risk: c1 .9, c2 .8, c3 .7, l1 .65, d1 .6, l3 .5, {l4, l5, c4} .4, d2 .2, l2 .1, l6 .05.
PRED_ROWS = [
    # account, risk, flagged, cluster_id, reasons
    ("c1", "0.9", "true", "K1", "template;sync"),
    ("c2", "0.8", "true", "K1", "template"),
    ("c3", "0.7", "true", "K2", "template"),
    ("c4", "0.4", "false", "", ""),
    ("d1", "0.6", "true", "K2", "cot"),
    ("d2", "0.2", "false", "", ""),
    ("l1", "0.65", "true", "K2", "volume"),
    ("l2", "0.1", "false", "K3", ""),
    ("l3", "0.5", "false", "", ""),
    ("l4", "0.4", "false", "", ""),
    ("l5", "0.4", "false", "", ""),
    ("l6", "0.05", "false", "", ""),
    ("x9", "0.99", "true", "K2", "extra"),  # not in truth: must be ignored, even for cluster purity
]

EXCHANGES = {"c1": 100, "c2": 50, "c3": 30, "c4": 20, "d1": 10, "d2": 40, "l1": 5, "l2": 7, "zz": 9}

PRED_HEADER = "account_id,risk,flagged,cluster_id,reasons"


def write_csv(path: Path, header: str, rows: list[tuple[str, ...]]) -> Path:
    path.write_text("\n".join([header, *(",".join(r) for r in rows)]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    truth = write_csv(tmp_path / "truth.csv", "account_id,label,campaign,actor_type", TRUTH_ROWS)
    pred = write_csv(tmp_path / "accounts.csv", PRED_HEADER, PRED_ROWS)
    return truth, pred


@pytest.fixture
def metrics(files: tuple[Path, Path]) -> dict:
    truth, pred = files
    return compute_metrics(read_truth(truth), read_predictions(pred), EXCHANGES, fpr_budget=0.2)


def by(rows: list[dict], key: str) -> dict[str, dict]:
    return {row[key]: row for row in rows}


def test_flag_metrics_match_hand_count(metrics: dict) -> None:
    # flagged: c1 c2 c3 d1 (true) and l1 (false positive); missed: c4 d2.
    assert metrics["accounts"] == {"n": 12, "campaign": 6, "legit": 6}
    flagged = metrics["flagged"]
    assert (flagged["tp"], flagged["fp"], flagged["fn"], flagged["tn"]) == (4, 1, 2, 5)
    assert flagged["precision"] == pytest.approx(4 / 5)
    assert flagged["recall"] == pytest.approx(4 / 6)
    assert flagged["f1"] == pytest.approx(8 / 11)
    assert flagged["fpr"] == pytest.approx(1 / 6)
    assert metrics["campaign_detection"]["n_detected"] == 2


def test_fpr_per_legit_actor_type(metrics: dict) -> None:
    types = by(metrics["legit_actor_types"], "actor_type")
    assert {k: (v["n_accounts"], v["n_flagged"]) for k, v in types.items()} == {
        "benchmark": (1, 0),
        "classroom": (3, 0),
        "enterprise": (2, 1),
    }
    assert types["enterprise"]["fpr"] == pytest.approx(0.5)
    assert types["classroom"]["fpr"] == 0.0


def test_ranking_metrics_match_hand_computation(metrics: dict) -> None:
    ranking = metrics["ranking"]
    # AP = (1 + 1 + 1 + 4/5 + 5/9 + 6/10) / 6: precision at each recall step, the .4 tie as one step.
    assert ranking["pr_auc"] == pytest.approx(223 / 270)
    # Pairs (positive above negative, ties count half): 6 + 6 + 6 + 5 + (2 + 2/2) + 2 = 28 of 36.
    assert ranking["roc_auc"] == pytest.approx(28 / 36)


def test_recall_at_fpr_budget(metrics: dict) -> None:
    # Budget 0.2 of 6 legit allows one: l1 (.65) is above, l3 (.5) would be a second.
    at = metrics["ranking"]["recall_at_fpr"]
    assert at["threshold"] == pytest.approx(0.6)
    assert at["recall"] == pytest.approx(4 / 6)
    assert at["n_legit_above"] == 1
    assert at["fpr"] == pytest.approx(1 / 6)


def test_recall_at_fpr_keeps_ties_together(files: tuple[Path, Path]) -> None:
    truth, pred = read_truth(files[0]), read_predictions(files[1])
    # Budget 0.5 allows three legit, but the third and fourth (l4, l5) tie at .4 with c4:
    # the tie group is excluded whole, so only two legit are above and c4 is not counted.
    at = compute_metrics(truth, pred, fpr_budget=0.5)["ranking"]["recall_at_fpr"]
    assert at["threshold"] == pytest.approx(0.5)
    assert at["n_legit_above"] == 2
    assert at["recall"] == pytest.approx(4 / 6)
    # A zero budget needs a threshold above every legit account: only c1..c3 remain.
    strict = compute_metrics(truth, pred, fpr_budget=0.0)["ranking"]["recall_at_fpr"]
    assert (strict["threshold"], strict["n_legit_above"]) == (pytest.approx(0.7), 0)
    assert strict["recall"] == pytest.approx(3 / 6)


def test_recall_per_campaign_and_actor_type(metrics: dict) -> None:
    campaigns = by(metrics["campaigns"], "campaign")
    assert campaigns["alpha"]["recall"] == pytest.approx(3 / 4)
    assert campaigns["beta"]["recall"] == pytest.approx(1 / 2)
    assert campaigns["alpha"]["recall_at_budget"] == pytest.approx(3 / 4)  # threshold .6: c1 c2 c3
    alpha_types = by(campaigns["alpha"]["actor_types"], "actor_type")
    assert (alpha_types["naive"]["recall"], alpha_types["hydra"]["recall"]) == (1.0, 0.5)
    overall = by(metrics["campaign_actor_types"], "actor_type")
    assert {k: (v["n_accounts"], v["n_flagged"]) for k, v in overall.items()} == {
        "hydra": (2, 1),
        "naive": (2, 2),
        "paraphrase": (2, 1),
    }


def test_cluster_coverage_and_purity(metrics: dict) -> None:
    campaigns = by(metrics["campaigns"], "campaign")
    # alpha: c1 c2 in K1, c3 in K2 -> K1 holds most; K1 = {c1, c2}.
    assert campaigns["alpha"]["cluster"] == {
        "cluster_id": "K1",
        "n_in_cluster": 2,
        "cluster_size": 2,
        "coverage": 0.5,
        "purity": 1.0,
    }
    # beta: d1 in K2 = {c3, d1, l1} (x9 is not a truth account and does not count).
    beta = campaigns["beta"]["cluster"]
    assert (beta["cluster_id"], beta["coverage"], beta["purity"]) == ("K2", 0.5, pytest.approx(1 / 3))
    assert metrics["clusters"] == {
        "n_clusters": 3,
        "n_clustered_accounts": 6,
        "n_clustered_legit_accounts": 2,
        "n_clusters_without_campaign": 1,  # K3 = {l2}
    }


def test_leaked_exchange_share(metrics: dict) -> None:
    campaigns = by(metrics["campaigns"], "campaign")
    assert campaigns["alpha"]["exchanges"] == {
        "n_exchanges": 200,
        "n_exchanges_unflagged": 20,
        "leaked_share": 0.1,
    }
    assert campaigns["beta"]["exchanges"] == {
        "n_exchanges": 50,
        "n_exchanges_unflagged": 40,
        "leaked_share": 0.8,
    }
    exchanges = metrics["exchanges"]
    assert exchanges["campaign"] == {"n_exchanges": 250, "n_exchanges_unflagged": 60, "leaked_share": 0.24}
    assert exchanges["legit"]["n_exchanges_flagged"] == 5
    assert exchanges["legit"]["flagged_share"] == pytest.approx(5 / 12)
    assert (exchanges["n_log_accounts_not_in_truth"], exchanges["n_exchanges_not_in_truth"]) == (1, 9)


def test_undefined_figures_are_null(files: tuple[Path, Path], tmp_path: Path) -> None:
    # Nothing flagged and no clusters: precision is undefined, not zero; cluster figures absent.
    rows = [(a, "0.5", "false", "", "") for a, *_ in TRUTH_ROWS]
    pred = read_predictions(write_csv(tmp_path / "none.csv", PRED_HEADER, rows))
    m = compute_metrics(read_truth(files[0]), pred)
    assert m["flagged"]["precision"] is None
    assert m["flagged"]["recall"] == 0.0
    assert m["clusters"] is None
    assert m["campaigns"][0]["cluster"] is None
    assert m["exchanges"] is None
    assert m["ranking"]["roc_auc"] == 0.5


def test_cli_prints_tables_and_writes_json(files: tuple[Path, Path], tmp_path: Path) -> None:
    truth, pred = files
    out = tmp_path / "metrics.json"
    args = ["evaluate", "--truth", str(truth), "--pred", str(pred), "--json", str(out), "--fpr-budget", "0.2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Legitimate accounts by actor type" in result.stdout
    assert "alpha" in result.stdout
    assert "1 accounts of" in result.stderr and "x9" in result.stderr  # extra account: warned, ignored
    report = json.loads(out.read_text())
    assert report["inputs"]["n_pred_accounts_not_in_truth"] == 1
    assert report["flagged"]["tp"] == 4
    assert report["ranking"]["recall_at_fpr"]["recall"] == pytest.approx(4 / 6)


BAD_PREDICTIONS = [
    pytest.param("account_id,risk,flagged,cluster", [], "accounts.csv:1: wrong header", id="header"),
    pytest.param(
        PRED_HEADER,
        [("c1", "high", "true", "", "")],
        "accounts.csv:2: field 'risk': cannot parse 'high'",
        id="risk-text",
    ),
    pytest.param(
        PRED_HEADER,
        [("c1", "1.5", "true", "", "")],
        "accounts.csv:2: field 'risk': 1.5 is outside [0, 1]",
        id="risk-range",
    ),
    pytest.param(
        PRED_HEADER, [("c1", "nan", "true", "", "")], "field 'risk': nan is outside [0, 1]", id="risk-nan"
    ),
    pytest.param(
        PRED_HEADER, [("c1", "0.5", "yes", "", "")], "accounts.csv:2: field 'flagged': 'yes'", id="flagged"
    ),
    pytest.param(
        PRED_HEADER,
        [("c1", "0.5", "true", "", ""), ("c1", "0.4", "false", "", "")],
        "accounts.csv:3: field 'account_id': duplicate account 'c1' (first on line 2)",
        id="duplicate",
    ),
    pytest.param(
        PRED_HEADER, [("c1", "0.5", "true", "")], "accounts.csv:2: 4 fields, expected 5", id="short-row"
    ),
]


@pytest.mark.parametrize(("header", "rows", "message"), BAD_PREDICTIONS)
def test_malformed_predictions_are_refused(
    files: tuple[Path, Path], tmp_path: Path, header: str, rows: list[tuple[str, ...]], message: str
) -> None:
    truth, _ = files
    bad = write_csv(tmp_path / "accounts.csv", header.strip(), rows)
    result = CliRunner().invoke(app, ["evaluate", "--truth", str(truth), "--pred", str(bad)])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    assert message in str(result.exception)
    assert "\n" not in str(result.exception)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "truth.csv: no accounts after the header"),
        ([("c1", "attack", "alpha", "naive")], "truth.csv:2: field 'label': 'attack' is not"),
        ([("c1", "campaign", "", "naive")], "truth.csv:2: field 'campaign' is empty for a campaign account"),
    ],
)
def test_malformed_truth_is_refused(
    files: tuple[Path, Path], tmp_path: Path, rows: list[tuple[str, ...]], message: str
) -> None:
    bad = write_csv(tmp_path / "truth.csv", "account_id,label,campaign,actor_type", rows)
    result = CliRunner().invoke(app, ["evaluate", "--truth", str(bad), "--pred", str(files[1])])
    assert result.exit_code != 0
    assert message in str(result.exception)


def test_missing_accounts_are_named(files: tuple[Path, Path], tmp_path: Path) -> None:
    truth, _ = files
    rows = [(a, "0.5", "false", "", "") for a, *_ in TRUTH_ROWS[:-3]]
    with pytest.raises(
        InputError, match=r"3 accounts of .*truth.csv have no prediction \(first: l4, l5, l6\)"
    ):
        CliRunner().invoke(
            app,
            [
                "evaluate",
                "--truth",
                str(truth),
                "--pred",
                str(write_csv(tmp_path / "p.csv", PRED_HEADER, rows)),
            ],
            catch_exceptions=False,
        )


def test_refusal_exits_with_one_line_error(files: tuple[Path, Path], tmp_path: Path) -> None:
    # Through the real entry point: the error handler turns the refusal into exit status 2.
    truth, _ = files
    bad = write_csv(tmp_path / "p.csv", PRED_HEADER, [("c1", "2", "true", "", "")])
    done = subprocess.run(
        [sys.executable, "-m", "distillguard.cli", "evaluate", "--truth", str(truth), "--pred", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "p.csv:2: field 'risk': 2 is outside [0, 1]" in done.stderr


@pytest.mark.parametrize(("since", "message"), [
    ("yesterday", "not an RFC 3339 date-time"),
    ("2026-03-04T00:00:00", "no UTC offset"),
])
def test_a_bad_since_is_a_one_line_error(files: tuple[Path, Path], tmp_path: Path, since: str, message: str) -> None:
    truth, _ = files
    actions = tmp_path / "actions.csv"
    actions.write_text("account_id,action,first_ts,exchanges_before\n")
    result = CliRunner().invoke(app, ["evaluate", "--truth", str(truth), "--actions", str(actions),
                                      "--exchanges", str(tmp_path), "--since", since])
    assert isinstance(result.exception, InputError)
    assert message in str(result.exception) and "--since" in str(result.exception)
    assert "\n" not in str(result.exception)


def test_truth_columns_are_read_by_name_with_extra_columns_past(tmp_path: Path) -> None:
    """A generator's truth may order its columns otherwise, call the campaign `campaign_id` and
    add columns of its own (a campaign shape); the four the evaluation needs are read by name."""
    path = write_csv(tmp_path / "truth.csv", "account_id,label,actor_type,campaign_id,campaign_shape",
                     [("a", "campaign", "reasoning", "op-1", "synchronized"), ("b", "legit", "chat_user", "", "")])
    table = read_truth(path)
    assert table.to_pylist() == [
        {"account_id": "a", "label": "campaign", "campaign": "op-1", "actor_type": "reasoning"},
        {"account_id": "b", "label": "legit", "campaign": None, "actor_type": "chat_user"},
    ]
    with pytest.raises(InputError, match=r"truth\.csv:1: wrong header"):
        read_truth(write_csv(tmp_path / "truth.csv", "account_id,label,actor_type", [("a", "legit", "x")]))
