"""OpenAI chat completions (and the legacy completions and responses bodies of Batch files)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distillguard.wire.common import (
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

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
         "tool": "tool", "function": "tool"}
REASONING_REQUEST_FIELDS = ("reasoning_effort", "reasoning")
REASONING_RESPONSE_FIELDS = ("reasoning_content", "reasoning", "reasoning_details")
# finish_reason -> the contract's stop reasons (CONTRACT: end_turn, max_tokens, tool_use, ...), so
# that an output cut at its budget counts as one whichever API served it.
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use"}


def stop_reason(value: Any) -> str | None:
    return STOP_REASONS.get(value, value) if isinstance(value, str) else None


def _chat_messages(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The body with `messages`; a legacy completions `prompt` or a responses `input` becomes them."""
    if "messages" in body:
        return body
    prompt = body.get("prompt", body.get("input"))
    if isinstance(prompt, str):
        return {"messages": [{"role": "user", "content": prompt}]}
    if isinstance(prompt, list):
        return {"messages": prompt}
    raise wrong("messages", "an array (or a prompt or input)", None)


def request_fields(body: Mapping[str, Any], *, max_messages: int, max_parts: int) -> dict[str, Any]:
    """Contract fields of a request body. Raises `RequestError` naming the parameter at fault."""
    budget = Budget(max_parts)
    completion_cap = positive_int(body, "max_completion_tokens")
    legacy_cap = positive_int(body, "max_tokens")
    output_cap = positive_int(body, "max_output_tokens")  # the responses API's name
    caps = [c for c in (completion_cap, legacy_cap, output_cap) if c is not None]
    return {
        "model": model_name(body),
        "messages": parse_messages(_chat_messages(body), ROLES, max_messages, budget),
        "system": None,
        "max_tokens": caps[0] if caps else None,
        "temperature": number(body, "temperature"),
        "tools": tool_names(body, "tools") or tool_names(body, "functions"),
        "stream": flag(body, "stream"),
    }


def add_usage(usage: Any, into: Usage) -> None:
    usage = as_dict(usage)
    if not usage:
        return
    # Chat completions name the counts prompt/completion tokens, the responses API input/output.
    into.input_tokens = int_or_none(usage.get("prompt_tokens", usage.get("input_tokens")))
    into.output_tokens = int_or_none(usage.get("completion_tokens", usage.get("output_tokens")))
    details = as_dict(usage.get("completion_tokens_details", usage.get("output_tokens_details")))
    into.reasoning_tokens = int_or_none(details.get("reasoning_tokens"))


def response_usage(data: Mapping[str, Any]) -> Usage:
    """Usage, stop reason and visible text of a whole response body."""
    usage = Usage()
    choices = [c for c in as_list(data.get("choices")) if isinstance(c, dict)]
    texts = [as_dict(c.get("message")).get("content", c.get("text")) for c in choices]
    if not choices and isinstance(data.get("output_text"), str):
        texts = [data["output_text"]]
    usage.response_text = "\n".join(t for t in texts if isinstance(t, str))
    if choices:
        usage.stop_reason = stop_reason(choices[0].get("finish_reason"))
    add_usage(data.get("usage"), usage)
    return usage


def stream_chunk(data: Mapping[str, Any], into: Usage) -> list[str]:
    """Fold one streamed chunk into `into`; returns the visible text it adds (first choice only)."""
    texts = []
    for choice in as_list(data.get("choices")):
        choice = as_dict(choice)
        if choice.get("index", 0) != 0:
            continue
        text = as_dict(choice.get("delta")).get("content")
        if isinstance(text, str) and text:
            texts.append(text)
        if isinstance(choice.get("finish_reason"), str):
            into.stop_reason = stop_reason(choice["finish_reason"])
    add_usage(data.get("usage"), into)
    return texts
