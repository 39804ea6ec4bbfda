"""The distributed engine: the per-exchange signal stage on Apache Spark (PySpark).

`analyze --engine spark` reads and validates the logs exactly as the local engine does (the same
reader, the same rejected file), stages the validated exchanges as Parquet, and has Spark run the
signal function over them with `mapInArrow`: the same `signals.exchange_signals`, one Arrow record
batch at a time, on as many executors as the cluster has. The signals come back as Parquet into
the same DuckDB `signals` table, and account behaviour, linking and scoring run on it with the
local engine's code, so both engines give the same accounts.csv (the parity test checks it).

The signal stage is where the time goes (classifiers, skeletons and MinHash, about 200 µs of one
core per exchange); the stages after it read one narrow row per exchange.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from distillguard.errors import InputError
from distillguard.schema import EXCHANGE_SCHEMA
from distillguard.signals.exchange import SIGNALS_SCHEMA, exchange_signals

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[2]"
# Spark has no fixed-size lists and no millisecond timestamps: the LSH band keys travel as a plain
# list and timestamps in microseconds, and both are restored in DuckDB.
_LSH = SIGNALS_SCHEMA.field("lsh")
_WIRE_SCHEMA = (
    SIGNALS_SCHEMA.set(SIGNALS_SCHEMA.get_field_index("lsh"), pa.field("lsh", pa.list_(pa.int64())))
    .set(SIGNALS_SCHEMA.get_field_index("ts"), pa.field("ts", pa.timestamp("us", tz="UTC")))
)


def session(master: str = DEFAULT_MASTER) -> SparkSession:
    """The Spark session (one per process, created on first use)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError("--engine spark needs PySpark: pip install 'distillguard[spark]'") from None
    # Executors must run the interpreter that has distillguard installed, not whatever `python` is.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        spark = (
            SparkSession.builder.master(master)
            .appName("distillguard")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
            .getOrCreate()
        )
    except Exception as exc:  # a missing Java runtime surfaces here, as a Py4J or runtime error
        raise InputError(f"cannot start Spark (master {master}): {str(exc).splitlines()[0][:200]}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _signal_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The function Spark maps over the staged exchanges: Arrow batches in, signal batches out."""
    for batch in batches:
        # Spark hands timestamps over in microseconds and may order columns its own way: the batch is
        # put back into the contract's schema before the signal code sees it.
        table = pa.Table.from_batches([batch]).select(EXCHANGE_SCHEMA.names).cast(EXCHANGE_SCHEMA)
        for exchanges in table.to_batches():
            yield exchange_signals(exchanges).cast(_WIRE_SCHEMA)


def insert_signals(con: duckdb.DuckDBPyConnection, batches: Iterable[pa.RecordBatch], *,
                   master: str = DEFAULT_MASTER, work: Path | None = None) -> None:
    """Compute the signals of validated exchange `batches` on Spark into the `signals_raw` table.

    `work` is where the staged exchanges and the signals are written (a temporary folder by
    default; on a real cluster, a location every executor can read, such as object storage)."""
    with tempfile.TemporaryDirectory(prefix="distillguard-spark-", dir=work) as folder:
        staged, out = Path(folder) / "exchanges", Path(folder) / "signals"
        staged.mkdir()
        parts = 0
        for batch in batches:
            if batch.num_rows:
                pq.write_table(pa.Table.from_batches([batch]), staged / f"part-{parts:06d}.parquet")
                parts += 1
        if parts == 0:
            return
        spark = session(master)  # first: it is what explains a missing PySpark
        from pyspark.sql.pandas.types import from_arrow_schema

        spark.read.parquet(str(staged)).mapInArrow(_signal_batches, from_arrow_schema(_WIRE_SCHEMA)) \
            .write.parquet(str(out))
        columns = ", ".join(f"lsh::BIGINT[{_LSH.type.list_size}] AS lsh" if n == "lsh" else n
                            for n in SIGNALS_SCHEMA.names)
        con.execute(f"INSERT INTO signals_raw SELECT {columns} FROM read_parquet('{out}/*.parquet')")
