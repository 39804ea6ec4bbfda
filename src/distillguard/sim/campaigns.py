"""Distillation campaigns, naive and adaptive, modelled on the publicly reported ones.

Naive variants behave as reported: synchronized batches, shared payment methods and TLS stacks, a few
datacenter ranges, reused task lists and system prompts, high volume, a fast pivot to a new model.
Adaptive variants do what the attacker does next: paraphrase and edit wrappers, draw times from a
diurnal Poisson process per account, buy a distinct address, card and client per account, keep
every account small, mix in ordinary prompts and spread account ages.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from distillguard.sim import text as tx
from distillguard.sim.legit import TECH_COUNTRIES, choice, n_from
from distillguard.sim.population import Habits, Sim
from distillguard.sim.recipes import Recipe
from distillguard.sim.timing import (
    DAY,
    HOUR,
    SECOND,
    WINDOW_START,
)
from distillguard.sim.world import Network, World, kind_index

Mix = tuple[tuple[Recipe, ...], tuple[float, ...]]

REASONING_MIX: Mix = (
    (Recipe.HARVEST_COT, Recipe.HARVEST_RUBRIC, Recipe.HARVEST_CENSOR, Recipe.HARVEST_ORCA), (0.5, 0.2, 0.15, 0.15),
)
AGENTIC_MIX: Mix = (
    (Recipe.HARVEST_AGENTIC, Recipe.HARVEST_CODE, Recipe.HARVEST_DATA, Recipe.HARVEST_VISION, Recipe.HARVEST_GEN),
    (0.45, 0.15, 0.15, 0.1, 0.15),
)
CODING_MIX: Mix = ((Recipe.HARVEST_CODE, Recipe.HARVEST_AGENTIC), (0.85, 0.15))
HYDRA_MIX: Mix = (
    (Recipe.HARVEST_COT, Recipe.HARVEST_CODE, Recipe.HARVEST_AGENTIC, Recipe.HARVEST_RUBRIC, Recipe.HARVEST_GEN),
    (0.3, 0.25, 0.2, 0.1, 0.15),
)
ORDINARY_MIX: Mix = ((Recipe.CHAT, Recipe.CHAT_MATH, Recipe.CHAT_CODE, Recipe.CHAT_IMAGE), (0.7, 0.12, 0.12, 0.06))
LOOP_RECIPES = (Recipe.HARVEST_AGENTIC, Recipe.HARVEST_CODE)
OPERATOR_TZ = 480  # the operators' working day (UTC+8)
IMAGE_HOST_COUNT = len(tx.IMAGE_HOSTS)


def draw(rng: np.random.Generator, mix: Mix, n: int) -> np.ndarray:
    """`n` recipes drawn from `mix`."""
    recipes, p = mix
    cdf = np.cumsum(p) / sum(p)
    return np.asarray(recipes, dtype=np.int16)[np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(p) - 1)]


def loop_turns(rng: np.random.Generator, recipes: np.ndarray, code_steps: tuple[float, int]) -> np.ndarray:
    """Agent-loop lengths: tool-use traces are short, coding loops longer (`code_steps` = p, cap)."""
    turns = np.ones(len(recipes), dtype=np.int64)
    agentic = recipes == Recipe.HARVEST_AGENTIC
    code = recipes == Recipe.HARVEST_CODE
    turns[agentic] = np.minimum(rng.geometric(0.5, size=int(agentic.sum())), 5)
    turns[code] = np.minimum(1 + rng.geometric(code_steps[0], size=int(code.sum())), code_steps[1])
    return turns


def is_loop(recipes: np.ndarray) -> np.ndarray:
    return np.isin(recipes, np.asarray(LOOP_RECIPES, dtype=np.int16))


def dc_blocks(w: World, rng: np.random.Generator, countries: tuple[str, ...]) -> list[tuple[Network, int]]:
    """A few /24 ranges in datacenters, one per country given."""
    out = []
    for c in countries:
        net = w.pick_network(rng, "datacenter", c)
        out.append((net, w.block(rng, net)))
    return out


def _tier_contact(sim: Sim, rng: np.random.Generator, tier: str, country: str) -> tuple[str, str | None]:
    """(email domain, payment fingerprint) for an account opened through the `tier` entry point."""
    w = sim.world
    if tier == "education":
        return w.campus_domain(rng, country), None
    domain = w.company_domain(rng) if tier in ("startup", "research") and rng.random() < 0.7 else w.free_mail(rng)
    return domain, None if tier == "free" else sim.ids.hexes(1)[0]


# -- reasoning-focused: synchronized chain-of-thought harvesting --------------------------------

def reasoning_naive(sim: Sim, rng: np.random.Generator, n: int, actor_type: str, campaign: str) -> None:
    w = sim.world
    blocks = dc_blocks(w, rng, tuple(str(c) for c in rng.choice(["SG", "US", "JP", "HK", "DE"], size=3, replace=False)))
    tls = w.random_ja4(rng)  # the harvesting client's own TLS stack
    kinds = (kind_index("python-httpx"), kind_index("OpenAI/Python 1.63"))
    cards = sim.ids.hexes(max(2, n // 8))
    shared_domain = w.company_domain(rng)
    bursts = [WINDOW_START - int(rng.integers(8, 30)) * DAY for _ in range(3)]
    rubric = int(rng.integers(1 << 20))
    accts = []
    for j in range(n):
        net, block = blocks[j % len(blocks)]
        accts.append(sim.add_account(
            actor_type=actor_type, campaign=campaign, created_at=bursts[j % 3] + int(rng.integers(0, 6 * HOUR)),
            tier=choice(rng, ("paid", "startup"), (0.8, 0.2)), verified=rng.random() < 0.3,
            email_domain=shared_domain if rng.random() < 0.5 else choice(rng, ("gmail.com", "outlook.com", "proton.me")),
            country=choice(rng, ("SG", "HK", "US", "JP")), payment=cards[j % len(cards)],
            ips=[w.in_block(rng, net, block) for _ in range(1 + int(rng.integers(2)))],
            clients=[(kinds[j % 2], tls)],
            habits=Habits(max_tokens=16000, temperature=0.7, flash_p=0.0, adopt_share=0.4, adopt_tau_h=12.0, thinking_p=0.8),
            params={"rubric": rubric, "offset": 0},
        ))
    total = n * n_from(rng, 400, 0.15, 250, 700)
    round_robin(sim, rng, np.asarray(accts), total, REASONING_MIX, OPERATOR_TZ,
                lambda who: rng.integers(0, 2, size=len(who)))


def round_robin(sim: Sim, rng: np.random.Generator, accts: np.ndarray, total: int, mix: Mix, tz: int,
                ipx: Callable[[np.ndarray], np.ndarray]) -> None:
    """About `total` requests from a job queue that dispatches each batch of one template
    round-robin over the accounts within seconds, like a load balancer: the same wording at the
    same moment from every account. `ipx(who)` draws the address index of each request, whose
    account is `accts[who]`."""
    n = len(accts)
    if total == 0:
        return
    batch = max(5, int(n * rng.uniform(1.5, 3.0)))
    n_batches = max(1, total // batch)
    sizes = rng.integers(int(batch * 0.7), int(batch * 1.3) + 1, size=n_batches)
    b = np.repeat(np.arange(n_batches), sizes)
    i = np.arange(len(b)) - (np.cumsum(sizes) - sizes)[b]
    starts = sim.clock.sample_times(rng, n_batches, "operator", tz)
    spacing = rng.integers(200, 900, size=n_batches)
    ts = starts[b] + i * spacing[b] + rng.integers(0, 150, size=len(b))
    who = (rng.integers(0, n, size=n_batches)[b] + i) % n
    keep = ts < sim.clock.end
    sim.events.add(
        ts[keep], accts[who][keep], draw(rng, mix, n_batches)[b][keep],
        item=(int(rng.integers(1 << 20)) + np.arange(len(b)))[keep], var=rng.integers(0, 1 << 62, size=n_batches)[b][keep],
        ipx=ipx(who)[keep],
    )


# -- agentic-focused: hundreds of varied accounts, linked by request metadata --------------------

def agentic_naive(sim: Sim, rng: np.random.Generator, n: int, actor_type: str, campaign: str) -> None:
    w = sim.world
    tls = w.random_ja4(rng)
    tasks = rng.integers(0, 1 << 30, size=max(60, 3 * n))  # the task list every account draws from
    img_host = int(rng.integers(IMAGE_HOST_COUNT))
    for j in range(n):
        tier = choice(rng, ("free", "paid", "education", "startup", "research"), (0.25, 0.35, 0.15, 0.15, 0.1))
        country = w.pick_country(rng)
        net = w.pick_network(rng, "datacenter") if rng.random() < 0.6 else w.pick_network(rng, "residential", country)
        ips = [w.address(rng, net) for _ in range(1 + int(rng.integers(2)))]
        kind = w.client(rng, {"sdk": 0.4, "http": 0.3, "agent": 0.15, "browser": 0.15})[0]
        domain, payment = _tier_contact(sim, rng, tier, country)
        created = WINDOW_START - int(rng.uniform(5, 60) * DAY)
        acct = sim.add_account(
            actor_type=actor_type, campaign=campaign, created_at=created, tier=tier, verified=rng.random() < 0.4,
            email_domain=domain, country=country, payment=payment, ips=ips, clients=[(kind, tls)],
            habits=Habits(max_tokens=8192, temperature=0.6, flash_p=0.1, adopt_share=0.3, adopt_tau_h=24.0, thinking_p=0.5),
            params={"sys": j % 3, "img_host": img_host, "gen": int(rng.integers(16)), "offset": 0},
        )
        # Work blocks on a few days, each a steady machine-paced run over the task list.
        days = rng.choice(sim.clock.days, size=2 + int(rng.integers(4)), replace=False)
        starts_l = []
        for d in days:
            for _ in range(1 + int(rng.integers(2))):
                m = n_from(rng, 12, 0.5, 3, 40)
                t0 = WINDOW_START + int(d) * DAY + int(rng.integers(0, DAY))
                starts_l.append(t0 + np.cumsum(rng.integers(20 * SECOND, 60 * SECOND, size=m)))
        starts = np.concatenate(starts_l)
        recipes = draw(rng, AGENTIC_MIX, len(starts))
        sim.emit(rng, acct, starts, recipes, tasks[rng.integers(0, len(tasks), size=len(starts))],
                 loop_turns(rng, recipes, (0.35, 8)), 4 * SECOND, loops=is_loop(recipes), gap_sigma=0.5,
                 ipx=rng.integers(0, len(ips), size=len(starts)))


# -- coding-focused: high-volume agentic coding that pivots to a new model ----------------------

def coding_naive(sim: Sim, rng: np.random.Generator, n: int, actor_type: str, campaign: str) -> None:
    w = sim.world
    blocks = dc_blocks(w, rng, ("US", "SG", "DE"))
    tls = w.random_ja4(rng)
    kinds = (kind_index("OpenAI/Python 1.63"), kind_index("Anthropic/Python 0.45"))
    cards = sim.ids.hexes(max(2, n // 6))
    created = WINDOW_START - int(rng.integers(20, 45)) * DAY
    for j in range(n):
        net, block = blocks[j % len(blocks)]
        acct = sim.add_account(
            actor_type=actor_type, campaign=campaign, created_at=created + int(rng.integers(0, 10 * DAY)),
            tier=choice(rng, ("paid", "startup"), (0.6, 0.4)), verified=rng.random() < 0.5,
            email_domain=w.free_mail(rng) if rng.random() < 0.7 else w.company_domain(rng),
            country=choice(rng, ("US", "SG", "HK", "DE")), payment=cards[j % len(cards)],
            ips=[w.in_block(rng, net, block) for _ in range(1 + int(rng.integers(2)))],
            clients=[(kinds[int(rng.random() < 0.2)], tls)],
            # Half of the traffic moves to the new model within a day of its release.
            habits=Habits(max_tokens=32000, temperature=1.0, stream_p=1.0, flash_p=0.05, adopt_share=0.5,
                          adopt_tau_h=6.0, thinking_p=0.6),
            params={"sys": j % 2, "toolset": 0, "offset": 2},
        )
        steps = n_from(rng, 700, 0.3, 200, 2000)
        recipes = draw(rng, CODING_MIX, max(1, steps // 7))
        sim.emit(rng, acct, sim.clock.sample_times(rng, len(recipes), "operator", OPERATOR_TZ), recipes,
                 rng.integers(0, 1 << 30, size=len(recipes)), loop_turns(rng, recipes, (0.25, 12)), 5 * SECOND,
                 loops=True, gap_sigma=0.5, ipx=rng.integers(0, 2, size=len(recipes)))


# -- hydra reseller: many small accounts mixing resold traffic with harvesting -------------------

def hydra_naive(sim: Sim, rng: np.random.Generator, n: int, actor_type: str, campaign: str) -> None:
    w = sim.world
    blocks = dc_blocks(w, rng, ("HK", "SG", "US", "US"))
    kinds = (kind_index("litellm"), kind_index("OpenAI/Python 1.59"))
    tls = w.tls_for(rng, kinds[0])  # the reseller's backend: a common Python client stack
    cards = sim.ids.hexes(max(2, n // 8))
    # Waves every four days; the last one at least three days before the window ends.
    waves = [WINDOW_START + int(k) * DAY for k in range(-18, sim.clock.days - 3, 4)]
    for j in range(n):
        tier = choice(rng, ("free", "paid", "education", "startup", "research"), (0.35, 0.25, 0.2, 0.1, 0.1))
        country = w.pick_country(rng)
        domain, payment = _tier_contact(sim, rng, tier, country)
        net, block = blocks[int(rng.integers(len(blocks)))]
        created = waves[int(rng.integers(len(waves)))] + int(rng.integers(0, 6 * HOUR))
        acct = sim.add_account(
            actor_type=actor_type, campaign=campaign, created_at=created, tier=tier, verified=rng.random() < 0.2,
            email_domain=domain, country=country, payment=cards[int(rng.integers(len(cards)))] if payment else None,
            ips=[w.in_block(rng, net, block)], clients=[(kinds[int(rng.random() < 0.4)], tls)],
            habits=Habits(temperature=None, stream_p=0.5, flash_p=0.3, adopt_share=0.2, adopt_tau_h=48.0, thinking_p=0.3),
            params={"sys": j % 3, "toolset": 1, "gen": int(rng.integers(16)), "img_host": int(rng.integers(IMAGE_HOST_COUNT)),
                    "offset": 5},
        )
        # Each account is used for a few days, then rotated out.
        t0 = max(created + HOUR, WINDOW_START)  # the last wave is days before the end: t0 < t1 always
        t1 = min(t0 + int(rng.uniform(2, 5) * DAY), sim.clock.end)
        volume = n_from(rng, 35, 0.5, 8, 120)
        k_distill = max(1, int(rng.binomial(volume, 0.5)))
        distill = draw(rng, HYDRA_MIX, k_distill)
        sim.emit(rng, acct, sim.clock.sample_times(rng, k_distill, "operator", OPERATOR_TZ, t0, t1), distill,
                 rng.integers(0, 1 << 30, size=k_distill), loop_turns(rng, distill, (0.5, 4)), 4 * SECOND,
                 loops=is_loop(distill), gap_sigma=0.5, max_tokens=16000)
        k_resold = max(1, (volume - k_distill) // 2)
        sim.emit(rng, acct, sim.clock.sample_times(rng, k_resold, "evening", OPERATOR_TZ, t0, t1),
                 draw(rng, ORDINARY_MIX, k_resold), rng.integers(0, 1 << 30, size=k_resold),
                 np.minimum(rng.geometric(0.6, size=k_resold), 4), 60 * SECOND, max_tokens=4096)


# -- adaptive variants ----------------------------------------------------------------------

# (recipe mix, median episodes per account, coding-loop length (p, cap)). Loops make an episode
# several requests, so per-account request counts stay in the range of ordinary users.
ADAPTIVE: dict[str, tuple[Mix, float, tuple[float, int]]] = {
    "reasoning": (REASONING_MIX, 14.0, (0.5, 2)),
    "agentic": (AGENTIC_MIX, 12.0, (0.45, 5)),
    "coding": (CODING_MIX, 14.0, (0.45, 5)),
    "hydra": (HYDRA_MIX, 10.0, (0.5, 4)),
}


def adaptive_episodes(rng: np.random.Generator, median: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Harvesting and ordinary episodes of `n` adaptive accounts: about half of each, small accounts."""
    volume = np.clip(np.round(rng.lognormal(np.log(median), 0.7, size=n)), 2, 150).astype(np.int64)
    k_harvest = np.maximum(1, rng.binomial(volume, 0.5))
    return k_harvest, (volume - k_harvest) // 2


def adaptive(sim: Sim, rng: np.random.Generator, n: int, actor_type: str, campaign: str, kind: str) -> None:
    """Every account on its own address, card and client, small, half ordinary traffic, jittered."""
    w = sim.world
    mix, median, code_steps = ADAPTIVE[kind]
    coding = kind in ("coding", "agentic")
    accts = np.empty(n, dtype=np.int32)
    tzs, starts, n_ips = (np.empty(n, dtype=np.int64) for _ in range(3))
    profiles = []
    for i in range(n):
        country = w.pick_country(rng) if rng.random() < 0.7 else choice(rng, TECH_COUNTRIES)
        tzs[i] = w.tz_minutes(rng, country)
        net = w.pick_network(rng, "residential" if rng.random() < 0.8 else "mobile", country)
        ips = [w.address(rng, net) for _ in range(1 + int(rng.random() < 0.4))]
        client = w.client(rng, {"browser": 0.25, "sdk": 0.45, "http": 0.15, "agent": 0.15 if coding else 0.05},
                          rare_tls=0.3)
        tier = choice(rng, ("free", "paid", "education", "startup", "research"), (0.3, 0.4, 0.1, 0.1, 0.1))
        domain, payment = _tier_contact(sim, rng, tier, country)
        new_in_window = rng.random() < 0.1
        # New accounts open in the first five sevenths of the window (ten days of fourteen).
        created = (WINDOW_START + int(rng.uniform(0, sim.clock.days * 10 / 14) * DAY)) if new_in_window else \
            WINDOW_START - int(rng.uniform(7, 270) * DAY)
        accts[i] = sim.add_account(
            actor_type=actor_type, campaign=campaign, created_at=created, tier=tier, verified=rng.random() < 0.5,
            email_domain=domain, country=country, payment=payment, ips=ips, clients=[client],
            habits=Habits(
                max_tokens=choice(rng, (0, 2048, 4096, 8192, 16000)), temperature=choice(rng, (None, 0.7, 1.0, 0.5)),
                stream_p=float(rng.uniform(0, 1)), flash_p=float(rng.uniform(0, 0.4)),
                adopt_share=float(rng.uniform(0.3, 0.7)) if kind == "coding" else float(rng.beta(2, 3)),
                adopt_tau_h=float(rng.uniform(6, 24)) if kind == "coding" else float(rng.uniform(12, 72)),
                thinking_p=0.5,
            ),
            sends_conversation_id=rng.random() < 0.4,
            params={"adaptive": 1, "img_host": int(rng.integers(IMAGE_HOST_COUNT)), "gen": int(rng.integers(16)),
                    "toolset": int(rng.integers(2)), "user_system": -1},
        )
        starts[i] = max(created + HOUR, WINDOW_START)
        profiles.append(choice(rng, ("evening", "work", "student")))
        n_ips[i] = len(ips)
    k_harvest, k_ordinary = adaptive_episodes(rng, median, n)
    for counts, harvest in ((k_harvest, True), (k_ordinary, False)):
        owner = np.repeat(np.arange(n), counts)
        total = len(owner)
        t0 = sim.clock.sample_times_grouped(rng, counts, profiles, tzs, starts)
        recipes = draw(rng, mix if harvest else ORDINARY_MIX, total)
        turns = loop_turns(rng, recipes, code_steps) if harvest else np.minimum(rng.geometric(0.55, size=total), 5)
        sim.emit(rng, accts[owner], t0, recipes, rng.integers(0, 1 << 30, size=total), turns,
                 10 * SECOND if harvest else 70 * SECOND, loops=is_loop(recipes), gap_sigma=0.9,
                 ipx=rng.integers(0, 1 << 30, size=total) % n_ips[owner])
