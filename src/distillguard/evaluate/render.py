"""Rich tables for the figures of `compute_metrics`; no figure is computed here."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

_NONE = "—"


def pct(value: float | None, digits: int = 1) -> str:
    """A share as a percentage; an undefined share as a dash."""
    return _NONE if value is None else f"{100 * value:.{digits}f}%"


def num(value: float | None, digits: int = 3) -> str:
    return _NONE if value is None else f"{value:.{digits}f}"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    return table


def summary_table(m: dict[str, Any]) -> Table:
    flagged, ranking = m["flagged"], m["ranking"]
    at_fpr = ranking["recall_at_fpr"]
    detection = m["campaign_detection"]
    table = _table("Detection", "figure", "value")
    rows = [
        (
            "accounts (campaign / legit)",
            f"{m['accounts']['n']:,} ({m['accounts']['campaign']:,} / {m['accounts']['legit']:,})",
        ),
        ("flagged: true / false positives", f"{flagged['tp']:,} / {flagged['fp']:,}"),
        ("precision", pct(flagged["precision"])),
        ("recall", pct(flagged["recall"])),
        ("F1", num(flagged["f1"])),
        ("false-positive rate (legit)", pct(flagged["fpr"], 3)),
        (
            "campaigns detected (≥1 account flagged)",
            f"{detection['n_detected']} / {detection['n_campaigns']}",
        ),
        ("PR-AUC (average precision)", num(ranking["pr_auc"])),
        ("ROC-AUC", num(ranking["roc_auc"])),
        (
            f"recall at FPR ≤ {pct(m['fpr_budget'], 2)} (risk ≥ {num(at_fpr['threshold'], 4)})",
            f"{pct(at_fpr['recall'])} (FPR {pct(at_fpr['fpr'], 3)})",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def legit_table(m: dict[str, Any]) -> Table:
    table = _table(
        "Legitimate accounts by actor type",
        "actor type",
        "accounts",
        "flagged",
        "FPR",
        "at budget",
        "FPR at budget",
    )
    for row in m["legit_actor_types"]:
        table.add_row(
            row["actor_type"] or _NONE,
            f"{row['n_accounts']:,}",
            f"{row['n_flagged']:,}",
            pct(row["fpr"], 2),
            f"{row['n_above_budget_threshold']:,}",
            pct(row["fpr_at_budget"], 2),
        )
    return table


def campaign_table(m: dict[str, Any]) -> Table:
    campaigns = m["campaigns"]
    with_clusters = m["clusters"] is not None
    with_exchanges = m["exchanges"] is not None
    columns = ["campaign", "accounts", "flagged", "recall", "recall at budget"]
    if with_clusters:
        columns += ["main cluster", "coverage", "purity"]
    if with_exchanges:
        columns += ["exchanges", "leaked"]
    table = _table("Campaigns", *columns)
    for row in campaigns:
        cells = [
            row["campaign"],
            f"{row['n_accounts']:,}",
            f"{row['n_flagged']:,}",
            pct(row["recall"]),
            pct(row["recall_at_budget"]),
        ]
        if with_clusters:
            cluster = row["cluster"]
            cells += [cluster["cluster_id"] or _NONE, pct(cluster["coverage"]), pct(cluster["purity"])]
        if with_exchanges:
            cells += [f"{row['exchanges']['n_exchanges']:,}", pct(row["exchanges"]["leaked_share"])]
        table.add_row(*cells)
    return table


def campaign_type_table(m: dict[str, Any]) -> Table:
    table = _table(
        "Campaign accounts by actor type",
        "campaign",
        "actor type",
        "accounts",
        "flagged",
        "recall",
        "recall at budget",
    )
    scoped = [(c["campaign"], row) for c in m["campaigns"] for row in c["actor_types"]]
    scoped += [("(all)", row) for row in m["campaign_actor_types"]]
    for campaign, row in scoped:
        table.add_row(
            campaign,
            row["actor_type"] or _NONE,
            f"{row['n_accounts']:,}",
            f"{row['n_flagged']:,}",
            pct(row["recall"]),
            pct(row["recall_at_budget"]),
        )
    return table


def exchange_table(exchanges: dict[str, Any]) -> Table:
    campaign, legit = exchanges["campaign"], exchanges["legit"]
    table = _table("Exchanges", "figure", "value")
    table.add_row("campaign exchanges", f"{campaign['n_exchanges']:,}")
    table.add_row(
        "  made by unflagged accounts (leaked)",
        f"{campaign['n_exchanges_unflagged']:,} ({pct(campaign['leaked_share'])})",
    )
    table.add_row("legit exchanges", f"{legit['n_exchanges']:,}")
    table.add_row(
        "  made by flagged legit accounts",
        f"{legit['n_exchanges_flagged']:,} ({pct(legit['flagged_share'], 2)})",
    )
    table.add_row(
        "log accounts not in truth (ignored)",
        f"{exchanges['n_log_accounts_not_in_truth']:,} ({exchanges['n_exchanges_not_in_truth']:,} exchanges)",
    )
    return table


def cluster_table(clusters: dict[str, Any]) -> Table:
    table = _table("Clusters", "figure", "value")
    table.add_row("clusters found", f"{clusters['n_clusters']:,}")
    table.add_row(
        "accounts in a cluster (legit)",
        f"{clusters['n_clustered_accounts']:,} ({clusters['n_clustered_legit_accounts']:,})",
    )
    table.add_row("clusters with no campaign account", f"{clusters['n_clusters_without_campaign']:,}")
    return table


def render_metrics(m: dict[str, Any], console: Console) -> None:
    """Print every table that has data: summary, legit types, campaigns, clusters, exchanges."""
    console.print(summary_table(m))
    if m["legit_actor_types"]:
        console.print(legit_table(m))
    if m["campaigns"]:
        console.print(campaign_table(m))
        console.print(campaign_type_table(m))
    if m["clusters"] is not None:
        console.print(cluster_table(m["clusters"]))
    if m["exchanges"] is not None:
        console.print(exchange_table(m["exchanges"]))


def render_containment(c: dict[str, Any], console: Console) -> None:
    """The streaming figures of `containment_metrics`: leaked before containment and legit touched."""
    title = f"Containment (replay), exchanges from {c['since']} on" if c.get("since") else "Containment (replay)"
    table = _table(title, "campaign", "accounts", "contained", "exchanges", "leaked",
                   "hours to first", "median account hours")
    for row in c["campaigns"]:
        table.add_row(
            row["campaign"], f"{row['n_accounts']:,}", f"{row['n_contained']:,}", f"{row['n_exchanges']:,}",
            pct(row["leaked_share"], 2), num(row["hours_to_first_containment"], 1),
            num(row["median_account_hours_to_containment"], 1),
        )
    console.print(table)
    legit = _table("Legit accounts touched (replay)", "actor type", "accounts", "monitor", "throttle",
                   "degrade", "block")
    for row in c["legit_actor_types"]:
        legit.add_row(row["actor_type"], f"{row['n_accounts']:,}", *(f"{row[a]:,}" for a in
                                                                    ("monitor", "throttle", "degrade", "block")))
    console.print(legit)
