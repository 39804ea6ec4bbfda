"""What containing a campaign within 1% of its exchanges asks of a detector, on simulated traffic.

Leaked before containment is the share of a campaign's exchanges sent before each of its accounts
was first throttled, degraded or blocked. An account contained at its k-th request leaks k - 1
exchanges, so at most 1% of a campaign's exchanges can leak only if all but that many of its
accounts are contained at their very first request, on that request's evidence alone. This prints,
per campaign of a simulated world (with its ground truth):

- that arithmetic: accounts, exchanges, the 1% budget in exchanges, and the share of accounts that
  must be contained at their first request for the budget to hold (1 - budget / accounts);
- what a detector has to go on at an account's first request: whether that request, or any of the
  first three, carries an extraction signal (an elicitation probability above 0.5, as the account
  features count them), and what the accounts table says at signup (account under 30 days old,
  entry-point tier, unverified), for each campaign and each kind of legitimate customer, so that
  acting on any of them shows its honest cost;
- with a replay's `actions.csv` (`benchmarks/evaluate_containment.py` leaves one per world), the
  share of each campaign's accounts the shipped policy actually contained at their first request.

    .venv/bin/python benchmarks/containment_bound.py [--scenarios adaptive medium] [--seed 1]

Worlds are read from (or simulated into) `--work`/SCENARIO-SEED, as `evaluate_containment.py` does.

With `--worlds` (either generator, as `benchmarks/worlds.py` names them) it prints instead the
*first-evidence bound* per campaign: the leak of a detector that contains every account at the
first of its exchanges carrying an extraction signal (an elicitation probability above 0.5) and
not one exchange earlier, while an account that never shows one leaks everything. It is what
acting on each account's own request evidence, without patience and without cross-account
knowledge, would leak; the target for evasive campaigns is the replay's leak within 2x of it.
Next to it: the replay's leak (its `actions.csv` from `evaluate_containment.py --worlds`), their
ratio, and, where the world's `exchange_truth.csv.gz` says which exchanges were harvest, the
leaked share of harvest and of ordinary exchanges apart. `--since-days D` counts only exchanges
sent after the detector had run D days (warm start), for the bound and the replay alike.

    .venv/bin/python benchmarks/containment_bound.py --worlds worldgen:evasive:322 --since-days 3
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_containment import WORLDS, world
from worlds import World, generate, log_files, read_truth

from distillguard.behaviour.features import ENTRY_POINT_TIERS
from distillguard.evaluate.containment import CONTAINING, read_actions
from distillguard.ingest.normalise import epoch_ms, exchange_row
from distillguard.signals.exchange import ELICITATION_COLUMNS, exchange_signal_rows

BUDGET = 0.01
FIRST_REQUESTS = 3
YOUNG_DAYS = 30
_DAY_MS = 86_400_000


@dataclass
class Group:
    """One campaign, or one kind of legitimate customer."""

    accounts: int = 0
    exchanges: int = 0
    sizes: list[int] = field(default_factory=list)
    first_signal: int = 0
    early_signal: int = 0
    young: int = 0
    entry_tier: int = 0
    unverified: int = 0
    contained_first: int = 0

    def share(self, count: int) -> str:
        return share(count, self.accounts)


def timed_records(log: Path) -> Iterator[tuple[int, dict]]:
    """(ts in ms, record) for each line of a contract JSONL log, gzipped or plain."""
    opener = gzip.open if log.suffix == ".gz" else open
    with opener(log, "rb") as fh:
        for line in fh:
            record = orjson.loads(line)
            yield epoch_ms(record["ts"], "ts"), record


def first_records(log: Path, n: int) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """Each account's first `n` records by time, and its number of exchanges."""
    first: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for ts, record in timed_records(log):
        account = record["account_id"]
        counts[account] += 1
        kept = first[account]
        if len(kept) < n or ts < kept[-1][0]:
            kept.append((ts, record))
            kept.sort(key=lambda pair: pair[0])
            del kept[n:]
    return {a: [r for _, r in kept] for a, kept in first.items()}, counts


def extraction_signal(records: list[dict]) -> list[bool]:
    """Per record: does any elicitation type score above 0.5 (the account features' count)?"""
    rows = exchange_signal_rows([exchange_row(r) for r in records])
    return [any((row[c] or 0.0) > 0.5 for c in ELICITATION_COLUMNS) for row in rows]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def first_contained(actions: Path) -> dict[str, int]:
    """Account -> exchanges it sent before its first containing action."""
    out: dict[str, int] = {}
    for row in read_actions(actions):
        if row.action in CONTAINING:
            out[row.account_id] = min(row.exchanges_before, out.get(row.account_id, row.exchanges_before))
    return out


def contained_at_first_request(actions: Path) -> set[str]:
    """Accounts whose first containing action came before any exchange of theirs went through."""
    return {account for account, before in first_contained(actions).items() if before == 0}


def signup(accounts: Path) -> dict[str, dict]:
    with accounts.open("rb") as fh:
        return {r["account_id"]: r for r in map(orjson.loads, fh)}


def groups(sim: Path, actions: Path | None) -> tuple[dict[str, Group], dict[str, Group]]:
    truth = read_csv(sim / "truth.csv")
    first, counts = first_records(sim / "exchanges.jsonl.gz", FIRST_REQUESTS)
    table = signup(sim / "accounts.jsonl")
    contained = contained_at_first_request(actions) if actions else set()
    flat = [(a, r) for a, records in first.items() for r in records]
    signal = dict.fromkeys(first, False), dict.fromkeys(first, False)
    for (account, record), hit in zip(flat, extraction_signal([r for _, r in flat]), strict=True):
        if record is first[account][0]:
            signal[0][account] |= hit
        signal[1][account] |= hit
    campaigns: dict[str, Group] = defaultdict(Group)
    legit: dict[str, Group] = defaultdict(Group)
    for row in truth:
        account = row["account_id"]
        if account not in first:
            continue
        group = campaigns[row["campaign"]] if row["label"] == "campaign" else legit[row["actor_type"]]
        group.accounts += 1
        group.exchanges += counts[account]
        group.sizes.append(counts[account])
        group.first_signal += signal[0][account]
        group.early_signal += signal[1][account]
        info = table.get(account, {})
        first_ms = epoch_ms(first[account][0]["ts"], "ts")
        created = info.get("created_at")
        group.young += created is not None and (first_ms // _DAY_MS - epoch_ms(created, "created_at") // _DAY_MS
                                                < YOUNG_DAYS)
        group.entry_tier += (info.get("tier") or "") in ENTRY_POINT_TIERS
        group.unverified += info.get("verified") is False
        group.contained_first += account in contained
    return dict(campaigns), dict(legit)


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def median(values: Iterable[int]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def markdown(title: str, campaigns: Mapping[str, Group], legit: Mapping[str, Group], replayed: bool) -> str:
    replay_head = " contained at first request (replay) |" if replayed else ""
    lines = [
        f"**{title}**", "",
        "| campaign | accounts | exchanges | median per account | 1% budget (exchanges) | must be contained at "
        "first request | first request shows extraction | any of first 3 | young | entry tier | unverified |"
        + replay_head,
        "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if replayed else ""),
    ]
    for name, g in sorted(campaigns.items()):
        budget = int(BUDGET * g.exchanges)
        must = max(0.0, 1 - budget / g.accounts)
        row = (f"| {name} | {g.accounts:,} | {g.exchanges:,} | {median(g.sizes):g} | {budget:,} | "
               f"{100 * must:.1f}% | {g.share(g.first_signal)} | {g.share(g.early_signal)} | {g.share(g.young)} | "
               f"{g.share(g.entry_tier)} | {g.share(g.unverified)} |")
        lines.append(row + (f" {g.share(g.contained_first)} |" if replayed else ""))
    lines += ["", "| legitimate kind | accounts | first request shows extraction | any of first 3 | young | "
              "entry tier | unverified |", "|---|---|---|---|---|---|---|"]
    for name, g in sorted(legit.items()):
        lines.append(f"| {name} | {g.accounts:,} | {g.share(g.first_signal)} | {g.share(g.early_signal)} | "
                     f"{g.share(g.young)} | {g.share(g.entry_tier)} | {g.share(g.unverified)} |")
    return "\n".join(lines)


@dataclass
class Bound:
    """One campaign's exchanges: counted, leaked under the first-evidence bound and in the replay."""

    accounts: int = 0
    exchanges: int = 0
    bound: int = 0
    replay: int = 0
    harvest: int = 0
    harvest_replay: int = 0
    ordinary: int = 0
    ordinary_replay: int = 0


def campaign_exchanges(folder: Path, campaign_of: Mapping[str, str]) -> tuple[dict[str, list[tuple[int, str, dict]]], int]:
    """Each campaign account's exchanges as (ts, request id, record) in time order, and the log's first ts."""
    out: dict[str, list[tuple[int, str, dict]]] = defaultdict(list)
    start = None
    for log in log_files(folder):
        for ts, record in timed_records(log):
            start = ts if start is None else min(start, ts)
            if record.get("account_id") in campaign_of:
                out[record["account_id"]].append((ts, record["request_id"], record))
    if start is None:
        raise SystemExit(f"{folder}: empty log")
    for rows in out.values():
        rows.sort(key=lambda row: row[0])
    return out, start


def harvest_flags(folder: Path) -> dict[str, bool] | None:
    path = folder / "exchange_truth.csv.gz"
    if not path.exists():
        return None
    with gzip.open(path, "rt", newline="") as fh:
        return {row["request_id"]: row["harvest"] == "1" for row in csv.DictReader(fh)}


def bounds(folder: Path, actions: Path | None, since_days: float) -> dict[str, Bound]:
    """Per campaign; with `since_days`, only exchanges sent that many days after the log's start."""
    campaign_of = {a: c for a, (is_campaign, _, c, _) in read_truth(folder).items() if is_campaign}
    per_account, start = campaign_exchanges(folder, campaign_of)
    since_ms = start + int(since_days * _DAY_MS) if since_days else None
    harvest = harvest_flags(folder)
    contained = first_contained(actions) if actions else {}
    out: dict[str, Bound] = defaultdict(Bound)
    for account, rows in per_account.items():
        hits = extraction_signal([record for _, _, record in rows])
        first_hit = hits.index(True) if True in hits else len(rows)
        replay_at = contained.get(account, len(rows))
        b = out[campaign_of[account]]
        b.accounts += since_ms is None or rows[-1][0] >= since_ms
        for i, (ts, request_id, _) in enumerate(rows):
            if since_ms is not None and ts < since_ms:
                continue
            b.exchanges += 1
            b.bound += i < first_hit
            b.replay += i < replay_at
            if harvest is not None:
                if harvest.get(request_id, False):
                    b.harvest += 1
                    b.harvest_replay += i < replay_at
                else:
                    b.ordinary += 1
                    b.ordinary_replay += i < replay_at
    return dict(out)


def bound_markdown(title: str, rows: Mapping[str, Bound], replayed: bool) -> str:
    head = "| campaign | accounts | exchanges | first-evidence bound |"
    rule = "|---|---|---|---|"
    if replayed:
        head += " replay | replay / bound | harvest leaked (replay) | ordinary leaked (replay) |"
        rule += "---|---|---|---|"
    lines = [f"**{title}**", "", head, rule]
    for name, b in sorted(rows.items()):
        line = f"| {name} | {b.accounts:,} | {b.exchanges:,} | {share(b.bound, b.exchanges)} |"
        if replayed:
            ratio = f"{b.replay / b.bound:.2f}x" if b.bound else ("–" if not b.replay else "inf")
            line += (f" {share(b.replay, b.exchanges)} | {ratio} | {share(b.harvest_replay, b.harvest)} | "
                     f"{share(b.ordinary_replay, b.ordinary)} |")
        lines.append(line)
    return "\n".join(lines)


def world_bounds(spec: str, scale: float, work: Path, since_days: float) -> str:
    w = World.parse(spec, scale)
    folder = WORLDS / w.name
    generate(w, folder)
    actions = work / f"{w.name}-replay" / "actions.csv"
    window = f", from day {since_days:g} on" if since_days else ""
    return bound_markdown(f"{spec}{window}", bounds(folder, actions if actions.exists() else None, since_days),
                          actions.exists())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="+", default=["adaptive", "medium"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("bench-out/containment"))
    parser.add_argument("--worlds", nargs="*", default=[], help="first-evidence bounds of these worlds instead")
    parser.add_argument("--world-scale", type=float, default=0.5)
    parser.add_argument("--since-days", type=float, default=0.0)
    args = parser.parse_args()
    if args.worlds:
        print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
        for spec in args.worlds:
            print(world_bounds(spec, args.world_scale, args.work, args.since_days) + "\n", flush=True)
        return
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; budget {100 * BUDGET:g}% of each campaign's exchanges\n")
    for scenario in args.scenarios:
        sim = world(scenario, args.seed, args.work)
        actions = args.work / f"{scenario}-{args.seed}-replay" / "actions.csv"
        campaigns, legit = groups(sim, actions if actions.exists() else None)
        print(markdown(f"{scenario} (seed {args.seed})", campaigns, legit, actions.exists()) + "\n", flush=True)


if __name__ == "__main__":
    main()
