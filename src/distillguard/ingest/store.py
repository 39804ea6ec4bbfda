"""The exchange store: a DuckDB file with one table, ``exchanges``, keyed on ``request_id``.

Ingestion is idempotent: ``request_id`` is the primary key and batches are written with
``INSERT OR IGNORE``, so a record whose id is already stored (from an earlier run, or earlier in
the same input) is counted as a duplicate and the first copy is kept. Each batch commits on its
own, so an interrupted ingest leaves a consistent table and running it again finishes the job.

Writing runs on a worker thread while the next batch is parsed: DuckDB releases the GIL while it
inserts, so parsing and storage overlap on two cores.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from distillguard.errors import InputError
from distillguard.ingest.reader import read_exchanges
from distillguard.ingest.rejects import RejectSink
from distillguard.ingest.sources import Progress
from distillguard.schema import EXCHANGE_SCHEMA

TABLE = "exchanges"
_MEMORY_LIMIT = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


@dataclass
class IngestResult:
    """Counts of one ingest run. ``duplicates`` = accepted records whose request_id was already stored."""

    db: Path
    files: int = 0
    bytes: int = 0
    read: int = 0
    accepted: int = 0
    inserted: int = 0
    rejected: int = 0
    table_rows: int = 0
    formats: Counter[str] = field(default_factory=Counter)

    @property
    def duplicates(self) -> int:
        return self.accepted - self.inserted


def _column_types(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """DuckDB column types of ``EXCHANGE_SCHEMA``, derived from the Arrow schema itself."""
    relation = con.from_arrow(EXCHANGE_SCHEMA.empty_table())
    return [(name, str(kind)) for name, kind in zip(relation.columns, relation.dtypes, strict=True)]


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``exchanges`` if absent; refuse a table whose columns are not the canonical ones."""
    expected = _column_types(con)
    existing = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
        [TABLE],
    ).fetchall()
    if not existing:
        columns = ", ".join(f'"{name}" {kind}' for name, kind in expected)
        con.execute(f"CREATE TABLE {TABLE} ({columns}, PRIMARY KEY (request_id))")
        return
    if [tuple(row) for row in existing] != expected:
        raise InputError(
            f"the database already has an '{TABLE}' table with different columns; use a new --db file"
        )


def open_store(db: Path, *, memory_limit: str = "1GB") -> duckdb.DuckDBPyConnection:
    """A connection to the store at `db` (created when missing) with the table ready."""
    if not _MEMORY_LIMIT.match(memory_limit):
        raise InputError(f"bad memory limit: {memory_limit} (expected e.g. 1GB)")
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(db))
    except duckdb.Error as exc:
        raise InputError(f"cannot open database {db}: {str(exc).splitlines()[0]}") from None
    try:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        # Each checkpoint rewrites the primary-key index whole; at the default 16 MiB of WAL that
        # happens every batch and makes a long ingest quadratic. Checkpoint every ~1 GiB instead.
        con.execute("SET checkpoint_threshold = '1GiB'")
        ensure_table(con)
    except BaseException:
        con.close()
        raise
    return con


def insert_batch(con: duckdb.DuckDBPyConnection, batch: pa.RecordBatch) -> int:
    """Insert the batch's new request_ids; returns how many rows were added."""
    con.register("incoming", batch)
    try:
        row = con.execute(f"INSERT OR IGNORE INTO {TABLE} BY NAME SELECT * FROM incoming").fetchone()
    finally:
        con.unregister("incoming")
    return int(row[0]) if row else 0


def ingest_to_duckdb(
    paths: Sequence[str | Path],
    db: Path,
    *,
    fmt: str = "auto",
    rejects: RejectSink,
    default_account: str | None = None,
    batch_size: int = 16384,
    on_progress: Progress | None = None,
    memory_limit: str = "1GB",
) -> IngestResult:
    """Read exchange logs (see `read_exchanges`) into the ``exchanges`` table of the DuckDB file `db`."""
    reader = read_exchanges(
        paths,
        fmt=fmt,
        rejects=rejects,
        batch_size=batch_size,
        on_progress=on_progress,
        default_account=default_account,
    )
    result = IngestResult(db=db)
    con = open_store(db, memory_limit=memory_limit)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-writer") as writer:
            pending: Future[int] | None = None
            for batch in reader:
                if pending is not None:
                    result.inserted += pending.result()
                pending = writer.submit(insert_batch, con, batch)
            if pending is not None:
                result.inserted += pending.result()
        count = con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
        result.table_rows = int(count[0]) if count else 0
    finally:
        con.close()
    stats = reader.stats
    result.files, result.bytes, result.read = stats.files, stats.bytes, stats.records
    result.accepted, result.rejected = stats.accepted, stats.rejected
    result.formats = stats.formats
    return result
