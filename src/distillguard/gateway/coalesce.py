"""Detection once per turn of the event loop: requests that arrived together are assessed in one
call, and a detector failure affects only its own request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from distillguard.errors import InputError, StateUnavailableError
from distillguard.gateway.observe import Metrics
from distillguard.policy.decision import (
    DETECTOR_ERROR,
    STATE_UNAVAILABLE,
    Decision,
    failure_decision,
)
from distillguard.policy.policy import DEFAULT_ON_DETECTOR_ERROR, DEFAULT_ON_STATE_UNAVAILABLE, FAILURE_MODES

logger = logging.getLogger("distillguard.gateway")

# Requests assessed in one call at most; more wait for the next turn of the loop.
MAX_BATCH = 256


class Detector(Protocol):
    """What the gateway needs from detection and policy. Both calls take the requests that arrived
    together, in arrival order (see `Coalescer`). A detector whose `asynchronous` attribute is true
    also has `assess_many_async` and `complete_many_async`, which the gateway awaits instead; one
    with a `policy` attribute gives the failure modes (`Policy.on_detector_error`, ...)."""

    def assess_many(self, records: Sequence[dict[str, Any]], now: float) -> list[Decision]: ...

    def complete_many(self, records: Sequence[dict[str, Any]]) -> None: ...



class Coalescer:
    """Hands the detector every request that arrived in one turn of the event loop at once.

    Detection costs far less per request on many requests than on one (one pass of the signal code
    and one model call for all of them), and a busy gateway has many requests arriving together: the
    first one schedules a flush for the end of the current turn, the others join it. An idle gateway
    sees batches of one and no added wait. Each request is still decided on the account state that
    includes it and every request before it. Completions (usage read from answers) are folded in
    the same way, without anyone waiting for them.

    A failure affects only the requests it is about. When a batch fails, each of its requests is
    assessed again alone, so one request the detector cannot handle gets the failure decision and
    the others their own decisions (a poisoned request must not switch detection off for the rest of
    its batch). A state store that does not answer (`StateUnavailableError`) fails every request
    alike, so the whole batch gets the failure decision at once instead of waiting out the store
    once per request. Failure decisions follow the policy's `on_detector_error` and
    `on_state_unavailable` (refuse or allow).

    A detector with asynchronous methods (`assess_many_async`, `complete_many_async`, used when its
    state is in Redis) is awaited by one runner task, one batch after the other: requests arriving
    meanwhile join the next batch, and the event loop stays free while the store answers.
    """

    def __init__(self, detector: Detector, metrics: Metrics, max_batch: int = MAX_BATCH, *,
                 on_detector_error: str = DEFAULT_ON_DETECTOR_ERROR,
                 on_state_unavailable: str = DEFAULT_ON_STATE_UNAVAILABLE) -> None:
        for mode in (on_detector_error, on_state_unavailable):
            if mode not in FAILURE_MODES:
                raise InputError(f"failure mode must be one of {', '.join(FAILURE_MODES)}, got {mode!r}")
        self.detector = detector
        self.metrics = metrics
        self.max_batch = max_batch
        self.failed = {DETECTOR_ERROR: failure_decision(DETECTOR_ERROR, on_detector_error),
                       STATE_UNAVAILABLE: failure_decision(STATE_UNAVAILABLE, on_state_unavailable)}
        self._async = bool(getattr(detector, "asynchronous", False))
        self._assess: list[tuple[dict[str, Any], asyncio.Future[Decision]]] = []
        self._complete: list[dict[str, Any]] = []
        self._scheduled = False
        self._runner: asyncio.Task[None] | None = None

    async def assess(self, record: dict[str, Any]) -> Decision:
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._assess.append((record, future))
        self._schedule()
        return await future

    def complete(self, record: dict[str, Any]) -> None:
        self._complete.append(record)
        self._schedule()

    def _schedule(self) -> None:
        if self._async:
            if self._runner is None or self._runner.done():
                # Starts at the next turn of the loop: everything arriving in this one joins it.
                self._runner = asyncio.get_running_loop().create_task(self._run())
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _take(self) -> tuple[list[tuple[dict[str, Any], asyncio.Future[Decision]]], list[dict[str, Any]]]:
        batch, self._assess = self._assess[: self.max_batch], self._assess[self.max_batch:]
        done, self._complete = self._complete[: self.max_batch], self._complete[self.max_batch:]
        if batch:
            self.metrics.batch_size.observe(len(batch))
        return batch, done

    @staticmethod
    def _resolve(batch: list[tuple[dict[str, Any], asyncio.Future[Decision]]], decisions: list[Decision]) -> None:
        for (_, future), decision in zip(batch, decisions, strict=True):
            if not future.done():  # its request may have been cancelled meanwhile
                future.set_result(decision)

    def _flush(self) -> None:
        self._scheduled = False
        batch, done = self._take()
        if self._assess or self._complete:
            self._schedule()
        if done:
            self._complete_sync(done)
        if batch:
            self._resolve(batch, self._decide_sync([record for record, _ in batch], time.time()))

    def _complete_sync(self, records: list[dict[str, Any]]) -> None:
        try:
            self.detector.complete_many(records)
        except StateUnavailableError as exc:
            logger.warning("state store unavailable; usage of %d requests not recorded: %s", len(records), exc)
        except Exception:
            if len(records) == 1:
                logger.exception("detector.complete_many failed on request %s", records[0].get("request_id"))
                return
            for record in records:
                self._complete_sync([record])

    def _failed(self, records: list[dict[str, Any]], exc: Exception) -> list[Decision] | None:
        """Decisions for an assessment that raised `exc` (called from its except block), or None
        when the batch should be assessed again one request at a time."""
        if isinstance(exc, StateUnavailableError):
            logger.warning("state store unavailable for %d requests: %s", len(records), exc)
            return [self.failed[STATE_UNAVAILABLE]] * len(records)
        if len(records) == 1:
            logger.exception("detector failed on request %s", records[0].get("request_id"))
            return [self.failed[DETECTOR_ERROR]]
        logger.warning("detector failed on a batch of %d requests; assessing each alone", len(records))
        return None

    @staticmethod
    def _checked(decisions: Sequence[Decision], records: list[dict[str, Any]]) -> list[Decision]:
        if len(decisions) != len(records):
            raise RuntimeError(f"{len(decisions)} decisions for {len(records)} requests")
        return list(decisions)

    def _decide_sync(self, records: list[dict[str, Any]], now: float) -> list[Decision]:
        try:
            return self._checked(self.detector.assess_many(records, now), records)
        except Exception as exc:
            failed = self._failed(records, exc)
            if failed is not None:
                return failed
        return [decision for record in records for decision in self._decide_sync([record], now)]

    async def _run(self) -> None:
        detector: Any = self.detector
        while self._assess or self._complete:
            batch, done = self._take()
            try:
                if done:
                    await self._complete_async(detector, done)
                if batch:
                    records = [record for record, _ in batch]
                    self._resolve(batch, await self._decide_async(detector, records, time.time()))
            except Exception:  # never leave a request waiting on a runner that died
                logger.exception("assessment runner failed on %d requests", len(batch))
                self._resolve(batch, [self.failed[DETECTOR_ERROR]] * len(batch))

    async def _complete_async(self, detector: Any, records: list[dict[str, Any]]) -> None:
        try:
            await detector.complete_many_async(records)
        except StateUnavailableError as exc:
            logger.warning("state store unavailable; usage of %d requests not recorded: %s", len(records), exc)
        except Exception:
            if len(records) == 1:
                logger.exception("detector.complete_many failed on request %s", records[0].get("request_id"))
                return
            for record in records:
                await self._complete_async(detector, [record])

    async def _decide_async(self, detector: Any, records: list[dict[str, Any]], now: float) -> list[Decision]:
        try:
            return self._checked(await detector.assess_many_async(records, now), records)
        except Exception as exc:
            failed = self._failed(records, exc)
            if failed is not None:
                return failed
        return [d for record in records for d in await self._decide_async(detector, [record], now)]

    async def aclose(self) -> None:
        if self._runner is not None and not self._runner.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._runner), 2.0)
