"""The distributed engine: the per-exchange signal stage on Apache Spark (PySpark).

`analyze --engine spark` reads and validates the logs exactly as the local engine does (the same
reader, the same rejected file), stages the validated exchanges as Parquet, and has Spark run the
signal function over them with `mapInArrow`: the same `signals.exchange_signals`, one Arrow record
batch at a time, on as many executors as the cluster has. Spark then folds account behaviour too:
the signals, with duplicate request ids dropped as the local engine drops them, are partitioned by
account and each partition is folded into `AccountState`s by the local engine's own fold
(`behaviour.features.account_states`, on an in-memory DuckDB in the executor). The signals and the
serialised states come back as Parquet into the driver's DuckDB, where linking and scoring run
with the local engine's code, so both engines give the same accounts.csv (the parity test checks
it).

The signal stage is where the time goes (classifiers, skeletons and MinHash, about 200 µs of one
core per exchange); the stages after it read one narrow row per exchange.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from distillguard.behaviour.features import STATE_TABLE, account_states
from distillguard.errors import InputError
from distillguard.schema import EXCHANGE_SCHEMA, RELEASES_SCHEMA
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


_STATES_SCHEMA = pa.schema([("account_id", pa.string()), ("state", pa.binary())])


def _state_folder(releases: pa.Table) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function Spark maps over the signals partitioned by account: each partition's accounts
    folded into serialised `AccountState`s, with the releases side table the driver read."""

    def fold(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        table = pa.Table.from_batches(list(batches))
        if table.num_rows == 0:
            return
        con = duckdb.connect()
        try:
            con.register("signals", table)
            con.register("releases", releases)
            ids, states = account_states(con)
        finally:
            con.close()
        yield pa.RecordBatch.from_pydict({"account_id": ids, "state": [s.to_bytes() for s in states]},
                                         schema=_STATES_SCHEMA)

    return fold


def insert_signals(con: duckdb.DuckDBPyConnection, batches: Iterable[pa.RecordBatch], *,
                   master: str = DEFAULT_MASTER, work: Path | None = None) -> None:
    """Compute the signals of validated exchange `batches` on Spark into the `signals_raw` table.

    `work` is where the staged exchanges and the signals are written (a temporary folder by
    default; on a real cluster, a location every executor can read, such as object storage)."""
    with tempfile.TemporaryDirectory(prefix="distillguard-spark-", dir=work) as folder:
        staged, out, states = (Path(folder) / name for name in ("exchanges", "signals", "states"))
        staged.mkdir()
        parts = 0
        for batch in batches:
            if batch.num_rows:
                pq.write_table(pa.Table.from_batches([batch]), staged / f"part-{parts:06d}.parquet")
                parts += 1
        if parts == 0:
            return
        spark = session(master)  # first: it is what explains a missing PySpark
        from pyspark.sql import Window
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        spark.read.parquet(str(staged)).mapInArrow(_signal_batches, from_arrow_schema(_WIRE_SCHEMA)) \
            .write.parquet(str(out))
        columns = ", ".join(f"lsh::BIGINT[{_LSH.type.list_size}] AS lsh" if n == "lsh" else n
                            for n in SIGNALS_SCHEMA.names)
        con.execute(f"INSERT INTO signals_raw SELECT {columns} FROM read_parquet('{out}/*.parquet')")

        # The same exchange logged twice counts once, as in `load_signals`; then whole accounts per
        # partition, so each account's state is folded from all of its exchanges in one place.
        first = Window.partitionBy("request_id").orderBy("ts")
        signals = spark.read.parquet(str(out)).withColumn("_n", F.row_number().over(first)).filter("_n = 1").drop("_n")
        releases = con.sql("SELECT * FROM releases").to_arrow_table().cast(RELEASES_SCHEMA)
        signals.repartition(spark.sparkContext.defaultParallelism, "account_id") \
            .mapInArrow(_state_folder(releases), from_arrow_schema(_STATES_SCHEMA)).write.parquet(str(states))
        con.execute(f"CREATE TABLE {STATE_TABLE} AS SELECT * FROM read_parquet('{states}/*.parquet')")
