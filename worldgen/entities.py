"""Accounts, activities (what an account does) and their planned sessions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .infra import Addr, Client


@dataclass(slots=True)
class Account:
    idx: int
    account_id: str
    actor_type: str
    label: str  # "campaign" or "legit"
    campaign_id: str
    campaign_shape: str
    tier: str
    created_at: float
    verified: bool
    email_domain: str
    country: str
    payment_fingerprint: str | None
    org_id: str
    api_keys: list[str]
    addrs: list[Addr]
    addr_weights: list[float]
    clients: list[Client]
    client_weights: list[float]
    tz: float
    # "none": one of addrs per session; "request": a fresh address per request from rotate_pool
    rotate: str = "none"
    rotate_pool: tuple[str, str | None] = ("residential", None)
    tactic: str = ""


@dataclass(slots=True)
class SessionBatch:
    starts: np.ndarray  # session start times
    nturns: np.ndarray  # turns (exchanges) per session
    median_gap: float  # seconds between turns of a session
    gap_sigma: float
    tags: np.ndarray | None = None  # per-session integer handed to the content generator (item index, tick)


@dataclass(slots=True)
class Activity:
    """One kind of traffic an account sends: its content generator, habits and schedule."""

    account: Account
    kind: str
    harvest: bool
    key: str  # names the activity's random stream
    params: dict = field(default_factory=dict)
    max_tokens: tuple[int | None, ...] = (None,)
    temperature: tuple[float | None, ...] = (None,)
    error_429: float = 0.002
    model_weights: dict[int, float] = field(default_factory=dict)
    adopt: list[tuple[int, float, float]] = field(default_factory=list)  # (model index, from time, share)
    batches: list[SessionBatch] = field(default_factory=list)
    addrs: list[Addr] | None = None  # where this activity runs from, when not the account's usual places
    client: Client | None = None
