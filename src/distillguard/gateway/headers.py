"""Pure helpers of the proxy: which client address to believe, which headers cross it, and the
refusal a decision turns into."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from distillguard.errors import InputError
from distillguard.policy.decision import (
    FAILURE_RULES,
    Decision,
)

REQUEST_ID_HEADER = "x-distillguard-request-id"
MAX_USER_AGENT = 512
MAX_FORWARDED_HOPS = 32
# 499 is nginx's "client closed request": the status recorded when the client left before the end.
CLIENT_CLOSED = 499

# Headers that describe one connection, not the message: never passed across the proxy.
_HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection",
    b"te", b"trailer", b"transfer-encoding", b"upgrade",
})
_NOT_FORWARDED = _HOP_BY_HOP | {b"host", b"content-length", b"accept-encoding", b"expect"}
# What a client says about its own address: believed (and passed on) only from a trusted proxy.
_CLIENT_ADDRESS_HEADERS = frozenset({b"x-forwarded-for", b"x-real-ip", b"forwarded"})
# The body may be rewritten (degrade) and is always sent decoded, so length and encoding are ours.
_NOT_RETURNED = _HOP_BY_HOP | {b"content-length", b"content-encoding", b"date", b"server"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise InputError(f"not an IP network (CIDR): {cidr!r}") from None
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: Address, networks: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_ip(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str | None:
    """The client's address: the socket peer, or, when the peer is a trusted proxy, the right-most
    X-Forwarded-For hop that is not itself a trusted proxy. Hops left of that are the client's own
    claims and are ignored."""
    address = parse_address(peer) if peer else None
    if address is None:
        return peer
    if not forwarded_for or not is_trusted(address, trusted):
        return str(address)
    hops = [hop for header in forwarded_for for hop in header.split(",")][-MAX_FORWARDED_HOPS:]
    for hop in reversed(hops):
        hop_address = parse_address(hop)
        if hop_address is None:  # garbage in the chain: believe nothing further left
            break
        address = hop_address
        if not is_trusted(address, trusted):
            break
    return str(address)


def upstream_headers(raw: Iterable[tuple[bytes, bytes]], peer: str | None = None,
                     peer_trusted: bool = False) -> list[tuple[bytes, bytes]]:
    """The client's headers as forwarded: the key unchanged, connection headers dropped, and an
    uncompressed response asked for (the gateway reads usage out of it).

    With `peer` (the socket peer's address), `X-Forwarded-For` is rewritten as a proxy does: the
    peer appended to the chain when the peer is a trusted proxy, and otherwise the peer alone
    (with `X-Real-IP` and `Forwarded` dropped), since anything an untrusted client wrote there is
    its own claim. The upstream can then trust the right-most entry."""
    raw = list(raw)
    listed = {token.strip().lower() for name, value in raw if name.lower() == b"connection"
              for token in value.split(b",")}
    dropped = _NOT_FORWARDED | listed
    if peer is not None:
        dropped = dropped | _CLIENT_ADDRESS_HEADERS if not peer_trusted else dropped | {b"x-forwarded-for"}
    headers = [(name, value) for name, value in raw if name.lower() not in dropped]
    if peer is not None:
        chain = [value.strip() for name, value in raw if name.lower() == b"x-forwarded-for"] if peer_trusted else []
        headers.append((b"x-forwarded-for", b", ".join([*(c for c in chain if c), peer.encode("latin-1")])))
    headers.append((b"accept-encoding", b"identity"))
    return headers


def returned_headers(raw: Iterable[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers as returned: connection headers dropped, those the
    upstream's own `Connection` header names included (they describe its hop, not the answer)."""
    raw = list(raw)
    listed = {token.strip().lower() for name, value in raw if name.lower() == b"connection"
              for token in value.split(b",")}
    headers = [(name.lower(), value) for name, value in raw if name.lower() not in _NOT_RETURNED | listed]
    headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
    return headers


def rfc3339_ms(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def refusal(decision: Decision) -> tuple[int, str, str, dict[str, str]]:
    """(status, message, code, headers) for a refused request. Names only the rule, nothing internal."""
    if decision.rule in FAILURE_RULES:  # fail closed: not the customer's fault, so not a policy refusal
        return (503, "The request could not be checked right now; retry shortly.", "detection_unavailable",
                {"retry-after": "1"})
    if decision.action == "block":
        return 403, f"This account is blocked by policy (rule: {decision.rule[:100]}).", "account_blocked", {}
    if decision.retry_after is not None:
        seconds = max(1, math.ceil(decision.retry_after))
        return (429, f"Too many requests for this account; retry after {seconds} seconds.",
                "rate_limit_exceeded", {"retry-after": str(seconds)})
    return (403, "Requests to reconstruct the model's hidden reasoning are declined. "
                 "Ask for the answer itself instead.", "reasoning_extraction_declined", {})
