"""The CSV outputs of CONTRACT section 2, written exactly as specified."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa

from distillguard.schema import ACCOUNTS_CSV_HEADER, CLUSTERS_CSV_HEADER


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # full precision: rounding would create ties and shift rankings
    return str(value)


def write_csv(table: pa.Table, header: tuple[str, ...], path: Path) -> None:
    columns = [table.column(name).to_pylist() for name in header]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([_cell(v) for v in row] for row in zip(*columns, strict=True))


def write_accounts_csv(accounts: pa.Table, path: Path) -> None:
    write_csv(accounts.sort_by([("risk", "descending"), ("account_id", "ascending")]), ACCOUNTS_CSV_HEADER, path)


def write_clusters_csv(clusters: pa.Table, path: Path) -> None:
    write_csv(clusters.sort_by([("risk", "descending"), ("cluster_id", "ascending")]), CLUSTERS_CSV_HEADER, path)
