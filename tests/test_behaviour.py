"""Account behaviour features of the batch fold, from a hand-built signals table."""

from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from distillguard.behaviour.features import FEATURES, PRIOR_EXCHANGES, account_features
from distillguard.signals.exchange import ELICITATION_COLUMNS, SIGNALS_SCHEMA

T0 = datetime(2026, 3, 2, tzinfo=UTC)
RELEASE = T0 + timedelta(days=1)


def _rows(account, times, *, model="m1", frame=1, reasoning=0.0, capability=0, turns=1, out=100):
    rows = []
    for i, ts in enumerate(times):
        row = {name: None for name in SIGNALS_SCHEMA.names}
        row.update(
            request_id=f"{account}-{i}", ts=ts, account_id=account, model=model(ts) if callable(model) else model,
            n_messages=turns, n_user=turns, has_tool_turn=False, n_tools=0, prompt_chars=200, n_images=0,
            capability=capability if not callable(capability) else capability(i), skel_hash=frame * 1000 + i,
            frame_hash=frame, tail_hash=frame, sys_hash=None, lsh=[i] * 8, input_tokens=100, output_tokens=out,
            stop_reason="end_turn",
        )
        for col in ELICITATION_COLUMNS:
            row[col] = 0.0
        row["e_reasoning"] = reasoning
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(3)
    # A harvester: a request every 30 s around the clock, one wrapper, reasoning extraction, long
    # answers, and a switch to the new model as soon as it is released.
    bot_times = [T0 + timedelta(seconds=30 * i) for i in range(4 * 2880)]
    bot = _rows("bot", bot_times, model=lambda ts: "m2" if ts >= RELEASE else "m1", frame=7,
                reasoning=0.95, capability=1, out=2000)
    # A person: a few conversations during the day, irregular gaps, varied topics.
    person_times = sorted(T0 + timedelta(hours=9 + float(h)) for h in rng.uniform(0, 8, size=40))
    person = _rows("person", person_times, frame=3, capability=lambda i: i % 5, turns=3)
    for i, row in enumerate(person):
        row["frame_hash"] = 100 + i
        row["tail_hash"] = 200 + i
    sig = pa.Table.from_pylist(bot + person, schema=SIGNALS_SCHEMA)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("sig", sig)
    con.execute("CREATE TABLE signals AS SELECT * FROM sig")
    con.execute("CREATE TABLE releases AS SELECT 'm2' AS model, ?::TIMESTAMPTZ AS released_at", [RELEASE])
    out = account_features(con).to_pylist()
    return {row["account_id"]: row for row in out}


def test_every_feature_present_and_finite(features):
    for row in features.values():
        for name in FEATURES:
            assert name in row and np.isfinite(row[name]), name


def test_harvester_and_person_differ_where_expected(features):
    bot, person = features["bot"], features["person"]
    assert bot["n_exchanges"] == 4 * 2880 and person["n_exchanges"] == 40
    assert bot["hour_entropy"] > 0.99 and person["hour_entropy"] < 0.7
    assert bot["gap_regularity"] > 0.95 and person["gap_regularity"] < 0.7
    # Shares are shrunk by PRIOR_EXCHANGES pseudo-exchanges: near 1 for the bot, small for the person.
    assert bot["top_frame_share"] == pytest.approx(11520 / (11520 + PRIOR_EXCHANGES))
    assert person["top_frame_share"] == pytest.approx(1 / (40 + PRIOR_EXCHANGES))
    assert bot["e_reasoning_share"] > 0.99 and person["e_reasoning_share"] == 0.0
    assert bot["capability_entropy"] == 0.0 and person["capability_entropy"] > 0.5
    assert bot["single_turn_share"] == 1.0 and person["single_turn_share"] == 0.0
    assert bot["log_out_in_ratio"] > person["log_out_in_ratio"]


def test_new_model_pivot_counts_only_accounts_active_before_release(features):
    assert features["bot"]["new_model_pivot"] == 1.0
    assert features["person"]["new_model_pivot"] == 0.0


def test_one_odd_request_is_not_read_as_a_large_share():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = _rows("tiny", [T0, T0 + timedelta(minutes=5)], reasoning=0.9)
    rows[1]["e_reasoning"] = 0.0
    con.register("sig", pa.Table.from_pylist(rows, schema=SIGNALS_SCHEMA))
    con.execute("CREATE TABLE signals AS SELECT * FROM sig")
    (row,) = account_features(con).to_pylist()
    assert row["e_reasoning_share"] == pytest.approx(1 / (2 + PRIOR_EXCHANGES))


def test_missing_side_tables_give_neutral_account_features(features):
    for row in features.values():
        assert row["young_account"] == 0 and row["entry_point_tier"] == 0 and row["unverified"] == 0


def test_an_answer_cut_at_the_budget_counts_however_the_api_spells_it():
    """Anthropic says `max_tokens`, OpenAI chat `length`, OpenAI responses `max_output_tokens`."""
    from distillguard.behaviour.state import AccountState

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = _rows("cut", [T0 + timedelta(minutes=i) for i in range(4)])
    for row, stop in zip(rows, ("max_tokens", "length", "max_output_tokens", "stop"), strict=True):
        row["stop_reason"] = stop
    con.register("sig", pa.Table.from_pylist(rows, schema=SIGNALS_SCHEMA))
    con.execute("CREATE TABLE signals AS SELECT * FROM sig")
    (row,) = account_features(con).to_pylist()
    assert row["max_tokens_stop_share"] == pytest.approx(0.75)
    state = AccountState()
    for r in rows:
        state.add_usage(r["input_tokens"], r["output_tokens"], r["stop_reason"])
    assert state.stop_max_tokens == 3
