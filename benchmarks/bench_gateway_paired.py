"""Paired comparison of two versions of the gateway's code: CPU per request and p99 latency.

On a shared machine the absolute CPU cost of a request moves by a factor of two between runs, which
hides a 5-10% change. This runs both versions at once, as two gateway processes in front of one
stand-in, and alternates short phases of the same open-loop load between them, so both see the
same machine conditions:

    git worktree add /tmp/before HEAD~1
    .venv/bin/python benchmarks/bench_gateway_paired.py /tmp/before . [--rate 300] [--rounds 8] [--prompts 500]

Each argument is a source tree (a checkout of this repository); its `src/` is put first on the
gateway's PYTHONPATH, everything else (dependencies, the load generator) comes from this
environment. Prints one row per version and the ratio of the second to the first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_gateway as bench


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", type=Path, nargs=2, help="two source trees: the baseline, then the candidate")
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second of every phase")
    parser.add_argument("--phase-seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=8, help="phases per version")
    parser.add_argument("--prompts", type=int, default=500,
                        help="distinct request bodies (repeated texts hit the signal code's memos)")
    parser.add_argument("--work", type=Path, default=Path("bench-out/gateway-paired"))
    args = parser.parse_args(argv)
    for tree in args.trees:
        if not (tree / "src" / "distillguard").is_dir():
            parser.error(f"{tree}: not a source tree of this project (no src/distillguard)")
    if not (0 < args.rate <= 10_000 and 0 < args.phase_seconds <= 600 and 1 <= args.rounds <= 1000):
        parser.error("--rate, --phase-seconds and --rounds must be positive (and not absurd)")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    base = bench.parse_args(["--rate", str(args.rate), "--prompts", str(args.prompts),
                             "--out", str(args.work / "unused.json")])
    logs = args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    bodies, _ = bench.build_bodies(bench.load_prompts(args.work, base.prompts, base.seed), base.stream_share, base.seed)
    gen = bench.LoadGenerator(bodies, bench.api_keys(base.keys, base.seed))
    procs: list[subprocess.Popen[bytes]] = []
    distillguard = str(bench.BIN / "distillguard")
    try:
        _, standin_url = bench.start_server("standin", lambda p: [
            distillguard, "standin", "--port", str(p), "--log-level", "warning"], logs, procs)
        gateways = []
        for i, tree in enumerate(args.trees):
            env_before = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = str(tree.resolve() / "src")
            try:
                gateways.append(bench.start_server(f"gateway-{i}", lambda p: [
                    distillguard, "gateway", "--upstream", standin_url, "--port", str(p), "--log-level", "warning",
                    *(["--policy", str(bench.DEFAULT_POLICY)] if bench.DEFAULT_POLICY.exists() else [])],
                    logs, procs))
            finally:
                if env_before is None:
                    os.environ.pop("PYTHONPATH")
                else:
                    os.environ["PYTHONPATH"] = env_before
        for _, url in gateways:
            bench.prime(url, bench.PRIMING_REQUESTS)
        cpu = [0.0, 0.0]
        requests = [0, 0]
        p99: list[list[float]] = [[], []]
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}/{args.rounds}", file=sys.stderr)
            for i, (proc, url) in enumerate(gateways):
                bench.settle(proc.pid)
                before = bench.cpu_seconds(proc.pid)
                raw = gen.run(base_url=url, rate=args.rate, warmup=0.5, seconds=args.phase_seconds,
                              seed=base.seed + round_, connections=base.connections)
                cpu[i] += bench.cpu_seconds(proc.pid) - before
                requests[i] += round(args.rate * (0.5 + args.phase_seconds))
                figures = bench.phase_figures(raw, args.rate, args.phase_seconds)
                if figures["p99_ms"] is not None:
                    p99[i].append(figures["p99_ms"])
    finally:
        gen.stop()
        for proc in reversed(procs):
            bench.stop_process(proc)
    per_request = [1000.0 * c / max(n, 1) for c, n in zip(cpu, requests, strict=True)]
    print(f"\n{args.rounds} alternating phases of {args.phase_seconds} s at {args.rate} req/s each\n")
    print("| version | gateway CPU ms/request | median p99 ms |")
    print("|---|---|---|")
    for tree, ms, p in zip(args.trees, per_request, p99, strict=True):
        print(f"| {tree} | {ms:.3f} | {statistics.median(p) if p else float('nan'):.1f} |")
    print(f"\nsecond / first, CPU per request: {per_request[1] / per_request[0]:.3f}")


if __name__ == "__main__":
    main()
