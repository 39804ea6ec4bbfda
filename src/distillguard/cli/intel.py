"""`distillguard intel`: import partners' indicator bundles into the watchlist that `analyze` uses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from distillguard.intel.fingerprint import key_id
from distillguard.intel.indicators import KIND_BY_NAME
from distillguard.intel.watchlist import Watchlist, default_path

intel_app = typer.Typer(
    help="Share indicators of distillation campaigns (STIX 2.1) and keep a watchlist of partners' ones.",
    no_args_is_help=True,
    add_completion=False,
)
_console = Console()

_WATCHLIST_HELP = "Watchlist file (default: $DISTILLGUARD_WATCHLIST or ~/.local/share/distillguard/watchlist.json)."


@intel_app.command("import")
def import_command(
    bundle: Annotated[Path, typer.Argument(help="A STIX 2.1 bundle, e.g. a partner's indicators.stix.json.")],
    watchlist: Annotated[Path | None, typer.Option("--watchlist", help=_WATCHLIST_HELP)] = None,
) -> None:
    """Add the indicators of BUNDLE to the watchlist: matching accounts get `watchlist-match`."""
    path = watchlist or default_path()
    wl = Watchlist.load(path)
    added = wl.import_bundle(bundle)
    wl.save(path)
    new = sum(v for k, v in added.items() if k != "skipped")
    kinds = ", ".join(f"{k} {v}" for k, v in added.items() if v and k != "skipped") or "none new"
    typer.echo(f"imported {new} new indicators from {bundle.name} into {path} ({kinds})")
    if added["skipped"]:
        typer.echo(f"skipped {added['skipped']} indicators whose pattern is not a supported single comparison")


@intel_app.command("show")
def show_command(
    watchlist: Annotated[Path | None, typer.Option("--watchlist", help=_WATCHLIST_HELP)] = None,
) -> None:
    """Summarise the watchlist: indicators per kind and the bundles they came from."""
    path = watchlist or default_path()
    wl = Watchlist.load(path)
    table = Table(title=f"watchlist {path} (key id {key_id(wl.key)})")
    table.add_column("indicator kind")
    table.add_column("values", justify="right")
    for name, values in wl.indicators.items():
        if values:
            table.add_row(f"{name} ({KIND_BY_NAME[name].description})", str(len(values)))
    table.add_row("total", str(wl.size))
    _console.print(table)
    for source in wl.sources:
        _console.print(f"from {source.get('file')} ({source.get('bundle')}), imported {source.get('imported_at')}")
