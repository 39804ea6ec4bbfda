"""Command line: python -m worldgen --seed N --profile P --out DIR [--scale S] [--shape SHAPE] [--days D]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .params import PROFILES
from .world import generate
from .writers import WRITERS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m worldgen",
        description="Generate simulated API traffic with distillation campaigns and ground truth.",
    )
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--profile", choices=PROFILES, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiplies account counts (and heavy per-account volumes below 1)",
    )
    ap.add_argument("--shape", choices=tuple(WRITERS), default="contract")
    ap.add_argument(
        "--days", type=int, default=None, help="window length in days (default: drawn per seed, 7-10)"
    )
    args = ap.parse_args(argv)
    if not 0 < args.scale <= 10:
        ap.error("--scale must be in (0, 10]")
    if args.days is not None and not 1 <= args.days <= 60:
        ap.error("--days must be in [1, 60]")
    s = generate(args.seed, args.profile, args.out, args.scale, args.shape, args.days)
    r = s["realised"]
    print(
        f"worldgen seed={args.seed} profile={args.profile}: {r['accounts']} accounts "
        f"({r['campaign_accounts']} in {len(s['campaigns'])} campaigns), {r['exchanges']} exchanges "
        f"({r['harvest_exchanges']} harvest) in {s['_seconds']}s -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
