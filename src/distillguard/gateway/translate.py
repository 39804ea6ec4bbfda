"""Pure translations between the two wire APIs and distillguard's exchange records.

- request bodies (OpenAI chat completions, Anthropic messages) -> exchange records (CONTRACT section 1),
  with the type checks that turn a malformed request into a 400 instead of a crash;
- responses, whole or streamed as server-sent events, -> usage, stop reason and visible text;
- the degrade transforms: capping the output budget, removing reasoning requests, and stripping
  reasoning content from responses and from stream events;
- error bodies in each API's own format.

No I/O here: the gateway feeds bytes in and sends bytes out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from distillguard.ingest.normalise import Rejected, exchange_row
from distillguard.policy.decision import DegradeSpec

OPENAI = "openai"
ANTHROPIC = "anthropic"
APIS = (OPENAI, ANTHROPIC)

MAX_MODEL_LENGTH = 256
MAX_JSON_DEPTH = 64  # nesting levels of a request body (objects and arrays)
# Per request, checked before any text is read: each message and part costs detection time on the
# event loop (20,000 parts took 119 ms), and real conversations stay far below (`--max-messages`,
# `--max-parts`). Both are below the ingest validator's own caps, which stay the outer bound.
DEFAULT_MAX_MESSAGES = 1000
DEFAULT_MAX_PARTS = 2000
MAX_TOOL_NAMES = 256
MAX_TOOL_NAME_LENGTH = 256
# The visible answer kept for the detector; anything longer is truncated (memory stays bounded per stream).
MAX_RESPONSE_TEXT = 1 << 20
# A single server-sent event larger than this means a broken upstream, not a long answer.
MAX_SSE_EVENT_BYTES = 8 << 20

_OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
                 "tool": "tool", "function": "tool"}
_ANTHROPIC_ROLES = {"user": "user", "assistant": "assistant"}
OPENAI_REASONING_REQUEST_FIELDS = ("reasoning_effort", "reasoning")
OPENAI_REASONING_RESPONSE_FIELDS = ("reasoning_content", "reasoning", "reasoning_details")
ANTHROPIC_REASONING_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_ANTHROPIC_SKIPPED_PARTS = ANTHROPIC_REASONING_BLOCKS  # model output, not the customer's words


class RequestError(ValueError):
    """A request body the gateway refuses with 400; the message is safe to show to the client."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


# ---------------------------------------------------------------- requests -> records


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    # orjson reads deeper documents than it writes (254 levels): a degraded request, which is
    # re-serialised, would otherwise fail there. No API request nests anywhere near this deep.
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH and _depth_exceeds(body, MAX_JSON_DEPTH):
        raise RequestError(f"The request body nests more than {MAX_JSON_DEPTH} levels deep.")
    return body


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _type_name(value: Any) -> str:
    return {str: "string", bool: "boolean", int: "integer", float: "number", list: "array",
            dict: "object"}.get(type(value), "null")


def _wrong(param: str, expected: str, value: Any) -> RequestError:
    return RequestError(f"'{param}' must be {expected}, got {_type_name(value)}.", param)


def _model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str):
        raise _wrong("model", "a string", model)
    if not model or len(model) > MAX_MODEL_LENGTH:
        raise RequestError(f"'model' must be 1 to {MAX_MODEL_LENGTH} characters.", "model")
    return model


def _flag(body: Mapping[str, Any], param: str) -> bool:
    value = body.get(param)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _wrong(param, "a boolean", value)
    return value


def _positive_int(body: Mapping[str, Any], param: str) -> int | None:
    value = body.get(param)
    if value is None:
        return None
    if type(value) is not int:
        raise _wrong(param, "an integer", value)
    if value < 1:
        raise RequestError(f"'{param}' must be at least 1.", param)
    return value


def _number(body: Mapping[str, Any], param: str) -> float | None:
    value = body.get(param)
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value):
        raise _wrong(param, "a number", value)
    return float(value)


class _Budget:
    """Content parts a request may still carry (`max_parts` over all its messages and system)."""

    def __init__(self, parts: int) -> None:
        self.left = parts
        self.cap = parts

    def spend(self, n: int, where: str) -> None:
        self.left -= n
        if self.left < 0:
            raise RequestError(f"'{where}': a request may carry at most {self.cap} content parts in all.", where)


def _part(part: Any, where: str, budget: _Budget) -> dict[str, Any] | None:
    """One content part in contract form: text parts keep their text, others (images, ...) only their type."""
    if not isinstance(part, dict):
        raise _wrong(where, "an object", part)
    kind = part.get("type")
    kind = kind if isinstance(kind, str) else "unknown"
    if kind in _ANTHROPIC_SKIPPED_PARTS:
        return None
    text = part.get("text")
    if isinstance(text, str):
        return {"type": kind, "text": text}
    if kind == "tool_result":  # Anthropic: the tool's output is text the model reads
        inner = part.get("content")
        if isinstance(inner, str):
            return {"type": "text", "text": inner}
        if isinstance(inner, list):
            budget.spend(len(inner), f"{where}.content")
            texts = [p["text"] for p in inner if isinstance(p, dict) and isinstance(p.get("text"), str)]
            return {"type": "text", "text": "\n".join(texts)}
    return {"type": kind}


def _content(content: Any, where: str, budget: _Budget) -> str | list[dict[str, Any]]:
    if content is None:  # OpenAI assistant turns that only call tools
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _wrong(where, "a string or an array", content)
    budget.spend(len(content), where)
    parts = (_part(part, f"{where}[{i}]", budget) for i, part in enumerate(content))
    return [part for part in parts if part is not None]


def _messages(body: Mapping[str, Any], roles: Mapping[str, str], max_messages: int,
              budget: _Budget) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _wrong("messages", "an array", messages)
    if len(messages) > max_messages:
        raise RequestError(f"'messages': at most {max_messages} messages per request, got {len(messages)}.",
                           "messages")
    out = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _wrong(where, "an object", message)
        role = message.get("role")
        if not isinstance(role, str):
            raise _wrong(f"{where}.role", "a string", role)
        if role not in roles:
            raise RequestError(f"'{where}.role' must be one of {', '.join(sorted(roles))}.", f"{where}.role")
        out.append({"role": roles[role], "content": _content(message.get("content"), f"{where}.content", budget)})
    return out


def _tool_names(body: Mapping[str, Any], param: str) -> list[str]:
    tools = body.get(param)
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _wrong(param, "an array", tools)
    names = []
    for tool in tools[:MAX_TOOL_NAMES]:
        if not isinstance(tool, dict):
            raise _wrong(f"{param}[]", "an object", tool)
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else tool.get("name")
        if isinstance(name, str) and name:
            names.append(name[:MAX_TOOL_NAME_LENGTH])
    return names


def _system(body: Mapping[str, Any], budget: _Budget) -> str | None:
    system = body.get("system")
    if system is None or isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise _wrong("system", "a string or an array", system)
    budget.spend(len(system), "system")
    texts = []
    for block in system:
        if not isinstance(block, dict):
            raise _wrong("system[]", "an object", block)
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
    return "\n".join(texts)


def request_record(api: str, body: Mapping[str, Any], *, max_messages: int = DEFAULT_MAX_MESSAGES,
                   max_parts: int = DEFAULT_MAX_PARTS, **context: Any) -> dict[str, Any]:
    """The exchange record (CONTRACT section 1) of a request body; `context` adds request_id, ts,
    account_id, api_key_id, ip and user_agent. Raises `RequestError` on a malformed body, or one
    with more than `max_messages` messages or `max_parts` content parts."""
    budget = _Budget(max_parts)
    model = _model(body)
    stream = _flag(body, "stream")
    temperature = _number(body, "temperature")
    if api == OPENAI:
        messages = _messages(body, _OPENAI_ROLES, max_messages, budget)
        completion_cap = _positive_int(body, "max_completion_tokens")
        legacy_cap = _positive_int(body, "max_tokens")
        max_tokens = completion_cap if completion_cap is not None else legacy_cap
        tools = _tool_names(body, "tools") or _tool_names(body, "functions")
        system = None
    else:
        messages = _messages(body, _ANTHROPIC_ROLES, max_messages, budget)
        max_tokens = _positive_int(body, "max_tokens")
        tools = _tool_names(body, "tools")
        system = _system(body, budget)
    return {
        "request_id": context.get("request_id"),
        "ts": context.get("ts"),
        "account_id": context.get("account_id"),
        "api_key_id": context.get("api_key_id"),
        "model": model,
        "messages": messages,
        "system": system,
        "ip": context.get("ip"),
        "user_agent": context.get("user_agent"),
        "max_tokens": max_tokens,
        "temperature": temperature,
        "tools": tools,
        "stream": stream,
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


@dataclass
class Usage:
    """What the detector learns from a response once it has ended."""

    response_text: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    stop_reason: str | None = None

    def as_fields(self) -> dict[str, Any]:
        return {
            "response_text": self.response_text[:MAX_RESPONSE_TEXT],
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "stop_reason": self.stop_reason,
        }


def _int(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _openai_usage(usage: Any, into: Usage) -> None:
    usage = _dict(usage)
    if not usage:
        return
    into.input_tokens = _int(usage.get("prompt_tokens"))
    into.output_tokens = _int(usage.get("completion_tokens"))
    into.reasoning_tokens = _int(_dict(usage.get("completion_tokens_details")).get("reasoning_tokens"))


def _anthropic_usage(usage: Any, into: Usage) -> None:
    usage = _dict(usage)
    if not usage:
        return
    # Cached prompt tokens are reported apart from `input_tokens`; the prompt's size is their sum.
    parts = [_int(usage.get(name)) for name in
             ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")]
    if parts[0] is not None:
        into.input_tokens = sum(part or 0 for part in parts)
    if _int(usage.get("output_tokens")) is not None:
        into.output_tokens = usage["output_tokens"]


def response_usage(api: str, body: bytes) -> Usage:
    """Usage of a whole (non-streamed) successful response; empty when the body is not the API's JSON."""
    usage = Usage()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return usage
    if not isinstance(data, dict):
        return usage
    if api == OPENAI:
        choices = [c for c in data.get("choices") or [] if isinstance(c, dict)]
        texts = [_dict(c.get("message")).get("content") for c in choices]
        usage.response_text = "\n".join(t for t in texts if isinstance(t, str))
        if choices and isinstance(choices[0].get("finish_reason"), str):
            usage.stop_reason = choices[0]["finish_reason"]
        _openai_usage(data.get("usage"), usage)
    else:
        blocks = [b for b in data.get("content") or [] if isinstance(b, dict)]
        usage.response_text = "".join(b["text"] for b in blocks
                                      if b.get("type") == "text" and isinstance(b.get("text"), str))
        if isinstance(data.get("stop_reason"), str):
            usage.stop_reason = data["stop_reason"]
        _anthropic_usage(data.get("usage"), usage)
    return usage


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
            message = _dict(_dict(choice).get("message"))
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
        self.api = api
        self.usage = Usage()
        self._text: list[str] = []
        self._text_len = 0

    def _add_text(self, text: Any) -> None:
        if isinstance(text, str) and text and self._text_len < MAX_RESPONSE_TEXT:
            self._text.append(text)
            self._text_len += len(text)

    def feed(self, event: SSEEvent) -> None:
        data = _event_json(event)
        if data is None:
            return
        if self.api == OPENAI:
            self._feed_openai(data)
        else:
            self._feed_anthropic(data)

    def _feed_openai(self, data: dict[str, Any]) -> None:
        for choice in data.get("choices") or []:
            choice = _dict(choice)
            if choice.get("index", 0) != 0:
                continue
            self._add_text(_dict(choice.get("delta")).get("content"))
            if isinstance(choice.get("finish_reason"), str):
                self.usage.stop_reason = choice["finish_reason"]
        _openai_usage(data.get("usage"), self.usage)

    def _feed_anthropic(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = _dict(data.get("delta"))
            if delta.get("type") == "text_delta":
                self._add_text(delta.get("text"))
        elif kind == "message_start":
            _anthropic_usage(_dict(data.get("message")).get("usage"), self.usage)
        elif kind == "message_delta":
            stop = _dict(data.get("delta")).get("stop_reason")
            if isinstance(stop, str):
                self.usage.stop_reason = stop
            # message_delta carries the final (cumulative) counts; it may repeat input counts too.
            usage = _dict(data.get("usage"))
            if _int(usage.get("output_tokens")) is not None:
                self.usage.output_tokens = usage["output_tokens"]
            if _int(usage.get("input_tokens")) is not None:
                _anthropic_usage(usage, self.usage)

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
            choice = _dict(choice)
            delta = _dict(choice.get("delta"))
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
            message = _dict(data.get("message"))
            content = message.get("content")
            if isinstance(content, list) and any(_dict(b).get("type") in ANTHROPIC_REASONING_BLOCKS for b in content):
                message["content"] = [b for b in content if _dict(b).get("type") not in ANTHROPIC_REASONING_BLOCKS]
                return encode_event(data, event.event)
            return event.raw
        if kind not in ("content_block_start", "content_block_delta", "content_block_stop"):
            return event.raw
        index = data.get("index")
        if type(index) is not int:
            return event.raw
        if kind == "content_block_start":
            if _dict(data.get("content_block")).get("type") in ANTHROPIC_REASONING_BLOCKS:
                self._dropped.add(index)
                return None
            self._index_map[index] = index - sum(1 for d in self._dropped if d < index)
        if index in self._dropped:
            return None
        if kind == "content_block_delta" and _dict(data.get("delta")).get("type") in ("thinking_delta", "signature_delta"):
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
