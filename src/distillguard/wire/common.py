"""What both wire APIs share: the request checks that turn a malformed body into a `RequestError`
(a 400 at the gateway, a refused record at ingest) instead of a crash, and the `Usage` a response
yields. Per-API parsing is in `wire.openai` and `wire.anthropic`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

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
# Content blocks that are the model's own reasoning, never the customer's words.
ANTHROPIC_REASONING_BLOCKS = frozenset({"thinking", "redacted_thinking"})


class RequestError(ValueError):
    """A request body the gateway refuses with 400; the message is safe to show to the client."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    # orjson reads deeper documents than it writes (254 levels): a degraded request, which is
    # re-serialised, would otherwise fail there. No API request nests anywhere near this deep.
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH and depth_exceeds(body, MAX_JSON_DEPTH):
        raise RequestError(f"The request body nests more than {MAX_JSON_DEPTH} levels deep.")
    return body


def depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def type_name(value: Any) -> str:
    return {str: "string", bool: "boolean", int: "integer", float: "number", list: "array",
            dict: "object"}.get(type(value), "null")


def wrong(param: str, expected: str, value: Any) -> RequestError:
    return RequestError(f"'{param}' must be {expected}, got {type_name(value)}.", param)


def model_name(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str):
        raise wrong("model", "a string", model)
    if not model or len(model) > MAX_MODEL_LENGTH:
        raise RequestError(f"'model' must be 1 to {MAX_MODEL_LENGTH} characters.", "model")
    return model


def flag(body: Mapping[str, Any], param: str) -> bool:
    value = body.get(param)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise wrong(param, "a boolean", value)
    return value


def positive_int(body: Mapping[str, Any], param: str) -> int | None:
    value = body.get(param)
    if value is None:
        return None
    if type(value) is not int:
        raise wrong(param, "an integer", value)
    if value < 1:
        raise RequestError(f"'{param}' must be at least 1.", param)
    return value


def number(body: Mapping[str, Any], param: str) -> float | None:
    value = body.get(param)
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value):
        raise wrong(param, "a number", value)
    return float(value)


class Budget:
    """Content parts a request may still carry (`max_parts` over all its messages and system)."""

    def __init__(self, parts: int) -> None:
        self.left = parts
        self.cap = parts

    def spend(self, n: int, where: str) -> None:
        self.left -= n
        if self.left < 0:
            raise RequestError(f"'{where}': a request may carry at most {self.cap} content parts in all.", where)


def content_part(part: Any, where: str, budget: Budget) -> dict[str, Any] | None:
    """One content part in contract form: text parts keep their text, others (images, ...) only their type."""
    if not isinstance(part, dict):
        raise wrong(where, "an object", part)
    kind = part.get("type")
    kind = kind if isinstance(kind, str) else "unknown"
    if kind in ANTHROPIC_REASONING_BLOCKS:
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


def message_content(content: Any, where: str, budget: Budget) -> str | list[dict[str, Any]]:
    if content is None:  # OpenAI assistant turns that only call tools
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise wrong(where, "a string or an array", content)
    budget.spend(len(content), where)
    parts = (content_part(part, f"{where}[{i}]", budget) for i, part in enumerate(content))
    return [part for part in parts if part is not None]


def parse_messages(body: Mapping[str, Any], roles: Mapping[str, str], max_messages: int,
                   budget: Budget) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise wrong("messages", "an array", messages)
    if len(messages) > max_messages:
        raise RequestError(f"'messages': at most {max_messages} messages per request, got {len(messages)}.",
                           "messages")
    out = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise wrong(where, "an object", message)
        role = message.get("role")
        if not isinstance(role, str):
            raise wrong(f"{where}.role", "a string", role)
        if role not in roles:
            raise RequestError(f"'{where}.role' must be one of {', '.join(sorted(roles))}.", f"{where}.role")
        out.append({"role": roles[role], "content": message_content(message.get("content"), f"{where}.content", budget)})
    return out


def tool_names(body: Mapping[str, Any], param: str) -> list[str]:
    tools = body.get(param)
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise wrong(param, "an array", tools)
    names = []
    for tool in tools[:MAX_TOOL_NAMES]:
        if not isinstance(tool, dict):
            raise wrong(f"{param}[]", "an object", tool)
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else tool.get("name")
        if isinstance(name, str) and name:
            names.append(name[:MAX_TOOL_NAME_LENGTH])
    return names


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


def int_or_none(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
