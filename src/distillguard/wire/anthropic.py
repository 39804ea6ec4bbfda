"""Anthropic messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distillguard.wire.common import (
    ANTHROPIC_REASONING_BLOCKS,
    Budget,
    Usage,
    as_dict,
    as_list,
    flag,
    int_or_none,
    model_name,
    number,
    parse_messages,
    positive_int,
    tool_names,
    wrong,
)

ROLES = {"user": "user", "assistant": "assistant"}
REASONING_BLOCKS = ANTHROPIC_REASONING_BLOCKS


def _system(body: Mapping[str, Any], budget: Budget) -> str | None:
    system = body.get("system")
    if system is None or isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise wrong("system", "a string or an array", system)
    budget.spend(len(system), "system")
    texts = []
    for block in system:
        if not isinstance(block, dict):
            raise wrong("system[]", "an object", block)
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
    return "\n".join(texts)


def request_fields(body: Mapping[str, Any], *, max_messages: int, max_parts: int) -> dict[str, Any]:
    """Contract fields of a request body. Raises `RequestError` naming the parameter at fault."""
    budget = Budget(max_parts)
    return {
        "model": model_name(body),
        "messages": parse_messages(body, ROLES, max_messages, budget),
        "system": _system(body, budget),
        "max_tokens": positive_int(body, "max_tokens"),
        "temperature": number(body, "temperature"),
        "tools": tool_names(body, "tools"),
        "stream": flag(body, "stream"),
    }


def add_usage(usage: Any, into: Usage) -> None:
    usage = as_dict(usage)
    if not usage:
        return
    # Cached prompt tokens are reported apart from `input_tokens`; the prompt's size is their sum.
    parts = [int_or_none(usage.get(name)) for name in
             ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")]
    if parts[0] is not None:
        into.input_tokens = sum(part or 0 for part in parts)
    if int_or_none(usage.get("output_tokens")) is not None:
        into.output_tokens = usage["output_tokens"]


def response_usage(data: Mapping[str, Any]) -> Usage:
    """Usage, stop reason and visible text of a whole response body."""
    usage = Usage()
    blocks = [b for b in as_list(data.get("content")) if isinstance(b, dict)]
    usage.response_text = "".join(b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str))
    if isinstance(data.get("stop_reason"), str):
        usage.stop_reason = data["stop_reason"]
    add_usage(data.get("usage"), usage)
    return usage


def stream_chunk(data: Mapping[str, Any], into: Usage) -> list[str]:
    """Fold one streamed event into `into`; returns the visible text it adds."""
    kind = data.get("type")
    if kind == "content_block_delta":
        delta = as_dict(data.get("delta"))
        text = delta.get("text")
        if delta.get("type") == "text_delta" and isinstance(text, str) and text:
            return [text]
    elif kind == "message_start":
        add_usage(as_dict(data.get("message")).get("usage"), into)
    elif kind == "message_delta":
        stop = as_dict(data.get("delta")).get("stop_reason")
        if isinstance(stop, str):
            into.stop_reason = stop
        # message_delta carries the final (cumulative) counts; it may repeat input counts too.
        usage = as_dict(data.get("usage"))
        if int_or_none(usage.get("output_tokens")) is not None:
            into.output_tokens = usage["output_tokens"]
        if int_or_none(usage.get("input_tokens")) is not None:
            add_usage(usage, into)
    return []
