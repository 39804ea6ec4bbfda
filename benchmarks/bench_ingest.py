"""Ingest throughput and memory, measured against DuckDB's own JSON reader on the same file.

    python benchmarks/bench_ingest.py LOG                     # any contract log (.jsonl / .jsonl.gz)
    python benchmarks/bench_ingest.py --synthesize 50000 --out /tmp/synthetic.jsonl.gz

Every measurement runs in its own child process, so its peak RSS (``ru_maxrss``) is its own;
times start after imports:
- ``orjson loop``: read lines and parse them with orjson, nothing else (the floor for Python);
- ``read_exchanges``: our full path (decode, validate, normalise, build Arrow batches);
- ``ingest_to_duckdb``: the same plus storing in a fresh DuckDB file (skip with ``--no-store``);
- ``duckdb read_json``: ``count(*)`` over DuckDB's ``read_json`` of the file, on 1 thread and on all.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import duckdb
import orjson

from distillguard.ingest import RejectSink, ingest_to_duckdb, read_exchanges

MODES = ("orjson", "read", "ingest", "duckdb-1", "duckdb-all")
LABELS = {
    "orjson": "orjson loop (floor)",
    "read": "read_exchanges",
    "ingest": "ingest_to_duckdb",
    "duckdb-1": "duckdb read_json, 1 thread",
    "duckdb-all": "duckdb read_json, all threads",
}

_WORDS = [
    "analyse",
    "the",
    "quarterly",
    "revenue",
    "table",
    "and",
    "explain",
    "each",
    "step",
    "of",
    "your",
    "reasoning",
    "grade",
    "this",
    "answer",
    "against",
    "the",
    "rubric",
    "write",
    "a",
    "python",
    "function",
    "that",
    "parses",
    "dates",
    "refactor",
    "the",
    "class",
    "below",
    "to",
    "use",
    "dependency",
    "injection",
    "translate",
    "the",
    "paragraph",
    "into",
    "french",
    "summarise",
    "the",
    "findings",
    "list",
    "the",
    "edge",
    "cases",
    "think",
    "step",
    "by",
    "step",
    "before",
    "you",
    "answer",
    "then",
    "give",
    "the",
    "final",
    "result",
    "as",
    "json",
]
_USER_AGENTS = ("python-httpx/0.27.0", "openai-python/1.55.0", "Anthropic/Python 0.42.0", "curl/8.5.0")


def _text_pool(rng: random.Random, size: int = 4096) -> list[str]:
    """Prompt and answer texts to draw from; drawing beats composing words for every record."""
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(20, 160))) for _ in range(size)]


def synthetic_record(i: int, rng: random.Random, texts: list[str]) -> dict[str, object]:
    """One plausible contract exchange (~1.5 KB of JSON, like a typical API log line)."""
    turns = rng.choice((1, 1, 1, 3))
    messages = [
        {"role": "user" if t % 2 == 0 else "assistant", "content": rng.choice(texts)} for t in range(turns)
    ]
    record: dict[str, object] = {
        "request_id": f"req-{i:09d}",
        "ts": 1_772_409_600_000 + i * 137,
        "account_id": f"acct-{rng.randrange(20_000):05d}",
        "model": rng.choice(("lumen-2-pro", "lumen-2-flash", "lumen-3-pro")),
        "messages": messages,
        "ip": f"203.0.{rng.randrange(256)}.{rng.randrange(256)}",
        "asn": rng.choice((16276, 8151, 15169, 64501)),
        "country": rng.choice(("US", "DE", "SG", "FR", "BR")),
        "user_agent": rng.choice(_USER_AGENTS),
        "tls_fingerprint": f"t13d3113h1_{rng.getrandbits(48):012x}",
        "payment_fingerprint": f"{rng.getrandbits(128):032x}",
        "max_tokens": rng.choice((256, 1024, 4096)),
        "temperature": rng.choice((0.0, 0.2, 0.7, 1.0)),
        "stream": rng.random() < 0.3,
        "response_text": rng.choice(texts),
        "input_tokens": rng.randint(20, 3000),
        "output_tokens": rng.randint(20, 2000),
        "stop_reason": "end_turn",
        "status": 200,
    }
    if rng.random() < 0.4:
        record["system"] = "You are an expert data analyst. " + rng.choice(texts)[:200]
    return record


def synthesize(n: int, out: Path, seed: int = 7) -> None:
    """Write `n` synthetic contract lines to `out` (gzip level 1 when it ends in .gz)."""
    rng = random.Random(seed)
    texts = _text_pool(rng)
    with gzip.open(out, "wb", compresslevel=1) if out.name.endswith(".gz") else out.open("wb") as fh:
        for start in range(0, n, 10_000):
            chunk = [synthetic_record(i, rng, texts) for i in range(start, min(n, start + 10_000))]
            fh.write(b"".join(orjson.dumps(record) + b"\n" for record in chunk))


def _open_lines(path: Path) -> IO[bytes]:
    with path.open("rb") as probe:
        is_gzip = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if is_gzip else path.open("rb")  # type: ignore[return-value]


def run_child(mode: str, log: Path) -> int:
    """Do one measurement in this process; returns the number of rows seen."""
    if mode == "orjson":
        with _open_lines(log) as fh:
            return sum(1 for line in fh if orjson.loads(line) is not None)
    if mode in ("read", "ingest"):
        if mode == "read":
            return sum(batch.num_rows for batch in read_exchanges([log], rejects=RejectSink(None)))
        with tempfile.TemporaryDirectory() as tmp:
            return ingest_to_duckdb([log], Path(tmp) / "bench.duckdb", rejects=RejectSink(None)).inserted
    con = duckdb.connect()
    if mode == "duckdb-1":
        con.execute("SET threads = 1")
    query = "SELECT count(*) FROM read_json(?, format = 'newline_delimited', ignore_errors = true)"
    row = con.execute(query, [str(log)]).fetchone()
    return int(row[0]) if row else 0


def child_main(mode: str, log: Path) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    rows = run_child(mode, log)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": wall, "cpu_seconds": cpu, "peak_rss_mb": peak_mb}))


def measure(mode: str, log: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(log)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(log: Path, modes: list[str]) -> None:
    results = {}
    for mode in modes:
        results[mode] = measure(mode, log)
        print(f"  measured {LABELS[mode]}", file=sys.stderr, flush=True)
    reference = results.get("duckdb-1")
    print(f"\n{log} ({log.stat().st_size / 1e6:,.1f} MB on disk)\n")
    print(
        f"{'reader':32} {'rows':>11} {'wall s':>8} {'cpu s':>8} {'rows/s':>10} {'peak RSS MB':>12} {'time vs duckdb-1':>17}"
    )
    for mode, r in results.items():
        ratio = f"{r['seconds'] / reference['seconds']:.1f}x" if reference else "-"
        rate = r["rows"] / r["seconds"] if r["seconds"] else 0.0
        print(
            f"{LABELS[mode]:32} {r['rows']:>11,} {r['seconds']:>8.1f} {r['cpu_seconds']:>8.1f} {rate:>10,.0f} "
            f"{r['peak_rss_mb']:>12,.0f} {ratio:>17}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("log", nargs="?", type=Path, help="contract log to measure")
    parser.add_argument(
        "--synthesize", type=int, metavar="N", help="first write N synthetic exchanges to --out"
    )
    parser.add_argument("--out", type=Path, help="where --synthesize writes (.jsonl or .jsonl.gz)")
    parser.add_argument("--no-store", action="store_true", help="skip the ingest_to_duckdb measurement")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.log)
        return
    if args.synthesize:
        if args.out is None:
            parser.error("--synthesize needs --out")
        synthesize(args.synthesize, args.out)
        args.log = args.out
    if args.log is None or not args.log.is_file():
        parser.error("give an existing LOG file, or --synthesize N --out PATH")
    modes = [mode for mode in MODES if not (args.no_store and mode == "ingest")]
    report(args.log, modes)


if __name__ == "__main__":
    main()
