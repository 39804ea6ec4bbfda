"""Cross-account linking: graph, communities, content scores, cluster features, reasons."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from distillguard.behaviour.features import ensure_side_tables
from distillguard.linking.cluster import NO_CLUSTER, communities, consolidate, signature_merges
from distillguard.linking.config import (
    CREATION_BURST,
    KIND_ID,
    NEW_MODEL_PIVOT,
    SHARED_HARVEST_CONTENT,
    WATCHLIST_MATCH,
    LinkConfig,
    kind_reason,
)
from distillguard.linking.content import CONTENT_TABLES, attach_sql, score_content
from distillguard.linking.features import CLUSTER_FEATURES, cluster_feature_sql, reason_sql
from distillguard.linking.graph import build_graph, drop_temp_tables
from distillguard.linking.grouping import GROUPING_TABLES, ask_counts, by_verdict, set_sides, whole_graph
from distillguard.progress import StageClock
from distillguard.signals.capability import CAPABILITIES

if TYPE_CHECKING:
    from distillguard.intel.watchlist import Watchlist

_ACCOUNT_ONLY = ("content_risk",)
_CLUSTER_LEVEL = tuple(f for f in CLUSTER_FEATURES if f not in _ACCOUNT_ONLY)
_STAGE_TABLES = ("_lk_member", "_lk_cluster", "_lk_watch", *CONTENT_TABLES)


@dataclass
class LinkResult:
    """Linking output; see docs/linking.md for every column."""

    # account_id, cluster_id (null when none), *CLUSTER_FEATURES, watchlist (0/1), link_reasons
    accounts: pa.Table
    # cluster_id, n_accounts, n_exchanges, capabilities, reasons, first_ts, last_ts, cluster features
    clusters: pa.Table
    # account_a, account_b, weight, kinds: the edges inside clusters
    edges: pa.Table


def _set_members(con: duckdb.DuckDBPyConnection, labels: np.ndarray) -> None:
    aid = np.flatnonzero(labels != NO_CLUSTER).astype(np.int32)
    members = pa.table({"aid": aid, "cid": labels[aid]})
    con.register("_lk_member_in", members)
    con.execute("CREATE OR REPLACE TEMP TABLE _lk_member AS SELECT * FROM _lk_member_in")
    con.unregister("_lk_member_in")


def _pool_attach_sql(cfg: LinkConfig) -> str:
    """Rows (aid, cid) for unclustered accounts whose pool-kind traffic goes through one cluster's
    values (`LinkConfig.pool_attach_min_share`)."""
    kinds = ", ".join(str(KIND_ID[k]) for k in cfg.pool_kinds)
    return f"""
    WITH pool AS (SELECT aid, kind, key, n FROM _lk_inc WHERE kind IN ({kinds})),
    users AS (
        SELECT p.kind, p.key, m.cid, count(*) AS n, any_value(b.n_acc) AS n_acc,
               sum(count(*)) OVER (PARTITION BY p.kind, p.key) AS n_clustered
        FROM pool p JOIN _lk_member m USING (aid) JOIN _lk_bucket b USING (kind, key)
        GROUP BY p.kind, p.key, m.cid
    ),
    owner AS (
        SELECT kind, key, cid FROM users
        WHERE n >= {cfg.merge_min_accounts} AND n >= 0.5 * n_acc AND n >= {cfg.pool_attach_purity} * n_clustered
    ),
    loose AS (SELECT * FROM pool WHERE aid NOT IN (SELECT aid FROM _lk_member)),
    total AS (SELECT aid, sum(n) AS n FROM loose GROUP BY aid),
    owned AS (SELECT l.aid, o.cid, sum(l.n) AS n FROM loose l JOIN owner o USING (kind, key) GROUP BY ALL)
    SELECT o.aid, o.cid FROM owned o JOIN total t USING (aid)
    WHERE o.n >= {cfg.pool_attach_min_share} * t.n
    QUALIFY row_number() OVER (PARTITION BY o.aid ORDER BY o.n DESC, o.cid) = 1
    """


def _inherit_sql(cfg: LinkConfig) -> str:
    """Rows (aid, kind, risk) of the unflagged accounts of `_lk_verdict` that inherit the verdict
    of the flagged accounts sharing their values (`LinkConfig.inherit_purity`)."""
    kinds = ", ".join(str(KIND_ID[k]) for k in cfg.inherit_kinds)
    return f"""
    WITH inc AS (SELECT aid, kind, key, n FROM _lk_inc WHERE kind IN ({kinds})),
    val AS (
        SELECT kind, key, count(*) AS n_acc, count(*) FILTER (WHERE v.flagged) AS n_flagged,
               median(v.risk) FILTER (WHERE v.flagged) AS risk
        FROM inc JOIN _lk_verdict v USING (aid) GROUP BY kind, key
        HAVING count(*) >= {cfg.inherit_min_accounts}
    ),
    hit AS (
        SELECT i.aid, i.kind, sum(i.n) AS n, max(val.risk) AS risk
        FROM inc i JOIN val USING (kind, key) JOIN _lk_verdict v USING (aid)
        WHERE NOT v.flagged AND val.n_flagged >= {cfg.inherit_purity} * (val.n_acc - 1)
        GROUP BY i.aid, i.kind
    )
    SELECT h.aid, h.kind, h.risk FROM hit h JOIN _lk_acct a USING (aid)
    WHERE h.n >= {cfg.inherit_min_share} * a.n_ex
    QUALIFY row_number() OVER (PARTITION BY h.aid ORDER BY h.risk DESC, h.kind) = 1
    """


def inherit_verdicts(con: duckdb.DuckDBPyConnection, risk: np.ndarray, flagged: np.ndarray,
                     cfg: LinkConfig) -> dict[int, str]:
    """Flag, in place, the accounts (by `aid` of the connection's `_lk_acct` and `_lk_inc`) that
    inherit the verdict of the flagged accounts sharing their egress ranges or cards, round after
    round until none does (`LinkConfig.inherit_rounds`); returns aid -> the kind's reason code."""
    reason: dict[int, str] = {}
    codes = {KIND_ID[k]: kind_reason(k, cfg.kinds) for k in cfg.inherit_kinds}
    for _ in range(cfg.inherit_rounds if cfg.inherit_kinds else 0):
        con.register("_lk_verdict", pa.table({"aid": np.arange(len(risk), dtype=np.int32), "risk": risk,
                                              "flagged": flagged}))
        try:
            found = con.execute(_inherit_sql(cfg)).fetchall()
        finally:
            con.unregister("_lk_verdict")
        if not found:
            break
        for aid, kind, value in found:
            risk[aid], flagged[aid] = max(risk[aid], value), True
            reason[aid] = codes[kind]
    return reason


def _cluster_table_sql(cfg: LinkConfig) -> str:
    names = "[" + ", ".join(f"'{c}'" for c in CAPABILITIES) + "]"
    return f"""
    CREATE OR REPLACE TEMP TABLE _lk_cluster AS
    WITH f AS ({cluster_feature_sql(cfg)}),
    r AS (SELECT cid, string_agg(reason, ';' ORDER BY weight DESC) AS reasons FROM ({reason_sql("cid")})
          WHERE weight > 0 GROUP BY cid),
    lo AS (SELECT m.cid, min(a.account_id) AS first_account FROM _lk_member m JOIN _lk_acct a USING (aid)
           GROUP BY m.cid)
    SELECT 'cl-' || lpad((row_number() OVER (ORDER BY f.n_accounts DESC, f.n_exchanges DESC,
                                             lo.first_account))::VARCHAR, 4, '0') AS cluster_id,
           f.*,
           array_to_string(list_transform(list_filter(f.top_capabilities, lambda c: c IS NOT NULL AND c >= 0
                                                      AND c < {len(CAPABILITIES)}),
                                          lambda c: {names}[c + 1]), ';') AS capabilities,
           coalesce(r.reasons, '') AS reasons
    FROM f JOIN lo USING (cid) LEFT JOIN r USING (cid)
    """


def _accounts_sql(cfg: LinkConfig) -> str:
    cluster_cols = ",\n".join(f"coalesce(c.{f}, 0)::DOUBLE AS {f}" for f in _CLUSTER_LEVEL)
    return f"""
    WITH er AS ({reason_sql("aid")}),
    codes AS (
        SELECT aid, reason, weight, 0 AS tier FROM er WHERE weight > 0
        UNION ALL
        SELECT aid, '{SHARED_HARVEST_CONTENT}', content_risk, 1 FROM _lk_content_risk
        WHERE content_risk >= {cfg.content_reason_min}
        UNION ALL
        SELECT m.aid, '{NEW_MODEL_PIVOT}', c.cluster_pivot, 2 FROM _lk_member m JOIN _lk_cluster c USING (cid)
        WHERE c.cluster_pivot >= {cfg.cluster_code_min}
        UNION ALL
        SELECT m.aid, '{CREATION_BURST}', c.cluster_creation_burst, 2
        FROM _lk_member m JOIN _lk_cluster c USING (cid)
        WHERE c.cluster_creation_burst >= {cfg.cluster_code_min}
        UNION ALL
        SELECT a.aid, '{WATCHLIST_MATCH}', w.matches, 3 FROM _lk_watch w JOIN _lk_acct a USING (account_id)
        WHERE w.matches > 0
    ),
    -- A code reached through several routes is listed once, at its strongest place.
    best AS (SELECT aid, reason, min(tier) AS tier, max(weight) AS weight FROM codes GROUP BY aid, reason),
    reasons AS (SELECT aid, string_agg(reason, ';' ORDER BY tier, weight DESC, reason) AS link_reasons
                FROM best GROUP BY aid)
    SELECT a.account_id, c.cluster_id,
           {cluster_cols},
           coalesce(r.content_risk, 0)::DOUBLE AS content_risk,
           (coalesce(w.matches, 0) > 0)::DOUBLE AS watchlist,
           coalesce(rs.link_reasons, '') AS link_reasons
    FROM _lk_acct a
    LEFT JOIN _lk_member m USING (aid)
    LEFT JOIN _lk_cluster c USING (cid)
    LEFT JOIN _lk_content_risk r USING (aid)
    LEFT JOIN _lk_watch w USING (account_id)
    LEFT JOIN reasons rs USING (aid)
    ORDER BY a.account_id
    """


_EDGES_SQL = """
SELECT aa.account_id AS account_a, ab.account_id AS account_b, e.weight,
       array_to_string(list_transform(list_sort(map_entries(e.by_kind), 'DESC'), lambda x: x.key), ';') AS kinds
FROM _lk_edge e
JOIN _lk_member ma ON ma.aid = e.a
JOIN _lk_member mb ON mb.aid = e.b AND mb.cid = ma.cid
JOIN _lk_acct aa ON aa.aid = e.a
JOIN _lk_acct ab ON ab.aid = e.b
ORDER BY account_a, account_b
"""


def _register_watchlist(con: duckdb.DuckDBPyConnection, watchlist: Watchlist | None) -> None:
    matches = watchlist.match(con) if watchlist is not None else {}
    table = pa.table(
        {
            "account_id": pa.array(list(matches), pa.string()),
            "matches": pa.array(list(matches.values()), pa.int64()),
        }
    )
    con.register("_lk_watch_in", table)
    con.execute("CREATE OR REPLACE TEMP TABLE _lk_watch AS SELECT * FROM _lk_watch_in")
    con.unregister("_lk_watch_in")


class Linker:
    """The account graph of one connection, built once and grouped once or more.

    `link()` groups the whole graph (the clusters the scorer sees); after scoring,
    `link(flagged=...)` regroups it by verdict (`grouping.by_verdict`) into the reported operations.
    Working tables are temporary (`_lk_*`) and dropped by `close()`. When `timings` is given, the
    seconds spent in each stage are added to it (graph, clustering, content, features).
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        watchlist: Watchlist | None = None,
        config: LinkConfig | None = None,
        timings: dict[str, float] | None = None,
    ) -> None:
        self.con = con
        self.cfg = config or LinkConfig()
        self._watchlist = watchlist
        self._clock = StageClock(timings)
        ensure_side_tables(con)
        build_graph(con, self.cfg)
        self._clock.lap("graph")
        self.account_ids: list[str] = [r[0] for r in con.execute("SELECT account_id FROM _lk_acct ORDER BY aid").fetchall()]

    def __enter__(self) -> Linker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for name in (*_STAGE_TABLES, *GROUPING_TABLES):
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        drop_temp_tables(self.con)

    def _pool_merges(self, cfg: LinkConfig) -> np.ndarray:
        """Pieces of one operation that share its egress ranges or payment instruments, however many
        accounts use them, are one cluster (`cluster.signature_merges` with `cfg.pool_kinds`).

        Done after content attachment, on purpose: a fragment's content score is the share of its
        users inside its owner cluster, and an operation of thousands of accounts would own the
        stock rubric or benchmark items it harvests, pulling in the honest teams that use them."""
        members = self.con.execute("SELECT aid, cid FROM _lk_member").fetchnumpy()
        labels = np.full(len(self.account_ids), NO_CLUSTER, dtype=np.int64)
        labels[members["aid"]] = members["cid"]
        return signature_merges(self.con, labels, cfg, any_size=cfg.pool_kinds)

    def inherited(self, scored: pa.Table) -> pa.Table:
        """The unflagged accounts of `scored` (account_id, risk, flagged) that share egress ranges or
        cards with flagged accounts almost only (`LinkConfig.inherit_kinds`): account_id, the risk
        they inherit (the median risk of those flagged users) and the reason code of the kind."""
        if scored.num_rows == 0:
            return pa.table({"account_id": pa.array([], pa.string()), "risk": pa.array([], pa.float64()),
                             "reason": pa.array([], pa.string())})
        # Accounts `scored` lacks (an online store evicted their state) count as unflagged.
        by_id = dict(zip(scored.column("account_id").to_pylist(), range(scored.num_rows), strict=True))
        rows = np.array([by_id.get(a, -1) for a in self.account_ids], dtype=np.int64)
        known = rows >= 0
        risk = np.where(known, scored.column("risk").to_numpy()[np.maximum(rows, 0)], 0.0).astype(np.float64)
        flagged = known & scored.column("flagged").to_numpy(zero_copy_only=False)[np.maximum(rows, 0)].astype(bool)
        reason = inherit_verdicts(self.con, risk, flagged, self.cfg)
        aids = sorted(reason)
        return pa.table({
            "account_id": pa.array([self.account_ids[a] for a in aids], pa.string()),
            "risk": pa.array(risk[aids], pa.float64()),
            "reason": pa.array([reason[a] for a in aids], pa.string()),
        })

    def link(self, flagged: Collection[str] | None = None) -> LinkResult:
        """Cluster the graph; with `flagged` (account ids), group by verdict instead."""
        con, cfg = self.con, self.cfg
        if flagged is None:
            whole_graph(con)
            side = None
        else:
            wanted = set(flagged)
            side = np.fromiter((a in wanted for a in self.account_ids), dtype=bool, count=len(self.account_ids))
            set_sides(con, side)
            by_verdict(con, cfg)
        # Leiden depends on the order of its edges: a fixed order gives the same clusters every run.
        edges = con.execute("SELECT a, b, weight FROM _lk_edge ORDER BY a, b").fetchnumpy()
        labels = communities(edges["a"], edges["b"], edges["weight"], len(self.account_ids), cfg,
                             n_iterations=-1 if side is None else cfg.suspect_leiden_iterations)
        if side is None:
            labels = signature_merges(con, labels, cfg)
        else:
            within = side[edges["a"]] & side[edges["b"]]
            operations = consolidate(np.where(side, labels, NO_CLUSTER), edges["a"][within], edges["b"][within],
                                     edges["weight"][within], ask_counts(con, len(side), cfg), cfg)
            # New community numbers, clear of the other side's.
            operations[operations != NO_CLUSTER] += labels.max() + 1
            # Merging by signature stays within one verdict, like every edge of this grouping.
            labels = np.where(side, signature_merges(con, operations, cfg),
                              signature_merges(con, np.where(side, NO_CLUSTER, labels), cfg))
        _set_members(con, labels)
        self._clock.lap("clustering")
        score_content(con)
        con.execute(f"INSERT INTO _lk_member {attach_sql(cfg, by_side=side is not None)}")
        if side is None and cfg.pool_kinds:
            _set_members(con, self._pool_merges(cfg))
            if cfg.pool_attach_min_share > 0:
                con.execute(f"INSERT INTO _lk_member {_pool_attach_sql(cfg)}")
        self._clock.lap("content")
        _register_watchlist(con, self._watchlist)
        con.execute(_cluster_table_sql(cfg))
        accounts = con.sql(_accounts_sql(cfg)).to_arrow_table()
        clusters = con.sql(
            "SELECT * EXCLUDE (cid, top_capabilities) FROM _lk_cluster ORDER BY cluster_id"
        ).to_arrow_table()
        edge_table = con.sql(_EDGES_SQL).to_arrow_table()
        self._clock.lap("features")
        for name in _STAGE_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {name}")
        return LinkResult(accounts=accounts, clusters=clusters, edges=edge_table)


def link_accounts(
    con: duckdb.DuckDBPyConnection,
    *,
    watchlist: Watchlist | None = None,
    config: LinkConfig | None = None,
    timings: dict[str, float] | None = None,
) -> LinkResult:
    """Link the accounts of the `signals` table (with the optional `accounts`/`releases` side tables).

    One grouping of the whole graph (`Linker.link()`); working tables are dropped on return.
    """
    with Linker(con, watchlist=watchlist, config=config, timings=timings) as linker:
        return linker.link()
