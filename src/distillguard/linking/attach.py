"""Attaching new accounts to known clusters between two linking passes.

Linking is a batch step; between two passes a hydra network keeps opening fresh accounts, and each
of them is unknown until the next pass. What a lazier network cannot avoid is reusing its
infrastructure: the same proxy ranges, cards and client stack for its new accounts.

At each pass, `cluster_keys` collects the infrastructure keys (IP prefix, payment fingerprint, TLS
fingerprint) that are *distinctive* of a high-risk cluster: used by at least `MIN_MEMBERS` of its
accounts, and by almost no unflagged account outside the high-risk clusters (`MIN_PURITY` of those
users are members of one), so a campus NAT or a cloud range shared with honest accounts never
qualifies. Flagged accounts outside the clusters do not count against a key: a network's members
that the pass left unclustered are no reason to stop recognising its ranges. A key shared by
several high-risk clusters (one network that a linking pass found in pieces) goes to the cluster
with most of its users. Online, `row_keys` lists an exchange's keys and an unclustered account
whose exchange hits a distinctive key joins that cluster until the next pass decides for real.

Content keys (template hashes, near-duplicate bands) are not used: measured on `medium` seed 2,
attaching on them throttled 62 of 220 benchmark runners and 35 of 220 evaluation graders, whose
problem sets and rubrics campaigns harvest too, while attaching on infrastructure alone acted on no
honest account that the replay without attaching left alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import duckdb
import pyarrow as pa

MIN_MEMBERS = 3
MIN_PURITY = 0.9
# Only clusters at least this risky (mean member risk) lend their keys.
ATTACH_MIN_CLUSTER_RISK = 0.5

# (kind, column of `signals`)
_KINDS: tuple[tuple[str, str], ...] = (
    ("tls", "tls_fingerprint"),
    ("payment", "payment_fingerprint"),
    ("ip_prefix", "ip_prefix"),
)


def cluster_keys(con: duckdb.DuckDBPyConnection, members: pa.Table, clusters: Iterable[str],
                 flagged: Callable[[list[str]], Collection[str]] | None = None) -> dict[tuple[str, str], str]:
    """Distinctive keys of the given clusters over the `signals` table: (kind, key) -> cluster id.

    `members` has `account_id` and `cluster_id` (null for unclustered accounts, which count as
    outsiders only through `signals`). `flagged(accounts)` tells which of the given accounts are
    flagged; it is asked only about the outsiders of keys that fail without it, and never about
    a key most of whose users are outsiders (no number of flagged ones among them would make it
    distinctive enough to matter)."""
    wanted = sorted(set(clusters))
    if not wanted or members.num_rows == 0:
        return {}
    con.register("_att_members", members.select(["account_id", "cluster_id"]))
    con.register("_att_wanted", pa.table({"cluster_id": pa.array(wanted, pa.string())}))
    candidates: list[tuple[str, str, str, int, list[str]]] = []
    try:
        for kind, column in _KINDS:
            rows = con.execute(f"""
                WITH tagged AS (
                    SELECT u.key, u.account_id, m.cluster_id
                    FROM (SELECT DISTINCT account_id, {column} AS key FROM signals WHERE {column} IS NOT NULL) u
                    LEFT JOIN (SELECT * FROM _att_members WHERE cluster_id IN (SELECT cluster_id FROM _att_wanted)) m
                    USING (account_id)
                ),
                candidate AS (
                    SELECT key, arg_max(cluster_id, n) AS cluster_id, sum(n) AS inside
                    FROM (SELECT key, cluster_id, count(*) AS n FROM tagged WHERE cluster_id IS NOT NULL GROUP BY ALL)
                    GROUP BY key HAVING max(n) >= {MIN_MEMBERS}
                ),
                outside AS (
                    SELECT key, count(*) AS n, list(account_id ORDER BY account_id) AS accounts
                    FROM tagged WHERE cluster_id IS NULL GROUP BY key
                )
                SELECT c.key, c.cluster_id, c.inside, coalesce(o.accounts, [])
                FROM candidate c LEFT JOIN outside o USING (key)
                WHERE coalesce(o.n, 0) <= c.inside
            """).fetchall()
            candidates.extend((kind, key, cluster, inside, outside) for key, cluster, inside, outside in rows)
    finally:
        con.unregister("_att_members")
        con.unregister("_att_wanted")
    doubtful = sorted({a for *_, inside, outside in candidates
                       if inside < MIN_PURITY * (inside + len(outside)) for a in outside})
    known = set(flagged(doubtful)) if flagged is not None and doubtful else set()
    index: dict[tuple[str, str], str] = {}
    for kind, key, cluster, inside, outside in candidates:
        if inside >= MIN_PURITY * (inside + sum(a not in known for a in outside)):
            index[(kind, key)] = cluster
    return index


def egress_owners(con: duckdb.DuckDBPyConnection, verdicts: pa.Table, kinds: Collection[str], *,
                  min_accounts: int, purity: float) -> dict[tuple[str, str], float]:
    """The online form of the verdict inheritance (`linking.link.inherit_verdicts`): (kind, key) ->
    risk for the values of `kinds` in the `signals` table used by `min_accounts` or more of the
    accounts of `verdicts` (account_id, risk, flagged), at least `purity` of them flagged; the risk
    is the median risk of those flagged users. A request through such a value is the operation's."""
    columns = [(kind, column) for kind, column in _KINDS if kind in kinds]
    if not columns or verdicts.num_rows == 0:
        return {}
    con.register("_eg_verdict", verdicts.select(["account_id", "risk", "flagged"]))
    out: dict[tuple[str, str], float] = {}
    try:
        for kind, column in columns:
            rows = con.execute(f"""
                SELECT key, median(v.risk) FILTER (WHERE v.flagged)
                FROM (SELECT DISTINCT account_id, {column}::VARCHAR AS key FROM signals WHERE {column} IS NOT NULL)
                JOIN _eg_verdict v USING (account_id)
                GROUP BY key
                HAVING count(*) >= {min_accounts} AND count(*) FILTER (WHERE v.flagged) >= {purity} * count(*)
            """).fetchall()
            out.update(((kind, key), float(risk)) for key, risk in rows)
    finally:
        con.unregister("_eg_verdict")
    return out


def row_keys(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (kind, key) pairs of one signals row, in the same text form as `cluster_keys`."""
    return [(kind, str(row[column])) for kind, column in _KINDS if row.get(column) is not None]


def match_cluster(row: Mapping[str, Any], index: Mapping[tuple[str, str], str]) -> str | None:
    """The cluster whose distinctive keys this exchange hits, if any (the one it hits most)."""
    if not index:
        return None
    hits = Counter(c for c in (index.get(k) for k in row_keys(row)) if c is not None)
    return hits.most_common(1)[0][0] if hits else None
