"""The gateway, end to end: official SDKs -> gateway -> stand-in upstream, on real servers.

A scripted detector returns a fixed decision per account, so every enforcement path is exercised;
the stand-in echoes what it received (`x-standin-max-tokens`, `x-standin-reasoning`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anthropic
import httpx
import numpy as np
import openai
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families

from distillguard.errors import InputError, StateUnavailableError
from distillguard.gateway.app import (
    Coalescer,
    GatewayConfig,
    client_ip,
    create_app,
    new_metrics,
    parse_networks,
    run_until_disconnect,
    upstream_headers,
)
from distillguard.gateway.keys import KeyMap, RedactingFilter, extract_api_key, identify, redact
from distillguard.gateway.standin import create_standin_app, reply_words
from distillguard.gateway.translate import (
    ANTHROPIC,
    OPENAI,
    ReasoningStripper,
    RequestError,
    SSEDecoder,
    StreamUsage,
    degrade_request,
    request_record,
)
from distillguard.policy.decision import Decision, DegradeSpec
from gateway_helpers import ScriptedDetector, ServerThread

KEYS = {
    "allow": "sk-test-allow-7f3a9c0d2b11e5",
    "block": "sk-test-block-41d2aa90c3f7b8",
    "throttle": "sk-test-throttle-0b9e77c1d2a4",
    "decline": "sk-test-decline-5c3f0e18a9d7",
    "degrade": "sk-test-degrade-93ab4e6f7c21",
    "tokens-left": "sk-test-tokensleft-2f8d1c0b7a",
}
UNKNOWN_KEY = "opaque-key-not-in-table-8c1f2e"
DECISIONS = {
    # Scores computed with numpy arrive as numpy floats: the audit must still serialise them.
    "acct-block": Decision(action="block", rule="cluster-takedown", reasons=("r_template_shared",),
                           risk=np.float64(0.97)),
    "acct-throttle": Decision(action="throttle", rule="throttle-flagged", risk=0.6, retry_after=2.2),
    "acct-decline": Decision(action="degrade", rule="reasoning-extraction", decline=True, degrade=DegradeSpec()),
    "acct-degrade": Decision(action="degrade", rule="degrade-flagged", risk=0.8,
                             degrade=DegradeSpec(strip_reasoning=True, max_tokens=5)),
    "acct-tokens-left": Decision(action="throttle", rule="throttle-flagged", risk=0.6),
}
REQUEST_ID = "x-distillguard-request-id"
USER = [{"role": "user", "content": "Explain the pigeonhole principle."}]


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    with ServerThread(create_standin_app()) as server:
        yield server


@pytest.fixture(scope="module")
def accounts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("accounts") / "accounts.jsonl"
    rows = [{"account_id": f"acct-{name}", "tier": "paid", "api_key_sha256": sha(key)} for name, key in KEYS.items()]
    rows.append({"account_id": "acct-nokeys", "tier": "free"})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _gateway(upstream: ServerThread, tmp: Path, **options: Any) -> Iterator[SimpleNamespace]:
    detector = ScriptedDetector(DECISIONS)
    audit = tmp / "audit.jsonl"
    config = GatewayConfig(upstream=upstream.url, audit_path=audit, **options)
    with ServerThread(create_app(config, detector)) as server:
        yield SimpleNamespace(url=server.url, detector=detector, audit=audit)


@pytest.fixture(scope="module")
def gateway(upstream: ServerThread, accounts_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """Trusts X-Forwarded-For from 127.0.0.1 and 10/8, maps keys through the accounts table."""
    yield from _gateway(upstream, tmp_path_factory.mktemp("gw"), keymap=KeyMap.load(accounts_file),
                        trusted_proxies=("127.0.0.1/32", "10.0.0.0/8"), upstream_timeout=10)


@pytest.fixture(scope="module")
def strict(upstream: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """No trusted proxies, no accounts table, a 4 KiB body limit and a 0.5 s upstream timeout."""
    yield from _gateway(upstream, tmp_path_factory.mktemp("strict"), max_body_bytes=4096, upstream_timeout=0.5)


def oai(url: str, key: str = KEYS["allow"]) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=10)


def ant(url: str, key: str = KEYS["allow"]) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=10)


def post(url: str, api: str, body: Any, key: str | None = KEYS["allow"], **kwargs: Any) -> httpx.Response:
    path = "/v1/chat/completions" if api == OPENAI else "/v1/messages"
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers = {**({"authorization": f"Bearer {key}"} if api == OPENAI else {"x-api-key": key}), **headers}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url + path, content=content, headers={"content-type": "application/json", **headers},
                      timeout=kwargs.pop("timeout", 10), **kwargs)


def assert_error_format(response: httpx.Response, api: str, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    if api == OPENAI:
        assert set(body) == {"error"}
        assert set(body["error"]) == {"message", "type", "param", "code"}
        return body["error"]
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    return body["error"]


def anthropic_body(**extra: Any) -> dict[str, Any]:
    return {"model": "standin-1", "max_tokens": 200, "messages": USER, **extra}


def openai_body(**extra: Any) -> dict[str, Any]:
    return {"model": "standin-1", "messages": USER, **extra}


# ---------------------------------------------------------------- pass-through with the official SDKs


def test_openai_sdk_whole_response_passes_through(gateway: SimpleNamespace, upstream: ServerThread) -> None:
    direct = oai(upstream.url).chat.completions.create(model="standin-1", messages=USER)
    raw = oai(gateway.url).chat.completions.with_raw_response.create(model="standin-1", messages=USER)
    proxied = raw.parse()
    assert proxied.choices[0].message.content == direct.choices[0].message.content
    assert proxied.choices[0].finish_reason == "stop"
    assert proxied.usage == direct.usage
    done = gateway.detector.completion(raw.headers[REQUEST_ID])
    assert done["account_id"] == "acct-allow" and done["api_key_id"] == "sha256:" + sha(KEYS["allow"])[:16]
    assert done["status"] == 200 and done["stop_reason"] == "end_turn" and done["stream"] is False
    assert (done["input_tokens"], done["output_tokens"]) == (direct.usage.prompt_tokens, direct.usage.completion_tokens)
    assert done["response_text"] == direct.choices[0].message.content
    assert done["messages"] == USER and done["model"] == "standin-1" and isinstance(done["ts"], int)


def test_whole_response_bytes_status_and_type_are_intact(gateway: SimpleNamespace, upstream: ServerThread) -> None:
    body = openai_body(max_tokens=7)
    direct, proxied = post(upstream.url, OPENAI, body), post(gateway.url, OPENAI, body)
    # The stand-in's ids are derived from the body; only its clock may differ between the two calls.
    created = re.compile(rb'"created":\d+')
    assert created.sub(b"", proxied.content) == created.sub(b"", direct.content)
    assert proxied.status_code == direct.status_code == 200
    assert proxied.headers["content-type"] == direct.headers["content-type"]
    assert proxied.headers["x-standin-max-tokens"] == "7"
    # An upstream client error is the upstream's answer, passed through as is.
    bad = {"model": "standin-1", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}
    assert post(gateway.url, OPENAI, bad).status_code == 400


def test_openai_sdk_stream_passes_through(gateway: SimpleNamespace, upstream: ServerThread) -> None:
    options = {"model": "standin-1", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    direct = "".join(c.choices[0].delta.content or "" for c in oai(upstream.url).chat.completions.create(**options)
                     if c.choices)
    raw = oai(gateway.url).chat.completions.with_raw_response.create(**options)
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == direct
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(direct.split())
    done = gateway.detector.completion(raw.headers[REQUEST_ID])
    assert done["status"] == 200 and done["stream"] is True and done["stop_reason"] == "end_turn"
    assert done["response_text"] == direct and done["output_tokens"] == len(direct.split())
    assert done["input_tokens"] == len(USER[0]["content"].split())


def test_anthropic_sdk_whole_and_streamed(gateway: SimpleNamespace, upstream: ServerThread) -> None:
    direct = ant(upstream.url).messages.create(model="standin-1", max_tokens=200, messages=USER, system="Be brief.")
    raw = ant(gateway.url).messages.with_raw_response.create(model="standin-1", max_tokens=200, messages=USER,
                                                             system="Be brief.")
    whole = raw.parse()
    assert whole.content[0].text == direct.content[0].text and whole.stop_reason == "end_turn"
    done = gateway.detector.completion(raw.headers[REQUEST_ID])
    assert done["system"] == "Be brief." and done["max_tokens"] == 200
    assert (done["input_tokens"], done["output_tokens"], done["stop_reason"]) == (
        direct.usage.input_tokens, direct.usage.output_tokens, "end_turn")

    # The client can have the whole stream before the gateway records its end: wait for this one.
    before = len(gateway.detector.completed)
    with ant(gateway.url).messages.stream(model="standin-1", max_tokens=200, messages=USER, system="Be brief.") as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == direct.content[0].text and final.usage.output_tokens == direct.usage.output_tokens
    done = gateway.detector.last_completion("acct-allow", after=before)
    assert done["stream"] is True and done["status"] == 200 and done["response_text"] == text
    assert (done["input_tokens"], done["output_tokens"], done["stop_reason"]) == (
        direct.usage.input_tokens, direct.usage.output_tokens, "end_turn")


def test_unknown_key_gets_a_stable_account_of_its_own(gateway: SimpleNamespace) -> None:
    response = post(gateway.url, OPENAI, openai_body(), key=UNKNOWN_KEY)
    done = gateway.detector.completion(response.headers[REQUEST_ID])
    assert done["account_id"] == "key-" + sha(UNKNOWN_KEY)[:16]
    # Anthropic-style key header on the OpenAI route is accepted too.
    response = post(gateway.url, OPENAI, openai_body(), key=None, headers={"x-api-key": KEYS["allow"]})
    assert response.status_code == 200
    assert gateway.detector.completion(response.headers[REQUEST_ID])["account_id"] == "acct-allow"


def test_stream_is_relayed_as_it_is_produced(gateway: SimpleNamespace) -> None:
    body = openai_body(model="standin-drip-25", stream=True)
    started = time.monotonic()
    arrivals = []
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body,
                      headers={"authorization": f"Bearer {KEYS['allow']}"}, timeout=10) as response:
        for _ in response.iter_raw():
            arrivals.append(time.monotonic() - started)
    # ~30 events 25 ms apart: the first must arrive long before the last, not all at once at the end.
    assert len(arrivals) > 10
    assert arrivals[0] < arrivals[-1] / 2


# ---------------------------------------------------------------- enforcement


def test_block_is_403_naming_only_the_rule(gateway: SimpleNamespace) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        oai(gateway.url, KEYS["block"]).chat.completions.create(model="standin-1", messages=USER)
    assert caught.value.status_code == 403
    response = post(gateway.url, ANTHROPIC, anthropic_body(), key=KEYS["block"])
    error = assert_error_format(response, ANTHROPIC, 403)
    assert error["type"] == "permission_error"
    assert "blocked by policy" in error["message"] and "cluster-takedown" in error["message"]
    assert "r_template_shared" not in response.text and "0.97" not in response.text
    done = gateway.detector.completion(response.headers[REQUEST_ID])
    assert done["status"] == 403 and done["response_text"] == "" and done["output_tokens"] is None


def test_throttle_is_429_with_retry_after(gateway: SimpleNamespace) -> None:
    response = post(gateway.url, OPENAI, openai_body(), key=KEYS["throttle"])
    error = assert_error_format(response, OPENAI, 429)
    assert response.headers["retry-after"] == "3"  # ceil(2.2)
    assert error["code"] == "rate_limit_exceeded"
    assert gateway.detector.completion(response.headers[REQUEST_ID])["status"] == 429
    with pytest.raises(anthropic.RateLimitError):
        ant(gateway.url, KEYS["throttle"]).messages.create(model="standin-1", max_tokens=10, messages=USER)


def test_throttle_with_tokens_left_forwards_unchanged(gateway: SimpleNamespace) -> None:
    response = post(gateway.url, OPENAI, openai_body(max_tokens=50, reasoning_effort="high"), key=KEYS["tokens-left"])
    assert response.status_code == 200
    assert response.headers["x-standin-max-tokens"] == "50"
    assert response.headers["x-standin-reasoning"] == "requested"
    assert "reasoning_content" in response.json()["choices"][0]["message"]


def test_decline_is_403_with_a_clear_message(gateway: SimpleNamespace) -> None:
    for api, body in ((OPENAI, openai_body()), (ANTHROPIC, anthropic_body())):
        response = post(gateway.url, api, body, key=KEYS["decline"])
        error = assert_error_format(response, api, 403)
        assert "reconstruct the model's hidden reasoning are declined" in error["message"]
        assert gateway.detector.completion(response.headers[REQUEST_ID])["status"] == 403


def test_degrade_caps_the_output_budget(gateway: SimpleNamespace) -> None:
    for extra, seen in (({"max_tokens": 500}, "5"), ({}, "5"), ({"max_tokens": 3}, "3"),
                        ({"max_completion_tokens": 80}, "5")):
        response = post(gateway.url, OPENAI, openai_body(**extra), key=KEYS["degrade"])
        assert response.headers["x-standin-max-tokens"] == seen, extra
    choice = response.json()["choices"][0]
    assert len(choice["message"]["content"].split()) == 5 and choice["finish_reason"] == "length"
    message = ant(gateway.url, KEYS["degrade"]).messages.create(model="standin-1", max_tokens=100, messages=USER)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 5


def test_degrade_strips_reasoning_openai(gateway: SimpleNamespace, upstream: ServerThread) -> None:
    body = openai_body(model="standin-reasoner", reasoning_effort="high")
    assert "reasoning_content" in post(upstream.url, OPENAI, body).json()["choices"][0]["message"]
    response = post(gateway.url, OPENAI, body, key=KEYS["degrade"])
    assert response.headers["x-standin-reasoning"] == "none"  # the request no longer asks for reasoning
    message = response.json()["choices"][0]["message"]
    assert "reasoning_content" not in message and message["content"] == " ".join(reply_words(USER[0]["content"])[:5])
    assert response.json()["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0

    streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
    assert b"reasoning_content" in post(upstream.url, OPENAI, streamed).content
    raw = post(gateway.url, OPENAI, streamed, key=KEYS["degrade"])
    assert b"reasoning_content" not in raw.content and raw.content.endswith(b"data: [DONE]\n\n")
    before = len(gateway.detector.completed)
    chunks = list(oai(gateway.url, KEYS["degrade"]).chat.completions.create(**streamed))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == message["content"]
    assert all(not (c.choices and c.choices[0].delta.model_extra) for c in chunks)
    done = gateway.detector.last_completion("acct-degrade", after=before)
    assert done["stop_reason"] == "max_tokens" and done["reasoning_tokens"] > 0


def test_degrade_strips_thinking_anthropic(gateway: SimpleNamespace, upstream: ServerThread) -> None:
    options = {"model": "standin-reasoner", "max_tokens": 100, "messages": USER,
               "thinking": {"type": "enabled", "budget_tokens": 50}}
    direct = ant(upstream.url).messages.create(**options)
    assert [b.type for b in direct.content] == ["thinking", "text"]
    whole = ant(gateway.url, KEYS["degrade"]).messages.create(**options)
    assert [b.type for b in whole.content] == ["text"]

    raw = post(gateway.url, ANTHROPIC, {**options, "stream": True}, key=KEYS["degrade"])
    assert raw.headers["x-standin-reasoning"] == "none"
    assert b"thinking" not in raw.content and b'"index":1' not in raw.content
    # The SDK indexes blocks by position: dropped blocks must renumber the rest or it would fail here.
    before = len(gateway.detector.completed)
    with ant(gateway.url, KEYS["degrade"]).messages.stream(**options) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == whole.content[0].text and final.stop_reason == "max_tokens"
    done = gateway.detector.last_completion("acct-degrade", after=before)
    assert done["stream"] is True and done["response_text"] == final.content[0].text


# ---------------------------------------------------------------- upstream failures


def test_upstream_500_is_502_in_api_format(gateway: SimpleNamespace) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        oai(gateway.url).chat.completions.create(model="standin-error-500", messages=USER)
    assert caught.value.status_code == 502
    response = post(gateway.url, ANTHROPIC, anthropic_body(model="standin-error-500"))
    error = assert_error_format(response, ANTHROPIC, 502)
    assert error["type"] == "api_error" and "on purpose" not in error["message"]
    assert gateway.detector.completion(response.headers[REQUEST_ID])["status"] == 502


def test_upstream_hang_is_504(strict: SimpleNamespace) -> None:
    started = time.monotonic()
    error = assert_error_format(post(strict.url, OPENAI, openai_body(model="standin-hang")), OPENAI, 504)
    assert error["code"] == "upstream_timeout"
    response = post(strict.url, ANTHROPIC, anthropic_body(model="standin-hang"))
    assert assert_error_format(response, ANTHROPIC, 504)["type"] == "timeout_error"
    assert time.monotonic() - started < 4
    assert strict.detector.completion(response.headers[REQUEST_ID])["status"] == 504


def test_upstream_stalling_mid_stream_ends_with_an_error_event(strict: SimpleNamespace) -> None:
    with pytest.raises(openai.APIError, match="stopped answering"):
        for _ in oai(strict.url).chat.completions.create(model="standin-drip-2000", messages=USER, stream=True):
            pass
    before = len(strict.detector.completed)
    with pytest.raises(anthropic.APIStatusError), \
            ant(strict.url).messages.stream(model="standin-drip-2000", max_tokens=10, messages=USER) as stream:
        stream.get_final_message()
    done = strict.detector.last_completion(strict.detector.assessed[-1]["account_id"], after=before)
    assert done["status"] == 504


def test_unreachable_upstream_is_502(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    detector = ScriptedDetector()
    config = GatewayConfig(upstream=f"http://127.0.0.1:{port}", connect_timeout=2)
    with ServerThread(create_app(config, detector)) as server:
        error = assert_error_format(post(server.url, OPENAI, openai_body()), OPENAI, 502)
    assert error["code"] == "upstream_error" and str(port) not in error["message"]


class FaultyDetector(ScriptedDetector):
    def assess(self, record: dict[str, Any], now: float) -> Decision:
        raise StateUnavailableError("state store unreachable")

    def complete(self, record: dict[str, Any]) -> None:
        raise StateUnavailableError("state store unreachable")


def test_state_store_outages_fail_open_by_default(upstream: ServerThread, tmp_path: Path) -> None:
    config = GatewayConfig(upstream=upstream.url, audit_path=tmp_path / "audit.jsonl")
    with ServerThread(create_app(config, FaultyDetector())) as server:
        assert post(server.url, OPENAI, openai_body()).status_code == 200
        streamed = post(server.url, ANTHROPIC, anthropic_body(stream=True))
        assert streamed.status_code == 200 and b"message_stop" in streamed.content
    entries = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["action"], e["rule"], e["status"]) for e in entries] == [("allow", "state-unavailable", 200)] * 2


def test_records_are_accepted_by_the_online_detector(upstream: ServerThread, tmp_path: Path) -> None:
    from distillguard.engines.online import OnlineDetector

    config = GatewayConfig(upstream=upstream.url, audit_path=tmp_path / "audit.jsonl")
    with ServerThread(create_app(config, OnlineDetector.create())) as server:
        assert post(server.url, OPENAI, openai_body(tools=[{"type": "function", "function": {"name": "f"}}],
                                                    stream=True, stream_options={"include_usage": True})).is_success
        assert post(server.url, ANTHROPIC, anthropic_body(system=[{"type": "text", "text": "s"}])).is_success
    entries = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert len(entries) == 2 and all(e["rule"] != "detector-error" and e["status"] == 200 for e in entries)


def test_client_disconnects_are_recorded_as_499(gateway: SimpleNamespace) -> None:
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=openai_body(model="standin-drip-100", stream=True),
                      headers={"authorization": f"Bearer {KEYS['allow']}"}, timeout=10) as response:
        request_id = response.headers[REQUEST_ID]
        next(response.iter_raw())
    done = gateway.detector.completion(request_id, timeout=3)
    assert done["status"] == 499

    before = len(gateway.detector.completed)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        post(gateway.url, OPENAI, openai_body(model="standin-slow-3000"), timeout=0.3)
    done = gateway.detector.last_completion("acct-allow", after=before, timeout=2)
    assert done["status"] == 499 and time.monotonic() - started < 2.5  # noticed, not waited out


# ---------------------------------------------------------------- input hardening


BAD_BODIES = [
    b"{not json",
    b"",
    b"\xff\xfe{}",
    b"[1, 2]",
    b'"text"',
    b"[" * 5000 + b"]" * 5000,
    {"model": 5, "messages": USER},
    {"messages": USER},
    {"model": "standin-1", "messages": "hello"},
    {"model": "standin-1", "messages": ["hello"]},
    {"model": "standin-1", "messages": [{"role": "wizard", "content": "x"}]},
    {"model": "standin-1", "messages": [{"role": "user", "content": 5}]},
    {"model": "standin-1", "messages": USER, "stream": "yes"},
    {"model": "standin-1", "messages": USER, "max_tokens": "10"},
    {"model": "standin-1", "messages": USER, "max_tokens": True},
    {"model": "standin-1", "messages": USER, "max_tokens": -1},
    {"model": "standin-1", "messages": USER, "temperature": "hot"},
    {"model": "standin-1", "messages": USER, "tools": {"name": "x"}},
]


@pytest.mark.parametrize("api", [OPENAI, ANTHROPIC])
def test_malformed_requests_are_400_in_api_format(gateway: SimpleNamespace, api: str) -> None:
    assessed = len(gateway.detector.assessed)
    for body in BAD_BODIES:
        error = assert_error_format(post(gateway.url, api, body), api, 400)
        assert error["message"]
    assert len(gateway.detector.assessed) == assessed  # refused before detection, never forwarded


def test_oversized_bodies_are_413_even_without_content_length(strict: SimpleNamespace) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "standin-1", "messages": [{"role": "user", "content": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}]}'

    assessed = len(strict.detector.assessed)
    for api in (OPENAI, ANTHROPIC):
        response = httpx.post(strict.url + ("/v1/chat/completions" if api == OPENAI else "/v1/messages"),
                              content=chunks(), headers={"authorization": f"Bearer {UNKNOWN_KEY}",
                                                         "x-api-key": UNKNOWN_KEY})
        assert "content-length" not in response.request.headers
        assert assert_error_format(response, api, 413)["message"]
    declared = post(strict.url, OPENAI, openai_body(messages=[{"role": "user", "content": "y" * 8000}]), key=UNKNOWN_KEY)
    assert_error_format(declared, OPENAI, 413)
    assert len(strict.detector.assessed) == assessed


def test_missing_key_is_401_and_not_forwarded(gateway: SimpleNamespace) -> None:
    assessed = len(gateway.detector.assessed)
    assert assert_error_format(post(gateway.url, OPENAI, openai_body(), key=None), OPENAI, 401)["code"] == "missing_api_key"
    assert assert_error_format(post(gateway.url, ANTHROPIC, anthropic_body(), key=None), ANTHROPIC, 401)["type"] == (
        "authentication_error")
    basic = post(gateway.url, OPENAI, openai_body(), key=None, headers={"authorization": "Basic dXNlcjpwYXNz"})
    assert_error_format(basic, OPENAI, 401)
    blank = post(gateway.url, ANTHROPIC, anthropic_body(), key=None, headers={"x-api-key": "two words"})
    assert_error_format(blank, ANTHROPIC, 401)
    assert len(gateway.detector.assessed) == assessed


def test_forwarded_for_is_believed_only_from_trusted_proxies(gateway: SimpleNamespace, strict: SimpleNamespace) -> None:
    chain = {"x-forwarded-for": "198.51.100.7, 203.0.113.9, 10.1.2.3"}
    response = post(gateway.url, OPENAI, openai_body(), headers=chain)
    assert gateway.detector.completion(response.headers[REQUEST_ID])["ip"] == "203.0.113.9"
    response = post(strict.url, OPENAI, openai_body(), headers=chain)
    assert strict.detector.completion(response.headers[REQUEST_ID])["ip"] == "127.0.0.1"


def test_client_ip_resolution() -> None:
    trusted = parse_networks(["10.0.0.0/8", "2001:db8::/32"])
    assert client_ip("10.0.0.5", ["1.2.3.4"], trusted) == "1.2.3.4"
    assert client_ip("10.0.0.5", ["6.6.6.6, 1.2.3.4, 10.9.9.9"], trusted) == "1.2.3.4"
    assert client_ip("10.0.0.5", ["6.6.6.6", "1.2.3.4"], trusted) == "1.2.3.4"  # repeated headers join
    assert client_ip("10.0.0.5", ["10.1.1.1, 10.2.2.2"], trusted) == "10.1.1.1"  # all trusted: left-most
    assert client_ip("10.0.0.5", ["not-an-ip, 10.2.2.2"], trusted) == "10.2.2.2"  # stop at garbage
    assert client_ip("2001:db8::1", ["[2001:db9::7]:443"], trusted) == "2001:db9::7"
    assert client_ip("::ffff:10.0.0.5", ["1.2.3.4:5555"], trusted) == "1.2.3.4"
    assert client_ip("8.8.8.8", ["1.2.3.4"], trusted) == "8.8.8.8"  # untrusted peer: header ignored
    assert client_ip(None, ["1.2.3.4"], trusted) is None
    with pytest.raises(InputError):
        parse_networks(["10.0.0.0/33"])


def test_forwarded_headers_keep_the_key_and_drop_connection_headers() -> None:
    raw = [(b"Authorization", b"Bearer k"), (b"Host", b"gw"), (b"Connection", b"keep-alive, x-hop"),
           (b"X-Hop", b"1"), (b"Content-Length", b"5"), (b"Accept-Encoding", b"gzip"), (b"X-Custom", b"v")]
    names = dict(upstream_headers(raw))
    assert names[b"Authorization"] == b"Bearer k" and names[b"X-Custom"] == b"v"
    assert names[b"accept-encoding"] == b"identity"
    assert not {b"Host", b"Connection", b"X-Hop", b"Content-Length", b"Accept-Encoding"} & set(names)


# ---------------------------------------------------------------- audit, logs, health, metrics


def test_no_key_in_logs_or_audit(gateway: SimpleNamespace, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = KEYS["allow"]
    post(gateway.url, OPENAI, openai_body(), key=key)
    post(gateway.url + "", OPENAI, openai_body(), key=key, params={"api_key": key})  # key in the access log line
    post(gateway.url, OPENAI, b"{broken", key=key)
    post(gateway.url, OPENAI, openai_body(), key=KEYS["block"])
    post(gateway.url, ANTHROPIC, anthropic_body(stream=True), key=key)
    # Defence in depth: even code that logs a key by mistake does not leak it.
    logging.getLogger("distillguard.gateway").warning("upstream rejected Authorization: Bearer %s", key)
    logging.getLogger("uvicorn.error").error("headers were %s", [(b"x-api-key", key.encode())])
    try:
        raise ValueError(f"bad credential {key}")
    except ValueError:
        logging.getLogger("distillguard.gateway").exception("failure")
    time.sleep(0.1)
    assert "[REDACTED]" in caplog.text and "api_key=[REDACTED]" in caplog.text
    text = caplog.text + "".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    for secret in KEYS.values():
        assert secret not in text and secret[3:] not in text
    audit = gateway.audit.read_text()
    assert audit and all(secret not in audit for secret in KEYS.values())
    assert "sha256:" + sha(key)[:16] in audit


def test_audit_has_one_line_per_request_and_no_prompt(gateway: SimpleNamespace) -> None:
    marker = "MARKER-PROMPT-7731"
    response = post(gateway.url, OPENAI, openai_body(messages=[{"role": "user", "content": marker}]),
                    key=KEYS["block"])
    request_id = response.headers[REQUEST_ID]
    time.sleep(0.05)
    lines = [json.loads(line) for line in gateway.audit.read_text().splitlines()]
    (entry,) = [line for line in lines if line["request_id"] == request_id]
    assert set(entry) == {"ts", "request_id", "account_id", "api_key_id", "ip", "api", "model", "action", "rule",
                          "reasons", "risk", "status", "latency_ms"}
    assert entry["action"] == "block" and entry["rule"] == "cluster-takedown" and entry["status"] == 403
    assert entry["reasons"] == ["r_template_shared"] and entry["risk"] == 0.97 and entry["api"] == "openai"
    assert entry["ts"].endswith("Z") and entry["latency_ms"] >= 0
    assert marker not in gateway.audit.read_text()
    invalid = [line for line in lines if line["status"] == 400]
    assert invalid and invalid[-1]["action"] is None and invalid[-1]["rule"] == "invalid-request"


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_healthz_and_metrics(gateway: SimpleNamespace) -> None:
    health = httpx.get(gateway.url + "/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    before = _samples(gateway.url)
    post(gateway.url, OPENAI, openai_body())
    post(gateway.url, ANTHROPIC, anthropic_body(), key=KEYS["block"])
    after = _samples(gateway.url)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("distillguard_requests_total", api="openai", status="200") == 1
    assert delta("distillguard_requests_total", api="anthropic", status="403") == 1
    assert delta("distillguard_decisions_total", action="allow") == 1
    assert delta("distillguard_decisions_total", action="block") == 1
    assert delta("distillguard_overhead_seconds_count") == 2
    assert delta("distillguard_request_seconds_count", api="openai") == 1
    assert after[("distillguard_overhead_seconds_sum", ())] > 0


# ---------------------------------------------------------------- keys


def test_keymap_from_jsonl_and_parquet(tmp_path: Path) -> None:
    a, b, c = "key-a-111111", "key-b-222222", "key-c-333333"
    jsonl = tmp_path / "accounts.jsonl"
    jsonl.write_text(json.dumps({"account_id": "A", "api_key_sha256": [sha(a), sha(b)]}) + "\n"
                     + json.dumps({"account_id": "C", "api_key_sha256": sha(c).upper()}) + "\n"
                     + json.dumps({"account_id": "D"}) + "\n")
    separated = tmp_path / "separated.jsonl"
    separated.write_text(json.dumps({"account_id": "A", "api_key_sha256": f"{sha(a)};{sha(b)}"}) + "\n"
                         + json.dumps({"account_id": "C", "api_key_sha256": sha(c)}) + "\n"
                         + json.dumps({"account_id": "D", "api_key_sha256": ""}) + "\n")
    parquet = tmp_path / "accounts.parquet"
    pq.write_table(pa.table({"account_id": ["A", "C", "D"],
                             "api_key_sha256": [[sha(a), sha(b)], [sha(c)], None]}), parquet)
    for path in (jsonl, separated, parquet):
        keymap = KeyMap.load(path)
        assert len(keymap) == 3, path
        assert keymap.identify(b).account_id == "A" and keymap.identify(c).account_id == "C"
        assert keymap.identify("other-key").account_id == "key-" + sha("other-key")[:16]
        assert keymap.identify(a).api_key_id == "sha256:" + sha(a)[:16]
    no_keys = tmp_path / "plain.jsonl"
    no_keys.write_text(json.dumps({"account_id": "A"}) + "\n")
    assert len(KeyMap.load(no_keys)) == 0


@pytest.mark.parametrize("rows", [
    [{"account_id": "A", "api_key_sha256": "abc"}],
    [{"account_id": "A", "api_key_sha256": sha("k")}, {"account_id": "B", "api_key_sha256": sha("k")}],
    [{"account_id": 7, "api_key_sha256": sha("k")}],
    [{"account_id": "A", "api_key_sha256": 12}],
])
def test_keymap_refuses_ambiguous_or_malformed_rows(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    path = tmp_path / "accounts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(InputError):
        KeyMap.load(path)


def test_extract_api_key() -> None:
    assert extract_api_key({"authorization": "Bearer abc"}) == "abc"
    assert extract_api_key({"authorization": "bearer  abc "}) == "abc"
    assert extract_api_key({"x-api-key": "xyz"}) == "xyz"
    both = {"authorization": "Bearer abc", "x-api-key": "xyz"}
    assert extract_api_key(both) == "abc" and extract_api_key(both, prefer_x_api_key=True) == "xyz"
    for bad in ({}, {"authorization": "Basic abc"}, {"authorization": "Bearer "}, {"x-api-key": "a b"},
                {"x-api-key": "k" * 600}, {"x-api-key": "clé"}):
        assert extract_api_key(bad) is None, bad


def test_redaction_covers_common_shapes() -> None:
    for text in ("Authorization: Bearer tok_123", "x-api-key: tok_123", "{'api_key': 'tok_123'}",
                 "GET /v1?api_key=tok_123&x=1", "sk-ant-tok_123456", "[(b'x-api-key', b'tok_123')]"):
        assert "tok_123" not in redact(text), text
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s", ("Bearer tok_123",), None)
    RedactingFilter().filter(record)
    assert "tok_123" not in record.getMessage()


# ---------------------------------------------------------------- translate (pure)


def test_request_records_for_both_apis() -> None:
    body = {"model": "m", "messages": [{"role": "developer", "content": "rules"},
                                       {"role": "user", "content": [{"type": "text", "text": "hi"},
                                                                    {"type": "image_url", "image_url": {"url": "x"}}]},
                                       {"role": "assistant", "content": None, "tool_calls": []},
                                       {"role": "tool", "content": "42"}],
            "tools": [{"type": "function", "function": {"name": "calc"}}], "max_completion_tokens": 9,
            "max_tokens": 99, "temperature": 0, "stream": True}
    record = request_record(OPENAI, body, request_id="r", ts=1, account_id="a", api_key_id="k", ip="1.2.3.4",
                            user_agent="ua")
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant", "tool"]
    assert record["messages"][1]["content"] == [{"type": "text", "text": "hi"}, {"type": "image_url"}]
    assert (record["tools"], record["max_tokens"], record["temperature"], record["stream"]) == (["calc"], 9, 0.0, True)
    body = {"model": "m", "max_tokens": 5, "system": [{"type": "text", "text": "sys"}],
            "tools": [{"name": "search", "input_schema": {}}],
            "messages": [{"role": "user", "content": "q"},
                         {"role": "assistant", "content": [{"type": "thinking", "thinking": "t"},
                                                           {"type": "tool_use", "id": "1", "name": "search"}]},
                         {"role": "user", "content": [{"type": "tool_result", "content": [{"type": "text", "text": "r"}]}]}]}
    record = request_record(ANTHROPIC, body)
    assert record["system"] == "sys" and record["tools"] == ["search"] and record["stream"] is False
    assert record["messages"][1]["content"] == [{"type": "tool_use"}]
    assert record["messages"][2]["content"] == [{"type": "text", "text": "r"}]
    with pytest.raises(RequestError):
        request_record(ANTHROPIC, {"model": "m", "messages": [{"role": "system", "content": "x"}]})


def test_degrade_request_transforms() -> None:
    spec = DegradeSpec(strip_reasoning=True, max_tokens=10)
    out = degrade_request(OPENAI, {"max_tokens": 50, "max_completion_tokens": 5, "reasoning_effort": "high",
                                   "reasoning": {"effort": "high"}, "model": "m"}, spec)
    assert out == {"max_tokens": 10, "max_completion_tokens": 5, "model": "m"}
    assert degrade_request(OPENAI, {}, spec) == {"max_completion_tokens": 10}
    out = degrade_request(ANTHROPIC, {"max_tokens": 64, "thinking": {"type": "enabled"}}, spec)
    assert out == {"max_tokens": 10}
    keep = degrade_request(ANTHROPIC, {"max_tokens": 64, "thinking": {}}, DegradeSpec(strip_reasoning=False))
    assert keep == {"max_tokens": 64, "thinking": {}}


def test_sse_decoder_is_independent_of_chunk_boundaries() -> None:
    stream = (b"event: message_start\r\ndata: {\"type\": \"message_start\"}\r\n\r\n"
              b": comment\n\nevent: ping\ndata: {}\n\n"
              b"data: line one\ndata: line two\r\r"
              b"data: [DONE]\n\n")
    expected = [("message_start", '{"type": "message_start"}'), (None, ""), ("ping", "{}"),
                (None, "line one\nline two"), (None, "[DONE]")]
    for size in (1, 2, 3, 7, len(stream)):
        decoder = SSEDecoder()
        events = [e for i in range(0, len(stream), size) for e in decoder.feed(stream[i:i + size])] + decoder.flush()
        assert [(e.event, e.data) for e in events] == expected, size
        assert b"".join(e.raw for e in events) == stream


def _anthropic_events(*datas: dict[str, Any]) -> list[Any]:
    from distillguard.gateway.translate import encode_event, parse_event

    return [parse_event(encode_event(d, d["type"])) for d in datas]


def test_thinking_blocks_are_dropped_and_indexes_renumbered() -> None:
    events = _anthropic_events(
        {"type": "message_start", "message": {"content": [], "usage": {"input_tokens": 4, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "secret"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "x"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "answer"}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}},
    )
    stripper, usage = ReasoningStripper(ANTHROPIC), StreamUsage(ANTHROPIC)
    out = []
    for event in events:
        usage.feed(event)
        sent = stripper.transform(event)
        if sent is not None:
            out.append(json.loads(sent.split(b"data: ", 1)[1]))
    assert [(e["type"], e.get("index")) for e in out] == [
        ("message_start", None), ("content_block_start", 0), ("content_block_delta", 0), ("content_block_stop", 0),
        ("message_delta", None)]
    assert "secret" not in json.dumps(out)
    result = usage.result()
    assert (result.response_text, result.input_tokens, result.output_tokens, result.stop_reason) == (
        "answer", 4, 9, "end_turn")


def test_openai_reasoning_only_chunks_are_dropped() -> None:
    from distillguard.gateway.translate import encode_event, parse_event

    stripper = ReasoningStripper(OPENAI)
    only = parse_event(encode_event({"choices": [{"index": 0, "delta": {"reasoning_content": "r"}, "finish_reason": None}]}))
    mixed = parse_event(encode_event({"choices": [{"index": 0, "delta": {"reasoning": "r", "content": "c"}}]}))
    plain = parse_event(b'data: {"choices": [{"index": 0, "delta": {"content": "c"}}]}\n\n')
    assert stripper.transform(only) is None
    assert json.loads(stripper.transform(mixed)[6:])["choices"][0]["delta"] == {"content": "c"}
    assert stripper.transform(plain) == plain.raw
    done = parse_event(b"data: [DONE]\n\n")
    assert stripper.transform(done) == done.raw


class CountingDetector(ScriptedDetector):
    """Records the size of every call, to see how requests were coalesced."""

    def __init__(self, decisions: dict[str, Decision] | None = None) -> None:
        super().__init__(decisions)
        self.calls: list[int] = []

    def assess_many(self, records: Any, now: float) -> list[Decision]:
        self.calls.append(len(records))
        return super().assess_many(records, now)


def test_requests_arriving_together_are_assessed_in_one_call_in_order() -> None:
    decisions = {f"acct-{i}": Decision(action="throttle" if i % 3 else "allow", rule=f"r{i}") for i in range(10)}
    detector = CountingDetector(decisions)

    async def run(max_batch: int) -> list[Decision]:
        coalescer = Coalescer(detector, new_metrics(), max_batch=max_batch)
        records = [{"account_id": f"acct-{i}", "request_id": str(i)} for i in range(10)]
        return await asyncio.gather(*(coalescer.assess(record) for record in records))

    # All ten arrive in one turn of the loop: one call (or batches of at most max_batch), in order,
    # and every request gets its own account's decision.
    assert [d.rule for d in asyncio.run(run(256))] == [f"r{i}" for i in range(10)]
    assert detector.calls == [10]
    assert [r["request_id"] for r in detector.assessed] == [str(i) for i in range(10)]
    detector.calls.clear()
    assert [d.rule for d in asyncio.run(run(4))] == [f"r{i}" for i in range(10)]
    assert detector.calls == [4, 4, 2]


def test_a_state_store_outage_fails_open_for_the_whole_batch() -> None:
    async def run() -> list[Decision]:
        coalescer = Coalescer(FaultyDetector(), new_metrics())
        coalescer.complete({"account_id": "a"})  # its failure is logged, not raised
        return await asyncio.gather(*(coalescer.assess({"account_id": f"a{i}"}) for i in range(3)))

    assert [(d.action, d.rule) for d in asyncio.run(run())] == [("allow", "state-unavailable")] * 3


def test_concurrent_requests_through_the_online_detector_are_all_counted(upstream: ServerThread) -> None:
    from distillguard.behaviour.state import AccountState
    from distillguard.engines.online import OnlineDetector

    detector = OnlineDetector.create()
    keys = [f"sk-concurrent-{i}" for i in range(8)]

    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            calls = [client.post("/v1/chat/completions", json=openai_body(), headers={"authorization": f"Bearer {key}"})
                     for key in keys for _ in range(5)]
            return [r.status_code for r in await asyncio.gather(*calls)]

    with ServerThread(create_app(GatewayConfig(upstream=upstream.url), detector)) as server:
        assert asyncio.run(burst(server.url)) == [200] * 40
        metrics = httpx.get(f"{server.url}/metrics").text
    batches = {s.name: s.value for f in text_string_to_metric_families(metrics) for s in f.samples
               if s.name.startswith("distillguard_assess_batch_size")}
    assert batches["distillguard_assess_batch_size_sum"] == 40
    states = [AccountState.from_bytes(blob) for blob in detector.store.get_many(
        [identify(key, None).account_id for key in keys])]
    assert [state.n for state in states] == [5] * 8


@pytest.mark.parametrize("size", [20_000, 200_000, 4_000_000])
def test_oversized_request_heads_get_400_and_a_closed_connection(upstream: ServerThread, size: int) -> None:
    detector = ScriptedDetector()
    with ServerThread(create_app(GatewayConfig(upstream=upstream.url), detector)) as server:
        ok = post(server.url, OPENAI, openai_body(), headers={"x-padding": "a" * 8_000})
        assert ok.status_code == 200
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-big\r\n"
                    f"x-padding: {'a' * size}\r\ncontent-length: 2\r\n\r\n{{}}").encode()
            with contextlib.suppress(OSError):  # the server may close before it has all of it
                sock.sendall(head)
            answer = b""
            # Closing with the rest of the head unread makes the kernel reset the connection, which
            # can overtake the 400: either way the head was refused without being buffered.
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(65536):
                    answer += chunk
        assert answer.startswith(b"HTTP/1.1 400") or (size > 100_000 and not answer), answer[:100]
        # The refused request never reached the app, and the next one is served.
        assert all(r["api_key_id"] != identify("sk-big", None).api_key_id for r in detector.assessed)
        assert post(server.url, OPENAI, openai_body()).status_code == 200


def test_run_until_disconnect_cancels_only_for_the_client() -> None:
    """The work's result when the client stays; the work cancelled and (True, None) when it leaves;
    a cancellation from outside (a shutdown) passes through."""

    def client(leaves_after: float | None) -> Any:
        async def receive() -> dict[str, Any]:
            if leaves_after is None:
                await asyncio.Event().wait()
            await asyncio.sleep(leaves_after or 0)
            return {"type": "http.disconnect"}
        return receive

    async def scenario() -> None:
        cancelled: list[bool] = []

        async def work(seconds: float) -> str:
            try:
                await asyncio.sleep(seconds)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            return "answer"

        assert await run_until_disconnect(client(None), lambda: work(0.01)) == (False, "answer")
        assert await run_until_disconnect(client(0.01), lambda: work(5)) == (True, None) and cancelled == [True]
        # After a disconnect the task is as before: no cancellation left pending or counted.
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        assert await run_until_disconnect(client(None), lambda: work(0.01)) == (False, "answer")

        outer = asyncio.create_task(run_until_disconnect(client(0.05), lambda: work(5)))
        await asyncio.sleep(0.01)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_upstream_cookies_never_reach_another_request() -> None:
    """The gateway is not a browser: a cookie the upstream sets on one customer's answer must not be
    sent upstream with anyone's next request (the client sees its own Set-Cookie, as from any proxy)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo_cookie(request: Any) -> JSONResponse:
        response = JSONResponse({"id": "x", "object": "chat.completion", "choices": [],
                                 "seen_cookie": request.headers.get("cookie")})
        response.set_cookie("session", "for-the-first-caller-only")
        return response

    upstream_app = Starlette(routes=[Route("/v1/chat/completions", echo_cookie, methods=["POST"])])
    with ServerThread(upstream_app) as cookie_upstream, \
            ServerThread(create_app(GatewayConfig(upstream=cookie_upstream.url), ScriptedDetector())) as server:
        first = post(server.url, OPENAI, openai_body(), key="sk-cookie-first")
        assert first.status_code == 200 and "session=" in first.headers["set-cookie"]
        second = post(server.url, OPENAI, openai_body(), key="sk-cookie-second")
        assert second.status_code == 200 and second.json()["seen_cookie"] is None


def test_upstream_sees_the_request_as_the_client_sent_it() -> None:
    """Path, query and the client's own headers reach the upstream unchanged; connection headers do
    not, and the gateway's HTTP client adds none of its own (no user agent of its library)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen: list[dict[str, Any]] = []

    async def record(request: Any) -> JSONResponse:
        seen.append({"path": request.scope["raw_path"], "query": request.scope["query_string"],
                     "headers": [(k.decode(), v.decode()) for k, v in request.headers.raw],
                     "body": await request.body()})
        return JSONResponse({"id": "x", "object": "chat.completion", "choices": []})

    upstream_app = Starlette(routes=[Route("/v1/chat/completions", record, methods=["POST"])])
    body = openai_body()
    with ServerThread(upstream_app) as recording, \
            ServerThread(create_app(GatewayConfig(upstream=recording.url), ScriptedDetector())) as server:
        sent = post(server.url, OPENAI, body, key="sk-as-sent", params={"api-version": "2024-06-01", "x": "a b"},
                    headers={"user-agent": "MyApp/2.1", "openai-organization": "org-7", "connection": "keep-alive"})
        bare = httpx.Client(headers={})  # no user agent at all
        bare.headers.pop("user-agent")
        unnamed = bare.post(server.url + "/v1/chat/completions", content=json.dumps(body).encode(),
                            headers={"authorization": "Bearer sk-as-sent"}, timeout=10)
        bare.close()
    assert sent.status_code == 200 and unnamed.status_code == 200
    first, second = seen
    assert first["path"] == b"/v1/chat/completions" and first["query"] == b"api-version=2024-06-01&x=a+b"
    assert first["body"] == json.dumps(body).encode()
    headers = {name: value for name, value in first["headers"]}
    assert headers["authorization"] == "Bearer sk-as-sent" and headers["user-agent"] == "MyApp/2.1"
    assert headers["openai-organization"] == "org-7" and headers["content-type"] == "application/json"
    assert headers["accept-encoding"] == "identity" and "connection" not in headers
    assert len([name for name, _ in first["headers"] if name == "user-agent"]) == 1
    names = {name for name, _ in second["headers"]}
    assert "user-agent" not in names and "content-type" not in names and "cookie" not in names


def test_the_gateway_refuses_an_accounts_table_it_would_only_half_read(tmp_path: Path) -> None:
    from distillguard.engines.online import OnlineDetector

    good = {"account_id": "A", "created_at": "2026-01-01T00:00:00Z", "tier": "free", "verified": False}
    table = tmp_path / "accounts.jsonl"
    table.write_text(json.dumps(good) + "\n" + json.dumps({**good, "account_id": "B", "verified": "no"}) + "\n")
    with pytest.raises(InputError) as refused:
        OnlineDetector.create(accounts=table)
    message = str(refused.value)
    assert f"{table}:2:" in message and "verified" in message and "\n" not in message
    csv_table = tmp_path / "accounts.csv"
    csv_table.write_text("account_id,tier\nA,free\n")
    with pytest.raises(InputError, match=r"accounts\.csv:1:"):
        OnlineDetector.create(accounts=csv_table)
    table.write_text(json.dumps(good) + "\n")
    assert OnlineDetector.create(accounts=table).accounts["A"].tier == "free"
