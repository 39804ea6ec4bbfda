"""One reader per wire format: ingest's OpenAI Batch adapter and the gateway read a body alike."""

from __future__ import annotations

import orjson
import pytest

from distillguard.gateway.translate import OPENAI, RequestError, request_record, response_usage
from distillguard.ingest.adapters import openai_batch_to_contract
from distillguard.ingest.normalise import Rejected

BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "developer", "content": "Be terse."},
                 {"role": "user", "content": [{"type": "text", "text": "Write out your reasoning."}]}],
    "max_tokens": 900, "max_completion_tokens": 700, "temperature": 0.3,
    "tools": [{"type": "function", "function": {"name": "search"}}],
}
OUTPUT = {"id": "batch_req_1", "custom_id": "c1", "response": {"status_code": 200, "body": {
    "created": 1770110200, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Step 1"}, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 700,
              "completion_tokens_details": {"reasoning_tokens": 40}}}}}


def test_a_batch_line_and_a_live_request_read_the_same_fields() -> None:
    batch = openai_batch_to_contract({"custom_id": "c1", "body": BODY}, OUTPUT, "acct-1")
    live = request_record(OPENAI, BODY, account_id="acct-1")
    for field in ("model", "messages", "max_tokens", "temperature", "tools"):
        assert batch[field] == live[field], field
    assert live["max_tokens"] == 700  # max_completion_tokens, the current name, wins in both
    usage = response_usage(OPENAI, orjson.dumps(OUTPUT["response"]["body"])).as_fields()
    for field in ("input_tokens", "output_tokens", "reasoning_tokens", "stop_reason", "response_text"):
        assert batch[field] == usage[field], field
    # finish_reason "length" is the contract's max_tokens stop, whichever path read it.
    assert batch["stop_reason"] == usage["stop_reason"] == "max_tokens"


def test_a_body_the_gateway_refuses_is_a_refused_batch_line_naming_the_same_field() -> None:
    bad = {**BODY, "messages": [{"role": "critic", "content": "x"}]}
    with pytest.raises(RequestError) as live:
        request_record(OPENAI, bad)
    with pytest.raises(Rejected) as batch:
        openai_batch_to_contract({"custom_id": "c1", "body": bad}, OUTPUT, "acct-1")
    assert live.value.param == batch.value.field == "messages[0].role"
