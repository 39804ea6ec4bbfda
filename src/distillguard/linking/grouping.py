"""The edges a grouping partitions: the whole graph, or the graph split by verdict.

Before scoring, clusters come from the account graph alone (`_lk_graph_edge`). After scoring, the
reported clusters are *operations*, grouped by verdict:

- A cluster never mixes flagged and unflagged accounts, so acting on a whole cluster (a takedown)
  never reaches an account the scorer let through, and a legitimate group (an office, a classroom)
  is never reported as part of a campaign because one of its edges touched one.
- Among flagged accounts, weaker shared evidence suffices. An operation that buys distinct
  infrastructure for every account and paraphrases its wrappers leaves each pair of its accounts
  one or two shared fragments, far below the edge threshold, yet hundreds of its accounts share
  such fragments with each other. Among accounts already flagged on their own behaviour, that
  sharing is what joins them into one operation. Two flagged accounts are joined when their shared
  content and synchrony evidence reaches `cfg.suspect_min_evidence`, weighted by how alike they ask
  (the cosine of their (capability, elicitation pattern) mixes, common asks down-weighted, to the
  power `cfg.suspect_profile_power`): two operations drawing on the same public prompt material but
  harvesting different capabilities stay apart. `cluster.consolidate` then joins the pieces the
  constant Potts model cuts a large operation into.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
from scipy.sparse import csr_matrix

from distillguard.linking.config import INFRA, KIND_ID, SYNC, LinkConfig
from distillguard.linking.content import CONTENT_KINDS

_WEAK_TABLES = ("_lk_sus_inc", "_lk_sus_kind", "_lk_sus_pair")
GROUPING_TABLES = ("_lk_edge", "_lk_side", *_WEAK_TABLES)
# Plain (non-elicitation) content counts only on wrapper fragments, whose slot diversity tells a
# template from a copy: a popular prompt repeated verbatim (its skeleton) is no sign of an operation.
_WRAPPER_IDS = ", ".join(str(KIND_ID[k]) for k in CONTENT_KINDS)
# Each flagged account's exchanges per ask (capability, elicitation pattern): its profile for weak edges.
_FLAGGED_ASKS_SQL = (
    "SELECT x.aid, x.ask, count(*)::DOUBLE AS n FROM _lk_x x JOIN _lk_side s USING (aid) WHERE s.flagged GROUP BY ALL"
)


def whole_graph(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE _lk_edge AS SELECT * FROM _lk_graph_edge")


def set_sides(con: duckdb.DuckDBPyConnection, flagged: np.ndarray) -> None:
    """`_lk_side(aid, flagged)` for every account id (`flagged` is indexed by account id)."""
    con.register("_lk_side_in", pa.table({"aid": np.arange(len(flagged), dtype=np.int32), "flagged": flagged}))
    con.execute("CREATE OR REPLACE TEMP TABLE _lk_side AS SELECT * FROM _lk_side_in")
    con.unregister("_lk_side_in")


def _weak_sql(cfg: LinkConfig) -> list[str]:
    """Steps building `_lk_sus_kind` (a, b, kind, e), the evidence between flagged pairs, and
    `_lk_sus_pair` (a, b, f), the pairs kept and how alike they ask.

    Only each account's `suspect_neighbours` strongest weak edges are kept (a pair stays when it
    is among the strongest of either account): a campaign of thousands of flagged accounts sharing
    wrappers would otherwise give millions of edges, each adding little to who belongs with whom.

    Written as temporary tables rather than one statement so DuckDB can spill each step to disk:
    on `large` the self-join yields tens of millions of rows."""
    floor = cfg.suspect_content_floor
    return [
        f"""
        CREATE OR REPLACE TEMP TABLE _lk_sus_inc AS
        SELECT i.aid, i.kind, i.key, (f + (1 - f) * b.n_el / greatest(b.n_ex, 1)) * b.d / ln(1 + b.n_acc) AS w
        FROM (SELECT *, CASE WHEN kind IN ({_WRAPPER_IDS}) THEN {floor} ELSE 0.0 END AS f FROM _lk_inc) i
        JOIN _lk_side s USING (aid) JOIN _lk_bucket b USING (kind, key) JOIN _lk_kinds k USING (kind)
        WHERE s.flagged AND b.n_acc <= {cfg.bucket_cap} AND k.family <> '{INFRA}' AND (i.f > 0 OR b.n_el > 0)
          AND b.d > 0
        """,
        """
        CREATE OR REPLACE TEMP TABLE _lk_sus_kind AS
        SELECT x.aid AS a, y.aid AS b, x.kind, sum(x.w) AS e
        FROM _lk_sus_inc x JOIN _lk_sus_inc y ON x.kind = y.kind AND x.key = y.key AND x.aid < y.aid
        GROUP BY ALL
        """,
        f"""
        CREATE OR REPLACE TEMP TABLE _lk_sus_pair AS
        WITH pairs AS (
            SELECT a, b, sum(e) AS e FROM _lk_sus_kind GROUP BY ALL HAVING sum(e) >= {cfg.suspect_min_evidence}
        ),
        counts AS ({_FLAGGED_ASKS_SQL}),
        -- Common asks (the ordinary chat campaigns mix in as cover) weigh little: `cluster.ask_idf`.
        idf AS (SELECT ask, ln(((SELECT count(DISTINCT aid) FROM counts) + 1) / count(*)) AS idf FROM counts GROUP BY ask),
        asks AS (SELECT aid, ask, n * idf AS n FROM counts JOIN idf USING (ask)),
        norm AS (SELECT aid, sqrt(sum(n * n)) AS norm FROM asks GROUP BY aid),
        alike AS (
            SELECT p.a, p.b, any_value(p.e) AS e,
                   pow(sum(x.n * y.n) / (any_value(na.norm) * any_value(nb.norm)), {cfg.suspect_profile_power}) AS f
            FROM pairs p
            JOIN asks x ON x.aid = p.a JOIN asks y ON y.aid = p.b AND y.ask = x.ask
            JOIN norm na ON na.aid = p.a JOIN norm nb ON nb.aid = p.b
            GROUP BY p.a, p.b
        ),
        ends AS (SELECT a AS x, a, b, e * f AS s FROM alike UNION ALL SELECT b AS x, a, b, e * f FROM alike),
        kept AS (
            SELECT DISTINCT a, b FROM ends
            QUALIFY row_number() OVER (PARTITION BY x ORDER BY s DESC, a, b) <= {cfg.suspect_neighbours}
        )
        SELECT a, b, f FROM alike JOIN kept USING (a, b)
        """,
    ]


def by_verdict(con: duckdb.DuckDBPyConnection, cfg: LinkConfig) -> None:
    """`_lk_edge`: graph edges within one verdict, plus weak evidence between flagged accounts."""
    for sql in _weak_sql(cfg):
        con.execute(sql)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _lk_edge AS
        WITH weak AS (
            SELECT pk.a, pk.b, k.name, k.family, pk.e * p.f AS v
            FROM _lk_sus_kind pk JOIN _lk_sus_pair p USING (a, b) JOIN _lk_kinds k USING (kind)
        ),
        strong AS (
            SELECT e.* FROM _lk_graph_edge e
            JOIN _lk_side sa ON sa.aid = e.a JOIN _lk_side sb ON sb.aid = e.b
            WHERE sa.flagged = sb.flagged
        ),
        parts AS (
            SELECT a, b, weight, infra, content, sync FROM strong
            UNION ALL
            SELECT a, b, sum(v), 0, coalesce(sum(v) FILTER (family <> '{SYNC}'), 0),
                   coalesce(sum(v) FILTER (family = '{SYNC}'), 0)
            FROM weak GROUP BY a, b
        ),
        entries AS (
            SELECT a, b, entry.key AS name, entry.value AS v FROM (SELECT a, b, unnest(map_entries(by_kind)) AS entry FROM strong)
            UNION ALL
            SELECT a, b, name, v FROM weak
        ),
        kinds AS (
            SELECT a, b, map_from_entries(list({{'k': name, 'v': v}}) FILTER (v > 0)) AS by_kind
            FROM (SELECT a, b, name, sum(v) AS v FROM entries GROUP BY ALL) GROUP BY a, b
        )
        SELECT a, b, sum(weight) AS weight, sum(infra) AS infra, sum(content) AS content, sum(sync) AS sync,
               any_value(k.by_kind) AS by_kind
        FROM parts JOIN kinds k USING (a, b)
        GROUP BY a, b
        """
    )
    for name in _WEAK_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {name}")


def ask_counts(con: duckdb.DuckDBPyConnection, n_accounts: int, cfg: LinkConfig) -> csr_matrix:
    """(accounts x asks) tasks of each flagged account per (capability, elicitation pattern).

    A task is a run of the account's exchanges with the same ask, each less than
    `cfg.task_gap_seconds` after the one before: an agent loop's turns or a retry are one thing the
    account set out to get. Counted by exchange, an operation whose accounts run long loops looks
    like one that asks for loops more often, and a hydra account's one coding loop outweighs its
    reasoning requests."""
    rows = con.execute(f"""
        SELECT aid, ask, count(*)::DOUBLE AS n FROM (
            SELECT x.aid, x.ask, lag(x.ask) OVER w AS prev_ask,
                   epoch_ms(x.ts) - epoch_ms(lag(x.ts) OVER w) AS gap_ms
            FROM _lk_x x JOIN _lk_side s USING (aid) WHERE s.flagged
            WINDOW w AS (PARTITION BY x.aid ORDER BY x.ts, x.xid)
        )
        WHERE prev_ask IS NULL OR prev_ask <> ask OR gap_ms >= {int(cfg.task_gap_seconds * 1000)}
        GROUP BY ALL
    """).fetchnumpy()
    asks, column = np.unique(rows["ask"], return_inverse=True)
    return csr_matrix((rows["n"], (rows["aid"], column)), shape=(n_accounts, max(len(asks), 1)))
