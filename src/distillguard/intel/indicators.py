"""The indicator vocabulary shared by the STIX exporter and the watchlist importer.

Each kind of indicator is one STIX comparison ``[object:property OP 'value']``. Standard cyber
observables are used where STIX has them (IP ranges, autonomous systems); the others are custom
observable types under the ``x-distillguard-`` prefix, which the STIX 2.1 pattern grammar allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class IndicatorKind:
    name: str  # watchlist key
    stix_object: str
    stix_property: str
    operator: str  # "=" or "ISSUBSET"
    numeric: bool  # value written without quotes
    description: str


INDICATOR_KINDS: tuple[IndicatorKind, ...] = (
    IndicatorKind("ipv4_prefix", "ipv4-addr", "value", "ISSUBSET", False, "client IPv4 range (/24)"),
    IndicatorKind("ipv6_prefix", "ipv6-addr", "value", "ISSUBSET", False, "client IPv6 range (/48)"),
    IndicatorKind("asn", "autonomous-system", "number", "=", True, "autonomous system of the clients"),
    IndicatorKind("tls_fingerprint", "x-distillguard-client", "tls_fingerprint", "=", False,
                  "TLS client fingerprint (JA3/JA4)"),
    IndicatorKind("payment_hmac", "x-distillguard-payment", "fingerprint_hmac", "=", False,
                  "HMAC-SHA256 of the payment fingerprint"),
    IndicatorKind("skeleton_hmac", "x-distillguard-prompt", "skeleton_hmac", "=", False,
                  "HMAC-SHA256 of the prompt skeleton hash"),
    IndicatorKind("head_hmac", "x-distillguard-prompt", "head_hmac", "=", False,
                  "HMAC-SHA256 of the prompt head hash (wrapper preamble)"),
    IndicatorKind("tail_hmac", "x-distillguard-prompt", "tail_hmac", "=", False,
                  "HMAC-SHA256 of the prompt tail hash (wrapper instruction)"),
    IndicatorKind("system_hmac", "x-distillguard-prompt", "system_hmac", "=", False,
                  "HMAC-SHA256 of the system prompt skeleton hash"),
    IndicatorKind("band_hmac", "x-distillguard-prompt", "minhash_band_hmac", "=", False,
                  "HMAC-SHA256 of a MinHash LSH band key of the prompt skeleton"),
)
KIND_BY_NAME = {k.name: k for k in INDICATOR_KINDS}
_KIND_BY_PATH = {(k.stix_object, k.stix_property): k for k in INDICATOR_KINDS}

_PATTERN = re.compile(
    r"^\[(?P<obj>[a-z0-9-]+):(?P<prop>[a-z0-9_.]+)\s+(?P<op>=|ISSUBSET)\s+"
    r"(?:'(?P<text>[^'\\]{1,256})'|(?P<number>\d{1,12}))\]$"
)


def pattern_of(kind: IndicatorKind, value: str) -> str:
    literal = value if kind.numeric else "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return f"[{kind.stix_object}:{kind.stix_property} {kind.operator} {literal}]"


def parse_pattern(pattern: str) -> tuple[str, str] | None:
    """(kind name, value) of a single-comparison pattern of a known kind, else None."""
    m = _PATTERN.match(pattern.strip())
    if m is None:
        return None
    kind = _KIND_BY_PATH.get((m["obj"], m["prop"]))
    if kind is None or kind.operator != m["op"]:
        # An address compared with "=" is a single address: a range of one.
        if kind is not None and kind.operator == "ISSUBSET" and m["op"] == "=" and m["text"]:
            return kind.name, m["text"]
        return None
    value = m["number"] if kind.numeric else m["text"]
    return (kind.name, value) if value is not None else None
