"""`distillguard analyze`: the batch job of CONTRACT section 2."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from distillguard.engines.local import AnalysisResult, analyze
from distillguard.errors import InputError
from distillguard.report.html import write_report
from distillguard.report.tables import write_accounts_csv, write_clusters_csv
from distillguard.scoring.model import AccountModel

console = Console()


def _summary(result: AnalysisResult, out: Path) -> None:
    flagged = sum(result.accounts.column("flagged").to_pylist())
    table = Table(title="distillguard analyze", show_header=False)
    table.add_row("exchanges analysed", f"{result.n_exchanges:,}")
    if result.n_duplicates:
        table.add_row("duplicate request ids ignored", f"{result.n_duplicates:,}")
    table.add_row("records rejected", f"{sum(result.rejected.values()):,}")
    for reason, count in sorted(result.rejected.items(), key=lambda kv: -kv[1])[:5]:
        table.add_row(f"  {reason}", f"{count:,}")
    table.add_row("accounts", f"{result.accounts.num_rows:,}")
    table.add_row("flagged accounts", f"{flagged:,}")
    table.add_row("clusters", f"{result.clusters.num_rows:,}")
    table.add_row("risk threshold", f"{result.threshold:.4f}")
    table.add_row("outputs", str(out))
    console.print(table)


def analyze_command(
    logs: list[Path] = typer.Argument(..., help="Exchange logs: files, folders or globs (JSONL, .gz, Parquet)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created if missing)."),
    accounts: Path | None = typer.Option(None, "--accounts", help="Accounts side table."),
    releases: Path | None = typer.Option(None, "--releases", help="Model releases side table."),
    fmt: str = typer.Option("auto", "--format", help="Log shape: auto, contract, access-log, openai-batch."),
    fpr_budget: float = typer.Option(
        0.001, "--fpr-budget", help="Share of legitimate accounts the operating point may flag (0.001 = 0.1%)."
    ),
    model: Path | None = typer.Option(None, "--model", help="Scoring model JSON (default: the shipped model)."),
    db: Path | None = typer.Option(None, "--db", help="Keep the exchange signals in this DuckDB file."),
    truth: Path | None = typer.Option(
        None, "--truth", help="Ground truth (truth.csv): adds an evaluation section to the report."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Score every account in API logs: risk, verdict, cluster and reasons (CONTRACT section 2)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    result = analyze(
        [str(p) for p in logs],
        rejected_path=out / "rejected.jsonl",
        accounts=accounts,
        releases=releases,
        fmt=fmt,
        fpr_budget=fpr_budget,
        model=AccountModel.load(model) if model else None,
        db_path=db,
        quiet=quiet,
    )
    write_accounts_csv(result.accounts, out / "accounts.csv")
    write_clusters_csv(result.clusters, out / "clusters.csv")
    evaluation = None
    if truth is not None:
        from distillguard.evaluate.metrics import compute_metrics
        from distillguard.evaluate.tables import read_predictions, read_truth

        evaluation = compute_metrics(read_truth(truth), read_predictions(out / "accounts.csv"))
    write_report(out / "report.html", result, samples=result.samples, evaluation=evaluation)
    _summary(result, out)
