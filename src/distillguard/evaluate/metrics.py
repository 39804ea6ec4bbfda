"""Detection quality against ground truth: pure functions over small per-account tables.

`compute_metrics` is the single entry point; it returns plain JSON-ready values (floats, ints,
strings, None for a figure that is undefined on the given data, e.g. precision when nothing is
flagged). Positive class = campaign account.

Operating point at a false-positive budget: the accounts counted as detected are those with
`risk >= threshold`, where the threshold is the lowest risk value such that the share of legit
accounts at or above it is within the budget (scikit-learn's ROC points, one per distinct risk).
Accounts with equal risk are never separated: a tie group that would push the legit share over
the budget is excluded as a whole, so the reported recall is never helped by an arbitrary order.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from distillguard.evaluate import DEFAULT_FPR_BUDGET


@dataclass(frozen=True)
class Accounts:
    """Truth and prediction of every truth account, as aligned numpy columns."""

    account_id: np.ndarray  # str objects
    is_campaign: np.ndarray  # bool
    campaign: np.ndarray  # str objects, "" for legit accounts
    actor_type: np.ndarray  # str objects
    risk: np.ndarray  # float64
    flagged: np.ndarray  # bool
    cluster: np.ndarray  # str objects, "" when the account is in no cluster


def align(truth: pa.Table, pred: pa.Table) -> Accounts:
    """Pair each truth account with its prediction; predictions for unknown accounts are dropped."""
    rows = pc.index_in(truth.column("account_id"), value_set=pred.column("account_id"))
    if rows.null_count:
        first = truth.column("account_id").filter(pc.is_null(rows))[0].as_py()
        raise ValueError(f"{rows.null_count} truth accounts have no prediction (first: {first!r})")
    matched = pred.take(rows)

    def strings(table: pa.Table, name: str) -> np.ndarray:
        return np.array(table.column(name).fill_null("").to_pylist(), dtype=object)

    return Accounts(
        account_id=strings(truth, "account_id"),
        is_campaign=np.asarray(pc.equal(truth.column("label"), "campaign").to_numpy(zero_copy_only=False)),
        campaign=strings(truth, "campaign"),
        actor_type=strings(truth, "actor_type"),
        risk=matched.column("risk").to_numpy().astype(np.float64),
        flagged=np.asarray(matched.column("flagged").to_numpy(zero_copy_only=False), dtype=bool),
        cluster=strings(matched, "cluster_id"),
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator) / float(denominator) if denominator else None


def _finite(value: float) -> float | None:
    """JSON has no NaN: an undefined figure is None."""
    return None if np.isnan(value) else float(value)


def flag_metrics(y: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    """Confusion counts, precision, recall, F1 and false-positive rate of the `flagged` column."""
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, flagged, labels=[False, True]).ravel())
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, flagged, average="binary", zero_division=np.nan
    )
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": _finite(precision),
        "recall": _finite(recall),
        "f1": _finite(f1),
        "fpr": _ratio(fp, fp + tn),
    }


def budget_threshold(y: np.ndarray, risk: np.ndarray, fpr_budget: float) -> float:
    """Lowest risk threshold (inclusive) whose legit share at or above it is within the budget.

    Returns +inf when even the highest risk would exceed the budget (nothing is detected), and
    the lowest risk when there are no legit accounts to protect.
    """
    if not (~y).any():
        return float(risk.min()) if risk.size else float("inf")
    with warnings.catch_warnings():
        # Without campaign accounts the true-positive rates are undefined; only FPRs are used here.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        fpr, _, thresholds = roc_curve(y, risk, drop_intermediate=False)
    return float(thresholds[np.flatnonzero(fpr <= fpr_budget)[-1]])


def ranking_metrics(y: np.ndarray, risk: np.ndarray, fpr_budget: float, threshold: float) -> dict[str, Any]:
    """PR-AUC (average precision), ROC-AUC and recall at the budget's threshold, from `risk`."""
    has_both = bool(y.any() and (~y).any())
    above = risk >= threshold
    return {
        "pr_auc": float(average_precision_score(y, risk)) if y.any() else None,
        "roc_auc": float(roc_auc_score(y, risk)) if has_both else None,
        "recall_at_fpr": {
            "fpr_budget": fpr_budget,
            "threshold": None if np.isinf(threshold) else threshold,
            "threshold_rule": "risk >= threshold; tied accounts are kept together",
            "recall": _ratio(int((above & y).sum()), int(y.sum())),
            "fpr": _ratio(int((above & ~y).sum()), int((~y).sum())),
            "n_campaign_detected": int((above & y).sum()),
            "n_legit_above": int((above & ~y).sum()),
        },
    }


def group_rates(
    keys: np.ndarray, flagged: np.ndarray, above: np.ndarray, *, key: str, share: str, share_at_budget: str
) -> list[dict[str, Any]]:
    """Per key (sorted): accounts, flagged accounts and their share, the same at the budget.

    The share is recall for campaign accounts and false-positive rate for legit ones; the
    caller names it through `share` and `share_at_budget`.
    """
    rows = []
    for value in sorted(set(keys.tolist())):
        members = keys == value
        n = int(members.sum())
        n_flagged = int((flagged & members).sum())
        n_above = int((above & members).sum())
        rows.append(
            {
                key: value,
                "n_accounts": n,
                "n_flagged": n_flagged,
                share: n_flagged / n,
                "n_above_budget_threshold": n_above,
                share_at_budget: n_above / n,
            }
        )
    return rows


def campaign_cluster(cluster: np.ndarray, campaign_mask: np.ndarray) -> dict[str, Any]:
    """The found cluster holding most of one campaign's accounts, with coverage and purity.

    coverage = campaign accounts in that cluster / campaign accounts;
    purity = campaign accounts in that cluster / all truth accounts in that cluster.
    Ties between clusters go to the smallest cluster id, so the answer is deterministic.
    """
    counts = Counter(cluster[campaign_mask & (cluster != "")].tolist())
    n_campaign = int(campaign_mask.sum())
    if not counts:
        return {"cluster_id": None, "n_in_cluster": 0, "cluster_size": 0, "coverage": 0.0, "purity": None}
    best = min(counts, key=lambda c: (-counts[c], c))
    size = int((cluster == best).sum())
    return {
        "cluster_id": best,
        "n_in_cluster": counts[best],
        "cluster_size": size,
        "coverage": counts[best] / n_campaign,
        "purity": counts[best] / size,
    }


def cluster_summary(accounts: Accounts) -> dict[str, Any]:
    """How many clusters were found, and how many of them hold no campaign account at all."""
    clustered = accounts.cluster != ""
    ids = set(accounts.cluster[clustered].tolist())
    with_campaign = set(accounts.cluster[clustered & accounts.is_campaign].tolist())
    return {
        "n_clusters": len(ids),
        "n_clustered_accounts": int(clustered.sum()),
        "n_clustered_legit_accounts": int((clustered & ~accounts.is_campaign).sum()),
        "n_clusters_without_campaign": len(ids - with_campaign),
    }


def exchange_counts_for(accounts: Accounts, exchanges_per_account: Mapping[str, int]) -> np.ndarray:
    """Exchange count of every truth account; an account absent from the log made none."""
    return np.array([exchanges_per_account.get(a, 0) for a in accounts.account_id], dtype=np.int64)


def leak(exchanges: np.ndarray, flagged: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """Exchanges of the masked accounts, and the share made by accounts left unflagged."""
    total = int(exchanges[mask].sum())
    unflagged = int(exchanges[mask & ~flagged].sum())
    return {
        "n_exchanges": total,
        "n_exchanges_unflagged": unflagged,
        "leaked_share": _ratio(unflagged, total),
    }


def exchange_summary(
    accounts: Accounts, exchanges: np.ndarray, exchanges_per_account: Mapping[str, int]
) -> dict[str, Any]:
    """Campaign exchanges that got through, and legit exchanges of accounts that were flagged."""
    known = set(accounts.account_id.tolist())
    unknown = [n for a, n in exchanges_per_account.items() if a not in known]
    legit = ~accounts.is_campaign
    legit_total = int(exchanges[legit].sum())
    legit_flagged = int(exchanges[legit & accounts.flagged].sum())
    return {
        "campaign": leak(exchanges, accounts.flagged, accounts.is_campaign),
        "legit": {
            "n_exchanges": legit_total,
            "n_exchanges_flagged": legit_flagged,
            "flagged_share": _ratio(legit_flagged, legit_total),
        },
        "n_log_accounts_not_in_truth": len(unknown),
        "n_exchanges_not_in_truth": int(sum(unknown)),
    }


def campaign_rows(
    accounts: Accounts, above: np.ndarray, exchanges: np.ndarray | None
) -> list[dict[str, Any]]:
    """Per campaign: recall (flagged and at the budget), per actor type, cluster and leak figures."""
    has_clusters = bool((accounts.cluster != "").any())
    rows = []
    for name in sorted(set(accounts.campaign[accounts.is_campaign].tolist())):
        mask = accounts.campaign == name
        n = int(mask.sum())
        n_flagged = int((accounts.flagged & mask).sum())
        n_above = int((above & mask).sum())
        rows.append(
            {
                "campaign": name,
                "n_accounts": n,
                "n_flagged": n_flagged,
                "recall": n_flagged / n,
                "n_above_budget_threshold": n_above,
                "recall_at_budget": n_above / n,
                "actor_types": group_rates(
                    accounts.actor_type[mask],
                    accounts.flagged[mask],
                    above[mask],
                    key="actor_type",
                    share="recall",
                    share_at_budget="recall_at_budget",
                ),
                "cluster": campaign_cluster(accounts.cluster, mask) if has_clusters else None,
                "exchanges": None if exchanges is None else leak(exchanges, accounts.flagged, mask),
            }
        )
    return rows


def compute_metrics(
    truth: pa.Table,
    pred: pa.Table,
    exchanges_per_account: Mapping[str, int] | None = None,
    *,
    fpr_budget: float = DEFAULT_FPR_BUDGET,
) -> dict[str, Any]:
    """Every figure of one evaluation, JSON-ready.

    `truth` has the columns of `tables.TRUTH_SCHEMA`, `pred` those of `tables.PREDICTION_SCHEMA`
    and a row for every truth account (extra rows are ignored). `exchanges_per_account` (from
    the exchange log) adds the leaked-exchange figures.
    """
    accounts = align(truth, pred)
    y = accounts.is_campaign
    threshold = budget_threshold(y, accounts.risk, fpr_budget)
    above = accounts.risk >= threshold
    exchanges = (
        None if exchanges_per_account is None else exchange_counts_for(accounts, exchanges_per_account)
    )
    campaigns = campaign_rows(accounts, above, exchanges)
    n_detected = sum(1 for c in campaigns if c["n_flagged"])
    legit = ~y
    return {
        "fpr_budget": fpr_budget,
        "accounts": {"n": int(y.size), "campaign": int(y.sum()), "legit": int(legit.sum())},
        "flagged": flag_metrics(y, accounts.flagged),
        "ranking": ranking_metrics(y, accounts.risk, fpr_budget, threshold),
        "campaign_detection": {
            "n_campaigns": len(campaigns),
            "n_detected": n_detected,
            "recall": _ratio(n_detected, len(campaigns)),
            "rule": "a campaign is detected when at least one of its accounts is flagged",
        },
        "legit_actor_types": group_rates(
            accounts.actor_type[legit],
            accounts.flagged[legit],
            above[legit],
            key="actor_type",
            share="fpr",
            share_at_budget="fpr_at_budget",
        ),
        "campaign_actor_types": group_rates(
            accounts.actor_type[y],
            accounts.flagged[y],
            above[y],
            key="actor_type",
            share="recall",
            share_at_budget="recall_at_budget",
        ),
        "campaigns": campaigns,
        "clusters": cluster_summary(accounts) if (accounts.cluster != "").any() else None,
        "exchanges": None
        if exchanges is None or exchanges_per_account is None
        else exchange_summary(accounts, exchanges, exchanges_per_account),
    }
