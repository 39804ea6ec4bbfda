"""The analyst's report (CONTRACT section 2, `report.html`): one self-contained HTML file for offline use.

Everything that comes from the input (account ids, model names, cluster ids, reasons, link kinds,
prompts) is untrusted. It reaches the page only through `html.escape`, or inside plotly's figure
JSON, which plotly writes with `<`, `>` and `/` as `\\u` escapes so no string can close the
surrounding script element. Text drawn by plotly (legend, hover, tick labels) is escaped too,
because plotly.js interprets a few HTML tags and entities in labels.

Only the accounts and clusters shown in detail are looked up in the `signals` table, in a handful
of grouped queries, so writing the report costs about the same for a small or a very large analysis.
Every list on the page is capped; the CSV outputs hold the complete verdicts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from plotly.offline import get_plotlyjs

from distillguard.report.data import (  # noqa: F401  (with the names users import from here)
    MAX_MODELS,
    OTHER_MODELS,
    Activity,
    cluster_members,
    group_activity,
    has_signals,
    ranked_clusters,
    ranked_flagged,
    rows_of,
    time_bucket,
)
from distillguard.report.figures import (  # noqa: F401  (with the names users import from here)
    MAX_GRAPH_NODES,
    activity_spec,
    cluster_graph_spec,
    figure_html,
    spring_layout,
)
from distillguard.report.markup import (  # noqa: F401  (with the names users import from here)
    REASON_DESCRIPTIONS,
    SAMPLE_CHARS,
    count_cell,
    esc,
    kv_table,
    more_note,
    num,
    reason_chips,
    risk_cell,
    table_html,
    truncate,
)
from distillguard.scoring.model import REASON_OF_FEATURE

if TYPE_CHECKING:
    from distillguard.engines.local import AnalysisResult

TOP_ACCOUNTS = 20  # flagged accounts with a detailed section
TOP_CLUSTERS = 10  # clusters with a detailed section
MAX_TABLE_ROWS = 1000  # rows of the flagged-accounts and clusters tables
MAX_MEMBERS_LISTED = 50  # members named in a cluster section
MAX_SAMPLES = 5  # sample prompts shown per account
MAX_EVAL_DEPTH = 5  # nesting levels of the evaluation rendered as tables
MAX_EVAL_ROWS = 500  # rows rendered of any list in the evaluation

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       margin: 0 auto; max-width: 1200px; padding: 0 24px 48px; }
h1 { margin: 24px 0 4px; } h2 { border-bottom: 2px solid #d0d7de; padding-bottom: 4px; margin-top: 40px; }
h3 { margin: 28px 0 6px; } .muted { color: #656d76; }
nav a { margin-right: 14px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; } table.sortable th:hover { background: #eaeef2; }
code, .id { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; word-break: break-all; }
.chip { display: inline-block; background: #fff1e5; border: 1px solid #f0b27a; border-radius: 10px;
        padding: 0 7px; margin: 1px 2px; font-size: 12px; white-space: nowrap; }
.risk { font-weight: 600; } .risk.high { color: #b42318; }
.sample { background: #f6f8fa; border-left: 3px solid #d0d7de; padding: 6px 10px; margin: 6px 0;
          white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, Menlo, monospace; font-size: 12px; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 4px 16px 12px; margin: 16px 0; }
"""

# Sorts a table on a header click: numbers by the cell's data-sort value, text otherwise.
_SORT_JS = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = th.dataset.dir !== "asc";
    th.parentNode.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
    th.dataset.dir = asc ? "asc" : "desc";
    var key = function (row) {
      var cell = row.children[idx];
      var v = cell.dataset.sort !== undefined ? parseFloat(cell.dataset.sort) : NaN;
      return isNaN(v) ? cell.textContent.trim().toLowerCase() : v;
    };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""


# ---------------------------------------------------------------------------------------------
# Sections


def _summary_section(
    result: AnalysisResult, n_flagged: int, window: tuple[datetime | None, datetime | None]
) -> str:
    rejected = result.rejected or {}
    pairs = [
        ("exchanges analysed", num(result.n_exchanges)),
        ("duplicate request ids ignored", num(result.n_duplicates)),
        ("records rejected", num(sum(rejected.values()))),
    ]
    pairs += [
        (f"rejected: {reason}", num(count))
        for reason, count in sorted(rejected.items(), key=lambda kv: -kv[1])[:10]
    ]
    first, last = window
    if first is not None and last is not None:
        pairs.append(("window (UTC)", f"{esc(first.isoformat())} → {esc(last.isoformat())}"))
    pairs += [
        ("accounts", num(result.accounts.num_rows)),
        ("flagged accounts", num(n_flagged)),
        ("clusters", num(result.clusters.num_rows)),
        ("risk threshold (flag above)", f"{result.threshold:.4f}"),
    ]
    return f'<section id="summary"><h2>Summary</h2>{kv_table(pairs)}</section>'


def _flagged_section(
    flagged: pa.Table, threshold: float, detail: Mapping[str, int], cluster_anchor: Mapping[str, int]
) -> str:
    if flagged.num_rows == 0:
        return '<section id="flagged"><h2>Flagged accounts</h2><p>No account scored above the threshold.</p></section>'
    rows = []
    columns = ("account_id", "n_exchanges", "risk", "reasons", "cluster_id")
    for rank, row in enumerate(rows_of(flagged.slice(0, MAX_TABLE_ROWS), columns), start=1):
        account = row["account_id"]
        name = f'<span class="id">{esc(account)}</span>'
        if account in detail:
            name = f'<a href="#account-{detail[account]}">{name}</a>'
        cluster = row.get("cluster_id")
        cluster_cell = esc(cluster)
        if cluster in cluster_anchor:
            cluster_cell = f'<a href="#cluster-{cluster_anchor[cluster]}">{cluster_cell}</a>'
        rows.append(
            f'<tr><td class="num" data-sort="{rank}">{rank}</td><td>{name}</td>'
            f"{count_cell(row.get('n_exchanges'))}{risk_cell(row['risk'], threshold)}"
            f'<td>{reason_chips(row.get("reasons"))}</td><td class="id">{cluster_cell}</td></tr>'
        )
    table = table_html(("#", "account", "exchanges", "risk", "reasons", "cluster"), rows, sortable=True)
    return (
        f'<section id="flagged"><h2>Flagged accounts</h2>'
        f'<p class="muted">Click a column header to sort.</p>{table}'
        f"{more_note(min(flagged.num_rows, MAX_TABLE_ROWS), flagged.num_rows, 'flagged accounts')}</section>"
    )


def _feature_rows(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Values of the features behind each of the account's reasons, so a reason can be checked."""
    codes = [c for c in (row.get("reasons") or "").split(";") if c]
    pairs = []
    for code in codes:
        for feature, mapped in REASON_OF_FEATURE.items():
            if mapped == code and feature in row and row[feature] is not None:
                pairs.append((f"{code}: {feature}", num(float(row[feature]))))
    return pairs


def _samples_html(prompts: Sequence[str] | None) -> str:
    if not prompts:
        return ""
    items = "".join(f'<div class="sample">{esc(truncate(str(p)))}</div>' for p in prompts[:MAX_SAMPLES])
    return f"<h4>Sample prompts</h4>{items}"


def _account_card(
    i: int,
    row: Mapping[str, Any],
    threshold: float,
    figure: str | None,
    samples: Sequence[str] | None,
    cluster_anchor: Mapping[str, int],
) -> str:
    cluster = row.get("cluster_id")
    cluster_html = esc(cluster) if cluster else "none"
    if cluster in cluster_anchor:
        cluster_html = f'<a href="#cluster-{cluster_anchor[cluster]}">{cluster_html}</a>'
    facts = [
        ("risk", f"{row['risk']:.3f} (threshold {threshold:.3f})"),
        ("exchanges", num(row.get("n_exchanges"))),
        ("cluster", cluster_html),
        ("reasons", reason_chips(row.get("reasons")) or "—"),
        *_feature_rows(row),
    ]
    plot = figure or '<p class="muted">No exchange signals available for this account.</p>'
    return (
        f'<div class="card" id="account-{i}"><h3>{i + 1}. <span class="id">{esc(row["account_id"])}</span></h3>'
        f"{kv_table(facts)}{plot}{_samples_html(samples)}</div>"
    )


def _accounts_detail_section(
    top: list[dict[str, Any]],
    threshold: float,
    activity: Mapping[str, Activity],
    bucket: str,
    samples: Mapping[str, list[str]],
    cluster_anchor: Mapping[str, int],
) -> str:
    if not top:
        return ""
    cards = []
    for i, row in enumerate(top):
        act = activity.get(row["account_id"])
        figure = figure_html(activity_spec(act, bucket), f"fig-account-{i}") if act else None
        cards.append(_account_card(i, row, threshold, figure, samples.get(row["account_id"]), cluster_anchor))
    return (
        f'<section id="accounts"><h2>Top flagged accounts in detail</h2>'
        f'<p class="muted">Highest risk first, at most {TOP_ACCOUNTS}.</p>{"".join(cards)}</section>'
    )


def _clusters_table(clusters: pa.Table, anchor: Mapping[str, int]) -> str:
    rows = []
    columns = ("cluster_id", "n_accounts", "n_exchanges", "risk", "capabilities", "reasons")
    for row in rows_of(clusters.slice(0, MAX_TABLE_ROWS), columns):
        cid = row["cluster_id"]
        name = f'<span class="id">{esc(cid)}</span>'
        if cid in anchor:
            name = f'<a href="#cluster-{anchor[cid]}">{name}</a>'
        risk = row.get("risk")
        rows.append(
            f"<tr><td>{name}</td>"
            f"{count_cell(row.get('n_accounts'))}{count_cell(row.get('n_exchanges'))}"
            f'<td class="num risk" data-sort="{float(risk or 0):.6f}">{num(risk)}</td>'
            f"<td>{esc(row.get('capabilities'))}</td><td>{reason_chips(row.get('reasons'))}</td></tr>"
        )
    table = table_html(
        ("cluster", "accounts", "exchanges", "risk", "capabilities", "reasons"), rows, sortable=True
    )
    return table + more_note(min(clusters.num_rows, MAX_TABLE_ROWS), clusters.num_rows, "clusters")


def _members_html(members: Sequence[Mapping[str, Any]], detail: Mapping[str, int]) -> str:
    items = []
    for m in members[:MAX_MEMBERS_LISTED]:
        name = f'<span class="id">{esc(m["account_id"])}</span>'
        if m["account_id"] in detail:
            name = f'<a href="#account-{detail[m["account_id"]]}">{name}</a>'
        mark = " ⚑" if m.get("flagged") else ""
        items.append(f"<li>{name} — risk {m.get('risk') or 0:.3f}{mark}</li>")
    more = ""
    if len(members) > MAX_MEMBERS_LISTED:
        more = (
            f'<p class="muted">and {len(members) - MAX_MEMBERS_LISTED:,} more members (see accounts.csv).</p>'
        )
    return f"<h4>Members ({len(members):,}; ⚑ = flagged)</h4><ul>{''.join(items)}</ul>{more}"


def _clusters_section(
    clusters: pa.Table,
    top: list[dict[str, Any]],
    members: Mapping[str, list[dict[str, Any]]],
    activity: Mapping[str, Activity],
    bucket: str,
    edges: pa.Table | None,
    detail: Mapping[str, int],
) -> str:
    if clusters.num_rows == 0:
        return '<section id="clusters"><h2>Clusters</h2><p>No coordinated cluster was found.</p></section>'
    anchor = {row["cluster_id"]: i for i, row in enumerate(top)}
    edge_rows = _cluster_edges(edges, members)
    cards = []
    for i, row in enumerate(top):
        cid = row["cluster_id"]
        facts = [
            ("accounts", num(row.get("n_accounts"))),
            ("exchanges", num(row.get("n_exchanges"))),
            ("risk", num(row.get("risk"))),
            ("capabilities", esc(row.get("capabilities")) or "—"),
            ("reasons", reason_chips(row.get("reasons")) or "—"),
        ]
        act = activity.get(cid)
        timeline = figure_html(activity_spec(act, bucket), f"fig-cluster-{i}") if act else ""
        graph_spec = cluster_graph_spec(members.get(cid, []), edge_rows.get(cid, []))
        graph = figure_html(graph_spec, f"fig-graph-{i}") if graph_spec else ""
        cards.append(
            f'<div class="card" id="cluster-{i}"><h3>Cluster <span class="id">{esc(cid)}</span></h3>'
            f"{kv_table(facts)}{timeline}{graph}{_members_html(members.get(cid, []), detail)}</div>"
        )
    return (
        f'<section id="clusters"><h2>Clusters</h2>{_clusters_table(clusters, anchor)}'
        f'<p class="muted">In detail below: highest risk first, at most {TOP_CLUSTERS}.</p>{"".join(cards)}</section>'
    )


def _cluster_edges(
    edges: pa.Table | None, members: Mapping[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """Links whose two ends are drawn members of the same detailed cluster, per cluster."""
    if edges is None or edges.num_rows == 0 or not members:
        return {}
    owner = {m["account_id"]: cid for cid, ms in members.items() for m in ms[:MAX_GRAPH_NODES]}
    ids = pa.array(list(owner), pa.string())
    keep = pc.and_(
        pc.is_in(edges.column("account_a"), value_set=ids), pc.is_in(edges.column("account_b"), value_set=ids)
    )
    cols = [c for c in ("account_a", "account_b", "weight", "kinds") if c in edges.column_names]
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in edges.filter(pc.fill_null(keep, False)).select(cols).to_pylist():
        if owner[e["account_a"]] == owner[e["account_b"]]:
            out[owner[e["account_a"]]].append(e)
    return out


def _reasons_section() -> str:
    features: dict[str, list[str]] = defaultdict(list)
    for feature, code in REASON_OF_FEATURE.items():
        features[code].append(feature)
    codes = list(dict.fromkeys([*features, *REASON_DESCRIPTIONS]))
    rows = [
        f'<tr id="reason-{esc(code)}"><td><span class="chip">{esc(code)}</span></td>'
        f"<td>{esc(REASON_DESCRIPTIONS.get(code, 'See the features listed.'))}</td>"
        f"<td><code>{esc(', '.join(features.get(code, [])) or '—')}</code></td></tr>"
        for code in codes
    ]
    return (
        '<section id="reasons"><h2>Reason codes</h2>'
        "<p>Each flagged account lists the codes that raised its risk most, strongest first.</p>"
        f"{table_html(('code', 'meaning', 'features'), rows)}</section>"
    )


# ---------------------------------------------------------------------------------------------
# Evaluation (a nested dict of numbers, strings and lists, rendered without knowing its keys)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def render_value(value: object, depth: int = 0) -> str:
    """Scalars as text, dicts as two-column tables, lists of dicts as tables with one row each."""
    if _is_scalar(value):
        return num(value)
    if depth >= MAX_EVAL_DEPTH:
        return '<span class="muted">…</span>'
    if isinstance(value, Mapping):
        return kv_table((str(k), render_value(v, depth + 1)) for k, v in value.items())
    if isinstance(value, list | tuple):
        items = list(value[:MAX_EVAL_ROWS])
        more = more_note(len(items), len(value), "rows")
        if items and all(isinstance(v, Mapping) for v in items):
            header = list(dict.fromkeys(k for v in items for k in v))
            rows = [
                "<tr>" + "".join(f"<td>{render_value(v.get(h), depth + 1)}</td>" for h in header) + "</tr>"
                for v in items
            ]
            return table_html([str(h) for h in header], rows) + more
        return ", ".join(render_value(v, depth + 1) for v in items) + more
    return esc(value)


def _evaluation_section(evaluation: Mapping[str, Any]) -> str:
    scalars = [(str(k), num(v)) for k, v in evaluation.items() if _is_scalar(v)]
    parts = [kv_table(scalars)] if scalars else []
    for key, value in evaluation.items():
        if not _is_scalar(value):
            parts.append(f"<h3>{esc(key)}</h3>{render_value(value, 1)}")
    return f'<section id="evaluation"><h2>Evaluation against ground truth</h2>{"".join(parts)}</section>'


# ---------------------------------------------------------------------------------------------
# The page


def render_report(
    result: AnalysisResult,
    *,
    samples: Mapping[str, list[str]] | None = None,
    evaluation: Mapping[str, Any] | None = None,
    edges: pa.Table | None = None,
    title: str = "distillguard report",
) -> str:
    """The whole report as one HTML string."""
    flagged = ranked_flagged(result.accounts)
    top_accounts = flagged.slice(0, TOP_ACCOUNTS).to_pylist()
    clusters = ranked_clusters(result.clusters)
    top_clusters = rows_of(clusters.slice(0, TOP_CLUSTERS), clusters.column_names)
    cluster_anchor = {row["cluster_id"]: i for i, row in enumerate(top_clusters)}
    detail = {row["account_id"]: i for i, row in enumerate(top_accounts)}
    members = cluster_members(result.accounts, list(cluster_anchor))

    bucket, first, last = "hour", None, None
    account_activity: dict[str, Activity] = {}
    cluster_activity: dict[str, Activity] = {}
    if result.con is not None:
        # A cursor of its own, so the caller's connection and its pending results are left alone.
        con = result.con.cursor()
        try:
            if has_signals(con):
                bucket, first, last = time_bucket(con)
                account_activity = group_activity(con, {a: a for a in detail}, bucket)
                cluster_activity = group_activity(
                    con, {m["account_id"]: c for c, ms in members.items() for m in ms}, bucket
                )
        finally:
            con.close()

    sections = [
        _summary_section(result, flagged.num_rows, (first, last)),
        _flagged_section(flagged, result.threshold, detail, cluster_anchor),
        _accounts_detail_section(
            top_accounts, result.threshold, account_activity, bucket, samples or {}, cluster_anchor
        ),
        _clusters_section(clusters, top_clusters, members, cluster_activity, bucket, edges, detail),
        _reasons_section(),
    ]
    nav = ["summary", "flagged", "accounts", "clusters", "reasons"]
    if not top_accounts:
        nav.remove("accounts")
    if evaluation:
        sections.append(_evaluation_section(evaluation))
        nav.append("evaluation")
    nav_html = "".join(f'<a href="#{n}">{n}</a>' for n in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
        f"<body><h1>{esc(title)}</h1><nav>{nav_html}</nav>{''.join(sections)}"
        f"<script>{_SORT_JS}</script></body></html>\n"
    )


def write_report(
    path: Path,
    result: AnalysisResult,
    *,
    samples: dict[str, list[str]] | None = None,
    evaluation: dict | None = None,
    edges: pa.Table | None = None,
    title: str = "distillguard report",
) -> None:
    """Write the analyst's report for `result` to `path` (CONTRACT section 2, report.html)."""
    page = render_report(result, samples=samples, evaluation=evaluation, edges=edges, title=title)
    path.write_text(page, encoding="utf-8")
