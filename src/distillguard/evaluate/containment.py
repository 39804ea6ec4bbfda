"""Streaming evaluation: how much each campaign got before it was contained, and whom it cost.

Inputs are `replay`'s actions.csv (CONTRACT section 3), the ground truth, and per-account exchange
counts and first timestamps from the log (`evaluate.features.account_activity`). An account counts
as *contained* from its first throttle, degrade or block (monitoring alone contains nothing);
everything it sent before that is leaked, and an account never contained leaked all of its
exchanges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from distillguard.errors import InputError
from distillguard.evaluate.features import Activity
from distillguard.evaluate.tables import csv_rows
from distillguard.ingest.normalise import Rejected, epoch_ms
from distillguard.policy.decision import ACTIONS
from distillguard.schema import ACTIONS_CSV_HEADER

CONTAINING = ("throttle", "degrade", "block")


@dataclass(frozen=True)
class ActionRow:
    account_id: str
    action: str
    first_ts_ms: int
    exchanges_before: int


def read_actions(path: Path) -> list[ActionRow]:
    """Read a contract actions.csv; any malformed line is a one-line error naming line and field."""
    out: list[ActionRow] = []
    seen: set[tuple[str, str]] = set()
    for line, (account, action, first_ts, before) in csv_rows(path, ACTIONS_CSV_HEADER):
        if not account:
            raise InputError(f"{path}:{line}: field 'account_id' is empty")
        if action not in ACTIONS or action == "allow":
            raise InputError(f"{path}:{line}: field 'action': {action!r} is not one of {', '.join(ACTIONS[1:])}")
        if (account, action) in seen:
            raise InputError(f"{path}:{line}: duplicate row for account {account!r} and action {action!r}")
        seen.add((account, action))
        try:
            # The log reader's parser: an offset is required, so a time is never read as local.
            ts = epoch_ms(first_ts, "first_ts")
        except Rejected as exc:
            raise InputError(f"{path}:{line}: field 'first_ts': {first_ts!r} is not an RFC 3339 time "
                             f"({exc.reason})") from None
        if not before.isdigit():
            raise InputError(f"{path}:{line}: field 'exchanges_before': {before!r} is not a count")
        out.append(ActionRow(account, action, ts, int(before)))
    return out


def containment_metrics(
    truth: pa.Table, actions: list[ActionRow], activity: Mapping[str, Activity], since_ms: int | None = None
) -> dict[str, Any]:
    """Per campaign: leaked share and time to first containment; per legit type: accounts touched.

    With `since_ms` (and `activity` counted with the same `since_ms`), the campaign figures cover only
    the exchanges sent from that time on: how much a campaign still gets through once the detector
    has been running, rather than from a cold start. Exchanges before it count neither as traffic nor
    as leaked; an account contained earlier leaks nothing in the window; times are measured from the
    later of the account's first exchange and `since_ms`. Legitimate accounts touched are counted
    over the whole replay either way.
    """
    contained: dict[str, ActionRow] = {}
    touched: dict[str, set[str]] = {}
    for row in actions:
        touched.setdefault(row.account_id, set()).add(row.action)
        if row.action in CONTAINING:
            best = contained.get(row.account_id)
            if best is None or row.first_ts_ms < best.first_ts_ms:
                contained[row.account_id] = row
    ids = truth.column("account_id").to_pylist()
    labels = truth.column("label").to_pylist()
    campaigns = truth.column("campaign").to_pylist()
    types = truth.column("actor_type").to_pylist()

    per_campaign: dict[str, dict[str, Any]] = {}
    per_type: dict[str, dict[str, int]] = {}
    for account, label, campaign, actor_type in zip(ids, labels, campaigns, types, strict=True):
        n, first, skipped = activity.get(account, (0, None, 0))
        if since_ms is not None and first is not None:
            n, first = n - skipped, max(first, since_ms)
        if label == "campaign":
            if since_ms is not None and n <= 0:
                continue  # no traffic in the window
            c = per_campaign.setdefault(campaign, {"n_accounts": 0, "n_contained": 0, "n_exchanges": 0,
                                                   "n_leaked": 0, "first_ts": None, "contained_ts": None,
                                                   "delays": []})
            c["n_accounts"] += 1
            c["n_exchanges"] += n
            if first is not None:
                c["first_ts"] = first if c["first_ts"] is None else min(c["first_ts"], first)
            hit = contained.get(account)
            if hit is None:
                c["n_leaked"] += n
                continue
            c["n_contained"] += 1
            c["n_leaked"] += min(n, max(0, hit.exchanges_before - skipped))
            hit_ms = hit.first_ts_ms if since_ms is None else max(hit.first_ts_ms, since_ms)
            c["contained_ts"] = hit_ms if c["contained_ts"] is None else min(c["contained_ts"], hit_ms)
            if first is not None:
                c["delays"].append((hit_ms - first) / 3_600_000)
        else:
            t = per_type.setdefault(actor_type or "unknown", {"n_accounts": 0, **{a: 0 for a in ACTIONS[1:]}})
            t["n_accounts"] += 1
            for action in touched.get(account, ()):
                t[action] += 1

    campaign_rows = []
    for name, c in sorted(per_campaign.items()):
        first, stop = c["first_ts"], c["contained_ts"]
        campaign_rows.append({
            "campaign": name,
            "n_accounts": c["n_accounts"],
            "n_contained": c["n_contained"],
            "n_exchanges": c["n_exchanges"],
            "n_leaked": c["n_leaked"],
            "leaked_share": c["n_leaked"] / c["n_exchanges"] if c["n_exchanges"] else None,
            "hours_to_first_containment": None if first is None or stop is None else (stop - first) / 3_600_000,
            "median_account_hours_to_containment": float(np.median(c["delays"])) if c["delays"] else None,
        })
    total = sum(r["n_exchanges"] for r in campaign_rows)
    leaked = sum(r["n_leaked"] for r in campaign_rows)
    return {
        "campaigns": campaign_rows,
        "campaign_leaked_share": leaked / total if total else None,
        "legit_actor_types": [{"actor_type": k, **v} for k, v in sorted(per_type.items())],
    }
