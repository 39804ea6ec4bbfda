"""The `distillguard` command line: a thin layer over the stages of the flow."""

from __future__ import annotations

import sys
import tempfile

import typer
from rich.console import Console

from distillguard import __version__
from distillguard.errors import DistillguardError

app = typer.Typer(
    name="distillguard",
    help=(
        "Detect and contain distillation attacks: networks of accounts harvesting a model's "
        "answers through its API.\n\nTypical flow: `simulate` traffic (or bring your own logs), "
        "`analyze` them, `evaluate` against ground truth."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"distillguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """distillguard command line."""


def _register() -> None:
    # Imported here so `--help` and `--version` stay fast and each stage owns its command.
    from distillguard.cli.analyze import analyze_command, replay_command
    from distillguard.cli.evaluate import baseline_app, evaluate_command
    from distillguard.cli.gateway import gateway_command, standin_command
    from distillguard.cli.ingest import ingest_command
    from distillguard.cli.intel import intel_app
    from distillguard.cli.simulate import simulate_command

    app.command("analyze")(analyze_command)
    app.command("replay")(replay_command)
    app.command("ingest")(ingest_command)
    app.command("simulate")(simulate_command)
    app.command("evaluate")(evaluate_command)
    app.command("gateway")(gateway_command)
    app.command("standin")(standin_command)
    app.add_typer(baseline_app, name="baseline")
    app.add_typer(intel_app, name="intel")


_register()


def main() -> None:
    try:
        app()
    except DistillguardError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        import duckdb  # only now: `--help` need not load it

        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # One line, not a traceback: what ran out and the setting that gives more of it. Out of memory
        # surfaces as OutOfMemoryException, or as a failed commit that could not allocate; a full
        # disk as an IOException while DuckDB spills beyond its memory limit.
        if isinstance(exc, duckdb.OutOfMemoryException) or (isinstance(exc, duckdb.Error) and "allocate" in first):
            hint = "DuckDB's memory limit is set by DISTILLGUARD_DUCKDB_MEMORY, default 1GB"
        elif isinstance(exc, duckdb.IOException) and "No space left" in first:
            hint = f"DuckDB spills beyond its memory limit under {tempfile.gettempdir()}; set TMPDIR to a larger disk"
        else:
            raise
        err_console.print(f"[bold red]error:[/] {first} ({hint})", highlight=False, soft_wrap=True)
        sys.exit(1)


