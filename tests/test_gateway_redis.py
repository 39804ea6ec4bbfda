"""Two gateway replicas sharing their state through a real Redis.

A real redis-server, the stand-in model API and two `distillguard gateway` processes started with
the same `--redis` URL and a policy that throttles every account (burst 3, then one request a
minute). An account spread over both replicas must be seen as one: one token bucket, and one
per-account state whose exchange count covers the requests of both replicas.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from distillguard.behaviour.state import AccountState
from distillguard.engines.state import RedisStore

BIN = Path(sys.executable).parent / "distillguard"
BURST = 3
POLICY = f"""\
version: 1
rules:
  - name: throttle-all
    when: {{}}
    action: throttle
    throttle: {{per_minute: 1, burst: {BURST}, scope: account}}
"""
START_TIMEOUT_S = 30.0
START_ATTEMPTS = 3
CHAT = "/v1/chat/completions"


@dataclass
class Server:
    name: str
    argv: Callable[[int], list[str]]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        self.port = _free_port()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv(self.port), stdout=out, stderr=subprocess.STDOUT)

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_all(servers: list[Server]) -> None:
    """Start the servers together and wait for their /healthz; one that exits early (most likely
    its port was taken meanwhile) is started again on another port."""
    for server in servers:
        server.spawn()
    attempts = dict.fromkeys((s.name for s in servers), 1)
    waiting = list(servers)
    deadline = time.monotonic() + START_TIMEOUT_S
    while waiting:
        if time.monotonic() > deadline:
            raise RuntimeError(f"did not start: {[s.name for s in waiting]}; logs in {waiting[0].log.parent}")
        for server in list(waiting):
            assert server.proc is not None
            if server.proc.poll() is not None:
                if attempts[server.name] >= START_ATTEMPTS:
                    raise RuntimeError(f"{server.name} exited: {server.log.read_text()[-2000:]}")
                attempts[server.name] += 1
                server.spawn()
            elif server.healthy():
                waiting.remove(server)
        time.sleep(0.1)


@dataclass
class Replicas:
    a: str
    b: str
    workers: Server  # one `gateway --workers 2`


@pytest.fixture(scope="module")
def replicas(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    work = tmp_path_factory.mktemp("gateway-redis")
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    standin = Server("standin", lambda p: [str(BIN), "standin", "--port", str(p), "--log-level", "warning"],
                     work / "standin.log")

    def gateway(port: int) -> list[str]:
        return [str(BIN), "gateway", "--upstream", standin.url, "--port", str(port), "--redis", redis_url,
                "--policy", str(policy), "--log-level", "warning"]

    servers = [standin]
    try:
        _start_all(servers)
        servers += [Server(name, gateway, work / f"{name}.log") for name in ("gateway-a", "gateway-b")]
        # And one gateway run as two worker processes on one port.
        servers.append(Server("gateway-workers", lambda p: [*gateway(p), "--workers", "2"],
                              work / "gateway-workers.log"))
        _start_all(servers[1:])  # side by side: each takes seconds to load the detector
        yield Replicas(servers[1].url, servers[2].url, servers[3])
    finally:
        for server in reversed(servers):
            server.stop()


def account_of(key: str) -> str:
    # The gateway's account for a key the accounts table does not know (gateway/keys.py).
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def unique_key(label: str) -> str:
    # Keys unique per run: the session's Redis outlives a single test, buckets included.
    return f"sk-test-{label}-{time.time_ns()}"


def chat(base: str, key: str, text: str = "Hello there") -> httpx.Response:
    return httpx.post(base + CHAT, headers={"authorization": f"Bearer {key}"}, timeout=10.0,
                      json={"model": "standin-model", "messages": [{"role": "user", "content": text}]})


def shared_state(client: redis.Redis, key: str) -> AccountState:
    blob = RedisStore(client).get(account_of(key))
    assert blob is not None, "no state in Redis for the account"
    return AccountState.from_bytes(blob)


def test_token_bucket_is_shared_by_the_replicas(replicas: Replicas, redis_client: redis.Redis) -> None:
    key, other = unique_key("bucket"), unique_key("other")
    first = [chat(replicas.a, key), chat(replicas.a, key), chat(replicas.b, key)]
    assert [r.status_code for r in first] == [200, 200, 200]
    assert all(r.json()["object"] == "chat.completion" for r in first)

    # The bucket's 3 tokens were spent on two replicas: the 4th request, on B, finds it empty.
    refused = chat(replicas.b, key)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    # And whichever replica the next one lands on.
    assert chat(replicas.a, key).status_code == 429

    # Another account has its own bucket, on both replicas.
    assert chat(replicas.b, other).status_code == 200
    assert chat(replicas.a, other).status_code == 200

    # One account state for both replicas: every request counted once, refused ones included.
    assert shared_state(redis_client, key).n == 5
    assert shared_state(redis_client, other).n == 2


def test_account_state_counts_the_requests_of_both_replicas(replicas: Replicas, redis_client: redis.Redis) -> None:
    key = unique_key("state")
    statuses = [chat(base, key, f"question {i}").status_code
                for i, base in enumerate([replicas.a, replicas.b, replicas.b])]
    assert statuses == [200, 200, 200]
    state = shared_state(redis_client, key)
    assert state.n == 3
    # Usage arrives after the response; once both replicas reported it, it adds up across them.
    deadline = time.monotonic() + 5
    while shared_state(redis_client, key).stop_known < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    state = shared_state(redis_client, key)
    assert state.stop_known == 3
    assert state.in_tokens == sum(len(f"question {i}".split()) for i in range(3))


def test_concurrent_requests_on_both_replicas_lose_no_update(replicas: Replicas, redis_client: redis.Redis) -> None:
    key, n = unique_key("race"), 12
    bases = [replicas.a, replicas.b] * (n // 2)
    with ThreadPoolExecutor(max_workers=n) as pool:
        statuses = list(pool.map(lambda base: chat(base, key).status_code, bases))
    # The bucket is taken atomically in Redis: exactly `burst` requests get a token, whatever the
    # interleaving between replicas; and the state update retried under contention loses no request.
    assert sorted(statuses) == [200] * BURST + [429] * (n - BURST)
    assert shared_state(redis_client, key).n == n


def test_worker_processes_share_one_account_state(replicas: Replicas, redis_client: redis.Redis) -> None:
    server = replicas.workers
    assert server.proc is not None
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    workers = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert len(workers) == 2, [Path(f"/proc/{c}/cmdline").read_bytes() for c in children]
    key, n = unique_key("workers"), 16
    with ThreadPoolExecutor(max_workers=n) as pool:
        statuses = list(pool.map(lambda _: chat(server.url, key).status_code, range(n)))
    assert sorted(statuses) == [200] * BURST + [429] * (n - BURST)
    assert shared_state(redis_client, key).n == n


def test_several_workers_need_redis(tmp_path: Path) -> None:
    done = subprocess.run([str(BIN), "gateway", "--upstream", "http://127.0.0.1:9", "--workers", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "--workers above 1 needs --redis" in done.stderr and len(done.stderr.strip().splitlines()) == 1
