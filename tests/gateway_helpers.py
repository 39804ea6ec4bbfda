"""Real servers for the gateway tests: uvicorn in a background thread on an ephemeral port, and a
scripted detector that returns fixed decisions per account."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn

from distillguard.gateway.server import uvicorn_config
from distillguard.policy.decision import Decision

LOCALHOST = "127.0.0.1"


class ServerThread:
    """An ASGI app served by uvicorn on 127.0.0.1:<free port> until the context exits."""

    def __init__(self, app: Any, **options: Any) -> None:
        config = uvicorn_config(
            app, LOCALHOST, 0, lifespan="on",
            log_config=None,  # leave logging alone, so records reach pytest's caplog
            log_level=options.pop("log_level", "info"), timeout_graceful_shutdown=2, **options,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout=5)


class ScriptedDetector:
    """Returns the decision scripted for an account (allow otherwise) and keeps what it was told.

    Called from the server thread; list appends are atomic, so tests can read the lists directly.
    """

    def __init__(self, decisions: dict[str, Decision] | None = None) -> None:
        self.decisions = dict(decisions or {})
        self.assessed: list[dict[str, Any]] = []
        self.completed: list[dict[str, Any]] = []

    def assess(self, record: dict[str, Any], now: float) -> Decision:
        self.assessed.append(dict(record))
        return self.decisions.get(record["account_id"], Decision(action="allow", rule="default"))

    def complete(self, record: dict[str, Any]) -> None:
        self.completed.append(dict(record))

    def assess_many(self, records: Sequence[dict[str, Any]], now: float) -> list[Decision]:
        return [self.assess(record, now) for record in records]

    def complete_many(self, records: Sequence[dict[str, Any]]) -> None:
        for record in records:
            self.complete(record)

    def completion(self, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The completed record of a request, waiting for it (streams complete after the client is done)."""
        return wait_for(lambda: next((r for r in self.completed if r["request_id"] == request_id), None), timeout)

    def last_completion(self, account_id: str, timeout: float = 5.0, after: int = 0) -> dict[str, Any]:
        return wait_for(
            lambda: next((r for r in reversed(self.completed[after:]) if r["account_id"] == account_id), None), timeout
        )


def wait_for(probe: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the server")
        time.sleep(0.01)
