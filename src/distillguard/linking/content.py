"""Content coordination: score shared templates and fragments, and let the score flow to accounts.

A fragment is a content key: a prompt skeleton, its head or tail (a wrapper around a long slot), a system
prompt skeleton or a MinHash LSH band key. Once the graph is clustered, each shared fragment gets

    score = elicitation share of its exchanges  x  share of its accounts inside its owner cluster

so a harvest wrapper used by one coordinated group scores high, while a stock prompt ("translate to
French", a standard judge template, a benchmark question) used by many unrelated accounts scores low
however elicitation-like it is: its users are spread over the population, not owned by one group.
An account's ``content_risk`` is then the share of its exchanges that hit a scored fragment
(weighted by the best score hit), and accounts left outside every cluster whose traffic leans on one
cluster's high-scoring fragments join that cluster: a campaign member whose infrastructure and
timing gave nothing away is still found through what it asks.
"""

from __future__ import annotations

import duckdb

from distillguard.linking.config import CONTENT, KIND_ID, LinkConfig

# Full skeletons are left out: one repeated verbatim across accounts is what public benchmark items
# and popular prompts look like. Wrapper fragments (heads, tails, system prompts, bands) are scored.
CONTENT_KINDS = ("head", "tail", "system_prompt", "near_duplicate")
_CONTENT_IDS = ", ".join(str(KIND_ID[k]) for k in CONTENT_KINDS)

# Every content key of every exchange, the same keys `graph._incidence_selects` counts.
_EXCHANGE_KEYS = f"""
    SELECT xid, aid, {KIND_ID["skeleton"]} AS kind, hash(skel_hash) AS key FROM _lk_x WHERE skel_hash IS NOT NULL
    UNION ALL
    SELECT xid, aid, {KIND_ID["head"]}, hash(frame_hash) FROM _lk_x
    WHERE frame_hash IS NOT NULL AND frame_hash <> skel_hash
    UNION ALL
    SELECT xid, aid, {KIND_ID["tail"]}, hash(tail_hash) FROM _lk_x
    WHERE tail_hash IS NOT NULL AND tail_hash <> skel_hash
    UNION ALL
    SELECT xid, aid, {KIND_ID["system_prompt"]}, hash(sys_hash) FROM _lk_x WHERE sys_hash IS NOT NULL
    UNION ALL
    SELECT xid, aid, {KIND_ID["near_duplicate"]}, hash(band)
    FROM (SELECT xid, aid, unnest(lsh) AS band FROM _lk_x WHERE lsh IS NOT NULL)
"""

CONTENT_TABLES = ("_lk_content", "_lk_xhit", "_lk_content_risk")


def score_content(con: duckdb.DuckDBPyConnection) -> None:
    """`_lk_content`: scored shared fragments; `_lk_xhit`: exchanges hitting one; needs `_lk_member`."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _lk_content AS
        WITH own AS (
            SELECT i.kind, i.key, m.cid, count(*) AS n_in
            FROM _lk_inc i JOIN _lk_member m USING (aid)
            WHERE i.kind IN ({_CONTENT_IDS})
            GROUP BY ALL
        ),
        best AS (SELECT kind, key, arg_max(cid, n_in) AS owner, max(n_in) AS n_in FROM own GROUP BY ALL)
        SELECT b.kind, b.key, best.owner, b.n_acc, best.n_in,
               b.n_el / greatest(b.n_ex, 1) AS elicit_share,
               b.q * (best.n_in / b.n_acc) AS score
        FROM _lk_bucket b JOIN best USING (kind, key)
        JOIN _lk_kinds k USING (kind)
        WHERE k.family = '{CONTENT}' AND best.n_in >= 2
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _lk_xhit AS
        SELECT h.xid, h.aid, h.kind, h.key, c.score, c.owner
        FROM ({_EXCHANGE_KEYS}) h JOIN _lk_content c USING (kind, key)
        WHERE c.score > 0
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _lk_content_risk AS
        SELECT a.aid, coalesce(sum(x.best), 0) / a.n_ex AS content_risk
        FROM _lk_acct a
        LEFT JOIN (SELECT xid, any_value(aid) AS aid, max(score) AS best FROM _lk_xhit GROUP BY xid) x USING (aid)
        GROUP BY a.aid, a.n_ex
        """
    )


def attach_sql(cfg: LinkConfig, *, by_side: bool = False) -> str:
    """(aid, cid) for unclustered accounts whose traffic leans on one cluster's high-scoring fragments.

    With `by_side`, an account only joins a cluster of its own verdict (`_lk_side`)."""
    same_side = (
        """JOIN _lk_side sa ON sa.aid = h.aid
        JOIN (SELECT m.cid, any_value(s.flagged) AS flagged FROM _lk_member m JOIN _lk_side s USING (aid)
              GROUP BY m.cid) sc ON sc.cid = h.owner AND sc.flagged = sa.flagged"""
        if by_side
        else ""
    )
    return f"""
    WITH hits AS (
        SELECT h.aid, h.owner AS cid, count(DISTINCT (h.kind, h.key)) AS n_keys, count(DISTINCT h.xid) AS n_x
        FROM _lk_xhit h {same_side}
        WHERE h.score >= {cfg.high_content_score}
          AND h.aid NOT IN (SELECT aid FROM _lk_member)
        GROUP BY ALL
    )
    SELECT h.aid, arg_max(h.cid, h.n_x) AS cid
    FROM hits h JOIN _lk_acct a USING (aid)
    WHERE h.n_keys >= {cfg.attach_min_keys} AND h.n_x >= {cfg.attach_min_share} * a.n_ex
    GROUP BY h.aid
    """
