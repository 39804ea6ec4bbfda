"""Progress bars for long work, written to stderr so stdout stays clean for results."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_console = Console(stderr=True)


class Tracker:
    """Handle for one running task: `advance(n)` and `total` updates."""

    def __init__(self, progress: Progress, task_id: int) -> None:
        self._progress = progress
        self._task = task_id

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self._task, n)

    def set_total(self, total: float | None) -> None:
        self._progress.update(self._task, total=total)

    def set_description(self, text: str) -> None:
        self._progress.update(self._task, description=text)


@contextmanager
def track(description: str, total: float | None = None, *, quiet: bool = False) -> Iterator[Tracker]:
    """A progress bar that disappears when the terminal is not interactive or `quiet` is set."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_console,
        transient=True,
        disable=quiet or not _console.is_terminal,
    )
    with progress:
        yield Tracker(progress, progress.add_task(description, total=total))


class StageClock:
    """Adds the seconds since the previous lap to `sink[stage]` (a stage met twice adds up)."""

    def __init__(self, sink: dict[str, float] | None) -> None:
        self._sink = sink
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        if self._sink is not None:
            self._sink[stage] = self._sink.get(stage, 0.0) + now - self._last
        self._last = now
