"""Containment on simulated traffic: `replay` with the shipped policy, scored by `evaluate --actions`.

For each scenario the simulator writes traffic with ground truth (seed 1 by default; the shipped
policy was tuned on the `small` world of seed 7 and the model never saw seeds below 100), then the
real CLI runs `replay` and `evaluate --actions --json`. Prints markdown tables for the README:
leaked before containment per campaign, and legitimate accounts touched per actor type.

    .venv/bin/python benchmarks/evaluate_containment.py [--scenarios medium adaptive] [--seed 1] [--since-days 3]

With `--since-days D` it also reports the same replay counting only the exchanges sent after the
detector had run D days (`evaluate --since`): what campaigns still get through in steady state.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from distillguard.ingest.normalise import epoch_ms

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worlds import World, generate, log_files

BIN = Path(sys.executable).parent / "distillguard"
WORLDS = Path("bench-out/worlds")


def run(*args: str | Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(BIN), *map(str, args)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def hours(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def world(scenario: str, seed: int, work: Path, scale: float = 1.0) -> Path:
    """The simulated world `work`/SCENARIO-SEED, simulated first if it is not there yet."""
    sim = work / f"{scenario}-{seed}"
    if not (sim / "truth.csv").exists():
        run("simulate", "--scenario", scenario, "--seed", seed, "--out", sim, "--scale", scale, "--quiet")
    return sim


def evaluate_scenario(scenario: str, seed: int, work: Path, scale: float, relink_hours: float,
                      policy: Path | None, attach: bool, since_days: float) -> dict:
    sim = world(scenario, seed, work, scale)
    return evaluate_folder(sim, [sim / "exchanges.jsonl.gz"], work / f"{scenario}-{seed}", relink_hours,
                           policy, attach, since_days)


def evaluate_folder(sim: Path, logs: list[Path], name: Path, relink_hours: float, policy: Path | None,
                    attach: bool, since_days: float) -> dict:
    """Replay the world in folder `sim` (its `logs`, accounts, releases and truth) into `name`-replay."""
    out = name.with_name(name.name + f"-replay{'' if attach else '-no-attach'}")
    extra = (["--policy", policy] if policy else []) + ([] if attach else ["--no-attach"])
    exchanges = [a for log in logs for a in ("--exchanges", log)]
    seconds = run("replay", *logs, "--accounts", sim / "accounts.jsonl", "--releases", sim / "releases.jsonl",
                  "--relink-hours", relink_hours, "--out", out, "--quiet", *extra)
    run("evaluate", "--truth", sim / "truth.csv", "--actions", out / "actions.csv", *exchanges,
        "--json", out / "containment.json")
    result = json.loads((out / "containment.json").read_text())["containment"]
    result["seconds"] = seconds
    if since_days:
        # The same replay, counting only what was sent once the detector had run `since_days`.
        since = datetime.fromtimestamp(min(map(log_start_ms, logs)) / 1000 + since_days * 86400, UTC)
        stamp = since.isoformat().replace("+00:00", "Z")
        run("evaluate", "--truth", sim / "truth.csv", "--actions", out / "actions.csv", *exchanges,
            "--since", stamp, "--json", out / "containment-since.json")
        result["since"] = json.loads((out / "containment-since.json").read_text())["containment"]
    return result


def log_start_ms(log: Path) -> int:
    """The first timestamp of a contract log (epoch ms or RFC 3339, as the contract allows)."""
    first = None
    with gzip.open(log, "rb") as f:
        for line in f:
            ms = epoch_ms(orjson.loads(line)["ts"], "ts")
            first = ms if first is None else min(first, ms)
    if first is None:
        raise SystemExit(f"{log}: empty log")
    return first


def markdown(scenario: str, r: dict) -> str:
    lines = [
        f"**{scenario}** (replay {r['seconds']:.0f} s; all campaigns: {pct(r['campaign_leaked_share'])} leaked)",
        "",
        "| campaign | accounts | contained | exchanges | leaked before containment | hours to first containment "
        "| median hours per account |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in r["campaigns"]:
        lines.append(
            f"| {c['campaign']} | {c['n_accounts']} | {c['n_contained']} | {c['n_exchanges']:,} | "
            f"{pct(c['leaked_share'])} | {hours(c['hours_to_first_containment'])} | "
            f"{hours(c['median_account_hours_to_containment'])} |"
        )
    lines += ["", "| legit actor type | accounts | monitored | throttled | degraded | blocked |", "|---|---|---|---|---|---|"]
    for t in r["legit_actor_types"]:
        lines.append(f"| {t['actor_type']} | {t['n_accounts']} | {t['monitor']} | {t['throttle']} | "
                     f"{t['degrade']} | {t['block']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="*", default=["medium", "adaptive"])
    parser.add_argument("--worlds", nargs="*", default=[],
                        help="worlds of either generator as `benchmarks/worlds.py` names them, e.g. "
                             "worldgen:naive:321 (at --world-scale, in its cache folder)")
    parser.add_argument("--world-scale", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--relink-hours", type=float, default=6.0)
    parser.add_argument("--policy", type=Path, default=None)
    parser.add_argument("--no-attach", dest="attach", action="store_false",
                        help="replay --no-attach (see docs/online.md)")
    parser.add_argument("--work", type=Path, default=Path("bench-out/containment"))
    parser.add_argument("--since-days", type=float, default=0.0,
                        help="also report what was sent after this many days of running (evaluate --since)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    summary = {}

    def show(name: str, result: dict) -> None:
        summary[name] = result
        print(markdown(name, result), "\n", flush=True)
        if "since" in result:
            window = result["since"] | {"seconds": result["seconds"]}
            print(markdown(f"{name}, from day {args.since_days:g} on", window), "\n", flush=True)

    for scenario in args.scenarios:
        show(scenario, evaluate_scenario(scenario, args.seed, args.work, args.scale, args.relink_hours,
                                         args.policy, args.attach, args.since_days))
    for spec in args.worlds:
        w = World.parse(spec, args.world_scale)
        folder = WORLDS / w.name
        generate(w, folder)
        show(spec, evaluate_folder(folder, log_files(folder), args.work / w.name, args.relink_hours,
                                   args.policy, args.attach, args.since_days))
    name = "summary.json" if args.attach else "summary-no-attach.json"
    (args.work / name).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
