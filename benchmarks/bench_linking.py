"""Linking benchmark: time, memory and cluster quality on simulated worlds of two sizes.

    .venv/bin/python benchmarks/bench_linking.py                                  # medium and large, seed 2
    .venv/bin/python benchmarks/bench_linking.py --worlds sim:small:7             # one quick world

Each world comes from one of the traffic generators (`benchmarks/worlds.py`: `sim:SCENARIO:SEED` or
`worldgen:PROFILE:SEED`, generated under `--work` on first use). Its log is read into the `signals`
table by the local engine, exactly as `analyze` does, then `link_accounts` is timed alone. Each world
runs in its own process so the peak RSS reported is its own. Quality is measured against the
world's truth: per campaign, the coverage of its best cluster and that cluster's purity; per
legitimate actor type, the accounts clustered and those in a campaign's cluster.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from worlds import World, generate, log_files, read_truth

from distillguard.engines.local import load_side_tables, load_signals, open_store
from distillguard.ingest import RejectSink
from distillguard.linking import link_accounts


def quality(accounts: pa.Table, truth: dict[str, tuple[bool, str, str, str]]) -> dict[str, object]:
    """Per campaign: coverage of its best cluster and that cluster's purity; per legitimate type:
    accounts clustered, and of them in a cluster that holds a campaign's accounts."""
    cluster = dict(zip(accounts["account_id"].to_pylist(), accounts["cluster_id"].to_pylist(), strict=True))
    label = {a: (f"campaign:{c}" if is_campaign else f"legit:{actor}")
             for a, (is_campaign, actor, c, _) in truth.items() if a in cluster}
    members: dict[str, list[str]] = {}
    for acct, cid in cluster.items():
        if cid is not None:
            members.setdefault(cid, []).append(acct)
    report: dict[str, object] = {}
    campaign_clusters: set[str] = set()
    for name in sorted({t for t in label.values() if t.startswith("campaign:")}):
        counts: dict[str, int] = {}
        accts = [a for a, t in label.items() if t == name]
        for acct in accts:
            if cluster[acct]:
                counts[cluster[acct]] = counts.get(cluster[acct], 0) + 1
        best = max(counts, key=counts.__getitem__) if counts else None
        campaign_clusters.update(counts)
        report[name] = {"accounts": len(accts), "clusters": len(counts),
                        "coverage": round(counts[best] / len(accts), 3) if best else 0.0,
                        "purity": round(counts[best] / len(members[best]), 3) if best else 0.0}
    for name in sorted({t for t in label.values() if t.startswith("legit:")}):
        accts = [a for a, t in label.items() if t == name]
        report[name] = {"accounts": len(accts), "clustered": sum(1 for a in accts if cluster[a]),
                        "in_campaign_cluster": sum(1 for a in accts if cluster[a] in campaign_clusters)}
    return report


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_world(folder: str, queue: mp.Queue) -> None:
    path = Path(folder)
    con = open_store(None)
    t0 = time.perf_counter()
    with RejectSink(None) as rejects:
        exchanges, _ = load_signals(con, log_files(path), rejects=rejects, quiet=True)
        load_side_tables(con, rejects=rejects, accounts=path / "accounts.jsonl", releases=path / "releases.jsonl")
    t_signals = time.perf_counter() - t0
    rss_before = _peak_rss_mb()
    timings: dict[str, float] = {}
    t1 = time.perf_counter()
    result = link_accounts(con, timings=timings)
    queue.put({
        "world": path.name,
        "accounts": result.accounts.num_rows,
        "exchanges": exchanges,
        "signals_s": round(t_signals, 1),
        "link_s": round(time.perf_counter() - t1, 2),
        "stages_s": {k: round(v, 2) for k, v in timings.items()},
        "clusters": result.clusters.num_rows,
        "edges_in_clusters": result.edges.num_rows,
        "peak_rss_mb": round(_peak_rss_mb()),
        "peak_rss_before_link_mb": round(rss_before),
        "quality": quality(result.accounts, read_truth(path)),
    })


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worlds", nargs="+", default=["sim:medium:2", "sim:large:2"])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--work", type=Path, default=Path("bench-out/linking"))
    args = parser.parse_args(argv)
    ctx = mp.get_context("spawn")
    results = []
    for spec in args.worlds:
        world = World.parse(spec, args.scale)
        folder = args.work / world.name
        generate(world, folder)
        queue: mp.Queue = ctx.Queue()
        proc = ctx.Process(target=run_world, args=(str(folder), queue))
        proc.start()
        results.append(queue.get())
        proc.join()
        print(json.dumps(results[-1], indent=1), flush=True)
    if len(results) == 2:
        a, b = results
        ratio = {k: round(b[k] / max(a[k], 1e-9), 2) for k in ("exchanges", "link_s", "peak_rss_mb")}
        print(f"growth x{ratio['exchanges']} exchanges: link time x{ratio['link_s']}, "
              f"peak RSS x{ratio['peak_rss_mb']}", file=sys.stderr)


if __name__ == "__main__":
    main()
