"""`distillguard simulate`: write a synthetic API log with ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from distillguard.sim.generator import SCENARIOS, SimSummary, simulate


def _summary_table(s: SimSummary) -> Table:
    table = Table(title=f"simulated {s.scenario} (seed {s.seed}, scale {s.scale:g}) -> {s.out}", title_justify="left")
    for name, justify in (("actor type / campaign", "left"), ("accounts", "right"), ("exchanges", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for actor in sorted(s.accounts_by_actor):
        table.add_row(actor, f"{s.accounts_by_actor[actor]:,}", f"{s.exchanges_by_actor[actor]:,}")
    table.add_section()
    for campaign in sorted(s.accounts_by_campaign):
        table.add_row(f"campaign {campaign}", f"{s.accounts_by_campaign[campaign]:,}",
                      f"{s.exchanges_by_campaign[campaign]:,}")
    table.add_section()
    table.add_row("total", f"{s.n_accounts:,}", f"{s.n_exchanges:,}")
    return table


def simulate_command(
    scenario: Annotated[str, typer.Option(
        "--scenario", help=f"One of: {'; '.join(f'{k}: {v.description}' for k, v in SCENARIOS.items())}."
    )],
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed and scenario give identical files.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created if missing).")],
    scale: Annotated[float, typer.Option("--scale", help="Multiply the number of accounts, and so the volume.")] = 1.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")] = False,
) -> None:
    """Simulate API traffic with ground truth: ordinary users, hard cases and distillation campaigns.

    Writes exchanges.jsonl.gz (sorted by time), accounts.jsonl, releases.jsonl and truth.csv.
    """
    summary = simulate(scenario, seed, out, scale, quiet=quiet)
    if not quiet:
        Console().print(_summary_table(summary))
