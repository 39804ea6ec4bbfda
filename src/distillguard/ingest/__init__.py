"""Ingest stage: read exchange logs, validate them against the contract, store them.

Entry points used by the other stages:

- `read_exchanges` streams ``EXCHANGE_SCHEMA`` record batches from JSON Lines (plain or gzip)
  and Parquet files, folders and globs, in the contract format or through an adapter
  (``access-log``, ``openai-batch``);
- `read_accounts` / `read_releases` load the optional side tables;
- `ingest_to_duckdb` stores exchanges in a DuckDB file, idempotently on ``request_id``;
- `RejectSink` receives every refused record with its reason.
"""

from distillguard.ingest.adapters import FORMATS, detect_format
from distillguard.ingest.normalise import Rejected, exchange_row
from distillguard.ingest.reader import ExchangeReader, read_exchanges, rows_to_batch
from distillguard.ingest.rejects import RejectSink
from distillguard.ingest.sources import ReadStats, expand_inputs, input_size
from distillguard.ingest.store import IngestResult, ingest_to_duckdb, open_store
from distillguard.ingest.tables import read_accounts, read_releases

__all__ = [
    "FORMATS",
    "ExchangeReader",
    "IngestResult",
    "ReadStats",
    "RejectSink",
    "Rejected",
    "detect_format",
    "exchange_row",
    "expand_inputs",
    "ingest_to_duckdb",
    "input_size",
    "open_store",
    "read_accounts",
    "read_exchanges",
    "read_releases",
    "rows_to_batch",
]
