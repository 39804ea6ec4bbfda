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
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from distillguard import __version__
from distillguard.errors import InputError
from distillguard.gateway.coalesce import (
    Coalescer,
    Detector,
)
from distillguard.gateway.headers import (
    CLIENT_CLOSED,
    MAX_USER_AGENT,
    REQUEST_ID_HEADER,
    client_ip,
    is_trusted,
    parse_address,
    parse_networks,
    refusal,
    returned_headers,
    rfc3339_ms,
    upstream_headers,
)
from distillguard.gateway.keys import (
    Credential,
    CredentialError,
    KeyMap,
    forwarded_headers,
    identify,
    install_log_redaction,
    request_credential,
)
from distillguard.gateway.observe import (
    AuditLog,
    new_metrics,
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
)
from distillguard.policy.policy import DEFAULT_ON_DETECTOR_ERROR, DEFAULT_ON_STATE_UNAVAILABLE

logger = logging.getLogger("distillguard.gateway")

DEFAULT_MAX_BODY_BYTES = 1 << 20
T = TypeVar("T")


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
        address = parse_address(peer) if peer else None
        headers = upstream_headers(forwarded_headers(request.headers.raw, credential),
                                   peer=str(address) if address is not None else peer,
                                   peer_trusted=address is not None and is_trusted(address, self.networks))
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

