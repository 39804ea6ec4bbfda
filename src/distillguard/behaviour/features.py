"""Account behaviour of a whole log: the `signals` table folded into one `AccountState` per account.

Input is the `signals` table (one row per exchange, `distillguard.signals.exchange.SIGNALS_SCHEMA`)
plus the optional `accounts` and `releases` side tables. DuckDB reduces the table to each
account's counters, histograms and top values in a few grouped scans; those become the same
`AccountState` the gateway builds one exchange at a time, and `AccountState.features()` (the one
definition of every account feature) gives one row per account with the columns of `FEATURES`.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from distillguard.behaviour.state import (  # noqa: F401  (feature constants, re-exported)
    _DAY_MS,
    _GAP_LIMIT_MS,
    _HOUR_MS,
    _N_CAP,
    _N_ELICIT,
    _NULL_KEY,
    _TEMPLATE_COLUMNS,
    BUDGET_STOP_REASONS,
    DISTINCT_SLOTS,
    ENTRY_POINT_TIERS,
    FEATURES,
    HEAVY_SLOTS,
    HIGH_VALUE_CAPABILITIES,
    MAX_DAYS,
    MAX_RELEASES,
    MIN_WINDOW_DAYS,
    PRIOR_EXCHANGES,
    AccountState,
    DistinctCount,
    HeavyHitters,
    account_infos,
    mix64_array,
    release_list,
    window_days,
)
from distillguard.schema import ACCOUNTS_SCHEMA, RELEASES_SCHEMA
from distillguard.signals.exchange import ELICITATION_COLUMNS

_ELICIT_ANY = " OR ".join(f"{c} > 0.5" for c in ELICITATION_COLUMNS)
_BUDGET_STOPS = ", ".join(f"'{r}'" for r in BUDGET_STOP_REASONS)

# Each account gets a dense index (`aid`, in account id order) that every later query returns, so
# the per-account arrays below are filled by index rather than by dictionary lookups.
_ACCOUNTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE _bh_acc AS
SELECT account_id, (row_number() OVER (ORDER BY account_id) - 1)::INTEGER AS aid,
       count(*) AS n, epoch_ms(min(ts)) AS first_ts, epoch_ms(max(ts)) AS last_ts,
       {", ".join(f"count(*) FILTER (WHERE {c} > 0.5) AS {c}" for c in ELICITATION_COLUMNS)},
       count(*) FILTER (WHERE {_ELICIT_ANY}) AS elicit_any,
       count(*) FILTER (WHERE coalesce(n_user, 0) <= 1 AND coalesce(n_messages, 0) <= 1) AS single_turn,
       count(*) FILTER (WHERE coalesce(has_tool_turn, false) OR coalesce(n_tools, 0) > 0) AS tool_turn,
       coalesce(sum(output_tokens), 0)::BIGINT AS out_tokens,
       coalesce(sum(input_tokens), 0)::BIGINT AS in_tokens,
       count(stop_reason) AS stop_known,
       count(*) FILTER (WHERE stop_reason IN ({_BUDGET_STOPS})) AS stop_max_tokens
FROM signals GROUP BY account_id
"""

_HOURS_SQL = f"""
CREATE OR REPLACE TEMP TABLE _bh_hours AS
SELECT aid, h, count(*) AS k
FROM (SELECT account_id, epoch_ms(ts) // {_HOUR_MS} AS h FROM signals) JOIN _bh_acc USING (account_id)
GROUP BY ALL
"""

_PEAKS_SQL = "SELECT aid, max(k), max(h), arg_max(k, h) FROM _bh_hours GROUP BY aid"
_HOUR_OF_DAY_SQL = "SELECT aid, (h % 24)::INTEGER, sum(k)::BIGINT FROM _bh_hours GROUP BY ALL"
_DAYS_SQL = f"""
SELECT aid, list(d ORDER BY d)[1:{MAX_DAYS}]
FROM (SELECT DISTINCT aid, h // 24 AS d FROM _bh_hours) GROUP BY aid
"""
_CAPABILITY_SQL = """
SELECT aid, capability, count(*) FROM signals JOIN _bh_acc USING (account_id) GROUP BY ALL
"""
_GAPS_SQL = f"""
SELECT aid, count(g), avg(g), var_pop(g)
FROM (SELECT account_id, epoch_ms(ts) - lag(epoch_ms(ts)) OVER (PARTITION BY account_id ORDER BY ts) AS g
      FROM signals) JOIN _bh_acc USING (account_id)
WHERE g < {_GAP_LIMIT_MS}
GROUP BY aid
"""


def _top_values_sql(column: str) -> str:
    """Each account's `HEAVY_SLOTS` most used values of `column` with their exact counts."""
    return f"""
    SELECT aid, key, k FROM (
        SELECT account_id, coalesce({column}, {_NULL_KEY}) AS key, count(*) AS k FROM signals GROUP BY ALL
    ) JOIN _bh_acc USING (account_id)
    QUALIFY row_number() OVER (PARTITION BY aid ORDER BY k DESC, key) <= {HEAVY_SLOTS}
    """


_FRAMES_SQL = f"""
SELECT DISTINCT aid, coalesce(frame_hash, {_NULL_KEY}) AS key FROM signals JOIN _bh_acc USING (account_id)
"""
_RELEASE_TRAFFIC_SQL = f"""
SELECT a.aid, r.i, count(*), count(*) FILTER (WHERE s.model = r.model)
FROM signals s JOIN _bh_rel r ON epoch_ms(s.ts) >= r.ms AND epoch_ms(s.ts) < r.ms + {_DAY_MS}
JOIN _bh_acc a USING (account_id)
GROUP BY ALL
"""


def ensure_side_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create empty `accounts` / `releases` tables when the user gave none, so one query serves all."""
    for name, schema in (("accounts", ACCOUNTS_SCHEMA), ("releases", RELEASES_SCHEMA)):
        con.register("_side_empty", schema.empty_table())
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} AS SELECT * FROM _side_empty")
        con.unregister("_side_empty")


# A distributed engine that has already folded the states leaves them here, one serialised
# `AccountState` per row (several rows of one account are partial states, merged on reading).
STATE_TABLE = "account_state_blobs"


def account_states(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[AccountState]]:
    """Account ids (sorted) and the `AccountState` of each, as folding the account's exchanges of
    the `signals` table in time order would leave it, except that the template sketches hold each
    value's exact count (the fold sees whole counts, so its top shares are exact).

    When the `STATE_TABLE` exists (written by `engines.spark`), the states are read from it."""
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [STATE_TABLE]).fetchall()[0][0]:
        return merged_states(con.sql(f"SELECT account_id, state FROM {STATE_TABLE}").to_arrow_table())
    ensure_side_tables(con)
    con.execute(_ACCOUNTS_SQL)
    try:
        return _states(con)
    finally:
        con.execute("DROP TABLE IF EXISTS _bh_acc; DROP TABLE IF EXISTS _bh_hours")


def merged_states(table: pa.Table) -> tuple[list[str], list[AccountState]]:
    """Account ids (sorted) and states from a table of `account_id` and serialised `state`, the
    partial states of one account merged (`AccountState.merge`)."""
    out: dict[str, AccountState] = {}
    for account, blob in zip(table.column("account_id").to_pylist(), table.column("state").to_pylist(), strict=True):
        state = AccountState.from_bytes(blob)
        if account in out:
            out[account].merge(state)
        else:
            out[account] = state
    ids = sorted(out)
    return ids, [out[a] for a in ids]


def _states(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[AccountState]]:
    acc = con.sql("SELECT * FROM _bh_acc ORDER BY aid").to_arrow_table()
    ids = acc.column("account_id").to_pylist()
    n_acc = len(ids)
    cols = {name: acc.column(name).to_pylist() for name in acc.column_names if name != "account_id"}
    elicit = np.column_stack([acc.column(c).to_numpy() for c in ELICITATION_COLUMNS]).astype(np.int64) \
        if n_acc else np.zeros((0, _N_ELICIT), np.int64)

    con.execute(_HOURS_SQL)
    peak, cur_hour, cur_count = (np.zeros(n_acc, np.int64) for _ in range(3))
    for aid, k, h, k_last in con.execute(_PEAKS_SQL).fetchall():
        peak[aid], cur_hour[aid], cur_count[aid] = k, h, k_last
    hour_of_day = _histogram(con.execute(_HOUR_OF_DAY_SQL).fetchall(), n_acc, 24)
    capability = _histogram(con.execute(_CAPABILITY_SQL).fetchall(), n_acc, _N_CAP)
    days: list[list[int]] = [[] for _ in range(n_acc)]
    for aid, values in con.execute(_DAYS_SQL).fetchall():
        days[aid] = values
    gaps = [(0, 0.0, 0.0)] * n_acc
    for aid, count, mean, var in con.execute(_GAPS_SQL).fetchall():
        gaps[aid] = (count, float(mean), float(var) * count)
    templates = [[HeavyHitters() for _ in _TEMPLATE_COLUMNS] for _ in range(n_acc)]
    for j, column in enumerate(_TEMPLATE_COLUMNS):
        for aid, key, k in con.execute(_top_values_sql(column)).fetchall():
            sketch = templates[aid][j]
            sketch.counts[key] = k
            sketch.errors[key] = 0
    frames = _smallest_hashes(con.sql(_FRAMES_SQL).to_arrow_table(), n_acc)
    releases = _release_slots(con, n_acc, cols["first_ts"])

    states = []
    for aid in range(n_acc):
        state = AccountState.__new__(AccountState)
        gap_n, gap_mean, gap_m2 = gaps[aid]
        # Built field by field, as `AccountState.from_bytes` does: cheaper than __init__'s factories.
        state.__dict__.update(
            n=cols["n"][aid], first_ts=cols["first_ts"][aid], last_ts=cols["last_ts"][aid],
            elicit=elicit[aid].tolist(), elicit_any=cols["elicit_any"][aid],
            capability=capability[aid].tolist(), hour_of_day=hour_of_day[aid].tolist(),
            single_turn=cols["single_turn"][aid], tool_turn=cols["tool_turn"][aid],
            out_tokens=cols["out_tokens"][aid], in_tokens=cols["in_tokens"][aid],
            stop_known=cols["stop_known"][aid], stop_max_tokens=cols["stop_max_tokens"][aid],
            gap_n=gap_n, gap_mean=gap_mean, gap_m2=gap_m2,
            cur_hour=int(cur_hour[aid]), cur_hour_count=int(cur_count[aid]), peak_hour=int(peak[aid]),
            days=set(days[aid]), templates=templates[aid], frames=DistinctCount(frames[aid]),
            releases=releases[aid],
        )
        states.append(state)
    return ids, states


def _histogram(rows: list[tuple[int, int, int]], n_acc: int, width: int) -> np.ndarray:
    out = np.zeros((n_acc, width), np.int64)
    if rows:
        aid, slot, count = np.asarray(rows, dtype=np.int64).T
        out[aid, slot] = count
    return out


def _smallest_hashes(table: pa.Table, n_acc: int) -> list[list[int]]:
    """Per account, the `DISTINCT_SLOTS` smallest mixed hashes of its distinct frames (the
    k-minimum-values sketch `DistinctCount` keeps)."""
    out: list[list[int]] = [[] for _ in range(n_acc)]
    if table.num_rows == 0:
        return out
    aid = table.column("aid").to_numpy()
    hashed = mix64_array(table.column("key").to_numpy().astype(np.int64))
    order = np.lexsort((hashed, aid))
    aid, hashed = aid[order], hashed[order]
    starts = np.flatnonzero(np.r_[True, aid[1:] != aid[:-1]])
    rank = np.arange(len(aid)) - np.repeat(starts, np.diff(np.r_[starts, len(aid)]))
    keep = rank < DISTINCT_SLOTS
    for a, h in zip(aid[keep].tolist(), hashed[keep].tolist(), strict=True):
        out[a].append(h)
    return out


def _release_slots(con: duckdb.DuckDBPyConnection, n_acc: int, first_ts: list[int]) -> list[dict[int, list[int]]]:
    """Per account and release: [active before it, exchanges in its first 24 h, of which to the
    new model], for the releases `AccountState` tracks (the first `MAX_RELEASES` in release order)."""
    out: list[dict[int, list[int]]] = [{} for _ in range(n_acc)]
    releases = release_list(con.sql("SELECT * FROM releases").to_arrow_table())[:MAX_RELEASES]
    if not releases:
        return out
    for aid, first in enumerate(first_ts):
        for i, rel in enumerate(releases):
            if first < rel.released_at_ms:
                out[aid][i] = [1, 0, 0]
    con.register("_bh_rel", pa.table({"i": list(range(len(releases))), "model": [r.model for r in releases],
                                      "ms": [r.released_at_ms for r in releases]}))
    try:
        for aid, i, n_in, n_new in con.execute(_RELEASE_TRAFFIC_SQL).fetchall():
            slot = out[aid].setdefault(i, [0, 0, 0])
            slot[1], slot[2] = n_in, n_new
    finally:
        con.unregister("_bh_rel")
    return out


def account_features(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """One row per account of the `signals` table: `account_id`, `n_exchanges` and `FEATURES`."""
    ids, states = account_states(con)
    infos = account_infos(con.sql("SELECT * FROM accounts").to_arrow_table())
    if states:
        lo, hi = con.execute("SELECT epoch_ms(min(ts)), epoch_ms(max(ts)) FROM signals").fetchall()[0]
        days = window_days(lo, hi)
    rows = [state.features(days, infos.get(account)) for account, state in zip(ids, states, strict=True)]
    columns: dict[str, pa.Array] = {
        "account_id": pa.array(ids, pa.string()),
        "n_exchanges": pa.array([s.n for s in states], pa.int64()),
    }
    for name in FEATURES:
        columns[name] = pa.array([row[name] for row in rows], pa.float64())
    return pa.table(columns)
