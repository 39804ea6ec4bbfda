"""The optional side tables (CONTRACT section 1): accounts and model releases.

Same input formats as the exchange log and the same reject rules; these tables are small
(one row per account or model), so they are returned whole as Arrow tables. A key seen twice
is refused (``duplicate-key``) rather than guessed at: the first row wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from distillguard.ingest.normalise import Rejected, epoch_ms, wrong_type
from distillguard.ingest.rejects import RejectSink
from distillguard.ingest.sources import ReadStats, expand_inputs, iter_file_records
from distillguard.schema import ACCOUNTS_SCHEMA, RELEASES_SCHEMA

# (field, kind, required); kind is "string", "timestamp" or "boolean".
Spec = Sequence[tuple[str, str, bool]]

ACCOUNTS_SPEC: Spec = (
    ("account_id", "string", True),
    ("created_at", "timestamp", False),
    ("tier", "string", False),
    ("verified", "boolean", False),
    ("email_domain", "string", False),
    ("country", "string", False),
    ("payment_fingerprint", "string", False),
)
RELEASES_SPEC: Spec = (("model", "string", True), ("released_at", "timestamp", True))


def _value(record: Mapping[str, Any], field: str, kind: str, required: bool) -> Any:
    value = record.get(field)
    if value is None:
        if required:
            raise Rejected("missing-field", field)
        return None
    if kind == "timestamp":
        return epoch_ms(value, field)
    if kind == "string":
        if type(value) is not str:
            raise wrong_type(field, "string", value)
        if required and not value:
            raise Rejected("bad-value", f"{field} (empty)")
        return value
    if type(value) is not bool:
        raise wrong_type(field, "boolean", value)
    return value


def table_row(record: Mapping[str, Any], spec: Spec) -> tuple[Any, ...]:
    """One validated row of a side table; extra fields are ignored, as the contract says."""
    return tuple(_value(record, field, kind, required) for field, kind, required in spec)


def read_table(paths: Sequence[str | Path], spec: Spec, schema: pa.Schema, rejects: RejectSink) -> pa.Table:
    """Validated side-table rows from files, folders or globs, keyed on the spec's first field."""
    rows: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    key_field = spec[0][0]
    stats = ReadStats()
    for path in expand_inputs(paths):
        for line, raw, record in iter_file_records(path, rejects=rejects, stats=stats):
            where = raw if raw is not None else record
            try:
                row = table_row(record, spec)
            except Rejected as exc:
                rejects.reject(str(path), line, exc.reason, where)
                continue
            if row[0] in seen:
                rejects.reject(
                    str(path), line, f"duplicate-key: {key_field} {row[0][:80]!r} seen before", where
                )
                continue
            seen.add(row[0])
            rows.append(row)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in spec]
    return pa.table(
        [pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


def read_accounts(path: str | Path | Sequence[str | Path], rejects: RejectSink) -> pa.Table:
    """The accounts table (``ACCOUNTS_SCHEMA``); ``created_at`` is UTC milliseconds."""
    return read_table(_as_paths(path), ACCOUNTS_SPEC, ACCOUNTS_SCHEMA, rejects)


def read_releases(path: str | Path | Sequence[str | Path], rejects: RejectSink) -> pa.Table:
    """The model releases table (``RELEASES_SCHEMA``): when each model became available."""
    return read_table(_as_paths(path), RELEASES_SPEC, RELEASES_SCHEMA, rejects)


def _as_paths(path: str | Path | Sequence[str | Path]) -> Sequence[str | Path]:
    return [path] if isinstance(path, str | Path) else path
