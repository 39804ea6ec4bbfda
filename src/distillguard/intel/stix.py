"""`indicators.stix.json`: a STIX 2.1 bundle of the indicators of flagged clusters.

For every flagged cluster the bundle holds one STIX Campaign and its Indicators, each tied to it by
an ``indicates`` Relationship. An indicator is a value the cluster's accounts used and that is
specific to the cluster (at least ``SPECIFICITY`` of the accounts using it belong to it), so a
campus NAT or a cloud ASN shared with bystanders is never exported:

- infrastructure: IP ranges (/24, /48), ASNs, TLS client fingerprints, and keyed hashes of payment
  fingerprints;
- prompt templates, as keyed hashes only (`distillguard.intel.fingerprint`): skeleton, head, tail,
  system-prompt and MinHash band hashes used by at least two of the cluster's accounts on mostly
  harvest-looking (elicitation) exchanges.

No prompt text, account identifier or API key is ever written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import stix2

from distillguard.intel.fingerprint import key_id, keyed
from distillguard.intel.indicators import KIND_BY_NAME, pattern_of
from distillguard.linking.link import LinkResult
from distillguard.signals.exchange import ELICITATION_COLUMNS

SPECIFICITY = 0.8
MAX_PER_KIND = 200
PRODUCER = stix2.Identity(
    id="identity--5b0f2c51-7d43-4c1e-9a43-8f1d1c0e6a11",
    name="distillguard",
    identity_class="system",
    created="2026-01-01T00:00:00Z",
    modified="2026-01-01T00:00:00Z",
)

_ELICIT = f"(greatest({', '.join(f'coalesce({c}, 0)' for c in ELICITATION_COLUMNS)}) > 0.5)::DOUBLE"
# (indicator kind, value expression, filter, keyed): infrastructure first, then templates.
_SOURCES = (
    ("ipv4_prefix", "ip_prefix", "ip_prefix IS NOT NULL AND NOT contains(ip_prefix, ':')", False),
    ("ipv6_prefix", "ip_prefix", "ip_prefix IS NOT NULL AND contains(ip_prefix, ':')", False),
    ("asn", "asn::VARCHAR", "asn IS NOT NULL", False),
    ("tls_fingerprint", "tls_fingerprint", "tls_fingerprint IS NOT NULL", False),
    ("payment_hmac", "payment_fingerprint", "payment_fingerprint IS NOT NULL", True),
    ("skeleton_hmac", "skel_hash::VARCHAR", "skel_hash IS NOT NULL", True),
    ("head_hmac", "frame_hash::VARCHAR", "frame_hash IS NOT NULL AND frame_hash <> skel_hash", True),
    ("tail_hmac", "tail_hash::VARCHAR", "tail_hash IS NOT NULL AND tail_hash <> skel_hash", True),
    ("system_hmac", "sys_hash::VARCHAR", "sys_hash IS NOT NULL", True),
)
_TEMPLATE_KINDS = ("skeleton_hmac", "head_hmac", "tail_hmac", "system_hmac", "band_hmac")
_KEYED = {k for k, _, _, hashed in _SOURCES if hashed} | {"band_hmac"}


def _values_sql() -> str:
    parts = [
        f"SELECT '{kind}' AS kind, {expr} AS val, account_id, {_ELICIT} AS el FROM signals WHERE {cond}"
        for kind, expr, cond, _ in _SOURCES
    ]
    parts.append(
        f"SELECT 'band_hmac', band::VARCHAR, account_id, el FROM "
        f"(SELECT unnest(lsh) AS band, account_id, {_ELICIT} AS el FROM signals WHERE lsh IS NOT NULL)"
    )
    return "\nUNION ALL\n".join(parts)


def _selected_sql() -> str:
    templates = ", ".join(f"'{k}'" for k in _TEMPLATE_KINDS)
    return f"""
    WITH v AS ({_values_sql()}),
    inc AS (
        SELECT m.cluster_id, v.kind, v.val, count(DISTINCT v.account_id) AS n_in, count(*) AS n_ex,
               avg(v.el) AS el
        FROM v JOIN _ix_member m USING (account_id)
        GROUP BY ALL
    ),
    pop AS (
        SELECT v.kind, v.val, count(DISTINCT v.account_id) AS n_acc
        FROM v JOIN (SELECT DISTINCT kind, val FROM inc) w ON v.kind = w.kind AND v.val = w.val
        GROUP BY ALL
    )
    SELECT i.cluster_id, i.kind, i.val, i.n_in, i.n_ex
    FROM inc i JOIN pop p USING (kind, val)
    WHERE i.n_in >= {SPECIFICITY} * p.n_acc
      AND (i.kind NOT IN ({templates}) OR (i.n_in >= 2 AND i.el >= 0.5))
    QUALIFY row_number() OVER (PARTITION BY i.cluster_id, i.kind ORDER BY i.n_ex DESC, i.val) <= {MAX_PER_KIND}
    ORDER BY i.cluster_id, i.kind, i.n_ex DESC, i.val
    """


def _timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.now(UTC)


def build_bundle(
    con: duckdb.DuckDBPyConnection, link: LinkResult, flagged_clusters: set[str], *, key: bytes
) -> stix2.Bundle:
    """The indicators of `flagged_clusters`, from the `signals` table of `con`, as a STIX 2.1 bundle."""
    members = link.accounts.select(["account_id", "cluster_id"]).filter(
        pa.compute.is_in(link.accounts["cluster_id"], pa.array(sorted(flagged_clusters), pa.string()))
    )
    clusters = {row["cluster_id"]: row for row in link.clusters.to_pylist() if row["cluster_id"] in flagged_clusters}
    con.register("_ix_member", members)
    try:
        rows = con.sql(_selected_sql()).fetchall() if members.num_rows else []
    finally:
        con.unregister("_ix_member")
    kid = key_id(key)
    objects: list[object] = [PRODUCER]
    campaigns: dict[str, stix2.Campaign] = {}
    for cid in sorted(clusters):
        info = clusters[cid]
        campaigns[cid] = stix2.Campaign(
            name=f"distillation cluster {cid}",
            description=(
                f"Coordinated accounts harvesting model outputs: {info['n_accounts']} accounts, "
                f"{info['n_exchanges']} exchanges; capabilities: {info.get('capabilities') or 'n/a'}; "
                f"tied by: {info.get('reasons') or 'n/a'}. Keyed hashes use key id {kid}."
            ),
            first_seen=_timestamp(info.get("first_ts")),
            last_seen=_timestamp(info.get("last_ts")),
            created_by_ref=PRODUCER.id,
        )
        objects.append(campaigns[cid])
    for cid, kind_name, value, n_in, n_ex in rows:
        kind = KIND_BY_NAME[kind_name]
        shared = keyed(key, value) if kind_name in _KEYED else value
        indicator = stix2.Indicator(
            name=f"{kind.description} used by {cid}",
            description=f"{kind.description}; {n_in} accounts, {n_ex} exchanges of the cluster"
            + (f"; key id {kid}" if kind_name in _KEYED else ""),
            pattern=pattern_of(kind, shared),
            pattern_type="stix",
            valid_from=_timestamp(clusters[cid].get("first_ts")),
            indicator_types=["malicious-activity"],
            created_by_ref=PRODUCER.id,
        )
        objects.append(indicator)
        objects.append(stix2.Relationship(indicator, "indicates", campaigns[cid], created_by_ref=PRODUCER.id))
    return stix2.Bundle(objects=objects)


def write_bundle(bundle: stix2.Bundle, path: Path) -> None:
    # Indented but not `pretty=True`: stix2's property ordering is quadratic (a minute for 800 objects).
    Path(path).write_text(bundle.serialize(indent=1), encoding="utf-8")
