"""Gateway load benchmark: latency added by `distillguard gateway`, its highest sustained rate, and
its memory per tracked account.

Starts the stand-in model API and a gateway in front of it as real subprocesses on free ports (and,
with `--redis`, a real redis-server for the gateway's state), then drives both from a load
generator in a separate process, in the same run:

1. direct to the stand-in, then through a bare pass-through proxy (`bare_proxy.py`, the floor any
   proxy costs; `--no-floor` skips it), then through the gateway: a warm-up, then `--seconds` at `--rate`;
   the gateway's RSS before and after that load, over the accounts it answered for, bounds its
   memory per tracked account from above;
2. `--max-rate`: through a fresh gateway, short steps of increasing rate until one fails (p99
   above `--p99-bound-ms`, any error, or less than 95% of the target rate achieved).

The load is open-loop: request i is *scheduled* at start + i / rate whatever the server does, and
its latency is counted from that scheduled time, so a server that falls behind shows its queueing
delay instead of silently slowing the generator down. The generator's own lateness (start of a
request minus its scheduled time) is reported too: when it is large, the generator was the limit.

Requests are OpenAI chat completions (a share streamed) built from the prompts of a small simulated
world, sent with `--keys` distinct API keys so the gateway's per-account state grows as in service.

    .venv/bin/python benchmarks/bench_gateway.py [--rate 500] [--seconds 20] [--redis] [--no-max-rate]

Prints markdown tables and writes the figures as JSON to `--out`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_POLICY = ROOT / "policies" / "default.yaml"
# Low steps first: on a small or busy machine the interesting limit may be well under 250 req/s.
DEFAULT_STEPS = (25, 50, 75, 100, 150, 200, 250, 375, 500, 750, 1000, 1500, 2000, 3000)
REQUEST_TIMEOUT_S = 10.0
BATCH_METRIC = "distillguard_assess_batch_size"
HEALTH_TIMEOUT_S = 60.0
START_ATTEMPTS = 3
MAX_BODY_BYTES = 64 * 1024  # prompts longer than this are skipped: not what this benchmark is about
HELD_ACHIEVED_SHARE = 0.95
PRIMING_REQUESTS = 50
SETTLE_WINDOW_S = 0.5
SETTLE_IDLE_SHARE = 0.2
KEEPALIVE_REUSE_S = 4.0  # below uvicorn's 5 s keep-alive timeout, so the server never closes it first
PERCENTILES = (50, 90, 99)
CHAT_PATH = "/v1/chat/completions"


# ---------------------------------------------------------------- request mix (pure)


def _openai_content(content: Any) -> str | list[dict[str, Any]]:
    """Simulated message content in the OpenAI shape (Anthropic-style image parts become image_url)."""
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif part.get("type") in ("image", "image_url"):
            parts.append({"type": "image_url", "image_url": {"url": "https://example.com/image.png"}})
    return parts


def chat_body(exchange: dict[str, Any], stream: bool) -> dict[str, Any]:
    """An OpenAI chat-completions request body for one simulated exchange."""
    messages = [{"role": "system", "content": exchange["system"]}] if exchange.get("system") else []
    messages += [{"role": m["role"], "content": _openai_content(m.get("content"))} for m in exchange["messages"]]
    body: dict[str, Any] = {"model": exchange["model"], "messages": messages, "stream": stream}
    if isinstance(exchange.get("max_tokens"), int) and exchange["max_tokens"] > 0:
        body["max_tokens"] = exchange["max_tokens"]
    if isinstance(exchange.get("temperature"), int | float):
        body["temperature"] = exchange["temperature"]
    if exchange.get("tools"):
        body["tools"] = [
            {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}
            for name in exchange["tools"]
        ]
    return body


def build_bodies(exchanges: Sequence[dict[str, Any]], stream_share: float, seed: int) -> tuple[list[bytes], list[bool]]:
    """Serialized request bodies (done once, so the generator spends no time on JSON) and which stream."""
    rng = random.Random(seed)
    bodies, streams = [], []
    for exchange in exchanges:
        stream = rng.random() < stream_share
        data = json.dumps(chat_body(exchange, stream), separators=(",", ":")).encode()
        if len(data) <= MAX_BODY_BYTES:
            bodies.append(data)
            streams.append(stream)
    return bodies, streams


def sample_exchanges(lines: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """`n` exchanges spread evenly over the log, so every kind of actor and prompt is represented."""
    if len(lines) <= n:
        return list(lines)
    step = len(lines) / n
    return [lines[int(i * step)] for i in range(n)]


def api_keys(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"sk-bench-{i:05d}-{rng.getrandbits(64):016x}" for i in range(n)]


# ---------------------------------------------------------------- figures (pure)


def latency_figures(latencies_s: Sequence[float]) -> dict[str, float | None]:
    if not latencies_s:
        return {f"p{p}_ms": None for p in PERCENTILES} | {"max_ms": None, "mean_ms": None}
    ms = np.asarray(latencies_s, dtype=np.float64) * 1000.0
    figures: dict[str, float | None] = {f"p{p}_ms": float(np.percentile(ms, p)) for p in PERCENTILES}
    return figures | {"max_ms": float(ms.max()), "mean_ms": float(ms.mean())}


def phase_figures(raw: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    """Summary of one measured phase: latency over answered requests, status classes, achieved rate.

    Achieved rate = answered requests / time from the first scheduled request to the last answer
    (at least the phase length): a server that falls behind stretches that span and the rate drops.
    """
    statuses = Counter(raw["statuses"])
    answered = [lat for lat, status in zip(raw["latencies"], raw["statuses"], strict=True) if status > 0]
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    refused = statuses.get(429, 0) + statuses.get(403, 0)
    errors = sum(statuses.values()) - ok - refused
    span = max(seconds, raw["last_end"] - raw["first_due"]) if raw["statuses"] else seconds
    return {
        "target_rate": rate,
        "seconds": seconds,
        "requests": len(raw["statuses"]),
        "achieved_rate": len(answered) / span,
        "ok": ok,
        "refused_by_policy": refused,
        "errors": errors,
        "error_kinds": dict(raw["error_kinds"]),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        **latency_figures(answered),
        "generator_lag_p99_ms": latency_figures(raw["lags"])["p99_ms"],
        "generator_cpu_share": raw["cpu_seconds"] / max(raw["wall_seconds"], 1e-9),
    }


def step_held(figures: dict[str, Any], p99_bound_ms: float) -> bool:
    p99 = figures["p99_ms"]
    return (
        figures["errors"] == 0
        and p99 is not None
        and p99 <= p99_bound_ms
        and figures["achieved_rate"] >= HELD_ACHIEVED_SHARE * figures["target_rate"]
    )


def added_latency(direct: dict[str, Any], gateway: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in ("p50_ms", "p90_ms", "p99_ms"):
        d, g = direct[key], gateway[key]
        out[key] = None if d is None or g is None else g - d
    return out


def metric_sum_count(text: str, name: str) -> tuple[float, float]:
    """`<name>_sum` and `<name>_count` from Prometheus text (summed over label sets)."""
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{name}_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


def _ms(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def markdown(summary: dict[str, Any]) -> str:
    m, cfg = summary["machine"], summary["config"]
    lines = [
        f"machine: {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}; {summary['date']}; "
        f"load average at start {m['loadavg_start']} (other processes share the machine)",
        f"through: {cfg.get('target', 'gateway')}; "
        f"state: {cfg['state']}, {cfg.get('workers', 1)} gateway worker(s); {cfg['keys']:,} API keys, {cfg['bodies']} request bodies "
        f"({cfg['stream_share']:.0%} streamed); stand-in latency {cfg['standin_latency_ms']} ms; "
        f"warm-up {cfg['warmup']} s, measured {cfg['seconds']} s at {cfg['rate']} req/s (open loop)",
        "",
        "| target | req/s target | req/s achieved | p50 ms | p90 ms | p99 ms | max ms | ok | refused (policy) "
        "| errors | generator lag p99 ms | generator CPU | server CPU ms/req |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("direct", "floor", "gateway"):
        if name not in summary:
            continue
        f = summary[name]
        lines.append(
            f"| {name} | {f['target_rate']:.0f} | {f['achieved_rate']:.1f} | {_ms(f['p50_ms'])} | {_ms(f['p90_ms'])} "
            f"| {_ms(f['p99_ms'])} | {_ms(f['max_ms'])} | {f['ok']} | {f['refused_by_policy']} | {f['errors']} "
            f"| {_ms(f['generator_lag_p99_ms'])} | {f['generator_cpu_share']:.0%} "
            f"| {_ms(f.get('server_cpu_ms_per_request'))} |"
        )
    added = summary["added"]
    lines.append(
        f"| **added by the gateway** | | | **{_ms(added['p50_ms'], True)}** | {_ms(added['p90_ms'], True)} "
        f"| **{_ms(added['p99_ms'], True)}** | | | | | | | |"
    )
    if "added_over_floor" in summary:
        over = summary["added_over_floor"]
        cpu = [summary[k].get("server_cpu_ms_per_request") for k in ("floor", "gateway")]
        extra = _ms(cpu[1] - cpu[0], True) if None not in cpu else "–"
        lines.append(
            f"| **added over the bare proxy (floor)** | | | **{_ms(over['p50_ms'], True)}** | {_ms(over['p90_ms'], True)} "
            f"| **{_ms(over['p99_ms'], True)}** | | | | | | | **{extra}** |"
        )
    overhead = summary["gateway"].get("gateway_overhead_mean_ms")
    if overhead is not None:
        lines.append(f"\nin-gateway overhead (its `distillguard_overhead_seconds` histogram), mean: {overhead:.2f} ms")
    mem = summary["memory"]
    lines += [
        "",
        "| gateway RSS at start | RSS before load (primed) | RSS after load | delta | tracked accounts "
        "| bytes per tracked account (upper bound) |",
        "|---|---|---|---|---|---|",
        f"| {mem['rss_start'] / 2**20:.1f} MiB | {mem['rss_before'] / 2**20:.1f} MiB | {mem['rss_after'] / 2**20:.1f} MiB "
        f"| {(mem['rss_after'] - mem['rss_before']) / 2**20:+.1f} MiB | {mem['tracked_accounts']:,} "
        f"| {mem['bytes_per_account']:,.0f} |",
    ]
    if mem.get("overloaded"):
        lines.append("\n(the gateway was overloaded in this phase: the RSS after load also holds the requests "
                     "it had queued, so this bound is loose)")
    if mem.get("redis_bytes_per_account") is not None:
        lines.append(f"\nRedis used_memory per account (state blobs and token buckets): "
                     f"{mem['redis_bytes_per_account']:,.0f} B over {mem['redis_state_keys']:,} state keys")
    steps = summary.get("max_rate")
    if steps:
        lines += [
            "",
            f"max sustained rate through the gateway ({cfg['step_seconds']} s per step; holds when p99 ≤ "
            f"{cfg['p99_bound_ms']:.0f} ms, no errors, achieved ≥ {HELD_ACHIEVED_SHARE:.0%} of target):",
            "",
            "| req/s target | req/s achieved | p50 ms | p99 ms | errors | refused (policy) | generator lag p99 ms "
            "| gateway CPU ms/req | requests per assessment | held |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in steps["steps"]:
            lines.append(
                f"| {f['target_rate']:.0f} | {f['achieved_rate']:.1f} | {_ms(f['p50_ms'])} | {_ms(f['p99_ms'])} "
                f"| {f['errors']} | {f['refused_by_policy']} | {_ms(f['generator_lag_p99_ms'])} "
                f"| {_ms(f.get('server_cpu_ms_per_request'))} | {_ms(f.get('assess_batch_mean'))} "
                f"| {'yes' if f['held'] else 'no'} |"
            )
        held = steps["max_sustained_rate"]
        lines.append(f"\n**max sustained rate: {held:.0f} req/s**" if held else
                     "\n**max sustained rate: below the first step**")
    return "\n".join(lines)


# ---------------------------------------------------------------- load generator (its own process)
#
# A minimal HTTP/1.1 keep-alive client on asyncio streams rather than httpx: on a small machine the
# generator shares cores with the servers it measures, and httpx costs several times more CPU per
# request (its pool also scans every connection on every request), which would slow the servers
# down and make the generator the limit. It only has to speak to the two servers started here.


class HttpFormatError(Exception):
    """A response this client does not understand."""


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing() or now - self.idle_since > KEEPALIVE_REUSE_S)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def parse_head(head: bytes) -> tuple[int, dict[bytes, bytes]]:
    """Status code and lower-cased headers of a response head (status line + header lines)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HttpFormatError(f"bad status line {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one whole response (Content-Length or chunked body); returns its status and whether the
    connection can be reused."""
    status, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
    if b"content-length" in headers:
        await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF; after the last chunk, the final CRLF
            if size == 0:
                break
    else:
        await reader.read()  # delimited by the end of the connection
        return status, False
    return status, headers.get(b"connection", b"").lower() != b"close"


class RawPool:
    """At most `limit` keep-alive connections to one server; requests beyond that wait their turn
    (inside their measured latency, as they would behind any client's pool)."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port = host, port
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[_Conn] = []

    def _take_idle(self, now: float) -> _Conn | None:
        while self._idle:
            conn = self._idle.pop()  # most recently used first: least likely closed by the server
            if conn.usable(now):
                return conn
            conn.close()
        return None

    async def request(self, data: bytes) -> int:
        loop = asyncio.get_running_loop()
        async with self._slots:
            reused = self._take_idle(loop.time())
            for conn in ([reused] if reused else []) + [None]:
                fresh = conn is None
                if fresh:
                    conn = _Conn(*await asyncio.open_connection(self.host, self.port))
                try:
                    conn.writer.write(data)
                    status, keep = await read_response(conn.reader)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    conn.close()
                    # A reused connection the server closed meanwhile fails before any answer: retry
                    # once on a new one, as HTTP clients do. A fresh connection failing is an error.
                    if fresh or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                        raise
                    continue
                except BaseException:
                    conn.close()
                    raise
                if keep:
                    conn.idle_since = loop.time()
                    self._idle.append(conn)
                else:
                    conn.close()
                return status
        raise AssertionError("unreachable: the last attempt always uses a fresh connection")

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


@dataclass
class _Plan:
    bodies: list[bytes]  # JSON, already serialized
    keys: list[bytes]  # one "authorization" header line per API key


@dataclass
class _Phase:
    n_warm: int
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    error_kinds: Counter[str] = field(default_factory=Counter)
    first_due: float = 0.0
    last_end: float = 0.0


def request_bytes(host: str, port: int, body: bytes, key_line: bytes) -> bytes:
    return (f"POST {CHAT_PATH} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n").encode() + key_line + b"\r\n" + body


async def run_phase(plan: _Plan, spec: dict[str, Any]) -> dict[str, Any]:
    """Open loop: request i is due at t0 + i/rate; its latency counts from when it was due."""
    rate, warmup, seconds = spec["rate"], spec["warmup"], spec["seconds"]
    host, port = spec["host"], spec["port"]
    rng = random.Random(spec["seed"])
    n_warm, n_total = round(rate * warmup), round(rate * (warmup + seconds))
    which_body = [rng.randrange(len(plan.bodies)) for _ in range(n_total)]
    which_key = [rng.randrange(len(plan.keys)) for _ in range(n_total)]
    pool = RawPool(host, port, spec["connections"])
    phase = _Phase(n_warm)
    # Keys of answered requests certainly reached the server; timed-out ones may not have.
    answered_keys: set[int] = set()
    loop = asyncio.get_running_loop()

    async def one(i: int, due: float) -> None:
        started = loop.time()
        data = request_bytes(host, port, plan.bodies[which_body[i]], plan.keys[which_key[i]])
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                status = await pool.request(data)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                HttpFormatError, ValueError) as exc:
            status = -1
            if i >= n_warm:
                phase.error_kinds[type(exc).__name__] += 1
        if status > 0:
            answered_keys.add(which_key[i])
        if i >= n_warm:
            end = loop.time()
            phase.latencies.append(end - due)
            phase.statuses.append(status)
            phase.lags.append(started - due)
            phase.last_end = max(phase.last_end, end)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    tasks = []
    t0 = loop.time() + 0.05
    phase.first_due = t0 + n_warm / rate
    try:
        for i in range(n_total):
            due = t0 + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
    finally:
        pool.close()
    return {
        "latencies": phase.latencies, "statuses": phase.statuses, "lags": phase.lags,
        "error_kinds": dict(phase.error_kinds), "first_due": phase.first_due, "last_end": phase.last_end,
        "cpu_seconds": time.process_time() - cpu0, "wall_seconds": time.perf_counter() - wall0,
        "answered_keys": sorted(answered_keys),
    }


def _generator_main(conn: Connection, bodies: list[bytes], keys: list[str]) -> None:
    # The parent handles Ctrl-C and stops this process; a KeyboardInterrupt here would only add noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    plan = _Plan(bodies, [f"authorization: Bearer {key}\r\n".encode() for key in keys])
    while True:
        spec = conn.recv()
        if spec is None:
            return
        conn.send(asyncio.run(run_phase(plan, spec)))


class LoadGenerator:
    """A child process that runs one phase at a time on request."""

    def __init__(self, bodies: list[bytes], keys: list[str]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_generator_main, args=(child, bodies, keys), daemon=True)
        self.process.start()

    def run(self, base_url: str, **spec: Any) -> dict[str, Any]:
        url = httpx.URL(base_url)
        self._conn.send({"host": url.host, "port": url.port, **spec})
        while not self._conn.poll(1.0):
            if not self.process.is_alive():
                raise RuntimeError(f"the load generator exited with status {self.process.exitcode}")
        return self._conn.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send(None)
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)


# ---------------------------------------------------------------- processes under test


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_http(proc: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # exited: most likely the port was taken meanwhile
            return False
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return True
        time.sleep(0.1)
    return False


def start_server(name: str, argv: Callable[[int], list[str]], log_dir: Path,
                 procs: list[subprocess.Popen[bytes]]) -> tuple[subprocess.Popen[bytes], str]:
    """Start `argv(port)` on a free port and wait for its /healthz; the process is added to `procs`."""
    log = log_dir / f"{name}.log"
    for _ in range(START_ATTEMPTS):
        port = free_port()
        with log.open("ab") as out:
            # Own session: Ctrl-C reaches only this script, whose `finally` stops the servers in order.
            proc = subprocess.Popen(argv(port), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        if _wait_http(proc, base + "/healthz"):
            return proc, base
        stop_process(proc)
    raise RuntimeError(f"{name} did not start; see {log}")


def start_redis(workdir: Path, procs: list[subprocess.Popen[bytes]]) -> str:
    import redis

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise RuntimeError("--redis needs redis-server on PATH")
    workdir.mkdir(parents=True, exist_ok=True)
    for _ in range(START_ATTEMPTS):
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        procs.append(proc)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    client.close()
                    return url
            time.sleep(0.05)
        client.close()
        stop_process(proc)
    raise RuntimeError("redis-server did not start")


def process_tree(pid: int) -> list[int]:
    """A process and its live descendants (a gateway's worker processes)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:  # exited meanwhile
        return []
    return [pid, *(p for child in children for p in process_tree(int(child)))]


def rss_bytes(pid: int) -> int:
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{member}/status").read_text()
            total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
    if not total:
        raise RuntimeError(f"no VmRSS for process {pid}")
    return total


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            # utime and stime are fields 14 and 15; the command name before them may contain spaces.
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@contextlib.contextmanager
def cpu_meter(pid: int, out: dict[str, Any], requests: int) -> Iterator[None]:
    start = cpu_seconds(pid)
    yield
    out["server_cpu_ms_per_request"] = 1000.0 * (cpu_seconds(pid) - start) / max(requests, 1)


# ---------------------------------------------------------------- the run


def load_prompts(work: Path, n: int, seed: int) -> list[dict[str, Any]]:
    from distillguard.sim import simulate

    sim = work / f"sim-small-{seed}"
    if not (sim / "exchanges.jsonl.gz").exists():
        simulate("small", seed, sim, scale=0.05, quiet=True)
    with gzip.open(sim / "exchanges.jsonl.gz", "rt", encoding="utf-8") as f:
        return sample_exchanges([json.loads(line) for line in f], n)


def prime(base: str, n: int) -> None:
    """A few requests with a key outside the pool, so lazy imports are done before RSS is read."""
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        for i in range(n):
            client.post(base + CHAT_PATH, headers={"authorization": "Bearer sk-bench-priming"},
                        json={"model": "lumen-2-flash", "messages": [{"role": "user", "content": f"hello {i}"}]})


def histogram_sum_count(base: str, metric: str = "distillguard_overhead_seconds") -> tuple[float, float] | None:
    """Sum and count of one of the gateway's histograms (with several workers: whichever answered)."""
    try:
        text = httpx.get(base + "/metrics", timeout=30).text
    except httpx.HTTPError:
        return None
    return metric_sum_count(text, metric)


def mean_ms(before: tuple[float, float] | None, after: tuple[float, float] | None) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return 1000.0 * (after[0] - before[0]) / (after[1] - before[1])


def settle(pid: int, timeout: float = 30.0) -> None:
    """Wait until a server has worked off what an earlier overloaded phase left queued, so that one
    phase does not pay for the last."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(SETTLE_WINDOW_S)
        if cpu_seconds(pid) - before < SETTLE_IDLE_SHARE * SETTLE_WINDOW_S:
            return


def measure(gen: LoadGenerator, pid: int, base: str, rate: float, warmup: float, seconds: float,
            args: argparse.Namespace, seed: int) -> tuple[dict[str, Any], list[int]]:
    settle(pid)
    out: dict[str, Any] = {}
    with cpu_meter(pid, out, round(rate * (warmup + seconds))):
        raw = gen.run(base_url=base, rate=rate, warmup=warmup, seconds=seconds, seed=seed,
                      connections=args.connections)
    return phase_figures(raw, rate, seconds) | out, raw["answered_keys"]


def run(args: argparse.Namespace, procs: list[subprocess.Popen[bytes]], gen_box: list[LoadGenerator]) -> dict[str, Any]:
    work: Path = args.out.parent
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    loadavg_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    bodies, streams = build_bodies(load_prompts(work, args.prompts, args.seed), args.stream_share, args.seed)
    keys = api_keys(args.keys, args.seed)
    gen_box.append(LoadGenerator(bodies, keys))
    gen = gen_box[0]

    distillguard = str(BIN / "distillguard")
    standin, standin_url = start_server("standin", lambda p: [
        distillguard, "standin", "--port", str(p), "--latency-ms", str(args.standin_latency_ms),
        "--log-level", "warning"], logs, procs)
    redis_url = start_redis(work / "redis", procs) if args.redis else None
    policy = ["--policy", str(args.policy)] if args.policy else []

    def start_bare(name: str, client: str) -> tuple[subprocess.Popen[bytes], str]:
        """The floor: a proxy with nothing in it."""
        return start_server(name, lambda p: [
            sys.executable, str(ROOT / "benchmarks" / "bare_proxy.py"), "--upstream", standin_url,
            "--port", str(p), "--client", client], logs, procs)

    def start_gateway(name: str) -> tuple[subprocess.Popen[bytes], str]:
        if args.target != "gateway":
            return start_bare(name, args.target.removeprefix("bare-"))
        return start_server(name, lambda p: [
            distillguard, "gateway", "--upstream", standin_url, "--port", str(p), "--log-level", "warning",
            # The generator stands for many clients behind one address, as an edge proxy would.
            "--max-connections-per-ip", "0",
            *policy, *(["--redis", redis_url] if redis_url else []), "--workers", str(args.workers)], logs, procs)

    gateway, gateway_url = start_gateway("gateway")
    rss_start = rss_bytes(gateway.pid)
    prime(gateway_url, PRIMING_REQUESTS)
    rss_before = rss_bytes(gateway.pid)
    redis_before = _redis_used_memory(redis_url) if redis_url else None

    print(f"direct: warm-up {args.warmup} s, then {args.seconds} s at {args.rate} req/s ...", file=sys.stderr)
    direct, _ = measure(gen, standin.pid, standin_url, args.rate, args.warmup, args.seconds, args, args.seed)
    floor = None
    if args.floor and args.target == "gateway":
        bare, bare_url = start_bare("bare-aiohttp", "aiohttp")
        prime(bare_url, PRIMING_REQUESTS)
        print("bare pass-through proxy: same load ...", file=sys.stderr)
        floor, _ = measure(gen, bare.pid, bare_url, args.rate, args.warmup, args.seconds, args, args.seed)
        stop_process(bare)
    print("gateway: same load ...", file=sys.stderr)
    overhead0 = histogram_sum_count(gateway_url)
    through, keys_used = measure(gen, gateway.pid, gateway_url, args.rate, args.warmup, args.seconds, args, args.seed)
    settle(gateway.pid)  # an overloaded gateway may still be working off requests whose clients left
    # Over warm-up and measured requests alike: the histogram cannot tell them apart.
    through["gateway_overhead_mean_ms"] = mean_ms(overhead0, histogram_sum_count(gateway_url))
    rss_after = rss_bytes(gateway.pid)
    tracked = len(keys_used)
    memory: dict[str, Any] = {
        "rss_start": rss_start, "rss_before": rss_before, "rss_after": rss_after, "tracked_accounts": tracked,
        "bytes_per_account": (rss_after - rss_before) / max(tracked, 1),
        "overloaded": through["errors"] > 0,
        "note": "RSS delta over accounts with an answered request: an upper bound, the delta also holds "
                "allocator growth, connection buffers and caches",
    }
    if redis_url:
        memory |= _redis_memory(redis_url, redis_before or 0)

    summary: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
                    "python": platform.python_version(), "loadavg_start": loadavg_start},
        "config": {"rate": args.rate, "seconds": args.seconds, "warmup": args.warmup, "keys": args.keys,
                   "bodies": len(bodies), "stream_share": sum(streams) / len(bodies), "connections": args.connections,
                   "state": "redis" if args.redis else "memory", "workers": args.workers, "target": args.target,
                   "standin_latency_ms": args.standin_latency_ms,
                   "policy": str(args.policy) if args.policy else "built-in",
                   "step_seconds": args.step_seconds, "p99_bound_ms": args.p99_bound_ms},
        "direct": direct, "gateway": through, "added": added_latency(direct, through), "memory": memory,
    }
    if floor is not None:
        summary["floor"] = floor
        summary["added_over_floor"] = added_latency(floor, through)
    if args.max_rate:
        # A fresh gateway: one overloaded by the main phase can take long to work off its backlog.
        stop_process(gateway)
        if redis_url:
            _redis_flush(redis_url)
        gateway, gateway_url = start_gateway("gateway-steps")
        prime(gateway_url, PRIMING_REQUESTS)
        summary["max_rate"] = max_rate(gen, gateway.pid, gateway_url, args)
    return summary


def max_rate(gen: LoadGenerator, pid: int, base: str, args: argparse.Namespace) -> dict[str, Any]:
    steps, held_rate = [], None
    for i, rate in enumerate(args.steps):
        print(f"max rate: {rate} req/s for {args.step_seconds} s ...", file=sys.stderr)
        batches = histogram_sum_count(base, BATCH_METRIC)
        figures, _ = measure(gen, pid, base, rate, 1.0, args.step_seconds, args, args.seed + 100 + i)
        after = histogram_sum_count(base, BATCH_METRIC)
        if batches and after and after[1] > batches[1]:
            figures["assess_batch_mean"] = (after[0] - batches[0]) / (after[1] - batches[1])
        figures["held"] = step_held(figures, args.p99_bound_ms)
        steps.append(figures)
        if not figures["held"]:
            break
        held_rate = rate
    return {"steps": steps, "max_sustained_rate": held_rate}


def _redis_flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def _redis_used_memory(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def _redis_memory(url: str, before: int) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        # Accounts of both state pools, from their indexes (docs/gateway.md "Bounded state").
        n_state = int(client.zcard("dg:acct:~index")) + int(client.zcard("dg:prob:~index"))
    finally:
        client.close()
    used = _redis_used_memory(url)
    return {"redis_used_memory_delta": used - before, "redis_state_keys": n_state,
            "redis_bytes_per_account": (used - before) / max(n_state, 1)}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second of the main phases")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds of the main phases")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before each main phase")
    parser.add_argument("--keys", type=int, default=2000, help="distinct API keys (accounts)")
    parser.add_argument("--prompts", type=int, default=500, help="distinct request bodies")
    parser.add_argument("--stream-share", type=float, default=0.2, help="share of streamed requests")
    parser.add_argument("--connections", type=int, default=256, help="generator's connection pool size")
    parser.add_argument("--standin-latency-ms", type=float, default=0.0, help="stand-in's delay per answer")
    parser.add_argument("--target", choices=("gateway", "bare-aiohttp", "bare-httpx"), default="gateway",
                        help="what stands in front of the stand-in: the gateway, or a bare pass-through proxy "
                             "(benchmarks/bare_proxy.py) on either HTTP client, the floor under the gateway's cost")
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure a bare pass-through proxy (`bare_proxy.py`, aiohttp) under the same load")
    parser.add_argument("--redis", action="store_true", help="gateway state in a real redis-server")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes (above 1 needs --redis)")
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY if DEFAULT_POLICY.exists() else None)
    parser.add_argument("--max-rate", action=argparse.BooleanOptionalAction, default=True,
                        help="step the rate up through the gateway until it no longer holds")
    parser.add_argument("--steps", type=lambda s: [float(x) for x in s.split(",")], default=list(DEFAULT_STEPS),
                        help="comma-separated rates of the max-rate steps")
    parser.add_argument("--step-seconds", type=float, default=5.0)
    parser.add_argument("--p99-bound-ms", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench-out/gateway/summary.json"))
    args = parser.parse_args(argv)
    if not (0 < args.rate <= 100_000 and 0 < args.seconds <= 3600 and 0 <= args.warmup <= 600):
        parser.error("--rate must be in (0, 100000], --seconds in (0, 3600], --warmup in [0, 600]")
    if not (1 <= args.keys <= 1_000_000 and 1 <= args.prompts <= 100_000 and 1 <= args.connections <= 10_000):
        parser.error("--keys, --prompts and --connections must be positive (and not absurd)")
    if not 0 <= args.stream_share <= 1 or not args.steps or min(args.steps) <= 0:
        parser.error("--stream-share must be in [0, 1] and --steps positive rates")
    if args.workers < 1 or (args.workers > 1 and not args.redis):
        parser.error("--workers must be at least 1, and above 1 needs --redis")
    if args.target != "gateway" and (args.redis or args.workers > 1):
        parser.error("--redis and --workers are options of the gateway, not of a bare proxy")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # SIGTERM ends the run through the same `finally` as Ctrl-C, so no server is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    procs: list[subprocess.Popen[bytes]] = []
    gen_box: list[LoadGenerator] = []
    try:
        summary = run(args, procs, gen_box)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
    finally:
        for gen in gen_box:
            gen.stop()
        for proc in reversed(procs):
            stop_process(proc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(markdown(summary))
    print(f"\nwritten: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
