"""Attaching new accounts to known clusters between two linking passes.

Linking is a batch step; between two passes a hydra network keeps opening fresh accounts, and each
of them is unknown until the next pass. What a fresh account cannot avoid is reusing its network's
material: its task lists and wrappers (template hashes and near-duplicate bands, which survive
paraphrase better than exact text) and, for a lazier network, its infrastructure.

At each pass, `cluster_keys` collects the keys that are *distinctive* of a high-risk cluster: used
by at least `MIN_MEMBERS` of its accounts and by almost no account outside the high-risk clusters
(`MIN_PURITY` of their users are members of one), so a stock prompt or a campus NAT shared with
honest accounts never qualifies. A key shared by several high-risk clusters (one network that a
linking pass found in pieces) goes to the cluster with most of its users. Online, `row_keys` lists
an exchange's keys and an unclustered account whose exchange hits `MIN_HITS` distinctive keys of
one cluster joins it until the next pass decides for real.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb
import pyarrow as pa

MIN_MEMBERS = 3
MIN_PURITY = 0.9
MIN_HITS = 2
# Only clusters at least this risky (mean member risk) lend their keys.
ATTACH_MIN_CLUSTER_RISK = 0.5

# (kind, SQL expression over `signals` giving one key per row, or a list to unnest)
_KINDS: tuple[tuple[str, str], ...] = (
    ("frame", "frame_hash::VARCHAR"),
    ("tail", "tail_hash::VARCHAR"),
    ("skeleton", "skel_hash::VARCHAR"),
    ("system", "sys_hash::VARCHAR"),
    ("lsh", "unnest(lsh)::VARCHAR"),
    ("tls", "tls_fingerprint"),
    ("payment", "payment_fingerprint"),
    ("ip_prefix", "ip_prefix"),
)


def cluster_keys(con: duckdb.DuckDBPyConnection, members: pa.Table, clusters: Iterable[str]) -> dict[tuple[str, str], str]:
    """Distinctive keys of the given clusters over the `signals` table: (kind, key) -> cluster id.

    `members` has `account_id` and `cluster_id` (null for unclustered accounts, which count as
    outsiders only through `signals`)."""
    wanted = sorted(set(clusters))
    if not wanted or members.num_rows == 0:
        return {}
    con.register("_att_members", members.select(["account_id", "cluster_id"]))
    con.register("_att_wanted", pa.table({"cluster_id": pa.array(wanted, pa.string())}))
    index: dict[tuple[str, str], str] = {}
    try:
        for kind, expr in _KINDS:
            rows = con.execute(f"""
                WITH users AS (
                    SELECT DISTINCT account_id, {expr} AS key FROM signals
                ),
                by_cluster AS (
                    SELECT u.key, m.cluster_id, count(*) AS n
                    FROM users u JOIN _att_members m USING (account_id)
                    WHERE u.key IS NOT NULL AND m.cluster_id IN (SELECT cluster_id FROM _att_wanted)
                    GROUP BY ALL
                ),
                candidate AS (
                    SELECT key, arg_max(cluster_id, n) AS cluster_id, max(n) AS n, sum(n) AS inside
                    FROM by_cluster GROUP BY key HAVING max(n) >= {MIN_MEMBERS}
                ),
                total AS (
                    SELECT key, count(*) AS n FROM users WHERE key IN (SELECT key FROM candidate) GROUP BY key
                )
                SELECT c.key, c.cluster_id FROM candidate c JOIN total t USING (key)
                WHERE c.inside >= {MIN_PURITY} * t.n
            """).fetchall()
            for key, cluster in rows:
                index[(kind, key)] = cluster
    finally:
        con.unregister("_att_members")
        con.unregister("_att_wanted")
    return index


def row_keys(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (kind, key) pairs of one signals row, in the same text form as `cluster_keys`."""
    keys = []
    for kind, column in (("frame", "frame_hash"), ("tail", "tail_hash"), ("skeleton", "skel_hash"),
                         ("system", "sys_hash"), ("tls", "tls_fingerprint"),
                         ("payment", "payment_fingerprint"), ("ip_prefix", "ip_prefix")):
        value = row.get(column)
        if value is not None:
            keys.append((kind, str(value)))
    keys.extend(("lsh", str(band)) for band in row.get("lsh") or ())
    return keys


def match_cluster(row: Mapping[str, Any], index: Mapping[tuple[str, str], str]) -> str | None:
    """The cluster whose distinctive keys this exchange hits at least `MIN_HITS` times, if any."""
    if not index:
        return None
    hits = Counter(c for c in (index.get(k) for k in set(row_keys(row))) if c is not None)
    if not hits:
        return None
    cluster, n = hits.most_common(1)[0]
    return cluster if n >= MIN_HITS else None
