"""Input files: expanding paths, telling formats apart, and streaming decoded records out of them.

Files are read as bytes, line by line (JSON Lines, optionally gzip) or row group by row group
(Parquet), so memory stays bounded whatever the input size. Each line is decoded on its own:
a line that is not UTF-8, not JSON, not an object or absurdly long is written to the reject sink
and reading goes on with the next one.
"""

from __future__ import annotations

import glob
import gzip
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from distillguard.errors import InputError
from distillguard.ingest.rejects import RejectSink

MAX_LINE_BYTES = 8 * 1024 * 1024
PARQUET_BATCH_ROWS = 4096
_PROGRESS_EVERY_LINES = 4096
_SKIP_CHUNK = 1024 * 1024
_BOM = b"\xef\xbb\xbf"
_GLOB_CHARS = frozenset("*?[")

# Suffixes picked up when a folder is given; a file named explicitly is read whatever its name.
LOG_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz", ".gz", ".parquet", ".pq")

# Magic numbers of compressions we do not read, to fail with a useful message instead of
# rejecting every "line" of a binary file.
_UNSUPPORTED_MAGIC = {b"\x28\xb5\x2f\xfd": "zstd", b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"PK\x03\x04": "zip"}

Progress = Callable[[int], None]


@dataclass
class ReadStats:
    """What one read saw. ``records == accepted + rejected + joined`` once reading is done.

    ``records`` counts non-blank lines and Parquet rows; ``joined`` counts the lines merged into
    another exchange (the second half of an OpenAI batch request/output pair).
    """

    files: int = 0
    bytes: int = 0
    records: int = 0
    blank: int = 0
    accepted: int = 0
    rejected: int = 0
    joined: int = 0
    formats: Counter[str] = field(default_factory=Counter)


def _is_log_file(path: Path) -> bool:
    name = path.name.lower()
    return not name.startswith(".") and name.endswith(LOG_SUFFIXES)


def _folder_files(folder: Path) -> list[Path]:
    """Log files under `folder`, recursively, in a stable order, skipping hidden folders."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if path.is_file() and not any(part.startswith(".") for part in relative[:-1]) and _is_log_file(path):
            found.append(path)
    if not found:
        raise InputError(f"no log files (.jsonl, .jsonl.gz, .parquet, ...) in folder: {folder}")
    return found


def _expand_one(text: str) -> list[Path]:
    path = Path(text).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        return _folder_files(path)
    if _GLOB_CHARS & set(text):
        matches = sorted(glob.glob(str(path), recursive=True))
        if not matches:
            raise InputError(f"no file matches: {text}")
        files: list[Path] = []
        for match in matches:
            candidate = Path(match)
            if candidate.is_dir():
                files.extend(_folder_files(candidate))
            elif candidate.is_file():
                files.append(candidate)
        return files
    raise InputError(f"no such file: {text}")


def expand_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Files named by `paths` (files, folders read recursively, glob patterns), each once, in order."""
    if not paths:
        raise InputError("no input given")
    seen: set[Path] = set()
    files: list[Path] = []
    for item in paths:
        for path in _expand_one(str(item)):
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files


def input_size(paths: Sequence[str | Path]) -> int:
    """Total on-disk bytes of the inputs: the total of a progress bar fed by `on_progress`."""
    return sum(path.stat().st_size for path in expand_inputs(paths))


def sniff_kind(path: Path) -> str:
    """``jsonl``, ``gzip`` or ``parquet``, from the file's first bytes rather than its name."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    for magic, name in _UNSUPPORTED_MAGIC.items():
        if head.startswith(magic):
            raise InputError(f"{path} is {name}-compressed; only gzip and Parquet are supported")
    return "jsonl"


def _skip_rest_of_line(stream: IO[bytes]) -> None:
    """Consume an over-long line up to its newline without holding it in memory."""
    while True:
        chunk = stream.readline(_SKIP_CHUNK)
        if not chunk or chunk.endswith(b"\n"):
            return


def _parse_failure(line: bytes, exc: orjson.JSONDecodeError) -> str | None:
    """Reason for a line orjson refused, or None when it is blank."""
    if not line.strip():
        return None
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"invalid-utf8: byte {err.start}"
    return f"invalid-json: {exc.msg} at column {exc.colno}"


def iter_json_lines(
    path: Path, *, gz: bool, rejects: RejectSink, stats: ReadStats, on_progress: Progress | None = None
) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
    """(line number, raw line, decoded object) for every good line of a JSON Lines file."""
    name = str(path)
    loads = orjson.loads
    with path.open("rb") as raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        readline = stream.readline
        line_no = 0
        reported = 0
        while True:
            try:
                line = readline(MAX_LINE_BYTES + 1)
            except (OSError, EOFError, zlib.error) as exc:
                if line_no == 0:
                    raise InputError(f"cannot read {path}: {exc}") from None
                stats.records += 1
                stats.rejected += 1
                rejects.reject(name, line_no + 1, f"truncated-file: {exc}", None)
                break
            if not line:
                break
            line_no += 1
            if line_no % _PROGRESS_EVERY_LINES == 0 and on_progress is not None:
                position = raw.tell()
                on_progress(position - reported)
                reported = position
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                _skip_rest_of_line(stream)
                stats.records += 1
                stats.rejected += 1
                rejects.reject(name, line_no, f"too-large: line (over {MAX_LINE_BYTES} bytes)", line)
                continue
            if line_no == 1 and line.startswith(_BOM):
                line = line[3:]
            try:
                obj = loads(line)
            except orjson.JSONDecodeError as exc:
                reason = _parse_failure(line, exc)
                if reason is None:
                    stats.blank += 1
                    continue
                if line_no == 1 and line.strip() == b"[":
                    raise InputError(
                        f"{path} is a JSON array, not JSON Lines (one object per line)"
                    ) from None
                stats.records += 1
                stats.rejected += 1
                rejects.reject(name, line_no, reason, line)
                continue
            stats.records += 1
            if type(obj) is not dict:
                stats.rejected += 1
                rejects.reject(name, line_no, f"not-object: line is a JSON {_json_kind(obj)}", line)
                continue
            yield line_no, line, obj
        if on_progress is not None:
            on_progress(raw.tell() - reported)


def _json_kind(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null"
    )


def iter_parquet_rows(
    path: Path, *, rejects: RejectSink, stats: ReadStats, on_progress: Progress | None = None
) -> Iterator[tuple[int, None, dict[str, Any]]]:
    """(row number, None, row as a dict) for every row of a Parquet file, one batch at a time."""
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt footer
        raise InputError(f"cannot read Parquet file {path}: {exc}") from None
    with parquet:
        total_rows = max(parquet.metadata.num_rows, 1)
        size = path.stat().st_size
        row_no = 0
        reported = 0
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                for row in batch.to_pylist():
                    row_no += 1
                    stats.records += 1
                    yield row_no, None, row
                if on_progress is not None:
                    position = size * row_no // total_rows
                    on_progress(position - reported)
                    reported = position
        except (OSError, pa.ArrowException) as exc:  # a damaged row group: keep what came before
            stats.records += 1
            stats.rejected += 1
            rejects.reject(str(path), row_no + 1, f"truncated-file: {exc}", None)
        if on_progress is not None:
            on_progress(size - reported)


def iter_file_records(
    path: Path, *, rejects: RejectSink, stats: ReadStats, on_progress: Progress | None = None
) -> Iterator[tuple[int, bytes | None, dict[str, Any]]]:
    """Decoded records of one input file of any supported kind, counting it in `stats`."""
    kind = sniff_kind(path)
    stats.files += 1
    stats.bytes += path.stat().st_size
    if kind == "parquet":
        return iter_parquet_rows(path, rejects=rejects, stats=stats, on_progress=on_progress)
    return iter_json_lines(path, gz=kind == "gzip", rejects=rejects, stats=stats, on_progress=on_progress)
