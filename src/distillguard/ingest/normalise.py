"""Contract validation: one decoded record (a dict) -> one row of ``EXCHANGE_SCHEMA`` values.

This is the per-record hot path of ingestion. Python-level operations are what cost here, so the
checks are arranged to do as few as possible per record:

- a record's *shape* is its keys in order and the type of each value, read in C-level passes
  over the dict (no key lookups). Logs repeat a handful of shapes, so the work that depends only
  on the shape is done once per shape and remembered: the type check of every field, where each
  contract field sits among the record's values, which ranges to check, whether unknown fields
  are present;
- per record remain the value checks: timestamps, ranges, message structure.

A record that breaks the contract raises `Rejected` with a reason ``"code: detail"`` that names
the field, e.g. ``"wrong-type: asn (expected integer, got string)"``.

Rows are tuples in ``EXCHANGE_SCHEMA`` order, except that ``messages`` is held as a pair
``(roles, contents)`` of lists, which the batch builder turns into one Arrow list column without
creating a dict per message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import orjson

MAX_MESSAGES = 10_000
MAX_PARTS = 10_000  # content parts of one message (or of `system`); above, corrupt or hostile
MAX_TOKENS = 10_000_000  # above any context window; larger values are corrupt or hostile
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)

ROLES = frozenset({"system", "user", "assistant", "tool"})
TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
# Structured parts that are neither text nor media: they must not count as images.
NON_MEDIA_PART_TYPES = frozenset(
    {"tool_use", "tool_result", "tool_call", "thinking", "redacted_thinking", "refusal"}
)

_NONE = type(None)
_STRING = frozenset({str})
_TS_DESCRIPTION = "RFC 3339 string or integer epoch milliseconds"
# Every contract field in EXCHANGE_SCHEMA order (without the derived n_images and extra): (name,
# accepted types, expected-type wording). Optional fields also accept null, which means absent.
# exchange_row relies on the first six being request_id, ts, account_id, model, messages, system.
FIELDS: tuple[tuple[str, frozenset[type], str], ...] = (
    ("request_id", frozenset({str}), "string"),
    ("ts", frozenset({str, int, datetime}), _TS_DESCRIPTION),
    ("account_id", frozenset({str}), "string"),
    ("model", frozenset({str}), "string"),
    ("messages", frozenset({list}), "array of {role, content}"),
    ("system", frozenset({str, list, _NONE}), "string or array of parts"),
    *(
        (name, frozenset({str, _NONE}), "string")
        for name in ("org_id", "api_key_id", "conversation_id", "ip")
    ),
    ("asn", frozenset({int, _NONE}), "integer"),
    *(
        (name, frozenset({str, _NONE}), "string")
        for name in ("country", "user_agent", "tls_fingerprint", "payment_fingerprint")
    ),
    ("max_tokens", frozenset({int, _NONE}), "integer"),
    ("temperature", frozenset({float, int, _NONE}), "number"),
    ("tools", frozenset({list, _NONE}), "array of strings"),
    ("stream", frozenset({bool, _NONE}), "boolean"),
    ("response_text", frozenset({str, _NONE}), "string"),
    *(
        (name, frozenset({int, _NONE}), "integer")
        for name in ("input_tokens", "output_tokens", "reasoning_tokens")
    ),
    ("stop_reason", frozenset({str, _NONE}), "string"),
    ("status", frozenset({int, _NONE}), "integer"),
)
FIELD_ORDER = tuple(name for name, _, _ in FIELDS)
KNOWN_FIELDS = frozenset(FIELD_ORDER)
_INDEX = {name: i for i, name in enumerate(FIELD_ORDER)}
# (position in FIELD_ORDER, name, lowest, highest) of the integer fields.
_INT_RANGES = tuple(
    (_INDEX[name], name, low, high)
    for name, low, high in (
        ("asn", 0, 4_294_967_295),
        ("max_tokens", 0, MAX_TOKENS),
        ("input_tokens", 0, MAX_TOKENS),
        ("output_tokens", 0, MAX_TOKENS),
        ("reasoning_tokens", 0, MAX_TOKENS),
        ("status", 100, 599),
    )
)
_TEMPERATURE, _TOOLS = _INDEX["temperature"], _INDEX["tools"]
_MAX_SHAPES = 4096  # shapes remembered; a log with more shapes just type-checks more often

Ranges = tuple[tuple[int, str, int, int], ...]
# What a shape tells: (picker of the FIELD_ORDER values out of ``(*record.values(), None)``,
# range checks of its integer fields present, whether it has unknown fields). See `_learn`.
Plan = tuple[Callable[[tuple[Any, ...]], tuple[Any, ...]], Ranges, bool]
Shape = tuple[tuple[str, ...], tuple[type, ...]]
_plans: dict[Shape, Plan] = {}

_JSON_TYPE_NAMES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


class Rejected(Exception):
    """A record that breaks the contract; `reason` is ``"code: detail"``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.reason = f"{code}: {detail}"
        # Every detail starts with the field it is about ("temperature (101 not in 0..100)"): the
        # gateway names it in its 400 answer.
        self.field = detail.split(" ", 1)[0]


def json_type(value: object) -> str:
    """The JSON name of a value's type, as a user reading their log would call it."""
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def wrong_type(field: str, expected: str, value: object) -> Rejected:
    return Rejected("wrong-type", f"{field} (expected {expected}, got {json_type(value)})")


def _rfc3339_ms(text: str, field: str) -> int:
    # fromisoformat also takes ISO forms RFC 3339 forbids (week dates, no separators): insist
    # on the RFC 3339 date shape before handing the string over.
    if text[4:11:3] != "--T" and (len(text) < 16 or text[4:11:3] not in ("--t", "-- ")):
        raise Rejected("bad-timestamp", f"{field} ({text[:40]!r} is not an RFC 3339 date-time)")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:  # RFC 3339 allows lower-case 't' and 'z', which fromisoformat does not
            parsed = datetime.fromisoformat(text.upper())
        except ValueError:
            raise Rejected("bad-timestamp", f"{field} ({text[:40]!r} is not an RFC 3339 date-time)") from None
    if parsed.tzinfo is None:
        raise Rejected("bad-timestamp", f"{field} ({text[:40]!r} has no UTC offset)")
    return (parsed - _EPOCH) // _ONE_MS


def datetime_ms(value: datetime) -> int:
    """UTC milliseconds of a datetime; a naive one (a Parquet timestamp without zone) is UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _ONE_MS


def epoch_ms(value: Any, field: str) -> int:
    """UTC epoch milliseconds of an RFC 3339 string, epoch-ms integer or datetime, range-checked."""
    kind = type(value)
    if kind is str:
        ms = _rfc3339_ms(value, field)
    elif kind is int:
        ms = value
    elif isinstance(value, datetime):
        ms = datetime_ms(value)
    else:
        raise wrong_type(field, "RFC 3339 string or integer epoch milliseconds", value)
    if not MIN_TS_MS <= ms < MAX_TS_MS:
        hint = (
            "; epoch seconds? expected milliseconds"
            if kind is int and MIN_TS_MS // 1000 <= ms < MAX_TS_MS // 1000
            else ""
        )
        raise Rejected("bad-timestamp", f"{field} ({str(value)[:40]} is outside 2000-2100{hint})")
    return ms


def _content_text(content: Any, where: str) -> tuple[str, int]:
    """(text, n_media) of a message content: a string, a list of parts, or null (tool calls)."""
    if type(content) is str:
        return content, 0
    if content is None:
        return "", 0
    if type(content) is not list:
        raise wrong_type(where, "string or array of parts", content)
    if len(content) > MAX_PARTS:
        raise Rejected("too-large", f"{where} ({len(content)} parts > {MAX_PARTS})")
    texts: list[str] = []
    media = 0
    for j, part in enumerate(content):
        if type(part) is not dict:
            raise wrong_type(f"{where}[{j}]", "object", part)
        kind = part.get("type")
        if kind is not None and type(kind) is not str:  # checked first: set lookups need hashable keys
            raise wrong_type(f"{where}[{j}].type", "string", kind)
        if kind in TEXT_PART_TYPES or (kind is None and "text" in part):
            text = part.get("text")
            if type(text) is not str:
                raise wrong_type(f"{where}[{j}].text", "string", text)
            texts.append(text)
        elif kind not in NON_MEDIA_PART_TYPES:
            media += 1
    return "\n".join(texts), media


def _messages(value: Any) -> tuple[list[str], list[str], int]:
    """(roles, contents, n_media) of the ``messages`` field."""
    if type(value) is not list:
        raise wrong_type("messages", "array of {role, content}", value)
    if not value:  # CONTRACT: an exchange has messages; an empty list is one without
        raise Rejected("bad-value", "messages (empty; at least one message is required)")
    if len(value) > MAX_MESSAGES:
        raise Rejected("too-large", f"messages ({len(value)} > {MAX_MESSAGES})")
    roles: list[str] = []
    contents: list[str] = []
    media = 0
    for i, msg in enumerate(value):
        if type(msg) is not dict:
            raise wrong_type(f"messages[{i}]", "object", msg)
        role = msg.get("role")
        if type(role) is not str or role not in ROLES:
            if type(role) is not str:
                raise wrong_type(f"messages[{i}].role", "string", role)
            raise Rejected(
                "bad-value", f"messages[{i}].role ({role[:40]!r} is not system, user, assistant or tool)"
            )
        content = msg.get("content")
        if type(content) is not str:
            content, n = _content_text(content, f"messages[{i}].content")
            media += n
        roles.append(role)
        contents.append(content)
    return roles, contents, media


def _system(
    value: Any, roles: list[str], contents: list[str]
) -> tuple[str | None, list[str], list[str], int]:
    """Merge the top-level system prompt with leading system messages (schema.py's rule)."""
    media = 0
    if value is not None and type(value) is not str:
        # Anthropic also sends `system` as a list of text blocks.
        value, media = _content_text(value, "system")
    lead = 0
    while lead < len(roles) and roles[lead] == "system":
        lead += 1
    if lead == 0:
        return value, roles, contents, media
    parts = [value, *contents[:lead]] if value else contents[:lead]
    return "\n\n".join(parts), roles[lead:], contents[lead:], media


def _learn(shape: Shape, row_values: tuple[Any, ...]) -> Plan:
    """Check a record shape seen for the first time and return (and remember) its plan.

    Raises for the first contract field whose type breaks the contract.
    """
    keys, _ = shape
    position = {key: i for i, key in enumerate(keys)}
    absent = len(keys)  # row_values ends with one extra None that stands for every absent field
    pick = itemgetter(*(position.get(name, absent) for name in FIELD_ORDER))
    values = pick(row_values)
    for (name, accepted, expected), value in zip(FIELDS, values, strict=True):
        if type(value) not in accepted:
            if value is None:
                raise Rejected("missing-field", name)
            raise wrong_type(name, expected, value)
    ranges = tuple(check for check in _INT_RANGES if values[check[0]] is not None)
    plan = (pick, ranges, not KNOWN_FIELDS.issuperset(keys))
    if len(_plans) < _MAX_SHAPES:
        _plans[shape] = plan
    return plan


def _empty_id(values: tuple[Any, ...]) -> Rejected:
    name = next(name for name in ("request_id", "account_id", "model") if not values[_INDEX[name]])
    return Rejected("bad-value", f"{name} (empty)")


def _extra(record: Mapping[str, Any]) -> str | None:
    """Unknown top-level fields as one JSON object string, or None when there are none."""
    kept = {key: value for key, value in record.items() if key not in KNOWN_FIELDS}
    if not kept:
        return None
    return orjson.dumps(kept, default=str, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


def exchange_row(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """Validate one contract record and return its normalised row (see the module docstring)."""
    row_values = (*record.values(), None)
    shape = (tuple(record), tuple(map(type, row_values)))
    plan = _plans.get(shape)
    if plan is None:
        plan = _learn(shape, row_values)
    pick, ranges, has_unknown = plan
    values = pick(row_values)
    request_id, ts, account_id, model, messages, system = values[:6]
    if not (request_id and account_id and model):
        raise _empty_id(values)
    for index, name, low, high in ranges:
        if not low <= values[index] <= high:
            raise Rejected("out-of-range", f"{name} ({values[index]} not in {low}..{high})")
    temperature = values[_TEMPERATURE]
    if temperature is not None and not 0 <= temperature <= 100:  # also refuses NaN
        raise Rejected("out-of-range", f"temperature ({temperature} not in 0..100)")
    tools = values[_TOOLS]
    if tools is not None and not _STRING.issuperset(map(type, tools)):
        raise wrong_type("tools", "array of strings", tools)
    ts_ms = ts if type(ts) is int and MIN_TS_MS <= ts < MAX_TS_MS else epoch_ms(ts, "ts")
    roles, contents, n_media = _messages(messages)
    if system is not None or (roles and roles[0] == "system"):
        system, roles, contents, system_media = _system(system, roles, contents)
        n_media += system_media
    extra = _extra(record) if has_unknown else None
    return (request_id, ts_ms, account_id, model, (roles, contents), system, n_media, *values[6:], extra)
