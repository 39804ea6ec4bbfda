"""The account graph, built in DuckDB SQL without comparing all pairs.

1. ``_lk_acct``: one row per account seen in ``signals`` with a dense integer id and its side-table
   attributes; ``_lk_x``: the exchange columns linking needs, keyed by that id.
2. ``_lk_inc``: incidences (account, kind, key): every value an account uses, one row per distinct
   value, with how many of its exchanges used it and how many of those were elicitation.
3. ``_lk_bucket``: per (kind, key) the number of accounts sharing it and its evidence weight
   ``idf(n) * quality``; buckets of 2 or more accounts take part in pairing.
4. ``_lk_pair_kind``: pairs of incidences inside buckets of positive weight (every pair of a bucket
   up to ``bucket_cap`` accounts, ring neighbours in larger ones), summed per pair and kind. Its
   size is bounded by ``max(bucket_cap, ring_neighbours) * |incidences|``, so cost grows
   near-linearly with traffic.
5. ``_lk_graph_edge``: per pair, bounded contributions per kind, summed and thresholded.

A grouping (``link.Linker.link``) partitions a selection of these edges, ``_lk_edge`` (``grouping``).
"""

from __future__ import annotations

import duckdb

from distillguard.linking.config import CONTENT, INFRA, KIND_ID, SYNC, LinkConfig
from distillguard.signals.exchange import ELICITATION_COLUMNS

TEMP_TABLES = (
    "_lk_acct",
    "_lk_x",
    "_lk_inc",
    "_lk_bucket",
    "_lk_kinds",
    "_lk_pair_kind",
    "_lk_graph_edge",
)

_ELICIT_MAX = f"greatest({', '.join(f'coalesce({c}, 0)' for c in ELICITATION_COLUMNS)})"
# Which elicitation pattern dominates (0 when none passes 0.5): part of the structural signature.
_ELICIT_TYPE = (
    f"CASE WHEN {_ELICIT_MAX} > 0.5 THEN list_position([{', '.join(f'coalesce({c}, 0)' for c in ELICITATION_COLUMNS)}],"
    f" {_ELICIT_MAX}) ELSE 0 END"
)


def _prepare_sql(cfg: LinkConfig) -> list[str]:
    bin_ms = cfg.sync_bin_minutes * 60_000
    return [
        """
        CREATE OR REPLACE TEMP TABLE _lk_acct AS
        SELECT (row_number() OVER (ORDER BY s.account_id) - 1)::INTEGER AS aid,
               s.account_id, s.n_ex, s.first_ts, s.last_ts,
               a.created_at, a.email_domain, a.payment_fingerprint, a.tier
        FROM (SELECT account_id, count(*) AS n_ex, min(ts) AS first_ts, max(ts) AS last_ts
              FROM signals WHERE account_id IS NOT NULL GROUP BY account_id) s
        LEFT JOIN (SELECT * FROM accounts
                   QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY created_at NULLS LAST) = 1) a
          USING (account_id)
        """,
        # The structural signature survives paraphrase: how a client is configured and what it asks
        # for (capability, elicitation pattern, output budget, tools, turns, system prompt, model).
        f"""
        CREATE OR REPLACE TEMP TABLE _lk_x AS
        SELECT (row_number() OVER ())::BIGINT AS xid, a.aid, s.ts, s.model, s.ip_prefix, s.asn, s.tls_fingerprint, s.payment_fingerprint,
               s.user_agent, {_ELICIT_MAX} > 0.5 AS elicit, s.capability,
               s.skel_hash, s.frame_hash, s.tail_hash, s.sys_hash, s.lsh,
               hash(s.capability, {_ELICIT_TYPE}, s.max_tokens, coalesce(s.n_tools, 0) > 0,
                    least(coalesce(s.n_messages, 1), 4), s.sys_hash IS NULL, s.model) AS structure,
               (s.capability * 16 + {_ELICIT_TYPE})::SMALLINT AS ask,
               epoch_ms(s.ts) // {bin_ms} AS tbin
        FROM signals s JOIN _lk_acct a USING (account_id)
        """,
    ]


def _incidence_selects() -> list[str]:
    """One SELECT per edge kind producing (aid, kind, key, n, ne)."""
    k = KIND_ID
    per_exchange = {
        "ip_prefix": "hash(ip_prefix)",
        "asn": "hash(asn)",
        "tls_fingerprint": "hash(tls_fingerprint)",
        "user_agent": "hash(user_agent)",
        "payment": "hash(payment_fingerprint)",
        "skeleton": "hash(skel_hash)",
        "system_prompt": "hash(sys_hash)",
        "sync_structure": "hash(tbin, structure)",
    }
    not_null = {
        "ip_prefix": "ip_prefix",
        "asn": "asn",
        "tls_fingerprint": "tls_fingerprint",
        "user_agent": "user_agent",
        "payment": "payment_fingerprint",
        "skeleton": "skel_hash",
        "system_prompt": "sys_hash",
        "sync_structure": "structure",
    }
    selects = [
        f"SELECT aid, {k[name]} AS kind, {expr} AS key, count(*) AS n, sum(elicit::INTEGER) AS ne "
        f"FROM _lk_x WHERE {not_null[name]} IS NOT NULL GROUP BY ALL"
        for name, expr in per_exchange.items()
    ]
    # Short prompts are their own head and tail: counting those again would double the evidence.
    for name, col in (("head", "frame_hash"), ("tail", "tail_hash")):
        selects.append(
            f"SELECT aid, {k[name]} AS kind, hash({col}) AS key, count(*) AS n, sum(elicit::INTEGER) AS ne "
            f"FROM _lk_x WHERE {col} IS NOT NULL AND {col} <> skel_hash GROUP BY ALL"
        )
    # The same wrapper in the same time bin: lockstep use of a template, CopyCatch style.
    selects.append(
        f"SELECT aid, {k['sync_template']} AS kind, hash(tbin, h) AS key, count(*) AS n, sum(elicit::INTEGER) AS ne "
        "FROM (SELECT aid, tbin, elicit, unnest([frame_hash, tail_hash]) AS h FROM _lk_x) WHERE h IS NOT NULL "
        "GROUP BY ALL"
    )
    selects.append(
        f"SELECT aid, {k['near_duplicate']} AS kind, hash(band) AS key, count(*) AS n, sum(elicit::INTEGER) AS ne "
        "FROM (SELECT aid, elicit, unnest(lsh) AS band FROM _lk_x WHERE lsh IS NOT NULL) GROUP BY ALL"
    )
    selects.append(
        f"SELECT aid, {k['email_domain']} AS kind, hash(lower(email_domain)) AS key, 1 AS n, 0 AS ne "
        "FROM _lk_acct WHERE email_domain IS NOT NULL"
    )
    # A card on file counts even for an account whose exchanges do not carry it: added where absent.
    selects.append(
        f"SELECT aid, {k['payment']} AS kind, hash(payment_fingerprint) AS key, 0 AS n, 0 AS ne "
        "FROM _lk_acct a WHERE payment_fingerprint IS NOT NULL AND NOT EXISTS (SELECT 1 FROM _lk_inc i "
        f"WHERE i.aid = a.aid AND i.kind = {k['payment']} AND i.key = hash(a.payment_fingerprint))"
    )
    return selects


def _incidence_sql(cfg: LinkConfig) -> list[str]:
    """Statements that build `_lk_inc`, one kind at a time.

    Kinds never share a row (the kind is part of the key), so each is aggregated and appended on its
    own: one union of all of them grouped at once held every kind's hash table together and ran out
    of DuckDB's memory limit at 4M exchanges."""
    creation_s = cfg.creation_bin_minutes * 60
    creation = (
        f"SELECT aid, {KIND_ID['creation']} AS kind, hash(epoch(created_at)::BIGINT // {creation_s}) AS key,"
        " 1 AS n, 0 AS ne FROM _lk_acct WHERE created_at IS NOT NULL"
    )
    create = ("CREATE OR REPLACE TEMP TABLE _lk_inc "
              "(aid INTEGER, kind UTINYINT, key UBIGINT, n INTEGER, ne INTEGER)")
    return [create, *(f"INSERT INTO _lk_inc {select}" for select in [*_incidence_selects(), creation])]


def _kinds_sql(cfg: LinkConfig) -> str:
    rows = ", ".join(
        f"({i}, '{k.name}', '{k.family}', '{k.reason}', {k.weight})" for i, k in enumerate(cfg.kinds)
    )
    return (
        "CREATE OR REPLACE TEMP TABLE _lk_kinds AS SELECT col0::UTINYINT AS kind, col1 AS name, "
        f"col2 AS family, col3 AS reason, col4::DOUBLE AS beta FROM (VALUES {rows})"
    )


def _slot_diversity_sql(shared: str) -> str:
    """Distinct skeletons per head, tail, band and system key.

    A wrapper filled with different tasks is seen under many skeletons; an exact copy of one
    prompt (a public benchmark item, a popular question) under one. Only the former is a template.
    Counted exactly (distinct pairs, then a count), over the keys in `shared` only: DuckDB cannot
    spill HyperLogLog states, and one per shared band key ran a 1M-exchange log out of memory.
    """
    k = KIND_ID

    def pairs(kind: str, key: str, where: str, source: str = "_lk_x") -> str:
        return (f"SELECT {k[kind]} AS kind, {key} AS key, skel_hash FROM {source} "
                f"WHERE {where} AND skel_hash IS NOT NULL AND {key} IN (SELECT key FROM {shared} WHERE kind = {k[kind]})")

    bands = "(SELECT unnest(lsh) AS band, skel_hash FROM _lk_x WHERE lsh IS NOT NULL)"
    return f"""
    SELECT kind, key, count(*) AS n_skel
    FROM (SELECT DISTINCT * FROM (
        {pairs("head", "hash(frame_hash)", "frame_hash <> skel_hash")}
        UNION ALL {pairs("tail", "hash(tail_hash)", "tail_hash <> skel_hash")}
        UNION ALL {pairs("system_prompt", "hash(sys_hash)", "sys_hash IS NOT NULL")}
        UNION ALL {pairs("near_duplicate", "hash(band)", "TRUE", bands)}))
    GROUP BY kind, key
    """


def _bucket_sql(cfg: LinkConfig) -> str:
    """Every shared value (n_acc >= 2) with its quality `q` and pairing weight `w = q * idf`.

    Content and synchrony quality is the elicitation share of the bucket's exchanges times, for
    wrapper fragments, the slot diversity `d`.
    """
    floor = cfg.plain_content_floor
    return f"""
    CREATE OR REPLACE TEMP TABLE _lk_bucket AS
    WITH shared AS (
        SELECT kind, key, count(*) AS n_acc, sum(n) AS n_ex, sum(ne) AS n_el
        FROM _lk_inc GROUP BY kind, key HAVING count(*) >= 2
    )
    SELECT kind, key, n_acc, n_ex, n_el, d,
           q, q / ln(1 + n_acc) AS w
    FROM (SELECT *, CASE WHEN family = '{INFRA}' THEN 1.0
                         ELSE ({floor} + {1 - floor} * n_el / greatest(n_ex, 1)) * d END AS q
          FROM (SELECT b.*, k.family,
                       CASE WHEN k.family = '{INFRA}' THEN 1.0
                            ELSE least(1.0, coalesce(d.n_skel / greatest(b.n_ex, 1), 1.0)) END AS d
                FROM shared b
                JOIN _lk_kinds k USING (kind)
                LEFT JOIN ({_slot_diversity_sql('shared')}) d USING (kind, key)))
    """


def _pair_sql(cfg: LinkConfig) -> str:
    """Pairs sharing a bucket, with their summed evidence per kind.

    Inside a bucket of at most `bucket_cap` accounts every pair is formed. A larger bucket (a
    reseller's egress range, the harvest wrapper of a 20,000-account operation, but also a popular
    browser) pairs each account with only its `ring_neighbours` next members in one global order
    of accounts (a hash of the account): pairing stays linear in the bucket's size, and because the
    order is the same in every bucket, accounts that share many large buckets (the members of one
    operation) are paired in most of them and their evidence adds up, while accounts that share
    one popular value meet in a single bucket, with its small weight.
    """
    return f"""
    CREATE OR REPLACE TEMP TABLE _lk_pair_kind AS
    WITH m AS (
        SELECT i.aid, i.kind, i.key, b.w, b.q, b.n_acc > {cfg.bucket_cap} AS large
        FROM _lk_inc i JOIN _lk_bucket b USING (kind, key)
        WHERE b.w >= {cfg.min_key_weight}
    ),
    small AS (SELECT * FROM m WHERE NOT large),
    ring AS (
        SELECT aid, kind, key, w, q, row_number() OVER (PARTITION BY kind, key ORDER BY hash(aid), aid) AS r
        FROM m WHERE large
    ),
    pairs AS (
        SELECT x.aid AS a, y.aid AS b, x.kind, x.w, x.q
        FROM small x JOIN small y ON x.kind = y.kind AND x.key = y.key AND x.aid < y.aid
        UNION ALL
        SELECT least(x.aid, y.aid), greatest(x.aid, y.aid), x.kind, x.w, x.q
        FROM (SELECT *, r + unnest(range(1, {cfg.ring_neighbours + 1})) AS r_next FROM ring) x
        JOIN ring y ON x.kind = y.kind AND x.key = y.key AND y.r = x.r_next
    )
    SELECT a, b, kind, sum(w) AS e, sum(q * q) AS dot, count(*)::INTEGER AS c
    FROM pairs GROUP BY ALL
    """


def _norm_sql(cfg: LinkConfig) -> str:
    """Per account and content/synchrony kind, the squared norm of its quality-weighted key set.

    The cosine asks which share of an account's harvest-looking keys the other account shares, so
    keys only this account uses count with their own quality; stock values above the cap count 0.
    """
    floor = cfg.plain_content_floor
    return f"""
    SELECT i.aid, i.kind,
           sum(pow(CASE WHEN b.key IS NULL THEN {floor} + {1 - floor} * i.ne / greatest(i.n, 1)
                        WHEN b.w = 0 THEN 0.0 ELSE b.q END, 2)) AS norm2
    FROM _lk_inc i
    JOIN _lk_kinds k ON k.kind = i.kind AND k.family <> '{INFRA}'
    LEFT JOIN _lk_bucket b ON b.kind = i.kind AND b.key = i.key
    GROUP BY ALL
    """


def _edge_sql(cfg: LinkConfig) -> str:
    """Per pair and kind a bounded contribution; their sum, thresholded, is the edge weight.

    Infrastructure counts up to its kind weight per kind, and 1 - exp(-sum) as a family. A content
    or synchrony kind needs both
    enough shared evidence (saturating in its summed weight) and a large enough share of the two
    accounts' weighted keys (cosine): a heavy account that shares a few popular items with another
    by chance has the first but not the second. The contributions are kept (a map) so edges and
    clusters can say what ties them.
    """
    return f"""
    CREATE OR REPLACE TEMP TABLE _lk_graph_edge AS
    WITH norms AS ({_norm_sql(cfg)}),
    contrib AS (
        SELECT p.a, p.b, k.name, k.family,
               CASE
                 WHEN k.family = '{INFRA}' THEN k.beta * least(1.0, p.e)
                 WHEN k.family = '{SYNC}' AND p.c < {cfg.sync_min_shared} THEN 0.0
                 ELSE k.beta * (1 - exp(-p.e / {cfg.content_scale}))
                      * sqrt(least(1.0, p.dot / sqrt(greatest(na.norm2 * nb.norm2, 1e-12))))
               END AS v
        FROM _lk_pair_kind p
        JOIN _lk_kinds k USING (kind)
        LEFT JOIN norms na ON na.aid = p.a AND na.kind = p.kind
        LEFT JOIN norms nb ON nb.aid = p.b AND nb.kind = p.kind
    )
    SELECT a, b, infra + content + sync AS weight, infra, content, sync, by_kind
    FROM (
        -- Infrastructure saturates as a family: one site (a campus, an office) shares its range,
        -- ASN, TLS stack, browser and domain all at once, which is one coincidence, not five.
        SELECT a, b,
               1 - exp(-coalesce(sum(v) FILTER (family = '{INFRA}'), 0)) AS infra,
               coalesce(sum(v) FILTER (family = '{CONTENT}'), 0) AS content,
               coalesce(sum(v) FILTER (family = '{SYNC}'), 0) AS sync,
               map_from_entries(list({{'k': name, 'v': v}}) FILTER (v > 0)) AS by_kind
        FROM contrib
        GROUP BY a, b
    )
    WHERE infra + content + sync >= {cfg.edge_threshold}
    """


def build_graph(con: duckdb.DuckDBPyConnection, cfg: LinkConfig) -> None:
    """Create the `_lk_*` tables; `_lk_graph_edge` holds the thresholded weighted edges (a < b).

    Row order means nothing in these tables, and keeping it costs memory: on `large` the
    incidence table ran out of DuckDB's memory limit with insertion order preserved."""
    preserve = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    con.execute("SET preserve_insertion_order = false")
    try:
        for sql in _prepare_sql(cfg):
            con.execute(sql)
        con.execute(_kinds_sql(cfg))
        for sql in _incidence_sql(cfg):
            con.execute(sql)
        con.execute(_bucket_sql(cfg))
        con.execute(_pair_sql(cfg))
        con.execute(_edge_sql(cfg))
    finally:
        con.execute(f"SET preserve_insertion_order = {str(preserve).lower()}")


def drop_temp_tables(con: duckdb.DuckDBPyConnection) -> None:
    for name in TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {name}")
