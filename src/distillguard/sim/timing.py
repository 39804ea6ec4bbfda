"""Time in the simulated window: diurnal and weekly rhythms, sessions, model releases.

Arrival times are drawn as a non-homogeneous Poisson process conditioned on its count: an hour of
the window is chosen with probability proportional to the actor's intensity in its local time,
then a uniform instant inside it. All times are integer milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

WINDOW_START = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)  # a Monday
WINDOW_DAYS = 14
WINDOW_END = WINDOW_START + WINDOW_DAYS * DAY
N_HOURS = WINDOW_DAYS * 24

# Models served. The third is released mid-window; the first two exist before it.
MODELS: tuple[str, ...] = ("lumen-2-pro", "lumen-2-flash", "lumen-3-pro")
PRO, FLASH, NEW = 0, 1, 2
RELEASES: tuple[tuple[str, int], ...] = (
    ("lumen-2-pro", int(datetime(2025, 10, 14, 16, tzinfo=UTC).timestamp() * 1000)),
    ("lumen-2-flash", int(datetime(2025, 11, 20, 16, tzinfo=UTC).timestamp() * 1000)),
    ("lumen-3-pro", WINDOW_START + 7 * DAY + 17 * HOUR),
)
NEW_RELEASE = RELEASES[2][1]

# Relative intensity by local hour (0..23) and the weight of Saturday/Sunday against a weekday.
_PROFILES: dict[str, tuple[tuple[float, ...], float]] = {
    # Personal use: quiet at night, rising through the day, peak in the evening.
    "evening": ((0.5, 0.3, 0.15, 0.1, 0.08, 0.1, 0.25, 0.5, 0.8, 1.0, 1.1, 1.2, 1.2, 1.2, 1.2, 1.2,
                 1.3, 1.4, 1.5, 1.7, 1.9, 1.9, 1.6, 1.0), 1.1),
    # Office hours with a lunch dip and a little evening work.
    "work": ((0.05, 0.03, 0.02, 0.02, 0.02, 0.03, 0.1, 0.4, 1.2, 1.8, 2.0, 1.9, 1.3, 1.7, 2.0, 1.9,
              1.7, 1.2, 0.6, 0.4, 0.35, 0.3, 0.2, 0.1), 0.15),
    # A backend serving customers around the clock with a business-hours bump.
    "service": ((0.6, 0.55, 0.5, 0.5, 0.5, 0.55, 0.65, 0.8, 1.0, 1.15, 1.25, 1.3, 1.3, 1.3, 1.3, 1.25,
                 1.2, 1.1, 1.0, 0.95, 0.9, 0.85, 0.75, 0.65), 0.75),
    # Students: late mornings to late nights.
    "student": ((0.7, 0.4, 0.2, 0.1, 0.05, 0.05, 0.1, 0.3, 0.6, 0.9, 1.1, 1.2, 1.2, 1.3, 1.4, 1.4,
                 1.3, 1.2, 1.2, 1.4, 1.6, 1.7, 1.5, 1.1), 0.9),
    # An automated job queue that runs all day, lighter while its operators sleep.
    "operator": ((0.35, 0.3, 0.3, 0.3, 0.3, 0.35, 0.5, 0.8, 1.1, 1.3, 1.3, 1.3, 1.2, 1.3, 1.3, 1.3,
                  1.3, 1.2, 1.1, 1.0, 0.9, 0.7, 0.5, 0.4), 0.85),
    "flat": ((1.0,) * 24, 1.0),
}


@dataclass(frozen=True, slots=True)
class Clock:
    """The simulated window: it always starts on Monday 2026-03-02 00:00 UTC (the weekly profiles
    count weekdays from it); its length and the new model's release vary between worlds."""

    days: int = WINDOW_DAYS
    release: int = NEW_RELEASE

    @property
    def start(self) -> int:
        return WINDOW_START

    @property
    def end(self) -> int:
        return WINDOW_START + self.days * DAY

    @property
    def n_hours(self) -> int:
        return self.days * 24

    @property
    def releases(self) -> tuple[tuple[str, int], ...]:
        return (*RELEASES[:2], (RELEASES[2][0], self.release))

    def hour_weights(self, profile: str, tz_minutes: int) -> np.ndarray:
        return hour_weights(profile, tz_minutes, self.n_hours)

    def sample_times(
        self,
        rng: np.random.Generator,
        n: int,
        profile: str,
        tz_minutes: int,
        start: int | None = None,
        end: int | None = None,
    ) -> np.ndarray:
        """`n` sorted arrival times following `profile`, inside [start, end) (clipped to the window)."""
        start = WINDOW_START if start is None else start
        end = self.end if end is None else end
        n_hours = self.n_hours
        first = min(max((start - WINDOW_START) // HOUR, 0), n_hours - 1)
        last = min(max(-(-(end - WINDOW_START) // HOUR), first + 1), n_hours)
        hours = _hours(rng, n, profile, tz_minutes, n_hours, first, last)
        ts = WINDOW_START + hours.astype(np.int64) * HOUR + rng.integers(0, HOUR, size=n)
        return np.sort(np.clip(ts, max(start, WINDOW_START), min(end, self.end) - 1))

    def sample_times_grouped(
        self,
        rng: np.random.Generator,
        counts: np.ndarray,
        profile: str | list[str],
        tz_minutes: np.ndarray,
        start: np.ndarray | None = None,
    ) -> np.ndarray:
        """`counts[i]` arrival times for each of many actors, concatenated in actor order and sorted
        within each actor. Actor `i` has offset `tz_minutes[i]`, its own profile when `profile` is a
        list, and no arrival before `start[i]` when given. One draw per (profile, offset) group."""
        n_hours = self.n_hours
        counts = np.asarray(counts, dtype=np.int64)
        owner = np.repeat(np.arange(len(counts)), counts)
        profiles = [profile] * len(counts) if isinstance(profile, str) else profile
        names = sorted(set(profiles))
        group = np.array([names.index(p) for p in profiles], dtype=np.int64) * (1 << 20) + np.asarray(tz_minutes) + (1 << 19)
        first = np.zeros(len(counts), dtype=np.int64) if start is None else np.clip(
            (np.asarray(start) - WINDOW_START) // HOUR, 0, n_hours - 1
        )
        g_e, first_e = group[owner], first[owner]
        ts = np.empty(len(owner), dtype=np.int64)
        for g in np.unique(g_e):
            m = g_e == g
            cdf = _hour_cdf(names[int(g >> 20)], int((g & ((1 << 20) - 1)) - (1 << 19)), n_hours)
            lo = cdf[first_e[m]]
            hours = np.searchsorted(cdf, lo + rng.random(int(m.sum())) * (1.0 - lo), side="right") - 1
            ts[m] = WINDOW_START + np.clip(hours, first_e[m], n_hours - 1) * HOUR + rng.integers(0, HOUR, size=int(m.sum()))
        if start is not None:
            ts = np.maximum(ts, np.asarray(start, dtype=np.int64)[owner])
        return ts[np.lexsort((ts, owner))]


DEFAULT_CLOCK = Clock()


def hour_weights(profile: str, tz_minutes: int, n_hours: int = N_HOURS) -> np.ndarray:
    """Probability of each hour of the window for an actor with `profile` at UTC offset `tz_minutes`."""
    hourly, weekend = _PROFILES[profile]
    local_min = np.arange(n_hours) * 60 + tz_minutes + 30  # middle of each UTC hour, local time
    local_hour = (local_min // 60) % 24
    local_day = (local_min // (24 * 60)) % 7  # the window starts on a Monday: 5, 6 are the weekend
    w = np.asarray(hourly)[local_hour] * np.where(local_day >= 5, weekend, 1.0)
    return w / w.sum()


@lru_cache(maxsize=512)
def _hour_cdf(profile: str, tz_minutes: int, n_hours: int = N_HOURS) -> np.ndarray:
    cdf = np.r_[0.0, np.cumsum(hour_weights(profile, tz_minutes, n_hours))]
    cdf.setflags(write=False)
    return cdf


def _hours(rng: np.random.Generator, n: int, profile: str, tz_minutes: int, n_hours: int, first: int, last: int) -> np.ndarray:
    """`n` hour indices in [first, last) drawn by inverse transform of the profile's distribution."""
    cdf = _hour_cdf(profile, tz_minutes, n_hours)
    u = cdf[first] + rng.random(n) * (cdf[last] - cdf[first])
    return np.clip(np.searchsorted(cdf, u, side="right") - 1, first, last - 1)


def sample_times(
    rng: np.random.Generator,
    n: int,
    profile: str,
    tz_minutes: int,
    start: int = WINDOW_START,
    end: int = WINDOW_END,
) -> np.ndarray:
    """`Clock.sample_times` in the default 14-day window."""
    return DEFAULT_CLOCK.sample_times(rng, n, profile, tz_minutes, start, end)


def sample_times_grouped(
    rng: np.random.Generator,
    counts: np.ndarray,
    profile: str | list[str],
    tz_minutes: np.ndarray,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """`Clock.sample_times_grouped` in the default 14-day window."""
    return DEFAULT_CLOCK.sample_times_grouped(rng, counts, profile, tz_minutes, start)


def sessions(
    rng: np.random.Generator,
    starts: np.ndarray,
    turns: np.ndarray,
    gap_median_ms: float,
    gap_sigma: float = 0.8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand sessions into requests: (ts, session index, turn index).

    Session `i` starts at `starts[i]` and has `turns[i]` requests separated by log-normal gaps (the
    time to read an answer, or to run a tool, and send the next request).
    """
    turns = np.asarray(turns, dtype=np.int64)
    total = int(turns.sum())
    sess = np.repeat(np.arange(len(turns)), turns)
    first = np.cumsum(turns) - turns
    turn = np.arange(total) - first[sess]
    gaps = rng.lognormal(np.log(gap_median_ms), gap_sigma, size=total).astype(np.int64)
    gaps[turn == 0] = 0
    cum = np.cumsum(gaps)
    ts = np.asarray(starts, dtype=np.int64)[sess] + cum - cum[first][sess]
    return ts, sess, turn


def iso_ms(ts: np.ndarray) -> list[str]:
    """RFC 3339 UTC strings with milliseconds, e.g. 2026-03-02T14:05:09.123Z."""
    return [s + "Z" for s in np.datetime_as_string(np.asarray(ts, dtype="datetime64[ms]"), unit="ms").tolist()]
