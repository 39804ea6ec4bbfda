"""Per-account features and the two baselines, on hand-built exchanges and through the CLI."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.evaluate.baselines import AnomalyBaseline, RateLimitBaseline
from distillguard.evaluate.features import account_features, exchange_counts
from distillguard.schema import EXCHANGE_SCHEMA

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def exchange(account: str, at: datetime, n: int, **fields: Any) -> dict[str, Any]:
    """One exchange in canonical form: a short single-turn question unless `fields` say otherwise."""
    return {
        "request_id": f"{account}-{n}",
        "ts": at,
        "account_id": account,
        "model": "model-a",
        "messages": [{"role": "user", "content": f"question {n}"}],
        "ip": "198.51.100.7",
        "input_tokens": 200,
        "output_tokens": 400,
        **fields,
    }


def ordinary(account: str, index: int) -> list[dict[str, Any]]:
    """A developer's day: 20 conversational requests, ten minutes apart, from one IP."""
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    return [
        exchange(
            account,
            T0 + timedelta(minutes=10 * i + index),
            i,
            messages=[*history, {"role": "user", "content": f"and {i}?"}] if i % 2 else history[:1],
            input_tokens=180 + 5 * (i % 7) + index,
            output_tokens=350 + 10 * (i % 5) + index,
            ip=f"198.51.100.{index}",
        )
        for i in range(20)
    ]


def burst(account: str) -> list[dict[str, Any]]:
    """100 requests within one minute: over the 60 rpm limit."""
    return [exchange(account, T0 + timedelta(seconds=0.5 * i), i) for i in range(100)]


def harvester(account: str) -> list[dict[str, Any]]:
    """Under every rate limit, but strange: 40 IPs, 4 models, long answers to short prompts."""
    return [
        exchange(
            account,
            T0 + timedelta(minutes=20 * i),
            i,
            model=f"model-{'abcd'[i % 4]}",
            ip=f"203.0.113.{i}",
            input_tokens=40,
            output_tokens=8000,
        )
        for i in range(40)
    ]


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EXCHANGE_SCHEMA)


@pytest.fixture(scope="module")
def population() -> pa.Table:
    rows = burst("burst") + harvester("harvester")
    for index in range(30):
        rows += ordinary(f"dev{index:02d}", index)
    return table(rows)


def test_features_by_hand() -> None:
    rows = [
        exchange("a", T0, 0),
        exchange("a", T0 + timedelta(seconds=20), 1, model="model-b", ip="198.51.100.8"),
        exchange("a", T0 + timedelta(minutes=5), 2, input_tokens=None, output_tokens=None),
        exchange(
            "a",
            T0 + timedelta(days=1, hours=2),
            3,
            messages=[
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "y"},
                {"role": "user", "content": "z"},
            ],
        ),
        exchange("b", T0, 0, ip=None),
    ]
    # Batch boundaries must not change anything: the partials are merged.
    batches = table(rows).to_batches(max_chunksize=2)
    assert len(batches) == 3
    features = {row["account_id"]: row for row in account_features(batches).to_pylist()}
    assert features["a"] == {
        "account_id": "a",
        "n_exchanges": 4,
        "active_days": 2,
        "active_hours": 2,
        "mean_hourly_rate": 2.0,
        "peak_hourly_rate": 3,
        "peak_minute_rate": 2,
        "peak_daily_rate": 3,
        "mean_input_tokens": 200.0,  # over the three exchanges that report usage
        "mean_output_tokens": 400.0,
        "output_input_ratio": 2.0,
        "n_models": 2,
        "single_turn_share": 0.75,
        "n_ips": 2,
    }
    assert features["b"]["n_ips"] == 0
    assert exchange_counts(batches) == {"a": 4, "b": 1}


def test_rate_limit_flags_only_the_burst(population: pa.Table) -> None:
    features = account_features(population)
    scores = {r["account_id"]: r for r in RateLimitBaseline(rpm=60).fit(features).score(features).to_pylist()}
    assert [a for a, r in scores.items() if r["flagged"]] == ["burst"]
    # x = 100 / 60 over the minute limit; risk = x / (1 + x) = 100 / 160.
    assert scores["burst"]["risk"] == pytest.approx(0.625)
    assert scores["burst"]["reasons"] == "rate_limit_minute"
    assert scores["burst"]["cluster_id"] is None
    # The harvester stays under the limit, as a campaign account would.
    assert scores["harvester"]["risk"] < 0.5
    assert not scores["harvester"]["flagged"]


def test_rate_limit_per_day_and_ordering_of_reasons(population: pa.Table) -> None:
    features = account_features(population)
    scores = {r["account_id"]: r for r in RateLimitBaseline(rpm=60, per_day=30).score(features).to_pylist()}
    # burst: 100/60 per minute and 100/30 per day; the day limit is exceeded more, so it comes first.
    assert scores["burst"]["reasons"] == "rate_limit_day;rate_limit_minute"
    assert scores["burst"]["risk"] == pytest.approx((100 / 30) / (1 + 100 / 30))
    assert scores["harvester"]["reasons"] == "rate_limit_day"  # 40 in one day
    assert scores["dev00"]["risk"] == pytest.approx((20 / 30) / (1 + 20 / 30))
    assert not scores["dev00"]["flagged"]


def test_anomaly_ranks_the_outliers_first(population: pa.Table) -> None:
    features = account_features(population)
    scores = AnomalyBaseline(contamination=0.05).fit(features).score(features).to_pylist()
    ranked = sorted(scores, key=lambda r: -r["risk"])
    assert {r["account_id"] for r in ranked[:2]} == {"burst", "harvester"}
    flagged = {r["account_id"] for r in scores if r["flagged"]}
    assert "harvester" in flagged
    assert flagged <= {"burst", "harvester"}
    assert all(0.0 < r["risk"] <= 1.0 for r in scores)
    assert all(r["reasons"] == ("anomaly" if r["flagged"] else "") for r in scores)
    # A fixed random_state makes the scores reproducible.
    again = AnomalyBaseline(contamination=0.05).fit(features).score(features).to_pylist()
    assert [r["risk"] for r in again] == [r["risk"] for r in scores]


def contract_line(row: dict[str, Any]) -> bytes:
    """The row as a contract JSON Lines record (RFC 3339 timestamp)."""
    return orjson.dumps({**row, "ts": row["ts"].isoformat()})


def test_cli_end_to_end(population: pa.Table, tmp_path: Path) -> None:
    log = tmp_path / "exchanges.jsonl.gz"
    with gzip.open(log, "wb") as handle:
        for row in population.to_pylist():
            handle.write(contract_line(row) + b"\n")
        handle.write(b'{"request_id": "broken", "account_id": "dev00"}\n')  # no ts, model, messages
    truth = tmp_path / "truth.csv"
    with truth.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["account_id", "label", "campaign", "actor_type"])
        writer.writerow(["burst", "campaign", "alpha", "naive"])
        writer.writerow(["harvester", "campaign", "alpha", "hydra"])
        for index in range(30):
            writer.writerow([f"dev{index:02d}", "legit", "", "developer"])

    runner = CliRunner()
    result = runner.invoke(app, ["baseline", "rate-limit", str(log), "--out", str(tmp_path / "rl")])
    assert result.exit_code == 0, result.output
    assert "32 accounts, 1 flagged, from 740 exchanges (1 records refused)" in result.stdout
    lines = (tmp_path / "rl" / "accounts.csv").read_text().splitlines()
    assert lines[0] == "account_id,risk,flagged,cluster_id,reasons"
    assert lines[1] == "burst,0.625,true,,rate_limit_minute"
    assert len(lines) == 33
    rejected = [json.loads(x) for x in (tmp_path / "rl" / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == 1

    report_path = tmp_path / "rl.json"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--truth",
            str(truth),
            "--pred",
            str(tmp_path / "rl" / "accounts.csv"),
            "--exchanges",
            str(log),
            "--json",
            str(report_path),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["flagged"]["recall"] == 0.5
    assert report["flagged"]["fpr"] == 0.0
    # The harvester's 40 exchanges got through; the burst's 100 were stopped.
    assert report["exchanges"]["campaign"] == {
        "n_exchanges": 140,
        "n_exchanges_unflagged": 40,
        "leaked_share": 40 / 140,
    }
    assert report["inputs"]["n_rejected_exchanges"] == 1

    result = runner.invoke(
        app, ["baseline", "anomaly", str(log), "--out", str(tmp_path / "an"), "--contamination", "0.05"]
    )
    assert result.exit_code == 0, result.output
    with (tmp_path / "an" / "accounts.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 32
    assert rows[0]["account_id"] in {"burst", "harvester"}
    assert all(0.0 <= float(r["risk"]) <= 1.0 and r["cluster_id"] == "" for r in rows)


def test_baseline_refuses_a_log_without_valid_exchanges(tmp_path: Path) -> None:
    log = tmp_path / "empty.jsonl"
    log.write_text('{"request_id": "r1"}\n')
    result = CliRunner().invoke(app, ["baseline", "rate-limit", str(log), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "no valid exchange in the input (1 records refused" in str(result.exception)
