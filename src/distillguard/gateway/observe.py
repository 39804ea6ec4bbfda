"""What the gateway records: the audit log of decisions and its Prometheus metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

logger = logging.getLogger("distillguard.gateway")


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
