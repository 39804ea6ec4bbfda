"""Adapters from other log shapes to the exchange contract, and the detection that picks one.

Each adapter is a pure function from one decoded record to a contract record (a dict with the
CONTRACT section 1 field names); the contract validator then checks and normalises it like any
other record, so adapters only rename, reshape and convert units. Fields an adapter does not map
are passed through under their own names and end up in ``extra``.

- ``access-log``: flat JSON lines as an nginx / API gateway writes them (``timestamp``,
  ``ip_address``, ``prompt``, ``token_count``, ...). nginx writes ``-`` for a missing variable and
  numbers as strings; both are undone here.
- ``openai-batch``: OpenAI Batch API request lines (``custom_id``, ``method``, ``url``, ``body``)
  and output lines (``custom_id``, ``response.body``, ``error``), joined by ``custom_id``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from distillguard.ingest.normalise import MAX_MESSAGES, MAX_PARTS, Rejected, datetime_ms
from distillguard.wire import openai
from distillguard.wire.common import RequestError, as_dict

FORMATS = ("auto", "contract", "access-log", "openai-batch")

_MISSING = (None, "", "-")

# Contract field <- access-log names, most specific first; the contract name itself comes first
# so a log already using it is never overridden by an alias.
ACCESS_LOG_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("request_id", ("request_id", "id", "req_id", "x_request_id")),
    ("ts", ("ts", "timestamp", "@timestamp", "time", "time_iso8601", "time_local", "msec")),
    ("account_id", ("account_id", "account", "customer_id", "user_id")),
    ("model", ("model", "model_name")),
    ("system", ("system", "system_prompt")),
    ("org_id", ("org_id", "organization_id")),
    ("api_key_id", ("api_key_id", "key_id", "api_key_hash")),
    ("conversation_id", ("conversation_id", "thread_id")),
    ("ip", ("ip", "ip_address", "client_ip", "remote_addr")),
    ("asn", ("asn", "asn_number")),
    ("country", ("country", "country_code", "geoip_country_code")),
    ("user_agent", ("user_agent", "http_user_agent")),
    ("tls_fingerprint", ("tls_fingerprint", "ja3_hash", "ja4_hash", "ja3", "ja4")),
    ("payment_fingerprint", ("payment_fingerprint", "payment_method_hash")),
    ("max_tokens", ("max_tokens",)),
    ("temperature", ("temperature",)),
    ("tools", ("tools",)),
    ("stream", ("stream",)),
    ("response_text", ("response_text", "response", "completion")),
    ("input_tokens", ("input_tokens", "prompt_tokens")),
    ("output_tokens", ("output_tokens", "completion_tokens", "token_count")),
    ("reasoning_tokens", ("reasoning_tokens",)),
    ("stop_reason", ("stop_reason", "finish_reason")),
    ("status", ("status", "status_code", "http_status")),
)
_ACCESS_INT_FIELDS = frozenset(
    {"asn", "max_tokens", "input_tokens", "output_tokens", "reasoning_tokens", "status"}
)
# Keys that only an access log has: one of them in a record without `ts` means access-log.
_ACCESS_LOG_MARKERS = frozenset(
    {
        "timestamp",
        "@timestamp",
        "time_local",
        "prompt",
        "system_prompt",
        "ip_address",
        "remote_addr",
        "token_count",
        "asn_number",
        "ja3_hash",
        "payment_method_hash",
        "country_code",
    }
)
_CLF_FORMAT = "%d/%b/%Y:%H:%M:%S %z"  # nginx $time_local, e.g. 10/Oct/2024:13:55:36 +0000
_SECONDS_BELOW = 100_000_000_000  # an epoch below this is seconds (ms would be before 1973)
_ABSURD_EPOCH = 1e15  # beyond any time this project reads, in seconds or in ms


def detect_format(record: Mapping[str, Any]) -> str:
    """The adapter for a file, judged from its first decoded record."""
    if "custom_id" in record and ("body" in record or "response" in record or "error" in record):
        return "openai-batch"
    if "ts" in record or ("messages" in record and "request_id" in record):
        return "contract"
    if not _ACCESS_LOG_MARKERS.isdisjoint(record.keys()):
        return "access-log"
    return "contract"


def _epoch_number_ms(number: float) -> Any:
    """Epoch ms of a number of seconds (or of ms, when too big to be seconds).

    NaN, infinities and absurd magnitudes are returned unchanged for the validator to refuse:
    multiplying them would overflow.
    """
    if not -_ABSURD_EPOCH < number < _ABSURD_EPOCH:
        return number
    return round(number * 1000) if number < _SECONDS_BELOW else round(number)


def _access_ts(value: Any) -> Any:
    """Epoch ms from the time forms gateways write; anything else goes to contract validation."""
    if type(value) is int:
        return value * 1000 if value < _SECONDS_BELOW else value
    if type(value) is float:
        return _epoch_number_ms(value)
    if type(value) is not str or value[4:5] == "-":
        return value  # RFC 3339 (or a wrong type): the contract validator decides
    if "/" in value:
        try:
            return datetime_ms(datetime.strptime(value, _CLF_FORMAT))
        except ValueError:
            return value
    try:
        number = float(value)  # nginx $msec: "1704103200.123"
    except ValueError:
        return value
    return _epoch_number_ms(number)


def _access_int(value: Any) -> Any:
    """Integers that gateways log as strings ("1024", "AS15169"); other values pass unchanged."""
    if type(value) is str:
        digits = value[2:] if value[:2].upper() == "AS" else value
        if digits.isascii() and digits.isdigit():
            return int(digits)
    return value


def _access_scalar(value: Any) -> Any:
    """Booleans and numbers written as strings ("true", "0.7")."""
    if type(value) is str:
        if value in ("true", "false"):
            return value == "true"
        try:
            return float(value)
        except ValueError:
            return value
    return value


def synthetic_request_id(raw: bytes | None, record: Mapping[str, Any]) -> str:
    """A request id derived from the line's content, so ingesting the same line twice is a no-op."""
    content = (
        raw.strip() if raw is not None else orjson.dumps(record, option=orjson.OPT_SORT_KEYS, default=str)
    )
    return "h-" + hashlib.blake2b(content, digest_size=16).hexdigest()


def access_log_to_contract(record: Mapping[str, Any], raw: bytes | None) -> dict[str, Any]:
    """Map one access-log line to a contract record (see ACCESS_LOG_FIELDS for the names)."""
    out: dict[str, Any] = {}
    used: set[str] = set()
    for target, names in ACCESS_LOG_FIELDS:
        for name in names:
            value = record.get(name)
            if value not in _MISSING:
                out[target] = value
                used.add(name)
                break
            if name in record:
                used.add(name)  # "-" or empty: nginx's way of saying absent
    if "messages" in record:
        out["messages"] = record["messages"]
        used.add("messages")
    elif record.get("prompt") not in _MISSING:
        out["messages"] = [{"role": "user", "content": record["prompt"]}]
    used.add("prompt")
    if "ts" in out:
        out["ts"] = _access_ts(out["ts"])
    for name in _ACCESS_INT_FIELDS & out.keys():
        out[name] = _access_int(out[name])
    for name in ("temperature", "stream"):
        if name in out:
            out[name] = _access_scalar(out[name])
    if "request_id" not in out:
        out["request_id"] = synthetic_request_id(raw, record)
    for key, value in record.items():
        if key not in used:
            out.setdefault(key, value)
    return out


# --- OpenAI Batch API -------------------------------------------------------------------------


def _metadata(request: Mapping[str, Any], output: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **as_dict(output.get("metadata")),
        **as_dict(request.get("metadata")),
        **as_dict(as_dict(request.get("body")).get("metadata")),
    }


def _wire_error(exc: RequestError) -> Rejected:
    """The refusal of a body the OpenAI reader refuses, naming its field (as the gateway's 400 does)."""
    return Rejected("bad-value", f"{exc.param or 'body'} ({exc})")


def _request_fields(request: Mapping[str, Any]) -> dict[str, Any]:
    body = request.get("body")
    if type(body) is not dict:
        raise Rejected("unmappable", "body (request line has no body object)")
    if "messages" not in body and "prompt" not in body and "input" not in body:
        raise Rejected("unmappable", "messages (request body has no messages, prompt or input)")
    # The output line names the model served, so a request body without one is still an exchange.
    unnamed = body.get("model") is None
    try:
        # The contract validator applies its own, larger caps afterwards.
        fields = openai.request_fields({**body, "model": "-"} if unnamed else body,
                                       max_messages=MAX_MESSAGES, max_parts=MAX_MESSAGES * MAX_PARTS)
    except RequestError as exc:
        raise _wire_error(exc) from None
    if unnamed:
        del fields["model"]
    fields["url"] = request.get("url")
    if not fields["tools"] and "tools" not in body and "functions" not in body:
        del fields["tools"]
    if "user" in body:
        fields["user"] = body["user"]
    return fields


def _output_fields(output: Mapping[str, Any]) -> dict[str, Any]:
    response = as_dict(output.get("response"))
    body = as_dict(response.get("body"))
    created = body.get("created")
    fields: dict[str, Any] = {
        "status": response.get("status_code"),
        "model": body.get("model"),
        **(openai.response_usage(body).as_fields() if body else {}),
    }
    fields["response_text"] = fields.get("response_text") or None  # no answer is not an empty one
    if type(created) is int or type(created) is float:  # epoch seconds
        fields["ts"] = created * 1000 if type(created) is int else _epoch_number_ms(created)
    if output.get("error") is not None:
        fields["batch_error"] = output["error"]
    return fields


def openai_batch_to_contract(
    request: Mapping[str, Any] | None, output: Mapping[str, Any] | None, default_account: str | None
) -> dict[str, Any]:
    """One exchange from a request line and/or its output line (at least one is given).

    Required to map: an account (``metadata.account_id`` or the `default_account`) and a time
    (``response.body.created`` of the output line, else ``metadata.ts``). With the request line
    alone and no ``metadata.ts`` the exchange is unmappable; with the output line alone the
    exchange has no prompt (``messages`` is empty).
    """
    request = request or {}
    output = output or {}
    fields = (
        {key: value for key, value in _output_fields(output).items() if value is not None} if output else {}
    )
    if request:
        for key, value in _request_fields(request).items():
            if value is not None:
                fields[key] = value  # the request's model is the one asked for
    else:
        fields["messages"] = []
    metadata = _metadata(request, output)
    account = metadata.get("account_id", default_account)
    if account is None:
        raise Rejected("unmappable", "account_id (no metadata.account_id and no default account given)")
    if "ts" not in fields:
        ts = metadata.get("ts", metadata.get("timestamp"))
        if ts is None:
            error = as_dict(output.get("error"))
            why = (
                f"the output line is an error: {error.get('code')}"
                if error
                else "no response.body.created and no metadata.ts"
            )
            raise Rejected("unmappable", f"ts ({why})")
        fields["ts"] = ts
    custom_id = request.get("custom_id", output.get("custom_id"))
    response = as_dict(output.get("response"))
    fields["request_id"] = output.get("id") or response.get("request_id") or custom_id
    fields["account_id"] = account
    fields["custom_id"] = custom_id
    return fields


@dataclass(frozen=True)
class BatchHalf:
    """One OpenAI batch line waiting for its other half; kept as bytes to stay compact."""

    is_output: bool
    raw: bytes
    file: str
    line: int

    def decoded(self) -> dict[str, Any]:
        return orjson.loads(self.raw)


Pair = tuple[BatchHalf | None, BatchHalf | None]  # (request line, output line)


class BatchJoiner:
    """Pairs request and output lines by ``custom_id``, across files, in bounded memory.

    Halves wait until their partner arrives; past `max_pending_bytes` the oldest waiting half is
    released alone (an output alone still maps; a request alone usually does not).
    """

    def __init__(self, max_pending_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_pending_bytes = max_pending_bytes
        self._pending: OrderedDict[str, BatchHalf] = OrderedDict()
        self._pending_bytes = 0

    @staticmethod
    def is_output(record: Mapping[str, Any]) -> bool:
        return "response" in record or "error" in record

    def add(self, custom_id: str, half: BatchHalf) -> Iterator[Pair]:
        """Pairs made ready by this half: its match, or halves pushed out of the waiting room."""
        waiting = self._pending.pop(custom_id, None)
        if waiting is not None:
            self._pending_bytes -= len(waiting.raw)
            if waiting.is_output != half.is_output:
                yield (waiting, half) if half.is_output else (half, waiting)
                return
            yield (None, waiting) if waiting.is_output else (waiting, None)
        self._pending[custom_id] = half
        self._pending_bytes += len(half.raw)
        while self._pending_bytes > self.max_pending_bytes and len(self._pending) > 1:
            _, oldest = self._pending.popitem(last=False)
            self._pending_bytes -= len(oldest.raw)
            yield (None, oldest) if oldest.is_output else (oldest, None)

    def drain(self) -> Iterator[Pair]:
        """Every half still waiting, alone, in arrival order."""
        while self._pending:
            _, half = self._pending.popitem(last=False)
            self._pending_bytes -= len(half.raw)
            yield (None, half) if half.is_output else (half, None)
