"""What the report shows, selected from the result tables and, for the accounts and clusters shown
in detail only, from the `signals` table."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.signals.capability import CAPABILITIES

MAX_MODELS = 8  # models given their own colour in a timeline; the rest are "other"
HOURLY_MAX_DAYS = 31  # beyond this window, timelines count exchanges per day instead of per hour


def rows_of(table: pa.Table, columns: Sequence[str]) -> list[dict[str, Any]]:
    present = [c for c in columns if c in table.column_names]
    return table.select(present).to_pylist()


def ranked_flagged(accounts: pa.Table) -> pa.Table:
    """Flagged accounts, highest risk first (ties by account id so the page is reproducible)."""
    flagged = accounts.filter(pc.fill_null(accounts.column("flagged"), False))
    return flagged.sort_by([("risk", "descending"), ("account_id", "ascending")])


def ranked_clusters(clusters: pa.Table) -> pa.Table:
    return clusters.sort_by([("risk", "descending"), ("cluster_id", "ascending")])


def cluster_members(accounts: pa.Table, cluster_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Members of each cluster, highest risk first."""
    if not cluster_ids:
        return {}
    mask = pc.is_in(accounts.column("cluster_id"), value_set=pa.array(cluster_ids, pa.string()))
    members = accounts.filter(pc.fill_null(mask, False)).sort_by(
        [("risk", "descending"), ("account_id", "ascending")]
    )
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in cluster_ids}
    for row in rows_of(members, ("account_id", "cluster_id", "risk", "flagged", "n_exchanges")):
        out[row["cluster_id"]].append(row)
    return out


# ---------------------------------------------------------------------------------------------
# Activity from the signals table


@dataclass
class Activity:
    """Exchanges of one account or cluster: counts per time bucket and model, and per capability."""

    series: dict[str, dict[datetime, int]] = field(default_factory=lambda: defaultdict(dict))
    capabilities: dict[str, int] = field(default_factory=dict)


def capability_name(code: int | None) -> str:
    if code is None:
        return "unknown"
    return CAPABILITIES[code] if 0 <= code < len(CAPABILITIES) else f"code {code}"


def has_signals(con: duckdb.DuckDBPyConnection) -> bool:
    found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'signals'").fetchall()
    return bool(found[0][0])


def time_bucket(con: duckdb.DuckDBPyConnection) -> tuple[str, datetime | None, datetime | None]:
    """'hour' or 'day' depending on the length of the analysed window, and the window itself."""
    first, last = con.execute(
        "SELECT timezone('UTC', min(ts)), timezone('UTC', max(ts)) FROM signals"
    ).fetchall()[0]
    if first is None or last is None:
        return "hour", None, None
    return ("hour" if (last - first).days <= HOURLY_MAX_DAYS else "day"), first, last


OTHER_MODELS = "other models"


def group_activity(
    con: duckdb.DuckDBPyConnection, groups: Mapping[str, str], bucket: str
) -> dict[str, Activity]:
    """Activity per group for `groups` (account id -> group key), in two grouped queries.

    Each group keeps its `MAX_MODELS - 1` busiest models by name and sums the rest as
    `OTHER_MODELS`: model names come from the client, so their number is not bounded otherwise.
    """
    if not groups:
        return {}
    if bucket not in ("hour", "day"):  # interpolated into the SQL below
        raise ValueError(f"unknown time bucket {bucket!r}")
    name = "report_groups"
    con.register(name, pa.table({"account_id": list(groups), "grp": list(groups.values())}))
    try:
        timeline = con.execute(
            f"""
            WITH x AS (
                SELECT g.grp, s.model, date_trunc('{bucket}', timezone('UTC', s.ts)) AS t
                FROM signals s JOIN {name} g USING (account_id)
            ),
            ranked AS (
                SELECT grp, model,
                       row_number() OVER (PARTITION BY grp ORDER BY count(*) DESC, model) AS rk
                FROM x GROUP BY grp, model
            )
            SELECT x.grp, x.t, CASE WHEN r.rk < {MAX_MODELS} THEN x.model END AS model,
                   r.rk >= {MAX_MODELS} AS other, count(*) AS n
            FROM x JOIN ranked r ON x.grp = r.grp AND x.model IS NOT DISTINCT FROM r.model
            GROUP BY ALL ORDER BY x.t
            """
        ).fetchall()
        capability = con.execute(
            f"SELECT g.grp, s.capability, count(*) AS n FROM signals s JOIN {name} g USING (account_id) "
            "GROUP BY ALL ORDER BY n DESC"
        ).fetchall()
    finally:
        con.unregister(name)
    out: dict[str, Activity] = defaultdict(Activity)
    for grp, t, model, other, n in timeline:
        points = out[grp].series[OTHER_MODELS if other else (model or "(none)")]
        points[t] = points.get(t, 0) + n
    for grp, code, n in capability:
        cap = out[grp].capabilities
        label = capability_name(code)
        cap[label] = cap.get(label, 0) + n
    return out
