"""Cluster-level features: a hydra network is visible only as a group, so the group is scored.

Each feature is computed once per cluster and copied to its members (0 for unclustered accounts),
except ``content_risk``, which is the account's own share of traffic on scored shared content.
"""

from __future__ import annotations

from distillguard.linking.config import KIND_ID, LinkConfig
from distillguard.linking.content import CONTENT_KINDS
from distillguard.signals.template import LSH_BANDS

CLUSTER_FEATURES: tuple[str, ...] = (
    "cluster_log_accounts",  # ln(accounts in the cluster)
    "cluster_log_exchanges",  # ln(1 + combined volume)
    "cluster_elicit_share",  # share of the cluster's exchanges that are elicitation
    "cluster_template_share",  # share of its exchanges on content shared by >= 2 of its accounts
    "cluster_sync",  # share of its internal link weight that is synchronized activity
    "cluster_infra_share",  # share of its internal link weight that is shared infrastructure
    "cluster_capability_focus",  # share of its exchanges in its top capability area
    "cluster_pivot",  # share of its post-release traffic that moved to the newly released model
    "cluster_creation_burst",  # largest share of its accounts created within one hour
    "cluster_content_risk",  # exchange-weighted content_risk of its accounts
    "content_risk",  # the account's share of traffic on high-scoring shared content
)

_CONTENT_IDS = ", ".join(str(KIND_ID[k]) for k in CONTENT_KINDS)


def releases_sql() -> str:
    """Given releases, or, when none are given, models first seen after the log's first day."""
    return """
    SELECT model, released_at FROM releases WHERE released_at IS NOT NULL
    UNION ALL
    SELECT model, min(ts) AS released_at FROM _lk_x
    WHERE NOT EXISTS (SELECT 1 FROM releases WHERE released_at IS NOT NULL)
    GROUP BY model
    HAVING min(ts) > (SELECT min(ts) + INTERVAL 1 DAY FROM _lk_x)
    """


def cluster_feature_sql(cfg: LinkConfig) -> str:
    """One row per cluster id of `_lk_member` with the cluster features and report columns."""
    return f"""
    WITH cx AS (SELECT m.cid, x.* FROM _lk_x x JOIN _lk_member m USING (aid)),
    base AS (
        SELECT cid, count(DISTINCT aid) AS n_accounts, count(*) AS n_exchanges,
               avg(elicit::DOUBLE) AS elicit_share, min(ts) AS first_ts, max(ts) AS last_ts
        FROM cx GROUP BY cid
    ),
    caps AS (
        SELECT cid, max(k) / sum(k) AS focus,
               list(capability ORDER BY k DESC) FILTER (k >= 0.2 * total) AS top_capabilities
        FROM (SELECT cid, capability, count(*) AS k, sum(count(*)) OVER (PARTITION BY cid) AS total
              FROM cx GROUP BY cid, capability)
        GROUP BY cid
    ),
    shared AS (
        -- Content keys used by at least two of the cluster's accounts; LSH keys come LSH_BANDS per
        -- exchange, so their coverage is averaged over bands.
        SELECT s.cid, max(s.n_sum / b.n_exchanges / CASE WHEN s.kind = {KIND_ID["near_duplicate"]}
                                                         THEN {LSH_BANDS} ELSE 1 END) AS template_share
        FROM (SELECT m.cid, i.kind, sum(i.n) AS n_sum
              FROM _lk_inc i JOIN _lk_member m USING (aid)
              JOIN (SELECT i2.kind, i2.key, m2.cid FROM _lk_inc i2 JOIN _lk_member m2 USING (aid)
                    WHERE i2.kind IN ({_CONTENT_IDS})
                    GROUP BY ALL HAVING count(*) >= 2) k USING (kind, key, cid)
              GROUP BY m.cid, i.kind) s
        JOIN base b USING (cid)
        GROUP BY s.cid
    ),
    mix AS (
        SELECT ma.cid, sum(e.sync) / sum(e.weight) AS sync_share, sum(e.infra) / sum(e.weight) AS infra_share
        FROM _lk_edge e
        JOIN _lk_member ma ON ma.aid = e.a
        JOIN _lk_member mb ON mb.aid = e.b AND mb.cid = ma.cid
        GROUP BY ma.cid
    ),
    burst AS (
        SELECT cid, max(k) AS burst FROM (
            SELECT m.cid, count(*) OVER (PARTITION BY m.cid ORDER BY a.created_at
                                         RANGE BETWEEN CURRENT ROW AND INTERVAL 1 HOUR FOLLOWING) AS k
            FROM _lk_member m JOIN _lk_acct a USING (aid) WHERE a.created_at IS NOT NULL)
        GROUP BY cid
    ),
    rel AS ({releases_sql()}),
    pivots AS (
        -- Traffic in the hours after a release, from accounts already active before it.
        SELECT cid, max(share) AS pivot FROM (
            SELECT cx.cid, r.model, avg((cx.model = r.model)::DOUBLE) AS share
            FROM cx JOIN rel r
              ON cx.ts >= r.released_at AND cx.ts < r.released_at + INTERVAL {cfg.pivot_hours} HOUR
            JOIN _lk_acct a ON a.aid = cx.aid AND a.first_ts < r.released_at
            GROUP BY ALL)
        GROUP BY cid
    ),
    content AS (
        SELECT m.cid, sum(r.content_risk * a.n_ex) / sum(a.n_ex) AS content_risk
        FROM _lk_member m JOIN _lk_acct a USING (aid) JOIN _lk_content_risk r USING (aid)
        GROUP BY m.cid
    )
    SELECT b.cid, b.n_accounts, b.n_exchanges, b.first_ts, b.last_ts, c.top_capabilities,
           ln(b.n_accounts) AS cluster_log_accounts,
           ln(1 + b.n_exchanges) AS cluster_log_exchanges,
           b.elicit_share AS cluster_elicit_share,
           coalesce(sh.template_share, 0) AS cluster_template_share,
           coalesce(mx.sync_share, 0) AS cluster_sync,
           coalesce(mx.infra_share, 0) AS cluster_infra_share,
           c.focus AS cluster_capability_focus,
           coalesce(p.pivot, 0) AS cluster_pivot,
           CASE WHEN coalesce(bu.burst, 0) >= 2 THEN bu.burst / b.n_accounts ELSE 0 END AS cluster_creation_burst,
           coalesce(ct.content_risk, 0) AS cluster_content_risk
    FROM base b
    JOIN caps c USING (cid)
    LEFT JOIN shared sh USING (cid)
    LEFT JOIN mix mx USING (cid)
    LEFT JOIN burst bu USING (cid)
    LEFT JOIN pivots p USING (cid)
    LEFT JOIN content ct USING (cid)
    """


def reason_sql(scope: str) -> str:
    """Link weight per (scope, reason) over in-cluster edges; scope is 'cid' or 'aid'."""
    ends = (
        "SELECT cid, by_kind FROM in_cluster"
        if scope == "cid"
        else "SELECT a AS aid, by_kind FROM in_cluster UNION ALL SELECT b, by_kind FROM in_cluster"
    )
    return f"""
    WITH in_cluster AS (
        SELECT e.*, ma.cid FROM _lk_edge e
        JOIN _lk_member ma ON ma.aid = e.a
        JOIN _lk_member mb ON mb.aid = e.b AND mb.cid = ma.cid
    ),
    ends AS ({ends}),
    kv AS (SELECT {scope}, unnest(map_entries(by_kind)) AS entry FROM ends)
    SELECT {scope}, k.reason, sum(kv.entry.value) AS weight
    FROM kv JOIN _lk_kinds k ON k.name = kv.entry.key
    GROUP BY ALL
    """
