"""Every rejection reason, and what the rejected-records file keeps of the refused record."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from distillguard.ingest import RejectSink, read_exchanges
from distillguard.ingest import sources as ingest_sources

GOOD = {
    "request_id": "req-1",
    "ts": "2026-02-03T09:15:02Z",
    "account_id": "acct-1",
    "model": "frontier-2",
    "messages": [{"role": "user", "content": "Rate this essay against the rubric."}],
}


def with_fields(**changes: Any) -> bytes:
    record = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in record.items() if v is not ...})


CASES: list[tuple[str, bytes, str]] = [
    ("invalid utf-8", b'{"request_id": "r\xff\xfe"}', "invalid-utf8: byte 17"),
    ("invalid json", b'{"request_id": "r1", ', "invalid-json: "),
    ("not an object", b'["req-1", "acct-1"]', "not-object: line is a JSON array"),
    ("missing request_id", with_fields(request_id=...), "missing-field: request_id"),
    ("null account_id", with_fields(account_id=None), "missing-field: account_id"),
    ("missing ts", with_fields(ts=...), "missing-field: ts"),
    ("missing model", with_fields(model=...), "missing-field: model"),
    ("missing messages", with_fields(messages=...), "missing-field: messages"),
    ("empty request_id", with_fields(request_id=""), "bad-value: request_id (empty)"),
    (
        "numeric account",
        with_fields(account_id=1173),
        "wrong-type: account_id (expected string, got integer)",
    ),
    ("asn as string", with_fields(asn="15169"), "wrong-type: asn (expected integer, got string)"),
    (
        "tokens as float",
        with_fields(output_tokens=12.5),
        "wrong-type: output_tokens (expected integer, got number)",
    ),
    ("status as bool", with_fields(status=True), "wrong-type: status (expected integer, got boolean)"),
    ("ip as number", with_fields(ip=3232235777), "wrong-type: ip (expected string, got integer)"),
    ("stream as string", with_fields(stream="yes"), "wrong-type: stream (expected boolean, got string)"),
    (
        "tools not strings",
        with_fields(tools=[{"name": "x"}]),
        "wrong-type: tools (expected array of strings, got array)",
    ),
    (
        "temperature string",
        with_fields(temperature="hot"),
        "wrong-type: temperature (expected number, got string)",
    ),
    (
        "system number",
        with_fields(system=5),
        "wrong-type: system (expected string or array of parts, got integer)",
    ),
    (
        "messages object",
        with_fields(messages={"role": "user"}),
        "wrong-type: messages (expected array of {role, content}, got object)",
    ),
    (
        "message not object",
        with_fields(messages=["hi"]),
        "wrong-type: messages[0] (expected object, got string)",
    ),
    (
        "content number",
        with_fields(messages=[{"role": "user", "content": 7}]),
        "wrong-type: messages[0].content (expected string or array of parts, got integer)",
    ),
    (
        "part text number",
        with_fields(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]),
        "wrong-type: messages[0].content[0].text (expected string, got integer)",
    ),
    (
        "unknown role",
        with_fields(messages=[{"role": "robot", "content": "x"}]),
        "bad-value: messages[0].role ('robot' is not system, user, assistant or tool)",
    ),
    (
        "role not a string",
        with_fields(messages=[{"role": ["user"], "content": "x"}]),
        "wrong-type: messages[0].role (expected string, got array)",
    ),
    (
        "part type not a string",
        with_fields(messages=[{"role": "user", "content": [{"type": {"t": 1}}]}]),
        "wrong-type: messages[0].content[0].type (expected string, got object)",
    ),
    (
        "missing role",
        with_fields(messages=[{"content": "x"}]),
        "wrong-type: messages[0].role (expected string, got null)",
    ),
    (
        "ts float",
        with_fields(ts=1770110103000.5),
        "wrong-type: ts (expected RFC 3339 string or integer epoch milliseconds, got number)",
    ),
    (
        "ts no offset",
        with_fields(ts="2026-02-03T09:15:02"),
        "bad-timestamp: ts ('2026-02-03T09:15:02' has no UTC offset)",
    ),
    (
        "ts words",
        with_fields(ts="yesterday at noon"),
        "bad-timestamp: ts ('yesterday at noon' is not an RFC 3339 date-time)",
    ),
    (
        "ts bad day",
        with_fields(ts="2026-02-30T09:15:02Z"),
        "bad-timestamp: ts ('2026-02-30T09:15:02Z' is not an RFC 3339 date-time)",
    ),
    (
        "ts before 2000",
        with_fields(ts="1999-12-31T23:59:59Z"),
        "bad-timestamp: ts (1999-12-31T23:59:59Z is outside 2000-2100)",
    ),
    (
        "ts after 2100",
        with_fields(ts=4102444800000),
        "bad-timestamp: ts (4102444800000 is outside 2000-2100)",
    ),
    (
        "ts in seconds",
        with_fields(ts=1770110103),
        "bad-timestamp: ts (1770110103 is outside 2000-2100; epoch seconds? expected milliseconds)",
    ),
    ("negative tokens", with_fields(input_tokens=-3), "out-of-range: input_tokens (-3 not in 0..10000000)"),
    (
        "absurd tokens",
        with_fields(output_tokens=10**12),
        "out-of-range: output_tokens (1000000000000 not in 0..10000000)",
    ),
    ("bad status", with_fields(status=42), "out-of-range: status (42 not in 100..599)"),
    ("negative temperature", with_fields(temperature=-0.5), "out-of-range: temperature (-0.5 not in 0..100)"),
    ("empty messages", with_fields(messages=[]), "bad-value: messages (empty; at least one message is required)"),
    (
        "too many parts",
        with_fields(messages=[{"role": "user", "content": [{"type": "text", "text": "x"}] * 10_001}]),
        "too-large: messages[0].content (10001 parts > 10000)",
    ),
    (
        "too many messages",
        with_fields(messages=[{"role": "user", "content": "x"}] * 10_001),
        "too-large: messages (10001 > 10000)",
    ),
]


@pytest.mark.parametrize(
    ("line", "reason"), [(line, reason) for _, line, reason in CASES], ids=[c[0] for c in CASES]
)
def test_each_bad_line_is_rejected_with_its_reason(tmp_path: Path, line: bytes, reason: str) -> None:
    log = tmp_path / "log.jsonl"
    good_after = with_fields(request_id="req-2")
    log.write_bytes(with_fields() + b"\n" + line + b"\n" + good_after + b"\n")
    out = tmp_path / "rejected.jsonl"
    with RejectSink(out) as sink:
        reader = read_exchanges([log], rejects=sink)
        ids = [rid for batch in reader for rid in batch.column("request_id").to_pylist()]
    assert ids == ["req-1", "req-2"]  # the records around the bad one survive
    assert reader.stats.rejected == sink.total == 1
    entry = orjson.loads(out.read_bytes())
    assert entry["reason"].startswith(reason)
    assert (entry["file"], entry["line"]) == (str(log), 2)
    assert sink.counts[reason.partition(":")[0]] == 1
    if entry.get("record_encoding") == "base64":
        assert base64.b64decode(entry["record"]) == line
    elif entry.get("truncated"):  # over 64 KiB: a prefix and the original size
        assert line.decode().startswith(entry["record"]) and entry["size"] == len(line)
        assert len(entry["record"]) == 64 * 1024
    else:
        assert entry["record"] == line.decode()  # the raw line, so it can be fixed and replayed


def test_overlong_line_is_skipped_without_losing_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_sources, "MAX_LINE_BYTES", 1000)
    huge = with_fields(response_text="x" * 5000)
    log = tmp_path / "log.jsonl"
    log.write_bytes(huge + b"\n" + with_fields(request_id="req-2") + b"\n")
    sink = RejectSink(None)
    reader = read_exchanges([log], rejects=sink)
    assert [rid for batch in reader for rid in batch.column("request_id").to_pylist()] == ["req-2"]
    assert dict(sink.counts) == {"too-large": 1}


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    body = b"".join(
        with_fields(request_id=f"req-{i}", response_text=f"answer {i} " * 50) + b"\n" for i in range(200)
    )
    data = gzip.compress(body)
    log = tmp_path / "log.jsonl.gz"
    log.write_bytes(data[: len(data) * 2 // 3])
    sink = RejectSink(None)
    reader = read_exchanges([log], rejects=sink)
    n_rows = sum(batch.num_rows for batch in reader)
    assert 0 < n_rows < 200
    assert sink.counts["truncated-file"] == 1
    # The line cut in half by the truncation is refused as well, never half-read.
    assert reader.stats.records == reader.stats.accepted + reader.stats.rejected


def test_reject_sink_truncates_long_records_and_counts_only_without_a_path(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "rejected.jsonl"
    with RejectSink(out, max_record_bytes=100) as sink:
        sink.reject("a.jsonl", 3, "invalid-json: unexpected end of data", b'{"text": "' + "é".encode() * 200)
        sink.reject("b.parquet", 1, "missing-field: model", {"request_id": "r1", "tokens": b"\x00\x01"})
        sink.reject("c.jsonl", None, "truncated-file: unexpected end", None)
    first, second, third = (orjson.loads(line) for line in out.read_bytes().splitlines())
    assert first["truncated"] is True and first["size"] == 410
    assert len(first["record"].encode()) <= 100 and first["record"].startswith('{"text": "éé')
    assert second["record"] == {"request_id": "r1", "tokens": "AAE="}
    assert third == {
        "file": "c.jsonl",
        "line": None,
        "reason": "truncated-file: unexpected end",
        "record": None,
    }
    assert sink.total == 3 and dict(sink.counts) == {
        "invalid-json": 1,
        "missing-field": 1,
        "truncated-file": 1,
    }

    counting = RejectSink(None)
    counting.reject("a.jsonl", 1, "not-object: line is a JSON string", b'"x"')
    assert counting.total == 1 and counting.counts["not-object"] == 1


def test_an_empty_rejected_file_is_written_when_nothing_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(with_fields() + b"\n")
    with RejectSink(tmp_path / "rejected.jsonl") as sink:
        assert sum(batch.num_rows for batch in read_exchanges([log], rejects=sink)) == 1
    assert (tmp_path / "rejected.jsonl").read_bytes() == b""
