"""Cross-account linking: the account graph, hydra clusters, cluster features and content scores.

Entry point: `link_accounts(con)` over the `signals` and `accounts` tables of a DuckDB connection.
"""

from distillguard.linking.config import EDGE_KINDS, EdgeKind, LinkConfig
from distillguard.linking.features import CLUSTER_FEATURES
from distillguard.linking.link import LinkResult, link_accounts

__all__ = ["CLUSTER_FEATURES", "EDGE_KINDS", "EdgeKind", "LinkConfig", "LinkResult", "link_accounts"]
