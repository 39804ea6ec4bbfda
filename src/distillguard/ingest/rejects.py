"""The rejected-records file: every refused input record, with where it was and why.

The contract forbids dropping a record silently, so each refusal is written as one JSON line
``{"file", "line", "reason", "record"}``. ``record`` keeps the raw input line (or the Parquet row)
so an operator can fix and replay it; very long records are cut at ``max_record_bytes`` and marked
``"truncated": true`` with their original ``size``. A line that is not valid UTF-8 is stored as
base64 (``"record_encoding": "base64"``) because JSON cannot carry its bytes.
"""

from __future__ import annotations

import base64
import collections
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

MAX_RECORD_BYTES = 64 * 1024


def _json_default(value: object) -> str:
    # Parquet rows may hold values JSON has no type for (Decimal, bytes): keep them readable.
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _bytes_fields(raw: bytes, limit: int) -> dict[str, Any]:
    """Fields describing a raw line: text when it is UTF-8, base64 otherwise, cut at `limit`."""
    raw = raw.rstrip(b"\r\n")
    size = len(raw)
    cut = raw[:limit]
    try:
        fields: dict[str, Any] = {"record": cut.decode("utf-8")}
    except UnicodeDecodeError:
        if size > limit and _is_utf8_prefix(cut):
            # The cut fell inside a multi-byte character of an otherwise valid line.
            fields = {"record": cut.decode("utf-8", errors="ignore")}
        else:
            fields = {"record": base64.b64encode(cut).decode("ascii"), "record_encoding": "base64"}
    if size > limit:
        fields["truncated"] = True
        fields["size"] = size
    return fields


def _is_utf8_prefix(data: bytes) -> bool:
    """True when `data` is valid UTF-8 except for an incomplete character at its very end."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data"
    return True


def record_fields(
    record: str | bytes | dict[str, Any] | None, limit: int = MAX_RECORD_BYTES
) -> dict[str, Any]:
    """The ``record`` part of a rejected line, bounded to `limit` bytes of content."""
    if record is None:
        return {"record": None}
    if isinstance(record, str):
        return _bytes_fields(record.encode("utf-8", errors="surrogatepass"), limit)
    if isinstance(record, bytes):
        return _bytes_fields(record, limit)
    encoded = orjson.dumps(record, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    if len(encoded) <= limit:
        return {"record": orjson.Fragment(encoded)}
    return _bytes_fields(encoded, limit)


def reason_code(reason: str) -> str:
    """The stable code of a reason such as ``"wrong-type: asn (expected integer, got string)"``."""
    return reason.partition(":")[0]


class RejectSink:
    """Collects refused records: writes them to `path` (JSON Lines) or, with ``None``, only counts.

    ``total`` is the number of refusals and ``counts`` their number per reason code.
    """

    def __init__(self, path: Path | None, *, max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self.path = path
        self.max_record_bytes = max_record_bytes
        self.total = 0
        self.counts: collections.Counter[str] = collections.Counter()
        self.first: str | None = None  # "file:line: reason" of the first refusal
        self._fh: IO[bytes] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created even when nothing is refused: an empty file says "nothing was refused".
            self._fh = path.open("wb")

    def reject(
        self, file: str, line: int | None, reason: str, record: str | bytes | dict[str, Any] | None
    ) -> None:
        """Record one refusal. `reason` is ``"code: detail"``; `line` is 1-based (row number in Parquet)."""
        self.total += 1
        self.counts[reason_code(reason)] += 1
        if self.first is None:
            self.first = f"{file}:{line}: {reason}" if line is not None else f"{file}: {reason}"
        if self._fh is None:
            return
        entry: dict[str, Any] = {"file": file, "line": line, "reason": reason}
        entry.update(record_fields(record, self.max_record_bytes))
        self._fh.write(orjson.dumps(entry) + b"\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RejectSink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
