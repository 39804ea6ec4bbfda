"""The gateway's client to the upstream model API.

aiohttp rather than httpx: a pass-through proxy with nothing else in it costs 0.5-1.3 ms of CPU per
request on aiohttp's C parser against 1.6-2.5 ms through httpx/httpcore on the same machine, and
carries 750-1,000 req/s against 375 (`benchmarks/bench_gateway.py --target bare-aiohttp` and
`bare-httpx`, 2026-12-03). At the gateway's target rates that difference is most of the budget.

The session is a plain connection pool, not a browser: no cookie jar (the upstream's cookies would
otherwise go out with other customers' requests), no redirects, no proxies from the environment, and
no default headers of its own beyond what HTTP needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from yarl import URL

RawHeaders = tuple[tuple[bytes, bytes], ...]
logger = logging.getLogger("distillguard.gateway")


@dataclass
class Whole:
    status: int
    headers: RawHeaders
    body: bytes


@dataclass
class Streaming:
    response: aiohttp.ClientResponse

    @property
    def headers(self) -> RawHeaders:
        return self.response.raw_headers

    def chunks(self) -> AsyncIterator[bytes]:
        return self.response.content.iter_any()

    def close(self) -> None:
        """Ends the upstream request: the connection is reused only when the body was read to the end."""
        self.response.release()


@dataclass
class Failed:
    status: int  # 502 or 504
    message: str
    code: str


Reply = Whole | Streaming | Failed

# Errors of the upstream or the network, as opposed to faults of the gateway's own.
UpstreamError = aiohttp.ClientError
UpstreamTimeout = TimeoutError


class ResponseTooLarge(Exception):
    pass


async def read_capped(chunks: AsyncIterator[bytes], limit: int, too_large: type[Exception]) -> bytes:
    """All of `chunks`, raising `too_large` as soon as they pass `limit` bytes (never held whole)."""
    parts = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large
        parts.append(chunk)
    return b"".join(parts)


def timeout_failure() -> Failed:
    return Failed(504, "The upstream model API did not answer in time.", "upstream_timeout")


def upstream_failure(detail: str) -> Failed:
    """A 502 whose message says what happened in plain words only: the class of the exception,
    the upstream's address or its error text are logged, never sent to the client."""
    return Failed(502, f"The upstream model API failed: {detail}.", "upstream_error")


def connection_failure(exc: BaseException) -> Failed:
    logger.warning("upstream request failed: %s", type(exc).__name__)
    return upstream_failure("no usable answer")


def is_event_stream(headers: RawHeaders) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.split(b";")[0].strip().lower() == b"text/event-stream"
    return False


class Upstream:
    """A pool of connections to one upstream. Made lazily inside the running event loop (aiohttp's
    session belongs to one loop) and closed with the gateway."""

    def __init__(self, base_url: str, *, read_timeout: float, connect_timeout: float, max_connections: int,
                 max_response_bytes: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_response_bytes = max_response_bytes
        # sock_read: seconds without progress, so a long stream that keeps sending is never cut.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=self._timeout,
                skip_auto_headers=("User-Agent", "Accept", "Content-Type"),
                trust_env=False,
            )
        return self._session

    async def call(self, path_qs: str, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Reply:
        """The upstream's reply, or why there is none. An open event stream is returned for the caller
        to relay and close; anything else is read whole here."""
        session = self._open()
        request_headers = CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in headers)
        try:
            response = await session.post(URL(self.base_url + path_qs, encoded=True), data=body,
                                          headers=request_headers, allow_redirects=False)
        except UpstreamTimeout:
            return timeout_failure()
        except UpstreamError as exc:
            return connection_failure(exc)
        if response.status == 200 and is_event_stream(response.raw_headers):
            return Streaming(response)
        try:
            body = await read_capped(response.content.iter_any(), self.max_response_bytes, ResponseTooLarge)
        except UpstreamTimeout:
            return timeout_failure()
        except UpstreamError as exc:
            return connection_failure(exc)
        except ResponseTooLarge:
            return upstream_failure(f"response larger than {self.max_response_bytes} bytes")
        finally:
            response.release()  # synchronous: done even when the read was cancelled
        if response.status >= 500:
            # The upstream's own error text may describe its internals: the client gets a plain 502/504.
            if response.status == 504:
                return timeout_failure()
            return upstream_failure(f"HTTP {response.status}")
        return Whole(response.status, response.raw_headers, body)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            # Lets the transports finish closing before the loop goes away (aiohttp's documented advice).
            await asyncio.sleep(0)
