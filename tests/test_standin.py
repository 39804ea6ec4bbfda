"""The stand-in upstream on its own: the official SDKs parse its answers, whole and streamed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from typer.testing import CliRunner

from distillguard.cli import app as cli_app
from distillguard.gateway.standin import create_standin_app, reasoning_words, reply_words
from gateway_helpers import ServerThread

USER = [{"role": "user", "content": "What is the capital of France?"}]
PROMPT = USER[0]["content"]


@pytest.fixture(scope="module")
def standin() -> Iterator[str]:
    with ServerThread(create_standin_app()) as server:
        yield server.url


def oai(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="sk-standin-test", max_retries=0, timeout=10)


def ant(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="sk-standin-test", max_retries=0, timeout=10)


def test_openai_whole_and_streamed_agree(standin: str) -> None:
    whole = oai(standin).chat.completions.create(model="standin-1", messages=USER)
    expected = " ".join(reply_words(PROMPT))
    assert whole.object == "chat.completion" and whole.choices[0].message.content == expected
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage.prompt_tokens == len(PROMPT.split()) and whole.usage.completion_tokens == len(expected.split())

    chunks = list(oai(standin).chat.completions.create(model="standin-1", messages=USER, stream=True,
                                                         stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == whole.usage.total_tokens
    # Without include_usage there is no usage chunk, as with the real API.
    plain = list(oai(standin).chat.completions.create(model="standin-1", messages=USER, stream=True))
    assert all(c.choices and c.usage is None for c in plain)


def test_raw_openai_stream_ends_with_done(standin: str) -> None:
    response = httpx.post(standin + "/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.content.split(b"\n\n")
    assert events[-2] == b"data: [DONE]" and all(e.startswith(b"data: ") for e in events[:-1])


def test_openai_max_tokens_and_reasoning(standin: str) -> None:
    raw = oai(standin).chat.completions.with_raw_response.create(
        model="standin-1", messages=USER, max_completion_tokens=4, reasoning_effort="low")
    assert raw.headers["x-standin-max-tokens"] == "4" and raw.headers["x-standin-reasoning"] == "requested"
    completion = raw.parse()
    choice = completion.choices[0]
    assert choice.finish_reason == "length" and choice.message.content == " ".join(reply_words(PROMPT)[:4])
    assert choice.message.model_extra["reasoning_content"] == " ".join(reasoning_words(PROMPT))
    assert completion.usage.completion_tokens_details.reasoning_tokens == len(reasoning_words(PROMPT))
    streamed = list(oai(standin).chat.completions.create(model="standin-1", messages=USER, max_tokens=4,
                                                           reasoning_effort="low", stream=True))
    reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in streamed)
    assert reasoning == " ".join(reasoning_words(PROMPT))
    plain = httpx.post(standin + "/v1/chat/completions", json={"model": "m", "messages": USER})
    assert plain.headers["x-standin-max-tokens"] == "none" and plain.headers["x-standin-reasoning"] == "none"
    assert "reasoning_content" not in plain.json()["choices"][0]["message"]


def test_anthropic_whole_and_streamed_agree(standin: str) -> None:
    options = {"model": "standin-1", "max_tokens": 100, "messages": USER, "system": "Answer briefly."}
    whole = ant(standin).messages.create(**options)
    assert [b.type for b in whole.content] == ["text"] and whole.stop_reason == "end_turn"
    assert whole.usage.input_tokens == len(("Answer briefly.\n" + PROMPT).split())
    with ant(standin).messages.stream(**options) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == whole.content[0].text == final.content[0].text
    assert final.usage.output_tokens == whole.usage.output_tokens and final.stop_reason == "end_turn"


def test_anthropic_thinking_and_max_tokens(standin: str) -> None:
    options = {"model": "standin-1", "max_tokens": 3, "messages": USER,
               "thinking": {"type": "enabled", "budget_tokens": 1024}}
    whole = ant(standin).messages.create(**options)
    assert [b.type for b in whole.content] == ["thinking", "text"]
    assert whole.content[0].thinking == " ".join(reasoning_words(PROMPT)) and whole.content[0].signature
    assert whole.content[1].text == " ".join(reply_words(PROMPT)[:3]) and whole.stop_reason == "max_tokens"
    with ant(standin).messages.stream(**options) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].thinking == whole.content[0].thinking and final.content[1].text == whole.content[1].text
    assert kinds.count("content_block_stop") == 2 and kinds[-1] == "message_stop"
    assert "thinking" in kinds and "signature" in kinds  # SDK names of thinking_delta / signature_delta


def test_reasoner_models_always_reason(standin: str) -> None:
    response = httpx.post(standin + "/v1/messages", json={"model": "standin-reasoner", "max_tokens": 50,
                                                          "messages": USER})
    assert response.headers["x-standin-reasoning"] == "none"
    assert [b["type"] for b in response.json()["content"]] == ["thinking", "text"]


def test_error_and_delay_hooks(standin: str) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        oai(standin).chat.completions.create(model="standin-error-500", messages=USER)
    assert caught.value.status_code == 500 and caught.value.body["type"] == "server_error"
    with pytest.raises(anthropic.InternalServerError) as failed:
        ant(standin).messages.create(model="standin-error-500", max_tokens=5, messages=USER)
    assert failed.value.body["type"] == "error" and failed.value.body["error"]["type"] == "api_error"
    started = time.monotonic()
    oai(standin).chat.completions.create(model="standin-slow-300", messages=USER)
    assert time.monotonic() - started >= 0.3
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(standin + "/v1/chat/completions", json={"model": "standin-hang", "messages": USER}, timeout=0.3)


def test_fixed_latency_option() -> None:
    with ServerThread(create_standin_app(latency_ms=200)) as server:
        started = time.monotonic()
        response = httpx.post(server.url + "/v1/chat/completions", json={"model": "m", "messages": USER})
        assert response.status_code == 200 and time.monotonic() - started >= 0.2


def test_bad_requests_are_400_in_api_format(standin: str) -> None:
    bad = httpx.post(standin + "/v1/chat/completions", content=b"{oops")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    bad = httpx.post(standin + "/v1/messages", json={"model": "m", "messages": "no"})
    assert bad.status_code == 400 and bad.json()["type"] == "error"


def test_cli_registers_standin_and_gateway() -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app, ["standin", "--help"])
    assert result.exit_code == 0 and "--latency-ms" in result.output
    result = runner.invoke(cli_app, ["gateway", "--help"])
    assert result.exit_code == 0 and "--trusted-proxy" in result.output and "--max-header-bytes" in result.output


def test_gateway_uses_the_operating_point_it_is_given() -> None:
    """The gateway's budgets reach its detector, so it can flag as the `analyze` run it follows did."""
    from distillguard.cli.gateway import _gateway_app
    from distillguard.scoring.model import AccountModel

    options = {"upstream": "http://127.0.0.1:9", "max_body_bytes": 1 << 20, "trusted_proxy": [],
               "upstream_timeout": 5.0, "redis": None, "attach": False, "policy": None, "accounts": None,
               "releases": None, "links": None, "audit": None}
    model = AccountModel.load()
    strict = _gateway_app({**options, "fpr_budget": 0.001, "segment_fpr_budget": 0.0025})
    loose = _gateway_app({**options, "fpr_budget": 0.01, "segment_fpr_budget": 1.0})
    assert strict.gateway.detector.threshold == model.threshold(0.001, 0.0025)
    assert loose.gateway.detector.threshold == model.threshold(0.01, 1.0)
    assert loose.gateway.detector.threshold < strict.gateway.detector.threshold
