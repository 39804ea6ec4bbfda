"""How early can the policy act? The frontier of leak against honest accounts touched.

Replays each scenario once through the online detector with the shipped policy, recording every
request's assessment (risk, flag, reasons, cluster, the account's exchanges so far). Assessments do
not depend on the actions taken, so any other policy can then be applied to the same record: this
script varies the minimum histories of the shipped policy's account-level rules (`--vary
minimums`) or the risk levels of its throttle rules (`--vary risk`) and reports, for each setting, the share of campaign exchanges sent before each account's first throttle, degrade
or block ("leaked before containment", as `evaluate --actions` counts it) and the legitimate
accounts that would be throttled, degraded or blocked, by actor type.

    .venv/bin/python benchmarks/policy_frontier.py [--scenarios adaptive medium] [--seed 2] \
        [--worlds worldgen:naive:311 worldgen:evasive:312] [--vary risk]

Use tuning seeds (not the reported seed 1): the point is to choose a policy.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_containment import WORLDS, world
from worlds import World, generate, log_files

from distillguard.engines.online import OnlineDetector
from distillguard.engines.replay import replay
from distillguard.evaluate.containment import CONTAINING
from distillguard.policy.decision import Assessment
from distillguard.policy.policy import Policy, Rule, When

# What is varied: per grid, the shipped rules and the `when` field of each, and the values tried.
GRIDS: dict[str, dict[str, tuple[str, tuple[float, ...]]]] = {
    "minimums": {
        "throttle-near-certain-early": ("min_exchanges", (0, 1)),
        "throttle-very-likely": ("min_exchanges", (1, 2, 3, 5)),
        "throttle-likely": ("min_exchanges", (2, 3, 5, 7)),
        "throttle-flagged": ("min_exchanges", (3, 5, 7, 10)),
        "degrade-reasoning-harvest": ("min_exchanges", (3, 5, 10)),
    },
    # Risk levels are read on the model's calibrated scale, so a refitted model moves them.
    "risk": {
        "throttle-high-risk-cluster": ("cluster_risk_at_least", (0.8, 0.9, 0.95, 0.98)),
        "throttle-near-certain-early": ("risk_at_least", (0.98, 0.99, 0.995, 0.999)),
        "throttle-very-likely": ("risk_at_least", (0.95, 0.97, 0.99)),
        "throttle-likely": ("risk_at_least", (0.9, 0.93, 0.95)),
    },
}
# Orders a setting must respect: a surer verdict never waits longer than a less sure one, and a
# rule meant for surer verdicts never asks for less risk.
ORDERED = {
    "minimums": (("throttle-near-certain-early", "throttle-very-likely", "throttle-likely", "throttle-flagged"), 1),
    "risk": (("throttle-near-certain-early", "throttle-very-likely", "throttle-likely"), -1),
}


class RecordingDetector(OnlineDetector):
    """The online detector as `replay` runs it by default (attaching newcomers), keeping every
    assessment it makes."""

    def __init__(self) -> None:
        super().__init__(attach=True)
        self.record: list[Assessment] = []

    def _assessment(self, seen, logit):  # type: ignore[no-untyped-def]
        assessment = super()._assessment(seen, logit)
        self.record.append(assessment)
        return assessment


class Record:
    """The assessments of one replay as arrays, with each account's ground truth."""

    def __init__(self, assessments: list[Assessment], truth: dict[str, str]) -> None:
        ids = [a.account_id for a in assessments]
        self.accounts, self.aid = np.unique(np.asarray(ids), return_inverse=True)
        self.who = np.asarray([truth[a] for a in self.accounts])
        self.campaign = ~np.char.startswith(self.who, "legit:")
        self.n = np.bincount(self.aid)
        self.assessments = assessments
        self.before = np.asarray([a.n_exchanges for a in assessments])
        self._held: dict[When, np.ndarray] = {}

    def matches(self, rule: Rule) -> np.ndarray:
        """Where `rule.when.matches` holds. The policy's own test runs once per rule without its
        minimum history (the part varied here), which is then applied over all assessments."""
        rest = replace(rule.when, min_exchanges=None)
        if rest not in self._held:
            self._held[rest] = np.fromiter((rest.matches(a) for a in self.assessments), dtype=bool,
                                           count=len(self.assessments))
        if rule.when.min_exchanges is None:
            return self._held[rest]
        return self._held[rest] & (self.before >= rule.when.min_exchanges)

    def outcome(self, policy: Policy) -> tuple[float, dict[str, float], Counter[str], Counter[str]]:
        """(campaign leak, leak per campaign, legitimate accounts contained and blocked per kind)."""
        action = np.full(len(self.assessments), "", dtype=object)
        for rule in policy.rules:
            action[(action == "") & self.matches(rule)] = rule.action
        contained = np.isin(action, CONTAINING)
        never = np.iinfo(np.int64).max
        first = np.full(len(self.accounts), never)
        np.minimum.at(first, self.aid[contained], self.before[contained])
        leaked = np.minimum(first, self.n)
        blocked = np.zeros(len(self.accounts), dtype=bool)
        blocked[self.aid[action == "block"]] = True
        per = {c: leaked[self.who == c].sum() / self.n[self.who == c].sum()
               for c in sorted(set(self.who[self.campaign]))}
        honest = ~self.campaign
        return (leaked[self.campaign].sum() / self.n[self.campaign].sum(), per,
                Counter(self.who[honest & (first < never)]), Counter(self.who[honest & blocked]))


def with_values(policy: Policy, grid: dict[str, tuple[str, tuple[float, ...]]], values: dict[str, float]) -> Policy:
    rules = tuple(replace(r, when=replace(r.when, **{grid[r.name][0]: values[r.name]})) if r.name in values else r
                  for r in policy.rules)
    return replace(policy, rules=rules)


def record_scenario(scenario: str, seed: int, work: Path, scale: float) -> Record:
    sim = world(scenario, seed, work, scale)
    return record_folder(sim, [sim / "exchanges.jsonl.gz"])


def record_folder(sim: Path, logs: list[Path]) -> Record:
    """Replay a world folder of either generator (its truth names campaigns `campaign` or `campaign_id`)."""
    detector = RecordingDetector()
    replay(logs, rejected_path=None, detector=detector, accounts=sim / "accounts.jsonl",
           releases=sim / "releases.jsonl")
    with (sim / "truth.csv").open(newline="") as fh:
        truth = {r["account_id"]: (r.get("campaign") or r.get("campaign_id") or "") or f"legit:{r['actor_type']}"
                 for r in csv.DictReader(fh)}
    return Record(detector.record, truth)


def line(label: str, outcomes: dict) -> str:
    """A markdown row: per scenario, the leak (of its worst campaign) and the honest accounts touched
    (of them blocked)."""
    cells = " | ".join(f"{100 * o[0]:.2f}% ({100 * max(o[1].values()):.1f}%) | {sum(o[2].values())} ({sum(o[3].values())})"
                       for o in outcomes.values())
    return f"| {label} | {cells} |"


def cost(outcomes: dict) -> tuple[float, ...]:
    """What a setting costs on each scenario: leak, its worst campaign's leak, honest accounts touched.
    A campaign let through whole is a cost the total leak of many smaller ones can hide."""
    return tuple(v for o in outcomes.values() for v in (o[0], max(o[1].values()), sum(o[2].values())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", nargs="+", default=["adaptive", "medium"])
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--work", type=Path, default=Path("bench-out/frontier"))
    parser.add_argument("--worlds", nargs="*", default=[], help="worlds of either generator (benchmarks/worlds.py)")
    parser.add_argument("--world-scale", type=float, default=0.5)
    parser.add_argument("--vary", choices=sorted(GRIDS), default="minimums",
                        help="the account rules' minimum histories, or the rules' risk levels")
    args = parser.parse_args()
    grid = GRIDS[args.vary]
    ordered, sign = ORDERED[args.vary]
    records = {s: record_scenario(s, args.seed, args.work, args.scale) for s in args.scenarios}
    for spec in args.worlds:
        w = World.parse(spec, args.world_scale)
        generate(w, WORLDS / w.name)
        records[spec] = record_folder(WORLDS / w.name, log_files(WORLDS / w.name))
    shipped = Policy.default()
    rows = []
    for combo in itertools.product(*(v for _, v in grid.values())):
        values = dict(zip(grid, combo, strict=True))
        chain = [sign * values[k] for k in ordered]
        if chain != sorted(chain):
            continue
        outcomes = {s: r.outcome(with_values(shipped, grid, values)) for s, r in records.items()}
        rows.append((values, outcomes))
    print(f"seed {args.seed}; {args.vary} of: {', '.join(f'{k} ({f})' for k, (f, _) in grid.items())}\n")
    header = " | ".join(f"{s} leaked (worst campaign) | {s} honest touched (blocked)" for s in records)
    print(f"| {args.vary} | {header} |")
    print("|---|" + "---|---|" * len(records))
    shipped_outcomes = {s: r.outcome(shipped) for s, r in records.items()}
    print(line("shipped", shipped_outcomes))
    # The frontier: settings no other setting beats on every scenario's leak and honest cost at once.
    costs = [cost(o) for _, o in rows]
    shown: set[tuple[float, ...]] = set()
    # Among settings with the same outcome, the one that waits longest (the rule that never binds).
    for (values, outcomes), c in sorted(zip(rows, costs, strict=True),
                                        key=lambda x: (x[1], [-sign * v for v in x[0][0].values()])):
        dominated = any(all(x <= y for x, y in zip(d, c, strict=True)) and d != c for d in costs)
        if not dominated and c not in shown:
            shown.add(c)
            print(line(", ".join(f"{v:g}" for v in values.values()), outcomes))
    for s, o in shipped_outcomes.items():
        print(f"\n{s}, shipped policy: leak per campaign "
              + ", ".join(f"{c} {100 * v:.2f}%" for c, v in o[1].items())
              + "; honest accounts touched: " + (", ".join(f"{k[6:]} {v}" for k, v in sorted(o[2].items())) or "none"))


if __name__ == "__main__":
    main()
