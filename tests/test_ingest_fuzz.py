"""Property tests: malformed input never breaks reading and never costs a good record.

Each generated log interleaves valid contract records with malformed lines (random bytes,
truncated JSON, a wrong-typed field). Whatever the mix, reading must not raise, every non-blank
line must be either accepted or rejected, every malformed line rejected and every valid record
delivered, in order.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distillguard.ingest import Rejected, RejectSink, exchange_row, read_exchanges
from distillguard.ingest.adapters import access_log_to_contract, openai_batch_to_contract

REASON_CODES = {"missing-field", "wrong-type", "bad-value", "bad-timestamp", "out-of-range", "too-large"}

# For each field, values that are wrong for it, whatever else the record holds.
WRONG_VALUES: dict[str, list[Any]] = {
    "request_id": [12, [], {"a": 1}, True, None, ""],
    "account_id": [12, ["a"], False, None],
    "model": [1.5, {"name": "m"}, None],
    "ts": [[], {"a": 1}, True, 1.5e12, "yesterday", "2026-02-03T09:15:02", 1770110103, -1, None],
    "messages": [
        "hello",
        {"role": "user"},
        [1, 2],
        [{"role": "robot", "content": "x"}],
        [{"role": "user", "content": 5}],
        [{"role": "user", "content": [{"type": "text"}]}],
        [{"role": ["user"], "content": "x"}],
        [{"role": "user", "content": [{"type": {"kind": "text"}, "text": "x"}]}],
        None,
    ],
    "system": [12, [1], {"text": "x"}],
    "ip": [12, [], True],
    "user_agent": [0, {"ua": "x"}],
    "asn": ["AS1", 1.5, True, -1, 2**40],
    "max_tokens": ["12", 1.0, False, -5, 10**9],
    "output_tokens": ["many", [], -1],
    "status": ["200", 99, 600],
    "temperature": ["hot", True, [], -0.1, 1000],
    "tools": ["read_file", [1], {"a": 1}, [None]],
    "stream": ["yes", 1],
}
WRONG_FIELD_VALUES = [(field, value) for field, values in WRONG_VALUES.items() for value in values]

texts = st.text(max_size=40)
parts = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, texts),
    st.just({"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}),
)
messages = st.lists(
    st.builds(
        lambda role, content: {"role": role, "content": content},
        st.sampled_from(["system", "user", "assistant", "tool"]),
        st.one_of(texts, st.lists(parts, max_size=3), st.none()),
    ),
    min_size=1,  # CONTRACT requires messages: an empty list is refused
    max_size=4,
)
valid_bodies = st.fixed_dictionaries(
    {
        "ts": st.one_of(
            st.integers(946_684_800_000, 4_102_444_799_999),
            st.datetimes(datetime(2001, 1, 1), datetime(2098, 12, 31), timezones=st.timezones()).map(
                lambda d: d.isoformat()
            ),
        ),
        "account_id": texts.filter(bool),
        "model": texts.filter(bool),
        "messages": messages,
    },
    optional={
        "system": texts,
        "asn": st.integers(0, 4_294_967_295),
        "temperature": st.floats(0, 2),
        "tools": st.lists(texts, max_size=3),
        "stream": st.booleans(),
        "output_tokens": st.integers(0, 10_000_000),
        "status": st.integers(100, 599),
        "unknown_field": st.dictionaries(texts, st.integers(-(2**63), 2**63 - 1), max_size=2),
    },
)


@st.composite
def logs(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """(kind, line) pairs: kind is "valid", "blank" or "bad".

    The first line is always valid: a file whose very first bytes are a compression magic number
    is refused as a whole (an input error), which is not what this property is about.
    """
    lines: list[tuple[str, bytes]] = [("valid", orjson.dumps({"request_id": "first", **draw(valid_bodies)}))]
    for i in range(draw(st.integers(0, 12))):
        body = {"request_id": f"req-{i}", **draw(valid_bodies)}
        encoded = orjson.dumps(body)
        kind = draw(st.sampled_from(["valid", "valid", "bytes", "truncated", "wrong-type"]))
        if kind == "valid":
            lines.append(("valid", encoded))
        elif kind == "truncated":
            lines.append(("bad", encoded[: draw(st.integers(1, len(encoded) - 1))]))
        elif kind == "wrong-type":
            field, value = draw(st.sampled_from(WRONG_FIELD_VALUES))
            lines.append(("bad", orjson.dumps({**body, field: value})))
        else:
            raw = draw(st.binary(max_size=60)).replace(b"\n", b" ")
            lines.append(("blank" if not raw.strip() else "bad", raw))
    return lines


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs())
def test_malformed_lines_never_break_reading(lines: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.jsonl"
        log.write_bytes(b"\n".join(line for _, line in lines) + b"\n")
        sink = RejectSink(Path(tmp) / "rejected.jsonl")
        with sink:
            reader = read_exchanges([log], rejects=sink, batch_size=5)
            ids = [rid for batch in reader for rid in batch.column("request_id").to_pylist()]
        stats = reader.stats
        n_lines = sum(kind != "blank" for kind, _ in lines)
        assert stats.records == n_lines == stats.accepted + stats.rejected
        assert stats.rejected == sink.total == sum(kind == "bad" for kind, _ in lines)
        valid_ids = [orjson.loads(line)["request_id"] for kind, line in lines if kind == "valid"]
        assert ids == valid_ids
        rejected_lines = [
            orjson.loads(entry)["line"] for entry in (Path(tmp) / "rejected.jsonl").read_bytes().splitlines()
        ]
        numbered = [number for number, (kind, _) in enumerate(lines, start=1) if kind == "bad"]
        assert rejected_lines == numbered


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "timestamp",
                "account_id",
                "model",
                "prompt",
                "asn_number",
                "token_count",
                "status",
                "temperature",
                "stream",
                "ip_address",
                "id",
                "messages",
            ]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**63), 2**63 - 1),
            st.floats(),
            st.text(max_size=12),
            st.lists(st.integers(-(2**63), 2**63 - 1), max_size=2),
        ),
    )
)
def test_access_log_values_are_mapped_or_rejected_never_crash(record: dict[str, Any]) -> None:
    mapped = access_log_to_contract(record, orjson.dumps(record))
    assert "request_id" in mapped  # synthesized when the line has none
    try:
        row = exchange_row(mapped)
    except Rejected as exc:
        assert exc.code in REASON_CODES
    else:
        assert row[0] == mapped["request_id"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
batch_bodies = st.fixed_dictionaries(
    {},
    optional={
        "messages": st.one_of(
            json_values, st.lists(st.fixed_dictionaries({"role": json_values, "content": json_values}))
        ),
        "model": json_values,
        "prompt": json_values,
        "tools": json_values,
        "max_tokens": json_values,
        "metadata": st.one_of(
            json_values, st.fixed_dictionaries({"account_id": json_values, "ts": json_values})
        ),
    },
)
batch_outputs = st.fixed_dictionaries(
    {"custom_id": st.just("t1")},
    optional={
        "id": json_values,
        "error": json_values,
        "response": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {"status_code": json_values},
                optional={
                    "body": st.one_of(
                        json_values,
                        st.fixed_dictionaries(
                            {},
                            optional={"created": json_values, "usage": json_values, "choices": json_values},
                        ),
                    )
                },
            ),
        ),
    },
)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.fixed_dictionaries({"custom_id": st.just("t1"), "body": batch_bodies})),
    batch_outputs,
)
def test_openai_batch_values_are_mapped_or_rejected_never_crash(request: Any, output: dict[str, Any]) -> None:
    try:
        row = exchange_row(openai_batch_to_contract(request, output, "acct-default"))
    except Rejected as exc:
        assert exc.code in {*REASON_CODES, "unmappable"}
    else:
        assert row[0]  # a mapped exchange always has a request id
