"""`replay`: the online engine run over a log in time order, as the gateway would have seen it.

Signals are computed in bulk first (they are a pure function of each exchange, so computing them
ahead changes nothing), then exchanges are fed to `OnlineDetector.observe_many` in timestamp
order, in chunks (each exchange is still decided on the state its own update left, as if they came
one at a time). Every `relink_hours` of traffic, linking runs over the last `window_hours` of
traffic seen so far and its snapshot is swapped in, as a deployment would refresh clusters from a
batch job over recent logs (the window keeps each refresh's cost bounded; a campaign that is still
running is in it). After the last exchange, one more pass links the whole log, so the final
verdicts are those `analyze` gives.

The output is, per account and per action other than allow, the first exchange that received it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from distillguard.behaviour.state import utc_iso
from distillguard.engines.local import load_side_tables, load_signals, open_store, score_and_group
from distillguard.engines.online import OnlineDetector, account_infos, release_list
from distillguard.ingest.rejects import RejectSink
from distillguard.linking import LinkResult
from distillguard.linking.link import Linker
from distillguard.linking.snapshot import LinkSnapshot
from distillguard.policy.decision import severity
from distillguard.progress import track
from distillguard.schema import ACTIONS_CSV_HEADER
from distillguard.scoring.assign import CLUSTERS_SCHEMA, inherit, score_accounts, score_table

DEFAULT_RELINK_HOURS = 6.0
DEFAULT_WINDOW_HOURS = 72.0
_BATCH_ROWS = 8192


@dataclass
class FirstAction:
    ts: int
    exchanges_before: int


@dataclass
class ReplayResult:
    actions: dict[tuple[str, str], FirstAction] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)  # exchanges per action
    refused: int = 0  # exchanges a gateway would not have forwarded
    n_exchanges: int = 0
    n_accounts: int = 0
    relinks: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    # The streaming verdict on every account at the end of the log (accounts.csv/clusters.csv shape).
    accounts: pa.Table | None = None
    clusters: pa.Table | None = None


def replay(
    paths: Sequence[str | Path],
    *,
    rejected_path: Path | None,
    detector: OnlineDetector,
    accounts: Path | None = None,
    releases: Path | None = None,
    fmt: str = "auto",
    relink_hours: float = DEFAULT_RELINK_HOURS,
    window_hours: float = DEFAULT_WINDOW_HOURS,
    quiet: bool = False,
) -> ReplayResult:
    """Replay the logs through `detector`; `relink_hours <= 0` disables linking."""
    con = open_store(None)
    result = ReplayResult()
    with RejectSink(rejected_path) as rejects:
        result.n_exchanges, _ = load_signals(con, paths, rejects=rejects, fmt=fmt, quiet=quiet)
        load_side_tables(con, rejects=rejects, accounts=accounts, releases=releases)
        result.rejected = dict(rejects.counts)
    if accounts is not None:
        detector.accounts.update(account_infos(con.sql("SELECT * FROM accounts").to_arrow_table()))
    if releases is not None:
        detector.releases = tuple(release_list(con.sql("SELECT * FROM releases").to_arrow_table()))
    con.execute("ALTER TABLE signals RENAME TO signals_all")
    relink = _relinker(con, detector) if relink_hours > 0 else None
    step_ms = int(relink_hours * 3_600_000)
    next_link: int | None = None
    seen: set[str] = set()
    last_ts: int | None = None
    # A cursor of its own: relinking runs queries on `con` while this result is being read.
    ordered = con.cursor().sql("SELECT * REPLACE (epoch_ms(ts) AS ts) FROM signals_all ORDER BY ts, request_id")
    with track("replaying exchanges", total=result.n_exchanges, quiet=quiet) as bar:
        for batch in ordered.to_arrow_reader(_BATCH_ROWS):
            rows = batch.to_pylist()
            # Rows between two relinks are observed together: the same decisions as one at a time.
            start = 0
            for i, row in enumerate(rows):
                ts = last_ts = row["ts"]
                if relink is not None:
                    if next_link is None:
                        next_link = ts + step_ms
                    elif ts >= next_link:
                        _observe(detector, rows[start:i], result, seen)
                        start = i
                        relink(ts, ts - int(window_hours * 3_600_000))
                        result.relinks += 1
                        next_link = ts + step_ms
            _observe(detector, rows[start:], result, seen)
            bar.advance(batch.num_rows)
    result.n_accounts = len(seen)
    # A final linking pass over the whole log: the end state a deployment reaches after its next
    # batch refresh, and the state in which streaming and batch verdicts must agree.
    accounts = sorted(seen)
    if relink is None or last_ts is None:
        features = detector.feature_table(accounts, last_ts or 0)
        result.accounts, result.clusters = score_accounts(features, CLUSTERS_SCHEMA.empty_table(), detector.model,
                                                          detector.threshold)
        return result

    def score(link: LinkResult) -> pa.Table:
        _use_links(con, detector, link, last_ts + 1)
        return score_table(detector.feature_table(accounts, last_ts), detector.model, detector.threshold)

    _window(con, last_ts + 1)
    with Linker(con) as linker:
        result.accounts, result.clusters, _, _ = score_and_group(linker, score)
    result.relinks += 1
    return result


def _observe(detector: OnlineDetector, rows: list[dict], result: ReplayResult, seen: set[str]) -> None:
    """Observe rows in time order (each at its own timestamp) and record the first of each action."""
    decided = detector.observe_many(rows, [row["ts"] / 1000.0 for row in rows])
    for row, (decision, before) in zip(rows, decided, strict=True):
        account = row["account_id"]
        seen.add(account)
        result.decisions[decision.action] = result.decisions.get(decision.action, 0) + 1
        result.refused += decision.refused
        if severity(decision.action) > 0:
            key = (account, decision.action)
            if key not in result.actions:
                result.actions[key] = FirstAction(row["ts"], before)


def _window(con: duckdb.DuckDBPyConnection, until_ts: int, since_ts: int | None = None) -> None:
    """Point the `signals` view linking reads at the traffic before `until_ts` (from `since_ts`)."""
    since = "" if since_ts is None else f" AND ts >= make_timestamp({since_ts * 1000})"
    con.execute(
        f"CREATE OR REPLACE VIEW signals AS SELECT * FROM signals_all "
        f"WHERE ts < make_timestamp({until_ts * 1000}){since}"
    )


def _use_links(con: duckdb.DuckDBPyConnection, detector: OnlineDetector, link: LinkResult, until_ts: int,
               linker: Linker | None = None) -> None:
    # Every account of the window scored once under the new pass: its clusters' risks, the egress
    # index and the attach keys all read these verdicts.
    risk = detector.set_links(LinkSnapshot.from_link_table(link.accounts), until_ts,
                              link.accounts.column("account_id").to_pylist())
    if linker is not None:
        # The egress the flagged accounts own, after the inheritance `analyze` runs: an operation's
        # ranges become its own once the accounts they flag in turn are counted.
        verdicts = pa.table({
            "account_id": pa.array(list(risk), pa.string()), "risk": pa.array(list(risk.values()), pa.float64()),
            "flagged": pa.array([r > detector.threshold for r in risk.values()], pa.bool_()),
            "reasons": pa.array([""] * len(risk), pa.string()),
        })
        detector.links.index_egress(con, inherit(verdicts, linker.inherited(verdicts)))
    if detector.attach:
        def flagged(accounts: list[str]) -> list[str]:
            return [a for a in accounts if risk.get(a, 0.0) > detector.threshold]

        detector.links.index_keys(con, link.accounts, flagged)


def _relinker(con: duckdb.DuckDBPyConnection, detector: OnlineDetector) -> Callable[[int, int], None]:
    def relink(until_ts: int, since_ts: int) -> None:
        _window(con, until_ts, since_ts)
        with Linker(con) as linker:
            _use_links(con, detector, linker.link(), until_ts, linker)

    return relink


def write_actions_csv(result: ReplayResult, path: Path) -> None:
    """CONTRACT section 3: one row per account and action, in time order."""
    rows = sorted(result.actions.items(), key=lambda kv: (kv[1].ts, kv[0][0], severity(kv[0][1])))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(ACTIONS_CSV_HEADER)
        for (account, action), first in rows:
            writer.writerow([account, action, utc_iso(first.ts), first.exchanges_before])
