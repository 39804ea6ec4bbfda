"""Pure translations between the two wire APIs and distillguard's exchange records.

- request bodies (OpenAI chat completions, Anthropic messages) -> exchange records (CONTRACT section 1),
  with the type checks that turn a malformed request into a 400 instead of a crash;
- responses, whole or streamed as server-sent events, -> usage, stop reason and visible text;
  the reading of bodies and chunks is `distillguard.wire`'s, shared with ingest;
- the degrade transforms: capping the output budget, removing reasoning requests, and stripping
  reasoning content from responses and from stream events;
- error bodies in each API's own format.

No I/O here: the gateway feeds bytes in and sends bytes out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from distillguard.ingest.normalise import Rejected, exchange_row
from distillguard.policy.decision import DegradeSpec
from distillguard.wire import anthropic, openai
from distillguard.wire.common import (  # noqa: F401  (the gateway's names for them)
    DEFAULT_MAX_MESSAGES,
    DEFAULT_MAX_PARTS,
    MAX_RESPONSE_TEXT,
    RequestError,
    Usage,
    as_dict,
    parse_json_object,
)

OPENAI = "openai"
ANTHROPIC = "anthropic"
APIS = (OPENAI, ANTHROPIC)
_WIRE = {OPENAI: openai, ANTHROPIC: anthropic}

# A single server-sent event larger than this means a broken upstream, not a long answer.
MAX_SSE_EVENT_BYTES = 8 << 20

OPENAI_REASONING_REQUEST_FIELDS = openai.REASONING_REQUEST_FIELDS
OPENAI_REASONING_RESPONSE_FIELDS = openai.REASONING_RESPONSE_FIELDS
ANTHROPIC_REASONING_BLOCKS = anthropic.REASONING_BLOCKS


# ---------------------------------------------------------------- requests -> records


def request_record(api: str, body: Mapping[str, Any], *, max_messages: int = DEFAULT_MAX_MESSAGES,
                   max_parts: int = DEFAULT_MAX_PARTS, **context: Any) -> dict[str, Any]:
    """The exchange record (CONTRACT section 1) of a request body; `context` adds request_id, ts,
    account_id, api_key_id, ip and user_agent. Raises `RequestError` on a malformed body, or one
    with more than `max_messages` messages or `max_parts` content parts."""
    fields = _WIRE[api].request_fields(body, max_messages=max_messages, max_parts=max_parts)
    return {
        "request_id": context.get("request_id"),
        "ts": context.get("ts"),
        "account_id": context.get("account_id"),
        "api_key_id": context.get("api_key_id"),
        "ip": context.get("ip"),
        "user_agent": context.get("user_agent"),
        **fields,
    }


def check_record(record: Mapping[str, Any]) -> None:
    """Refuses (`RequestError`, naming the field) a record that the detector's own validator, the
    ingest contract check, would refuse: one validator for logs and live traffic, so nothing the
    gateway accepts can make the detector fail (temperature out of range, absurd max_tokens, a text
    part without text...)."""
    try:
        exchange_row(record)
    except Rejected as exc:
        raise RequestError(f"Invalid '{exc.field}': {exc.reason}.", exc.field) from None


def wants_usage_in_stream(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


# ---------------------------------------------------------------- degrade: requests


def degrade_request(api: str, body: Mapping[str, Any], spec: DegradeSpec) -> dict[str, Any]:
    """A copy of `body` with the output budget capped and, when asked, reasoning requests removed."""
    out = dict(body)
    cap = spec.max_tokens
    if api == OPENAI:
        if cap is not None:
            present = [name for name in ("max_completion_tokens", "max_tokens") if out.get(name) is not None]
            for name in present:
                out[name] = min(out[name], cap)
            if not present:  # the current field; every OpenAI-compatible server also reads it
                out["max_completion_tokens"] = cap
        if spec.strip_reasoning:
            for name in OPENAI_REASONING_REQUEST_FIELDS:
                out.pop(name, None)
    else:
        if cap is not None:
            out["max_tokens"] = min(out["max_tokens"], cap) if out.get("max_tokens") is not None else cap
        if spec.strip_reasoning:
            out.pop("thinking", None)
    return out


# ---------------------------------------------------------------- responses


def response_usage(api: str, body: bytes) -> Usage:
    """Usage of a whole (non-streamed) successful response; empty when the body is not the API's JSON."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Usage()
    return _WIRE[api].response_usage(data) if isinstance(data, dict) else Usage()


def strip_reasoning_response(api: str, body: bytes) -> bytes:
    """A whole response without its reasoning content; the body unchanged when there is none."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(data, dict):
        return body
    changed = False
    if api == OPENAI:
        for choice in data.get("choices") or []:
            message = as_dict(as_dict(choice).get("message"))
            for name in OPENAI_REASONING_RESPONSE_FIELDS:
                if name in message:
                    del message[name]
                    changed = True
    elif isinstance(data.get("content"), list):
        kept = [b for b in data["content"] if not (isinstance(b, dict) and b.get("type") in ANTHROPIC_REASONING_BLOCKS)]
        changed = len(kept) != len(data["content"])
        data["content"] = kept
    return orjson.dumps(data) if changed else body


# ---------------------------------------------------------------- server-sent events

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Two line breaks in a row end an event (the SSE spec accepts CRLF, CR and LF, even mixed).
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")


class StreamError(ValueError):
    """The upstream's event stream is unusable (an event larger than the limit)."""


@dataclass(frozen=True)
class SSEEvent:
    raw: bytes  # the event as received, terminator included: passed on unchanged when not transformed
    event: str | None
    data: str


def parse_event(raw: bytes) -> SSEEvent:
    event: str | None = None
    data: list[str] = []
    for line in _LINE_BREAK.split(raw.decode("utf-8", errors="replace")):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    return SSEEvent(raw=raw, event=event, data="\n".join(data))


class SSEDecoder:
    """Splits a byte stream into server-sent events, whatever the chunk boundaries."""

    def __init__(self, max_event_bytes: int = MAX_SSE_EVENT_BYTES) -> None:
        self._buffer = b""
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        # The buffer holds no complete terminator, so only its last 3 bytes can start one: scanning
        # from there keeps a large event arriving in many small chunks linear, not quadratic.
        scan_from = max(0, len(self._buffer) - 3)
        buffer = self._buffer + chunk
        events = []
        start = 0
        for match in _EVENT_END.finditer(buffer, scan_from):
            # A CR at the very end may be the first half of a CRLF still on its way: wait for it.
            if match.end() == len(buffer) and buffer.endswith(b"\r"):
                break
            events.append(parse_event(buffer[start:match.end()]))
            start = match.end()
        self._buffer = buffer[start:]
        if len(self._buffer) > self._max:
            raise StreamError(f"an upstream event exceeded {self._max} bytes")
        return events

    def flush(self) -> list[SSEEvent]:
        """The last event when the stream ended without a blank line."""
        rest, self._buffer = self._buffer, b""
        return [parse_event(rest)] if rest.strip() else []


def _event_json(event: SSEEvent) -> dict[str, Any] | None:
    if not event.data or event.data == "[DONE]":
        return None
    try:
        data = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def encode_event(data: Mapping[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


class StreamUsage:
    """Accumulates usage, stop reason and visible text from a stream's events, for either API."""

    def __init__(self, api: str) -> None:
        self._wire = _WIRE[api]
        self.usage = Usage()
        self._text: list[str] = []
        self._text_len = 0

    def feed(self, event: SSEEvent) -> None:
        data = _event_json(event)
        if data is None:
            return
        for text in self._wire.stream_chunk(data, self.usage):
            if self._text_len < MAX_RESPONSE_TEXT:
                self._text.append(text)
                self._text_len += len(text)

    def result(self) -> Usage:
        self.usage.response_text = "".join(self._text)
        return self.usage


class ReasoningStripper:
    """Removes reasoning content from stream events: OpenAI `reasoning_content`/`reasoning` deltas,
    Anthropic thinking blocks (their start, delta and stop events, with later block indexes renumbered
    so clients that index blocks by position still line up)."""

    def __init__(self, api: str) -> None:
        self.api = api
        self._dropped: set[int] = set()
        self._index_map: dict[int, int] = {}

    def transform(self, event: SSEEvent) -> bytes | None:
        """The bytes to send for `event`: unchanged, rewritten, or None to drop it."""
        data = _event_json(event)
        if data is None:
            return event.raw
        if self.api == OPENAI:
            return self._openai(event, data)
        return self._anthropic(event, data)

    def _openai(self, event: SSEEvent, data: dict[str, Any]) -> bytes | None:
        removed = False
        left = False
        for choice in data.get("choices") or []:
            choice = as_dict(choice)
            delta = as_dict(choice.get("delta"))
            for name in OPENAI_REASONING_RESPONSE_FIELDS:
                if name in delta:
                    del delta[name]
                    removed = True
            left = left or bool(delta) or choice.get("finish_reason") is not None
        if not removed:
            return event.raw
        if not left and data.get("usage") is None:
            return None  # the chunk carried reasoning only
        return encode_event(data, event.event)

    def _anthropic(self, event: SSEEvent, data: dict[str, Any]) -> bytes | None:
        kind = data.get("type")
        if kind == "message_start":
            message = as_dict(data.get("message"))
            content = message.get("content")
            if isinstance(content, list) and any(as_dict(b).get("type") in ANTHROPIC_REASONING_BLOCKS for b in content):
                message["content"] = [b for b in content if as_dict(b).get("type") not in ANTHROPIC_REASONING_BLOCKS]
                return encode_event(data, event.event)
            return event.raw
        if kind not in ("content_block_start", "content_block_delta", "content_block_stop"):
            return event.raw
        index = data.get("index")
        if type(index) is not int:
            return event.raw
        if kind == "content_block_start":
            if as_dict(data.get("content_block")).get("type") in ANTHROPIC_REASONING_BLOCKS:
                self._dropped.add(index)
                return None
            self._index_map[index] = index - sum(1 for d in self._dropped if d < index)
        if index in self._dropped:
            return None
        if kind == "content_block_delta" and as_dict(data.get("delta")).get("type") in ("thinking_delta", "signature_delta"):
            return None
        new_index = self._index_map.get(index, index)
        if new_index == index:
            return event.raw
        data["index"] = new_index
        return encode_event(data, event.event)


# ---------------------------------------------------------------- errors

_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 413: "invalid_request_error", 429: "rate_limit_error"}
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    504: "timeout_error"}


def error_payload(api: str, status: int, message: str, *, code: str | None = None,
                  param: str | None = None) -> dict[str, Any]:
    if api == OPENAI:
        kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": kind, "param": param, "code": code}}
    kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_body(api: str, status: int, message: str, *, code: str | None = None, param: str | None = None) -> bytes:
    """An error response body in the API's own format, so the official SDKs raise their usual errors."""
    return orjson.dumps(error_payload(api, status, message, code=code, param=param))


def stream_error_event(api: str, status: int, message: str, *, code: str | None = None) -> bytes:
    """An error in the middle of a stream, as each API sends it (after headers, the status is spent)."""
    payload = error_payload(api, status, message, code=code)
    return encode_event(payload, "error" if api == ANTHROPIC else None)
