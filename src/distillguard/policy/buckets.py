"""Token buckets for throttling, in memory (one process) or in Redis (shared by gateway replicas).

A bucket holds up to `burst` tokens and refills at `per_minute / 60` tokens per second; a request
takes one token or is told how long to wait for the next. Time is always passed in by the caller
(`now`, in seconds), so the replay engine can throttle in log time and tests need no sleeping. Only
differences of `now` matter, but every process sharing a bucket must use the same clock: replicas
sharing Redis must pass wall-clock time (`time.time()`), not `time.monotonic()`.

Both stores run the same arithmetic on IEEE doubles, so they give the same answers to the same
sequence of calls; a bucket that is not stored is full.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any, Protocol

# A token within this of a whole one counts as whole, so a caller that waits exactly the advertised
# `retry_after` is not refused again by a rounding error.
_EPSILON = 1e-9
# Idle buckets are kept this much longer than they need to refill, then dropped (they are full).
_EXPIRY_MARGIN_MS = 1000
MAX_KEY_LENGTH = 1024


class BucketStore(Protocol):
    def take(self, key: str, per_minute: float, burst: int, now: float) -> float | None:
        """Take one token: None when taken, else the seconds (> 0) until one is available."""
        ...


def check_rate(key: str, per_minute: float, burst: int) -> float:
    """Validate a bucket's parameters and return its refill rate in tokens per second."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"bucket key must be a non-empty string of at most {MAX_KEY_LENGTH} characters")
    if not (isinstance(per_minute, int | float) and math.isfinite(per_minute) and per_minute > 0):
        raise ValueError(f"per_minute must be a finite number > 0, got {per_minute!r}")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ValueError(f"burst must be an integer >= 1, got {burst!r}")
    return per_minute / 60.0


def refill_and_take(
    state: tuple[float, float] | None, rate: float, burst: int, now: float
) -> tuple[tuple[float, float], float | None]:
    """One step of the bucket: (tokens, last_ts) before → (tokens, last_ts) after, and the wait.

    A clock that steps backwards (requests of two replicas, or out-of-order log lines) adds no
    tokens and does not move the bucket's time back, so it can never mint extra tokens.
    """
    tokens, ts = (float(burst), now) if state is None else state
    elapsed = now - ts
    if elapsed < 0:
        elapsed = 0.0
    else:
        ts = now
    tokens = min(float(burst), tokens + elapsed * rate)
    if tokens + _EPSILON >= 1.0:
        return (max(0.0, tokens - 1.0), ts), None
    return (tokens, ts), (1.0 - tokens) / rate


def expiry_ms(rate: float, burst: int) -> int:
    """How long an idle bucket must be kept: after this it has refilled and is the same as absent."""
    return math.ceil(burst / rate * 1000.0) + _EXPIRY_MARGIN_MS


class MemoryBuckets:
    """Buckets in a bounded LRU dictionary: the least recently used bucket is dropped (= refilled)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ValueError(f"max_keys must be an integer >= 1, got {max_keys!r}")
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, per_minute: float, burst: int, now: float) -> float | None:
        rate = check_rate(key, per_minute, burst)
        with self._lock:
            state, wait = refill_and_take(self._buckets.get(key), rate, burst, float(now))
            self._buckets[key] = state
            self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait


# The same step as `refill_and_take`, atomically inside Redis. Numbers travel as "%.17g" strings,
# which round-trip doubles exactly, so Redis and memory buckets agree bit for bit. The wait is
# returned as a string because Redis truncates Lua numbers to integers.
_TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local eps = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then
  elapsed = 0
else
  ts = now
end
tokens = math.min(burst, tokens + elapsed * rate)
local wait = ''
if tokens + eps >= 1 then
  tokens = math.max(0, tokens - 1)
else
  wait = string.format('%.17g', (1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts))
redis.call('PEXPIRE', KEYS[1], ttl)
return wait
"""


class RedisBuckets:
    """Buckets shared through Redis, one Lua script per take (atomic across processes and hosts).

    Each bucket is a hash `<prefix><key>` with fields `t` (tokens) and `ts` (time of last refill) as
    float strings, and expires once idle long enough to have refilled.
    """

    def __init__(self, client: Any, prefix: str = "dg:tb:") -> None:
        self.client = client
        self.prefix = prefix
        self._take = client.register_script(_TAKE_LUA)

    def take(self, key: str, per_minute: float, burst: int, now: float) -> float | None:
        rate = check_rate(key, per_minute, burst)
        args = [repr(rate), str(burst), repr(float(now)), str(expiry_ms(rate, burst)), repr(_EPSILON)]
        reply = self._take(keys=[self.prefix + key], args=args)
        if isinstance(reply, bytes):
            reply = reply.decode("ascii")
        return float(reply) if reply else None


class AsyncRedisBuckets:
    """`RedisBuckets` for the gateway's event loop (redis-py's asyncio client): the same buckets
    and script. `take_many` sends the takes of a whole batch in one pipeline; Redis runs them in
    order, so the answers are those of taking one after the other."""

    asynchronous = True

    def __init__(self, client: Any, prefix: str = "dg:tb:") -> None:
        self.client = client
        self.prefix = prefix
        self._take = client.register_script(_TAKE_LUA)

    async def take_many(self, takes: list[tuple[str, float, int, float]]) -> list[float | None]:
        """(key, per_minute, burst, now) for each take, in order -> the wait of each (None: taken)."""
        if not takes:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for key, per_minute, burst, now in takes:
                rate = check_rate(key, per_minute, burst)
                args = [repr(rate), str(burst), repr(float(now)), str(expiry_ms(rate, burst)), repr(_EPSILON)]
                await self._take(keys=[self.prefix + key], args=args, client=pipe)
            replies = await pipe.execute()
        out: list[float | None] = []
        for reply in replies:
            if isinstance(reply, bytes):
                reply = reply.decode("ascii")
            out.append(float(reply) if reply else None)
        return out
