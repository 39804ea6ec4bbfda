"""Communities of the thresholded account graph (Leiden, constant Potts model).

Connected components alone chain: one coincidental edge would merge two campaigns, or a campaign
and a bystander. The constant Potts model asks every community to be denser than `resolution`
(in edge-weight units), so loosely attached accounts and bridges between dense groups are cut,
and it has no resolution limit: a 5-account group and a 5,000-account group are found alike.
Where a group's density falls with its size (flagged accounts keep only their strongest weak
edges), that constant threshold cuts one operation into pieces: `consolidate` joins them.
"""

from __future__ import annotations

import duckdb
import igraph as ig
import leidenalg
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from distillguard.linking.config import KIND_ID, LinkConfig

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
    labels[nodes] = partition.membership
    return _without_small(labels, cfg.min_cluster_accounts)


def _without_small(labels: np.ndarray, min_accounts: int) -> np.ndarray:
    """`labels` with the members of communities smaller than `min_accounts` set to NO_CLUSTER."""
    clustered = labels != NO_CLUSTER
    small = np.zeros(len(labels), dtype=bool)
    small[clustered] = np.bincount(labels[clustered])[labels[clustered]] < min_accounts
    return np.where(small, NO_CLUSTER, labels)


def signature_merges(con: duckdb.DuckDBPyConnection, labels: np.ndarray, cfg: LinkConfig,
                     any_size: tuple[str, ...] = ()) -> np.ndarray:
    """Merge communities that share what defines them.

    A campaign whose accounts each ask a different sample of one large task list, from distinct
    addresses, leaves most pairs of its accounts too little in common for an edge: the graph holds
    it as several dense pieces, each pure. What the pieces still share is their *signature*: the
    values (system prompt, wrapper, TLS stack, ...) that at least half of each piece's members use.
    Two communities whose signatures overlap by at least `cfg.merge_min_jaccard` are one group.
    Only communities of `cfg.merge_min_accounts` or more take part: in a handful of accounts, "used
    by half of them" is as likely to be a coincidence as a signature.
    Values shared by more than `bucket_cap` accounts are left out, so a popular browser or a stock
    prompt cannot merge unrelated groups, except those of the kinds in `any_size` (`pool_merges`).
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
                WHERE b.n_acc <= {cfg.bucket_cap}{f" OR i.kind IN ({', '.join(str(KIND_ID[k]) for k in any_size)})" if any_size else ""}
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


def ask_idf(counts: csr_matrix) -> np.ndarray:
    """Inverse document frequency of each ask column over the accounts with any ask.

    An ask nearly every account makes (ordinary chat, which campaigns mix in as cover) says next to
    nothing about which operation an account belongs to. The added one keeps its weight above zero,
    so accounts that all ask alike (a lone operation) still have a profile. The same weighting as
    the account profiles of `grouping`'s weak edges (there in SQL)."""
    askers = max(int((counts.getnnz(axis=1) > 0).sum()), 1)
    users = np.maximum(counts.getnnz(axis=0), 1)
    return np.log((askers + 1) / users)


def _indicator(labels: np.ndarray, clusters: np.ndarray) -> csr_matrix:
    """(clusters x accounts) 0/1 matrix of membership, for the accounts labelled with `clusters`."""
    pos = np.searchsorted(clusters, labels)
    member = (labels != NO_CLUSTER) & (pos < len(clusters))
    member[member] = clusters[pos[member]] == labels[member]
    rows = np.flatnonzero(member)
    return csr_matrix((np.ones(len(rows)), (pos[rows], rows)), shape=(len(clusters), len(labels)))


def _merge_alike(labels: np.ndarray, a: np.ndarray, b: np.ndarray, weight: np.ndarray, counts: csr_matrix,
                 cfg: LinkConfig) -> np.ndarray:
    """Merge communities by modularity on the graph *of communities*, each weighted by how alike
    the two communities ask (cosine of their IDF-weighted ask totals)."""
    clusters = np.unique(labels[labels != NO_CLUSTER])
    if len(clusters) < 2:
        return labels
    inside = (labels[a] != NO_CLUSTER) & (labels[b] != NO_CLUSTER)
    ca = np.searchsorted(clusters, labels[a[inside]])
    cb = np.searchsorted(clusters, labels[b[inside]])
    k = len(clusters)
    # Edges inside a community become its self-loop: modularity needs each community's strength.
    agg = coo_matrix((weight[inside], (np.minimum(ca, cb), np.maximum(ca, cb))), shape=(k, k)).tocsr()
    agg.sum_duplicates()
    profile = np.asarray((_indicator(labels, clusters) @ counts).todense()) * ask_idf(counts)
    profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-12)
    src, dst = agg.nonzero()
    alike = np.einsum("ij,ij->i", profile[src], profile[dst])
    w = np.asarray(agg[src, dst]).ravel() * np.clip(alike, 0.0, 1.0) ** cfg.suspect_merge_profile_power
    keep = w > 0
    graph = ig.Graph(n=k, edges=np.column_stack([src[keep], dst[keep]]).tolist(),
                     edge_attrs={"weight": w[keep].tolist()})
    merged = leidenalg.find_partition(graph, leidenalg.RBConfigurationVertexPartition, weights="weight",
                                      resolution_parameter=cfg.suspect_merge_resolution, seed=0)
    membership = np.asarray(merged.membership, dtype=np.int64)
    out = labels.copy()
    clustered = out != NO_CLUSTER
    out[clustered] = membership[np.searchsorted(clusters, out[clustered])]
    return out


def _reassign(labels: np.ndarray, a: np.ndarray, b: np.ndarray, weight: np.ndarray, counts: csr_matrix,
              cfg: LinkConfig) -> np.ndarray:
    """Move accounts to the neighbouring operation whose ask mix explains theirs clearly better.

    Each round, every operation of `cfg.reassign_min_accounts` or more gets a multinomial over asks
    (its members' counts, smoothed). An account with asks and an edge into such an operation joins
    the one with the highest log-likelihood *per task* of its asks, if that beats its current
    operation's by `cfg.reassign_margin`, with the log of the operation's share of accounts as
    prior. The operation's share of the account's edge weight counts too, its log times
    `cfg.reassign_tie_weight` per account rather than per task: an account held by strong edges to
    its own operation and by weak ones to a larger operation that asks alike stays, however many
    requests it makes. Per task, because accounts are not draws from one multinomial: a large
    account of one operation mixes its work unevenly, and its total log-likelihood would favour
    whichever broad mix happens to be nearby. An account in no such operation (unclustered, or in
    a group too small to have a mix) joins one only if it fits it at least as well as the worst
    `cfg.reassign_newcomer_quantile` of its members and has edges to at least
    `cfg.reassign_newcomer_links` of them: a flagged customer with a weak edge or two into an
    operation is not pulled in."""
    ea, eb, ew = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([weight, weight])
    n_asks = np.asarray(counts.sum(axis=1)).ravel()
    out = labels.copy()
    for _ in range(cfg.reassign_rounds):
        sizes = np.bincount(out[out != NO_CLUSTER])
        clusters = np.flatnonzero(sizes >= cfg.reassign_min_accounts)
        if len(clusters) < 2:
            break
        totals = np.asarray((_indicator(out, clusters) @ counts).todense()) + 0.5
        log_theta = np.log(totals / totals.sum(axis=1, keepdims=True))
        # Candidates: (account, operation of a neighbour), once each.
        pos = np.searchsorted(clusters, out[eb])
        ok = (out[eb] != NO_CLUSTER) & (pos < len(clusters)) & (n_asks[ea] > 0) & (ew > 0)
        ok[ok] &= clusters[pos[ok]] == out[eb][ok]
        keys, pair, links = np.unique(ea[ok].astype(np.int64) * len(clusters) + pos[ok], return_inverse=True,
                                      return_counts=True)
        if len(keys) == 0:
            break
        tie = np.bincount(pair, weights=ew[ok])
        acc, cand = keys // len(clusters), keys % len(clusters)
        log_prior = np.log(sizes[clusters] / sizes[clusters].sum())[cand]
        log_tie = np.log(tie / np.bincount(acc, weights=tie, minlength=len(out))[acc])
        log_lik = np.asarray(counts[acc].multiply(log_theta[cand]).sum(axis=1)).ravel()
        fit = (log_lik + log_prior) / n_asks[acc] + cfg.reassign_tie_weight * log_tie
        current = np.full(len(out), -np.inf)
        own = clusters[cand] == out[acc]
        current[acc[own]] = fit[own]
        order = np.lexsort((-fit, acc))
        best = order[np.r_[True, acc[order][1:] != acc[order][:-1]]]
        move = best[fit[best] >= current[acc[best]] + cfg.reassign_margin]
        move = move[clusters[cand[move]] != out[acc[move]]]
        typical = np.full(len(clusters), np.inf)
        members = np.flatnonzero(own)
        members = members[np.argsort(cand[members], kind="stable")]
        for group in np.split(members, np.flatnonzero(np.diff(cand[members])) + 1):
            if len(group):
                typical[cand[group[0]]] = np.quantile(fit[group], cfg.reassign_newcomer_quantile)
        newcomer = np.isinf(current[acc[move]])
        move = move[~newcomer | ((fit[move] >= typical[cand[move]]) & (links[move] >= cfg.reassign_newcomer_links))]
        if len(move) == 0:
            break
        out = out.copy()
        out[acc[move]] = clusters[cand[move]]
    return out


def consolidate(labels: np.ndarray, a: np.ndarray, b: np.ndarray, weight: np.ndarray, counts: csr_matrix,
                cfg: LinkConfig) -> np.ndarray:
    """Join the pieces of one operation among flagged accounts, then sort accounts by ask mix.

    Among flagged accounts, each keeps only its strongest weak edges (`grouping`), so a large
    operation's density falls with its size and the constant Potts model cuts it into pieces. Two
    pieces of one operation are more connected than their sizes predict, and ask for the same mix
    of capabilities: a modularity pass over the graph of communities (which can merge them but
    never splits one) joins those. Then an operation that harvests the same public material as
    another is told apart by its ask mix: each account moves to the neighbouring operation whose
    mix best explains its own (`_reassign`).

    `counts` is (accounts x asks): each flagged account's tasks per ask (`grouping.ask_counts`).
    A lone operation is one community and stays whole; `cfg.suspect_merge_resolution = 0` disables
    both steps.
    """
    if cfg.suspect_merge_resolution <= 0 or (labels != NO_CLUSTER).sum() == 0:
        return labels
    return _without_small(_reassign(_merge_alike(labels, a, b, weight, counts, cfg), a, b, weight, counts, cfg),
                          cfg.min_cluster_accounts)
