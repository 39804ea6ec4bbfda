"""Randomised worlds: the `random` scenario draws every size, rate and mix from its seed.

The fixed scenarios are one point each in the space of populations a detector may meet; a detector
tuned on them can learn their constants (tens of accounts per campaign, hundreds of requests per
account, a 14-day window) instead of the behaviour. Here the window, the release, how many
campaigns of each kind run, their shape, size, per-account volume, harvest share, timing and
infrastructure sharing, and the size and volume of every legitimate population are drawn per seed
over wide ranges, then capped so that a world stays tractable on one machine. Everything drawn is
returned as a `WorldSpec` and written to `world.json`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from distillguard.sim.campaigns import (
    ADAPTIVE,
    AGENTIC_MIX,
    CODING_MIX,
    HYDRA_MIX,
    IMAGE_HOST_COUNT,
    ORDINARY_MIX,
    REASONING_MIX,
    Mix,
    _tier_contact,
    dc_blocks,
    draw,
    is_loop,
    loop_turns,
    round_robin,
)
from distillguard.sim.legit import TECH_COUNTRIES, choice
from distillguard.sim.population import Habits, Sim
from distillguard.sim.recipes import Recipe
from distillguard.sim.timing import DAY, HOUR, SECOND, WINDOW_START, Clock
from distillguard.sim.world import kind_index

# -- the ranges -----------------------------------------------------------------------------

WINDOW_DAYS_RANGE = (7, 21)
# The release falls between these fractions of the window, so there is traffic before and after it.
RELEASE_RANGE = (0.2, 0.8)
# Tractability at scale 1; both scale with --scale.
MAX_EXCHANGES = 600_000
MAX_CAMPAIGN_ACCOUNTS = 20_000
MAX_ACCOUNTS = 22_000
MIN_LEGIT_ACCOUNTS = 2_000
MIN_CAMPAIGN_ACCOUNTS = 3  # at small scales, as in the fixed scenarios

SHAPES = ("few-huge", "synchronized", "hydra", "spread")
# Accounts per campaign and exchanges per account and active day, log-uniform, by shape. Together
# they cover 5 to 20,000 accounts and a handful of exchanges to thousands a day.
SHAPE_ACCOUNTS: dict[str, tuple[float, float]] = {
    "few-huge": (5, 20), "synchronized": (5, 500), "spread": (20, 5000), "hydra": (200, 20_000),
}
SHAPE_PER_DAY: dict[str, tuple[float, float]] = {
    "few-huge": (100, 3000), "synchronized": (2, 200), "spread": (0.3, 50), "hydra": (0.5, 30),
}
SHAPES_OF_KIND: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "reasoning": (("synchronized", "spread", "few-huge"), (0.6, 0.3, 0.1)),
    "agentic": (("spread", "few-huge", "synchronized"), (0.6, 0.3, 0.1)),
    "coding": (("few-huge", "spread", "synchronized"), (0.5, 0.3, 0.2)),
    "hydra": (("hydra",), (1.0,)),
}
# How many campaigns of each kind a world runs (0 to 3), and the least a world has in all.
CAMPAIGNS_PER_KIND = ((0, 1, 2, 3), (0.3, 0.4, 0.2, 0.1))
MIN_CAMPAIGNS = 2
HARVEST_SHARE = (0.1, 1.0)
HYDRA_HARVEST_SHARE = (0.1, 0.7)  # a reseller always carries some resold customer traffic
HYDRA_ACTIVE_DAYS = (2.0, 5.0)

# Legitimate populations: accounts (log-uniform), volume multiplier of the generator's typical
# per-account traffic (log-uniform), and whether a few very heavy accounts of the type are added.
LEGIT_RANGES: dict[str, tuple[tuple[float, float], tuple[float, float], bool]] = {
    "chat_user": ((1500, 12_000), (0.5, 2.0), False),
    "enterprise_app": ((10, 600), (0.2, 5.0), True),
    "benchmark_runner": ((5, 400), (0.5, 4.0), True),
    "classroom": ((30, 1500), (0.5, 2.0), False),
    "agentic_dev": ((10, 1000), (0.3, 5.0), True),
    "eval_grader": ((5, 500), (0.3, 5.0), True),
    "reasoning_researcher": ((5, 500), (0.3, 5.0), True),
}
HEAVY_ACCOUNTS = (1, 5)
HEAVY_VOLUME = (10.0, 100.0)
HEAVY_P = 0.7

# Exchanges per account at volume 1 over 14 days (measured on `medium`), and the part of it that
# does not shrink with the volume (every account has at least one conversation, run or sweep).
# Used only to size a world before generating it; the measured total decides the final cap.
LEGIT_EXCHANGES: dict[str, tuple[float, float]] = {
    "chat_user": (11.1, 0.2), "enterprise_app": (218.0, 0.05), "benchmark_runner": (269.0, 0.6),
    "classroom": (21.0, 0.35), "agentic_dev": (74.0, 0.15), "eval_grader": (109.0, 0.5),
    "reasoning_researcher": (66.0, 0.5),
}

KIND_MIX: dict[str, Mix] = {"reasoning": REASONING_MIX, "agentic": AGENTIC_MIX, "coding": CODING_MIX, "hydra": HYDRA_MIX}
# Coding-loop lengths (p, cap) of the naive generators; adaptive ones use campaigns.ADAPTIVE.
NAIVE_CODE_STEPS: dict[str, tuple[float, int]] = {
    "reasoning": (0.5, 2), "agentic": (0.35, 8), "coding": (0.25, 12), "hydra": (0.5, 4),
}
# Wording offsets into the wrapper lists, as the naive generators use them.
KIND_OFFSET = {"reasoning": 0, "agentic": 0, "coding": 2, "hydra": 5}
KIND_TIERS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "reasoning": (("paid", "startup"), (0.8, 0.2)),
    "agentic": (("free", "paid", "education", "startup", "research"), (0.25, 0.35, 0.15, 0.15, 0.1)),
    "coding": (("paid", "startup"), (0.6, 0.4)),
    "hydra": (("free", "paid", "education", "startup", "research"), (0.35, 0.25, 0.2, 0.1, 0.1)),
}
ADAPTIVE_TIERS = (("free", "paid", "education", "startup", "research"), (0.3, 0.4, 0.1, 0.1, 0.1))
DC_COUNTRIES = ("US", "SG", "JP", "HK", "DE", "NL", "GB", "FR", "CA")
OPERATOR_TZS = (480, 480, 180, 60, 0, -300, 330, 540)
COVER_TURNS = 1.0 / 0.55  # mean of min(geometric(0.55), 5), near enough


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _r(x: float) -> float:
    """Drawn values are rounded before use, so the values written to world.json are the ones used."""
    return float(f"{x:.4g}")


# -- the spec -------------------------------------------------------------------------------

@dataclass
class CampaignSpec:
    name: str
    kind: str  # reasoning, agentic, coding, hydra
    variant: str  # naive (verbatim wordings) or adaptive (paraphrased and edited)
    shape: str  # few-huge, synchronized, hydra, spread
    actor_type: str
    accounts_drawn: int
    accounts: int  # after the account cap, before --scale
    per_day_drawn: float  # exchanges per account and active day
    per_day: float  # after the exchange cap
    harvest_share: float  # of an account's exchanges; the rest is ordinary (or resold) traffic
    timing: str  # synchronized, operator, blocks, diurnal
    operator_tz: int
    shared_network: float  # share of accounts on the campaign's own datacenter /24s
    n_ranges: int
    shared_client: bool  # one client and TLS stack for every account
    accounts_per_card: int
    shared_domain: float  # share of accounts on one email domain
    creation: str  # bursts, spread, waves
    uniform_options: bool  # identical max_tokens and temperature on every account
    pivot_share: float  # long-run share of traffic on the new model
    pivot_tau_h: float


@dataclass
class LegitSpec:
    actor_type: str
    heavy: bool
    accounts_drawn: int
    accounts: int
    volume_drawn: float  # multiplier of the generator's typical traffic per account, per 14 days
    volume: float  # after window length and the exchange cap


@dataclass
class WorldSpec:
    seed: int
    window_days: int
    release_hours: float  # after the window start
    legit: list[LegitSpec] = field(default_factory=list)
    campaigns: list[CampaignSpec] = field(default_factory=list)
    volume_factor: float = 1.0  # applied to every per-account volume to respect the exchange cap
    account_factor_legit: float = 1.0
    account_factor_campaigns: float = 1.0

    @property
    def clock(self) -> Clock:
        return Clock(days=self.window_days, release=WINDOW_START + round(self.release_hours * HOUR))

    def to_json(self) -> dict:
        return asdict(self)


def draw_spec(rng: np.random.Generator, seed: int) -> WorldSpec:
    """Every parameter of a world, before the caps; the order of draws is fixed."""
    days = int(rng.integers(WINDOW_DAYS_RANGE[0], WINDOW_DAYS_RANGE[1] + 1))
    release_h = _r(rng.uniform(*RELEASE_RANGE) * days * 24)
    spec = WorldSpec(seed=seed, window_days=days, release_hours=release_h)
    for actor, ((c_lo, c_hi), (v_lo, v_hi), heavy) in LEGIT_RANGES.items():
        n = round(log_uniform(rng, c_lo, c_hi))
        v = _r(log_uniform(rng, v_lo, v_hi))
        spec.legit.append(LegitSpec(actor, False, n, n, v, v))
        if heavy and rng.random() < HEAVY_P:
            k = int(rng.integers(HEAVY_ACCOUNTS[0], HEAVY_ACCOUNTS[1] + 1))
            hv = _r(log_uniform(rng, *HEAVY_VOLUME))
            spec.legit.append(LegitSpec(actor, True, k, k, hv, hv))

    from distillguard.sim.generator import CAMPAIGN_KINDS  # the kinds and their actor types

    counts = {kind: int(choice(rng, *CAMPAIGNS_PER_KIND)) for kind, *_ in CAMPAIGN_KINDS}
    while sum(counts.values()) < MIN_CAMPAIGNS:  # a world always holds something to find
        counts[choice(rng, [k for k, *_ in CAMPAIGN_KINDS])] += 1
    for kind, actor, *_ in CAMPAIGN_KINDS:
        for k in range(counts[kind]):
            spec.campaigns.append(_draw_campaign(rng, kind, actor, k + 1))
    return spec


def _draw_campaign(rng: np.random.Generator, kind: str, actor: str, index: int) -> CampaignSpec:
    adaptive = rng.random() < 0.5
    shape = choice(rng, *SHAPES_OF_KIND[kind])
    n = round(log_uniform(rng, *SHAPE_ACCOUNTS[shape]))
    per_day = _r(log_uniform(rng, *SHAPE_PER_DAY[shape]))
    share = _r(rng.uniform(*(HYDRA_HARVEST_SHARE if kind == "hydra" else HARVEST_SHARE)))
    if shape == "synchronized":
        timing = "synchronized"
    elif shape == "hydra":
        timing = "operator"
    elif shape == "few-huge":
        timing = choice(rng, ("operator", "blocks"), (0.7, 0.3))
    elif adaptive:
        timing = choice(rng, ("diurnal", "blocks", "operator"), (0.7, 0.15, 0.15))
    else:
        timing = choice(rng, ("blocks", "operator", "diurnal"), (0.5, 0.3, 0.2))
    # Naive campaigns share their infrastructure as reported; adaptive ones buy it per account.
    # Both are drawn, so some naive campaigns are careful and some adaptive ones are sloppy.
    shared_network = _r(rng.uniform(0.6, 1.0) if not adaptive else rng.uniform(0.0, 0.2))
    n_ranges = int(rng.integers(1, 7))
    shared_client = bool(rng.random() < (0.1 if adaptive else 0.85))
    per_card = 1 if adaptive and rng.random() < 0.8 else round(log_uniform(rng, 2, 10))
    shared_domain = _r(rng.uniform(0.0, 0.05) if adaptive else rng.uniform(0.2, 0.7))
    if kind == "hydra":
        creation = "waves"
    elif shape == "synchronized":
        creation = "bursts"  # the job queue balances over accounts that all exist from the start
    else:
        creation = "spread" if rng.random() < (0.8 if adaptive else 0.2) else "bursts"
    uniform_options = bool(rng.random() < (0.15 if adaptive else 0.85))
    if kind == "coding":  # the reported campaign moved half its traffic within a day
        pivot, tau = rng.uniform(0.3, 0.7), rng.uniform(4, 24)
    else:
        pivot, tau = rng.uniform(0.05, 0.5), rng.uniform(12, 72)
    variant = "adaptive" if adaptive else "naive"
    return CampaignSpec(
        name=f"{kind}-adaptive-{index}" if adaptive else f"{kind}-{index}", kind=kind, variant=variant, shape=shape,
        actor_type=f"{actor}_adaptive" if adaptive else actor, accounts_drawn=n, accounts=n, per_day_drawn=per_day,
        per_day=per_day, harvest_share=share, timing=timing, operator_tz=int(choice(rng, OPERATOR_TZS)),
        shared_network=shared_network, n_ranges=n_ranges, shared_client=shared_client, accounts_per_card=per_card,
        shared_domain=shared_domain, creation=creation, uniform_options=uniform_options, pivot_share=_r(pivot),
        pivot_tau_h=_r(tau),
    )


def cap_accounts(spec: WorldSpec) -> None:
    """Campaigns hold at most MAX_CAMPAIGN_ACCOUNTS; legitimate accounts give way to keep the world
    under MAX_ACCOUNTS (never below MIN_LEGIT_ACCOUNTS). Proportional, so every mix is kept."""
    c_total = sum(c.accounts_drawn for c in spec.campaigns)
    cf = min(1.0, MAX_CAMPAIGN_ACCOUNTS / c_total) if c_total else 1.0
    for c in spec.campaigns:
        c.accounts = max(5, round(c.accounts_drawn * cf))
    c_total = sum(c.accounts for c in spec.campaigns)
    heavy = sum(g.accounts_drawn for g in spec.legit if g.heavy)  # a handful, never scaled here
    l_total = sum(g.accounts_drawn for g in spec.legit if not g.heavy)
    room = max(MIN_LEGIT_ACCOUNTS, MAX_ACCOUNTS - c_total) - heavy
    lf = min(1.0, room / l_total)
    for g in spec.legit:
        g.accounts = g.accounts_drawn if g.heavy else max(2, round(g.accounts_drawn * lf))
    spec.account_factor_campaigns, spec.account_factor_legit = _r(cf), _r(lf)


def set_volume(spec: WorldSpec, factor: float) -> None:
    """Every per-account volume times `factor` (and legitimate ones times the window's length)."""
    spec.volume_factor = _r(factor)
    for g in spec.legit:
        g.volume = _r(g.volume_drawn * spec.window_days / 14 * spec.volume_factor)
    for c in spec.campaigns:
        c.per_day = _r(c.per_day_drawn * spec.volume_factor)


def _campaign_active_days(c: CampaignSpec, days: int) -> float:
    if c.kind == "hydra":
        return min(days, sum(HYDRA_ACTIVE_DAYS) / 2)
    return days * (0.95 if c.creation == "spread" else 1.0)


def expected_exchanges(spec: WorldSpec, scale: float) -> float:
    """A rough forecast of a world's exchanges, to choose the first volume factor."""
    total = 0.0
    for g in spec.legit:
        per, fixed = LEGIT_EXCHANGES[g.actor_type]
        total += scaled(g.accounts, scale, g.heavy) * per * (fixed + (1 - fixed) * g.volume)
    for c in spec.campaigns:
        total += scaled(c.accounts, scale) * c.per_day * _campaign_active_days(c, spec.window_days)
    return total


def scaled(accounts: int, scale: float, heavy: bool = False) -> int:
    """Accounts at `scale`, keeping a few of every group (and at least one of a heavy group)."""
    return max(1 if heavy else MIN_CAMPAIGN_ACCOUNTS, round(accounts * scale))


# -- the campaign generator -----------------------------------------------------------------

def _mean_turns(mix: Mix, code_steps: tuple[float, int]) -> float:
    """Expected requests per harvesting episode of `mix` (agent loops make several)."""
    recipes, p = mix
    w = np.asarray(p) / sum(p)
    agentic = sum(0.5 ** k for k in range(5))  # E[min(geometric(0.5), 5)]
    q, cap = code_steps
    code = 1 + sum((1 - q) ** k for k in range(cap - 1))  # E[min(1 + geometric(q), cap)]
    per = [agentic if r == Recipe.HARVEST_AGENTIC else code if r == Recipe.HARVEST_CODE else 1.0 for r in recipes]
    return float(np.dot(w, per))


def _creation(rng: np.random.Generator, c: CampaignSpec, clock: Clock, bursts: list[int], waves: list[int]) -> int:
    if c.creation == "bursts":
        return bursts[int(rng.integers(len(bursts)))] + int(rng.integers(0, 6 * HOUR))
    if c.creation == "waves":
        return waves[int(rng.integers(len(waves)))] + int(rng.integers(0, 6 * HOUR))
    if rng.random() < 0.1:  # a tenth opened during the window's first five sevenths
        return WINDOW_START + int(rng.uniform(0, clock.days * 5 / 7) * DAY)
    return WINDOW_START - int(rng.uniform(7, 270) * DAY)


def campaign(sim: Sim, rng: np.random.Generator, n: int, spec: CampaignSpec) -> None:
    """One campaign as `spec` describes it: its accounts, harvesting and cover traffic."""
    w, clock, kind = sim.world, sim.clock, spec.kind
    adaptive = spec.variant == "adaptive"
    countries = tuple(str(x) for x in rng.choice(DC_COUNTRIES, size=spec.n_ranges, replace=False))
    blocks = dc_blocks(w, rng, countries)
    if kind == "hydra":  # the reseller's backend: a common Python client stack
        kinds = (kind_index("litellm"), kind_index("OpenAI/Python 1.59"))
        shared_tls = w.tls_for(rng, kinds[0])
    else:  # the harvesting client's own TLS stack
        kinds = (kind_index("python-httpx"), kind_index("OpenAI/Python 1.63"), kind_index("Anthropic/Python 0.45"))
        shared_tls = w.random_ja4(rng)
    cards = sim.ids.hexes(max(1, -(-n // spec.accounts_per_card)))
    shared_domain = w.company_domain(rng)
    bursts = [WINDOW_START - int(rng.integers(8, 45)) * DAY for _ in range(3)]
    waves = [WINDOW_START + int(k) * DAY for k in range(-18, clock.days - 3, 4)]
    max_tokens = int(choice(rng, (4096, 8192, 16000, 32000)))
    temperature = float(choice(rng, (0.6, 0.7, 1.0)))
    tiers = ADAPTIVE_TIERS if adaptive else KIND_TIERS[kind]
    coding = kind in ("coding", "agentic")
    params_base = {"rubric": int(rng.integers(1 << 20)), "gen": int(rng.integers(16)),
                   "img_host": int(rng.integers(IMAGE_HOST_COUNT)), "toolset": int(kind == "hydra"),
                   "offset": KIND_OFFSET[kind], "user_system": -1}
    if adaptive:
        params_base["adaptive"] = 1

    accts = np.empty(n, dtype=np.int32)
    t0s, t1s, tzs, n_ips = (np.empty(n, dtype=np.int64) for _ in range(4))
    profiles: list[str] = []
    for j in range(n):
        if rng.random() < spec.shared_network:
            net, block = blocks[j % len(blocks)]
            ips = [w.in_block(rng, net, block) for _ in range(1 + int(rng.integers(2)))]
            country = choice(rng, countries)
        else:  # a proxy or home address of its own in the account's country
            country = w.pick_country(rng) if rng.random() < 0.7 else choice(rng, TECH_COUNTRIES)
            home = w.pick_network(rng, "residential" if rng.random() < 0.8 else "mobile", country)
            ips = [w.address(rng, home) for _ in range(1 + int(rng.random() < 0.4))]
        if spec.shared_client:
            client = (kinds[j % len(kinds)], shared_tls)
        else:
            client = w.client(rng, {"browser": 0.25, "sdk": 0.45, "http": 0.15, "agent": 0.15 if coding else 0.05},
                              rare_tls=0.3)
        tier = choice(rng, *tiers)
        domain, payment = _tier_contact(sim, rng, tier, country)
        if rng.random() < spec.shared_domain:
            domain = shared_domain
        if payment is not None:
            payment = cards[j % len(cards)]
        created = _creation(rng, spec, clock, bursts, waves)
        if spec.uniform_options:
            habits = Habits(max_tokens=max_tokens, temperature=temperature, stream_p=float(kind == "coding"),
                            flash_p=0.05, adopt_share=spec.pivot_share, adopt_tau_h=spec.pivot_tau_h, thinking_p=0.6)
        else:
            habits = Habits(
                max_tokens=choice(rng, (0, 2048, 4096, 8192, 16000)), temperature=choice(rng, (None, 0.7, 1.0, 0.5)),
                stream_p=float(rng.uniform(0, 1)), flash_p=float(rng.uniform(0, 0.4)),
                adopt_share=float(np.clip(spec.pivot_share + rng.normal(0, 0.1), 0, 1)),
                adopt_tau_h=spec.pivot_tau_h * float(rng.uniform(0.5, 2.0)), thinking_p=0.5,
            )
        accts[j] = sim.add_account(
            actor_type=spec.actor_type, campaign=spec.name, created_at=created, tier=tier,
            verified=rng.random() < (0.5 if adaptive else 0.3), email_domain=domain, country=country, payment=payment,
            ips=ips, clients=[client], habits=habits, sends_conversation_id=adaptive and rng.random() < 0.4,
            params={**params_base, "sys": j % 3 if not adaptive else int(rng.integers(3))},
        )
        t0s[j] = max(created + HOUR, WINDOW_START)
        # Hydra accounts are used for a few days, then rotated out; the others stay to the end.
        t1s[j] = min(t0s[j] + int(rng.uniform(*HYDRA_ACTIVE_DAYS) * DAY), clock.end) if kind == "hydra" else clock.end
        country_tz = w.tz_minutes(rng, country)
        tzs[j] = country_tz if spec.timing == "diurnal" else spec.operator_tz
        profiles.append(choice(rng, ("evening", "work", "student")) if spec.timing == "diurnal" else "operator")
        n_ips[j] = len(ips)

    # Volume: each account's exchanges over its active days, log-normal around the campaign's rate.
    active_days = np.maximum(t1s - t0s, 0) / DAY
    target = np.maximum(1, np.round(spec.per_day * active_days * rng.lognormal(0.0, 0.5, size=n))).astype(np.int64)
    target[t0s >= t1s] = 0  # opened too late to be used
    harvest = np.where(target > 0, np.maximum(1, np.round(target * spec.harvest_share)), 0).astype(np.int64)
    cover = target - harvest
    mix = KIND_MIX[kind]
    code_steps = ADAPTIVE[kind][2] if adaptive else NAIVE_CODE_STEPS[kind]
    gap_sigma = 0.9 if adaptive else 0.5
    extra = {"max_tokens": 16000} if kind == "hydra" else {}

    if spec.timing == "synchronized":
        round_robin(sim, rng, accts, int(harvest.sum()), mix, spec.operator_tz,
                    lambda who: rng.integers(0, 1 << 30, size=len(who)) % n_ips[who])
    else:
        k_h = np.maximum(np.where(harvest > 0, 1, 0), np.round(harvest / _mean_turns(mix, code_steps))).astype(np.int64)
        starts = _episode_starts(sim, rng, k_h, spec.timing, profiles, tzs, t0s, t1s)
        owner = np.repeat(np.arange(n), k_h)
        recipes = draw(rng, mix, len(owner))
        sim.emit(rng, accts[owner], starts, recipes, rng.integers(0, 1 << 30, size=len(owner)),
                 loop_turns(rng, recipes, code_steps), (5 if kind == "coding" else 4) * SECOND,
                 loops=is_loop(recipes), gap_sigma=gap_sigma,
                 ipx=rng.integers(0, 1 << 30, size=len(owner)) % n_ips[owner], **extra)
    # Cover traffic: ordinary conversations (a reseller's resold customers in the evening).
    k_c = np.round(cover / COVER_TURNS).astype(np.int64)
    if k_c.sum():
        owner = np.repeat(np.arange(n), k_c)
        cover_tz = tzs if spec.timing == "diurnal" else np.full(n, spec.operator_tz)
        starts = _episode_starts(sim, rng, k_c, "cover", ["evening"] * n, cover_tz, t0s, t1s)
        sim.emit(rng, accts[owner], starts, draw(rng, ORDINARY_MIX, len(owner)),
                 rng.integers(0, 1 << 30, size=len(owner)), np.minimum(rng.geometric(0.55, size=len(owner)), 5),
                 60 * SECOND, gap_sigma=0.9, ipx=rng.integers(0, 1 << 30, size=len(owner)) % n_ips[owner],
                 **({"max_tokens": 4096} if kind == "hydra" else {}))


def _episode_starts(
    sim: Sim, rng: np.random.Generator, counts: np.ndarray, timing: str, profiles: list[str], tzs: np.ndarray,
    t0s: np.ndarray, t1s: np.ndarray,
) -> np.ndarray:
    """Episode start times of every account, concatenated in account order."""
    clock = sim.clock
    out: list[np.ndarray] = []
    for j, k in enumerate(counts.tolist()):
        if k == 0:
            continue
        if timing == "blocks":
            # Machine-paced work blocks of 10 to 60 episodes, 20-60 s apart, on some of the active days.
            n_blocks = max(1, math.ceil(k / rng.uniform(10, 60)))
            sizes = np.bincount(rng.integers(0, n_blocks, size=k), minlength=n_blocks)
            b0 = clock.sample_times(rng, n_blocks, "operator", int(tzs[j]), int(t0s[j]), int(t1s[j]))
            gaps = rng.integers(20 * SECOND, 60 * SECOND, size=k)
            block = np.repeat(np.arange(n_blocks), sizes)
            cum = np.cumsum(gaps)
            first = np.cumsum(sizes) - sizes
            out.append(np.sort(b0[block] + cum - cum[first][block]))
        else:
            out.append(clock.sample_times(rng, k, profiles[j], int(tzs[j]), int(t0s[j]), int(t1s[j])))
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)



