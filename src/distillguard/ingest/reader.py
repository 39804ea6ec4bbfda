"""`read_exchanges`: input files -> validated, normalised Arrow batches of ``EXCHANGE_SCHEMA``.

Records flow one at a time from the file readers through an adapter (chosen per file) and the
contract validator into a row buffer; every `batch_size` rows (or ~64 MiB of input) the buffer
becomes one Arrow record batch. At most one chunk of Python rows and one batch of Arrow data are
alive at a time, so memory is bounded by the batch, not the input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from distillguard.errors import InputError
from distillguard.ingest.adapters import (
    FORMATS,
    BatchHalf,
    BatchJoiner,
    Pair,
    access_log_to_contract,
    detect_format,
    openai_batch_to_contract,
)
from distillguard.ingest.normalise import Rejected, exchange_row
from distillguard.ingest.rejects import RejectSink
from distillguard.ingest.sources import Progress, ReadStats, expand_inputs, iter_file_records
from distillguard.schema import EXCHANGE_SCHEMA, MESSAGE_TYPE

MAX_BATCH_BYTES = 64 * 1024 * 1024  # keeps every string column far below Arrow's 2 GiB offsets
CHUNK_ROWS = 2048
_MESSAGES_INDEX = EXCHANGE_SCHEMA.get_field_index("messages")
_MESSAGES_LIST_TYPE = EXCHANGE_SCHEMA.field("messages").type

Record = tuple[int, bytes | None, dict[str, Any]]  # (line or row number, raw line, decoded object)
Adapter = Callable[[dict[str, Any], bytes | None], dict[str, Any]]


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InputError(f"unknown format: {fmt} (expected one of {', '.join(FORMATS)})")
    return fmt


def _messages_array(column: Sequence[tuple[list[str], list[str]]]) -> pa.Array:
    """One list<struct<role, content>> column from (roles, contents) pairs, built flat."""
    offsets = np.zeros(len(column) + 1, dtype=np.int32)
    np.cumsum([len(roles) for roles, _ in column], out=offsets[1:])
    roles = pa.array(list(chain.from_iterable(roles for roles, _ in column)), type=pa.string())
    contents = pa.array(list(chain.from_iterable(contents for _, contents in column)), type=pa.string())
    values = pa.StructArray.from_arrays([roles, contents], fields=list(MESSAGE_TYPE))
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=_MESSAGES_LIST_TYPE)


def rows_to_batch(rows: Sequence[tuple[Any, ...]]) -> pa.RecordBatch:
    """An ``EXCHANGE_SCHEMA`` record batch from rows made by `exchange_row`."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in EXCHANGE_SCHEMA]
    arrays = [
        _messages_array(values) if i == _MESSAGES_INDEX else pa.array(values, type=field.type)
        for i, (field, values) in enumerate(zip(EXCHANGE_SCHEMA, columns, strict=True))
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=EXCHANGE_SCHEMA)


class RowBuffer:
    """Validated rows waiting to become a record batch.

    Rows are turned into Arrow every `CHUNK_ROWS` (small chunks keep the Python objects hot in
    cache and short-lived) and the chunks are joined when a whole batch is asked for.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = max(1, batch_size)
        self.rows: list[tuple[Any, ...]] = []
        self._chunks: list[pa.RecordBatch] = []
        self._chunked_rows = 0
        self._bytes = 0

    def add(self, row: tuple[Any, ...], n_bytes: int) -> bool:
        """Buffer one row; True when a batch is full (by rows, or by input bytes)."""
        rows = self.rows
        rows.append(row)
        self._bytes += n_bytes
        if len(rows) >= CHUNK_ROWS:
            self._chunks.append(rows_to_batch(rows))
            self._chunked_rows += len(rows)
            self.rows = []
        return self._chunked_rows + len(self.rows) >= self.batch_size or self._bytes >= MAX_BATCH_BYTES

    def __len__(self) -> int:
        return self._chunked_rows + len(self.rows)

    def take(self) -> pa.RecordBatch:
        """Everything buffered, as one batch; the buffer is empty afterwards."""
        chunks = self._chunks
        if self.rows or not chunks:
            chunks.append(rows_to_batch(self.rows))
        batch = chunks[0] if len(chunks) == 1 else pa.concat_batches(chunks)
        self.rows, self._chunks, self._chunked_rows, self._bytes = [], [], 0, 0
        return batch


class ExchangeReader(Iterator[pa.RecordBatch]):
    """Iterator of exchange batches; `stats` holds the counts once iteration has finished."""

    def __init__(
        self,
        files: Sequence[Path],
        *,
        fmt: str,
        rejects: RejectSink,
        batch_size: int,
        on_progress: Progress | None,
        default_account: str | None,
    ) -> None:
        self.files = list(files)
        self.fmt = check_format(fmt)
        self.rejects = rejects
        self.on_progress = on_progress
        self.default_account = default_account
        self.stats = ReadStats()
        self._buffer = RowBuffer(batch_size)
        self._joiner = BatchJoiner()
        self._batches = self._generate()

    def __iter__(self) -> ExchangeReader:
        return self

    def __next__(self) -> pa.RecordBatch:
        return next(self._batches)

    def _reject(self, file: str, line: int | None, reason: str, record: Any) -> None:
        self.stats.rejected += 1
        self.rejects.reject(file, line, reason, record)

    def _generate(self) -> Iterator[pa.RecordBatch]:
        for path in self.files:
            records = iter_file_records(
                path, rejects=self.rejects, stats=self.stats, on_progress=self.on_progress
            )
            first = next(records, None)
            if first is None:
                continue
            fmt = detect_format(first[2]) if self.fmt == "auto" else self.fmt
            self.stats.formats[fmt] += 1
            records = chain([first], records)
            if fmt == "openai-batch":
                yield from self._batch_file(records, str(path))
            else:
                yield from self._row_file(
                    records, str(path), access_log_to_contract if fmt == "access-log" else None
                )
        for pair in self._joiner.drain():
            if self._accept_pair(pair):
                yield self._buffer.take()
        if len(self._buffer):
            yield self._buffer.take()

    def _row_file(
        self, records: Iterator[Record], name: str, adapt: Adapter | None
    ) -> Iterator[pa.RecordBatch]:
        """The hot loop: one record per line, straight through the validator."""
        stats, add = self.stats, self._buffer.add
        for line, raw, obj in records:
            try:
                row = exchange_row(obj if adapt is None else adapt(obj, raw))
            except Rejected as exc:
                self._reject(name, line, exc.reason, raw if raw is not None else obj)
                continue
            stats.accepted += 1
            if add(row, len(raw) if raw is not None else 0):
                yield self._buffer.take()

    def _batch_file(self, records: Iterator[Record], name: str) -> Iterator[pa.RecordBatch]:
        """OpenAI batch lines: each waits for its other half, then the pair becomes one exchange."""
        for line, raw, obj in records:
            custom_id = obj.get("custom_id")
            if type(custom_id) is not str or not custom_id:
                self._reject(
                    name, line, "unmappable: custom_id (missing in an OpenAI batch line)", raw or obj
                )
                continue
            is_output = BatchJoiner.is_output(obj)
            if not is_output and "body" not in obj:
                reason = "unmappable: line is neither a batch request (body) nor an output (response)"
                self._reject(name, line, reason, raw or obj)
                continue
            encoded = raw if raw is not None else orjson.dumps(obj, default=str)
            for pair in self._joiner.add(custom_id, BatchHalf(is_output, encoded, name, line)):
                if self._accept_pair(pair):
                    yield self._buffer.take()

    def _accept_pair(self, pair: Pair) -> bool:
        """Map and validate one request/output pair; True when the buffer is full."""
        request, output = pair
        # Refusals point at the output line when there is one: it is the half that completes the pair.
        file, line = next((half.file, half.line) for half in (output, request) if half is not None)
        if request is not None and output is not None:
            self.stats.joined += 1
        req = request.decoded() if request is not None else None
        out = output.decoded() if output is not None else None
        try:
            row = exchange_row(openai_batch_to_contract(req, out, self.default_account))
        except Rejected as exc:
            self._reject(file, line, exc.reason, {"request": req, "output": out})
            return False
        self.stats.accepted += 1
        return self._buffer.add(
            row, len(request.raw if request else b"") + len(output.raw if output else b"")
        )


def read_exchanges(
    paths: Sequence[str | Path],
    *,
    fmt: str = "auto",
    rejects: RejectSink,
    batch_size: int = 16384,
    on_progress: Progress | None = None,
    default_account: str | None = None,
) -> ExchangeReader:
    """Stream exchange logs as ``EXCHANGE_SCHEMA`` batches; refused records go to `rejects`.

    `paths` may name files, folders (read recursively) and glob patterns. `fmt` is ``auto``
    (chosen per file from its first record), ``contract``, ``access-log`` or ``openai-batch``.
    `on_progress(n)` is called with the on-disk bytes consumed since its last call.
    `default_account` is the account of OpenAI batch lines that carry none. The returned iterator's
    ``stats`` (a `ReadStats`) is complete once it is exhausted.
    """
    check_format(fmt)
    return ExchangeReader(
        expand_inputs(paths),
        fmt=fmt,
        rejects=rejects,
        batch_size=batch_size,
        on_progress=on_progress,
        default_account=default_account,
    )
