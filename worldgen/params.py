"""Draw every size, rate and mix of a world from its seed, profile and scale.

The result is a plain dict so that it can be written to world.json as it is; builders read their
parameters from it and nothing else, so world.json says exactly what the world was.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from .rand import loguniform, np_stream

PROFILES = ("naive", "evasive", "mixed")
SHAPES = ("few-huge", "synchronized", "hydra", "spread")
KIND_OF_SHAPE = {
    "few-huge": "agentic_coding_harvest",
    "synchronized": "reasoning_harvest",
    "hydra": "proxy_reseller",
    "spread": "capability_harvest",
}
LEGIT_TYPES = (
    "chat_user",
    "agentic_developer",
    "eval_runner",
    "grader_team",
    "saas_app",
    "classroom",
    "safety_researcher",
)
_FAMILIES = ("aurora", "nimbus", "vega", "lumen", "zephyr", "cobalt", "sable", "quill", "halcyon", "tessera")
DAY = 86400.0
# smallest a campaign may shrink to under --scale, so that it is still a group of accounts
_MIN_ACCOUNTS = {"few-huge": 2, "synchronized": 3, "hydra": 8, "spread": 6}


def _models(rng: np.random.Generator, t0: float, days: int) -> dict:
    fam = str(rng.choice(_FAMILIES))
    v = int(rng.integers(2, 6))
    existing = [
        {"name": f"{fam}-{v}", "released_at": t0 - loguniform(rng, 40, 220) * DAY, "reasoning": True},
        {"name": f"{fam}-{v}-mini", "released_at": t0 - loguniform(rng, 30, 200) * DAY, "reasoning": False},
        {"name": f"{fam}-{v - 1}", "released_at": t0 - loguniform(rng, 250, 600) * DAY, "reasoning": False},
    ]
    n_rel = 1 + int(rng.random() < 0.45)
    first = (
        t0 + (float(rng.uniform(1.2, max(1.5, days - 3.5))) // 1) * DAY + float(rng.uniform(15, 19)) * 3600
    )
    new = [{"name": f"{fam}-{v}.5", "released_at": first, "reasoning": True}]
    if n_rel == 2:
        second = min(t0 + (days - 1.2) * DAY, first + float(rng.uniform(1.0, 3.0)) * DAY)
        new.append(
            {
                "name": f"{fam}-{v}.5-mini" if rng.random() < 0.5 else f"{fam}-{v}.5-pro",
                "released_at": second,
                "reasoning": bool(rng.random() < 0.6),
            }
        )
    # base popularity of the models that exist when the window opens
    share = rng.dirichlet([6, 3.5, 1.2]).round(3).tolist()
    return {"family": fam, "existing": existing, "releases": new, "base_share": share}


def _legit(rng: np.random.Generator, scale: float) -> dict:
    vf = _volume_factor(scale)
    n = max(20, round(loguniform(rng, 1700, 7500) * scale))
    # the heavy and special-purpose types together are a few percent of accounts; chat users are the rest
    mix = rng.dirichlet(np.array([4.0, 1.2, 0.8, 0.6, 0.5]) * 8) * float(rng.uniform(0.05, 0.11))
    types = ("agentic_developer", "eval_runner", "grader_team", "saas_app", "safety_researcher")
    shares = {t: float(round(m, 4)) for t, m in zip(types, mix, strict=True)}
    return {
        "n_accounts_target": n,
        "type_share": shares,
        "chat_user": {
            "sessions_median": loguniform(rng, 1.4, 4.0),
            "sessions_sigma": float(rng.uniform(0.9, 1.35)),
            "turns_mean": float(rng.uniform(1.4, 3.2)),
            "paid_share": float(rng.uniform(0.15, 0.4)),
            "kind_mix": rng.dirichlet([40, 4, 2.5, 2, 1.5]).round(3).tolist(),
        },
        "agentic_developer": {
            "team_size_mean": float(rng.uniform(1.5, 5)),
            "sessions_per_day_median": loguniform(rng, 0.8, 3.0) * vf,
            "turns_median": float(rng.uniform(5, 14)),
            "heavy_share": float(rng.uniform(0.04, 0.18)),
            "heavy_factor": float(rng.uniform(4, 14)),
        },
        "eval_runner": {
            "runs_max": int(rng.integers(1, 4)),
            "run_size_min": 30,
            "run_size_max": max(40, round(loguniform(rng, 300, 1319) * vf)),
            "rerun_on_release_p": float(rng.uniform(0.4, 0.9)),
            "bench_mix": rng.dirichlet([5, 3, 2]).round(3).tolist(),
        },
        "grader_team": {
            "team_size_mean": float(rng.uniform(1.2, 3)),
            "jobs_per_workday": float(rng.uniform(0.3, 1.2)),
            "job_size_median": loguniform(rng, 20, 120) * vf,
        },
        "saas_app": {
            "per_day_median": loguniform(rng, 40, 250) * vf,
            "per_day_sigma": float(rng.uniform(0.6, 1.0)),
        },
        "classroom": {
            "n_classes": max(1, round(int(rng.integers(1, 9)) * min(1.0, scale * 4))),
            "class_size_min": 12,
            "class_size_max": 120,
            "lab_attendance": float(rng.uniform(0.6, 0.95)),
        },
        "safety_researcher": {
            "per_day_median": loguniform(rng, 12, 70),
            "lab_size_mean": float(rng.uniform(1.2, 3)),
        },
        "adoption": {  # probability of trying a new release, mean delay in days
            "chat_user": [float(rng.uniform(0.05, 0.2)), float(rng.uniform(1.5, 4))],
            "agentic_developer": [float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.5, 2.5))],
            "eval_runner": [float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.2, 1.0))],
            "grader_team": [float(rng.uniform(0.05, 0.2)), float(rng.uniform(2, 5))],
            "saas_app": [float(rng.uniform(0.02, 0.1)), float(rng.uniform(3, 6))],
            "classroom": [float(rng.uniform(0.05, 0.2)), float(rng.uniform(1, 4))],
            "safety_researcher": [float(rng.uniform(0.5, 0.9)), float(rng.uniform(0.2, 1.5))],
        },
    }


def _volume_factor(scale: float) -> float:
    """Below scale 1 the heaviest per-account volumes shrink too (by the square root), so small test
    worlds stay small; at scale 1 and above volumes per account are as drawn."""
    return min(1.0, scale) ** 0.5


def _campaign(seed: int, profile: str, i: int, shape: str, days: int, scale: float) -> dict:
    vf = _volume_factor(scale)
    rng = np_stream(seed, "campaign", i)
    tactic_rng = np_stream(seed, "tactic", i)
    tactic = profile if profile != "mixed" else ("evasive" if tactic_rng.random() < 0.5 else "naive")
    sizes = {"few-huge": (5, 20), "synchronized": (10, 60), "hydra": (150, 20000), "spread": (100, 900)}
    lo, hi = sizes[shape]
    n_full = round(loguniform(rng, lo, hi + 0.99))
    n = max(_MIN_ACCOUNTS[shape], round(n_full * scale))
    ev = tactic == "evasive"
    start = float(rng.uniform(0, 0.25 * days)) if rng.random() < 0.4 else 0.0
    c: dict = {
        "campaign_id": f"C{i + 1:02d}",
        "shape": shape,
        "kind": KIND_OF_SHAPE[shape],
        "tactic": tactic,
        "n_accounts": int(n),
        "n_accounts_unscaled": int(n_full),
        "start_day": round(start, 3),
        "operator_tz": float(rng.choice([8, 8, 3, 1, -5, 5.5, 7, 9])),
        "ordinary_share": float(rng.uniform(0.1, 0.35)) if ev else 0.0,
    }
    if shape == "few-huge":
        c |= {
            "per_account_per_day": loguniform(rng, 130, 1100)
            * (float(rng.uniform(0.3, 0.6)) if ev else 1.0)
            * vf,
            "turns_median": float(rng.uniform(5, 14)),
            "move_share": float(rng.uniform(0.45, 0.9)),
            "move_delay_hours": float(rng.uniform(1, 20)),
            "kind_mix": rng.dirichlet([7, 1.5, 1.5]).round(3).tolist(),
            "n_shared_ips": int(rng.integers(1, 4)),
            "n_shared_cards": int(rng.integers(1, 3)),
        }
    elif shape == "synchronized":
        c |= {
            "per_account_per_day": loguniform(rng, 40, 260)
            * (float(rng.uniform(0.4, 0.8)) if ev else 1.0)
            * vf,
            "family_mix": rng.dirichlet([6, 2.5, 1.2, 1.0]).round(3).tolist(),
            "tick_jitter": 0.02 if not ev else 0.9,
            "n_shared_ips": int(rng.integers(2, 5)),
            "n_shared_cards": int(rng.integers(1, 4)),
            "card_group_size": int(rng.integers(2, 6)),
            "move_share": float(rng.uniform(0.5, 0.9)) if ev else 0.0,
            "move_delay_hours": float(rng.uniform(2, 24)),
        }
    elif shape == "hydra":
        c |= {
            "exchanges_min": 3,
            "exchanges_max": 40,
            "lifetime_days": [0.4, float(rng.uniform(1.5, 3.5))],
            "harvest_share_min": 0.1,
            "harvest_share_max": 1.0,
            "tier_mix": dict(
                zip(
                    ("education", "startup", "research", "free"),
                    rng.dirichlet([4, 3, 2, 1.5]).round(3).tolist(),
                    strict=True,
                )
            ),
            "harvest_mix": rng.dirichlet([4, 3, 2.5, 1.5, 1.2, 1]).round(3).tolist(),
            "n_egress_ips": int(rng.integers(5, 40)),
            "wave_size_max": int(rng.integers(50, 500)),
            "move_share": float(rng.uniform(0.3, 0.8)) if ev else 0.0,
        }
    else:
        c |= {
            "per_account_per_day": loguniform(rng, 4, 40),
            "active_day_p": float(rng.uniform(0.3, 0.8)),
            "rare_tls_share": float(rng.uniform(0.25, 0.5)) if ev else float(rng.uniform(0.8, 1.0)),
            "card_share": float(rng.uniform(0.1, 0.3)) if ev else float(rng.uniform(0.5, 0.9)),
            "n_subnets": int(rng.integers(3, 7)),
            "capabilities_per_account": [1, 3],
            "move_share": float(rng.uniform(0.4, 0.8)) if ev else 0.0,
            "move_delay_hours": float(rng.uniform(3, 30)),
        }
    return c


def draw_world(seed: int, profile: str, scale: float, days: int | None) -> dict:
    rng = np_stream(seed, "world")
    n_days = int(days) if days else int(rng.integers(7, 11))
    start = dt.datetime(2025, 1, 6, tzinfo=dt.UTC) + dt.timedelta(days=int(rng.integers(0, 420)))
    t0 = start.timestamp()
    shapes = [s for s in SHAPES if rng.random() < 0.85]
    while len(shapes) < 2:
        shapes.append(str(rng.choice(SHAPES)))
        shapes = sorted(set(shapes), key=SHAPES.index)
    extra = int(rng.integers(0, 4))
    for _ in range(extra):
        s = str(rng.choice(SHAPES, p=[0.25, 0.3, 0.15, 0.3]))
        if shapes.count(s) < (1 if s == "hydra" else 2):
            shapes.append(s)
    legit = _legit(np_stream(seed, "legit-params"), scale)
    return {
        "seed": seed,
        "profile": profile,
        "scale": scale,
        "volume_factor": _volume_factor(scale),
        "window": {"start": start.isoformat(), "t0": t0, "days": n_days, "start_weekday": start.weekday()},
        "models": _models(np_stream(seed, "models"), t0, n_days),
        "gateway_offsets": [0.0] if rng.random() < 0.5 else [0.0, -5.0, 1.0, 8.0],
        "legit": legit,
        "campaigns": [_campaign(seed, profile, i, s, n_days, scale) for i, s in enumerate(shapes)],
    }
