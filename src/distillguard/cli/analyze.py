"""`distillguard analyze`: the batch job of CONTRACT section 2."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from distillguard.errors import InputError
from distillguard.scoring import DEFAULT_FPR_BUDGET, DEFAULT_SEGMENT_FPR_BUDGET

if TYPE_CHECKING:
    from distillguard.engines.local import AnalysisResult

console = Console()


# Arguments and options that `analyze` and `replay` share, defined once so their help cannot drift.
LogsArg = Annotated[list[Path], typer.Argument(help="Exchange logs: files, folders or globs (JSONL, .gz, Parquet).")]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Output folder (created if missing).")]
AccountsOption = Annotated[Path | None, typer.Option("--accounts", help="Accounts side table.")]
ReleasesOption = Annotated[Path | None, typer.Option("--releases", help="Model releases side table.")]
FormatOption = Annotated[str, typer.Option("--format", help="Log shape: auto, contract, access-log, openai-batch.")]
FprBudgetOption = Annotated[
    float,
    typer.Option("--fpr-budget", help="Share of legitimate accounts the operating point may flag (0.001 = 0.1%)."),
]
SegmentBudgetOption = Annotated[
    float,
    typer.Option("--segment-fpr-budget",
                 help="Share of each kind of legitimate customer in the calibration data (classrooms, "
                      "researchers, agentic developers...) the operating point may flag (1: no limit)."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _output_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)


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
    stages = {k: v for k, v in result.timings.items() if ":" not in k}
    table.add_row("time", f"{sum(stages.values()):,.1f} s: " + ", ".join(f"{k} {v:,.1f} s" for k, v in stages.items()))
    table.add_row("outputs", str(out))
    console.print(table)


def analyze_command(
    logs: LogsArg,
    out: OutOption,
    accounts: AccountsOption = None,
    releases: ReleasesOption = None,
    fmt: FormatOption = "auto",
    fpr_budget: FprBudgetOption = DEFAULT_FPR_BUDGET,
    segment_fpr_budget: SegmentBudgetOption = DEFAULT_SEGMENT_FPR_BUDGET,
    model: Annotated[
        Path | None, typer.Option("--model", help="Scoring model JSON (default: the shipped model).")
    ] = None,
    watchlist: Annotated[
        Path | None,
        typer.Option("--watchlist", help="Partner indicators imported with `distillguard intel import`."),
    ] = None,
    db: Annotated[Path | None, typer.Option("--db", help="Keep the exchange signals in this DuckDB file.")] = None,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Ground truth (truth.csv): adds an evaluation to the report.")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="local (this machine) or spark (signals and account behaviour on Apache Spark).")
    ] = "local",
    spark_master: Annotated[
        str, typer.Option("--spark-master", help="Spark master URL for --engine spark (local[N], spark://, yarn...).")
    ] = "local[2]",
    timings: Annotated[
        Path | None,
        typer.Option("--timings", help="Write the seconds each stage took to this JSON file."),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Score every account in API logs: risk, verdict, cluster and reasons (CONTRACT section 2)."""
    if engine not in ("local", "spark"):
        raise InputError(f"--engine {engine!r}: expected local or spark")
    # Imported here so that `distillguard --help` does not pay for the analysis stack.
    from distillguard.engines.local import analyze
    from distillguard.intel.fingerprint import intel_key
    from distillguard.intel.stix import build_bundle, write_bundle
    from distillguard.intel.watchlist import Watchlist, default_path
    from distillguard.report.html import write_report
    from distillguard.report.tables import write_accounts_csv, write_clusters_csv
    from distillguard.scoring.model import AccountModel

    _output_folder(out)
    watch_path = watchlist or default_path()
    result = analyze(
        [str(p) for p in logs],
        rejected_path=out / "rejected.jsonl",
        accounts=accounts,
        releases=releases,
        fmt=fmt,
        fpr_budget=fpr_budget,
        segment_fpr_budget=segment_fpr_budget,
        model=AccountModel.load(model) if model else None,
        db_path=db,
        watchlist=Watchlist.load(watch_path) if watch_path.exists() else None,
        quiet=quiet,
        spark=spark_master if engine == "spark" else None,
    )
    started = time.perf_counter()
    write_accounts_csv(result.accounts, out / "accounts.csv")
    write_clusters_csv(result.clusters, out / "clusters.csv")
    flagged_clusters = {
        cid for cid, risk in zip(result.clusters.column("cluster_id").to_pylist(),
                                 result.clusters.column("risk").to_pylist(), strict=True)
        if risk > result.threshold
    }
    write_bundle(build_bundle(result.con, result.link, flagged_clusters, key=intel_key()),
                 out / "indicators.stix.json")
    evaluation = None
    if truth is not None:
        from distillguard.evaluate.metrics import compute_metrics
        from distillguard.evaluate.tables import read_predictions, read_truth

        evaluation = compute_metrics(read_truth(truth), read_predictions(out / "accounts.csv"))
    write_report(out / "report.html", result, samples=result.samples, evaluation=evaluation,
                 edges=result.link.edges if result.link else None)
    if result.scoring_link is not None:
        _write_link_snapshot(result, out / "links")
    result.timings["outputs"] = time.perf_counter() - started
    if timings is not None:
        timings.write_text(json.dumps({k: round(v, 3) for k, v in result.timings.items()}, indent=1) + "\n")
    _summary(result, out)


def _write_link_snapshot(result: AnalysisResult, folder: Path) -> None:
    """The clusters as a gateway uses them (`gateway --links DIR/links`): membership, cluster
    features and risks, and the distinctive keys of high-risk clusters for attaching newcomers.

    These are the clusters the risks were computed on, so the gateway scores an account as
    `analyze` did; the reported clusters are regrouped by verdict after scoring."""
    from distillguard.linking.snapshot import LinkSnapshot

    link = result.scoring_link
    assert link is not None
    snapshot = LinkSnapshot.from_link_table(link.accounts)
    snapshot.set_cluster_risk(dict(zip(result.accounts.column("account_id").to_pylist(),
                                       result.accounts.column("risk").to_pylist(), strict=True)))
    flagged = set(result.accounts.filter(result.accounts.column("flagged")).column("account_id").to_pylist())
    snapshot.index_keys(result.con, link.accounts, lambda accounts: flagged.intersection(accounts))
    snapshot.index_egress(result.con, result.accounts)
    snapshot.write(folder)


def replay_command(
    logs: LogsArg,
    out: OutOption,
    accounts: AccountsOption = None,
    releases: ReleasesOption = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy YAML (default: the shipped policies/default.yaml).")
    ] = None,
    fmt: FormatOption = "auto",
    fpr_budget: FprBudgetOption = DEFAULT_FPR_BUDGET,
    segment_fpr_budget: SegmentBudgetOption = DEFAULT_SEGMENT_FPR_BUDGET,
    relink_hours: Annotated[
        float,
        typer.Option("--relink-hours", help="Refresh clusters every this many hours of traffic (0: never)."),
    ] = 6.0,
    window_hours: Annotated[
        float,
        typer.Option("--window-hours", help="Each cluster refresh links the last this many hours of traffic."),
    ] = 72.0,
    attach: Annotated[
        bool,
        typer.Option("--attach/--no-attach",
                     help="Between cluster refreshes, attach new accounts that reuse a high-risk cluster's "
                          "distinctive infrastructure (IP range, card, TLS client) to it "
                          "(docs/online.md)."),
    ] = True,
    quiet: QuietOption = False,
) -> None:
    """Run the online engine over logs in time order; write actions.csv (CONTRACT section 3)."""
    from distillguard.engines.online import OnlineDetector
    from distillguard.engines.replay import replay, write_actions_csv
    from distillguard.policy.policy import Policy
    from distillguard.report.tables import write_accounts_csv, write_clusters_csv

    if relink_hours < 0:
        raise InputError(f"--relink-hours must be 0 or more, got {relink_hours}")
    if window_hours <= 0:
        raise InputError(f"--window-hours must be positive, got {window_hours}")
    detector = OnlineDetector(policy=Policy.from_yaml(policy) if policy else None, fpr_budget=fpr_budget,
                              segment_fpr_budget=segment_fpr_budget, attach=attach)
    _output_folder(out)
    result = replay(
        [str(p) for p in logs], rejected_path=out / "rejected.jsonl", detector=detector, accounts=accounts,
        releases=releases, fmt=fmt, relink_hours=relink_hours, window_hours=window_hours, quiet=quiet,
    )
    write_actions_csv(result, out / "actions.csv")
    if result.accounts is not None and result.clusters is not None:
        write_accounts_csv(result.accounts, out / "accounts.csv")
        write_clusters_csv(result.clusters, out / "clusters.csv")
    table = Table(title="distillguard replay", show_header=False)
    table.add_row("exchanges replayed", f"{result.n_exchanges:,}")
    table.add_row("records rejected", f"{sum(result.rejected.values()):,}")
    table.add_row("accounts", f"{result.n_accounts:,}")
    for action, count in sorted(result.decisions.items()):
        table.add_row(f"  exchanges with action {action}", f"{count:,}")
    table.add_row("exchanges refused (not forwarded)", f"{result.refused:,}")
    table.add_row("accounts with a non-allow action", f"{len({a for a, _ in result.actions}):,}")
    table.add_row("cluster refreshes", f"{result.relinks:,}")
    table.add_row("outputs", str(out))
    console.print(table)
