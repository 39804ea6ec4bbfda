"""Per-account statistics for the baselines and per-account exchange counts for the harness.

Each record batch is reduced in DuckDB SQL to partial aggregates (per account and UTC minute,
per account and model, per account and IP) that are appended to tables of an in-process DuckDB
database; the batch itself is then dropped. The final statistics are one more SQL query over
those partials. Python memory therefore holds one batch at a time, and DuckDB keeps (and spills
to disk if it must) only the partials, which are far smaller than the log for any account that
sends more than one request a minute.

Time buckets are computed from epoch milliseconds, so they are UTC whatever the session time
zone: minute = ms // 60 000, hour = minute // 60, day = minute // 1440 (fixed calendar windows).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import NamedTuple

import duckdb
import pyarrow as pa

# One row per account of the finished feature table, in this order.
FEATURE_SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("n_exchanges", pa.int64()),
        ("active_days", pa.int64()),
        ("active_hours", pa.int64()),
        ("mean_hourly_rate", pa.float64()),
        ("peak_hourly_rate", pa.int64()),
        ("peak_minute_rate", pa.int64()),
        ("peak_daily_rate", pa.int64()),
        ("mean_input_tokens", pa.float64()),
        ("mean_output_tokens", pa.float64()),
        ("output_input_ratio", pa.float64()),
        ("n_models", pa.int64()),
        ("single_turn_share", pa.float64()),
        ("n_ips", pa.int64()),
    ]
)

_CREATE = """
CREATE TABLE minute_parts (
    account_id VARCHAR, minute BIGINT, n BIGINT, single_turn BIGINT,
    in_sum BIGINT, in_n BIGINT, out_sum BIGINT, out_n BIGINT);
CREATE TABLE model_parts (account_id VARCHAR, model VARCHAR);
CREATE TABLE ip_parts (account_id VARCHAR, ip VARCHAR);
"""

# A request is single-turn when it carries no earlier answer: no assistant or tool message.
_FOLD = """
INSERT INTO minute_parts
SELECT account_id, epoch_ms(ts) // 60000, count(*),
       count(*) FILTER (WHERE len(list_filter(messages, lambda m: m.role IN ('assistant', 'tool'))) = 0),
       coalesce(sum(input_tokens), 0), count(input_tokens),
       coalesce(sum(output_tokens), 0), count(output_tokens)
FROM batch GROUP BY ALL;
INSERT INTO model_parts SELECT DISTINCT account_id, model FROM batch;
INSERT INTO ip_parts SELECT DISTINCT account_id, ip FROM batch WHERE ip IS NOT NULL;
"""

# Means of token counts are over the exchanges that reported them; 0 when none did, so an
# account without usage data looks ordinary rather than missing to the anomaly model.
_FINISH = """
WITH minutes AS (
    SELECT account_id, minute, sum(n) AS n, sum(single_turn) AS single_turn,
           sum(in_sum) AS in_sum, sum(in_n) AS in_n, sum(out_sum) AS out_sum, sum(out_n) AS out_n
    FROM minute_parts GROUP BY ALL),
hours AS (SELECT account_id, minute // 60 AS hour, sum(n) AS n FROM minutes GROUP BY ALL),
days AS (SELECT account_id, minute // 1440 AS day, sum(n) AS n FROM minutes GROUP BY ALL),
per_minute AS (
    SELECT account_id, sum(n) AS n_exchanges, max(n) AS peak_minute_rate,
           sum(single_turn) AS single_turn, sum(in_sum) AS in_sum, sum(in_n) AS in_n,
           sum(out_sum) AS out_sum, sum(out_n) AS out_n
    FROM minutes GROUP BY account_id),
per_hour AS (
    SELECT account_id, count(*) AS active_hours, max(n) AS peak_hourly_rate FROM hours GROUP BY account_id),
per_day AS (
    SELECT account_id, count(*) AS active_days, max(n) AS peak_daily_rate FROM days GROUP BY account_id),
models AS (SELECT account_id, count(DISTINCT model) AS n_models FROM model_parts GROUP BY account_id),
ips AS (SELECT account_id, count(DISTINCT ip) AS n_ips FROM ip_parts GROUP BY account_id)
SELECT m.account_id,
       m.n_exchanges::BIGINT AS n_exchanges,
       d.active_days::BIGINT AS active_days,
       h.active_hours::BIGINT AS active_hours,
       m.n_exchanges / h.active_hours AS mean_hourly_rate,
       h.peak_hourly_rate::BIGINT AS peak_hourly_rate,
       m.peak_minute_rate::BIGINT AS peak_minute_rate,
       d.peak_daily_rate::BIGINT AS peak_daily_rate,
       coalesce(m.in_sum / nullif(m.in_n, 0), 0)::DOUBLE AS mean_input_tokens,
       coalesce(m.out_sum / nullif(m.out_n, 0), 0)::DOUBLE AS mean_output_tokens,
       coalesce(m.out_sum / nullif(m.in_sum, 0), 0)::DOUBLE AS output_input_ratio,
       coalesce(models.n_models, 0)::BIGINT AS n_models,
       m.single_turn / m.n_exchanges AS single_turn_share,
       coalesce(ips.n_ips, 0)::BIGINT AS n_ips
FROM per_minute m
JOIN per_hour h USING (account_id)
JOIN per_day d USING (account_id)
LEFT JOIN models USING (account_id)
LEFT JOIN ips USING (account_id)
ORDER BY m.account_id
"""


class AccountFeatureAccumulator:
    """Folds exchange batches (``EXCHANGE_SCHEMA``) into per-account statistics.

    `add` any number of batches in any order, then `features()` gives one row per account
    (``FEATURE_SCHEMA``). Use as a context manager so the DuckDB connection is closed.
    """

    def __init__(self) -> None:
        self._con = duckdb.connect()
        self._con.execute(_CREATE)

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Reduce one batch to partial aggregates; the batch is not kept."""
        self._con.register("batch", batch)
        try:
            self._con.execute(_FOLD)
        finally:
            self._con.unregister("batch")

    def features(self) -> pa.Table:
        """One row per account seen so far, sorted by account id."""
        return self._con.sql(_FINISH).to_arrow_table().cast(FEATURE_SCHEMA)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> AccountFeatureAccumulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def account_features(exchanges: pa.Table | Iterable[pa.RecordBatch]) -> pa.Table:
    """Per-account statistics (``FEATURE_SCHEMA``) of an exchange table or stream of batches."""
    with AccountFeatureAccumulator() as accumulator:
        for batch in [exchanges] if isinstance(exchanges, pa.Table) else exchanges:
            accumulator.add(batch)
        return accumulator.features()


class Activity(NamedTuple):
    n: int  # exchanges
    first_ms: int  # first timestamp, epoch ms
    n_before: int = 0  # exchanges before the `since` of `account_activity` (0 without one)


def account_activity(
    batches: Iterable[pa.RecordBatch | pa.Table], since_ms: int | None = None
) -> dict[str, Activity]:
    """Exchanges, first timestamp and exchanges before `since_ms` per account over a stream of
    exchange batches (one small dict, not the log)."""
    out: dict[str, Activity] = {}
    since = -(2**62) if since_ms is None else since_ms
    con = duckdb.connect()
    try:
        for batch in batches:
            con.register("batch", batch)
            rows = con.execute(
                "SELECT account_id, count(*), epoch_ms(min(ts)), count(*) FILTER (WHERE epoch_ms(ts) < ?) "
                "FROM batch GROUP BY account_id", [since]
            ).fetchall()
            con.unregister("batch")
            for account, n, first, before in rows:
                old = out.get(account)
                out[account] = Activity(n, first, before) if old is None else Activity(
                    old.n + n, min(old.first_ms, first), old.n_before + before)
    finally:
        con.close()
    return out


def exchange_counts(batches: Iterable[pa.RecordBatch | pa.Table]) -> dict[str, int]:
    """Exchanges per account over a stream of exchange batches."""
    return {account: a.n for account, a in account_activity(batches).items()}
