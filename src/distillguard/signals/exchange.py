"""Exchange signals: one pure function from an exchange batch to a signals batch.

`_content_signals` is the only place per-request signals are computed from text, with two entry
points around it: `exchange_signals` over Arrow record batches (the batch engine maps it over
batches, a distributed engine calls it inside `mapInArrow`) and `exchange_signal_rows` over the
validated rows of a few requests (the gateway, where building Arrow arrays would cost more than the
signals). Both give the same values (tested). The output keeps the metadata that later stages group
or link on and drops the text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillguard.schema import EXCHANGE_SCHEMA
from distillguard.signals.capability import classify_request_texts
from distillguard.signals.elicitation import ELICITATION_TYPES, score_request_texts
from distillguard.signals.template import LSH_BANDS, fingerprints
from distillguard.signals.textmodel import request_texts

ELICITATION_COLUMNS = tuple(f"e_{t}" for t in ELICITATION_TYPES)

# Metadata carried through unchanged from the exchange batch.
PASSTHROUGH = (
    "request_id",
    "ts",
    "account_id",
    "model",
    "org_id",
    "api_key_id",
    "conversation_id",
    "ip",
    "asn",
    "country",
    "user_agent",
    "tls_fingerprint",
    "payment_fingerprint",
    "max_tokens",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "stop_reason",
    "status",
    "n_images",
)

SIGNALS_SCHEMA = pa.schema(
    [
        *[EXCHANGE_SCHEMA.field(name) for name in PASSTHROUGH],
        ("ip_prefix", pa.string()),
        ("n_messages", pa.int32()),
        ("n_user", pa.int32()),
        ("has_tool_turn", pa.bool_()),
        ("n_tools", pa.int32()),
        ("prompt_chars", pa.int32()),
        *[(c, pa.float32()) for c in ELICITATION_COLUMNS],
        ("capability", pa.int8()),
        ("skel_hash", pa.int64()),
        ("frame_hash", pa.int64()),  # hash of the skeleton's head (first words)
        ("tail_hash", pa.int64()),  # hash of the skeleton's tail (last words)
        ("sys_hash", pa.int64()),
        ("lsh", pa.list_(pa.int64(), LSH_BANDS)),
    ]
)


@lru_cache(maxsize=65536)
def ip_prefix(ip: str) -> str | None:
    """The /24 of an IPv4 address or the /48 of an IPv6 address: the unit a NAT or a rented range shares."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    bits = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def _conversation_shape(messages: pa.ListArray, n: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The request's prompt (last user message) and counts of messages, user turns, tool turns."""
    parent = pc.list_parent_indices(messages).to_numpy()
    flat = pc.list_flatten(messages)
    roles = flat.field("role").to_numpy(zero_copy_only=False)
    n_messages = np.bincount(parent, minlength=n)
    is_user = roles == "user"
    n_user = np.bincount(parent[is_user], minlength=n)
    n_tool = np.bincount(parent[roles == "tool"], minlength=n)
    last_user = np.full(n, -1, dtype=np.int64)
    user_pos = np.flatnonzero(is_user)
    # Flattened positions grow with the row, so the last write per row is its last user message.
    last_user[parent[user_pos]] = user_pos
    contents = flat.field("content")
    has_user = last_user >= 0
    prompts = [""] * n
    if has_user.any():
        taken = contents.take(pa.array(last_user[has_user])).to_pylist()
        for row, text in zip(np.flatnonzero(has_user), taken, strict=True):
            prompts[row] = text or ""
    return prompts, n_messages, n_user, n_tool


def request_prompts(batch: pa.RecordBatch) -> list[str]:
    """The text of each exchange's request (its last user message), for samples shown to analysts."""
    return _conversation_shape(batch.column("messages"), batch.num_rows)[0]


# The content signals `_content_signals` returns as flat numpy arrays (`sys_hash` and `lsh` differ).
_ARRAY_SIGNALS = ("prompt_chars", *ELICITATION_COLUMNS, "capability", "skel_hash", "frame_hash", "tail_hash")


def _content_signals(
    prompts: list[str], systems: list[str | None], n_tools: np.ndarray, n_images: np.ndarray
) -> dict[str, Any]:
    """The signals computed from each exchange's text, per exchange: numpy arrays, except
    `sys_hash` (a list holding None where there is no system prompt). Both entry points use it."""
    n = len(prompts)
    # Templates repeat: compute every text signal once per distinct (prompt, system) pair.
    index: dict[tuple[str, str | None], int] = {}
    row_to_unique = np.fromiter(
        (index.setdefault((p, s), len(index)) for p, s in zip(prompts, systems, strict=True)),
        dtype=np.int64,
        count=n,
    )
    u_prompts = [p for p, _ in index]
    u_systems = [s for _, s in index]
    # Each pair's texts are split and scored once, for both text classifiers.
    texts, prompt_row, system_row = request_texts(u_prompts, u_systems)
    elicit = score_request_texts(texts, prompt_row, system_row)
    capability = classify_request_texts(texts, prompt_row[row_to_unique], system_row[row_to_unique], n_tools, n_images)
    skel_hash, frame_hash, tail_hash, lsh = fingerprints(u_prompts)
    # Few distinct system prompts serve many prompts: fingerprint each one once.
    distinct_systems = list({s for s in u_systems if s})
    sys_of = dict(zip(distinct_systems, fingerprints(distinct_systems)[0].tolist(), strict=True)) if distinct_systems else {}
    sys_hash = [sys_of.get(s) if s else None for s in u_systems]
    # Without repeated pairs the unique rows are the rows: no gather needed.
    per_row = _identity if len(index) == n else (lambda values: values[row_to_unique])
    out: dict[str, Any] = {
        "prompt_chars": np.fromiter((len(p) for p in prompts), dtype=np.int32, count=n),
        "capability": capability,
        "skel_hash": per_row(skel_hash),
        "frame_hash": per_row(frame_hash),
        "tail_hash": per_row(tail_hash),
        "sys_hash": sys_hash if len(index) == n else [sys_hash[i] for i in row_to_unique],
        "lsh": per_row(lsh),
    }
    for etype, col in zip(ELICITATION_TYPES, ELICITATION_COLUMNS, strict=True):
        out[col] = per_row(np.asarray(elicit[etype], dtype=np.float32))
    return out


def _identity(values: np.ndarray) -> np.ndarray:
    return values


def exchange_signals(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Per-exchange signals for a batch of `distillguard.schema.EXCHANGE_SCHEMA`."""
    n = batch.num_rows
    prompts, n_messages, n_user, n_tool = _conversation_shape(batch.column("messages"), n)
    systems = batch.column("system").to_pylist()
    tools = batch.column("tools")
    n_tools = pc.fill_null(pc.list_value_length(tools), 0).to_numpy(zero_copy_only=False).astype(np.int32)
    n_images = pc.fill_null(batch.column("n_images"), 0).to_numpy(zero_copy_only=False).astype(np.int32)
    content = _content_signals(prompts, systems, n_tools, n_images)

    ips = batch.column("ip").to_pylist()
    columns: dict[str, pa.Array] = {name: batch.column(name) for name in PASSTHROUGH}
    columns["ip_prefix"] = pa.array([ip_prefix(ip) if ip else None for ip in ips], pa.string())
    columns["n_messages"] = pa.array(n_messages.astype(np.int32))
    columns["n_user"] = pa.array(n_user.astype(np.int32))
    columns["has_tool_turn"] = pa.array(n_tool > 0)
    columns["n_tools"] = pa.array(n_tools)
    for name in _ARRAY_SIGNALS:
        columns[name] = pa.array(content[name])
    columns["sys_hash"] = pa.array(content["sys_hash"], pa.int64())
    columns["lsh"] = pa.FixedSizeListArray.from_arrays(pa.array(content["lsh"].reshape(-1)), LSH_BANDS)
    return pa.RecordBatch.from_arrays([columns[f.name] for f in SIGNALS_SCHEMA], schema=SIGNALS_SCHEMA)


_FIELD = {name: i for i, name in enumerate(EXCHANGE_SCHEMA.names)}
_PASSTHROUGH_INDEX = [(name, _FIELD[name]) for name in PASSTHROUGH]


def exchange_signal_rows(rows: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """`exchange_signals` for rows made by `ingest.normalise.exchange_row`, without Arrow: the same
    values as ``exchange_signals(rows_to_batch(rows)).to_pylist()`` (tested), but `ts` stays epoch
    milliseconds. Building and reading Arrow arrays costs about a millisecond per call whatever the
    number of rows, which is most of the work for the gateway's few requests at a time."""
    messages = [row[_FIELD["messages"]] for row in rows]
    prompts = [_last_user_message(roles, contents) for roles, contents in messages]
    systems = [row[_FIELD["system"]] for row in rows]
    n_tools = np.fromiter((len(row[_FIELD["tools"]] or ()) for row in rows), dtype=np.int32, count=len(rows))
    n_images = np.fromiter((row[_FIELD["n_images"]] or 0 for row in rows), dtype=np.int32, count=len(rows))
    content = _content_signals(prompts, systems, n_tools, n_images)
    columns = {name: content[name].tolist() for name in (*_ARRAY_SIGNALS, "lsh")}
    out = []
    for i, row in enumerate(rows):
        roles = messages[i][0]
        signals = {name: row[index] for name, index in _PASSTHROUGH_INDEX}
        ip = signals["ip"]
        signals |= {
            "ip_prefix": ip_prefix(ip) if ip else None,
            "n_messages": len(roles),
            "n_user": roles.count("user"),
            "has_tool_turn": "tool" in roles,
            "n_tools": int(n_tools[i]),
            "sys_hash": content["sys_hash"][i],
            **{name: values[i] for name, values in columns.items()},
        }
        out.append(signals)
    return out


def _last_user_message(roles: Sequence[str], contents: Sequence[str | None]) -> str:
    for role, content in zip(reversed(roles), reversed(contents), strict=True):
        if role == "user":
            return content or ""
    return ""
