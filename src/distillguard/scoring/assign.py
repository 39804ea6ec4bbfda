"""Turn account features into the verdict tables: per account risk, flag, cluster and reasons;
per cluster the contract columns of `clusters.csv`."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.reasons import COMBINED_SIGNALS, WATCHLIST_MATCH
from distillguard.scoring.model import AccountModel, feature_matrix

CLUSTERS_SCHEMA = pa.schema(
    [
        ("cluster_id", pa.string()),
        ("n_accounts", pa.int64()),
        ("n_exchanges", pa.int64()),
        ("risk", pa.float64()),
        ("capabilities", pa.string()),
        ("reasons", pa.string()),
    ]
)

# A match with a partner's shared indicators adds this much log-odds. Simulated traffic has no
# partner intelligence to learn a weight from, so the weight is set, and documented, by hand.
WATCHLIST_LOGODDS = 3.0


def risk_of(logit: np.ndarray | float, watchlist: np.ndarray | float) -> np.ndarray:
    """Risk from the model's log-odds and the account's watchlist score: the one scoring step of
    `analyze` (`score_table`) and of the online engine."""
    return 1.0 / (1.0 + np.exp(-(np.asarray(logit, dtype=float) + WATCHLIST_LOGODDS * (np.asarray(watchlist) > 0))))


def merge_reasons(model_reasons: list[str], link_reasons: str | None, watchlist: float, flagged: bool) -> str:
    codes = list(model_reasons)
    if watchlist > 0:
        codes.insert(0, WATCHLIST_MATCH)
    if link_reasons and codes:
        codes += [c for c in link_reasons.split(";") if c and c not in codes]
    if not codes and flagged:
        codes = [COMBINED_SIGNALS]  # a flagged account always carries a reason an analyst can check
    return ";".join(dict.fromkeys(codes))


def score_table(features: pa.Table, model: AccountModel, threshold: float) -> pa.Table:
    """Append `risk`, `flagged` and `reasons` to a feature table (one row per account)."""
    x = feature_matrix(features, model.features)
    watch = (
        np.nan_to_num(features.column("watchlist").to_numpy(zero_copy_only=False).astype(float))
        if "watchlist" in features.column_names
        else np.zeros(features.num_rows)
    )
    links = (
        features.column("link_reasons").to_pylist()
        if "link_reasons" in features.column_names
        else [None] * features.num_rows
    )
    if features.num_rows:
        logit, reasons = model.explain(x)
        risk = risk_of(logit, watch)
    else:
        risk, reasons = np.zeros(0), []
    flagged = risk > threshold
    text = [merge_reasons(r, lk, w, f) for r, lk, w, f in zip(reasons, links, watch, flagged, strict=True)]
    return (
        features.append_column("risk", pa.array(risk, pa.float64()))
        .append_column("flagged", pa.array(flagged, pa.bool_()))
        .append_column("reasons", pa.array(text, pa.string()))
    )


def inherit(scored: pa.Table, inherited: pa.Table) -> pa.Table:
    """`scored` with the accounts of `inherited` (account_id, risk, reason: `Linker.inherited`)
    flagged at the risk they inherit, its reason code listed first."""
    if inherited.num_rows == 0:
        return scored
    new = dict(zip(inherited.column("account_id").to_pylist(),
                   zip(inherited.column("risk").to_pylist(), inherited.column("reason").to_pylist(), strict=True),
                   strict=True))
    risks, flags, reasons = [], [], []
    for account, risk, flagged, text in zip(scored.column("account_id").to_pylist(), scored.column("risk").to_pylist(),
                                            scored.column("flagged").to_pylist(), scored.column("reasons").to_pylist(),
                                            strict=True):
        if account in new:
            value, code = new[account]
            risk, flagged = max(risk, value), True
            text = ";".join([code, *(c for c in text.split(";") if c and c != code)])
        risks.append(risk)
        flags.append(flagged)
        reasons.append(text)
    for name, values, kind in (("risk", risks, pa.float64()), ("flagged", flags, pa.bool_()),
                               ("reasons", reasons, pa.string())):
        scored = scored.set_column(scored.column_names.index(name), name, pa.array(values, kind))
    return scored


def regroup(scored: pa.Table, link_accounts: pa.Table) -> pa.Table:
    """`scored` with the `cluster_id` of a later grouping (`link_accounts`: account_id, cluster_id,
    link_reasons). A flagged account's reasons gain the link codes of its new cluster it lacked."""
    new = dict(zip(link_accounts.column("account_id").to_pylist(),
                   zip(link_accounts.column("cluster_id").to_pylist(),
                       link_accounts.column("link_reasons").to_pylist(), strict=True), strict=True))
    ids = scored.column("account_id").to_pylist()
    clusters, reasons = [], []
    for account, flagged, text in zip(ids, scored.column("flagged").to_pylist(),
                                      scored.column("reasons").to_pylist(), strict=True):
        cluster, codes = new.get(account, (None, ""))
        clusters.append(cluster)
        reasons.append(merge_reasons([c for c in text.split(";") if c], codes, 0.0, True) if flagged else text)
    out = scored.set_column(scored.column_names.index("reasons"), "reasons", pa.array(reasons, pa.string()))
    if "cluster_id" in out.column_names:
        out = out.drop_columns(["cluster_id"])
    return out.append_column("cluster_id", pa.array(clusters, pa.string()))


def cluster_verdicts(accounts: pa.Table, clusters: pa.Table) -> pa.Table:
    """Contract cluster rows: a cluster's risk is the mean risk of its members."""
    if clusters.num_rows == 0:
        return CLUSTERS_SCHEMA.empty_table()
    member = accounts.filter(pc.is_valid(accounts.column("cluster_id")))
    mean_risk = member.group_by("cluster_id").aggregate([("risk", "mean")])
    risk_of = dict(zip(mean_risk.column("cluster_id").to_pylist(), mean_risk.column("risk_mean").to_pylist(),
                       strict=True))
    ids = clusters.column("cluster_id").to_pylist()
    return pa.table(
        {
            "cluster_id": ids,
            "n_accounts": clusters.column("n_accounts").cast(pa.int64()),
            "n_exchanges": clusters.column("n_exchanges").cast(pa.int64()),
            "risk": pa.array([float(risk_of.get(c, 0.0)) for c in ids], pa.float64()),
            "capabilities": clusters.column("capabilities").cast(pa.string()),
            "reasons": clusters.column("reasons").cast(pa.string()),
        },
        schema=CLUSTERS_SCHEMA,
    )


def score_accounts(
    features: pa.Table, clusters: pa.Table, model: AccountModel, threshold: float
) -> tuple[pa.Table, pa.Table]:
    scored = score_table(features, model, threshold)
    if "cluster_id" not in scored.column_names:
        scored = scored.append_column("cluster_id", pa.nulls(scored.num_rows, pa.string()))
    return scored, cluster_verdicts(scored, clusters)
