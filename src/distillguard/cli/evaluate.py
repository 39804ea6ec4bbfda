"""`distillguard evaluate` and `distillguard baseline ...`: I/O around the pure metric and baseline code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import typer
from rich.console import Console

from distillguard.errors import InputError
from distillguard.evaluate import DEFAULT_FPR_BUDGET
from distillguard.evaluate.features import AccountFeatureAccumulator, Activity, account_activity
from distillguard.evaluate.render import render_containment, render_metrics
from distillguard.evaluate.tables import account_differences, read_predictions, read_truth, write_accounts_csv
from distillguard.ingest import RejectSink, input_size, read_exchanges
from distillguard.ingest.normalise import Rejected, epoch_ms
from distillguard.progress import track

if TYPE_CHECKING:
    from distillguard.evaluate.baselines import AccountDetector

# scikit-learn takes seconds to import, and every `distillguard` command imports this module to
# register itself, so the modules that need it (metrics, baselines) are imported when used.

# How many account ids an error or warning names before saying "...".
_SHOWN_IDS = 5

baseline_app = typer.Typer(
    help="Baseline detectors, written as contract accounts.csv so `evaluate` compares them with the real one.",
    no_args_is_help=True,
)


def _first(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:_SHOWN_IDS])
    return shown + (", ..." if len(ids) > _SHOWN_IDS else "")


def _feature_table(logs: Sequence[Path], rejects_path: Path | None) -> tuple[pa.Table, int]:
    """Per-account statistics of the valid exchanges in `logs`, and how many records were refused."""
    total = input_size(logs)
    with (
        RejectSink(rejects_path) as rejects,
        AccountFeatureAccumulator() as accumulator,
        track("reading exchanges", total=total) as bar,
    ):
        for batch in read_exchanges(list(logs), fmt="auto", rejects=rejects, on_progress=bar.advance):
            accumulator.add(batch)
        return accumulator.features(), rejects.total


def _account_activity(logs: Sequence[Path], since_ms: int | None) -> tuple[dict[str, Activity], int]:
    """Activity per account in `logs`, and how many records were refused (counted, not written)."""
    total = input_size(logs)
    with RejectSink(None) as rejects, track("reading exchanges", total=total) as bar:
        activity = account_activity(
            read_exchanges(list(logs), fmt="auto", rejects=rejects, on_progress=bar.advance), since_ms
        )
        return activity, rejects.total


def evaluate_command(
    truth: Annotated[
        Path, typer.Option("--truth", help="Ground truth CSV: account_id,label,campaign,actor_type.")
    ],
    pred: Annotated[Path | None, typer.Option("--pred", help="Predictions: a contract accounts.csv.")] = None,
    exchanges: Annotated[
        list[Path] | None,
        typer.Option(
            "--exchanges",
            help="Exchange log (file, folder or glob; repeat for several) to measure leaked exchanges.",
        ),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write every figure to this JSON file.")
    ] = None,
    actions: Annotated[
        Path | None,
        typer.Option("--actions", help="replay's actions.csv: leaked before containment (needs --exchanges)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="With --actions: count only the exchanges sent from this time on "
                                     "(RFC 3339), i.e. what campaigns still get through once the detector "
                                     "has been running."),
    ] = None,
    fpr_budget: Annotated[
        float,
        typer.Option(
            "--fpr-budget",
            min=0.0,
            max=1.0,
            help="False-positive budget on legit accounts for the recall-at-FPR operating point.",
        ),
    ] = DEFAULT_FPR_BUDGET,
) -> None:
    """Evaluate predictions against ground truth: flagged accounts, risk ranking, campaigns, clusters, leakage."""
    out, err = Console(), Console(stderr=True)
    if pred is None and actions is None:
        raise InputError("nothing to evaluate: give --pred (accounts.csv), --actions (actions.csv) or both")
    if actions is not None and not exchanges:
        raise InputError("--actions needs the exchange log (--exchanges) to count what each account sent")
    since_ms = None
    if since is not None:
        if actions is None:
            raise InputError("--since applies to --actions (containment); give --actions too")
        try:
            since_ms = epoch_ms(since, "--since")
        except Rejected as exc:
            raise InputError(f"{exc.reason.partition(': ')[2]}; e.g. --since 2026-03-04T00:00:00Z") from None
    truth_table = read_truth(truth)
    # Every input is checked before the (long) pass over the log.
    pred_table, extra = None, []
    if pred is not None:
        pred_table = read_predictions(pred)
        missing, extra = account_differences(truth_table, pred_table)
        if missing:
            raise InputError(
                f"{pred}: {len(missing):,} accounts of {truth} have no prediction (first: {_first(missing)})"
            )
        if extra:
            err.print(
                f"[yellow]warning:[/] {len(extra):,} accounts of {pred} are not in {truth} and are ignored "
                f"(first: {_first(extra)})",
                highlight=False,
                soft_wrap=True,
            )
    action_rows = None
    if actions is not None:
        from distillguard.evaluate.containment import containment_metrics, read_actions

        action_rows = read_actions(actions)
    # One pass over the log serves both the leaked-exchange figures and containment.
    activity, n_rejected = _account_activity(exchanges, since_ms) if exchanges else (None, 0)
    metrics: dict[str, Any] = {}
    if pred_table is not None:
        from distillguard.evaluate.metrics import compute_metrics

        counts = None if activity is None else {account: a.n for account, a in activity.items()}
        metrics = compute_metrics(truth_table, pred_table, counts, fpr_budget=fpr_budget)
        render_metrics(metrics, out)
    if action_rows is not None and activity is not None:
        metrics["containment"] = containment_metrics(truth_table, action_rows, activity, since_ms)
        if since is not None:
            metrics["containment"]["since"] = since
        render_containment(metrics["containment"], out)
    if exchanges and n_rejected:
        err.print(
            f"[yellow]warning:[/] {n_rejected:,} exchange records were refused and not counted",
            highlight=False,
        )
    if json_path is not None:
        inputs: dict[str, Any] = {
            "truth": str(truth),
            "pred": None if pred is None else str(pred),
            "actions": None if actions is None else str(actions),
            "exchanges": [str(p) for p in exchanges] if exchanges else None,
            "n_rejected_exchanges": n_rejected if exchanges else None,
            "n_pred_accounts_not_in_truth": len(extra),
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_bytes(orjson.dumps({"inputs": inputs, **metrics}, option=orjson.OPT_INDENT_2))


def run_baseline(detector: AccountDetector, name: str, logs: Sequence[Path], out: Path) -> None:
    """Read `logs`, score every account with `detector`, write `out/accounts.csv` and a summary line."""
    rejects_path = out / "rejected.jsonl"
    features, n_rejected = _feature_table(logs, rejects_path)
    if features.num_rows == 0:
        raise InputError(
            f"no valid exchange in the input ({n_rejected:,} records refused, see {rejects_path})"
        )
    scores = detector.fit(features).score(features)
    scores = scores.sort_by([("risk", "descending"), ("account_id", "ascending")])
    accounts_path = out / "accounts.csv"
    write_accounts_csv(accounts_path, scores)
    n_exchanges = pc.sum(features.column("n_exchanges")).as_py()
    n_flagged = pc.sum(scores.column("flagged").cast(pa.int64())).as_py()
    typer.echo(
        f"{name}: {features.num_rows:,} accounts, {n_flagged:,} flagged, from {n_exchanges:,} exchanges "
        f"({n_rejected:,} records refused) -> {accounts_path}"
    )


LogsArgument = Annotated[
    list[Path],
    typer.Argument(help="Exchange logs: files, folders or globs (JSON Lines, optionally gzip, or Parquet)."),
]
OutOption = Annotated[Path, typer.Option("--out", help="Output folder for accounts.csv and rejected.jsonl.")]


@baseline_app.command("rate-limit")
def rate_limit_command(
    logs: LogsArgument,
    out: OutOption,
    rpm: Annotated[
        int, typer.Option("--rpm", min=1, help="Requests allowed per account per UTC minute.")
    ] = 60,
    per_day: Annotated[
        int, typer.Option("--per-day", min=1, help="Requests allowed per account per UTC day.")
    ] = 10_000,
) -> None:
    """Per-account rate limiting: flag accounts that ever exceed the per-minute or per-day limit."""
    from distillguard.evaluate.baselines import RateLimitBaseline

    run_baseline(
        RateLimitBaseline(rpm=rpm, per_day=per_day), f"rate-limit (rpm {rpm}, per day {per_day:,})", logs, out
    )


def _contamination(value: float) -> float:
    """IsolationForest accepts a contamination share in (0, 0.5]."""
    if not 0.0 < value <= 0.5:
        raise typer.BadParameter(f"{value} is not in (0, 0.5]")
    return value


@baseline_app.command("anomaly")
def anomaly_command(
    logs: LogsArgument,
    out: OutOption,
    contamination: Annotated[
        float,
        typer.Option(
            "--contamination",
            callback=_contamination,
            help="Share of accounts to flag, in (0, 0.5].",
        ),
    ] = 0.01,
) -> None:
    """Per-account anomaly detection (Isolation Forest over volume, rate, tokens, models, IPs)."""
    from distillguard.evaluate.baselines import AnomalyBaseline

    run_baseline(
        AnomalyBaseline(contamination=contamination), f"anomaly (contamination {contamination:g})", logs, out
    )
