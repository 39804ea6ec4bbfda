"""Reading exchange logs: every input format, folders and globs, normalisation, side tables."""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillguard.errors import InputError
from distillguard.ingest import (
    Rejected,
    RejectSink,
    exchange_row,
    expand_inputs,
    input_size,
    read_accounts,
    read_exchanges,
    read_releases,
)
from distillguard.ingest.normalise import FIELD_ORDER
from distillguard.schema import ACCOUNTS_SCHEMA, EXCHANGE_SCHEMA, RELEASES_SCHEMA

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


def contract_record(i: int, **overrides: Any) -> dict[str, Any]:
    record = {
        "request_id": f"req-{i:05d}",
        "ts": f"2026-02-03T09:{i % 60:02d}:05.250Z",
        "account_id": f"acct-{i % 7}",
        "model": "frontier-2",
        "messages": [{"role": "user", "content": f"Solve problem {i} and think step by step."}],
        "ip": f"203.0.113.{i % 250}",
        "output_tokens": 100 + i,
    }
    record.update(overrides)
    return record


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def read_all(paths: list[str | Path], **kwargs: Any) -> tuple[pa.Table, Any, RejectSink]:
    sink = RejectSink(None)
    reader = read_exchanges(paths, rejects=sink, **kwargs)
    table = pa.Table.from_batches(list(reader), schema=EXCHANGE_SCHEMA)
    return table, reader.stats, sink


def test_contract_fixture_is_normalised() -> None:
    table, stats, sink = read_all([FIXTURES / "contract.jsonl"])
    assert table.schema == EXCHANGE_SCHEMA
    rows = {row["request_id"]: row for row in table.to_pylist()}
    assert stats.records == stats.accepted == 4 and sink.total == 0

    first = rows["req-0001"]
    assert first["ts"] == datetime(2026, 2, 3, 9, 15, 2, 481000, tzinfo=UTC)
    assert first["asn"] == 64501 and first["temperature"] == 0.2 and first["stream"] is False
    assert first["system"].startswith("You are an expert data analyst")

    # Leading system messages move into `system`, joined by a blank line.
    second = rows["req-0002"]
    assert second["system"] == "You are a coding assistant.\n\nAnswer in Python."
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["ts"] == datetime.fromtimestamp(1770110103, tz=UTC)
    assert second["tools"] == ["run_python", "read_file"]

    # Text parts are joined, other parts counted; the +01:00 offset becomes UTC; unknown fields kept.
    third = rows["req-0003"]
    assert third["messages"] == [{"role": "user", "content": "What is in this chart?\nGive the trend."}]
    assert third["n_images"] == 2
    assert third["ts"] == datetime(2026, 2, 3, 9, 15, 3, tzinfo=UTC)
    assert orjson.loads(third["extra"]) == {
        "campaign_hint": "none",
        "client": {"sdk": "anthropic-python", "version": "0.40.0"},
    }

    # Anthropic-style system blocks, tool_use parts (not images) and null content.
    fourth = rows["req-0004"]
    assert fourth["system"] == "You are an autonomous software agent."
    assert fourth["n_images"] == 0
    assert fourth["messages"][-1] == {"role": "assistant", "content": ""}
    assert fourth["extra"] is None


def test_contract_field_table_follows_the_schema() -> None:
    derived = ("n_images", "extra")
    assert tuple(name for name in EXCHANGE_SCHEMA.names if name not in derived) == FIELD_ORDER
    row = exchange_row(contract_record(1))
    assert len(row) == len(EXCHANGE_SCHEMA) and row[:4] == (
        "req-00001",
        1770109265250,
        "acct-1",
        "frontier-2",
    )


def test_nulls_mean_absent_and_only_unknown_fields_go_to_extra() -> None:
    with_nulls = exchange_row(contract_record(1, ip=None, asn=None, system=None))
    assert with_nulls[EXCHANGE_SCHEMA.get_field_index("extra")] is None
    assert with_nulls[EXCHANGE_SCHEMA.get_field_index("ip")] is None
    mixed = exchange_row(contract_record(2, ip=None, region="eu-west", retries=2))
    assert orjson.loads(mixed[EXCHANGE_SCHEMA.get_field_index("extra")]) == {
        "region": "eu-west",
        "retries": 2,
    }
    # The same keys with a value of another type is another shape, checked again.
    with pytest.raises(Rejected, match="wrong-type: ip"):
        exchange_row(contract_record(3, ip=None, region="eu-west", retries=2) | {"ip": 7})


def test_gzip_and_parquet_read_like_jsonl(tmp_path: Path) -> None:
    records = [contract_record(i) for i in range(50)]
    plain = write_jsonl(tmp_path / "log.jsonl", records)
    with gzip.open(tmp_path / "log.jsonl.gz", "wb") as fh:
        fh.write(plain.read_bytes())
    parquet_rows = [
        {**r, "ts": datetime.fromisoformat(r["ts"]), "tools": ["search"] if i % 2 else None}
        for i, r in enumerate(records)
    ]
    pq.write_table(pa.Table.from_pylist(parquet_rows), tmp_path / "log.parquet", row_group_size=16)

    expected, _, _ = read_all([plain])
    for name in ("log.jsonl.gz", "log.parquet"):
        table, stats, sink = read_all([tmp_path / name], batch_size=7)
        assert sink.total == 0 and stats.accepted == 50
        assert table.column("request_id").to_pylist() == expected.column("request_id").to_pylist()
        assert table.column("ts").equals(expected.column("ts"))
        assert table.column("messages").equals(expected.column("messages"))
        assert table.column("output_tokens").equals(expected.column("output_tokens"))
    parquet_table, _, _ = read_all([tmp_path / "log.parquet"])
    assert parquet_table.column("tools").to_pylist()[:3] == [None, ["search"], None]


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    data = gzip.compress(b"".join(orjson.dumps(contract_record(i)) + b"\n" for i in range(3)))
    (tmp_path / "export.log").write_bytes(data)
    table, _, sink = read_all([tmp_path / "export.log"])
    assert table.num_rows == 3 and sink.total == 0


def test_folders_are_read_recursively_and_globs_expand(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".cache").mkdir()
    write_jsonl(tmp_path / "a" / "day1.jsonl", [contract_record(i) for i in range(3)])
    write_jsonl(tmp_path / "a" / "b" / "day2.jsonl", [contract_record(i) for i in range(3, 5)])
    write_jsonl(tmp_path / ".cache" / "old.jsonl", [contract_record(99)])
    (tmp_path / "a" / "notes.txt").write_text("not a log")

    files = expand_inputs([tmp_path])
    assert [p.name for p in files] == ["day2.jsonl", "day1.jsonl"]  # sorted by path: a/b/ before a/day1
    table, stats, _ = read_all([tmp_path])
    assert table.num_rows == 5 and stats.files == 2

    assert [p.name for p in expand_inputs([str(tmp_path / "a" / "*.jsonl")])] == ["day1.jsonl"]
    assert len(expand_inputs([str(tmp_path / "**" / "*.jsonl")])) == 2
    # The same file named twice is read once.
    assert len(expand_inputs([tmp_path / "a" / "day1.jsonl", str(tmp_path / "a" / "day1.jsonl")])) == 1
    assert input_size([tmp_path]) == sum(p.stat().st_size for p in files)


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda d: [d / "missing.jsonl"], "no such file: "),
        (lambda d: [str(d / "*.nothing")], "no file matches: "),
        (lambda d: [d], "no log files"),
        (lambda d: [], "no input given"),
    ],
)
def test_unusable_inputs_raise_one_line_errors(tmp_path: Path, make_input: Any, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        expand_inputs(make_input(tmp_path))
    assert "\n" not in str(info.value)


def test_unknown_format_and_unsupported_files_are_input_errors(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", [contract_record(1)])
    with pytest.raises(InputError, match="unknown format: csv"):
        read_exchanges([log], fmt="csv", rejects=RejectSink(None))
    (tmp_path / "log.jsonl.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 20)
    with pytest.raises(InputError, match="zstd"):
        list(read_exchanges([tmp_path / "log.jsonl.zst"], rejects=RejectSink(None)))
    (tmp_path / "array.json").write_text('[\n  {"request_id": "a"}\n]\n')
    with pytest.raises(InputError, match="JSON array"):
        list(read_exchanges([tmp_path / "array.json"], rejects=RejectSink(None)))
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="cannot read Parquet file"):
        list(read_exchanges([tmp_path / "broken.parquet"], rejects=RejectSink(None)))


def test_progress_reports_every_input_byte(tmp_path: Path) -> None:
    records = [contract_record(i) for i in range(9000)]  # more than one progress step
    plain = write_jsonl(tmp_path / "a.jsonl", records)
    with gzip.open(tmp_path / "b.jsonl.gz", "wb") as fh:
        fh.write(plain.read_bytes())
    pq.write_table(pa.Table.from_pylist(records[:100]), tmp_path / "c.parquet", row_group_size=10)
    advanced: list[int] = []
    table, _, _ = read_all([tmp_path], on_progress=advanced.append)
    assert table.num_rows == 18100
    assert len(advanced) > 3 and all(n >= 0 for n in advanced)
    assert sum(advanced) == input_size([tmp_path])


def test_batches_respect_batch_size(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", [contract_record(i) for i in range(25)])
    sizes = [batch.num_rows for batch in read_exchanges([log], rejects=RejectSink(None), batch_size=10)]
    assert sizes == [10, 10, 5]


def test_blank_lines_crlf_and_bom_are_tolerated(tmp_path: Path) -> None:
    body = (
        b"\xef\xbb\xbf"
        + orjson.dumps(contract_record(1))
        + b"\r\n\r\n   \n"
        + orjson.dumps(contract_record(2))
    )
    (tmp_path / "log.jsonl").write_bytes(body)  # no newline at the end either
    table, stats, sink = read_all([tmp_path / "log.jsonl"])
    assert table.column("request_id").to_pylist() == ["req-00001", "req-00002"]
    assert stats.blank == 2 and sink.total == 0


def test_accounts_and_releases_tables(tmp_path: Path) -> None:
    accounts = write_jsonl(
        tmp_path / "accounts.jsonl",
        [
            {
                "account_id": "acct-1",
                "created_at": "2025-11-02T08:00:00Z",
                "tier": "education",
                "verified": False,
                "email_domain": "uni.example.edu",
                "country": "DE",
                "payment_fingerprint": "pf-1",
                "crm_id": 77,
            },
            {"account_id": "acct-2", "tier": "enterprise"},
            {"account_id": "acct-1", "tier": "paid"},
            {"tier": "free"},
            {"account_id": "acct-3", "verified": "yes"},
        ],
    )
    sink = RejectSink(None)
    table = read_accounts(accounts, sink)
    assert table.schema == ACCOUNTS_SCHEMA
    assert table.column("account_id").to_pylist() == ["acct-1", "acct-2"]
    assert table.column("created_at")[0].as_py() == datetime(2025, 11, 2, 8, tzinfo=UTC)
    assert table.column("tier").to_pylist() == ["education", "enterprise"]
    assert dict(sink.counts) == {"duplicate-key": 1, "missing-field": 1, "wrong-type": 1}

    releases = write_jsonl(
        tmp_path / "releases.jsonl",
        [
            {"model": "frontier-2", "released_at": 1767225600000},
            {"model": "frontier-3", "released_at": "soon"},
        ],
    )
    sink = RejectSink(None)
    table = read_releases(releases, sink)
    assert table.schema == RELEASES_SCHEMA
    assert table.to_pylist() == [{"model": "frontier-2", "released_at": datetime(2026, 1, 1, tzinfo=UTC)}]
    assert dict(sink.counts) == {"bad-timestamp": 1}


def test_fixture_folder_mixes_formats(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES, tmp_path / "logs")
    table, stats, sink = read_all([tmp_path / "logs"], default_account="acct-batch")
    assert dict(stats.formats) == {"contract": 1, "access-log": 1, "openai-batch": 2}
    assert table.num_rows == 9 and sink.total == 1
    assert stats.records == stats.accepted + stats.rejected + stats.joined
