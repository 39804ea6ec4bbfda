"""Legitimate actors: ordinary users and every hard case a detector must not flag.

Each generator registers `n` accounts of one actor type and their exchanges. Hard cases share the
surface features of campaigns on purpose (templates at volume, bursts, shared IPs, tool use,
judge prompts, step-by-step elicitation, fast adoption of a new model); what they lack is the
combination and the coordination.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

import numpy as np

from distillguard.sim import text as tx
from distillguard.sim.population import Habits, Sim
from distillguard.sim.recipes import Recipe
from distillguard.sim.timing import (
    DAY,
    FLASH,
    HOUR,
    MINUTE,
    NEW,
    PRO,
    SECOND,
    WINDOW_START,
)
from distillguard.sim.world import VPN_ASNS, Address, World, kind_index, weighted_index

TECH_COUNTRIES = ("US", "US", "US", "GB", "DE", "FR", "CA", "IN", "JP", "KR", "NL", "SG", "IL", "PL", "BR", "AU", "SE", "CH")
MAX_LOOP_STEPS = 20
T = TypeVar("T")


def choice(rng: np.random.Generator, options: tuple[T, ...] | list[T], p: tuple[float, ...] | None = None) -> T:
    if p is None:
        return options[int(rng.integers(len(options)))]
    return options[weighted_index(rng, p)]


def created_before(rng: np.random.Generator, median_days: float, sigma: float = 1.0, max_days: float = 1100) -> int:
    """An account creation time before the window, log-normally distributed in age."""
    age = min(max_days, rng.lognormal(np.log(median_days), sigma))
    return int(WINDOW_START - age * DAY - rng.integers(0, DAY))


def n_from(rng: np.random.Generator, median: float, sigma: float, lo: int, hi: int) -> int:
    """A log-normal count clipped to [lo, hi]."""
    return min(hi, max(lo, round(rng.lognormal(np.log(median), sigma))))


def rand_items(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 1 << 30, size=n)


def vpn_address(w: World, rng: np.random.Generator) -> Address:
    nets = [n for n in w.networks_of("datacenter") if n.asn in VPN_ASNS]
    return w.address(rng, nets[int(rng.integers(len(nets)))])


def home_ips(w: World, rng: np.random.Generator, country: str, mobile_p: float = 0.3, vpn_p: float = 0.05) -> list[Address]:
    """A residential address, sometimes a renewed lease, a phone and a VPN exit."""
    home = w.pick_network(rng, "residential", country)
    ips = [w.address(rng, home)]
    if rng.random() < 0.2:
        ips.append(w.address(rng, home))
    if rng.random() < mobile_p:
        ips.append(w.address(rng, w.pick_network(rng, "mobile", country)))
    if rng.random() < vpn_p:
        ips.append(vpn_address(w, rng))
    return ips


def ip_choice(rng: np.random.Generator, n_ips: int, n: int) -> np.ndarray:
    """Per-episode address index: mostly the first (home) address."""
    if n_ips == 1:
        return np.zeros(n, dtype=np.int16)
    p = np.r_[3.0, np.ones(n_ips - 1)]
    return rng.choice(n_ips, size=n, p=p / p.sum()).astype(np.int16)


def recipe_mix(rng: np.random.Generator, recipes: tuple[Recipe, ...], weights: tuple[float, ...], n: int,
               concentration: float = 8.0) -> np.ndarray:
    """Per-episode recipes, with each account's own tilt around the actor type's mix."""
    p = rng.dirichlet(np.asarray(weights) * concentration)
    return np.asarray(recipes, dtype=np.int16)[rng.choice(len(recipes), size=n, p=p)]


# -- chat users -----------------------------------------------------------------------------

def chat_users(sim: Sim, rng: np.random.Generator, n: int, volume: float = 1.0) -> None:
    """Ordinary users: conversations in the evening of their own time zone, from home and phone.

    `volume` multiplies the typical number of conversations (as in every generator here)."""
    w = sim.world
    countries = rng.choice(len(w.country_names), size=n, p=w.country_p)
    accts = np.empty(n, dtype=np.int32)
    tzs = np.empty(n, dtype=np.int64)
    n_ips = np.empty(n, dtype=np.int64)
    n_clients = np.empty(n, dtype=np.int64)
    for i in range(n):
        country = w.country_names[countries[i]]
        tzs[i] = w.tz_minutes(rng, country)
        ips = home_ips(w, rng, country)
        clients = [w.client(rng, {"browser": 0.5, "sdk": 0.35, "http": 0.15}, rare_tls=0.04)]
        if rng.random() < 0.25:
            clients.append(w.client(rng, {"browser": 1.0}))
        paid = rng.random() < 0.45
        app_like = clients[0][0] in w.kinds_by_family["browser"]
        habits = Habits(
            max_tokens=choice(rng, (0, 0, 1024, 2048, 4096, 8192)),
            temperature=choice(rng, (None, None, 0.7, 1.0, 0.5, 0.2)),
            stream_p=0.85 if app_like else 0.3,
            flash_p=float(rng.beta(2, 3)),
            adopt_share=float(rng.beta(1.5, 4)),
            adopt_tau_h=float(rng.uniform(12, 120)),
            thinking_p=0.15,
        )
        accts[i] = sim.add_account(
            actor_type="chat_user", campaign="", created_at=created_before(rng, 200), tier="paid" if paid else "free",
            verified=rng.random() < 0.6, email_domain=w.free_mail(rng) if rng.random() < 0.85 else w.company_domain(rng),
            country=country, payment=sim.ids.hexes(1)[0] if paid else None, ips=ips, clients=clients, habits=habits,
            n_keys=1 + int(rng.random() < 0.2), sends_conversation_id=app_like or rng.random() < 0.3,
            params={"user_system": int(rng.integers(len(tx.USER_SYSTEM_PROMPTS))) if rng.random() < 0.3 else -1,
                    "img_host": int(rng.integers(len(tx.IMAGE_HOSTS)))},
        )
        n_ips[i], n_clients[i] = len(ips), len(clients)
    # Conversations of all users at once: counts, times, lengths, kinds, address and client used.
    n_conv = 1 + rng.poisson(rng.lognormal(np.log(3.0 * volume), 0.9, size=n))
    owner = np.repeat(np.arange(n), n_conv)
    total = len(owner)
    starts = sim.clock.sample_times_grouped(rng, n_conv, "evening", tzs)
    # A few users sign up during the window, shortly before their first conversation.
    first = starts[np.cumsum(n_conv) - n_conv]
    for i in np.flatnonzero(rng.random(n) < 0.04):
        sim.accounts[accts[i]].created_at = int(first[i] - rng.integers(MINUTE, 3 * HOUR))
    tilt = rng.dirichlet(np.array([0.72, 0.1, 0.1, 0.08]) * 8.0, size=n).cumsum(axis=1)
    kind = np.minimum((rng.random(total)[:, None] > tilt[owner]).sum(axis=1), 3)
    recipes = np.array([Recipe.CHAT, Recipe.CHAT_MATH, Recipe.CHAT_CODE, Recipe.CHAT_IMAGE], dtype=np.int16)[kind]
    home_first = rng.random(total) < 3.0 / (n_ips[owner] + 2.0)  # home weighs 3, each other address 1
    ipx = np.where(home_first | (n_ips[owner] == 1), 0, 1 + rng.integers(0, 1 << 30, size=total) % np.maximum(n_ips[owner] - 1, 1))
    sim.emit(rng, accts[owner], starts, recipes, rand_items(rng, total), np.minimum(rng.geometric(0.5, size=total), 12),
             75 * SECOND, gap_sigma=0.9, ipx=ipx, cli=rng.integers(0, 1 << 30, size=total) % n_clients[owner])


# -- enterprise apps ------------------------------------------------------------------------

def enterprise_apps(sim: Sim, rng: np.random.Generator, n: int, volume: float = 1.0) -> None:
    """Organisations running one templated workload per account, around the clock, from their cloud."""
    w = sim.world
    left = n
    while left > 0:
        size = min(left, int(rng.geometric(0.3)))
        left -= size
        country = choice(rng, ("US", "US", "GB", "DE", "JP", "IN", "FR", "CA", "AU", "NL", "SG", "KR", "BR"))
        tz = w.tz_minutes(rng, country)
        cloud = w.pick_network(rng, "datacenter", country)
        blocks = [w.block(rng, cloud) for _ in range(1 + int(rng.random() < 0.4))]
        nat = [w.in_block(rng, cloud, blocks[i % len(blocks)]) for i in range(2 + int(rng.integers(3)))]
        kind, tls = w.client(rng, {"sdk": 0.7, "http": 0.3})
        domain = w.company_domain(rng)
        org_id = sim.ids.one("org_")
        payment = sim.ids.hexes(1)[0]
        families = rng.choice(len(tx.ENTERPRISE_FAMILIES), size=2, replace=False)
        pinned = rng.random() < 0.8
        created = created_before(rng, 400, 0.6)
        base = Habits(
            max_tokens=choice(rng, (256, 512, 1024, 2048)), temperature=choice(rng, (0.0, 0.2, 0.3, None)),
            stream_p=0.0 if rng.random() < 0.8 else 1.0, flash_p=float(rng.choice((0.0, 0.5, 1.0))),
            adopt_share=0.0 if pinned else float(rng.uniform(0.5, 1.0)), adopt_tau_h=6.0,
            adopt_delay_h=float(rng.uniform(48, 120)), thinking_p=0.05,
        )
        for j in range(size):
            family = int(families[j % 2 if rng.random() < 0.8 else 0])
            habits = replace(base, out_scale={3: 0.03, 2: 0.5}.get(family, 1.0))
            acct = sim.add_account(
                actor_type="enterprise_app", campaign="",
                created_at=min(created + int(rng.integers(0, 30 * DAY)), WINDOW_START - DAY),
                tier="enterprise" if rng.random() < 0.85 else "paid", verified=True, email_domain=domain,
                country=country, payment=payment, ips=nat, clients=[(kind, tls)], habits=habits, org_id=org_id,
                n_keys=1 + int(rng.integers(3)),
                params={"family": family, "lang": int(rng.integers(len(tx.LANGUAGES))),
                        "img_host": int(rng.integers(len(tx.IMAGE_HOSTS)))},
            )
            k = n_from(rng, 150 * volume, 0.9, 20, max(20, round(3000 * volume)))
            starts = sim.clock.sample_times(rng, k, "service", tz)
            receipt_p = 0.3 if family == 2 else 0.0
            recipes = np.where(rng.random(k) < receipt_p, Recipe.ENTERPRISE_RECEIPT, Recipe.ENTERPRISE)
            sim.emit(rng, acct, starts, recipes, rand_items(rng, k), 1, 1.0,
                     ipx=rng.integers(0, len(nat), size=k), key=rng.integers(0, 3, size=k))


# -- benchmark runners ----------------------------------------------------------------------

# Run sizes: subsets, full test sets, and several samples per problem for pass@k.
_BENCH_SIZES = {
    Recipe.BENCH_MATH: ((50, 100, 200, 500, 1319), (0.35, 0.3, 0.2, 0.1, 0.05)),
    Recipe.BENCH_CODE: ((164, 164, 328, 820), (0.6, 0.2, 0.15, 0.05)),
    Recipe.BENCH_TOOLS: ((50, 100, 200), (0.4, 0.4, 0.2)),
}


def _run(sim: Sim, rng: np.random.Generator, acct: int, start: int, bench: Recipe, model: int) -> None:
    """One harness run over a benchmark: back-to-back requests at a steady concurrency."""
    sizes, p = _BENCH_SIZES[bench]
    size = int(choice(rng, sizes, p))
    rate = rng.uniform(0.3, 2.5)  # requests per second
    starts = start + (np.arange(size) * (SECOND / rate)).astype(np.int64) + rng.integers(0, 400, size=size)
    offset = int(rng.integers(0, 1 << 20))
    items = offset + np.arange(size)
    sim.emit(rng, acct, starts, int(bench), items, 1, 1.0, model=model,
             max_tokens=int(choice(rng, (2048, 4096, 8192, 16384))))


def benchmark_runners(sim: Sim, rng: np.random.Generator, n: int, volume: float = 1.0) -> None:
    """Teams evaluating the model: bursts of thousands of templated requests, then silence.

    A run's size is the benchmark's, so `volume` sets the number of runs (at least one)."""
    n_pre, n_post = max(1, round(volume)), max(1, round(volume / 2))
    w = sim.world
    left = n
    while left > 0:
        size = min(left, 1 + int(rng.integers(3)))
        left -= size
        country = choice(rng, TECH_COUNTRIES)
        tz = w.tz_minutes(rng, country)
        net = w.pick_network(rng, "datacenter") if rng.random() < 0.7 else w.campus_network(country)
        block = w.block(rng, net)
        org_id, payment = sim.ids.one("org_"), sim.ids.hexes(1)[0]
        domain = w.company_domain(rng) if net.kind == "datacenter" else w.campus_domain(rng, country)
        tier = choice(rng, ("paid", "startup", "research", "enterprise"), (0.35, 0.25, 0.25, 0.15))
        for _ in range(size):
            kind = kind_index(choice(rng, ("OpenAI/Python", "Anthropic/Python", "python-httpx", "litellm", "python-requests")))
            acct = sim.add_account(
                actor_type="benchmark_runner", campaign="", created_at=created_before(rng, 150),
                tier=tier, verified=rng.random() < 0.8, email_domain=domain, country=country, payment=payment,
                ips=[w.in_block(rng, net, block) for _ in range(1 + int(rng.integers(2)))],
                clients=[(kind, w.tls_for(rng, kind, 0.05))],
                habits=Habits(temperature=choice(rng, (0.0, 0.0, 0.6, None)), flash_p=0.4, thinking_p=0.5),
                org_id=org_id, params={"harness": int(rng.integers(12)), "shots": int(rng.integers(1 << 20))},
            )
            benches = (Recipe.BENCH_MATH, Recipe.BENCH_CODE, Recipe.BENCH_TOOLS)
            for t in sim.clock.sample_times(rng, n_pre, "work", tz, end=sim.clock.release):
                _run(sim, rng, acct, int(t), choice(rng, benches, (0.45, 0.3, 0.25)), choice(rng, (PRO, FLASH)))
            if rng.random() < 0.5:  # evaluate the new model soon after its release
                t = sim.clock.release + int(rng.lognormal(np.log(18), 0.7) * HOUR)
                if t < sim.clock.end:
                    _run(sim, rng, acct, t, choice(rng, benches, (0.45, 0.3, 0.25)), NEW)
                if n_post > 1:  # heavy teams keep evaluating the new model after the first run
                    for t in sim.clock.sample_times(rng, n_post - 1, "work", tz, start=sim.clock.release):
                        _run(sim, rng, acct, int(t), choice(rng, benches, (0.45, 0.3, 0.25)), NEW)


# -- classrooms -----------------------------------------------------------------------------

def classrooms(sim: Sim, rng: np.random.Generator, n: int, volume: float = 1.0) -> None:
    """Students behind one campus NAT, accounts created at term start, assignment bursts in class."""
    w = sim.world
    left = n
    while left > 0:
        size = min(left, int(rng.integers(30, 81)))
        if 0 < left - size < 30:
            size = left
        left -= size
        country = choice(rng, ("US", "US", "GB", "IN", "DE", "CA", "AU", "JP", "KR", "BR", "SG", "NL", "FR"))
        tz = w.tz_minutes(rng, country)
        net = w.campus_network(country)
        nat = w.in_block(rng, net, w.block(rng, net))
        domain = w.campus_domain(rng, country)
        course = int(rng.integers(2))  # 0 maths, 1 programming
        assignment = int(rng.integers(len(tx.CLASS_ASSIGNMENTS)))
        term_start = WINDOW_START - int(rng.integers(4, 10)) * DAY
        days = choice(rng, ((0, 2), (1, 3), (0, 3), (2, 4)))
        hour = int(rng.integers(9, 16))
        classes = [WINDOW_START + (week * 7 + d) * DAY + hour * HOUR - tz * MINUTE
                   for week in range(-(-sim.clock.days // 7)) for d in days]
        problems = int(rng.integers(1 << 20))
        for _ in range(size):
            kind, tls = w.client(rng, {"browser": 0.9, "sdk": 0.1})
            ips = [nat, *home_ips(w, rng, country, mobile_p=0.5, vpn_p=0.02)]
            acct = sim.add_account(
                actor_type="classroom", campaign="", created_at=term_start + int(rng.integers(0, 3 * DAY)),
                tier="education", verified=rng.random() < 0.4, email_domain=domain, country=country, payment=None,
                ips=ips, clients=[(kind, tls)],
                habits=Habits(stream_p=0.8, flash_p=0.7, adopt_share=0.2, adopt_tau_h=72.0, thinking_p=0.05),
                sends_conversation_id=True,
                params={"course": course, "assignment": assignment, "user_system": -1},
            )
            starts, items, recipes, ipx = [], [], [], []
            for s, t0 in enumerate(classes):
                if rng.random() < 0.85:
                    k = 1 + int(rng.poisson(1.5 * volume))
                    starts.append(t0 + rng.integers(5 * MINUTE, 80 * MINUTE, size=k))
                    items.append(problems + s * 5 + rng.integers(0, 5, size=k))
                    recipes.append(np.full(k, Recipe.CLASS_ASSIGNMENT))
                    ipx.append(np.zeros(k, dtype=np.int16))
            k = int(rng.poisson(3 * volume))
            starts.append(sim.clock.sample_times(rng, k, "student", tz))
            items.append(problems + rng.integers(0, 5 * len(classes), size=k))
            recipes.append(np.where(rng.random(k) < 0.6, Recipe.CLASS_ASSIGNMENT, Recipe.CHAT))
            ipx.append(np.where(rng.random(k) < 0.3, 0, rng.integers(1, len(ips), size=k)).astype(np.int16))
            start_a = np.concatenate(starts)
            order = np.argsort(start_a, kind="stable")
            m = len(start_a)
            if m == 0:  # absent all fortnight: one evening question
                start_a, order, m = sim.clock.sample_times(rng, 1, "student", tz), np.zeros(1, dtype=np.int64), 1
                items, recipes, ipx = [np.array([problems])], [np.array([Recipe.CHAT])], [np.zeros(1, np.int16)]
            sim.emit(rng, acct, start_a[order], np.concatenate(recipes)[order], np.concatenate(items)[order],
                     np.minimum(rng.geometric(0.55, size=m), 6), 90 * SECOND, ipx=np.concatenate(ipx)[order])


# -- agentic developers ---------------------------------------------------------------------

_AGENT_UA = {"aider": "aider/", "Cline": "Cline/", "Continue": "Continue/", "RooCode": "RooCode/", "opencode": "opencode/"}


def agentic_devs(sim: Sim, rng: np.random.Generator, n: int, volume: float = 1.0) -> None:
    """Developers using coding agents: tool loops with growing context in working hours."""
    w = sim.world
    agents = list(tx.AGENT_TOOLS)
    for _ in range(n):
        country = choice(rng, TECH_COUNTRIES)
        tz = w.tz_minutes(rng, country)
        ips = home_ips(w, rng, country, mobile_p=0.1, vpn_p=0.08)
        if rng.random() < 0.4:  # office egress
            office = w.pick_network(rng, "datacenter", country)
            ips.insert(0, w.address(rng, office))
        agent = int(choice(rng, range(len(agents)), (0.2, 0.3, 0.2, 0.15, 0.15)))
        kind = kind_index(_AGENT_UA[agents[agent]])
        clients = [(kind, w.tls_for(rng, kind, 0.03))]
        if rng.random() < 0.3:
            clients.append(w.client(rng, {"sdk": 1.0}))
        tier = choice(rng, ("paid", "startup", "enterprise", "free"), (0.6, 0.22, 0.1, 0.08))
        acct = sim.add_account(
            actor_type="agentic_dev", campaign="", created_at=created_before(rng, 250), tier=tier,
            verified=rng.random() < 0.7, email_domain=w.company_domain(rng) if rng.random() < 0.5 else w.free_mail(rng),
            country=country, payment=None if tier == "free" else sim.ids.hexes(1)[0], ips=ips, clients=clients,
            habits=Habits(
                max_tokens=choice(rng, (8192, 16384, 32000, 0)), temperature=choice(rng, (0.0, None)), stream_p=0.95,
                flash_p=0.15, adopt_share=float(rng.uniform(0.3, 0.9)), adopt_tau_h=float(rng.uniform(6, 72)),
                thinking_p=0.4,
            ),
            n_keys=1 + int(rng.integers(2)), sends_conversation_id=rng.random() < 0.3, params={"agent": agent},
        )
        n_sessions = 1 + int(rng.poisson(rng.lognormal(np.log(4.0 * volume), 0.9)))
        steps = np.minimum(1 + rng.geometric(0.13, size=n_sessions), MAX_LOOP_STEPS)
        starts = sim.clock.sample_times(rng, n_sessions, "work", tz)
        sim.emit(rng, acct, starts, int(Recipe.DEV_SESSION), rand_items(rng, n_sessions), steps, 9 * SECOND,
                 loops=True, gap_sigma=0.8, ipx=ip_choice(rng, len(ips), n_sessions), cli=0)


# -- eval graders ---------------------------------------------------------------------------

def eval_graders(sim: Sim, rng: np.random.Generator, n: int, volume: float = 1.0) -> None:
    """Teams using the model as a judge: one rubric template filled with their data, in runs."""
    w = sim.world
    left = n
    while left > 0:
        size = min(left, 1 + int(rng.integers(2)))
        left -= size
        country = choice(rng, TECH_COUNTRIES)
        tz = w.tz_minutes(rng, country)
        net = w.pick_network(rng, "datacenter")
        block = w.block(rng, net)
        org_id, payment, domain = sim.ids.one("org_"), sim.ids.hexes(1)[0], w.company_domain(rng)
        # Template choices are taken modulo the number of packaged judge templates when rendered.
        rubric, rubric2 = int(rng.integers(1 << 20)), int(rng.integers(1 << 20)) * int(rng.random() < 0.4)
        for _ in range(size):
            kind = kind_index(choice(rng, ("OpenAI/Python", "Anthropic/Python", "python-httpx", "litellm")))
            acct = sim.add_account(
                actor_type="eval_grader", campaign="", created_at=created_before(rng, 180),
                tier=choice(rng, ("paid", "startup", "enterprise")), verified=rng.random() < 0.8, email_domain=domain,
                country=country, payment=payment, ips=[w.in_block(rng, net, block)],
                clients=[(kind, w.tls_for(rng, kind, 0.03))],
                habits=Habits(max_tokens=choice(rng, (512, 1024, 2048)), temperature=0.0, flash_p=0.3, thinking_p=0.1,
                              adopt_share=0.15, adopt_tau_h=96.0),
                org_id=org_id,
                params={"rubric": rubric, "rubric2": rubric2, "criterion": int(rng.integers(len(tx.PROMETHEUS_RUBRICS)))},
            )
            n_runs = 1 + int(rng.poisson(1.0 * volume))
            for t in sim.clock.sample_times(rng, n_runs, "work", tz):
                size_run = n_from(rng, 40, 0.8, 10, 600)
                rate = rng.uniform(0.5, 4.0)
                starts = int(t) + (np.arange(size_run) * (SECOND / rate)).astype(np.int64)
                sim.emit(rng, acct, starts, int(Recipe.GRADER), int(rng.integers(1 << 20)) + np.arange(size_run), 1, 1.0)


# -- reasoning researchers ------------------------------------------------------------------

def reasoning_researchers(sim: Sim, rng: np.random.Generator, n: int, volume: float = 1.0) -> None:
    """Researchers probing chain of thought: conversations and small sweeps of elicitation prompts."""
    w = sim.world
    campuses = [w.campus_network(choice(rng, TECH_COUNTRIES)) for _ in range(max(1, n // 12))]
    for _ in range(n):
        net = campuses[int(rng.integers(len(campuses)))]
        country = net.country
        tz = w.tz_minutes(rng, country)
        ips = [w.address(rng, net), *home_ips(w, rng, country, mobile_p=0.1)]
        clients = [w.client(rng, {"sdk": 0.6, "http": 0.2, "browser": 0.2}, rare_tls=0.03)]
        research = rng.random() < 0.7
        acct = sim.add_account(
            actor_type="reasoning_researcher", campaign="", created_at=created_before(rng, 220),
            tier="research" if research else "paid", verified=rng.random() < 0.85,
            email_domain=w.campus_domain(rng, country) if rng.random() < 0.7 else w.company_domain(rng),
            country=country, payment=sim.ids.hexes(1)[0], ips=ips, clients=clients,
            habits=Habits(max_tokens=choice(rng, (4096, 8192, 16000, 0)), temperature=choice(rng, (None, 0.0, 0.7, 1.0)),
                          stream_p=0.3, flash_p=0.2, adopt_share=0.6, adopt_tau_h=24.0, thinking_p=0.7),
            sends_conversation_id=rng.random() < 0.4, params={"user_system": -1},
        )
        n_conv = 1 + int(rng.poisson(rng.lognormal(np.log(8.0 * volume), 0.7)))
        recipes = recipe_mix(rng, (Recipe.RESEARCH_EXPLAIN, Recipe.RESEARCH_ORCA, Recipe.CHAT), (0.5, 0.3, 0.2), n_conv)
        turns = np.minimum(rng.geometric(0.4, size=n_conv), 8)
        sim.emit(rng, acct, sim.clock.sample_times(rng, n_conv, "work", tz), recipes, rand_items(rng, n_conv), turns,
                 120 * SECOND, ipx=ip_choice(rng, len(ips), n_conv))
        for t in sim.clock.sample_times(rng, int(rng.random() < 0.4) + int(rng.random() < 0.15), "work", tz):
            k = n_from(rng, 60, 0.6, 20, 200)
            starts = int(t) + (np.arange(k) * SECOND * rng.uniform(1, 5)).astype(np.int64)
            recipe = choice(rng, (Recipe.RESEARCH_ORCA, Recipe.RESEARCH_EXPLAIN))
            sim.emit(rng, acct, starts, int(recipe), int(rng.integers(1 << 20)) + np.arange(k), 1, 1.0, ipx=0)
