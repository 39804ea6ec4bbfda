"""`distillguard ingest LOG... --db FILE`: validate exchange logs and store them in DuckDB."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distillguard.ingest.adapters import FORMATS
from distillguard.ingest.reader import check_format
from distillguard.ingest.rejects import RejectSink
from distillguard.ingest.sources import expand_inputs
from distillguard.ingest.store import IngestResult, ingest_to_duckdb
from distillguard.progress import track


def default_rejected_path(db: Path) -> Path:
    """``exchanges.duckdb`` -> ``exchanges.rejected.jsonl``, next to the database."""
    return db.with_name(f"{db.stem}.rejected.jsonl")


def _size(n_bytes: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.1f} {unit}"
    return f"{n_bytes} B"


def summary_lines(result: IngestResult, rejects: RejectSink) -> list[str]:
    """The human summary printed at the end of an ingest."""
    formats = ", ".join(f"{name} {count}" for name, count in sorted(result.formats.items()))
    lines = [
        f"read      {result.read:,} records from {result.files:,} file{'' if result.files == 1 else 's'} ({_size(result.bytes)})"
        + (f"; formats: {formats}" if formats else ""),
        f"stored    {result.inserted:,} new exchanges in {result.db} ({result.table_rows:,} in the table)",
        f"present   {result.duplicates:,} already stored (same request_id), left unchanged",
        f"rejected  {result.rejected:,}"
        + (f" -> {rejects.path}" if rejects.path and result.rejected else ""),
    ]
    lines += [f"          {count:>10,}  {code}" for code, count in rejects.counts.most_common()]
    return lines


def ingest_command(
    logs: Annotated[
        list[str],
        typer.Argument(
            metavar="LOG...",
            help="Log files, folders (read recursively) or glob patterns.",
            show_default=False,
        ),
    ],
    db: Annotated[
        Path,
        typer.Option(
            "--db", help="DuckDB file to store exchanges in (created if missing).", show_default=False
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", help=f"Input format: {', '.join(FORMATS)}.")] = "auto",
    rejected: Annotated[
        Path | None,
        typer.Option("--rejected", help="Where to write refused records [default: <db>.rejected.jsonl]."),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option("--account", help="Account of OpenAI batch lines without metadata.account_id."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Store exchange logs in a DuckDB file; re-ingesting the same records changes nothing."""
    check_format(fmt)
    files = expand_inputs(logs)  # fail on a missing input before creating any output
    total = sum(path.stat().st_size for path in files)
    with (
        RejectSink(rejected or default_rejected_path(db)) as rejects,
        track("ingest", total, quiet=quiet) as bar,
    ):
        result = ingest_to_duckdb(
            files, db, fmt=fmt, rejects=rejects, default_account=account, on_progress=bar.advance
        )
    for line in summary_lines(result, rejects):
        typer.echo(line)
