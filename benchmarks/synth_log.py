"""A large exchange log for throughput benchmarks, streamed from a simulated world.

The world's log is repeated, each copy standing for another population of the same kind on the
same days: account, request, conversation, organisation, key and payment identifiers get the
copy's suffix, and IPv4 addresses move to another /16 per copy, so copies share content (as
populations asking alike do) but no account or network. Lines are rewritten one at a time; memory
stays that of one line whatever the size asked for.

    .venv/bin/python benchmarks/synth_log.py SIM_DIR OUT_DIR --exchanges 16000000
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

_SUFFIXED = ("request_id", "account_id", "conversation_id", "org_id", "api_key_id", "payment_fingerprint")


def _moved_ip(ip: Any, copy: int) -> Any:
    parts = ip.split(".") if isinstance(ip, str) else []
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return ip
    return f"{parts[0]}.{(int(parts[1]) + copy) % 256}.{parts[2]}.{parts[3]}"


def _copy(record: dict[str, Any], copy: int) -> dict[str, Any]:
    if copy == 0:
        return record
    for key in _SUFFIXED:
        if isinstance(record.get(key), str):
            record[key] = f"{record[key]}~{copy}"
    if "ip" in record:
        record["ip"] = _moved_ip(record["ip"], copy)
    return record


def _lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        yield from fh


def synthesise(sim: Path, out: Path, exchanges: int) -> int:
    """Write `out`/exchanges.jsonl (`exchanges` lines), accounts.jsonl and releases.jsonl; returns
    the number of copies of the world's accounts written."""
    out.mkdir(parents=True, exist_ok=True)
    log = sim / "exchanges.jsonl.gz"
    written = copy = 0
    with (out / "exchanges.jsonl").open("wb") as fh:
        while written < exchanges:
            for line in _lines(log):
                if written == exchanges:
                    break
                fh.write(orjson.dumps(_copy(orjson.loads(line), copy)) + b"\n")
                written += 1
            copy += 1
    with (out / "accounts.jsonl").open("wb") as fh:
        for k in range(copy):
            for line in _lines(sim / "accounts.jsonl"):
                fh.write(orjson.dumps(_copy(orjson.loads(line), k)) + b"\n")
    shutil.copyfile(sim / "releases.jsonl", out / "releases.jsonl")
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sim", type=Path, help="a `distillguard simulate` output folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--exchanges", type=int, default=16_000_000)
    args = parser.parse_args()
    if args.exchanges < 1:
        parser.error("--exchanges must be at least 1")
    copies = synthesise(args.sim, args.out, args.exchanges)
    print(f"{args.exchanges:,} exchanges from {copies} copies of {args.sim} in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
