"""The gateway under attack: each finding of the security review (docs/gateway.md "Threats and
behaviour"), reproduced against a real gateway served by uvicorn, the stand-in upstream and, where
Redis is involved, a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from distillguard.errors import InputError
from distillguard.gateway.app import Coalescer, GatewayConfig, create_admin_app, create_app, new_metrics
from distillguard.gateway.server import ConnectionLimits
from distillguard.gateway.standin import create_standin_app
from distillguard.ingest.normalise import exchange_row
from distillguard.policy.decision import Decision
from distillguard.policy.policy import Policy
from gateway_helpers import ScriptedDetector, ServerThread
from redis_server import own_redis_server

KEY = "sk-test-hardening-3b8e1f0a"
THROTTLED_KEY = "sk-test-hardening-throttled-77"
USER = [{"role": "user", "content": "Explain the pigeonhole principle."}]
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    with ServerThread(create_standin_app()) as server:
        yield server


class Recorder:
    """An upstream that keeps the headers of every request and answers a minimal chat completion,
    with the response headers a test asks for."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        self.seen: list[list[tuple[str, str]]] = []
        self.reply_headers: dict[str, str] = {}

        async def record(request: Any) -> JSONResponse:
            self.seen.append([(k.decode(), v.decode()) for k, v in request.headers.raw])
            return JSONResponse({"id": "x", "object": "chat.completion", "choices": []}, headers=self.reply_headers)

        self.app = Starlette(routes=[Route(CHAT, record, methods=["POST"]), Route(MESSAGES, record, methods=["POST"])])

    def last(self, name: str) -> list[str]:
        return [value for key, value in self.seen[-1] if key == name]


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """A gateway (trusting X-Forwarded-For from 10/8 only) in front of a recording upstream."""
    recorder = Recorder()
    detector = ScriptedDetector()
    with ServerThread(recorder.app) as up, ServerThread(create_app(
            GatewayConfig(upstream=up.url, trusted_proxies=("10.0.0.0/8",)), detector)) as server:
        yield SimpleNamespace(url=server.url, port=server.port, recorder=recorder, detector=detector)


class ValidatingDetector(ScriptedDetector):
    """Validates every record with the ingest contract check first, as the online detector does
    (`OnlineDetector.assess_many` -> `exchange_row`), so a record it would refuse fails its batch."""

    def __init__(self, decisions: dict[str, Decision] | None = None, poison: str | None = None) -> None:
        super().__init__(decisions)
        self.poison = poison
        self.calls: list[int] = []

    def assess_many(self, records: Sequence[dict[str, Any]], now: float) -> list[Decision]:
        self.calls.append(len(records))
        for record in records:
            exchange_row(record)
            if self.poison is not None and self.poison in json.dumps(record.get("messages")):
                raise RuntimeError("detector fault on this request")
        return super().assess_many(records, now)


def post(url: str, path: str, body: Any, key: str = KEY, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if path == CHAT else {"x-api-key": key}
    return httpx.post(url + path, content=json.dumps(body).encode(),
                      headers={"content-type": "application/json", **headers, **kwargs.pop("headers", {})},
                      timeout=kwargs.pop("timeout", 10), **kwargs)


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def account(key: str) -> str:
    from distillguard.gateway.keys import identify

    return identify(key, None).account_id


@pytest.fixture
def gateway(upstream: ServerThread, tmp_path: Path) -> Iterator[SimpleNamespace]:
    detector = ValidatingDetector({account(THROTTLED_KEY): Decision(action="throttle", rule="throttle-flagged",
                                                                    retry_after=30.0)})
    config = GatewayConfig(upstream=upstream.url, audit_path=tmp_path / "audit.jsonl")
    with ServerThread(create_app(config, detector)) as server:
        yield SimpleNamespace(url=server.url, detector=detector, audit=tmp_path / "audit.jsonl")


# ---------------------------------------------------------------- 1. one validator, failures per request

REFUSED_BY_THE_VALIDATOR = [
    (CHAT, {"model": "m", "messages": USER, "temperature": 101}, "temperature"),
    (CHAT, {"model": "m", "messages": USER, "temperature": -1}, "temperature"),
    (MESSAGES, {"model": "m", "messages": USER, "max_tokens": 10_000_001}, "max_tokens"),
    (CHAT, {"model": "m", "messages": USER, "max_completion_tokens": 10_000_001}, "max_tokens"),
    (CHAT, {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
     "messages[0].content[0].text"),
    (MESSAGES, {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
     "messages[0].content[0].text"),
    (CHAT, {"model": "m", "messages": USER * 10_001}, "messages"),
]


@pytest.mark.parametrize(("path", "body", "field"), REFUSED_BY_THE_VALIDATOR)
def test_requests_the_detector_would_refuse_are_400_naming_the_field(
        gateway: SimpleNamespace, path: str, body: dict[str, Any], field: str) -> None:
    response = post(gateway.url, path, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert f"'{field}'" in error["message"]
    if path == CHAT:
        assert error["param"] == field
    assert gateway.detector.assessed == []  # refused before detection, never forwarded


def test_a_poisoned_request_does_not_switch_detection_off_for_its_batch(gateway: SimpleNamespace) -> None:
    """A throwaway key's request that makes the detector fail arrives in the same loop turn as a
    throttled key's requests: the throttled ones stay throttled, and only the poisoned one fails."""
    gateway.detector.poison = "POISON-7"

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            poisoned = client.post(CHAT, json={"model": "m", "messages": [{"role": "user", "content": "POISON-7"}]},
                                   headers={"authorization": f"Bearer {KEY}"})
            normal = [client.post(CHAT, json={"model": "m", "messages": USER},
                                  headers={"authorization": f"Bearer {THROTTLED_KEY}"}) for _ in range(5)]
            return list(await asyncio.gather(poisoned, *normal))

    before = samples(gateway.url)
    poisoned, *normal = asyncio.run(burst())
    assert [r.status_code for r in normal] == [429] * 5
    assert poisoned.status_code == 503 and poisoned.json()["error"]["code"] == "detection_unavailable"
    after = samples(gateway.url)

    def delta(action: str) -> float:
        key = ("distillguard_decisions_total", (("action", action),))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("detector-error") == 1 and delta("allow") == 0 and delta("throttle") == 5
    entries = [json.loads(line) for line in gateway.audit.read_text().splitlines()]
    assert [(e["rule"], e["status"]) for e in entries if e["rule"] == "detector-error"] == [("detector-error", 503)]


def test_batch_failure_retries_each_request_alone() -> None:
    detector = ValidatingDetector({"acct-t": Decision(action="throttle", rule="t", retry_after=5.0)},
                                  poison="POISON")

    async def run() -> list[Decision]:
        coalescer = Coalescer(detector, new_metrics())
        records = [{"request_id": str(i), "ts": 1_767_225_600_000, "account_id": "acct-t", "model": "m",
                    "messages": [{"role": "user", "content": "POISON" if i == 2 else "fine"}]} for i in range(6)]
        return list(await asyncio.gather(*(coalescer.assess(r) for r in records)))

    decisions = asyncio.run(run())
    assert [d.rule for d in decisions] == ["t", "t", "detector-error", "t", "t", "t"]
    assert decisions[2].refused and detector.calls[0] == 6


def test_failure_modes_come_from_the_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nrules: []\non_detector_error: allow\non_state_unavailable: refuse\n")
    loaded = Policy.from_yaml(policy)
    assert (loaded.on_detector_error, loaded.on_state_unavailable) == ("allow", "refuse")
    defaults = Policy.default()
    assert (defaults.on_detector_error, defaults.on_state_unavailable) == ("refuse", "allow")
    policy.write_text("version: 1\nrules: []\non_detector_error: maybe\n")
    with pytest.raises(InputError, match="on_detector_error: expected one of refuse, allow"):
        Policy.from_yaml(policy)

    detector = ValidatingDetector(poison="POISON")

    async def run() -> Decision:
        coalescer = Coalescer(detector, new_metrics(), on_detector_error="allow")
        return await coalescer.assess({"request_id": "1", "ts": 1_767_225_600_000, "account_id": "a", "model": "m",
                                       "messages": [{"role": "user", "content": "POISON"}]})

    failed = asyncio.run(run())
    assert (failed.action, failed.rule, failed.refused) == ("allow", "detector-error", False)


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
def test_valid_requests_still_pass(gateway: SimpleNamespace, path: str) -> None:
    body = {"model": "standin-1", "messages": USER, "max_tokens": 20, "temperature": 1.0}
    assert post(gateway.url, path, body).status_code == 200
    assert gateway.detector.assessed[-1]["temperature"] == 1.0




# ---------------------------------------------------------------- 2. the scored key is the forwarded key


def raw_post(url: str, path: str, headers: list[tuple[str, str]], **kwargs: Any) -> httpx.Response:
    return httpx.post(url + path, content=json.dumps({"model": "m", "messages": USER, "max_tokens": 5}).encode(),
                      headers=[("content-type", "application/json"), *headers], timeout=10, **kwargs)


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
def test_conflicting_or_duplicate_credentials_are_refused(recorded: SimpleNamespace, path: str) -> None:
    cases = [
        ([("x-api-key", "sk-throwaway-1"), ("authorization", "Bearer sk-real-2")], 400, "conflicting_credentials"),
        ([("authorization", "Bearer sk-a-1"), ("authorization", "Bearer sk-b-2")], 400, "duplicate_credentials"),
        ([("x-api-key", "sk-a-1"), ("x-api-key", "sk-b-2")], 400, "duplicate_credentials"),
        ([("x-api-key", "sk-a-1"), ("authorization", "Basic dXNlcjpwYXNz")], 401, "invalid_api_key"),
    ]
    for headers, status, code in cases:
        response = raw_post(recorded.url, path, headers)
        assert response.status_code == status, (headers, response.text)
        body = response.json()
        message = body["error"]["message"]
        assert message and "sk-" not in message
        if path == CHAT:
            assert body["error"]["code"] == code
    refused = raw_post(recorded.url, path, [("x-api-key", "sk-a-1")], params={"api_key": "sk-real-2"})
    assert refused.status_code == 400 and "query string" in refused.json()["error"]["message"]
    assert recorded.recorder.seen == [] and recorded.detector.assessed == []


def test_only_the_scored_credential_is_forwarded(recorded: SimpleNamespace) -> None:
    same = [("authorization", "Bearer sk-same-1"), ("x-api-key", "sk-same-1"), ("api-key", "sk-azure-9")]
    for path, kept, gone in ((CHAT, "authorization", "x-api-key"), (MESSAGES, "x-api-key", "authorization")):
        assert raw_post(recorded.url, path, same).status_code == 200
        assert recorded.recorder.last(gone) == [] and recorded.recorder.last("api-key") == []
        assert len(recorded.recorder.last(kept)) == 1
        assert recorded.detector.assessed[-1]["api_key_id"] == account_key_id("sk-same-1")


def account_key_id(key: str) -> str:
    from distillguard.gateway.keys import identify

    return identify(key, None).api_key_id


# ---------------------------------------------------------------- 3. idle and slow connections


def open_idle(port: int, n: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]


def read_all(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends until it closes the connection, or TimeoutError."""
    sock.settimeout(timeout)
    out = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            out += chunk
    return out


def small_gateway(upstream: ServerThread, **options: Any) -> ServerThread:
    config = GatewayConfig(upstream=upstream.url, body_timeout=options.pop("body_timeout", 30.0),
                           upstream_timeout=options.pop("upstream_timeout", 10.0))
    return ServerThread(create_app(config, ScriptedDetector()), **options)


def test_idle_connections_do_not_lock_out_the_api_or_healthz(upstream: ServerThread) -> None:
    with small_gateway(upstream, max_concurrency=8, limits=ConnectionLimits(max_connections_per_ip=100)) as server:
        idle = open_idle(server.port, 20)  # more idle connections than the concurrency limit
        try:
            time.sleep(0.05)
            assert httpx.get(server.url + "/healthz", timeout=2).status_code == 200
            assert post(server.url, CHAT, {"model": "m", "messages": USER}, timeout=2).status_code == 200
        finally:
            for sock in idle:
                sock.close()


def test_idle_and_trickling_connections_are_closed_after_the_head_timeout(upstream: ServerThread) -> None:
    with small_gateway(upstream, limits=ConnectionLimits(head_timeout=0.3)) as server:
        (idle,) = open_idle(server.port, 1)
        (slow,) = open_idle(server.port, 1)
        started = time.monotonic()
        slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        for _ in range(4):  # a header a byte at a time: every byte would reset a keep-alive timer
            time.sleep(0.05)
            slow.sendall(b"x")
        answers = [read_all(sock, 2.0) for sock in (idle, slow)]
        assert time.monotonic() - started < 1.5
        assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers), answers
        idle.close()
        slow.close()
        # A client that sends its request in time is served as usual, twice on one connection.
        with httpx.Client(base_url=server.url, timeout=5) as client:
            for _ in range(2):
                time.sleep(0.2)
                assert client.get("/healthz").status_code == 200


def test_a_stalled_body_gets_408(upstream: ServerThread) -> None:
    with small_gateway(upstream, body_timeout=0.3) as server:
        (sock,) = open_idle(server.port, 1)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-slow-body\r\n"
                     b"content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\": ")
        started = time.monotonic()
        answer = read_all(sock, 2.0)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer, answer
        assert time.monotonic() - started < 1.5


def test_connections_from_one_address_are_capped(upstream: ServerThread) -> None:
    with small_gateway(upstream, limits=ConnectionLimits(max_connections_per_ip=4)) as server:
        held = open_idle(server.port, 4)
        (extra,) = open_idle(server.port, 1)
        assert read_all(extra, 2.0).startswith(b"HTTP/1.1 503")
        extra.close()
        for sock in held:
            sock.close()
        time.sleep(0.1)
        assert post(server.url, CHAT, {"model": "m", "messages": USER}, timeout=2).status_code == 200
    # Connections from a trusted proxy carry many clients: they are not capped per address.
    exempt = ConnectionLimits(max_connections_per_ip=2, exempt_networks=("127.0.0.0/8",))
    with small_gateway(upstream, limits=exempt) as server:
        held = open_idle(server.port, 4)
        try:
            assert post(server.url, CHAT, {"model": "m", "messages": USER}, timeout=2).status_code == 200
        finally:
            for sock in held:
                sock.close()


def test_healthz_is_answered_above_the_concurrency_limit(upstream: ServerThread) -> None:
    with small_gateway(upstream, max_concurrency=2) as server:
        hanging: list[BaseException | httpx.Response] = []

        def hang() -> None:
            try:
                hanging.append(post(server.url, CHAT, {"model": "standin-hang", "messages": USER}, timeout=1.5))
            except httpx.HTTPError as exc:
                hanging.append(exc)

        threads = [threading.Thread(target=hang) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # both requests are now waiting on the upstream
        assert post(server.url, CHAT, {"model": "m", "messages": USER}, timeout=1).status_code == 503
        assert httpx.get(server.url + "/healthz", timeout=1).status_code == 200
        for thread in threads:
            thread.join()


# ---------------------------------------------------------------- 4. a Redis that does not answer


def test_a_redis_that_does_not_answer_does_not_freeze_the_gateway(upstream: ServerThread, tmp_path: Path) -> None:
    import redis

    from distillguard.engines.online import OnlineDetector
    from distillguard.engines.state import RedisStore

    refuse = tmp_path / "refuse.yaml"
    refuse.write_text("version: 1\nrules: []\non_state_unavailable: refuse\n")
    with own_redis_server(tmp_path) as (proc, url):
        open_gw = OnlineDetector.create(redis_url=url, redis_timeout=0.05)
        closed_gw = OnlineDetector.create(redis_url=url, redis_timeout=0.05, policy=refuse)
        body = {"model": "standin-1", "messages": USER}
        with ServerThread(create_app(GatewayConfig(upstream=upstream.url), open_gw)) as server, \
                ServerThread(create_app(GatewayConfig(upstream=upstream.url), closed_gw)) as closed:
            assert post(server.url, CHAT, body).status_code == 200
            assert post(closed.url, CHAT, body).status_code == 200
            assert httpx.get(server.url + "/healthz", timeout=2).json()["state"] == "ok"
            before = samples(server.url)
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                assert post(server.url, CHAT, body, timeout=2).status_code == 200  # fail open, the default
                assert time.monotonic() - started < 0.6

                async def burst() -> list[int]:
                    async with httpx.AsyncClient(base_url=server.url, timeout=3) as client:
                        calls = [client.post(CHAT, json=body, headers={"authorization": f"Bearer {KEY}-{i}"})
                                 for i in range(10)]
                        return [r.status_code for r in await asyncio.gather(*calls)]

                started = time.monotonic()
                assert asyncio.run(burst()) == [200] * 10
                assert time.monotonic() - started < 1.5  # not one timeout per request in a row

                started = time.monotonic()
                health = httpx.get(server.url + "/healthz", timeout=2)
                assert time.monotonic() - started < 0.5
                assert health.status_code == 200 and health.json()["status"] == "degraded"
                assert health.json()["state"] == "unavailable"
                refused = post(closed.url, CHAT, body, timeout=2)
                assert refused.status_code == 503 and refused.json()["error"]["code"] == "detection_unavailable"
                assert httpx.get(closed.url + "/healthz", timeout=2).status_code == 503
                after = samples(server.url)
                errors = ("distillguard_decisions_total", (("action", "detector-error"),))
                assert after.get(errors, 0) - before.get(errors, 0) == 11
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            # Back to normal once Redis answers again: state is written again.
            deadline = time.monotonic() + 3
            while httpx.get(server.url + "/healthz", timeout=2).json()["status"] != "ok":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert post(server.url, CHAT, body).status_code == 200
        client = redis.Redis.from_url(url)
        try:
            blob = RedisStore(client).get(account(KEY))
        finally:
            client.close()
        from distillguard.behaviour.state import AccountState

        assert blob is not None and AccountState.from_bytes(blob).n == 3  # one through each gateway before the pause, one after


# ---------------------------------------------------------------- 5. caps and bounded state


def text_parts(n: int) -> list[dict[str, str]]:
    return [{"type": "text", "text": "a"}] * n


@pytest.mark.parametrize(("path", "body", "field"), [
    (CHAT, {"model": "m", "messages": USER * 1001}, "messages"),
    (CHAT, {"model": "m", "messages": [{"role": "user", "content": text_parts(20_000)}]}, "messages[0].content"),
    (CHAT, {"model": "m", "messages": [{"role": "user", "content": text_parts(1500)}] * 2}, "messages[1].content"),
    (MESSAGES, {"model": "m", "max_tokens": 5, "system": text_parts(2001), "messages": USER}, "system"),
    (MESSAGES, {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": text_parts(3000)}]}]}, "messages[0].content[0].content"),
])
def test_messages_and_parts_beyond_the_caps_are_400_before_detection(
        gateway: SimpleNamespace, path: str, body: dict[str, Any], field: str) -> None:
    response = post(gateway.url, path, body)
    assert response.status_code == 400, response.text[:300]
    assert f"'{field}'" in response.json()["error"]["message"]
    assert gateway.detector.assessed == []


class GatekeeperUpstream:
    """An upstream that, like a real provider, refuses keys it did not issue (401)."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def chat(request: Any) -> JSONResponse:
            if request.headers.get("authorization", "").startswith("Bearer sk-real-"):
                return JSONResponse({"id": "x", "object": "chat.completion", "choices": []})
            return JSONResponse({"error": {"message": "bad key", "type": "invalid_request_error"}}, status_code=401)

        self.app = Starlette(routes=[Route(CHAT, chat, methods=["POST"])])


def test_a_flood_of_unknown_keys_cannot_evict_real_account_state() -> None:
    from distillguard.behaviour.state import AccountState
    from distillguard.engines.online import OnlineDetector

    detector = OnlineDetector.create(max_accounts=20, probation_accounts=5)
    real = [f"sk-real-{i}" for i in range(3)]
    body = {"model": "m", "messages": USER}

    async def send(url: str, keys: list[str]) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            out = []
            for key in keys:  # one after the other: each completion lands before the next request
                out.append((await client.post(CHAT, json=body, headers={"authorization": f"Bearer {key}"})).status_code)
            return out

    with ServerThread(GatekeeperUpstream().app) as up, \
            ServerThread(create_app(GatewayConfig(upstream=up.url), detector)) as server:
        assert asyncio.run(send(server.url, real * 2)) == [200] * 6
        assert asyncio.run(send(server.url, [f"sk-fake-{i}" for i in range(60)])) == [401] * 60
        time.sleep(0.1)
    store = detector.store
    assert len(store.probation) == 5  # the fakes evicted only each other
    states = [store.main.get(account(key)) for key in real]
    assert all(blob is not None and AccountState.from_bytes(blob).n == 2 for blob in states)
    assert all(store.main.get(account(f"sk-fake-{i}")) is None for i in range(60))


def test_redis_state_is_capped_and_unconfirmed_accounts_kept_apart(redis_client: Any, redis_url: str) -> None:
    from distillguard.engines.state import AsyncRedisStore, async_redis_from_url

    clock = iter(range(1_800_000_000, 1_900_000_000))

    def put(tag: bytes) -> Any:
        return lambda old: (old or b"") + tag

    async def run() -> None:
        store = AsyncRedisStore(async_redis_from_url(redis_url, timeout=1.0), max_entries=3, probation_entries=2,
                                clock=lambda: float(next(clock)))
        try:
            await store.update("~window-start", lambda old: old or b"w")  # engine key: never evicted
            for i in range(5):
                await store.update_many({f"real-{i}": put(b"r")}, confirmed={f"real-{i}"})
            for i in range(4):
                await store.update_many({f"fake-{i}": put(b"f")})
            # Least recently updated evicted first, in each pool apart.
            assert await store.count() == 3 and await store.count(probation=True) == 2
            assert await store.get_many_tiered(["real-0", "real-1", "real-2", "real-3", "real-4"]) == [
                None, None, b"r", b"r", b"r"]
            assert await store.get_many_tiered(["fake-0", "fake-1", "fake-2", "fake-3"]) == [None, None, b"f", b"f"]
            # Confirming a probation account moves its state into the main pool (evicting the oldest).
            await store.update_many({"fake-3": put(b"!")}, confirmed={"fake-3"})
            assert await store.get_many(["fake-3", "real-2"]) == [b"f!", None]
            assert await store.count(probation=True) == 1
            # Once in the main pool an account stays there, confirmed or not.
            await store.update_many({"fake-3": put(b"+")})
            assert await store.get_many(["fake-3"]) == [b"f!+"]
            assert await store.get("~window-start") == b"w"
        finally:
            await store.aclose()

    asyncio.run(run())
    assert redis_client.ttl("dg:acct:~index") > 0  # the index expires with the state it indexes


# ---------------------------------------------------------------- 6. logs, admin endpoints, headers, errors


def test_redaction_keeps_uvicorns_access_log_working(gateway: SimpleNamespace) -> None:
    import io
    import logging

    from uvicorn.logging import AccessFormatter

    errors: list[BaseException | None] = []

    class Capture(logging.StreamHandler):  # type: ignore[type-arg]
        def handleError(self, record: logging.LogRecord) -> None:
            import sys

            errors.append(sys.exc_info()[1])

    out = io.StringIO()
    handler = Capture(out)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    try:
        assert httpx.get(gateway.url + f"/healthz?api_key={KEY}&x=1", timeout=5).status_code == 200
        post(gateway.url, CHAT, {"model": "m", "messages": USER}, params={"api_key": KEY})
        time.sleep(0.1)
    finally:
        access.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert errors == [] and len(lines) == 2, (errors, lines)
    assert all("api_key=[REDACTED]" in line and KEY not in line for line in lines)
    assert '"GET /healthz?api_key=[REDACTED]&x=1 HTTP/1.1" 200' in lines[0]


def test_health_and_metrics_can_live_on_an_admin_port_only(upstream: ServerThread) -> None:
    app = create_app(GatewayConfig(upstream=upstream.url, admin_separate=True), ScriptedDetector())
    with ServerThread(app) as api, ServerThread(create_admin_app(app)) as admin:
        assert post(api.url, CHAT, {"model": "m", "messages": USER}).status_code == 200
        assert httpx.get(api.url + "/metrics", timeout=5).status_code == 404
        assert httpx.get(api.url + "/healthz", timeout=5).status_code == 404
        assert httpx.get(admin.url + "/healthz", timeout=5).json()["status"] == "ok"
        metrics = httpx.get(admin.url + "/metrics", timeout=5)
        assert 'distillguard_requests_total{api="openai",status="200"} 1.0' in metrics.text
        assert httpx.post(admin.url + CHAT, json={}, timeout=5).status_code == 404


def test_the_command_serves_the_admin_port(upstream: ServerThread, tmp_path: Path) -> None:
    import subprocess
    import sys

    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    binary = Path(sys.executable).parent / "distillguard"
    log = (tmp_path / "gateway.log").open("wb")
    proc = subprocess.Popen([str(binary), "gateway", "--upstream", upstream.url, "--port", str(ports[0]),
                             "--admin-port", str(ports[1]), "--log-level", "warning"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{ports[1]}/healthz", timeout=1).status_code == 200:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "gateway.log").read_text()
            time.sleep(0.05)
        api = f"http://127.0.0.1:{ports[0]}"
        assert post(api, CHAT, {"model": "standin-1", "messages": USER}).status_code == 200
        assert httpx.get(api + "/metrics", timeout=5).status_code == 404
        assert "distillguard_requests_total" in httpx.get(f"http://127.0.0.1:{ports[1]}/metrics", timeout=5).text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    assert proc.returncode is not None


def test_forwarded_for_gets_the_real_peer(recorded: SimpleNamespace, upstream: ServerThread) -> None:
    spoofed = [("authorization", "Bearer sk-xff-1"), ("x-forwarded-for", "6.6.6.6"), ("x-real-ip", "6.6.6.6")]
    assert raw_post(recorded.url, CHAT, spoofed).status_code == 200
    # The peer (127.0.0.1) is not a trusted proxy: what the client wrote is not passed on.
    assert recorded.recorder.last("x-forwarded-for") == ["127.0.0.1"]
    assert recorded.recorder.last("x-real-ip") == []
    recorder = Recorder()
    with ServerThread(recorder.app) as up, ServerThread(create_app(
            GatewayConfig(upstream=up.url, trusted_proxies=("127.0.0.1/32",)), ScriptedDetector())) as server:
        assert raw_post(server.url, CHAT, spoofed).status_code == 200
    # From a trusted proxy the chain is kept and the peer appended, as every proxy on the way does.
    assert recorder.last("x-forwarded-for") == ["6.6.6.6, 127.0.0.1"]


def test_headers_named_in_the_upstreams_connection_header_are_not_returned(recorded: SimpleNamespace) -> None:
    recorded.recorder.reply_headers = {"connection": "x-hop-secret", "x-hop-secret": "internal", "x-kept": "yes"}
    response = raw_post(recorded.url, CHAT, [("authorization", "Bearer sk-hop-1")])
    assert response.status_code == 200
    assert "x-hop-secret" not in response.headers and response.headers["x-kept"] == "yes"


def test_deep_nesting_is_400_also_when_degraded(upstream: ServerThread) -> None:
    from distillguard.policy.decision import DegradeSpec

    detector = ScriptedDetector({account(KEY): Decision(action="degrade", rule="d", degrade=DegradeSpec(max_tokens=5))})
    nested = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "metadata": ' + \
        b"[" * 300 + b"]" * 300 + b"}"
    with ServerThread(create_app(GatewayConfig(upstream=upstream.url), detector)) as server:
        response = httpx.post(server.url + CHAT, content=nested, timeout=5,
                              headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"})
        assert response.status_code == 400 and "levels deep" in response.json()["error"]["message"]
        # Ordinary nesting (tool schemas) is untouched.
        tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "array", "items": {"type": "string"}}}}}}}}]
        assert post(server.url, CHAT, {"model": "m", "messages": USER, "tools": tools}).status_code == 200


def test_502_bodies_do_not_name_exception_classes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = GatewayConfig(upstream=f"http://127.0.0.1:{port}", connect_timeout=2)
    with ServerThread(create_app(config, ScriptedDetector())) as server:
        for path in (CHAT, MESSAGES):
            response = post(server.url, path, {"model": "m", "max_tokens": 5, "messages": USER})
            assert response.status_code == 502
            message = response.json()["error"]["message"]
            assert "Error" not in message and "Exception" not in message and "Client" not in message, message


# ---------------------------------------------------------------- 7. messages are required


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
def test_an_empty_messages_array_is_400(gateway: SimpleNamespace, path: str) -> None:
    response = post(gateway.url, path, {"model": "m", "max_tokens": 5, "messages": []})
    assert response.status_code == 400 and "'messages'" in response.json()["error"]["message"]
    assert gateway.detector.assessed == []
