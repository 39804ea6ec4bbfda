"""The clusters as the online detector uses them: each account's cluster features and reasons, the
clusters' risks, and the distinctive keys through which a newcomer joins a high-risk cluster between
two linking passes. Written by `analyze` (its `links/` folder) and by `replay`'s refreshes; read by
the gateway."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from distillguard.errors import InputError
from distillguard.linking.attach import ATTACH_MIN_CLUSTER_RISK, cluster_keys, egress_owners, row_keys
from distillguard.linking.config import LinkConfig, kind_reason
from distillguard.linking.features import CLUSTER_FEATURES
from distillguard.reasons import COORDINATED_CLUSTER

# Accounts attached to clusters between two linking passes, at most (the snapshot is per process).
MAX_ATTACHED = 1_000_000


@dataclass
class LinkSnapshot:
    """Cluster membership and cluster features of the last linking pass, by account."""

    cluster_of: dict[str, str] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)  # CLUSTER_FEATURES + watchlist
    link_reasons: dict[str, str] = field(default_factory=dict)
    cluster_risk: dict[str, float] = field(default_factory=dict)
    # Distinctive keys of high-risk clusters (`linking.attach`), and what a new member inherits.
    key_index: dict[tuple[str, str], str] = field(default_factory=dict)
    cluster_values: dict[str, np.ndarray] = field(default_factory=dict)
    n_attached: int = 0
    # Egress ranges and cards used almost only by flagged accounts, with the risk a request through
    # one of them inherits (`linking.attach.egress_owners`).
    egress: dict[tuple[str, str], float] = field(default_factory=dict)

    def set_cluster_risk(self, risk: Mapping[str, float]) -> None:
        """Each cluster's risk: the mean `risk` of its members."""
        by_cluster: dict[str, list[float]] = {}
        for account, cluster in self.cluster_of.items():
            by_cluster.setdefault(cluster, []).append(risk[account])
        self.cluster_risk = {c: float(np.mean(r)) for c, r in by_cluster.items()}

    def finish(self) -> None:
        """Derive what new members inherit: the mean link values of each cluster's members."""
        vectors: dict[str, list[np.ndarray]] = {}
        for account, cluster in self.cluster_of.items():
            vectors.setdefault(cluster, []).append(self.values[account])
        self.cluster_values = {c: np.mean(v, axis=0) for c, v in vectors.items()}

    def write(self, folder: Path) -> None:
        """Save as Parquet files in `folder` (a gateway loads it with `read`; never pickle)."""
        folder.mkdir(parents=True, exist_ok=True)
        ids = sorted(self.values)
        pq.write_table(pa.table({
            "account_id": pa.array(ids, pa.string()),
            "cluster_id": pa.array([self.cluster_of.get(a) for a in ids], pa.string()),
            "link_reasons": pa.array([self.link_reasons.get(a) for a in ids], pa.string()),
            "values": pa.array([self.values[a].tolist() for a in ids], pa.list_(pa.float64())),
        }), folder / "accounts.parquet")
        clusters = sorted(self.cluster_risk)
        pq.write_table(pa.table({
            "cluster_id": pa.array(clusters, pa.string()),
            "risk": pa.array([self.cluster_risk[c] for c in clusters], pa.float64()),
        }), folder / "clusters.parquet")
        keys = sorted(self.key_index.items())
        pq.write_table(pa.table({
            "kind": pa.array([k for (k, _), _ in keys], pa.string()),
            "key": pa.array([v for (_, v), _ in keys], pa.string()),
            "cluster_id": pa.array([c for _, c in keys], pa.string()),
        }), folder / "keys.parquet")
        egress = sorted(self.egress.items())
        pq.write_table(pa.table({
            "kind": pa.array([k for (k, _), _ in egress], pa.string()),
            "key": pa.array([v for (_, v), _ in egress], pa.string()),
            "risk": pa.array([r for _, r in egress], pa.float64()),
        }), folder / "egress.parquet")
        (folder / "snapshot.json").write_text(json.dumps({"version": 1, "columns": [*CLUSTER_FEATURES, "watchlist"]}))

    @classmethod
    def read(cls, folder: Path) -> LinkSnapshot:
        """Load a snapshot written by `write`; a missing or mismatched file is a one-line InputError."""
        try:
            meta = json.loads((folder / "snapshot.json").read_text())
            if meta.get("columns") != [*CLUSTER_FEATURES, "watchlist"]:
                raise InputError(f"{folder}: cluster snapshot from another version (columns differ)")
            accounts = pq.read_table(folder / "accounts.parquet")
            clusters = pq.read_table(folder / "clusters.parquet")
            keys = pq.read_table(folder / "keys.parquet")
            # Snapshots written before verdict inheritance have no egress file.
            egress = pq.read_table(folder / "egress.parquet") if (folder / "egress.parquet").exists() else None
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise InputError(f"{folder}: cannot read cluster snapshot: {exc}") from None
        try:
            snap = cls._from_tables(accounts, clusters, keys, folder)
            if egress is not None:
                snap.egress = {(str(k), str(v)): float(r) for k, v, r in
                               zip(*(egress.column(n).to_pylist() for n in ("kind", "key", "risk")), strict=True)}
            return snap
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{folder}: malformed cluster snapshot: {exc}") from None

    @classmethod
    def _from_tables(cls, accounts: pa.Table, clusters: pa.Table, keys: pa.Table, folder: Path) -> LinkSnapshot:
        snap = cls()
        width = len(CLUSTER_FEATURES) + 1
        ids, values = accounts.column("account_id").to_pylist(), accounts.column("values").to_pylist()
        for account, vector in zip(ids, values, strict=True):
            if vector is None or len(vector) != width:
                raise InputError(f"{folder}/accounts.parquet: account {account!r} has {len(vector or [])} "
                                 f"values, expected {width}")
        snap._add_accounts(ids, values, accounts.column("cluster_id").to_pylist(),
                           accounts.column("link_reasons").to_pylist())
        snap.cluster_risk = {str(c): float(r) for c, r in zip(clusters.column("cluster_id").to_pylist(),
                                                             clusters.column("risk").to_pylist(), strict=True)}
        snap.key_index = {(str(k), str(v)): str(c) for k, v, c in zip(*(keys.column(n).to_pylist() for n in
                                                                        ("kind", "key", "cluster_id")), strict=True)}
        snap.finish()
        return snap

    def index_keys(self, con: duckdb.DuckDBPyConnection, link_accounts: pa.Table,
                   flagged: Callable[[list[str]], Collection[str]]) -> None:
        """Collect the distinctive keys of this snapshot's high-risk clusters from the `signals` table
        (`linking.attach`), so that newcomers reusing them can be attached; flagged accounts
        (`flagged(accounts)` picks them) outside those clusters do not count against a key."""
        risky = [c for c, risk in self.cluster_risk.items() if risk >= ATTACH_MIN_CLUSTER_RISK]
        self.key_index = cluster_keys(con, link_accounts, risky, flagged)

    def index_egress(self, con: duckdb.DuckDBPyConnection, verdicts: pa.Table, cfg: LinkConfig | None = None) -> None:
        """Collect the egress ranges and cards of the `signals` table that almost only flagged
        accounts of `verdicts` (account_id, risk, flagged) use (`linking.attach.egress_owners`)."""
        cfg = cfg or LinkConfig()
        self.egress = egress_owners(con, verdicts, cfg.inherit_kinds, min_accounts=cfg.inherit_min_accounts,
                                    purity=cfg.inherit_purity)

    def inherited(self, row: Mapping[str, Any]) -> tuple[float, str | None]:
        """The risk a request inherits from the egress range or card it comes through (0 if none),
        and that kind's reason code."""
        best, code = 0.0, None
        if self.egress:
            for key in row_keys(row):
                risk = self.egress.get(key)
                if risk is not None and risk > best:
                    best, code = risk, kind_reason(key[0])
        return best, code

    def attach(self, account: str, cluster: str) -> None:
        """Make `account` a member of `cluster` until the next linking pass (bounded)."""
        if self.n_attached >= MAX_ATTACHED or cluster not in self.cluster_values:
            return
        self.cluster_of[account] = cluster
        self.values[account] = self.cluster_values[cluster]
        self.link_reasons[account] = COORDINATED_CLUSTER
        self.n_attached += 1

    @classmethod
    def from_link_table(cls, accounts: pa.Table) -> LinkSnapshot:
        """From `LinkResult.accounts` (one row per linked account)."""
        snap = cls()
        cols = [*CLUSTER_FEATURES, "watchlist"]
        ids = accounts.column("account_id").to_pylist()
        matrix = np.column_stack(
            [np.nan_to_num(accounts.column(c).to_numpy(zero_copy_only=False).astype(np.float64)) for c in cols]
        ) if ids else np.zeros((0, len(cols)))
        snap._add_accounts(ids, matrix, accounts.column("cluster_id").to_pylist(),
                           accounts.column("link_reasons").to_pylist())
        return snap

    def _add_accounts(self, ids: Sequence[Any], values: Sequence[Any], clusters: Sequence[Any],
                      reasons: Sequence[Any]) -> None:
        for account, vector, cluster, reason in zip(ids, values, clusters, reasons, strict=True):
            account = str(account)
            self.values[account] = np.asarray(vector, dtype=np.float64)
            if cluster is not None:
                self.cluster_of[account] = str(cluster)
            if reason:
                self.link_reasons[account] = str(reason)
