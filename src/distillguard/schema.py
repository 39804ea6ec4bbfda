"""Canonical in-memory shapes shared by every stage of the flow.

Every reader and adapter produces record batches of ``EXCHANGE_SCHEMA``; every later stage
(signals, behaviour, linking, scoring, gateway) consumes only these columns. Keeping one shape
is what lets the batch engine, the streaming engine and a distributed engine share code.

Normalisation rules (applied by ``distillguard.ingest``):
- ``system`` is the top-level system prompt joined (with a blank line) to any *leading* system
  messages; those leading system messages are removed from ``messages``.
- ``messages[].content`` is plain text: a string content is kept as is, a list of parts keeps its
  ``text`` parts joined with a newline; other parts (images, audio, files) are counted in
  ``n_images``.
- ``ts`` is UTC milliseconds.
- unknown top-level fields are kept, as one JSON object string, in ``extra``.
"""

from __future__ import annotations

import pyarrow as pa

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])

TS_TYPE = pa.timestamp("ms", tz="UTC")

EXCHANGE_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("ts", TS_TYPE),
        ("account_id", pa.string()),
        ("model", pa.string()),
        ("messages", pa.list_(MESSAGE_TYPE)),
        ("system", pa.string()),
        ("n_images", pa.int32()),
        ("org_id", pa.string()),
        ("api_key_id", pa.string()),
        ("conversation_id", pa.string()),
        ("ip", pa.string()),
        ("asn", pa.int64()),
        ("country", pa.string()),
        ("user_agent", pa.string()),
        ("tls_fingerprint", pa.string()),
        ("payment_fingerprint", pa.string()),
        ("max_tokens", pa.int64()),
        ("temperature", pa.float64()),
        ("tools", pa.list_(pa.string())),
        ("stream", pa.bool_()),
        ("response_text", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("stop_reason", pa.string()),
        ("status", pa.int64()),
        ("extra", pa.string()),
    ]
)

EXCHANGE_FIELDS: tuple[str, ...] = tuple(EXCHANGE_SCHEMA.names)

ACCOUNTS_SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("created_at", TS_TYPE),
        ("tier", pa.string()),
        ("verified", pa.bool_()),
        ("email_domain", pa.string()),
        ("country", pa.string()),
        ("payment_fingerprint", pa.string()),
    ]
)

RELEASES_SCHEMA = pa.schema([("model", pa.string()), ("released_at", TS_TYPE)])

# Output contract (CONTRACT section 2); the header order is part of the contract.
ACCOUNTS_CSV_HEADER = ("account_id", "risk", "flagged", "cluster_id", "reasons")
CLUSTERS_CSV_HEADER = ("cluster_id", "n_accounts", "n_exchanges", "risk", "capabilities", "reasons")
ACTIONS_CSV_HEADER = ("account_id", "action", "first_ts", "exchanges_before")
TRUTH_CSV_HEADER = ("account_id", "label", "campaign", "actor_type")
