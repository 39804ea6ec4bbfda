"""A real redis-server for tests: one per test session on a free 127.0.0.1 port, no persistence."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

_START_ATTEMPTS = 3
_READY_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    deadline = time.monotonic() + _READY_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:  # exited: most likely the port was taken meanwhile
                return False
            try:
                if client.ping():
                    return True
            except redis.ConnectionError:
                time.sleep(0.02)
        return False
    finally:
        client.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _binary() -> str:
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if binary is None:
        pytest.skip(
            "redis-server not found on PATH: install Redis (e.g. apt-get install redis-server) to run these tests"
        )
    return binary


@contextlib.contextmanager
def own_redis_server(workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A redis-server of the caller's own (process and URL), for tests that pause or stop it
    without disturbing the session's."""
    with _redis_server(_binary(), workdir) as started:
        yield started


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a redis-server started for this session (skips the test when redis-server is missing)."""
    with _redis_server(_binary(), tmp_path_factory.mktemp("redis")) as (_, url):
        yield url


@contextlib.contextmanager
def _redis_server(binary: str, workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    for _ in range(_START_ATTEMPTS):
        port = _free_port()
        url = f"redis://127.0.0.1:{port}/0"
        cmd = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _wait_ready(proc, url):
            try:
                yield proc, url
            finally:
                _stop(proc)
            return
        _stop(proc)
    pytest.fail(f"redis-server did not answer PING after {_START_ATTEMPTS} attempts")


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's server, on an empty database."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    try:
        yield client
    finally:
        client.close()
