"""How the gateway is served: uvicorn with the httptools parser, plus the request-head limit that
uvicorn applies only to its slower h11 parser.

httptools (llhttp in C) costs a fraction of h11's CPU per request, but uvicorn gives it no limit on
the request line and headers: a client could make the gateway buffer megabytes of header.
`BoundedHttpToolsProtocol` adds one: the bytes of a head still incomplete are counted as they
arrive (so at most the limit plus one socket read is ever buffered), and a complete head is measured
exactly before the request reaches the app. Either way the client gets 400 and the connection is
closed, as with h11's `h11_max_incomplete_event_size`.

It also holds the connection limits uvicorn does not have (`ConnectionLimits`), so that idle or
slow connections cannot lock everyone out:

- a head timeout: a connection must deliver a complete request head within `head_timeout` seconds
  of opening (or of its previous answer), however slowly it trickles bytes, or it gets 408 and is
  closed (uvicorn's keep-alive timer is reset by every byte, so it does not stop a slow client);
- a cap on open connections per client address (trusted proxies exempt), answered 503 and closed;
- the concurrency limit (`limit_concurrency`) counts requests being handled, not idle
  connections, and never applies to `/healthz`, so a probe still gets an answer under load.

The request body has its own timeout in the gateway (`GatewayConfig.body_timeout`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from distillguard.gateway import DEFAULT_MAX_HEADER_BYTES

_HEAD_TOO_LARGE = "Request line and headers too large."
DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS_PER_IP = 64
# The attribute of uvicorn's Config that carries the limits: Config is what uvicorn hands every
# connection (and pickles into each worker process), and it has no field for them.
LIMITS_ATTRIBUTE = "distillguard_limits"
_PER_IP = "distillguard_per_ip"
logger = logging.getLogger("uvicorn.error")


@dataclass(frozen=True)
class ConnectionLimits:
    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    max_connections_per_ip: int | None = DEFAULT_MAX_CONNECTIONS_PER_IP
    exempt_networks: tuple[str, ...] = ()  # CIDRs (the trusted proxies) without a per-address cap
    unlimited_paths: tuple[str, ...] = ("/healthz",)  # served even above the concurrency limit


def _plain_response(status: bytes, message: str) -> bytes:
    body = message.encode("ascii")
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


_TIMEOUT_408 = _plain_response(b"408 Request Timeout", "Request head not received in time.")
_PER_IP_503 = _plain_response(b"503 Service Unavailable", "Too many connections from this address.")


class HeadTooLarge(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, limiting the request head to the size uvicorn's config gives
    h11 (`h11_max_incomplete_event_size`), so both parsers take the same setting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_HEADER_BYTES
        self._head_done = False
        self._head_bytes = 0
        self.limits: ConnectionLimits = getattr(self.config, LIMITS_ATTRIBUTE, None) or ConnectionLimits()
        self._exempt = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in self.limits.exempt_networks)
        self._unlimited = frozenset(path.encode() for path in self.limits.unlimited_paths)
        # uvicorn's own check counts idle connections too: replaced by one on requests in progress.
        self.max_requests = self.limit_concurrency
        self.limit_concurrency = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._peer: str | None = None

    # -- connections

    def _is_exempt(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address.version == net.version and address in net for net in self._exempt)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cap = self.limits.max_connections_per_ip
        host = self.client[0] if self.client else None
        if cap is not None and host is not None and not self._is_exempt(host):
            counts: dict[str, int] = self.server_state.__dict__.setdefault(_PER_IP, {})
            counts[host] = counts.get(host, 0) + 1
            self._peer = host
            if counts[host] > cap:
                logger.warning("Connection refused: more than %d open connections from one address.", cap)
                transport.write(_PER_IP_503)
                transport.close()
                return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._peer is not None:
            counts: dict[str, int] = self.server_state.__dict__.get(_PER_IP, {})
            left = counts.get(self._peer, 1) - 1
            if left > 0:
                counts[self._peer] = left
            else:
                counts.pop(self._peer, None)
            self._peer = None
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        if self.limits.head_timeout > 0 and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return  # a request is being handled: its body has the gateway's own timeout
        self.transport.write(_TIMEOUT_408)
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's head must arrive in time too (uvicorn's keep-alive timer alone is reset
        # by every byte, so a client trickling a head would hold the connection forever).
        if not self.transport.is_closing():
            self._arm_head_timer()

    # -- requests

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if not self._head_done:
            self._head_bytes += len(data)
        super().data_received(data)
        if not self._head_done and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self.logger.warning(_HEAD_TOO_LARGE)
            self.send_400_response(_HEAD_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_done = False

    def on_headers_complete(self) -> None:
        self._head_done = True
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_head_bytes:
            # Raised inside a parser callback, this surfaces as httptools.HttpParserError, which
            # uvicorn answers with 400 and a closed connection before any app code runs.
            raise HeadTooLarge
        self._cancel_head_timer()
        limit = self.max_requests
        if limit is None or len(self.tasks) < limit or self.url.split(b"?", 1)[0] in self._unlimited:
            super().on_headers_complete()
            return
        logger.warning("Exceeded concurrency limit.")
        app = self.app
        self.app = service_unavailable  # the base class starts whatever app it finds here
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_done = False
        self._head_bytes = 0


def uvicorn_options(
    *,
    log_level: str = "info",
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_concurrency: int | None = None,
    keep_alive_timeout: float = 5.0,
    **options: Any,
) -> dict[str, Any]:
    """The uvicorn settings of every server the project runs (gateway, stand-in, tests)."""
    return {
        "http": BoundedHttpToolsProtocol,
        "h11_max_incomplete_event_size": max_header_bytes,
        # Client addresses are resolved by the gateway itself, from --trusted-proxy only.
        "proxy_headers": False,
        "server_header": False,
        "log_level": log_level,
        "timeout_graceful_shutdown": options.pop("timeout_graceful_shutdown", 30),
        # Above this many open requests uvicorn answers 503 at once: an overloaded gateway sheds load
        # instead of working on requests whose clients have already given up.
        # Requests in progress are counted, idle connections not (`BoundedHttpToolsProtocol`).
        "limit_concurrency": max_concurrency,
        # An idle keep-alive connection is closed after this many seconds.
        "timeout_keep_alive": keep_alive_timeout,
        **options,
    }


def uvicorn_config(app: Any, host: str, port: int, *, limits: ConnectionLimits | None = None,
                   **options: Any) -> uvicorn.Config:
    config = uvicorn.Config(app, host=host, port=port, **uvicorn_options(**options))
    setattr(config, LIMITS_ATTRIBUTE, limits or ConnectionLimits())
    return config
