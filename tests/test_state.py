"""Online state stores: bounded memory store, and a Redis store that loses no concurrent update."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import pytest
import redis

from distillguard.engines.state import (
    MemoryStore,
    RedisStore,
    StateConflictError,
    redact_url,
    redis_from_url,
)
from distillguard.errors import InputError


def increment(blob: bytes | None) -> bytes:
    return str(int(blob or b"0") + 1).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ memory


def test_memory_store_read_modify_write() -> None:
    s = MemoryStore()
    assert s.get("a") is None
    assert s.update("a", increment) == b"1"
    assert s.update("a", increment) == b"2"
    assert s.get_many(["a", "b"]) == [b"2", None]
    assert len(s) == 1


def test_memory_store_lru_bound_under_flood() -> None:
    s = MemoryStore(max_entries=100)
    s.update("keep", increment)
    for i in range(1000):
        s.update(f"k{i}", increment)
        if i % 10 == 0:
            s.update("keep", increment)  # updated regularly: never the oldest
        assert len(s) <= 100
    assert len(s) == 100
    assert s.get("k0") is None  # updated longest ago: evicted
    assert s.get("k999") == b"1"
    assert s.get("keep") == b"101"


def test_memory_store_ttl_since_last_update() -> None:
    clock = Clock()
    s = MemoryStore(ttl_seconds=10.0, clock=clock)
    s.update("a", increment)
    clock.now = 5.0
    s.update("b", increment)
    clock.now = 9.0
    s.update("a", increment)  # refreshed: lives until 19
    assert s.get("a") == b"2"
    clock.now = 15.0
    assert s.get("b") is None and s.get("a") == b"2"
    assert s.update("b", increment) == b"1"  # an expired entry starts afresh
    clock.now = 19.0
    assert s.get_many(["a", "b"]) == [None, b"1"]
    # Expired entries are swept without being read, so the count stays honest.
    for i in range(50):
        s.update(f"x{i}", increment)
    clock.now = 100.0
    assert len(s) == 0


def test_memory_store_rejects_bad_input() -> None:
    s = MemoryStore()
    with pytest.raises(TypeError):
        s.update("a", lambda _: "text")  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError):
        s.update("a", lambda _: b"x" * (2 << 20))
    with pytest.raises(ValueError):
        s.get("")
    with pytest.raises(ValueError):
        MemoryStore(max_entries=0)
    assert s.get("a") is None  # failed updates wrote nothing


# ------------------------------------------------------------------ redis


def _worker(url: str, key: str, n: int, start: Any, out: Any, batch_with: str | None = None) -> None:
    # Runs in a spawned process with its own client, as a separate gateway replica would.
    client = redis.Redis.from_url(url)
    store = RedisStore(client)
    start.wait(30)  # both processes begin together, so their updates really interleave
    for _ in range(n):
        if batch_with is None:
            store.update(key, increment)
        else:
            store.update_many({key: increment, batch_with: increment})
    out.put(store.conflicts)
    client.close()


def test_redis_store_two_processes_lose_no_update(redis_client: redis.Redis, redis_url: str) -> None:
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(redis_url, "acct-1", 200, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    for _ in procs:
        out.get(timeout=30)  # each worker reports when done (its retry count)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert RedisStore(redis_client).get("acct-1") == b"400"


def test_redis_store_batched_updates_lose_nothing_against_single_ones(
    redis_client: redis.Redis, redis_url: str
) -> None:
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(redis_url, "acct-1", 200, start, out)),
             ctx.Process(target=_worker, args=(redis_url, "acct-1", 200, start, out, "acct-2"))]
    for p in procs:
        p.start()
    for _ in procs:
        out.get(timeout=30)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert RedisStore(redis_client).get_many(["acct-1", "acct-2"]) == [b"400", b"200"]


def test_memory_store_batched_updates() -> None:
    store = MemoryStore(max_entries=10)
    assert store.update_many({"a": increment, "b": increment}) == {"a": b"1", "b": b"1"}
    assert store.update_many({"a": increment}) == {"a": b"2"}
    assert store.update_many({}) == {}


def test_redis_store_retries_when_the_key_changes_underneath(
    redis_client: redis.Redis, redis_url: str
) -> None:
    # Deterministic interleaving: another client writes the key while the first update computes.
    other = RedisStore(redis.Redis.from_url(redis_url))
    store = RedisStore(redis_client)
    calls: list[bytes | None] = []

    def racing_increment(blob: bytes | None) -> bytes:
        calls.append(blob)
        if len(calls) == 1:
            other.update("k", increment)
        return increment(blob)

    assert store.update("k", racing_increment) == b"2"
    assert calls == [None, b"1"] and store.conflicts == 1
    assert store.get("k") == b"2"
    other.client.close()


def test_redis_store_gives_up_after_max_retries(redis_client: redis.Redis, redis_url: str) -> None:
    other = RedisStore(redis.Redis.from_url(redis_url))
    store = RedisStore(redis_client, max_retries=3)

    def always_raced(blob: bytes | None) -> bytes:
        other.update("k", increment)
        return b"never"

    with pytest.raises(StateConflictError):
        store.update("k", always_raced)
    assert store.get("k") == b"4"
    other.client.close()


def test_redis_store_prefix_ttl_and_bulk_reads(redis_client: redis.Redis) -> None:
    s = RedisStore(redis_client, prefix="dg:acct:", ttl_seconds=3600)
    s.update("a", increment)
    s.update("b", increment)
    s.update("b", increment)
    redis_client.set("unrelated", b"x")
    assert 3_590_000 < redis_client.pttl("dg:acct:a") <= 3_600_000
    assert s.get_many(["a", "b", "c"]) == [b"1", b"2", None]
    assert s.get_many([f"k{i}" for i in range(2500)]) == [None] * 2500  # spans several MGET chunks
    assert s.get_many([]) == []
    assert s.count() == 2
    # A prefix holding glob characters is matched literally.
    odd = RedisStore(redis_client, prefix="dg[1]*:")
    odd.update("a", increment)
    assert odd.count() == 1
    forever = RedisStore(redis_client, prefix="p:", ttl_seconds=None)
    forever.update("a", increment)
    assert redis_client.pttl("p:a") == -1


def test_redis_store_refuses_decoding_client(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(client)
    client.close()


def test_redis_from_url(redis_url: str) -> None:
    client = redis_from_url(redis_url, ping=True)
    assert client.ping()
    client.close()
    for bad in ("", "http://127.0.0.1:6379", "127.0.0.1:6379", "redis://" + "x" * 3000):
        with pytest.raises(InputError) as err:
            redis_from_url(bad)
        assert "\n" not in str(err.value)


def test_redis_errors_never_show_the_password() -> None:
    with pytest.raises(InputError) as err:
        redis_from_url("redis://user:s3cretpw@127.0.0.1:1/0", ping=True)
    assert "s3cretpw" not in str(err.value) and "cannot reach Redis" in str(err.value)
    with pytest.raises(InputError) as err:
        redis_from_url("redis://:s3cretpw@127.0.0.1:notaport/0")
    assert "s3cretpw" not in str(err.value)
    assert redact_url("redis://:pw@h:6379/0") == "redis://***@h:6379/0"
    assert redact_url("unix:///tmp/r.sock?db=0&password=pw") == "unix:///tmp/r.sock?db=0&password=***"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
