"""Reading ground truth and predictions, writing predictions: the CSV edges of the harness.

Both files are validated row by row with Python's `csv` reader because the error must name the
file, the physical line and the field; `csv.reader.line_num` stays right even when a quoted field
spans lines. The parsed files become small Arrow tables (one row per account) for the metrics.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from distillguard.errors import InputError
from distillguard.report.tables import write_accounts_csv as write_contract_accounts
from distillguard.schema import ACCOUNTS_CSV_HEADER, TRUTH_CSV_HEADER

LABELS = ("campaign", "legit")

TRUTH_SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("label", pa.string()),
        ("campaign", pa.string()),
        ("actor_type", pa.string()),
    ]
)

PREDICTION_SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("risk", pa.float64()),
        ("flagged", pa.bool_()),
        ("cluster_id", pa.string()),
        ("reasons", pa.string()),
    ]
)

_FLAGS = {"true": True, "false": False}


def csv_rows(
    path: Path, header: tuple[str, ...], aliases: dict[str, str] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields in `header` order) of a CSV whose first line names every column
    of `header` (or an alias of it); further columns, in any place, are read past."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            first = next(reader, None)
            if first is None:
                raise InputError(f"{path}: empty file, expected header {','.join(header)}")
            names = [(aliases or {}).get(name, name) for name in first]
            missing = [name for name in header if name not in names]
            if missing or len(set(names)) != len(names):
                raise InputError(f"{path}:1: wrong header {','.join(first)!r}, expected {','.join(header)!r}")
            order = [names.index(name) for name in header]
            for fields in reader:
                if not fields:
                    continue
                if len(fields) != len(first):
                    raise InputError(
                        f"{path}:{reader.line_num}: {len(fields)} fields, expected {len(first)}"
                    )
                yield reader.line_num, [fields[i] for i in order]
        except csv.Error as exc:
            raise InputError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text: {exc.reason}") from exc


def _account_id(path: Path, line: int, value: str, seen: dict[str, int]) -> str:
    """Check one account id: non-empty and not seen on an earlier line."""
    if not value:
        raise InputError(f"{path}:{line}: field 'account_id' is empty")
    if value in seen:
        raise InputError(
            f"{path}:{line}: field 'account_id': duplicate account {value!r} (first on line {seen[value]})"
        )
    seen[value] = line
    return value


def read_truth(path: Path) -> pa.Table:
    """Read `truth.csv` (account_id,label,campaign,actor_type, in any order, `campaign_id` accepted
    for `campaign`, other columns such as `campaign_shape` read past); campaign is null for legit rows."""
    seen: dict[str, int] = {}
    columns: dict[str, list[str | None]] = {name: [] for name in TRUTH_SCHEMA.names}
    for line, (account, label, campaign, actor_type) in csv_rows(path, TRUTH_CSV_HEADER, {"campaign_id": "campaign"}):
        _account_id(path, line, account, seen)
        if label not in LABELS:
            raise InputError(f"{path}:{line}: field 'label': {label!r} is not 'campaign' or 'legit'")
        if label == "campaign" and not campaign:
            raise InputError(f"{path}:{line}: field 'campaign' is empty for a campaign account")
        if label == "legit" and campaign:
            raise InputError(f"{path}:{line}: field 'campaign' is set for a legit account")
        columns["account_id"].append(account)
        columns["label"].append(label)
        columns["campaign"].append(campaign or None)
        columns["actor_type"].append(actor_type)
    if not seen:
        raise InputError(f"{path}: no accounts after the header")
    return pa.table(columns, schema=TRUTH_SCHEMA)


def _risk(path: Path, line: int, value: str) -> float:
    try:
        risk = float(value)
    except ValueError:
        raise InputError(f"{path}:{line}: field 'risk': cannot parse {value!r} as a number") from None
    # `not (0 <= risk <= 1)` also refuses NaN, which would otherwise poison every ranking metric.
    if not 0.0 <= risk <= 1.0:
        raise InputError(f"{path}:{line}: field 'risk': {value} is outside [0, 1]")
    return risk


def read_predictions(path: Path) -> pa.Table:
    """Read a contract `accounts.csv` (CONTRACT section 2); empty cluster ids become null."""
    seen: dict[str, int] = {}
    columns: dict[str, list[object]] = {name: [] for name in PREDICTION_SCHEMA.names}
    for line, (account, risk, flagged, cluster_id, reasons) in csv_rows(path, ACCOUNTS_CSV_HEADER):
        _account_id(path, line, account, seen)
        if flagged not in _FLAGS:
            raise InputError(f"{path}:{line}: field 'flagged': {flagged!r} is not 'true' or 'false'")
        columns["account_id"].append(account)
        columns["risk"].append(_risk(path, line, risk))
        columns["flagged"].append(_FLAGS[flagged])
        columns["cluster_id"].append(cluster_id or None)
        columns["reasons"].append(reasons)
    return pa.table(columns, schema=PREDICTION_SCHEMA)


def account_differences(truth: pa.Table, pred: pa.Table) -> tuple[list[str], list[str]]:
    """Accounts of truth missing from pred, and accounts of pred absent from truth, in file order."""
    truth_ids = truth.column("account_id").to_pylist()
    pred_ids = pred.column("account_id").to_pylist()
    truth_set, pred_set = set(truth_ids), set(pred_ids)
    missing = [a for a in truth_ids if a not in pred_set]
    extra = [a for a in pred_ids if a not in truth_set]
    return missing, extra


def write_accounts_csv(path: Path, scores: pa.Table) -> None:
    """Write a contract `accounts.csv` from a table with the `PREDICTION_SCHEMA` columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_contract_accounts(scores, path)
