"""The gateway: a reverse proxy in front of a model API that enforces the detector's decisions inline.

For each request to `POST /v1/chat/completions` (OpenAI) or `POST /v1/messages` (Anthropic):

    key -> account      read body (bounded) -> record      detector (Coalescer)    enforce
    (hash, never kept)  (400/413 on bad input)             (Decision)              403 / 429 / degrade / forward

then the upstream's answer is passed through (streamed chunk by chunk when it is a stream), usage is
read from it on the way, and the detector is told how the exchange ended. Every request
leaves one audit line and updates the metrics. The decision logic is in the detector and the wire
formats are in `translate`; this module is the I/O around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Protocol, TypeVar

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from distillguard import __version__
from distillguard.errors import InputError, StateUnavailableError
from distillguard.gateway.keys import (
    Credential,
    CredentialError,
    KeyMap,
    forwarded_headers,
    identify,
    install_log_redaction,
    request_credential,
)
from distillguard.gateway.translate import (
    ANTHROPIC,
    DEFAULT_MAX_MESSAGES,
    DEFAULT_MAX_PARTS,
    OPENAI,
    ReasoningStripper,
    RequestError,
    SSEDecoder,
    StreamError,
    StreamUsage,
    Usage,
    check_record,
    degrade_request,
    error_body,
    parse_json_object,
    request_record,
    response_usage,
    stream_error_event,
    strip_reasoning_response,
)
from distillguard.gateway.upstream import (
    Failed,
    Streaming,
    Upstream,
    UpstreamError,
    UpstreamTimeout,
    read_capped,
)
from distillguard.policy.decision import (
    DETECTOR_ERROR,
    FAILURE_RULES,
    STATE_UNAVAILABLE,
    Decision,
    DegradeSpec,
    failure_decision,
)
from distillguard.policy.policy import DEFAULT_ON_DETECTOR_ERROR, DEFAULT_ON_STATE_UNAVAILABLE, FAILURE_MODES

logger = logging.getLogger("distillguard.gateway")

DEFAULT_MAX_BODY_BYTES = 1 << 20
# Requests assessed in one call at most; more wait for the next turn of the loop.
MAX_BATCH = 256
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
T = TypeVar("T")


class Detector(Protocol):
    """What the gateway needs from detection and policy. Both calls take the requests that arrived
    together, in arrival order (see `Coalescer`). A detector whose `asynchronous` attribute is true
    also has `assess_many_async` and `complete_many_async`, which the gateway awaits instead; one
    with a `policy` attribute gives the failure modes (`Policy.on_detector_error`, ...)."""

    def assess_many(self, records: Sequence[dict[str, Any]], now: float) -> list[Decision]: ...

    def complete_many(self, records: Sequence[dict[str, Any]]) -> None: ...


@dataclass(frozen=True)
class GatewayConfig:
    upstream: str  # base URL; the request's path (and query) is appended to it
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-For is believed
    audit_path: Path | None = None
    keymap: KeyMap | None = None
    upstream_timeout: float = 600.0  # seconds without progress (connect excluded) before a 504
    connect_timeout: float = 10.0
    max_response_bytes: int = 64 << 20  # a whole (non-streamed) upstream body larger than this is a 502
    max_upstream_connections: int = 512
    # Seconds for the whole request body once the head is in: a client trickling its body must not
    # hold a connection (and a concurrency slot) for as long as it likes.
    body_timeout: float = 30.0
    # `/healthz` and `/metrics` only on the admin app (`create_admin_app`, `--admin-port`), not on
    # the API port an internet-facing gateway exposes.
    admin_separate: bool = False
    max_messages: int = DEFAULT_MAX_MESSAGES  # per request, 400 above (before any detection work)
    max_parts: int = DEFAULT_MAX_PARTS  # content parts per request, all messages and system together


# ---------------------------------------------------------------- pure helpers


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise InputError(f"not an IP network (CIDR): {cidr!r}") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
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


def _trusted(address: Address, networks: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_ip(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str | None:
    """The client's address: the socket peer, or, when the peer is a trusted proxy, the right-most
    X-Forwarded-For hop that is not itself a trusted proxy. Hops left of that are the client's own
    claims and are ignored."""
    address = _address(peer) if peer else None
    if address is None:
        return peer
    if not forwarded_for or not _trusted(address, trusted):
        return str(address)
    hops = [hop for header in forwarded_for for hop in header.split(",")][-MAX_FORWARDED_HOPS:]
    for hop in reversed(hops):
        hop_address = _address(hop)
        if hop_address is None:  # garbage in the chain: believe nothing further left
            break
        address = hop_address
        if not _trusted(address, trusted):
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


# ---------------------------------------------------------------- audit and metrics


class AuditLog:
    """One JSON line per request. Lines are flushed as written: a few microseconds each, short enough
    for the event loop at gateway rates, and nothing is lost if the process dies."""

    def __init__(self, path: Path | None) -> None:
        self._fh: IO[bytes] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("ab", buffering=1 << 16)

    @property
    def enabled(self) -> bool:
        return self._fh is not None

    def write(self, entry: dict[str, Any]) -> None:
        if self._fh is None:
            return
        try:
            line = orjson.dumps(entry, default=str, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)
            self._fh.write(line)
            self._fh.flush()
        except (OSError, TypeError) as exc:  # a full disk must not take the API down; say so loudly instead
            logger.error("audit write failed: %s", exc)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    decisions: Counter
    overhead: Histogram
    request_seconds: Histogram
    batch_size: Histogram


def new_metrics() -> Metrics:
    """Metrics in an app-local registry, so several gateways (tests, replicas in one process) never clash."""
    registry = CollectorRegistry()
    return Metrics(
        registry=registry,
        requests=Counter("distillguard_requests_total", "Requests by API and returned status.",
                         ["api", "status"], registry=registry),
        decisions=Counter("distillguard_decisions_total", "Policy decisions by action.", ["action"],
                          registry=registry),
        overhead=Histogram("distillguard_overhead_seconds",
                           "Time spent in the gateway itself (parsing, detection, decision, stream handling), "
                           "upstream excluded.",
                           buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
                           registry=registry),
        request_seconds=Histogram("distillguard_request_seconds", "Total request time, upstream included.",
                                  ["api"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                                    30, 60, 120, 300),
                                  registry=registry),
        batch_size=Histogram("distillguard_assess_batch_size", "Requests assessed together (see Coalescer).",
                             buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=registry),
    )


# ---------------------------------------------------------------- detection, once per turn of the loop


class Coalescer:
    """Hands the detector every request that arrived in one turn of the event loop at once.

    Detection costs far less per request on many requests than on one (one pass of the signal code
    and one model call for all of them), and a busy gateway has many requests arriving together: the
    first one schedules a flush for the end of the current turn, the others join it. An idle gateway
    sees batches of one and no added wait. Each request is still decided on the account state that
    includes it and every request before it. Completions (usage read from answers) are folded in
    the same way, without anyone waiting for them.

    A failure affects only the requests it is about. When a batch fails, each of its requests is
    assessed again alone, so one request the detector cannot handle gets the failure decision and
    the others their own decisions (a poisoned request must not switch detection off for the rest of
    its batch). A state store that does not answer (`StateUnavailableError`) fails every request
    alike, so the whole batch gets the failure decision at once instead of waiting out the store
    once per request. Failure decisions follow the policy's `on_detector_error` and
    `on_state_unavailable` (refuse or allow).

    A detector with asynchronous methods (`assess_many_async`, `complete_many_async`, used when its
    state is in Redis) is awaited by one runner task, one batch after the other: requests arriving
    meanwhile join the next batch, and the event loop stays free while the store answers.
    """

    def __init__(self, detector: Detector, metrics: Metrics, max_batch: int = MAX_BATCH, *,
                 on_detector_error: str = DEFAULT_ON_DETECTOR_ERROR,
                 on_state_unavailable: str = DEFAULT_ON_STATE_UNAVAILABLE) -> None:
        for mode in (on_detector_error, on_state_unavailable):
            if mode not in FAILURE_MODES:
                raise InputError(f"failure mode must be one of {', '.join(FAILURE_MODES)}, got {mode!r}")
        self.detector = detector
        self.metrics = metrics
        self.max_batch = max_batch
        self.failed = {DETECTOR_ERROR: failure_decision(DETECTOR_ERROR, on_detector_error),
                       STATE_UNAVAILABLE: failure_decision(STATE_UNAVAILABLE, on_state_unavailable)}
        self._async = bool(getattr(detector, "asynchronous", False))
        self._assess: list[tuple[dict[str, Any], asyncio.Future[Decision]]] = []
        self._complete: list[dict[str, Any]] = []
        self._scheduled = False
        self._runner: asyncio.Task[None] | None = None

    async def assess(self, record: dict[str, Any]) -> Decision:
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._assess.append((record, future))
        self._schedule()
        return await future

    def complete(self, record: dict[str, Any]) -> None:
        self._complete.append(record)
        self._schedule()

    def _schedule(self) -> None:
        if self._async:
            if self._runner is None or self._runner.done():
                # Starts at the next turn of the loop: everything arriving in this one joins it.
                self._runner = asyncio.get_running_loop().create_task(self._run())
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _take(self) -> tuple[list[tuple[dict[str, Any], asyncio.Future[Decision]]], list[dict[str, Any]]]:
        batch, self._assess = self._assess[: self.max_batch], self._assess[self.max_batch:]
        done, self._complete = self._complete[: self.max_batch], self._complete[self.max_batch:]
        if batch:
            self.metrics.batch_size.observe(len(batch))
        return batch, done

    @staticmethod
    def _resolve(batch: list[tuple[dict[str, Any], asyncio.Future[Decision]]], decisions: list[Decision]) -> None:
        for (_, future), decision in zip(batch, decisions, strict=True):
            if not future.done():  # its request may have been cancelled meanwhile
                future.set_result(decision)

    def _flush(self) -> None:
        self._scheduled = False
        batch, done = self._take()
        if self._assess or self._complete:
            self._schedule()
        if done:
            self._complete_sync(done)
        if batch:
            self._resolve(batch, self._decide_sync([record for record, _ in batch], time.time()))

    def _complete_sync(self, records: list[dict[str, Any]]) -> None:
        try:
            self.detector.complete_many(records)
        except StateUnavailableError as exc:
            logger.warning("state store unavailable; usage of %d requests not recorded: %s", len(records), exc)
        except Exception:
            if len(records) == 1:
                logger.exception("detector.complete_many failed on request %s", records[0].get("request_id"))
                return
            for record in records:
                self._complete_sync([record])

    def _failed(self, records: list[dict[str, Any]], exc: Exception) -> list[Decision] | None:
        """Decisions for an assessment that raised `exc` (called from its except block), or None
        when the batch should be assessed again one request at a time."""
        if isinstance(exc, StateUnavailableError):
            logger.warning("state store unavailable for %d requests: %s", len(records), exc)
            return [self.failed[STATE_UNAVAILABLE]] * len(records)
        if len(records) == 1:
            logger.exception("detector failed on request %s", records[0].get("request_id"))
            return [self.failed[DETECTOR_ERROR]]
        logger.warning("detector failed on a batch of %d requests; assessing each alone", len(records))
        return None

    @staticmethod
    def _checked(decisions: Sequence[Decision], records: list[dict[str, Any]]) -> list[Decision]:
        if len(decisions) != len(records):
            raise RuntimeError(f"{len(decisions)} decisions for {len(records)} requests")
        return list(decisions)

    def _decide_sync(self, records: list[dict[str, Any]], now: float) -> list[Decision]:
        try:
            return self._checked(self.detector.assess_many(records, now), records)
        except Exception as exc:
            failed = self._failed(records, exc)
            if failed is not None:
                return failed
        return [decision for record in records for decision in self._decide_sync([record], now)]

    async def _run(self) -> None:
        detector: Any = self.detector
        while self._assess or self._complete:
            batch, done = self._take()
            try:
                if done:
                    await self._complete_async(detector, done)
                if batch:
                    records = [record for record, _ in batch]
                    self._resolve(batch, await self._decide_async(detector, records, time.time()))
            except Exception:  # never leave a request waiting on a runner that died
                logger.exception("assessment runner failed on %d requests", len(batch))
                self._resolve(batch, [self.failed[DETECTOR_ERROR]] * len(batch))

    async def _complete_async(self, detector: Any, records: list[dict[str, Any]]) -> None:
        try:
            await detector.complete_many_async(records)
        except StateUnavailableError as exc:
            logger.warning("state store unavailable; usage of %d requests not recorded: %s", len(records), exc)
        except Exception:
            if len(records) == 1:
                logger.exception("detector.complete_many failed on request %s", records[0].get("request_id"))
                return
            for record in records:
                await self._complete_async(detector, [record])

    async def _decide_async(self, detector: Any, records: list[dict[str, Any]], now: float) -> list[Decision]:
        try:
            return self._checked(await detector.assess_many_async(records, now), records)
        except Exception as exc:
            failed = self._failed(records, exc)
            if failed is not None:
                return failed
        return [d for record in records for d in await self._decide_async(detector, [record], now)]

    async def aclose(self) -> None:
        if self._runner is not None and not self._runner.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._runner), 2.0)


# ---------------------------------------------------------------- one exchange


@dataclass
class Exchange:
    """What the gateway knows about one request while handling it."""

    api: str
    request_id: str
    ts_ms: int
    started: float  # perf_counter()
    ip: str | None
    account_id: str | None = None
    api_key_id: str | None = None
    model: str | None = None
    record: dict[str, Any] | None = None
    decision: Decision | None = None
    rule: str | None = None  # why a request was refused before any decision
    overhead: float = 0.0  # seconds of gateway work, upstream excluded
    finished: bool = False

    def audit_entry(self, status: int, latency_ms: float) -> dict[str, Any]:
        decision = self.decision
        return {
            "ts": rfc3339_ms(self.ts_ms),
            "request_id": self.request_id,
            "account_id": self.account_id,
            "api_key_id": self.api_key_id,
            "ip": self.ip,
            "api": self.api,
            "model": self.model,
            "action": decision.action if decision else None,
            "rule": decision.rule if decision else self.rule,
            "reasons": [str(reason) for reason in decision.reasons] if decision else [],
            "risk": float(decision.risk) if decision else None,
            "status": status,
            "latency_ms": round(latency_ms, 3),
        }


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes `limit` bytes: Content-Length is checked first
    to fail fast, but the count while reading is what holds (chunked bodies have no length)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    return await read_capped(request.stream(), limit, BodyTooLarge)


async def run_until_disconnect(receive: Receive, work: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
    """Runs `work` while watching the client; (True, None) when the client went away, in which case
    `work` was cancelled.

    Plain asyncio: `work` runs in the caller's task and a watcher task cancels that task when the
    client disconnects. An anyio task group did the same at twice the cost, a few percent of a
    request's CPU. `uncancel` tells this cancellation from one coming from outside (a shutdown),
    which is passed on.
    """
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        result = await work()
    except asyncio.CancelledError:
        if gone and task.uncancel() == 0:
            return True, None
        raise
    finally:
        watcher.cancel()
    if gone:  # `work` swallowed the cancellation: take it back, it was for `work` only
        task.uncancel()
    return gone, result


# ---------------------------------------------------------------- the gateway


class Gateway:
    def __init__(self, config: GatewayConfig, detector: Detector) -> None:
        self.config = config
        self.detector = detector
        self.upstream = Upstream(config.upstream, read_timeout=config.upstream_timeout,
                                 connect_timeout=config.connect_timeout,
                                 max_connections=config.max_upstream_connections,
                                 max_response_bytes=config.max_response_bytes)
        self.networks = parse_networks(config.trusted_proxies)
        self.audit = AuditLog(config.audit_path)
        self.metrics = new_metrics()
        policy = getattr(detector, "policy", None)  # the online detector's; a scripted one has none
        self.coalescer = Coalescer(
            detector, self.metrics,
            on_detector_error=getattr(policy, "on_detector_error", DEFAULT_ON_DETECTOR_ERROR),
            on_state_unavailable=getattr(policy, "on_state_unavailable", DEFAULT_ON_STATE_UNAVAILABLE),
        )
        # Labelled children looked up once: `labels()` validates and locks on every call. The label
        # values are few (actions, two APIs, HTTP statuses), so the caches stay small.
        self._decisions = functools.cache(lambda action: self.metrics.decisions.labels(action=action))
        self._requests = functools.cache(lambda api, status: self.metrics.requests.labels(api=api, status=str(status)))
        self._request_seconds = functools.cache(lambda api: self.metrics.request_seconds.labels(api=api))
        self.started_at = time.time()

    # -- entry point

    async def handle(self, api: str, request: Request) -> Response | ProxyStream:
        forwarded = request.headers.getlist("x-forwarded-for")
        ex = Exchange(
            api=api, request_id=uuid.uuid4().hex, ts_ms=int(time.time() * 1000), started=time.perf_counter(),
            ip=client_ip(request.client.host if request.client else None, forwarded, self.networks),
        )
        try:
            return await self._handle(ex, request)
        except Exception:
            logger.exception("internal error on request %s", ex.request_id)
            ex.rule = ex.rule or "internal-error"
            return self._error(ex, 500, "The gateway failed to handle this request.", "internal_error")

    async def _handle(self, ex: Exchange, request: Request) -> Response | ProxyStream:
        try:
            credential = request_credential(request.headers.raw, request.scope.get("query_string", b""),
                                            prefer_x_api_key=ex.api == ANTHROPIC)
        except CredentialError as exc:
            ex.rule = exc.code.replace("_", "-")
            return self._error(ex, exc.status, str(exc), exc.code)
        if credential is None:
            ex.rule = "missing-api-key"
            return self._error(ex, 401, "No API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
                               "missing_api_key")
        identity = identify(credential.key, self.config.keymap)
        ex.account_id, ex.api_key_id = identity.account_id, identity.api_key_id
        try:
            async with asyncio.timeout(self.config.body_timeout):
                raw = await read_body(request, self.config.max_body_bytes)
        except BodyTooLarge:
            ex.rule = "body-too-large"
            return self._error(ex, 413, f"The request body exceeds {self.config.max_body_bytes} bytes.",
                               "request_too_large")
        except TimeoutError:
            ex.rule = "body-timeout"
            return self._error(ex, 408, f"The request body did not arrive within {self.config.body_timeout:g} "
                                        "seconds.", "request_timeout", headers={"connection": "close"})
        except ClientDisconnect:
            ex.rule = "client-disconnected"
            return self._error(ex, CLIENT_CLOSED, "The client closed the request.", "client_closed")
        try:
            body = parse_json_object(raw)
            user_agent = request.headers.get("user-agent")
            record = request_record(
                ex.api, body, max_messages=self.config.max_messages, max_parts=self.config.max_parts,
                request_id=ex.request_id, ts=ex.ts_ms, account_id=ex.account_id,
                api_key_id=ex.api_key_id, ip=ex.ip, user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
            )
            check_record(record)
        except RequestError as exc:
            ex.rule = "invalid-request"
            return self._error(ex, 400, str(exc), "invalid_request", param=exc.param)
        ex.record, ex.model = record, record["model"]
        decision = await self.coalescer.assess(record)
        ex.decision = decision
        # Failures are counted apart: counted as `allow` they would hide detection being off.
        self._decisions(DETECTOR_ERROR if decision.rule in FAILURE_RULES else decision.action).inc()
        if decision.refused:
            status, message, code, headers = refusal(decision)
            return self._error(ex, status, message, code, headers=headers)
        spec = (decision.degrade or DegradeSpec()) if decision.action == "degrade" else None
        if spec is not None:
            raw = orjson.dumps(degrade_request(ex.api, body, spec))
        return await self._forward(ex, request, credential, raw, strip=spec is not None and spec.strip_reasoning)

    # -- forwarding

    async def _forward(self, ex: Exchange, request: Request, credential: Credential, raw: bytes,
                       strip: bool) -> Response | ProxyStream:
        scope = request.scope
        path_qs = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            path_qs += "?" + scope["query_string"].decode("latin-1")
        peer = request.client.host if request.client else None
        address = _address(peer) if peer else None
        headers = upstream_headers(forwarded_headers(request.headers.raw, credential),
                                   peer=str(address) if address is not None else peer,
                                   peer_trusted=address is not None and _trusted(address, self.networks))
        ex.overhead += time.perf_counter() - ex.started
        disconnected, reply = await run_until_disconnect(
            request.receive, lambda: self.upstream.call(path_qs, headers, raw))
        if disconnected or reply is None:
            if isinstance(reply, Streaming):
                reply.close()
            return self._error(ex, CLIENT_CLOSED, "The client closed the request.", "client_closed")
        if isinstance(reply, Failed):
            return self._error(ex, reply.status, reply.message, reply.code)
        if isinstance(reply, Streaming):
            return ProxyStream(self, ex, reply, strip)
        started = time.perf_counter()
        body = reply.body
        usage = None
        if 200 <= reply.status < 300:
            if strip:
                body = strip_reasoning_response(ex.api, body)
            usage = response_usage(ex.api, body)
        ex.overhead += time.perf_counter() - started
        response = Response(body, status_code=reply.status)
        response.raw_headers += returned_headers(reply.headers, ex.request_id)
        self.finish(ex, reply.status, usage)
        return response

    # -- endings

    def _error(self, ex: Exchange, status: int, message: str, code: str, *, param: str | None = None,
               headers: dict[str, str] | None = None) -> Response:
        response = Response(error_body(ex.api, status, message, code=code, param=param), status_code=status,
                            headers={**(headers or {}), REQUEST_ID_HEADER: ex.request_id},
                            media_type="application/json")
        self.finish(ex, status, None)
        return response

    def finish(self, ex: Exchange, status: int, usage: Usage | None) -> None:
        """Once per request: tell the detector how the exchange ended, audit it, count it."""
        if ex.finished:
            return
        ex.finished = True
        started = time.perf_counter()
        if ex.record is not None:
            ex.record.update((usage or Usage()).as_fields())
            ex.record["status"] = status
            self.coalescer.complete(ex.record)
        now = time.perf_counter()
        try:
            if self.audit.enabled:
                self.audit.write(ex.audit_entry(status, (now - ex.started) * 1000))
        except Exception:  # e.g. a decision of unexpected types: the answer still goes out
            logger.exception("audit entry failed on request %s", ex.request_id)
        ex.overhead += time.perf_counter() - started
        self._requests(ex.api, status).inc()
        self._request_seconds(ex.api).observe(now - ex.started)
        self.metrics.overhead.observe(ex.overhead)

    async def health(self) -> Response:
        """`/healthz`: ok, or degraded when the detector's state store does not answer (asked with
        the store's own short timeout, so the probe is answered promptly either way). Degraded is
        503 only when the policy refuses requests in that state: with fail-open the gateway still
        serves, and a load balancer should keep sending it traffic."""
        check = getattr(self.detector, "health_async", None)
        parts: dict[str, str] = await check() if check is not None else {}
        degraded = any(value != "ok" for value in parts.values())
        body = {"status": "degraded" if degraded else "ok", **parts, "version": __version__,
                "uptime_seconds": round(time.time() - self.started_at, 1)}
        refusing = self.coalescer.failed[STATE_UNAVAILABLE].refused
        return Response(orjson.dumps(body), status_code=503 if degraded and refusing else 200,
                        media_type="application/json")

    async def aclose(self) -> None:
        await self.coalescer.aclose()
        close = getattr(self.detector, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
        self.audit.close()
        await self.upstream.aclose()


class ProxyStream:
    """The ASGI response relaying an upstream event stream: chunk by chunk as received, or event by
    event when reasoning is stripped. Watches the client so that a disconnect stops the upstream
    request at once (no paying for tokens nobody reads) and is recorded as 499."""

    def __init__(self, gateway: Gateway, ex: Exchange, reply: Streaming, strip: bool) -> None:
        self.gateway = gateway
        self.ex = ex
        self.reply = reply
        self.stripper = ReasoningStripper(ex.api) if strip else None
        self.usage = StreamUsage(ex.api)
        self.decoder = SSEDecoder()
        self.status = reply.response.status

    def _process(self, chunk: bytes, final: bool = False) -> bytes:
        """What to send for an upstream chunk; every event is read for usage on the way."""
        started = time.perf_counter()
        events = self.decoder.flush() if final else self.decoder.feed(chunk)
        for event in events:
            self.usage.feed(event)
        if self.stripper is None:
            out = chunk
        else:
            out = b"".join(part for part in map(self.stripper.transform, events) if part)
        self.ex.overhead += time.perf_counter() - started
        return out

    async def _relay(self, send: Send) -> bool:
        """Sends the whole stream; False when the client was found gone while sending."""
        headers = returned_headers(self.reply.headers, self.ex.request_id)
        tail = b""
        try:
            await send({"type": "http.response.start", "status": self.status, "headers": headers})
            try:
                async for chunk in self.reply.chunks():
                    out = self._process(chunk)
                    if out:
                        await send({"type": "http.response.body", "body": out, "more_body": True})
                        # Neither the send nor a buffered upstream read need yield to the loop: yield
                        # here, so a client that left is noticed after one write rather than many,
                        # and one fast stream cannot hold the loop for the others.
                        await asyncio.sleep(0)
                tail = self._process(b"", final=True)
            except UpstreamTimeout:
                self.status = 504
                tail = stream_error_event(self.ex.api, 504, "The upstream model API stopped answering.",
                                          code="upstream_timeout")
            except (UpstreamError, StreamError) as exc:
                logger.warning("upstream stream failed on request %s: %s", self.ex.request_id, type(exc).__name__)
                self.status = 502
                tail = stream_error_event(self.ex.api, 502, "The upstream model API failed mid-stream.",
                                          code="upstream_error")
            except Exception:  # a fault of ours: still end the stream properly, in the API's format
                logger.exception("stream relay failed on request %s", self.ex.request_id)
                self.status = 502
                tail = stream_error_event(self.ex.api, 502, "The gateway failed while relaying the stream.",
                                          code="internal_error")
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        except OSError:  # servers on ASGI spec 2.4 report a gone client this way
            return False
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        completed = False
        try:
            # A relay that sent everything counts as complete even if the client left right after.
            _, sent = await run_until_disconnect(receive, lambda: self._relay(send))
            completed = sent is True
        except Exception:
            logger.exception("stream relay failed on request %s", self.ex.request_id)
            self.status = 502
            completed = True
        finally:
            self.reply.close()
            self.gateway.finish(self.ex, self.status if completed else CLIENT_CLOSED, self.usage.result())


# ---------------------------------------------------------------- the app


def create_app(config: GatewayConfig, detector: Detector) -> GatewayApp:
    """The gateway as an ASGI app; its connection pool to the upstream is closed at shutdown."""
    if not config.upstream.startswith(("http://", "https://")):
        raise InputError(f"--upstream must be an http:// or https:// URL, got {config.upstream!r}")
    if config.max_body_bytes < 1:
        raise InputError("--max-body-bytes must be at least 1")
    install_log_redaction()
    gateway = Gateway(config, detector)

    async def chat_completions(request: Request) -> Response | ProxyStream:
        return await gateway.handle(OPENAI, request)

    async def messages(request: Request) -> Response | ProxyStream:
        return await gateway.handle(ANTHROPIC, request)

    async def healthz(request: Request) -> Response:
        return await gateway.health()

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.aclose()

    admin = [Route("/healthz", healthz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]
    routes = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/messages", messages, methods=["POST"]),
            *([] if config.admin_separate else admin),
        ],
        lifespan=lifespan,
    )
    return GatewayApp(gateway, routes, Starlette(routes=admin))


def create_admin_app(app: GatewayApp) -> ASGIApp:
    """`/healthz` and `/metrics` of `app`'s gateway, for a separate admin port (`--admin-port`);
    the gateway's own lifespan stays with `app`."""
    return app.admin


_API_ROUTES = MappingProxyType({"/v1/chat/completions": OPENAI, "/v1/messages": ANTHROPIC})


class GatewayApp:
    """The ASGI app. The two API routes skip Starlette's middleware and router, a tenth of a
    request's CPU at load: `Gateway.handle` already answers every failure in the API's own format.
    Everything else (other methods and paths, health, metrics, lifespan) goes through Starlette."""

    def __init__(self, gateway: Gateway, routes: ASGIApp, admin: ASGIApp) -> None:
        self.gateway = gateway
        self.routes = routes
        self.admin = admin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            api = _API_ROUTES.get(scope["path"])
        if api is None:
            await self.routes(scope, receive, send)
            return
        response = await self.gateway.handle(api, Request(scope, receive, send))
        await response(scope, receive, send)


__all__ = ["Detector", "GatewayApp", "GatewayConfig", "create_admin_app", "create_app"]
