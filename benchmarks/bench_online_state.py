"""Online state: bytes per tracked account and cost per exchange, against the batch path.

Simulates a world (default: `small`, seed 7), computes its signals once, then folds every exchange
in time order into `OnlineDetector` with the in-process store, as the gateway does (`observe`: state
update, features, score, policy). Reports:

- memory per tracked account: Python heap held by the online engine (tracemalloc) divided by the
  number of accounts, apart from the fixed set of parsed states it keeps beside the last blobs,
  and the blob sizes (mean, max, and the format's bound `MAX_STATE_BYTES`);
- time per exchange of `observe`, next to the batch path's per-exchange cost of the same step
  (the batch fold of account states + scoring over the whole log) in the same run.

    .venv/bin/python benchmarks/bench_online_state.py [--scenario small] [--seed 7] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from distillguard.behaviour.features import account_features
from distillguard.behaviour.state import MAX_STATE_BYTES
from distillguard.engines.local import load_side_tables, load_signals, open_store
from distillguard.engines.online import LIVE_STATES, OnlineDetector, account_infos, release_list
from distillguard.engines.state import MemoryStore
from distillguard.ingest.rejects import RejectSink
from distillguard.scoring.assign import score_table
from distillguard.scoring.model import AccountModel
from distillguard.sim import simulate

CHUNK = 8192


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="small")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--work", type=Path, default=Path("bench-out/online-state"))
    args = parser.parse_args()
    sim = args.work / f"{args.scenario}-{args.seed}-{args.scale}"
    if not (sim / "truth.csv").exists():
        simulate(args.scenario, args.seed, sim, scale=args.scale, quiet=True)

    con = open_store(None)
    with RejectSink(None) as rejects:
        load_signals(con, [sim / "exchanges.jsonl.gz"], rejects=rejects, quiet=True)
        load_side_tables(con, rejects=rejects, accounts=sim / "accounts.jsonl", releases=sim / "releases.jsonl")
    rows = con.sql("SELECT * REPLACE (epoch_ms(ts) AS ts) FROM signals ORDER BY ts, request_id").to_arrow_table()
    rows = rows.to_pylist()

    model = AccountModel.load()
    start = time.perf_counter()
    features = account_features(con)
    for name in model.features:  # linking is not part of this step, online or batch: no cluster
        if name not in features.column_names:
            features = features.append_column(name, pa.array(np.zeros(features.num_rows)))
    scored = score_table(features, model, model.threshold(0.001))
    batch_seconds = time.perf_counter() - start

    def detector_with(store: MemoryStore) -> OnlineDetector:
        return OnlineDetector(
            store=store,
            accounts=account_infos(con.sql("SELECT * FROM accounts").to_arrow_table()),
            releases=release_list(con.sql("SELECT * FROM releases").to_arrow_table()),
        )

    # Timed without tracing (tracemalloc slows every allocation), then replayed again for memory.
    store = MemoryStore()
    detector = detector_with(store)
    start = time.perf_counter()
    for row in rows:
        detector.observe(row, row["ts"] / 1000.0)
    online_seconds = time.perf_counter() - start
    # As `replay` feeds it: consecutive exchanges in chunks, the same decisions for less work.
    chunked = detector_with(MemoryStore())
    start = time.perf_counter()
    for lo in range(0, len(rows), CHUNK):
        part = rows[lo : lo + CHUNK]
        chunked.observe_many(part, [row["ts"] / 1000.0 for row in part])
    chunked_seconds = time.perf_counter() - start

    tracemalloc.start()
    traced_store = MemoryStore()
    traced = detector_with(traced_store)
    before = tracemalloc.get_traced_memory()[0]
    for row in rows:
        traced.observe(row, row["ts"] / 1000.0)
    held = tracemalloc.get_traced_memory()[0] - before
    # The parsed states kept beside the last blobs are a fixed cost (LIVE_STATES of them), not a
    # per-account one: measured apart by dropping them.
    traced._live.clear()
    kept = held - (tracemalloc.get_traced_memory()[0] - before)
    tracemalloc.stop()

    sizes = np.array([len(store.get(a)) for a in scored.column("account_id").to_pylist()])
    n = len(rows)
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{date.today()}; {args.scenario} seed {args.seed} scale {args.scale}: {n:,} exchanges, "
          f"{len(sizes):,} accounts")
    print("| figure | value |\n|---|---|")
    print(f"| state blob per account, mean / max / format bound | {sizes.mean():.0f} B / {sizes.max()} B / "
          f"{MAX_STATE_BYTES} B |")
    print(f"| heap held by the online engine per tracked account, without the kept parsed states | "
          f"{(held - kept) / len(sizes):.0f} B |")
    print(f"| kept parsed states (a fixed {LIVE_STATES} accounts, whatever the number tracked) | "
          f"{kept / 1024:.0f} KiB |")
    print(f"| online `observe` per exchange (update, features, score, policy) | {1e6 * online_seconds / n:.0f} µs |")
    print(f"| online `observe_many` per exchange, chunks of {CHUNK:,} (as `replay`) | "
          f"{1e6 * chunked_seconds / n:.0f} µs |")
    print(f"| batch features + scoring per exchange (same log) | {1e6 * batch_seconds / n:.1f} µs |")
    print(f"| online / batch cost ratio, one at a time / in chunks | {online_seconds / batch_seconds:.0f}x / "
          f"{chunked_seconds / batch_seconds:.0f}x |")


if __name__ == "__main__":
    main()
