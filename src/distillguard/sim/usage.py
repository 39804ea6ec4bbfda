"""Per-exchange outcomes decided over the whole event table at once: model, options, usage, status."""

from __future__ import annotations

import numpy as np

from distillguard.sim.population import TIER_RPM, Account
from distillguard.sim.recipes import OUTPUT_TOKENS, TOOL_CALL_TOKENS, Recipe
from distillguard.sim.timing import FLASH, HOUR, MINUTE, NEW, NEW_RELEASE, PRO

STOP_NONE, STOP_END, STOP_MAX, STOP_TOOL = 0, 1, 2, 3
STOP_REASONS = (None, "end_turn", "max_tokens", "tool_use")


def _account_array(accounts: list[Account], attr: str, default: float = np.nan) -> np.ndarray:
    return np.array([v if (v := getattr(a.habits, attr)) is not None else default for a in accounts], dtype=float)


def _conversation_uniform(rng: np.random.Generator, conv: np.ndarray, n_convs: int) -> np.ndarray:
    """One uniform draw per conversation (so all its turns agree), one per exchange otherwise."""
    per_conv = rng.random(max(n_convs, 1))
    single = rng.random(len(conv))
    return np.where(conv >= 0, per_conv[np.maximum(conv, 0)], single)


def _conversation_start(ts: np.ndarray, conv: np.ndarray, n_convs: int) -> np.ndarray:
    first = np.full(max(n_convs, 1), np.iinfo(np.int64).max, dtype=np.int64)
    has = conv >= 0
    np.minimum.at(first, conv[has], ts[has])
    return np.where(has, first[np.maximum(conv, 0)], ts)


def assign_models(
    rng: np.random.Generator, ev: dict[str, np.ndarray], accounts: list[Account], n_convs: int,
    release: int = NEW_RELEASE,
) -> None:
    """Fill `model` where the actor left it open, from each account's habits and adoption curve.

    After the release the share of an account's traffic on the new model rises as
    share * (1 - exp(-(t - release - delay) / tau)); a conversation stays on one model.
    """
    acct, conv = ev["acct"], ev["conv"]
    t = _conversation_start(ev["ts"], conv, n_convs)
    u_model = _conversation_uniform(rng, conv, n_convs)
    u_new = _conversation_uniform(rng, conv, n_convs)
    flash_p = _account_array(accounts, "flash_p")[acct]
    share = _account_array(accounts, "adopt_share")[acct]
    tau = _account_array(accounts, "adopt_tau_h")[acct]
    delay = _account_array(accounts, "adopt_delay_h")[acct]
    dt_h = (t - release) / HOUR - delay
    p_new = np.where(dt_h > 0, share * (1.0 - np.exp(-np.maximum(dt_h, 0) / tau)), 0.0)
    chosen = np.where(u_new < p_new, NEW, np.where(u_model < flash_p, FLASH, PRO)).astype(np.int8)
    ev["model"] = np.where(ev["model"] >= 0, ev["model"], chosen).astype(np.int8)


def rate_limited(ev: dict[str, np.ndarray], accounts: list[Account]) -> np.ndarray:
    """Requests beyond the tier's per-minute limit, which the gateway answers with 429."""
    rpm = np.array([TIER_RPM.get(a.tier, 60) for a in accounts], dtype=np.int64)[ev["acct"]]
    minute = ev["ts"] // MINUTE
    key = ev["acct"].astype(np.int64) * (1 << 32) + (minute - minute.min())
    order = np.lexsort((ev["ts"], key))
    k = key[order]
    idx = np.arange(len(k))
    start = np.r_[True, k[1:] != k[:-1]] if len(k) else np.zeros(0, dtype=bool)
    rank = idx - np.maximum.accumulate(np.where(start, idx, 0))
    out = np.zeros(len(k), dtype=bool)
    out[order] = rank >= rpm[order]
    return out


def assign_usage(
    rng: np.random.Generator, ev: dict[str, np.ndarray], accounts: list[Account], release: int = NEW_RELEASE,
) -> None:
    """Options sent (max_tokens, temperature, stream) and what came back (tokens, stop reason, status)."""
    n = len(ev["ts"])
    acct = ev["acct"]
    med = np.zeros(len(Recipe))
    sig = np.zeros(len(Recipe))
    for r, (m, s) in OUTPUT_TOKENS.items():
        med[r], sig[r] = m, s
    scale = _account_array(accounts, "out_scale")[acct]
    out = rng.lognormal(np.log(med[ev["recipe"]] * scale), sig[ev["recipe"]])
    tool = ev["tool_step"]
    out = np.where(tool, rng.lognormal(np.log(TOOL_CALL_TOKENS[0]), TOOL_CALL_TOKENS[1], size=n), out)
    out = np.maximum(1, out).astype(np.int64)

    max_tokens = np.where(ev["max_tokens"] >= 0, ev["max_tokens"],
                          _account_array(accounts, "max_tokens", 0)[acct].astype(np.int64))
    capped = (max_tokens > 0) & (out >= max_tokens)
    out = np.where(capped, max_tokens, out)
    stop = np.where(capped, STOP_MAX, np.where(tool, STOP_TOOL, STOP_END)).astype(np.int8)

    thinking = (ev["model"] != FLASH) & (rng.random(n) < _account_array(accounts, "thinking_p")[acct])
    reasoning = np.where(thinking, (out * rng.lognormal(0.3, 0.6, size=n)).astype(np.int64), 0)

    hours_since = (ev["ts"] - release) / HOUR
    launch_rush = (ev["model"] == NEW) & (hours_since >= 0) & (hours_since < 6)
    overloaded = rng.random(n) < np.where(launch_rush, 0.03, 0.002)
    status = np.full(n, 200, dtype=np.int16)
    status[overloaded] = np.where(rng.random(int(overloaded.sum())) < 0.7, 529, 500)
    status[rate_limited(ev, accounts)] = 429
    failed = status != 200

    ev["max_tokens"] = max_tokens.astype(np.int32)
    ev["temperature"] = _account_array(accounts, "temperature")[acct]
    ev["stream"] = rng.random(n) < _account_array(accounts, "stream_p")[acct]
    ev["output_tokens"] = np.where(failed, 0, out)
    ev["reasoning_tokens"] = np.where(failed, 0, reasoning)
    ev["stop"] = np.where(failed, STOP_NONE, stop).astype(np.int8)
    ev["status"] = status
