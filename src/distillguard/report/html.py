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

import html
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import plotly.io as pio
import pyarrow as pa
import pyarrow.compute as pc
from plotly.offline import get_plotlyjs
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from distillguard.reasons import REASONS
from distillguard.scoring.model import REASON_OF_FEATURE
from distillguard.signals.capability import CAPABILITIES

if TYPE_CHECKING:
    from distillguard.engines.local import AnalysisResult

TOP_ACCOUNTS = 20  # flagged accounts with a detailed section
TOP_CLUSTERS = 10  # clusters with a detailed section
MAX_TABLE_ROWS = 1000  # rows of the flagged-accounts and clusters tables
MAX_MEMBERS_LISTED = 50  # members named in a cluster section
MAX_GRAPH_NODES = 150  # accounts drawn in a cluster graph (highest risk first)
MAX_GRAPH_EDGES = 2000  # links drawn in a cluster graph (heaviest first)
MAX_LINK_KINDS = 6  # distinct link kinds given their own colour; the rest are "other"
MAX_MODELS = 8  # models given their own colour in a timeline; the rest are "other"
MAX_SAMPLES = 5  # sample prompts shown per account
SAMPLE_CHARS = 300  # characters kept of each sample prompt
HOURLY_MAX_DAYS = 31  # beyond this window, timelines count exchanges per day instead of per hour
MAX_EVAL_DEPTH = 5  # nesting levels of the evaluation rendered as tables
MAX_EVAL_ROWS = 500  # rows rendered of any list in the evaluation

# One line per reason code, for an analyst checking a verdict.
REASON_DESCRIPTIONS: dict[str, str] = {r.code: r.description for r in REASONS}

_PLOT_CONFIG = {"displaylogo": False, "responsive": True}

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
# Escaping and small HTML pieces


def esc(value: object) -> str:
    """Text for HTML element content or a quoted attribute; None is empty."""
    return "" if value is None else html.escape(str(value), quote=True)


def plot_label(value: object) -> str:
    """Text for a plotly label: plotly.js reads tags and entities in labels, so escape them."""
    return html.escape("" if value is None else str(value), quote=False)


def truncate(text: str, limit: int = SAMPLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _num(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return esc(value)


def _count_cell(value: int | None) -> str:
    return f'<td class="num" data-sort="{int(value or 0)}">{_num(value)}</td>'


def _risk_cell(risk: float | None, threshold: float) -> str:
    cls = "risk high" if risk is not None and risk > threshold else "risk"
    shown = "—" if risk is None else f"{risk:.3f}"
    return f'<td class="num {cls}" data-sort="{risk or 0:.6f}">{shown}</td>'


def _reason_chips(reasons: str | None) -> str:
    """Reason codes as chips; a known code links to its explanation, anything else is plain text."""
    chips = []
    for code in (reasons or "").split(";"):
        code = code.strip()
        if not code:
            continue
        if code in REASON_DESCRIPTIONS:
            chips.append(
                f'<a class="chip" href="#reason-{code}" title="{esc(REASON_DESCRIPTIONS[code])}">{code}</a>'
            )
        else:
            chips.append(f'<span class="chip">{esc(code)}</span>')
    return "".join(chips)


def _table(header: Sequence[str], rows: Iterable[str], *, sortable: bool = False) -> str:
    """A table from escaped header names and pre-rendered `<tr>` rows."""
    cls = ' class="sortable"' if sortable else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _kv_table(pairs: Iterable[tuple[str, str]]) -> str:
    """Two-column table of escaped labels and pre-rendered values."""
    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in pairs) + "</table>"


def _more_note(shown: int, total: int, what: str) -> str:
    if total <= shown:
        return ""
    return f'<p class="muted">Showing {shown:,} of {total:,} {what}; the CSV outputs list them all.</p>'


# ---------------------------------------------------------------------------------------------
# Data from the result tables


def _rows(table: pa.Table, columns: Sequence[str]) -> list[dict[str, Any]]:
    present = [c for c in columns if c in table.column_names]
    return table.select(present).to_pylist()


def ranked_flagged(accounts: pa.Table) -> pa.Table:
    """Flagged accounts, highest risk first (ties by account id so the page is reproducible)."""
    flagged = accounts.filter(pc.fill_null(accounts.column("flagged"), False))
    return flagged.sort_by([("risk", "descending"), ("account_id", "ascending")])


def ranked_clusters(clusters: pa.Table) -> pa.Table:
    return clusters.sort_by([("risk", "descending"), ("cluster_id", "ascending")])


def cluster_members(accounts: pa.Table, cluster_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Members of each cluster, highest risk first."""
    if not cluster_ids:
        return {}
    mask = pc.is_in(accounts.column("cluster_id"), value_set=pa.array(cluster_ids, pa.string()))
    members = accounts.filter(pc.fill_null(mask, False)).sort_by(
        [("risk", "descending"), ("account_id", "ascending")]
    )
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in cluster_ids}
    for row in _rows(members, ("account_id", "cluster_id", "risk", "flagged", "n_exchanges")):
        out[row["cluster_id"]].append(row)
    return out


# ---------------------------------------------------------------------------------------------
# Activity from the signals table


@dataclass
class Activity:
    """Exchanges of one account or cluster: counts per time bucket and model, and per capability."""

    series: dict[str, dict[datetime, int]] = field(default_factory=lambda: defaultdict(dict))
    capabilities: dict[str, int] = field(default_factory=dict)


def capability_name(code: int | None) -> str:
    if code is None:
        return "unknown"
    return CAPABILITIES[code] if 0 <= code < len(CAPABILITIES) else f"code {code}"


def has_signals(con: duckdb.DuckDBPyConnection) -> bool:
    found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'signals'").fetchall()
    return bool(found[0][0])


def time_bucket(con: duckdb.DuckDBPyConnection) -> tuple[str, datetime | None, datetime | None]:
    """'hour' or 'day' depending on the length of the analysed window, and the window itself."""
    first, last = con.execute(
        "SELECT timezone('UTC', min(ts)), timezone('UTC', max(ts)) FROM signals"
    ).fetchall()[0]
    if first is None or last is None:
        return "hour", None, None
    return ("hour" if (last - first).days <= HOURLY_MAX_DAYS else "day"), first, last


OTHER_MODELS = "other models"


def group_activity(
    con: duckdb.DuckDBPyConnection, groups: Mapping[str, str], bucket: str
) -> dict[str, Activity]:
    """Activity per group for `groups` (account id -> group key), in two grouped queries.

    Each group keeps its `MAX_MODELS - 1` busiest models by name and sums the rest as
    `OTHER_MODELS`: model names come from the client, so their number is not bounded otherwise.
    """
    if not groups:
        return {}
    if bucket not in ("hour", "day"):  # interpolated into the SQL below
        raise ValueError(f"unknown time bucket {bucket!r}")
    name = "report_groups"
    con.register(name, pa.table({"account_id": list(groups), "grp": list(groups.values())}))
    try:
        timeline = con.execute(
            f"""
            WITH x AS (
                SELECT g.grp, s.model, date_trunc('{bucket}', timezone('UTC', s.ts)) AS t
                FROM signals s JOIN {name} g USING (account_id)
            ),
            ranked AS (
                SELECT grp, model,
                       row_number() OVER (PARTITION BY grp ORDER BY count(*) DESC, model) AS rk
                FROM x GROUP BY grp, model
            )
            SELECT x.grp, x.t, CASE WHEN r.rk < {MAX_MODELS} THEN x.model END AS model,
                   r.rk >= {MAX_MODELS} AS other, count(*) AS n
            FROM x JOIN ranked r ON x.grp = r.grp AND x.model IS NOT DISTINCT FROM r.model
            GROUP BY ALL ORDER BY x.t
            """
        ).fetchall()
        capability = con.execute(
            f"SELECT g.grp, s.capability, count(*) AS n FROM signals s JOIN {name} g USING (account_id) "
            "GROUP BY ALL ORDER BY n DESC"
        ).fetchall()
    finally:
        con.unregister(name)
    out: dict[str, Activity] = defaultdict(Activity)
    for grp, t, model, other, n in timeline:
        points = out[grp].series[OTHER_MODELS if other else (model or "(none)")]
        points[t] = points.get(t, 0) + n
    for grp, code, n in capability:
        cap = out[grp].capabilities
        label = capability_name(code)
        cap[label] = cap.get(label, 0) + n
    return out


# ---------------------------------------------------------------------------------------------
# Figures


def figure_html(spec: dict[str, Any], div_id: str) -> str:
    """A figure as a div and its Plotly.newPlot call (plotly.js itself is embedded once in <head>).

    Figures are plain specs, not graph objects: building graph objects costs tens of milliseconds
    each in validation, which would dominate the report's time. Tests validate the specs instead.
    plotly's JSON encoder escapes <, > and / in the data.
    """
    return pio.to_html(
        spec,
        validate=False,
        full_html=False,
        include_plotlyjs=False,
        config=_PLOT_CONFIG,
        div_id=div_id,
        default_width="100%",
    )


def _subplot_title(text: str, x: float) -> dict[str, Any]:
    return {
        "text": text,
        "x": x,
        "y": 1.0,
        "xref": "paper",
        "yref": "paper",
        "xanchor": "center",
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 13},
    }


def activity_spec(activity: Activity, bucket: str) -> dict[str, Any]:
    """Exchanges per time bucket stacked by model (a pivot to a new model shows as a change of
    colour), beside the capability mix."""
    data: list[dict[str, Any]] = []
    # Busiest model first, so colours follow the traffic and a new model stands out.
    models = sorted(activity.series, key=lambda m: (m == OTHER_MODELS, -sum(activity.series[m].values()), m))
    for model in models:
        points = activity.series[model]
        times = sorted(points)
        data.append(
            {
                "type": "bar",
                "x": times,
                "y": [points[t] for t in times],
                "name": plot_label(model),
                "xaxis": "x",
                "yaxis": "y",
            }
        )
    caps = sorted(activity.capabilities.items(), key=lambda kv: kv[1])
    data.append(
        {
            "type": "bar",
            "orientation": "h",
            "x": [n for _, n in caps],
            "y": [plot_label(c) for c, _ in caps],
            "name": "exchanges",
            "showlegend": False,
            "marker": {"color": "#8c6bb1"},
            "xaxis": "x2",
            "yaxis": "y2",
        }
    )
    return {
        "data": data,
        "layout": {
            "barmode": "stack",
            "bargap": 0.05,
            "height": 340,
            "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
            "xaxis": {"domain": [0.0, 0.62], "anchor": "y"},
            "yaxis": {"anchor": "x", "title": {"text": "exchanges"}},
            "xaxis2": {"domain": [0.78, 1.0], "anchor": "y2"},
            "yaxis2": {"anchor": "x2", "automargin": True},
            "legend": {"orientation": "h", "y": -0.18},
            "annotations": [
                _subplot_title(f"exchanges per {bucket} (UTC), by model", 0.31),
                _subplot_title("capability mix", 0.89),
            ],
        },
    }


def spring_layout(n: int, pairs: np.ndarray, iterations: int = 80) -> np.ndarray:
    """2-D positions by Fruchterman-Reingold: linked accounts pull together, all accounts push apart.

    Starts from a circle with each connected component on its own arc, so the result is
    deterministic and components begin apart. A weak pull to the centre keeps separate components
    on screen.
    """
    if n == 0:
        return np.zeros((0, 2))
    adj = np.zeros((n, n))
    if len(pairs):
        adj[pairs[:, 0], pairs[:, 1]] = 1.0
        adj[pairs[:, 1], pairs[:, 0]] = 1.0
    np.fill_diagonal(adj, 0.0)
    _, component = connected_components(coo_matrix(adj), directed=False)
    order = np.argsort(component, kind="stable")
    angle = np.empty(n)
    angle[order] = 2 * np.pi * np.arange(n) / n
    pos = np.column_stack([np.cos(angle), np.sin(angle)])
    k = 1.0 / np.sqrt(n)  # ideal distance between linked accounts in a unit-sized drawing
    step = 0.1
    for _ in range(iterations):
        delta = pos[:, None, :] - pos[None, :, :]
        dist = np.maximum(np.linalg.norm(delta, axis=-1), 1e-3)
        # Repulsion k²/d for every pair, attraction d²/k along links, both along delta/d.
        force = k * k / dist**2 - adj * dist / k
        disp = (delta * force[..., None]).sum(axis=1) - 0.1 * pos
        length = np.maximum(np.linalg.norm(disp, axis=1, keepdims=True), 1e-9)
        pos += disp / length * np.minimum(length, step)
        step *= 0.95
    return pos


def _kinds_text(kinds: object) -> str:
    if isinstance(kinds, list | tuple):
        return ", ".join(str(k) for k in kinds)
    return "" if kinds is None else str(kinds)


def cluster_graph_spec(
    members: Sequence[Mapping[str, Any]], edges: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The cluster's accounts (coloured by risk) and the links between them (coloured by kind);
    None when no link joins two drawn members."""
    shown = members[:MAX_GRAPH_NODES]
    index = {m["account_id"]: i for i, m in enumerate(shown)}
    inside = [e for e in edges if e["account_a"] in index and e["account_b"] in index]
    inside.sort(key=lambda e: -(e.get("weight") or 0.0))
    inside = inside[:MAX_GRAPH_EDGES]
    if not inside:
        return None
    pairs = np.array([(index[e["account_a"]], index[e["account_b"]]) for e in inside], dtype=np.int64)
    pos = spring_layout(len(shown), pairs)
    by_kind: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(inside):
        by_kind[_kinds_text(e.get("kinds")) or "link"].append(i)
    ranked = sorted(by_kind, key=lambda k: (-len(by_kind[k]), k))
    if len(ranked) > MAX_LINK_KINDS:
        rest = [i for k in ranked[MAX_LINK_KINDS - 1 :] for i in by_kind[k]]
        by_kind = {k: by_kind[k] for k in ranked[: MAX_LINK_KINDS - 1]} | {"other links": rest}
    data: list[dict[str, Any]] = []
    for kind, idx in by_kind.items():
        xs: list[float | None] = []
        ys: list[float | None] = []
        for a, b in pairs[idx]:
            xs += [float(pos[a, 0]), float(pos[b, 0]), None]
            ys += [float(pos[a, 1]), float(pos[b, 1]), None]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": xs,
                "y": ys,
                "line": {"width": 1},
                "opacity": 0.6,
                "name": plot_label(kind),
                "hoverinfo": "skip",
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "x": pos[:, 0].tolist(),
            "y": pos[:, 1].tolist(),
            "name": "accounts",
            "marker": {
                "size": 11,
                "color": [m.get("risk") or 0.0 for m in shown],
                "colorscale": "Reds",
                "cmin": 0.0,
                "cmax": 1.0,
                "line": {"width": 1, "color": "#444"},
                "colorbar": {"title": {"text": "risk"}, "thickness": 12},
            },
            "text": [f"{plot_label(m['account_id'])}<br>risk {m.get('risk') or 0:.3f}" for m in shown],
            "hoverinfo": "text",
        }
    )
    return {
        "data": data,
        "layout": {
            "height": 420,
            "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
            "title": {"text": "links between member accounts", "font": {"size": 13}},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False, "scaleanchor": "x"},
            "legend": {"orientation": "h", "y": -0.02},
            "plot_bgcolor": "white",
        },
    }


# ---------------------------------------------------------------------------------------------
# Sections


def _summary_section(
    result: AnalysisResult, n_flagged: int, window: tuple[datetime | None, datetime | None]
) -> str:
    rejected = result.rejected or {}
    pairs = [
        ("exchanges analysed", _num(result.n_exchanges)),
        ("duplicate request ids ignored", _num(result.n_duplicates)),
        ("records rejected", _num(sum(rejected.values()))),
    ]
    pairs += [
        (f"rejected: {reason}", _num(count))
        for reason, count in sorted(rejected.items(), key=lambda kv: -kv[1])[:10]
    ]
    first, last = window
    if first is not None and last is not None:
        pairs.append(("window (UTC)", f"{esc(first.isoformat())} → {esc(last.isoformat())}"))
    pairs += [
        ("accounts", _num(result.accounts.num_rows)),
        ("flagged accounts", _num(n_flagged)),
        ("clusters", _num(result.clusters.num_rows)),
        ("risk threshold (flag above)", f"{result.threshold:.4f}"),
    ]
    return f'<section id="summary"><h2>Summary</h2>{_kv_table(pairs)}</section>'


def _flagged_section(
    flagged: pa.Table, threshold: float, detail: Mapping[str, int], cluster_anchor: Mapping[str, int]
) -> str:
    if flagged.num_rows == 0:
        return '<section id="flagged"><h2>Flagged accounts</h2><p>No account scored above the threshold.</p></section>'
    rows = []
    columns = ("account_id", "n_exchanges", "risk", "reasons", "cluster_id")
    for rank, row in enumerate(_rows(flagged.slice(0, MAX_TABLE_ROWS), columns), start=1):
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
            f"{_count_cell(row.get('n_exchanges'))}{_risk_cell(row['risk'], threshold)}"
            f'<td>{_reason_chips(row.get("reasons"))}</td><td class="id">{cluster_cell}</td></tr>'
        )
    table = _table(("#", "account", "exchanges", "risk", "reasons", "cluster"), rows, sortable=True)
    return (
        f'<section id="flagged"><h2>Flagged accounts</h2>'
        f'<p class="muted">Click a column header to sort.</p>{table}'
        f"{_more_note(min(flagged.num_rows, MAX_TABLE_ROWS), flagged.num_rows, 'flagged accounts')}</section>"
    )


def _feature_rows(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Values of the features behind each of the account's reasons, so a reason can be checked."""
    codes = [c for c in (row.get("reasons") or "").split(";") if c]
    pairs = []
    for code in codes:
        for feature, mapped in REASON_OF_FEATURE.items():
            if mapped == code and feature in row and row[feature] is not None:
                pairs.append((f"{code}: {feature}", _num(float(row[feature]))))
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
        ("exchanges", _num(row.get("n_exchanges"))),
        ("cluster", cluster_html),
        ("reasons", _reason_chips(row.get("reasons")) or "—"),
        *_feature_rows(row),
    ]
    plot = figure or '<p class="muted">No exchange signals available for this account.</p>'
    return (
        f'<div class="card" id="account-{i}"><h3>{i + 1}. <span class="id">{esc(row["account_id"])}</span></h3>'
        f"{_kv_table(facts)}{plot}{_samples_html(samples)}</div>"
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
    for row in _rows(clusters.slice(0, MAX_TABLE_ROWS), columns):
        cid = row["cluster_id"]
        name = f'<span class="id">{esc(cid)}</span>'
        if cid in anchor:
            name = f'<a href="#cluster-{anchor[cid]}">{name}</a>'
        risk = row.get("risk")
        rows.append(
            f"<tr><td>{name}</td>"
            f"{_count_cell(row.get('n_accounts'))}{_count_cell(row.get('n_exchanges'))}"
            f'<td class="num risk" data-sort="{float(risk or 0):.6f}">{_num(risk)}</td>'
            f"<td>{esc(row.get('capabilities'))}</td><td>{_reason_chips(row.get('reasons'))}</td></tr>"
        )
    table = _table(
        ("cluster", "accounts", "exchanges", "risk", "capabilities", "reasons"), rows, sortable=True
    )
    return table + _more_note(min(clusters.num_rows, MAX_TABLE_ROWS), clusters.num_rows, "clusters")


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
            ("accounts", _num(row.get("n_accounts"))),
            ("exchanges", _num(row.get("n_exchanges"))),
            ("risk", _num(row.get("risk"))),
            ("capabilities", esc(row.get("capabilities")) or "—"),
            ("reasons", _reason_chips(row.get("reasons")) or "—"),
        ]
        act = activity.get(cid)
        timeline = figure_html(activity_spec(act, bucket), f"fig-cluster-{i}") if act else ""
        graph_spec = cluster_graph_spec(members.get(cid, []), edge_rows.get(cid, []))
        graph = figure_html(graph_spec, f"fig-graph-{i}") if graph_spec else ""
        cards.append(
            f'<div class="card" id="cluster-{i}"><h3>Cluster <span class="id">{esc(cid)}</span></h3>'
            f"{_kv_table(facts)}{timeline}{graph}{_members_html(members.get(cid, []), detail)}</div>"
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
        f"{_table(('code', 'meaning', 'features'), rows)}</section>"
    )


# ---------------------------------------------------------------------------------------------
# Evaluation (a nested dict of numbers, strings and lists, rendered without knowing its keys)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def render_value(value: object, depth: int = 0) -> str:
    """Scalars as text, dicts as two-column tables, lists of dicts as tables with one row each."""
    if _is_scalar(value):
        return _num(value)
    if depth >= MAX_EVAL_DEPTH:
        return '<span class="muted">…</span>'
    if isinstance(value, Mapping):
        return _kv_table((str(k), render_value(v, depth + 1)) for k, v in value.items())
    if isinstance(value, list | tuple):
        items = list(value[:MAX_EVAL_ROWS])
        more = _more_note(len(items), len(value), "rows")
        if items and all(isinstance(v, Mapping) for v in items):
            header = list(dict.fromkeys(k for v in items for k in v))
            rows = [
                "<tr>" + "".join(f"<td>{render_value(v.get(h), depth + 1)}</td>" for h in header) + "</tr>"
                for v in items
            ]
            return _table([str(h) for h in header], rows) + more
        return ", ".join(render_value(v, depth + 1) for v in items) + more
    return esc(value)


def _evaluation_section(evaluation: Mapping[str, Any]) -> str:
    scalars = [(str(k), _num(v)) for k, v in evaluation.items() if _is_scalar(v)]
    parts = [_kv_table(scalars)] if scalars else []
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
    top_clusters = _rows(clusters.slice(0, TOP_CLUSTERS), clusters.column_names)
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
