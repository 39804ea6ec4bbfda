"""How the gateway is served: uvicorn with the httptools parser, plus the request-head limit that
uvicorn applies only to its slower h11 parser.

httptools (llhttp in C) costs a fraction of h11's CPU per request, but uvicorn gives it no limit on
the request line and headers: a client could make the gateway buffer megabytes of header.
`BoundedHttpToolsProtocol` adds one: the bytes of a head still incomplete are counted as they
arrive (so at most the limit plus one socket read is ever buffered), and a complete head is measured
exactly before the request reaches the app. Either way the client gets 400 and the connection is
closed, as with h11's `h11_max_incomplete_event_size`.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from distillguard.gateway import DEFAULT_MAX_HEADER_BYTES

_HEAD_TOO_LARGE = "Request line and headers too large."


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
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_done = False
        self._head_bytes = 0


def uvicorn_options(
    *,
    log_level: str = "info",
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_concurrency: int | None = None,
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
        "limit_concurrency": max_concurrency,
        **options,
    }


def uvicorn_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, **uvicorn_options(**options))
