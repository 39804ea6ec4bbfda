"""A stand-in model provider: just enough of the OpenAI and Anthropic APIs for tests, demos and benchmarks.

`POST /v1/chat/completions` and `POST /v1/messages`, whole or streamed, in the exact shapes the
official SDKs parse. The reply is a fixed text that mentions the prompt's size, so a caller can
predict it; tokens are whitespace-separated words. `max_tokens` cuts the answer (stop reason
"length" / "max_tokens"); reasoning is added when asked for (OpenAI `reasoning_effort` or `reasoning`
-> `message.reasoning_content`; Anthropic `thinking` -> a thinking block first) and is not counted
against `max_tokens`, so a cap and the presence of reasoning can be checked independently.

What the stand-in received is echoed in response headers: `x-standin-max-tokens` (the output budget,
"none" when absent) and `x-standin-reasoning` ("requested" or "none").

Test hooks, chosen through the model name:
- `standin-error-500`: answers 500 in the API's error format;
- `standin-slow-<ms>`: waits that long before answering;
- `standin-drip-<ms>`: waits that long between stream events;
- `standin-hang`: never answers (until the client goes away);
- any model whose name contains `reasoner` always reasons, asked or not, like models that always
  think: the way to see reasoning *responses* stripped when the reasoning *request* was removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from distillguard.gateway.translate import (
    ANTHROPIC,
    OPENAI,
    RequestError,
    encode_event,
    error_body,
    parse_json_object,
    request_record,
)

MAX_BODY_BYTES = 8 << 20
MAX_HOOK_DELAY_S = 60.0
HANG_LIMIT_S = 300.0  # even a hanging request ends eventually, so a forgotten server can shut down
SIGNATURE = "c3RhbmQtaW4gc2lnbmF0dXJl"


@dataclass(frozen=True)
class Answer:
    model: str
    words: list[str]  # the visible answer, already cut to max_tokens
    reasoning: list[str]  # empty when reasoning was not asked for
    input_tokens: int
    cut: bool  # True when max_tokens cut the answer
    max_tokens: int | None
    response_id: str
    reasoning_requested: bool

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def reasoning_text(self) -> str:
        return " ".join(self.reasoning)


def reply_words(prompt: str) -> list[str]:
    """The full answer to a prompt, before any max_tokens cut."""
    return (
        "This is the stand-in model. It answers every prompt with the same sentences, so that "
        f"tests can predict the reply. Your prompt had {len(prompt)} characters and "
        f"{len(prompt.split())} words."
    ).split()


def reasoning_words(prompt: str) -> list[str]:
    return (
        "Thinking about the request: first read the prompt, then recall the fixed reply, then count "
        f"the {len(prompt)} characters of the prompt, and finally write the answer."
    ).split()


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [part["text"] for part in content if "text" in part]


def prompt_text(record: dict[str, Any]) -> str:
    texts = [record["system"]] if record.get("system") else []
    for message in record["messages"]:
        texts.extend(_texts(message["content"]))
    return "\n".join(texts)


def reasoning_requested(api: str, body: dict[str, Any]) -> bool:
    if api == OPENAI:
        return body.get("reasoning_effort") is not None or body.get("reasoning") is not None
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def answer(api: str, body: dict[str, Any]) -> Answer:
    """The stand-in's deterministic answer to a validated request body."""
    record = request_record(api, body)
    requested = reasoning_requested(api, body)
    prompt = prompt_text(record)
    words = reply_words(prompt)
    cap = record["max_tokens"]
    cut = cap is not None and cap < len(words)
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
    return Answer(
        model=record["model"],
        words=words[:cap] if cut else words,
        reasoning=reasoning_words(prompt) if requested or "reasoner" in record["model"] else [],
        reasoning_requested=requested,
        input_tokens=len(prompt.split()),
        cut=cut,
        max_tokens=cap,
        response_id=("chatcmpl-" if api == OPENAI else "msg_") + digest,
    )


# ---------------------------------------------------------------- OpenAI shapes


def openai_usage(ans: Answer) -> dict[str, Any]:
    completion = len(ans.words) + len(ans.reasoning)
    return {
        "prompt_tokens": ans.input_tokens,
        "completion_tokens": completion,
        "total_tokens": ans.input_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": len(ans.reasoning)},
    }


def openai_completion(ans: Answer, created: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": ans.text, "refusal": None}
    if ans.reasoning:
        message["reasoning_content"] = ans.reasoning_text
    return {
        "id": ans.response_id,
        "object": "chat.completion",
        "created": created,
        "model": ans.model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": "length" if ans.cut else "stop"}],
        "usage": openai_usage(ans),
        "system_fingerprint": "standin",
    }


def _pieces(words: list[str]) -> list[str]:
    """Stream pieces of a text: one word each, spaces kept so the pieces join back to the text."""
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def openai_chunks(ans: Answer, created: int, include_usage: bool) -> Iterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": ans.response_id, "object": "chat.completion.chunk", "created": created, "model": ans.model,
            "system_fingerprint": "standin",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None
        return encode_event(data)

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in _pieces(ans.reasoning):
        yield chunk({"reasoning_content": piece})
    for piece in _pieces(ans.words):
        yield chunk({"content": piece})
    yield chunk({}, "length" if ans.cut else "stop")
    if include_usage:
        yield encode_event({
            "id": ans.response_id, "object": "chat.completion.chunk", "created": created, "model": ans.model,
            "system_fingerprint": "standin", "choices": [], "usage": openai_usage(ans),
        })
    yield b"data: [DONE]\n\n"


# ---------------------------------------------------------------- Anthropic shapes


def _anthropic_stop(ans: Answer) -> str:
    return "max_tokens" if ans.cut else "end_turn"


def _anthropic_output_tokens(ans: Answer) -> int:
    return len(ans.words) + len(ans.reasoning)


def anthropic_message(ans: Answer) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if ans.reasoning:
        content.append({"type": "thinking", "thinking": ans.reasoning_text, "signature": SIGNATURE})
    content.append({"type": "text", "text": ans.text})
    return {
        "id": ans.response_id,
        "type": "message",
        "role": "assistant",
        "model": ans.model,
        "content": content,
        "stop_reason": _anthropic_stop(ans),
        "stop_sequence": None,
        "usage": {"input_tokens": ans.input_tokens, "output_tokens": _anthropic_output_tokens(ans),
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


def anthropic_events(ans: Answer) -> Iterator[bytes]:
    def event(kind: str, data: dict[str, Any]) -> bytes:
        return encode_event({"type": kind, **data}, kind)

    yield event("message_start", {"message": {
        "id": ans.response_id, "type": "message", "role": "assistant", "model": ans.model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": ans.input_tokens, "output_tokens": 1,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }})
    yield event("ping", {})
    index = 0
    if ans.reasoning:
        yield event("content_block_start", {"index": index,
                                            "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
        for piece in _pieces(ans.reasoning):
            yield event("content_block_delta", {"index": index, "delta": {"type": "thinking_delta", "thinking": piece}})
        yield event("content_block_delta", {"index": index, "delta": {"type": "signature_delta", "signature": SIGNATURE}})
        yield event("content_block_stop", {"index": index})
        index += 1
    yield event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
    for piece in _pieces(ans.words):
        yield event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}})
    yield event("content_block_stop", {"index": index})
    yield event("message_delta", {"delta": {"stop_reason": _anthropic_stop(ans), "stop_sequence": None},
                                  "usage": {"output_tokens": _anthropic_output_tokens(ans)}})
    yield event("message_stop", {})


# ---------------------------------------------------------------- the app


def _hook_delay(model: str, prefix: str) -> float | None:
    """Seconds encoded in a hook model name (`standin-slow-250` -> 0.25), capped."""
    if not model.startswith(prefix):
        return None
    try:
        ms = float(model[len(prefix):])
    except ValueError:
        return None
    return min(max(ms, 0.0), MAX_HOOK_DELAY_S * 1000) / 1000


async def _wait_for_disconnect(request: Request) -> None:
    with anyio.move_on_after(HANG_LIMIT_S):
        while (await request.receive())["type"] != "http.disconnect":
            pass


def _json(data: dict[str, Any] | bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def create_standin_app(latency_ms: float = 0.0) -> Starlette:
    """The stand-in upstream as an ASGI app; `latency_ms` delays every answer."""

    async def handle(api: str, request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _json(error_body(api, 413, "Request too large."), 413)
        try:
            body = parse_json_object(raw)
            ans = answer(api, body)
        except RequestError as exc:
            return _json(error_body(api, 400, str(exc), param=exc.param), 400)
        if latency_ms > 0:
            await asyncio.sleep(latency_ms / 1000)
        if ans.model == "standin-error-500":
            return _json(error_body(api, 500, "The stand-in failed on purpose."), 500)
        if ans.model == "standin-hang":
            await _wait_for_disconnect(request)
            return Response(status_code=504)
        delay = _hook_delay(ans.model, "standin-slow-")
        if delay:
            await asyncio.sleep(delay)
        headers = {"x-standin-max-tokens": str(ans.max_tokens) if ans.max_tokens is not None else "none",
                   "x-standin-reasoning": "requested" if ans.reasoning_requested else "none"}
        created = int(time.time())
        if body.get("stream") is True:
            if api == OPENAI:
                options = body.get("stream_options")
                include_usage = isinstance(options, dict) and options.get("include_usage") is True
                events = openai_chunks(ans, created, include_usage)
            else:
                events = anthropic_events(ans)
            drip = _hook_delay(ans.model, "standin-drip-") or 0.0
            return StreamingResponse(_paced(events, drip), media_type="text/event-stream",
                                     headers={**headers, "cache-control": "no-cache"})
        data = openai_completion(ans, created) if api == OPENAI else anthropic_message(ans)
        return _json(data, headers=headers)

    async def chat_completions(request: Request) -> Response:
        return await handle(OPENAI, request)

    async def messages(request: Request) -> Response:
        return await handle(ANTHROPIC, request)

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok", "service": "standin"})

    return Starlette(routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])


async def _paced(events: Iterator[bytes], delay: float) -> AsyncIterator[bytes]:
    for event in events:
        yield event
        # Yielding to the loop between events makes each one its own write, as a real model's are.
        await asyncio.sleep(delay)
