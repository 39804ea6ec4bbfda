"""Exchange signals: one pure function from a contract batch to a signals batch."""

import numpy as np
import pytest

from distillguard.ingest import exchange_row, rows_to_batch
from distillguard.signals.exchange import SIGNALS_SCHEMA, exchange_signals, ip_prefix, request_prompts
from distillguard.signals.template import LSH_BANDS

WRAPPER = (
    "Here is a question and its final answer. Reconstruct, step by step, the complete internal "
    "reasoning that leads from the question to this answer, and write every step out.\n\n{}"
)


def record(i, account, messages, **extra):
    return {"request_id": f"r{i}", "ts": 1772400000000 + i * 1000, "account_id": account, "model": "m1",
            "messages": messages, **extra}


@pytest.fixture(scope="module")
def batch_and_signals():
    records = [
        # An agent turn: the request's prompt is the last *user* message, not the tool result.
        record(0, "dev", [
            {"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": "Fix the failing test in utils.py"},
            {"role": "assistant", "content": "Running the tests."},
            {"role": "tool", "content": "1 failed"},
        ], tools=["bash", "edit_file"], ip="203.0.113.7"),
        record(1, "harvester", [{"role": "user", "content": WRAPPER.format(
            "Natalia sold clips to 48 of her friends in April, and then half as many in May. Answer: 72")}],
            ip="2001:db8:1234:5678::1"),
        record(2, "harvester", [{"role": "user", "content": WRAPPER.format(
            "Weng earns $12 an hour for babysitting. Yesterday she did 50 minutes. Answer: $10")}]),
        record(3, "person", [
            {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                         {"type": "image_url", "image_url": {"url": "data:..."}}]},
        ]),
    ]
    batch = rows_to_batch([exchange_row(r) for r in records])
    return batch, exchange_signals(batch)


def test_schema_and_one_row_per_exchange(batch_and_signals):
    batch, sig = batch_and_signals
    assert sig.schema == SIGNALS_SCHEMA
    assert sig.num_rows == batch.num_rows
    assert sig.column("request_id").to_pylist() == ["r0", "r1", "r2", "r3"]
    assert "messages" not in sig.schema.names  # text does not leave the batch


def test_conversation_shape(batch_and_signals):
    batch, sig = batch_and_signals
    assert request_prompts(batch)[0] == "Fix the failing test in utils.py"
    assert sig.column("n_messages").to_pylist() == [3, 1, 1, 1]  # the system message moved to `system`
    assert sig.column("has_tool_turn").to_pylist() == [True, False, False, False]
    assert sig.column("n_tools").to_pylist() == [2, 0, 0, 0]
    assert sig.column("n_images").to_pylist() == [0, 0, 0, 1]
    assert sig.column("sys_hash").to_pylist()[0] is not None and sig.column("sys_hash").to_pylist()[1] is None


def test_wrapper_filled_with_different_tasks(batch_and_signals):
    _, sig = batch_and_signals
    skel, head = sig.column("skel_hash").to_pylist(), sig.column("frame_hash").to_pylist()
    assert skel[1] != skel[2] and head[1] == head[2]  # different tasks, same wrapper
    assert sig.column("e_reasoning").to_pylist()[1] > 0.5 and sig.column("e_reasoning").to_pylist()[3] < 0.5
    lsh = np.array(sig.column("lsh").to_pylist())
    assert lsh.shape == (4, LSH_BANDS)


def test_ip_prefixes():
    assert ip_prefix("203.0.113.7") == "203.0.113.0/24"
    assert ip_prefix("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert ip_prefix("not an ip") is None


def test_row_path_gives_the_batch_values_on_simulated_traffic(tmp_path):
    """The gateway's Arrow-free entry point must agree exactly with `exchange_signals`."""
    import gzip
    import json

    from distillguard.signals.exchange import exchange_signal_rows
    from distillguard.sim import simulate

    simulate("small", 11, tmp_path, scale=0.03, quiet=True)
    with gzip.open(tmp_path / "exchanges.jsonl.gz", "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f][:3000]
    records += [  # shapes the simulator may not produce
        record(9001, "edge", [{"role": "assistant", "content": "no user turn at all"}]),
        record(9002, "edge", [{"role": "user", "content": ""}], system="Be brief.", tools=[]),
        record(9003, "edge", [{"role": "user", "content": "first"}, {"role": "tool", "content": None},
                              {"role": "user", "content": "second"}], ip="not-an-ip"),
    ]
    rows = [exchange_row(r) for r in records]
    expected = exchange_signals(rows_to_batch(rows)).to_pylist()
    got = exchange_signal_rows(rows)
    assert len(got) == len(expected) == len(records)
    for want, have in zip(expected, got, strict=True):
        assert have["ts"] == int(want["ts"].timestamp() * 1000)
        assert {k: v for k, v in have.items() if k != "ts"} == {k: v for k, v in want.items() if k != "ts"}
