"""Arrival-time models: human diurnal cycles by timezone, office hours, bursts and schedulers.

Times are float seconds since the Unix epoch (UTC). Every sampler returns times inside the world's
window [t0, t0 + days * 86400).
"""

from __future__ import annotations

import numpy as np

DAY = 86400.0


def _pmf(values: list[float]) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a / a.sum()


# Relative activity by local hour 0..23.
DIURNAL: dict[str, np.ndarray] = {
    # consumers: quiet at night, a lunchtime bump, peak in the evening
    "evening": _pmf(
        [3, 2, 1.2, 0.8, 0.6, 0.6, 1, 2, 3.5, 4.5, 5, 5.5, 6, 5.5, 5.2, 5.2, 5.5, 6, 6.5, 7.5, 8.5, 8.5, 7, 5]
    ),
    # office work: 9-18 with a lunch dip
    "work": _pmf(
        [
            0.3,
            0.2,
            0.15,
            0.1,
            0.1,
            0.2,
            0.5,
            1.5,
            4,
            7,
            8,
            8,
            5.5,
            7,
            8,
            8,
            7.5,
            6,
            3.5,
            2,
            1.5,
            1.2,
            0.8,
            0.5,
        ]
    ),
    # developers: office hours plus a long evening tail
    "developer": _pmf(
        [1.5, 1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 3, 5.5, 7, 7, 5, 6.5, 7, 7, 6.5, 5.5, 4, 3.5, 3.5, 3.5, 3, 2.2]
    ),
    # students: class hours and late homework
    "student": _pmf(
        [2.5, 1.5, 0.8, 0.3, 0.2, 0.2, 0.4, 1, 3, 5, 5.5, 5, 4, 5, 5.5, 5, 4, 3.5, 4, 5.5, 6.5, 6.5, 5.5, 4]
    ),
    # global consumer products: flattened by customers across timezones
    "global": _pmf(
        [4, 3.5, 3.2, 3, 3, 3.2, 3.6, 4.2, 5, 5.6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 5.8, 5.5, 5, 4.5]
    ),
    "flat": _pmf([1.0] * 24),
}


def day_weights(start_weekday: int, days: int, weekend_factor: float) -> np.ndarray:
    """Weights per day of the window; start_weekday is 0 for Monday."""
    w = np.ones(days)
    for d in range(days):
        if (start_weekday + d) % 7 >= 5:
            w[d] = weekend_factor
    return w


def diurnal_times(
    rng: np.random.Generator,
    n: int,
    t0: float,
    days: int,
    tz_hours: float,
    pattern: str,
    dayw: np.ndarray,
    phase_hours: float = 0.0,
) -> np.ndarray:
    """n independent arrival times following a local-time daily cycle and per-day weights."""
    if n <= 0:
        return np.empty(0)
    p = dayw / dayw.sum()
    d = rng.choice(days, size=n, p=p)
    h = rng.choice(24, size=n, p=DIURNAL[pattern]) + rng.random(n)
    local = d * DAY + (h + phase_hours) * 3600.0
    return t0 + np.mod(local - tz_hours * 3600.0, days * DAY)


def burst_times(rng: np.random.Generator, start: float, n: int, mean_gap: float) -> np.ndarray:
    """A batch job: n requests fired back to back with exponential spacing (a client-side worker pool)."""
    return start + np.cumsum(rng.exponential(mean_gap, size=n))


def regular_times(
    rng: np.random.Generator, start: float, end: float, period: float, jitter: float
) -> np.ndarray:
    """A scheduler ticking every period seconds, each tick jittered by a fraction of the period."""
    if end <= start or period <= 0:
        return np.empty(0)
    k = np.arange(start, end, period)
    return k + rng.uniform(-jitter, jitter, size=k.size) * period


def turn_offsets(rng: np.random.Generator, nturns: np.ndarray, median_gap: float, sigma: float) -> np.ndarray:
    """Offsets from each session start of every turn, flattened in session order.

    The first turn of a session is at offset 0; later turns follow after log-normal think/work gaps.
    """
    total = int(nturns.sum())
    gaps = rng.lognormal(np.log(median_gap), sigma, size=total)
    first = np.zeros(total, dtype=bool)
    starts = np.concatenate(([0], np.cumsum(nturns)[:-1])).astype(np.int64)
    first[starts] = True
    gaps[first] = 0.0
    csum = np.cumsum(gaps)
    base = np.repeat(csum[starts], nturns)
    return csum - base
