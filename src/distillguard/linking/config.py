"""What links two accounts, and how much: the edge kinds of the account graph and their weights.

Every kind is a way two accounts can share a value (a /24, a payment instrument, a prompt skeleton,
a template used in the same hour). Each shared value is a *bucket*; a bucket shared by ``n``
accounts contributes ``idf(n) = 1 / ln(1 + n)`` to each pair in it (times its quality): a campus NAT
or a stock prompt is weak evidence, and a bucket larger than ``bucket_cap`` pairs each account with
only a few others (its ring neighbours), so a value shared by a whole operation still ties it
together while one shared by the whole population stays weak. Evidence is then combined per family (infrastructure, content, synchrony) so
that no single family, and no single noisy kind, links accounts by itself unless it is specific.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distillguard.reasons import (  # noqa: F401  (link reason codes, re-exported for linking's modules)
    CREATION_BURST,
    NEW_MODEL_PIVOT,
    SHARED_HARVEST_CONTENT,
    SHARED_INFRASTRUCTURE,
    SHARED_PAYMENT,
    SHARED_TEMPLATE,
    SYNCHRONIZED,
    WATCHLIST_MATCH,
)

INFRA = "infra"
CONTENT = "content"
SYNC = "sync"


@dataclass(frozen=True)
class EdgeKind:
    """One way of sharing a value. `weight` scales its evidence within its family."""

    name: str
    family: str
    reason: str
    weight: float


EDGE_KINDS: tuple[EdgeKind, ...] = (
    EdgeKind("ip_prefix", INFRA, SHARED_INFRASTRUCTURE, 1.0),
    EdgeKind("asn", INFRA, SHARED_INFRASTRUCTURE, 0.3),
    EdgeKind("tls_fingerprint", INFRA, SHARED_INFRASTRUCTURE, 0.5),
    EdgeKind("user_agent", INFRA, SHARED_INFRASTRUCTURE, 0.3),
    EdgeKind("payment", INFRA, SHARED_PAYMENT, 2.0),
    EdgeKind("email_domain", INFRA, SHARED_INFRASTRUCTURE, 0.6),
    EdgeKind("creation", INFRA, CREATION_BURST, 0.4),
    # Content kinds saturate one by one, so the same evidence seen through several views (an exact
    # copy shares its skeleton, head, tail and every band) cannot link two accounts by itself.
    EdgeKind("skeleton", CONTENT, SHARED_TEMPLATE, 0.5),
    EdgeKind("head", CONTENT, SHARED_TEMPLATE, 1.0),
    EdgeKind("tail", CONTENT, SHARED_TEMPLATE, 1.0),
    EdgeKind("near_duplicate", CONTENT, SHARED_TEMPLATE, 0.6),
    EdgeKind("system_prompt", CONTENT, SHARED_TEMPLATE, 1.0),
    EdgeKind("sync_template", SYNC, SYNCHRONIZED, 1.0),
    EdgeKind("sync_structure", SYNC, SYNCHRONIZED, 0.6),
)
KIND_ID: dict[str, int] = {k.name: i for i, k in enumerate(EDGE_KINDS)}


def kind_reason(name: str, kinds: tuple[EdgeKind, ...] = EDGE_KINDS) -> str:
    """The reason code of the edge kind called `name`."""
    return next(k.reason for k in kinds if k.name == name)


@dataclass(frozen=True)
class LinkConfig:
    """Tunable constants of linking and clustering; the defaults are the documented operating point."""

    # Buckets shared by more accounts than this pair each account with only its `ring_neighbours`
    # next members (`graph._pair_sql`), which bounds pair generation to
    # max(bucket_cap, ring_neighbours) * (account, value) incidences.
    bucket_cap: int = 500
    ring_neighbours: int = 20
    # A template or a time bin counts at this floor when none of its exchanges is elicitation, and
    # fully when all are: popular everyday prompts, shared by chance, must not add up to a link.
    plain_content_floor: float = 0.0
    # Shared values weighing less than this are ignored when pairing (keeps pair counts small).
    min_key_weight: float = 0.05
    # A content or synchrony kind gives weight * (1 - exp(-evidence / content_scale)) * sqrt(cosine).
    content_scale: float = 1.0
    # Synchrony keys are (time bin, template) and (time bin, structure); fewer shared bins is chance.
    sync_bin_minutes: int = 60
    sync_min_shared: int = 3
    # Pairs whose combined weight reaches this are edges of the graph.
    edge_threshold: float = 0.6
    # Leiden (constant Potts model) resolution: a community must be denser than this (weight units).
    resolution: float = 0.05
    min_cluster_accounts: int = 3
    # Communities whose signatures (values used by half their members) overlap this much (Jaccard)
    # are merged; 0 disables (`cluster.signature_merges`).
    merge_min_jaccard: float = 0.3
    merge_min_accounts: int = 10
    # Kinds whose values join communities' signatures whatever their size, in a last merge of the
    # whole-graph grouping (`link.Linker._pool_merges`; empty disables): a reseller's egress ranges
    # and shared cards are used by all its thousands of accounts, a popular browser is not of these.
    pool_kinds: tuple[str, ...] = ("ip_prefix", "payment")
    # Then an account left unclustered joins the cluster that owns the pool values carrying at least
    # `pool_attach_min_share` of its exchanges (`link._pool_attach_sql`; 0 disables). A cluster owns
    # a value when `merge_min_accounts` or more of its members, and at least `pool_attach_purity` of
    # all the value's accounts, use it: a reseller's small accounts, too little alike for an edge,
    # leave through the same egress ranges as the rest of it; a campus NAT belongs to no operation.
    pool_attach_min_share: float = 0.5
    pool_attach_purity: float = 0.9
    # After scoring (`Linker.inherited`): an unflagged account that sends at least
    # `inherit_min_share` of its exchanges through values of one `inherit_kinds` kind used by
    # `inherit_min_accounts` or more accounts, at least `inherit_purity` of the others flagged, is
    # flagged with them at the median risk of those flagged users; repeated while it flags more
    # (at most `inherit_rounds`; 0 disables). A reseller's accounts that harvest too little to be
    # flagged alone leave through the same egress ranges and pay with the same cards as the rest
    # of it; a campus NAT or an office range, mostly honest accounts, never qualifies. TLS
    # fingerprints are not among the kinds: honest developers run the same client stacks as
    # campaigns (measured: `docs/linking.md`, "Verdict inheritance").
    inherit_kinds: tuple[str, ...] = ("ip_prefix", "payment")
    inherit_min_accounts: int = 5
    inherit_purity: float = 0.9
    inherit_min_share: float = 0.5
    inherit_rounds: int = 10
    # Grouping by verdict (`grouping.by_verdict`): two flagged accounts are joined by shared content
    # and synchrony evidence of at least this much, times the cosine of what they ask for to this power.
    suspect_min_evidence: float = 0.1
    suspect_content_floor: float = 0.5
    suspect_profile_power: float = 2.0
    suspect_neighbours: int = 100
    # Its graph is denser (weak edges among flagged accounts): on the tuning worlds two Leiden passes
    # reach within 0.02% of the converged partition's quality in half the time or less.
    suspect_leiden_iterations: int = 2
    # Then (`cluster.consolidate`): communities are merged by modularity at this resolution on the
    # graph of communities (0 disables), and accounts move, for up to `reassign_rounds` rounds, to
    # the neighbouring operation of at least `reassign_min_accounts` whose ask mix fits them better
    # by `reassign_margin` (log-likelihood per task, nats). In the merge, the edge between two
    # communities is weighted by the cosine of their ask mixes to `suspect_merge_profile_power`.
    # Pieces of operations that harvest overlapping material ask alike too (on the tuning worlds
    # pieces of one operation have cosines around 0.45-0.8, of different ones 0.2-0.5): to the
    # first power the many edges between two operations outweigh that difference, to the 8th they
    # count for little.
    suspect_merge_resolution: float = 1.0
    suspect_merge_profile_power: float = 8.0
    reassign_rounds: int = 5
    reassign_min_accounts: int = 10
    reassign_margin: float = 0.05
    # How much the operation's share of an account's edge weight counts in the reassignment: its
    # log times this is added to the per-task fit (evidence about the account, not about each task).
    reassign_tie_weight: float = 0.15
    # An unclustered account joins an operation only if it fits it as well as this quantile of its
    # members, and has edges to at least `reassign_newcomer_links` of them.
    reassign_newcomer_quantile: float = 0.1
    reassign_newcomer_links: int = 3
    # The ask mixes of both steps count tasks: a run of one account's exchanges with the same ask,
    # each less than this after the one before, is one task (an agent loop, a retry).
    task_gap_seconds: float = 600.0
    # Creation bursts are accounts created within the same window.
    creation_bin_minutes: int = 10
    # Content scoring: a fragment is "high-scoring" from this score on, and an account with at least
    # this share of its traffic on one cluster's high-scoring content (over several fragments) joins it.
    high_content_score: float = 0.5
    attach_min_share: float = 0.25
    attach_min_keys: int = 3
    # Account reason codes from cluster-level evidence: content_risk for shared-harvest-content,
    # cluster_pivot / cluster_creation_burst for new-model-pivot / creation-burst.
    content_reason_min: float = 0.25
    cluster_code_min: float = 0.5
    # Model-release pivot: the window after a release in which a switch counts.
    pivot_hours: int = 24
    kinds: tuple[EdgeKind, ...] = field(default=EDGE_KINDS)
