"""Turn account features into the verdict table: risk, flagged, cluster and reasons."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

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


def score_table(features: pa.Table, model: AccountModel, threshold: float) -> pa.Table:
    """Append `risk`, `flagged` and `reasons` to a feature table (one row per account)."""
    x = feature_matrix(features, model.features)
    risk = model.risk(x) if len(x) else np.zeros(0)
    reasons = model.reasons(x) if len(x) else []
    flagged = risk > threshold
    # A flagged account always carries at least one reason an analyst can check.
    reason_text = [";".join(r) if r or not f else "combined-signals" for r, f in zip(reasons, flagged, strict=True)]
    return (
        features.append_column("risk", pa.array(np.round(risk, 6), pa.float64()))
        .append_column("flagged", pa.array(flagged, pa.bool_()))
        .append_column("reasons", pa.array(reason_text, pa.string()))
    )


def score_accounts(
    con: duckdb.DuckDBPyConnection, features: pa.Table, model: AccountModel, threshold: float
) -> tuple[pa.Table, pa.Table]:
    scored = score_table(features, model, threshold)
    scored = scored.append_column("cluster_id", pa.array([None] * scored.num_rows, pa.string()))
    return scored, CLUSTERS_SCHEMA.empty_table()
