"""Communities of the thresholded account graph (Leiden, constant Potts model).

Connected components alone chain: one coincidental edge would merge two campaigns, or a campaign
and a bystander. The constant Potts model asks every community to be denser than `resolution`
(in edge-weight units), so loosely attached accounts and bridges between dense groups are cut,
and it has no resolution limit: a 5-account group and a 5,000-account group are found alike.
"""

from __future__ import annotations

import duckdb
import igraph as ig
import leidenalg
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from distillguard.linking.config import LinkConfig

NO_CLUSTER = -1


def communities(
    a: np.ndarray, b: np.ndarray, weight: np.ndarray, n_accounts: int, cfg: LinkConfig, n_iterations: int = -1
) -> np.ndarray:
    """Community label per account id in ``range(n_accounts)``; NO_CLUSTER for small or isolated ones.

    Leiden runs until a pass improves nothing (`n_iterations=-1`), or that many passes."""
    labels = np.full(n_accounts, NO_CLUSTER, dtype=np.int64)
    if len(a) == 0:
        return labels
    # Only accounts with an edge enter the graph: the rest are singletons by definition.
    nodes, local = np.unique(np.concatenate([a, b]), return_inverse=True)
    pairs = local.reshape(2, -1).T
    graph = ig.Graph(n=len(nodes), edges=pairs.tolist(), edge_attrs={"weight": weight.tolist()})
    partition = leidenalg.find_partition(
        graph,
        leidenalg.CPMVertexPartition,
        weights="weight",
        resolution_parameter=cfg.resolution,
        n_iterations=n_iterations,
        seed=0,
    )
    membership = np.asarray(partition.membership, dtype=np.int64)
    sizes = np.bincount(membership)
    keep = sizes[membership] >= cfg.min_cluster_accounts
    labels[nodes[keep]] = membership[keep]
    return labels


def signature_merges(con: duckdb.DuckDBPyConnection, labels: np.ndarray, cfg: LinkConfig) -> np.ndarray:
    """Merge communities that share what defines them.

    A campaign whose accounts each ask a different sample of one large task list, from distinct
    addresses, leaves most pairs of its accounts too little in common for an edge: the graph holds
    it as several dense pieces, each pure. What the pieces still share is their *signature*: the
    values (system prompt, wrapper, TLS stack, ...) that at least half of each piece's members use.
    Two communities whose signatures overlap by at least `cfg.merge_min_jaccard` are one group.
    Only communities of `cfg.merge_min_accounts` or more take part: in a handful of accounts, "used
    by half of them" is as likely to be a coincidence as a signature.
    Values shared by more than `bucket_cap` accounts carry no weight in the graph and are left
    out here too, so a popular browser or a stock prompt cannot merge unrelated groups.
    """
    if cfg.merge_min_jaccard <= 0 or (labels != NO_CLUSTER).sum() == 0:
        return labels
    aid = np.flatnonzero(labels != NO_CLUSTER).astype(np.int32)
    con.register("_lk_sig_members", pa.table({"aid": aid, "cid": labels[aid]}))
    try:
        pairs = con.execute(
            f"""
            WITH sizes AS (SELECT cid, count(*) AS n FROM _lk_sig_members GROUP BY cid),
            uses AS (
                SELECT m.cid, i.kind, i.key, count(*) AS n_use
                FROM _lk_inc i JOIN _lk_sig_members m USING (aid) JOIN _lk_bucket b USING (kind, key)
                WHERE b.n_acc <= {cfg.bucket_cap}
                GROUP BY ALL
            ),
            sig AS (SELECT u.cid, u.kind, u.key FROM uses u JOIN sizes s USING (cid)
                    WHERE u.n_use >= 0.5 * s.n AND s.n >= {cfg.merge_min_accounts}),
            sig_size AS (SELECT cid, count(*) AS k FROM sig GROUP BY cid),
            shared AS (
                SELECT a.cid AS c1, b.cid AS c2, count(*) AS n
                FROM sig a JOIN sig b ON a.kind = b.kind AND a.key = b.key AND a.cid < b.cid
                GROUP BY ALL
            )
            SELECT c1, c2 FROM shared
            JOIN sig_size s1 ON s1.cid = c1 JOIN sig_size s2 ON s2.cid = c2
            WHERE n >= {cfg.merge_min_jaccard} * (s1.k + s2.k - n)
            """
        ).fetchall()
    finally:
        con.unregister("_lk_sig_members")
    if not pairs:
        return labels
    # Merges are transitive: each community joins the lowest-numbered one of its component.
    n = int(labels.max()) + 1
    c1, c2 = np.asarray(pairs, dtype=np.int64).T
    _, component = connected_components(coo_matrix((np.ones(len(c1)), (c1, c2)), shape=(n, n)), directed=False)
    lowest = np.full(component.max() + 1, n)
    np.minimum.at(lowest, component, np.arange(n))
    merged = labels.copy()
    clustered = merged != NO_CLUSTER
    merged[clustered] = lowest[component[merged[clustered]]]
    return merged
