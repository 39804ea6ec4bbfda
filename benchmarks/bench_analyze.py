"""End-to-end `distillguard analyze` throughput and peak memory, next to a bare DuckDB read.

Each measurement runs in its own child process (peak RSS from `ru_maxrss` of that child), on the
same file in the same run, so the ratio is meaningful on a shared machine:

    .venv/bin/python benchmarks/bench_analyze.py SIM_DIR [SIM_DIR...] [--engines local spark:local[1] spark:local[2]]

Each `--engines` entry is `local` or `spark:MASTER` (`analyze --engine spark --spark-master MASTER`).

SIM_DIR is a `distillguard simulate` output folder (exchanges.jsonl.gz, accounts.jsonl, releases.jsonl),
or a larger log made from one by `benchmarks/synth_log.py` (exchanges.jsonl).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "distillguard"

DUCKDB_READ = """
import duckdb, sys
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
print(con.sql("SELECT count(*) FROM read_json(?, format='newline_delimited', maximum_object_size=16777216)",
              params=[sys.argv[1]]).fetchall()[0][0])
"""


def measure(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB of the largest process so far, stdout) of one command.

    `ru_maxrss` of RUSAGE_CHILDREN is the largest single descendant so far (signal workers
    included), so jobs are run smallest first."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:2])} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, proc.stdout


def bench(sim: Path, engines: list[str]) -> list[tuple[str, dict[str, float]]]:
    log = next((sim / name for name in ("exchanges.jsonl.gz", "exchanges.jsonl") if (sim / name).exists()), None)
    if log is None:
        raise SystemExit(f"{sim}: no exchanges.jsonl.gz or exchanges.jsonl")
    d_sec, d_mem, count = measure([sys.executable, "-c", DUCKDB_READ, str(log)])
    n = int(count.strip())
    stages = []
    for engine in engines:
        options = ["--engine", "spark", "--spark-master", engine.split(":", 1)[1]] if engine.startswith("spark:") else []
        with tempfile.TemporaryDirectory() as out:
            timings = Path(out) / "timings.json"
            a_sec, a_mem, _ = measure([
                str(BIN), "analyze", str(log), "--accounts", str(sim / "accounts.jsonl"),
                "--releases", str(sim / "releases.jsonl"), "--out", out, "--quiet", "--timings", str(timings),
                *options,
            ])
            stages.append((f"{sim.name} {engine}", json.loads(timings.read_text())))
        print(f"| {sim.name} | {engine} | {n:,} | {n / a_sec:,.0f} | {a_sec:.0f} s | {a_mem:,.0f} MiB "
              f"| {n / d_sec:,.0f} | {d_mem:,.0f} MiB | {a_sec / d_sec:.1f}x |", flush=True)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sims", nargs="+", type=Path)
    parser.add_argument("--engines", nargs="+", default=["local"])
    args = parser.parse_args()
    print("| log | engine | exchanges | analyze exchanges/s | analyze wall | analyze peak RSS "
          "| DuckDB read_json exchanges/s | DuckDB peak RSS | analyze / DuckDB time |")
    print("|---|---|---|---|---|---|---|---|---|")
    stages = [row for sim in args.sims for row in bench(sim, args.engines)]
    # Where the time went (`analyze --timings`): each stage in seconds and as a share of the run.
    print("\n| run | stage | seconds | share |\n|---|---|---|---|")
    for run, timings in stages:
        total = sum(v for k, v in timings.items() if ":" not in k)
        for stage, seconds in timings.items():
            print(f"| {run} | {stage} | {seconds:,.1f} | {100 * seconds / total:.0f}% |")


if __name__ == "__main__":
    main()
