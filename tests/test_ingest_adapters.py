"""Adapters: gateway access logs and OpenAI Batch API files mapped onto the exchange contract."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from distillguard.ingest import Rejected, RejectSink, detect_format, exchange_row, read_exchanges
from distillguard.ingest.adapters import (
    BatchHalf,
    BatchJoiner,
    access_log_to_contract,
    openai_batch_to_contract,
)
from distillguard.schema import EXCHANGE_SCHEMA

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


def read_rows(paths: list[Path], **kwargs: Any) -> tuple[list[dict[str, Any]], RejectSink, Any]:
    sink = RejectSink(None)
    reader = read_exchanges(paths, rejects=sink, **kwargs)
    table = pa.Table.from_batches(list(reader), schema=EXCHANGE_SCHEMA)
    return table.to_pylist(), sink, reader.stats


def write_lines(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"request_id": "r", "ts": 1, "messages": []}, "contract"),
        ({"timestamp": "2026-01-01T00:00:00Z", "prompt": "hi"}, "access-log"),
        ({"custom_id": "t1", "method": "POST", "body": {}}, "openai-batch"),
        ({"custom_id": "t1", "response": {"body": {}}}, "openai-batch"),
        ({"something": "else"}, "contract"),
    ],
)
def test_detect_format(record: dict[str, Any], expected: str) -> None:
    assert detect_format(record) == expected


def test_access_log_fixture_maps_every_field() -> None:
    rows, sink, stats = read_rows([FIXTURES / "access_log.jsonl"])
    assert dict(stats.formats) == {"access-log": 1} and sink.total == 0
    first, second, third = rows
    assert first["request_id"] == "gw-8f2a"
    assert first["ts"] == datetime(2026, 2, 3, 9, 15, 2, tzinfo=UTC)
    assert first["messages"] == [
        {
            "role": "user",
            "content": "Grade the following answer against the rubric and output a score from 1 to 10.",
        }
    ]
    assert first["system"] == "You are a strict grader."
    assert (first["ip"], first["asn"], first["country"]) == ("198.51.100.23", 15169, "US")
    assert (first["tls_fingerprint"], first["payment_fingerprint"]) == (
        "e7d705a3286e19ea42f587b344ee6865",
        "pm-44c1",
    )
    assert (first["output_tokens"], first["max_tokens"], first["status"]) == (57, 256, 200)
    assert orjson.loads(first["extra"]) == {"upstream_response_time": "0.734"}

    # nginx $time_local, "-" for missing values, prompt/completion token variants, no request id.
    assert second["ts"] == datetime(2026, 2, 3, 9, 15, 7, tzinfo=UTC)
    assert second["country"] is None and second["asn"] is None
    assert (second["input_tokens"], second["output_tokens"]) == (14, 6)
    assert second["request_id"].startswith("h-") and len(second["request_id"]) == 34
    assert second["user_agent"] == "openai-python/1.55.0"

    # Epoch seconds with a fraction, `id` as request id, numbers and booleans written as strings.
    assert third["ts"] == datetime(2026, 2, 3, 9, 15, 10, 250000, tzinfo=UTC)
    assert third["request_id"] == "gw-8f2c"
    assert (third["temperature"], third["stream"]) == (0.9, False)


def test_synthesized_request_id_is_stable_across_runs(tmp_path: Path) -> None:
    log = write_lines(
        tmp_path / "gw.jsonl",
        [{"timestamp": 1770110110123, "account_id": "a", "model": "m", "prompt": f"p{i}"} for i in range(3)],
    )
    first, _, _ = read_rows([log])
    again, _, _ = read_rows([log])
    ids = [row["request_id"] for row in first]
    assert ids == [row["request_id"] for row in again] and len(set(ids)) == 3
    assert first[0]["ts"] == datetime(2026, 2, 3, 9, 15, 10, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-02-03T09:15:02.5+00:00", "2026-02-03T09:15:02.5+00:00"),  # RFC 3339: left to the validator
        ("03/Feb/2026:10:15:02 +0100", 1770110102000),
        ("1770110102.5", 1770110102500),
        (1770110102, 1770110102000),
        (1770110102500, 1770110102500),
    ],
)
def test_access_log_time_forms(ts: Any, expected: Any) -> None:
    mapped = access_log_to_contract({"timestamp": ts, "account_id": "a", "model": "m", "prompt": "x"}, None)
    assert mapped["ts"] == expected


def test_access_log_rejects_what_cannot_be_mapped(tmp_path: Path) -> None:
    log = write_lines(
        tmp_path / "gw.jsonl",
        [
            {"timestamp": "2026-02-03T09:15:02Z", "model": "m", "prompt": "no account"},
            {"timestamp": "2026-02-03T09:15:02Z", "account_id": "a", "model": "m"},
            {"timestamp": "Feb 3 2026", "account_id": "a", "model": "m", "prompt": "x"},
            {
                "timestamp": "2026-02-03T09:15:02Z",
                "account_id": "a",
                "model": "m",
                "prompt": "x",
                "asn_number": "AS-big",
            },
        ],
    )
    rows, sink, _ = read_rows([log], fmt="access-log")
    assert rows == []
    assert dict(sink.counts) == {"missing-field": 2, "bad-timestamp": 1, "wrong-type": 1}


def test_openai_batch_pairs_requests_with_outputs_in_either_order() -> None:
    for order in (
        [FIXTURES / "openai_batch_input.jsonl", FIXTURES / "openai_batch_output.jsonl"],
        [FIXTURES / "openai_batch_output.jsonl", FIXTURES / "openai_batch_input.jsonl"],
    ):
        rows, sink, stats = read_rows(order, default_account="acct-batch")
        by_id = {row["request_id"]: row for row in rows}
        assert sorted(by_id) == ["batch_req_aa01", "batch_req_aa02"]
        assert stats.joined == 3 and stats.records == stats.accepted + stats.rejected + stats.joined
        first = by_id["batch_req_aa01"]
        assert first["system"] == "You are a helpful math tutor."  # developer role -> system
        assert first["messages"] == [{"role": "user", "content": "Solve 3x + 5 = 20 and explain every step."}]
        assert first["model"] == "gpt-4o-mini"  # the model asked for, not the resolved snapshot
        assert first["ts"] == datetime.fromtimestamp(1770110200, tz=UTC)
        assert (first["input_tokens"], first["output_tokens"], first["reasoning_tokens"]) == (31, 24, 0)
        assert first["response_text"].startswith("Subtract 5") and first["stop_reason"] == "end_turn"  # finish_reason "stop"
        assert first["account_id"] == "acct-batch"
        assert orjson.loads(first["extra"]) == {"custom_id": "task-1", "url": "/v1/chat/completions"}
        second = by_id["batch_req_aa02"]
        assert second["account_id"] == "acct-meta-7"  # metadata wins over the default
        assert (second["n_images"], second["tools"], second["max_tokens"]) == (1, ["get_weather"], 300)
        assert dict(sink.counts) == {"unmappable": 1}  # task-3 expired: no time to give it


def test_openai_batch_halves_alone(tmp_path: Path) -> None:
    rows, sink, _ = read_rows([FIXTURES / "openai_batch_output.jsonl"], default_account="acct-batch")
    # Outputs alone have no prompt: CONTRACT requires messages, so they are refused with the reason.
    assert rows == [] and sink.counts["bad-value"] == 2
    assert sink.counts["unmappable"] == 1

    rows, sink, _ = read_rows([FIXTURES / "openai_batch_input.jsonl"], default_account="acct-batch")
    assert rows == [] and sink.counts["unmappable"] == 3  # requests alone carry no time

    timed = write_lines(
        tmp_path / "requests.jsonl",
        [
            {
                "custom_id": "t9",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "m",
                    "messages": [{"role": "user", "content": "hi"}],
                    "metadata": {"account_id": "acct-5", "ts": "2026-02-03T09:00:00Z"},
                },
            }
        ],
    )
    rows, sink, _ = read_rows([timed])
    assert [(row["request_id"], row["account_id"]) for row in rows] == [("t9", "acct-5")] and sink.total == 0


def test_openai_batch_unmappable_reasons(tmp_path: Path) -> None:
    out = tmp_path / "rejected.jsonl"
    log = write_lines(
        tmp_path / "batch_output.jsonl",
        [
            {
                "id": "b1",
                "custom_id": "t1",
                "response": {"status_code": 200, "body": {"created": 1770110200}},
            },
            {"id": "b2", "response": {"status_code": 200, "body": {"created": 1770110200}}},
            {"custom_id": "t3", "method": "POST"},
        ],
    )
    with RejectSink(out) as sink:
        list(read_exchanges([log], rejects=sink, fmt="openai-batch"))
    reasons = [orjson.loads(line)["reason"] for line in out.read_bytes().splitlines()]
    assert sorted(reasons) == [
        "unmappable: account_id (no metadata.account_id and no default account given)",
        "unmappable: custom_id (missing in an OpenAI batch line)",
        "unmappable: line is neither a batch request (body) nor an output (response)",
    ]


def test_batch_joiner_releases_oldest_halves_past_its_memory_bound() -> None:
    joiner = BatchJoiner(max_pending_bytes=250)
    released = []
    for i in range(5):
        released += list(joiner.add(f"t{i}", BatchHalf(False, b"x" * 100, "in.jsonl", i + 1)))
    assert [request.line for request, output in released if request is not None and output is None] == [
        1,
        2,
        3,
    ]
    pairs = list(joiner.add("t4", BatchHalf(True, b"y" * 10, "out.jsonl", 1)))
    assert len(pairs) == 1 and pairs[0][0] is not None and pairs[0][0].line == 5
    assert [(request.line if request else None, output) for request, output in joiner.drain()] == [(4, None)]
    assert not list(joiner.drain())


@pytest.mark.parametrize("when", [1e306, float("nan"), float("-inf"), "1e400", "nan", -1e20])
def test_absurd_numeric_times_are_refused_not_crashing(when: Any) -> None:
    access = access_log_to_contract({"timestamp": when, "account_id": "a", "model": "m", "prompt": "x"}, None)
    with pytest.raises(Rejected, match=r"^(bad-timestamp|wrong-type): ts"):
        exchange_row(access)
    output = {"id": "b1", "custom_id": "t1", "response": {"status_code": 200, "body": {"created": when}}}
    with pytest.raises(Rejected, match=r"^(bad-timestamp|wrong-type|unmappable): ts"):
        exchange_row(openai_batch_to_contract(None, output, "acct-1"))
