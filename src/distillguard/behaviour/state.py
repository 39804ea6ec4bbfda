"""Account behaviour: the per-account accumulator that defines every account feature.

`AccountState` holds everything the account features are computed from, and `features()` is the
one definition of `FEATURES`, the only account-level quantities the scorer sees. The gateway and
the replay engine fold exchanges into it one at a time (`update`); the batch analysis builds the
same states from the whole `signals` table at once (`behaviour.features.account_states`). States
merge, so partitions of one account's traffic can be folded apart and combined.

Every feature is a ratio, a log count or an entropy, so the same definitions work for a week of
logs or a month, and for a provider with a thousand accounts or a million.

Where a feature needs a value's full frequency table (top-template shares, template diversity),
the state keeps a fixed-size sketch instead:

- top shares: Space-Saving with `HEAVY_SLOTS` counters, read as its guaranteed lower bound. Exact
  while an account has used at most `HEAVY_SLOTS` distinct values, which covers campaign accounts
  (few templates) and small accounts; for a diverse account the share it reports is at most the
  true share, and the true share is small anyway. The batch fold, which sees whole counts, keeps
  the exact top `HEAVY_SLOTS` values.
- template diversity: a k-minimum-values sketch of `DISTINCT_SLOTS` hashes, exact up to that many
  distinct frames, then an unbiased estimate (relative error about 1/sqrt(k-2)).
- active days: a set of day numbers, capped at `MAX_DAYS`; peak hour: the count of the current
  clock hour and the running maximum, exact when exchanges arrive in time order (they do, online).

State is serialised to a compact, versioned binary blob (never pickle) so it can live in an LRU
dict or in Redis; `MAX_STATE_BYTES` bounds it.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from distillguard.signals.capability import CAPABILITIES
from distillguard.signals.exchange import ELICITATION_COLUMNS

FEATURES: tuple[str, ...] = (
    "log_exchanges",
    "log_per_active_day",
    "log_peak_hour",
    "active_days_share",
    "hour_entropy",
    "gap_regularity",
    *[f"{c}_share" for c in ELICITATION_COLUMNS],
    "elicit_any_share",
    "top_frame_share",
    "top_tail_share",
    "frame_diversity",
    "top_skeleton_share",
    "top_system_share",
    "capability_entropy",
    "high_value_share",
    "single_turn_share",
    "tool_turn_share",
    "log_out_in_ratio",
    "log_mean_output",
    "max_tokens_stop_share",
    "new_model_pivot",
    "young_account",
    "entry_point_tier",
    "unverified",
)

# Capability areas that a distiller buys the most value with (DESIGN.md: reasoning, agentic, coding...).
HIGH_VALUE_CAPABILITIES = ("coding", "math", "agentic", "data_analysis", "vision", "reasoning")
# Tiers reported as abused entry points: cheap or lightly verified programmes.
ENTRY_POINT_TIERS = ("free", "education", "startup", "research", "trial")
# Stop reasons meaning "the answer hit the requested output budget", as the APIs spell it:
# Anthropic `max_tokens`, OpenAI chat `length` (`finish_reason`), OpenAI responses `max_output_tokens`.
BUDGET_STOP_REASONS = ("max_tokens", "length", "max_output_tokens")
# Shares of rare events are shrunk towards zero by this many pseudo-exchanges, so that one odd
# request of a three-request account is not read as "a third of its traffic is harvesting".
PRIOR_EXCHANGES = 5
# The observation window is read as at least this long, so that the first days of a log (or of a
# gateway's life) do not make every account look active on all of its days.
MIN_WINDOW_DAYS = 7
# An account's age is "young" below this many days at its first exchange in the window.
YOUNG_ACCOUNT_DAYS = 30

HEAVY_SLOTS = 8
DISTINCT_SLOTS = 16
MAX_DAYS = 400
MAX_RELEASES = 16

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
# Regularity of inter-arrival times is read within active stretches: machines pacing requests
# have a low coefficient of variation, people and bursty jobs a high one. A gap of an hour or more
# ends a stretch.
_GAP_LIMIT_MS = 3_600_000
_HIGH_VALUE = frozenset(CAPABILITIES.index(c) for c in HIGH_VALUE_CAPABILITIES if c in CAPABILITIES)
_ENTRY_TIERS = frozenset(ENTRY_POINT_TIERS)
_TEMPLATE_COLUMNS = ("frame_hash", "tail_hash", "skel_hash", "sys_hash")
# NULL is a value of its own in the SQL's GROUP BY; this stands for it in the sketches.
_NULL_KEY = -0x7FFF_FFFF_FFFF_FFF1
_VERSION = 1
_N_ELICIT = len(ELICITATION_COLUMNS)
_N_CAP = len(CAPABILITIES)


def _mix64(key: int) -> int:
    """A well-spread 64-bit value for a key (splitmix64 finaliser), for the distinct-count sketch."""
    z = (key + 0x9E3779B97F4A7C15) & 0xFFFF_FFFF_FFFF_FFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFF_FFFF_FFFF_FFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFF_FFFF_FFFF_FFFF
    return z ^ (z >> 31)


def mix64_array(keys: np.ndarray) -> np.ndarray:
    """`_mix64` of every element of an int64 array (uint64 arithmetic wraps as the masks do)."""
    z = keys.astype(np.int64).view(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@dataclass
class HeavyHitters:
    """Space-Saving top-k: `counts[key] - errors[key]` never exceeds the key's true count."""

    counts: dict[int, int] = field(default_factory=dict)
    errors: dict[int, int] = field(default_factory=dict)

    def add(self, key: int, k: int = 1) -> None:
        if key in self.counts:
            self.counts[key] += k
        elif len(self.counts) < HEAVY_SLOTS:
            self.counts[key] = k
            self.errors[key] = 0
        else:
            victim = min(self.counts, key=self.counts.__getitem__)
            floor = self.counts.pop(victim)
            self.errors.pop(victim)
            self.counts[key] = floor + k
            self.errors[key] = floor

    def top(self) -> int:
        return max((c - self.errors[key] for key, c in self.counts.items()), default=0)

    def merge(self, other: HeavyHitters) -> None:
        for key, c in other.counts.items():
            self.add(key, c)
            self.errors[key] += other.errors[key]


@dataclass
class DistinctCount:
    """k-minimum-values: the `DISTINCT_SLOTS` smallest hashes seen; exact below that many values."""

    mins: list[int] = field(default_factory=list)

    def add(self, key: int) -> None:
        h = _mix64(key)
        if h in self.mins:
            return
        if len(self.mins) < DISTINCT_SLOTS:
            self.mins.append(h)
            self.mins.sort()
        elif h < self.mins[-1]:
            self.mins[-1] = h
            self.mins.sort()

    def estimate(self) -> float:
        if len(self.mins) < DISTINCT_SLOTS:
            return float(len(self.mins))
        return (DISTINCT_SLOTS - 1) / ((self.mins[-1] + 1) / 2.0**64)

    def merge(self, other: DistinctCount) -> None:
        for h in other.mins:
            if h not in self.mins:
                self.mins.append(h)
        self.mins = sorted(self.mins)[:DISTINCT_SLOTS]


@dataclass(frozen=True)
class AccountInfo:
    """The accounts side table's row for one account (all optional)."""

    created_at_ms: int | None = None
    tier: str | None = None
    verified: bool | None = None


@dataclass(frozen=True)
class Release:
    model: str
    released_at_ms: int


def _key(value: Any) -> int:
    return _NULL_KEY if value is None else int(value)


@dataclass
class AccountState:
    """Everything the account features are computed from, for one account."""

    n: int = 0
    first_ts: int = 0  # epoch ms
    last_ts: int = 0
    elicit: list[int] = field(default_factory=lambda: [0] * _N_ELICIT)
    elicit_any: int = 0
    capability: list[int] = field(default_factory=lambda: [0] * _N_CAP)
    hour_of_day: list[int] = field(default_factory=lambda: [0] * 24)
    single_turn: int = 0
    tool_turn: int = 0
    out_tokens: int = 0
    in_tokens: int = 0
    stop_known: int = 0  # exchanges with a stop reason (the SQL's avg skips NULLs)
    stop_max_tokens: int = 0
    gap_n: int = 0  # Welford over gaps under an hour
    gap_mean: float = 0.0
    gap_m2: float = 0.0
    cur_hour: int = -1
    cur_hour_count: int = 0
    peak_hour: int = 0
    days: set[int] = field(default_factory=set)
    templates: list[HeavyHitters] = field(default_factory=lambda: [HeavyHitters() for _ in _TEMPLATE_COLUMNS])
    frames: DistinctCount = field(default_factory=DistinctCount)
    # Per release index: [active before it, exchanges in its first 24 h, of which to the new model].
    releases: dict[int, list[int]] = field(default_factory=dict)

    # -- updating -------------------------------------------------------------------------------
    def update(self, row: Mapping[str, Any], releases: Sequence[Release] = (), *, usage: bool = True) -> None:
        """Fold one exchange (a row of `SIGNALS_SCHEMA` as a dict, `ts` in epoch ms) into the state;
        `usage=False` leaves the response's counts for `add_usage` (the gateway knows them later)."""
        ts = int(row["ts"])
        if self.n == 0:
            self.first_ts = ts
        elif ts - self.last_ts < _GAP_LIMIT_MS:
            self._add_gap(max(0, ts - self.last_ts))
        self.n += 1
        self.last_ts = max(self.last_ts, ts)
        fired = [float(row[c] or 0.0) > 0.5 for c in ELICITATION_COLUMNS]
        for i, hit in enumerate(fired):
            self.elicit[i] += hit
        self.elicit_any += any(fired)
        cap = int(row["capability"])
        self.capability[cap] += 1
        self.hour_of_day[(ts // _HOUR_MS) % 24] += 1
        self.single_turn += (row["n_user"] or 0) <= 1 and (row["n_messages"] or 0) <= 1
        self.tool_turn += bool(row["has_tool_turn"]) or (row["n_tools"] or 0) > 0
        self._add_hour(ts // _HOUR_MS)
        if len(self.days) < MAX_DAYS:
            self.days.add(ts // _DAY_MS)
        for sketch, column in zip(self.templates, _TEMPLATE_COLUMNS, strict=True):
            sketch.add(_key(row[column]))
        self.frames.add(_key(row["frame_hash"]))
        self._add_release_traffic(ts, row["model"], releases)
        if usage:
            self.add_usage(row.get("input_tokens"), row.get("output_tokens"), row.get("stop_reason"))

    def add_usage(self, input_tokens: int | None, output_tokens: int | None, stop_reason: str | None) -> None:
        """Response-side counts, which the gateway only knows once the response has ended."""
        self.in_tokens += int(input_tokens or 0)
        self.out_tokens += int(output_tokens or 0)
        if stop_reason is not None:
            self.stop_known += 1
            self.stop_max_tokens += stop_reason in BUDGET_STOP_REASONS

    def _add_gap(self, gap: int) -> None:
        self.gap_n += 1
        delta = gap - self.gap_mean
        self.gap_mean += delta / self.gap_n
        self.gap_m2 += delta * (gap - self.gap_mean)

    def _add_hour(self, hour: int) -> None:
        if hour == self.cur_hour:
            self.cur_hour_count += 1
        elif hour > self.cur_hour:
            self.cur_hour, self.cur_hour_count = hour, 1
        # An exchange older than the current hour (late arrival) counts towards volume, not the peak.
        self.peak_hour = max(self.peak_hour, self.cur_hour_count)

    def _add_release_traffic(self, ts: int, model: str, releases: Sequence[Release]) -> None:
        for i, rel in enumerate(releases[:MAX_RELEASES]):
            slot = self.releases.get(i)
            if ts < rel.released_at_ms:
                if slot is None:
                    self.releases[i] = [1, 0, 0]
                else:
                    slot[0] = 1
            elif ts < rel.released_at_ms + _DAY_MS:
                slot = self.releases.setdefault(i, [0, 0, 0])
                slot[1] += 1
                slot[2] += model == rel.model

    def merge(self, other: AccountState) -> None:
        """Combine two partitions of one account's exchanges (exact except the sketches and, when
        the partitions share a clock hour, the peak hour)."""
        if other.n == 0:
            return
        if self.n == 0:
            self.first_ts, self.last_ts = other.first_ts, other.last_ts
        else:
            self.first_ts, self.last_ts = min(self.first_ts, other.first_ts), max(self.last_ts, other.last_ts)
        self.n += other.n
        self.elicit = [a + b for a, b in zip(self.elicit, other.elicit, strict=True)]
        self.elicit_any += other.elicit_any
        self.capability = [a + b for a, b in zip(self.capability, other.capability, strict=True)]
        self.hour_of_day = [a + b for a, b in zip(self.hour_of_day, other.hour_of_day, strict=True)]
        for name in ("single_turn", "tool_turn", "out_tokens", "in_tokens", "stop_known", "stop_max_tokens"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.gap_n:  # Chan et al. parallel variance
            n = self.gap_n + other.gap_n
            delta = other.gap_mean - self.gap_mean
            self.gap_m2 += other.gap_m2 + delta * delta * self.gap_n * other.gap_n / n
            self.gap_mean += delta * other.gap_n / n
            self.gap_n = n
        if other.cur_hour == self.cur_hour:
            self.cur_hour_count += other.cur_hour_count
        elif other.cur_hour > self.cur_hour:
            self.cur_hour, self.cur_hour_count = other.cur_hour, other.cur_hour_count
        self.peak_hour = max(self.peak_hour, other.peak_hour, self.cur_hour_count)
        self.days = set(sorted(self.days | other.days)[:MAX_DAYS])
        for mine, theirs in zip(self.templates, other.templates, strict=True):
            mine.merge(theirs)
        self.frames.merge(other.frames)
        for i, (before, n_in, n_new) in other.releases.items():
            slot = self.releases.setdefault(i, [0, 0, 0])
            slot[0] |= before
            slot[1] += n_in
            slot[2] += n_new

    # -- reading --------------------------------------------------------------------------------
    def features(self, window_days: int, info: AccountInfo | None = None) -> dict[str, float]:
        """The values of `FEATURES` for this account over a window of `window_days` days."""
        n = self.n
        if n == 0:
            raise ValueError("an account with no exchanges has no features")
        shrink = n + PRIOR_EXCHANGES
        active_days = max(1, len(self.days))
        out: dict[str, float] = {
            "log_exchanges": math.log1p(n),
            "log_per_active_day": math.log1p(n / active_days),
            "log_peak_hour": math.log1p(self.peak_hour),
            "active_days_share": active_days / max(1, window_days),
            "hour_entropy": _entropy(self.hour_of_day, 24),
            "gap_regularity": self._gap_regularity(),
        }
        for column, hits in zip(ELICITATION_COLUMNS, self.elicit, strict=True):
            out[f"{column}_share"] = hits / shrink
        out["elicit_any_share"] = self.elicit_any / shrink
        frame, tail, skel, system = (s.top() for s in self.templates)
        out["top_frame_share"] = frame / shrink
        out["top_tail_share"] = tail / shrink
        out["frame_diversity"] = min(float(n), self.frames.estimate()) / n
        out["top_skeleton_share"] = skel / shrink
        out["top_system_share"] = system / shrink
        out["capability_entropy"] = _entropy(self.capability, _N_CAP)
        out["high_value_share"] = sum(self.capability[i] for i in _HIGH_VALUE) / n
        out["single_turn_share"] = self.single_turn / n
        out["tool_turn_share"] = self.tool_turn / n
        out["log_out_in_ratio"] = math.log((1 + self.out_tokens) / (1 + self.in_tokens))
        out["log_mean_output"] = math.log1p(self.out_tokens / n)
        out["max_tokens_stop_share"] = self.stop_max_tokens / self.stop_known if self.stop_known else 0.0
        # Share of the traffic in a release's first 24 hours that went to the new model, counted only
        # for accounts active before the release (a switch, not a first visit).
        pivots = [n_new / n_in for before, n_in, n_new in self.releases.values() if before and n_in]
        out["new_model_pivot"] = max(pivots, default=0.0)
        info = info or AccountInfo()
        out["young_account"] = (
            0.0 if info.created_at_ms is None else float(_day_diff(info.created_at_ms, self.first_ts) < YOUNG_ACCOUNT_DAYS)
        )
        out["entry_point_tier"] = float((info.tier or "") in _ENTRY_TIERS)
        out["unverified"] = 0.0 if info.verified is None else float(not info.verified)
        return out

    def _gap_regularity(self) -> float:
        if self.gap_n >= 5 and self.gap_mean > 0:
            std = math.sqrt(max(0.0, self.gap_m2 / self.gap_n))
            return 1.0 / (1.0 + std / self.gap_mean)
        return 0.5

    # -- serialising ----------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        days = sorted(self.days)
        mins = self.frames.mins
        releases = [v for i, slot in sorted(self.releases.items()) for v in (i, *slot)]
        parts = [
            _FIXED.pack(
                _VERSION, self.n, self.first_ts, self.last_ts, self.elicit_any, self.single_turn,
                self.tool_turn, self.out_tokens, self.in_tokens, self.stop_known, self.stop_max_tokens,
                self.gap_n, self.gap_mean, self.gap_m2, self.cur_hour, self.cur_hour_count, self.peak_hour,
                len(days), len(mins), len(self.releases), *self.elicit, *self.capability, *self.hour_of_day,
            ),
            _array("i", len(days)).pack(*days),
            _array("Q", len(mins)).pack(*mins),
            _array("q", len(releases)).pack(*releases),
        ]
        for sketch in self.templates:
            counts, errors = sketch.counts, sketch.errors
            parts.append(_sketch(len(counts)).pack(
                len(counts), *counts, *[v for key, c in counts.items() for v in (c, errors[key])]
            ))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, blob: bytes) -> AccountState:
        """Parse a blob written by `to_bytes`; anything else raises ValueError (never trusted blindly)."""
        try:
            return cls._parse(memoryview(blob))
        except (struct.error, IndexError) as exc:
            raise ValueError(f"corrupt account state: {exc}") from exc

    @classmethod
    def _parse(cls, buf: memoryview) -> AccountState:
        fixed = _FIXED.unpack_from(buf, 0)
        if fixed[0] != _VERSION:
            raise ValueError(f"unsupported account state version {fixed[0]}")
        n_days, n_mins, n_rel = fixed[17], fixed[18], fixed[19]
        if n_days > MAX_DAYS or n_mins > DISTINCT_SLOTS or n_rel > MAX_RELEASES:
            raise ValueError("corrupt account state: section too long")
        days, pos = _take(buf, _FIXED.size, _array("i", n_days))
        mins, pos = _take(buf, pos, _array("Q", n_mins))
        rels, pos = _take(buf, pos, _array("q", 4 * n_rel))
        templates = []
        for _ in _TEMPLATE_COLUMNS:
            if pos >= len(buf):
                raise ValueError("corrupt account state: truncated")
            k = buf[pos]
            if k > HEAVY_SLOTS:
                raise ValueError("corrupt account state: too many heavy hitters")
            values, pos = _take(buf, pos, _sketch(k))
            keys, pairs = values[1 : k + 1], values[k + 1 :]
            templates.append(HeavyHitters(dict(zip(keys, pairs[0::2], strict=True)),
                                          dict(zip(keys, pairs[1::2], strict=True))))
        if pos != len(buf):
            raise ValueError("corrupt account state: trailing bytes")
        # Built field by field, not through __init__: its default factories would make every list,
        # sketch and set only to have them replaced (this runs twice per gateway request).
        state = cls.__new__(cls)
        state.__dict__.update(
            n=fixed[1], first_ts=fixed[2], last_ts=fixed[3], elicit_any=fixed[4], single_turn=fixed[5],
            tool_turn=fixed[6], out_tokens=fixed[7], in_tokens=fixed[8], stop_known=fixed[9],
            stop_max_tokens=fixed[10], gap_n=fixed[11], gap_mean=fixed[12], gap_m2=fixed[13],
            cur_hour=fixed[14], cur_hour_count=fixed[15], peak_hour=fixed[16],
            elicit=list(fixed[_COUNTERS_AT : _COUNTERS_AT + _N_ELICIT]),
            capability=list(fixed[_COUNTERS_AT + _N_ELICIT : _COUNTERS_AT + _N_ELICIT + _N_CAP]),
            hour_of_day=list(fixed[_COUNTERS_AT + _N_ELICIT + _N_CAP :]),
            days=set(days),
            templates=templates,
            frames=DistinctCount(list(mins)),
            releases={rels[j]: list(rels[j + 1 : j + 4]) for j in range(0, len(rels), 4)},
        )
        return state


_HEAD = "<B q q q q q q q q q q q d d q q q H B B"
_COUNTERS_AT = 20  # fields of _HEAD before the counters
# The fixed part: the head, then the elicitation, capability and hour-of-day counters.
_FIXED = struct.Struct(f"{_HEAD} {_N_ELICIT + _N_CAP + 24}i")
# The largest blob: every section full (Space-Saving slots, distinct sketch, days, releases).
MAX_STATE_BYTES = (
    _FIXED.size + 4 * MAX_DAYS + 8 * DISTINCT_SLOTS + 32 * MAX_RELEASES
    + len(_TEMPLATE_COLUMNS) * (1 + 16 * HEAVY_SLOTS)
)


@functools.lru_cache(maxsize=1024)
def _array(code: str, count: int) -> struct.Struct:
    return struct.Struct(f"<{count}{code}")


@functools.lru_cache(maxsize=HEAVY_SLOTS + 1)
def _sketch(k: int) -> struct.Struct:
    """One Space-Saving sketch: its size, its keys, then (count, error) per key."""
    return struct.Struct(f"<B{k}q{2 * k}i")


def _take(buf: memoryview, pos: int, fmt: struct.Struct) -> tuple[tuple[Any, ...], int]:
    if pos + fmt.size > len(buf):
        raise ValueError("corrupt account state: truncated")
    return fmt.unpack_from(buf, pos), pos + fmt.size


def _entropy(counts: Sequence[int], levels: int) -> float:
    total = sum(counts)
    if total == 0:
        return 0.0
    h = -sum(c / total * math.log(c / total) for c in counts if c)
    return h / math.log(levels)


def _day_diff(start_ms: int, end_ms: int) -> int:
    """DuckDB's datediff('day', a, b): calendar-day boundaries crossed, in UTC."""
    return (end_ms // _DAY_MS) - (start_ms // _DAY_MS)


def window_days(first_ts_ms: int, last_ts_ms: int) -> int:
    """Days the observation window spans (calendar days, UTC), at least `MIN_WINDOW_DAYS`."""
    return max(MIN_WINDOW_DAYS, _day_diff(first_ts_ms, last_ts_ms) + 1)


def utc_iso(ts_ms: int) -> str:
    """RFC 3339 UTC with milliseconds, as `actions.csv` writes timestamps."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def account_infos(table: pa.Table) -> dict[str, AccountInfo]:
    """The accounts side table (``ACCOUNTS_SCHEMA``) as `AccountInfo` by account id."""
    created = _epoch_ms(table.column("created_at"))
    return {
        account: AccountInfo(created_ms, tier, verified)
        for account, created_ms, tier, verified in zip(
            table.column("account_id").to_pylist(), created, table.column("tier").to_pylist(),
            table.column("verified").to_pylist(), strict=True,
        )
        if account
    }


def release_list(table: pa.Table) -> list[Release]:
    """The releases side table (``RELEASES_SCHEMA``) as `Release`s, in release order."""
    releases = [
        Release(model, ts)
        for model, ts in zip(table.column("model").to_pylist(),
                             _epoch_ms(table.column("released_at")), strict=True)
        if model and ts is not None
    ]
    return sorted(releases, key=lambda r: r.released_at_ms)


def _epoch_ms(column: pa.ChunkedArray) -> list[int | None]:
    # Side tables come back from DuckDB in microseconds and from the readers in milliseconds.
    return column.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist()
