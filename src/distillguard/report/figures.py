"""The report's figures as plotly specs: activity timelines and cluster graphs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.io as pio
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from distillguard.report.data import OTHER_MODELS, Activity
from distillguard.report.markup import plot_label

MAX_GRAPH_NODES = 150  # accounts drawn in a cluster graph (highest risk first)
MAX_GRAPH_EDGES = 2000  # links drawn in a cluster graph (heaviest first)
MAX_LINK_KINDS = 6  # distinct link kinds given their own colour; the rest are "other"
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


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
