"""Online per-account state: an opaque blob per key, in memory or shared through Redis.

The online engine keeps, for each account, a serialized accumulator of a few hundred bytes and
rewrites it on every request. The store only has to keep those blobs bounded (memory) or shared
between gateway replicas without losing an update (Redis); it never looks inside them.

`update(key, fn)` is an atomic read-modify-write: `fn` receives the current blob (None when absent)
and returns the new one. In Redis `fn` may run more than once when another process wrote the key in
between, so it must be a pure function of its argument (or overwrite what an earlier run recorded).
`update_many` does the same for several keys at once, atomically as a whole: the gateway folds
all the requests that arrived together in one step (three round trips to Redis instead of three
per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

from distillguard.errors import InputError, StateUnavailableError

DEFAULT_TTL_SECONDS = 7 * 24 * 3600.0
# Seconds the gateway waits on Redis for one command: tens of milliseconds, so that a Redis that
# stops answering costs each request that long and no more (`--redis-timeout`).
DEFAULT_REDIS_TIMEOUT = 0.05
# A whole state step (WATCH, MGET, MULTI/EXEC, retries under contention) may take this many
# command timeouts before it counts as the store being unavailable.
_STEP_TIMEOUTS = 5
MAX_KEY_LENGTH = 1024
MAX_VALUE_BYTES = 1 << 20  # far above a real accumulator; stops a runaway blob from filling memory
MAX_URL_LENGTH = 2048
_MGET_CHUNK = 1000
_REDIS_SCHEMES = ("redis", "rediss", "unix")

Update = Callable[[bytes | None], bytes]


class StateStore(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def update(self, key: str, fn: Update) -> bytes: ...

    def update_many(self, updates: Mapping[str, Update]) -> dict[str, bytes]: ...

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"state key must be a non-empty string of at most {MAX_KEY_LENGTH} characters")


def _check_value(value: Any) -> bytes:
    if isinstance(value, bytearray | memoryview):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise TypeError(f"state update must return bytes, got {type(value).__name__}")
    if len(value) > MAX_VALUE_BYTES:
        raise ValueError(f"state blob of {len(value)} bytes exceeds {MAX_VALUE_BYTES}")
    return value


def _check_ttl(ttl_seconds: float | None) -> None:
    if ttl_seconds is not None and not (isinstance(ttl_seconds, int | float) and ttl_seconds > 0):
        raise ValueError(f"ttl_seconds must be > 0 or None, got {ttl_seconds!r}")


class MemoryStore:
    """Blobs in one process, bounded in count and age.

    Entries are ordered by last update: when full, the entry updated longest ago is evicted, and an
    entry not updated for `ttl_seconds` is gone (checked when it is read, and swept from the old end
    on every update). Ordering by update rather than by read keeps both checks O(1): the oldest
    entry is always first. The online engine updates an account on each of its requests, so the two
    orders hardly differ.
    """

    def __init__(
        self,
        max_entries: int = 1_000_000,
        ttl_seconds: float | None = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be an integer >= 1, got {max_entries!r}")
        _check_ttl(ttl_seconds)
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        # Re-entrant so an update function that reads the store does not deadlock.
        self._lock = threading.RLock()

    def __len__(self) -> int:
        with self._lock:
            self._sweep(self._clock())
            return len(self._data)

    def _expired(self, updated_at: float, now: float) -> bool:
        return self.ttl_seconds is not None and now - updated_at >= self.ttl_seconds

    def _sweep(self, now: float) -> None:
        while self._data:
            _, updated_at = next(iter(self._data.values()))
            if not self._expired(updated_at, now):
                break
            self._data.popitem(last=False)

    def _live(self, key: str, now: float) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if self._expired(entry[1], now):
            del self._data[key]
            return None
        return entry[0]

    def get(self, key: str) -> bytes | None:
        _check_key(key)
        with self._lock:
            return self._live(key, self._clock())

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        for key in keys:
            _check_key(key)
        with self._lock:
            now = self._clock()
            return [self._live(key, now) for key in keys]

    def update(self, key: str, fn: Update) -> bytes:
        _check_key(key)
        with self._lock:
            now = self._clock()
            new = _check_value(fn(self._live(key, now)))
            self._data[key] = (new, now)
            self._data.move_to_end(key)
            self._sweep(now)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
            return new

    def update_many(self, updates: Mapping[str, Update]) -> dict[str, bytes]:
        with self._lock:
            return {key: self.update(key, fn) for key, fn in updates.items()}

    def discard(self, key: str) -> bytes | None:
        """Remove `key`, returning its blob (None when absent or expired)."""
        _check_key(key)
        with self._lock:
            blob = self._live(key, self._clock())
            self._data.pop(key, None)
            return blob


DEFAULT_MAX_ACCOUNTS = 1_000_000
DEFAULT_PROBATION_ACCOUNTS = 50_000


class ProbationStore:
    """Account state in two bounded pools: the main one, for confirmed accounts, and a small
    probation pool for the rest.

    The gateway cannot tell a real key from a made-up one before the upstream answers, and state
    written for every key that shows up would let a flood of fake keys evict real accounts' state
    (a campaign's history among them). So `update_many` writes an account to the main pool only
    when it is there already or listed in `confirmed` (moving it out of probation), and otherwise to
    the probation pool. The detector confirms an account once the upstream accepted one of its
    requests (a 2xx), or when the accounts table knows it. Each pool evicts its least recently
    updated entry when full: fake keys only ever evict each other. `update` (the engine's own keys,
    such as the window start) always writes to the main pool.
    """

    tiered = True

    def __init__(self, main: MemoryStore | None = None, probation: MemoryStore | None = None) -> None:
        self.main = main if main is not None else MemoryStore(DEFAULT_MAX_ACCOUNTS)
        self.probation = probation if probation is not None else MemoryStore(DEFAULT_PROBATION_ACCOUNTS)
        self._lock = threading.RLock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            blob = self.main.get(key)
            return blob if blob is not None else self.probation.get(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            return [self.get(key) for key in keys]

    def update(self, key: str, fn: Update) -> bytes:
        return self.main.update(key, fn)

    def update_many(self, updates: Mapping[str, Update], confirmed: Collection[str] = ()) -> dict[str, bytes]:
        out = {}
        with self._lock:
            for key, fn in updates.items():
                if self.main.get(key) is not None:
                    out[key] = self.main.update(key, fn)
                elif key in confirmed:
                    old = self.probation.discard(key)
                    out[key] = self.main.update(key, lambda _, old=old, fn=fn: fn(old))  # type: ignore[misc]
                else:
                    out[key] = self.probation.update(key, fn)
        return out


class StateConflictError(RuntimeError):
    """A key kept changing under an update for `max_retries` attempts in a row."""


class RedisStore:
    """Blobs shared through Redis under `<prefix><key>`, each expiring `ttl_seconds` after its update.

    `update` is optimistic: WATCH the key, read it, compute, and write in MULTI/EXEC; if another
    client wrote the key in between, EXEC fails and the whole step is retried, so concurrent updates
    from any number of processes are applied one after the other and none is lost.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "dg:acct:",
        ttl_seconds: float | None = DEFAULT_TTL_SECONDS,
        max_retries: int = 1000,
    ) -> None:
        _check_ttl(ttl_seconds)
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("RedisStore needs a client with decode_responses=False: state blobs are bytes")
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.max_retries = max_retries
        self.conflicts = 0  # retried updates, a measure of contention between replicas

    def _px(self) -> int | None:
        return None if self.ttl_seconds is None else max(1, round(self.ttl_seconds * 1000))

    def get(self, key: str) -> bytes | None:
        _check_key(key)
        return self.client.get(self.prefix + key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        for key in keys:
            _check_key(key)
        out: list[bytes | None] = []
        for start in range(0, len(keys), _MGET_CHUNK):
            out.extend(self.client.mget([self.prefix + k for k in keys[start : start + _MGET_CHUNK]]))
        return out

    def update(self, key: str, fn: Update) -> bytes:
        _check_key(key)
        name = self.prefix + key
        px = self._px()
        with self.client.pipeline(transaction=True) as pipe:
            for _ in range(self.max_retries + 1):
                try:
                    pipe.watch(name)
                    new = _check_value(fn(pipe.get(name)))
                    pipe.multi()
                    pipe.set(name, new, px=px)
                    pipe.execute()
                    return new
                except redis.WatchError:
                    self.conflicts += 1
        raise StateConflictError(f"state key changed under {self.max_retries} update attempts in a row")

    def update_many(self, updates: Mapping[str, Update]) -> dict[str, bytes]:
        keys = list(updates)
        for key in keys:
            _check_key(key)
        if not keys:
            return {}
        names = [self.prefix + key for key in keys]
        px = self._px()
        with self.client.pipeline(transaction=True) as pipe:
            for _ in range(self.max_retries + 1):
                try:
                    pipe.watch(*names)
                    olds = pipe.mget(names)
                    new = {key: _check_value(updates[key](old)) for key, old in zip(keys, olds, strict=True)}
                    pipe.multi()
                    for key, name in zip(keys, names, strict=True):
                        pipe.set(name, new[key], px=px)
                    pipe.execute()
                    return new
                except redis.WatchError:
                    self.conflicts += 1
        raise StateConflictError(f"state keys changed under {self.max_retries} update attempts in a row")

    def count(self) -> int:
        """Number of keys under the prefix (a SCAN: proportional to the database, for monitoring)."""
        pattern = _glob_escape(self.prefix) + "*"
        return sum(1 for _ in self.client.scan_iter(match=pattern, count=1000))


INDEX_SUFFIX = "~index"
# Trim a pool to its cap: the entries updated longest ago go first, with their index members. The
# key names come from the index, so this needs a single Redis (or keys in one cluster slot).
_TRIM_LUA = """
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
local old = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
for _, name in ipairs(old) do redis.call('DEL', name) end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
return excess
"""


class AsyncRedisStore:
    """`RedisStore` for the gateway's event loop: the same keys, values and optimistic updates,
    through redis-py's asyncio client, so waiting on Redis never blocks other requests.

    Every step is bounded: each command by the client's socket timeout (`async_redis_from_url`)
    and the whole step by `_STEP_TIMEOUTS` times it. A Redis that is down, paused or too slow
    raises `StateUnavailableError` within that bound, which the gateway answers with the policy's
    `on_state_unavailable`.
    """

    asynchronous = True
    tiered = True

    def __init__(
        self,
        client: redis.asyncio.Redis,
        prefix: str = "dg:acct:",
        ttl_seconds: float | None = DEFAULT_TTL_SECONDS,
        max_retries: int = 1000,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
        max_entries: int = DEFAULT_MAX_ACCOUNTS,
        probation_prefix: str = "dg:prob:",
        probation_entries: int = DEFAULT_PROBATION_ACCOUNTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_ttl(ttl_seconds)
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("AsyncRedisStore needs a client with decode_responses=False: state blobs are bytes")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, got {timeout!r}")
        for cap in (max_entries, probation_entries):
            if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
                raise ValueError(f"entry caps must be integers >= 1, got {cap!r}")
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.max_retries = max_retries
        self.timeout = timeout
        self.conflicts = 0
        # Each pool is bounded like `MemoryStore`: a sorted set of its keys by time of last update
        # (`<prefix>~index`), trimmed from the oldest end in the same transaction as every write.
        self.pools = {prefix: max_entries, probation_prefix: probation_entries}
        self.probation_prefix = probation_prefix
        self._clock = clock
        self._trim = client.register_script(_TRIM_LUA)

    def _px(self) -> int | None:
        return None if self.ttl_seconds is None else max(1, round(self.ttl_seconds * 1000))

    @contextlib.asynccontextmanager
    async def _bounded(self, what: str) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.timeout * _STEP_TIMEOUTS):
                yield
        except redis.WatchError:
            raise
        except (TimeoutError, redis.RedisError, OSError) as exc:
            raise StateUnavailableError(f"Redis {what}: {type(exc).__name__}") from None

    async def ping(self) -> bool:
        """Whether Redis answers within one command timeout."""
        try:
            async with asyncio.timeout(self.timeout * 2):
                return bool(await self.client.ping())
        except (TimeoutError, redis.RedisError, OSError):
            return False

    async def get(self, key: str) -> bytes | None:
        return (await self.get_many([key]))[0]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        for key in keys:
            _check_key(key)
        out: list[bytes | None] = []
        async with self._bounded("read"):
            for start in range(0, len(keys), _MGET_CHUNK):
                out.extend(await self.client.mget([self.prefix + k for k in keys[start : start + _MGET_CHUNK]]))
        return out

    async def get_many_tiered(self, keys: Sequence[str]) -> list[bytes | None]:
        """Each key's blob from the main pool, else from probation."""
        main, probation = await self.get_many(keys), await self._get_prefixed(self.probation_prefix, keys)
        return [m if m is not None else p for m, p in zip(main, probation, strict=True)]

    async def _get_prefixed(self, prefix: str, keys: Sequence[str]) -> list[bytes | None]:
        async with self._bounded("read"):
            return list(await self.client.mget([prefix + k for k in keys])) if keys else []

    async def update(self, key: str, fn: Update) -> bytes:
        """An engine key (the window start): main pool, never indexed, so never evicted."""
        _check_key(key)
        name = self.prefix + key
        async with self._bounded("update"), self.client.pipeline(transaction=True) as pipe:
            for _ in range(self.max_retries + 1):
                try:
                    await pipe.watch(name)
                    new = _check_value(fn(await pipe.get(name)))
                    pipe.multi()
                    pipe.set(name, new, px=self._px())
                    await pipe.execute()
                    return new
                except redis.WatchError:
                    self.conflicts += 1
        raise StateConflictError(f"state key changed under {self.max_retries} update attempts in a row")

    async def update_many(self, updates: Mapping[str, Update], confirmed: Collection[str] = ()) -> dict[str, bytes]:
        """As `ProbationStore.update_many`: an account is written to the main pool when it is there
        already or in `confirmed` (leaving probation), to the probation pool otherwise; one
        transaction for all, the pools trimmed to their caps in it."""
        keys = list(updates)
        for key in keys:
            _check_key(key)
        if not keys:
            return {}
        mains = [self.prefix + key for key in keys]
        probations = [self.probation_prefix + key for key in keys]
        px = self._px()
        async with self._bounded("update"), self.client.pipeline(transaction=True) as pipe:
            for _ in range(self.max_retries + 1):
                try:
                    await pipe.watch(*mains, *probations)
                    olds = await pipe.mget([*mains, *probations])
                    writes: dict[str, dict[str, bytes]] = {self.prefix: {}, self.probation_prefix: {}}
                    leave: list[str] = []
                    new = {}
                    for i, key in enumerate(keys):
                        in_main, in_probation = olds[i], olds[len(keys) + i]
                        if in_main is not None or key in confirmed:
                            new[key] = _check_value(updates[key](in_main if in_main is not None else in_probation))
                            writes[self.prefix][mains[i]] = new[key]
                            if in_probation is not None:
                                leave.append(probations[i])
                        else:
                            new[key] = _check_value(updates[key](in_probation))
                            writes[self.probation_prefix][probations[i]] = new[key]
                    pipe.multi()
                    now_ms = int(self._clock() * 1000)
                    for pool, blobs in writes.items():
                        if not blobs:
                            continue
                        index = pool + INDEX_SUFFIX
                        for name, blob in blobs.items():
                            pipe.set(name, blob, px=px)
                        pipe.zadd(index, dict.fromkeys(blobs, now_ms))
                        if px is not None:
                            pipe.pexpire(index, px)
                        await self._trim(keys=[index], args=[self.pools[pool]], client=pipe)
                    if leave:
                        pipe.delete(*leave)
                        pipe.zrem(self.probation_prefix + INDEX_SUFFIX, *leave)
                    await pipe.execute()
                    return new
                except redis.WatchError:
                    self.conflicts += 1
        raise StateConflictError(f"state keys changed under {self.max_retries} update attempts in a row")

    async def count(self, probation: bool = False) -> int:
        """Accounts tracked in the main (or probation) pool, from its index."""
        async with self._bounded("read"):
            return int(await self.client.zcard((self.probation_prefix if probation else self.prefix) + INDEX_SUFFIX))

    async def aclose(self) -> None:
        await self.client.aclose()


def _glob_escape(text: str) -> str:
    # SCAN MATCH is a glob; a prefix holding *, ?, [ or \ must match literally.
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def redact_url(url: str) -> str:
    """The URL without its password (user info or `password=` query option), for messages and logs."""
    url = re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", url)
    try:
        parts = urlsplit(url)
        if parts.password is None and parts.username is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "<unparseable URL>"
    return parts._replace(netloc=f"***@{host}").geturl()


def redis_from_url(url: str, *, ping: bool = False) -> redis.Redis:
    """A Redis client for `url` (redis://, rediss:// or unix://), or a one-line InputError.

    The password never appears in the error. With `ping`, the server is contacted at once so a
    wrong address fails at start-up rather than on the first request.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise InputError(f"Redis URL must be a non-empty string of at most {MAX_URL_LENGTH} characters")
    shown = redact_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _REDIS_SCHEMES:
        raise InputError(f"Redis URL {shown}: expected a redis://, rediss:// or unix:// URL")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5.0, socket_timeout=5.0)
    except (ValueError, TypeError) as exc:
        raise InputError(f"Redis URL {shown}: {_safe_message(exc, url)}") from None
    if ping:
        try:
            client.ping()
        except redis.RedisError as exc:
            client.close()
            raise InputError(f"cannot reach Redis at {shown}: {_safe_message(exc, url)}") from None
    return client


def async_redis_from_url(url: str, *, timeout: float = DEFAULT_REDIS_TIMEOUT) -> redis.asyncio.Redis:
    """An asyncio Redis client for `url` whose every command gives up after `timeout` seconds, with
    no retry of its own (redis-py retries timeouts with backoff by default, which would turn one
    timeout into seconds); a one-line InputError for an unusable URL."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise InputError(f"Redis URL must be a non-empty string of at most {MAX_URL_LENGTH} characters")
    if not (isinstance(timeout, int | float) and 0 < timeout <= 60):
        raise InputError(f"Redis timeout must be in (0, 60] seconds, got {timeout!r}")
    shown = redact_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _REDIS_SCHEMES:
        raise InputError(f"Redis URL {shown}: expected a redis://, rediss:// or unix:// URL")
    try:
        return redis.asyncio.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                            retry=AsyncRetry(NoBackoff(), 0))
    except (ValueError, TypeError) as exc:
        raise InputError(f"Redis URL {shown}: {_safe_message(exc, url)}") from None


def _safe_message(exc: BaseException, url: str) -> str:
    message = " ".join(str(exc).split()) or type(exc).__name__
    secrets = re.findall(r"(?i)[?&]password=([^&#]*)", url)
    with contextlib.suppress(ValueError):
        secrets.append(urlsplit(url).password or "")
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message
