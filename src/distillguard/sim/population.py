"""Accounts and the event table the actors fill.

An event row is a compact, numeric description of one exchange (when, which account, which recipe
and which corpus items); the text is rendered only when the sorted log is written. That keeps the
`large` scenario's two million exchanges in a few hundred megabytes of arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from distillguard.sim.timing import DEFAULT_CLOCK, Clock, sessions
from distillguard.sim.world import Address, IdFactory, World

# Requests per minute a tier may send before the gateway answers 429.
TIER_RPM: dict[str, int] = {
    "free": 10, "education": 15, "paid": 120, "startup": 240, "research": 120, "enterprise": 2000,
}


@dataclass(slots=True)
class Habits:
    """How an account's client sets request options, and how it adopts a new model."""

    max_tokens: int = 0  # 0 = not sent
    temperature: float | None = None
    stream_p: float = 0.0
    flash_p: float = 0.3  # share of requests to the small model
    adopt_share: float = 0.0  # long-run share of traffic on the newly released model
    adopt_tau_h: float = 48.0  # how fast it gets there
    adopt_delay_h: float = 0.0
    thinking_p: float = 0.2  # share of requests with extended reasoning on capable models
    out_scale: float = 1.0  # multiplies the recipe's typical output length


@dataclass(slots=True)
class Account:
    account_id: str
    actor_type: str
    campaign: str  # "" for legitimate accounts
    created_at: int  # epoch ms
    tier: str
    verified: bool
    email_domain: str
    country: str
    payment: str | None
    org_id: str
    keys: list[str]
    ips: list[Address]
    clients: list[tuple[int, str]]  # (client kind index, TLS fingerprint)
    habits: Habits
    sends_conversation_id: bool = False
    params: dict[str, int] = field(default_factory=dict)  # recipe settings (template, tool client, ...)


# Event columns and their dtypes. `model` -1 and `max_tokens` -1 mean "decide from the account".
EVENT_COLUMNS: dict[str, type] = {
    "ts": np.int64,
    "acct": np.int32,
    "recipe": np.int16,
    "item": np.int32,
    "var": np.int64,
    "conv": np.int64,  # -1 = single exchange
    "turn": np.int16,
    "tool_step": np.bool_,  # the response is a tool call (an agent loop continues)
    "model": np.int8,
    "key": np.int8,
    "ipx": np.int16,
    "cli": np.int8,
    "max_tokens": np.int32,
}


class EventBuilder:
    """Accumulates event columns in chunks; scalars broadcast to the chunk length."""

    def __init__(self) -> None:
        self._chunks: dict[str, list[np.ndarray]] = {c: [] for c in EVENT_COLUMNS}
        self.n = 0

    def add(self, ts: np.ndarray, acct: int | np.ndarray, recipe: int | np.ndarray, **cols: object) -> None:
        n = len(ts)
        if n == 0:
            return
        defaults: dict[str, object] = {
            "item": 0, "var": 0, "conv": -1, "turn": 0, "tool_step": False, "model": -1, "key": 0, "ipx": 0,
            "cli": 0, "max_tokens": -1,
        }
        values = {**defaults, **cols, "ts": ts, "acct": acct, "recipe": recipe}
        unknown = set(values) - set(EVENT_COLUMNS)
        if unknown:
            raise ValueError(f"unknown event columns: {sorted(unknown)}")
        for name, dtype in EVENT_COLUMNS.items():
            v = values[name]
            self._chunks[name].append(np.asarray(v, dtype=dtype) if np.ndim(v) else np.full(n, v, dtype=dtype))
        self.n += n

    def build(self) -> dict[str, np.ndarray]:
        return {
            c: (np.concatenate(parts) if parts else np.empty(0, dtype=EVENT_COLUMNS[c]))
            for c, parts in self._chunks.items()
        }


@dataclass
class Sim:
    """What every actor generator shares: the world, the id generator, accounts and events."""

    world: World
    ids: IdFactory
    accounts: list[Account] = field(default_factory=list)
    events: EventBuilder = field(default_factory=EventBuilder)
    n_convs: int = 0
    clock: Clock = DEFAULT_CLOCK  # the window's length and the new model's release

    def new_convs(self, n: int) -> np.ndarray:
        """Global indices for `n` new conversations."""
        out = np.arange(self.n_convs, self.n_convs + n, dtype=np.int64)
        self.n_convs += n
        return out

    def add_account(
        self,
        *,
        actor_type: str,
        campaign: str,
        created_at: int,
        tier: str,
        verified: bool,
        email_domain: str,
        country: str,
        payment: str | None,
        ips: list[Address],
        clients: list[tuple[int, str]],
        habits: Habits,
        org_id: str | None = None,
        n_keys: int = 1,
        sends_conversation_id: bool = False,
        params: dict[str, int] | None = None,
    ) -> int:
        """Register an account (ids drawn from the shared generator) and return its index."""
        account = Account(
            account_id=self.ids.one("acct_"),
            actor_type=actor_type,
            campaign=campaign,
            created_at=int(created_at),
            tier=tier,
            verified=bool(verified),
            email_domain=email_domain,
            country=country,
            payment=payment,
            org_id=org_id if org_id is not None else self.ids.one("org_"),
            keys=self.ids.new("key_", n_keys, 20),
            ips=ips,
            clients=clients,
            habits=habits,
            sends_conversation_id=sends_conversation_id,
            params=params or {},
        )
        self.accounts.append(account)
        return len(self.accounts) - 1

    def emit(
        self,
        rng: np.random.Generator,
        acct: int | np.ndarray,
        starts: np.ndarray,
        recipes: np.ndarray | int,
        items: np.ndarray,
        turns: np.ndarray | int,
        gap_ms: float,
        *,
        loops: np.ndarray | bool = False,
        gap_sigma: float = 0.8,
        **per_episode: np.ndarray | int,
    ) -> int:
        """Add episodes (conversations, agent loops or single requests) of one account or, with an
        array `acct`, of one account per episode.

        Every per-episode value (recipe, item, ipx, cli, model, max_tokens ...) applies to all of the
        episode's requests; `loops` marks agent loops, whose every request but the last ends in a tool
        call. Requests falling after the window are dropped. Returns the number of requests added.
        """
        n = len(starts)
        if n == 0:
            return 0
        turns_a = np.broadcast_to(np.asarray(turns, dtype=np.int64), (n,))
        ts, sess, turn = sessions(rng, starts, turns_a, gap_ms, gap_sigma)
        keep = ts < self.clock.end
        sess, turn = sess[keep], turn[keep]

        def per_event(v: np.ndarray | int | bool) -> np.ndarray | int | bool:
            return np.asarray(v)[sess] if np.ndim(v) else v

        loop_mask = np.broadcast_to(np.asarray(loops, dtype=bool), (n,))[sess]
        self.events.add(
            ts[keep],
            per_event(acct),
            per_event(recipes),
            item=np.asarray(items)[sess],
            var=rng.integers(0, 1 << 62, size=n)[sess],
            conv=self.new_convs(n)[sess],
            turn=turn,
            tool_step=loop_mask & (turn < turns_a[sess] - 1),
            **{k: per_event(v) for k, v in per_episode.items()},
        )
        return int(keep.sum())
