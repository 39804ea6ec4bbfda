"""Distillation campaigns of four shapes, each played naive or evasive.

naive: one template wording with slots, shared infrastructure, machine-regular timing.
evasive: paraphrased wordings, randomised human-like timing, distinct addresses, cards and client
fingerprints per account, smaller accounts, ordinary traffic mixed in, moves to new models.
"""

from __future__ import annotations

import math
import random

import numpy as np

from . import infra as I
from . import wording as W
from .entities import Account, Activity, SessionBatch
from .infra import Addr, Client
from .population import Builder, _geom_turns, _lognormal_turns
from .rand import np_stream, probs, py_stream
from .timing import DAY, diurnal_times, regular_times

_THROWAWAY_DOMAINS = (
    "inboxkit.net",
    "mailnest.org",
    "quickpost.email",
    "fastbox.cc",
    "nulmail.io",
    "postdrop.me",
)
_SHELL_WORDS = ("apex", "nova", "prime", "zen", "core", "meta", "omni", "star")
_SHELL_NOUNS = ("tech", "soft", "data", "cloud", "ai", "systems", "digital")



def _campaign_account(b: Builder, c: dict, rng: random.Random, **fields: object) -> Account:
    """An account of campaign `c`: its kind, label, id, shape and tactic, in no organisation, in the
    operator's time zone unless `tz` says otherwise."""
    fields.setdefault("tz", c["operator_tz"])
    return b.add_account(rng, actor_type=c["kind"], org_id=None, label="campaign",
                         campaign=(c["campaign_id"], c["shape"]), tactic=c["tactic"], **fields)

def _campaign_models(
    b: Builder, c: dict, rng: random.Random, base: dict[int, float] | None = None
) -> tuple[dict[int, float], list]:
    weights = base or {0: 0.85, 1: 0.15}
    adopt = []
    share = c.get("move_share", 0.0)
    if share > 0:
        for j in range(b.n_existing, len(b.models)):
            t = b.models[j]["released_at"] + c.get(
                "move_delay_hours", rng.uniform(2, 24)
            ) * 3600 * rng.uniform(0.7, 1.3)
            adopt.append((j, t, min(0.98, share * rng.uniform(0.85, 1.1))))
    return weights, adopt


def _created(b: Builder, rng: random.Random, ev: bool, burst_at: float) -> float:
    if ev:  # aged or bought accounts, created over months
        return b.created_before(rng, 20, 500)
    return burst_at + rng.uniform(0, 3 * 3600)  # a registration script: one afternoon


def _ordinary(
    b: Builder, acct: Account, share: float, harvest_sessions: int, npr: np.random.Generator, models: tuple
) -> None:
    """Real-looking traffic an evasive operator mixes in to dilute the account's profile."""
    if share <= 0 or harvest_sessions <= 0:
        return
    k = max(1, int(npr.poisson(harvest_sessions * share / (1 - share))))
    act = b.activity(
        acct, random.Random(acct.idx).choice(("chat", "coding_help", "math_homework")), models=models
    )
    starts = diurnal_times(npr, k, b.t0, b.days, acct.tz, "evening", b.dayw(1.0))
    act.batches.append(SessionBatch(starts, _geom_turns(npr, k, 2.0), 45.0, 1.0))


def _evasive_addrs(b: Builder, rng: random.Random) -> tuple[list[Addr], list[float], str]:
    """Bought infrastructure: a residential proxy exit or a VPS in a random country, one per account."""
    if rng.random() < 0.55:
        country = b.country(rng)
        return [b.nets.address(rng, b.nets.pick(rng, "residential", country))], [1.0], country
    net = b.nets.pick(rng, "cloud")
    return [b.nets.address(rng, net)], [1.0], b.country(rng)


# ---------------------------------------------------------------- few-huge: agentic coding at volume


def build_few_huge(b: Builder, c: dict) -> None:
    rng = py_stream(b.seed, "camp", c["campaign_id"], c["tactic"])
    npr = np_stream(b.seed, "camp", c["campaign_id"], c["tactic"])
    ev = c["tactic"] == "evasive"
    net = b.nets.pick(rng, "cloud")
    shared_ips = [b.nets.address(rng, net, v6=False) for _ in range(c["n_shared_ips"])]
    harness = I.make_client(
        rng,
        rng.choice(("httpx", "go", "openai-python", "aiohttp")),
        tls_override=I.ja3(f"harness:{c['campaign_id']}"),
    )
    cards = [I.payment_fp(rng) for _ in range(c["n_shared_cards"])]
    shell = I.company_domain(rng, _SHELL_WORDS, _SHELL_NOUNS)
    burst = b.t0 - rng.uniform(5, 40) * DAY
    start = b.t0 + c["start_day"] * DAY
    kinds = ("h_agentic_coding", "h_tool_use", "h_coding")
    tools = W.DEV_TOOLS[rng.randrange(len(W.DEV_TOOLS))]
    for _ in range(c["n_accounts"]):
        if ev:
            addrs, aw, country = _evasive_addrs(b, rng)
            clients = [b.client(rng, I.DEVELOPER_CLIENT_WEIGHTS)]
            card, domain = I.payment_fp(rng), I.company_domain(rng, W.COMPANY_WORDS, W.COMPANY_NOUNS)
        else:
            addrs, aw, country = shared_ips, [1.0] * len(shared_ips), net.country
            clients, card, domain = [harness], rng.choice(cards), shell
        acct = _campaign_account(
            b,
            c,
            rng,
            tier=rng.choice(("paid", "enterprise")),
            country=country,
            created_at=_created(b, rng, ev, burst),
            verified=ev or rng.random() < 0.3,
            email_domain=domain,
            payment=card,
            addrs=addrs,
            addr_w=aw,
            clients=clients,
        )
        models = _campaign_models(b, c, rng)
        per_day = c["per_account_per_day"] * rng.uniform(0.7, 1.3)
        turns_med = c["turns_median"]
        n_sess = int(per_day * (b.days - c["start_day"]) / turns_med)
        if ev:
            starts = diurnal_times(
                npr, n_sess, b.t0, b.days, acct.tz, "developer", b.dayw(0.8), float(npr.uniform(-2, 2))
            )
            starts = starts[starts >= start]
            gap, sigma = 18.0, 0.9
        else:
            starts = regular_times(
                npr, start + rng.uniform(0, 60), b.t_end, 86400.0 / (per_day / turns_med), 0.1
            )
            gap, sigma = 4.0, 0.25
        mix = npr.choice(3, size=starts.size, p=probs(c["kind_mix"]))
        for k, kind in enumerate(kinds):
            sel = mix == k
            if not sel.any():
                continue
            params = {
                "tools": tools if not ev else W.DEV_TOOLS[rng.randrange(len(W.DEV_TOOLS))],
                "system": None if ev else W.HARVEST_CODING_SYSTEM[0][0],
                "templates": [0, 1, 3] if not ev else None,
            }
            act = b.activity(
                acct,
                kind,
                harvest=True,
                params=params,
                models=models,
                max_tokens=(8192,) if not ev else (4096, 8192, 16000, None),
                temperature=(1.0,) if not ev else (None, 0.7, 1.0, 0.2),
                error_429=0.03 if not ev else 0.008,
            )
            nt = (
                _lognormal_turns(npr, int(sel.sum()), turns_med, 0.5 if not ev else 0.8, 60)
                if kind != "h_coding"
                else np.ones(int(sel.sum()), dtype=np.int32)
            )
            act.batches.append(SessionBatch(starts[sel], nt, gap, sigma))
        _ordinary(b, acct, c["ordinary_share"], int(starts.size), npr, models)


# ---------------------------------------------------------------- synchronized: reasoning harvest in lockstep

_SYNC_FAMILIES = ("h_reasoning", "h_rubric", "h_rewrite", "h_orca")


def build_synchronized(b: Builder, c: dict) -> None:
    rng = py_stream(b.seed, "camp", c["campaign_id"], c["tactic"])
    npr = np_stream(b.seed, "camp", c["campaign_id"], c["tactic"])
    ev = c["tactic"] == "evasive"
    n = c["n_accounts"]
    net = b.nets.pick(rng, "cloud")
    shared_ips = [b.nets.address(rng, net, v6=False) for _ in range(c["n_shared_ips"])]
    client = I.make_client(rng, rng.choice(("requests", "openai-python", "httpx")), tls_override=None)
    cards = [I.payment_fp(rng) for _ in range(c["n_shared_cards"])]
    domain = rng.choice(_THROWAWAY_DOMAINS)
    burst = b.t0 - rng.uniform(3, 30) * DAY
    accounts: list[Account] = []
    group_card = I.payment_fp(rng)
    for i in range(n):
        if ev:
            addrs, aw, country = _evasive_addrs(b, rng)
            clients = [b.client(rng, I.DEVELOPER_CLIENT_WEIGHTS)]
            if i % c["card_group_size"] == 0:
                group_card = I.payment_fp(rng)
            card, dom = group_card, I.consumer_domain(rng)  # cards shared within small groups only
        else:
            addrs, aw, country = shared_ips, [1.0] * len(shared_ips), net.country
            clients, card, dom = [client], cards[i % len(cards)], domain
        accounts.append(
            _campaign_account(
                b,
                c,
                rng,
                tier=rng.choice(("paid", "paid", "free")),
                country=country,
                created_at=_created(b, rng, ev, burst),
                verified=ev and rng.random() < 0.7,
                email_domain=dom,
                payment=card,
                addrs=addrs,
                addr_w=aw,
                clients=clients,
            )
        )
    rate = n * c["per_account_per_day"]  # requests per day across the fleet
    start = b.t0 + c["start_day"] * DAY
    if ev:
        total = int(npr.poisson(rate * (b.days - c["start_day"])))
        ticks = np.sort(diurnal_times(npr, total, b.t0, b.days, c["operator_tz"], "work", b.dayw(0.6)))
        ticks = ticks[ticks >= start]
        owner = npr.choice(n, size=ticks.size, p=npr.dirichlet(np.full(n, 2.0)))
    else:
        ticks = regular_times(npr, start, b.t_end, 86400.0 / rate, c["tick_jitter"])
        owner = np.arange(ticks.size) % n  # round-robin load balancing over the fleet
    tags = np.arange(ticks.size)
    # the scheduler works through one family at a time, in blocks, across all accounts at once
    blocks = tags // 25
    fam_of_block = npr.choice(
        len(_SYNC_FAMILIES), size=int(blocks.max()) + 1 if blocks.size else 1, p=probs(c["family_mix"])
    )
    fam = fam_of_block[blocks] if blocks.size else blocks
    templates = {
        "h_reasoning": rng.sample(range(len(W.REASONING_RECONSTRUCTION)), 3),
        "h_rubric": rng.sample(range(len(W.RUBRIC_GRADING)), 2),
        "h_rewrite": rng.sample(range(len(W.CENSORSHIP_REWRITE)), 2),
        "h_orca": [],
    }
    for i, acct in enumerate(accounts):
        models = _campaign_models(b, c, rng, {0: 1.0})
        mine = owner == i
        for k, kind in enumerate(_SYNC_FAMILIES):
            sel = mine & (fam == k)
            if not sel.any():
                continue
            params = {"templates": templates[kind] if not ev else None, "corpus_rubric_share": 0.3}
            act = b.activity(
                acct,
                kind,
                harvest=True,
                params=params,
                models=models,
                max_tokens=(8192,) if not ev else (4096, 8192, 16000, None),
                temperature=(0.7,) if not ev else (None, 0.5, 0.7, 1.0),
                error_429=0.02 if not ev else 0.005,
            )
            act.batches.append(
                SessionBatch(
                    ticks[sel], np.ones(int(sel.sum()), dtype=np.int32), 1.0, 0.1, None if ev else tags[sel]
                )
            )
        _ordinary(b, acct, c["ordinary_share"], int(mine.sum()), npr, models)


# ---------------------------------------------------------------- hydra: a reseller's swarm of small accounts

_HYDRA_HARVEST = ("h_reasoning", "h_synthetic", "h_coding", "h_rubric", "h_agentic_coding", "h_orca")
_HYDRA_CUSTOMER = ("chat", "coding_help", "math_homework", "chat_vision")


def build_hydra(b: Builder, c: dict) -> None:
    rng = py_stream(b.seed, "camp", c["campaign_id"], c["tactic"])
    npr = np_stream(b.seed, "camp", c["campaign_id"], c["tactic"])
    ev = c["tactic"] == "evasive"
    nets = [b.nets.pick(rng, "cloud") for _ in range(rng.randint(1, 2))]
    egress = [b.nets.address(rng, rng.choice(nets), v6=False) for _ in range(c["n_egress_ips"])]
    gateway = I.make_client(rng, rng.choice(("go", "axios", "aiohttp", "java")))
    edu_domains = [
        I.university_domain(rng, rng.choice(("US", "GB", "AU", "JP"))) for _ in range(rng.randint(2, 6))
    ]
    startup_domains = [I.company_domain(rng, _SHELL_WORDS, _SHELL_NOUNS) for _ in range(rng.randint(2, 8))]
    startup_cards = [I.payment_fp(rng) for _ in range(rng.randint(1, 5))]
    tiers = list(c["tier_mix"])
    tier_w = list(c["tier_mix"].values())
    life_lo, life_hi = c["lifetime_days"]
    wave_at, wave_left = 0.0, 0
    start = b.t0 + c["start_day"] * DAY
    for _ in range(c["n_accounts"]):
        tier = rng.choices(tiers, tier_w)[0]
        life = rng.uniform(life_lo, life_hi) * DAY
        first = rng.uniform(start, max(start + 1, b.t_end - 0.3 * DAY))
        if ev:
            addrs, aw, country = _evasive_addrs(b, rng)
            clients = [b.client(rng, I.DEVELOPER_CLIENT_WEIGHTS | I.CONSUMER_CLIENT_WEIGHTS)]
            created = (
                b.created_before(rng, 3, 200) if rng.random() < 0.7 else first - rng.uniform(1, 72) * 3600
            )
            dom = (
                I.university_domain(rng, rng.choice(("US", "GB", "AU", "JP", "DE")))
                if tier in ("education", "research")
                else I.consumer_domain(rng)
                if tier == "free"
                else I.company_domain(rng, W.COMPANY_WORDS, W.COMPANY_NOUNS)
            )
            card = None if tier != "startup" or rng.random() < 0.6 else I.payment_fp(rng)
        else:
            addrs, aw, country = egress, [1.0] * len(egress), rng.choice(("US", "SG", "HK", "JP"))
            clients = [gateway]
            if wave_left <= 0:  # accounts are registered in waves by a script
                wave_at, wave_left = first - rng.uniform(2, 48) * 3600, rng.randint(10, c["wave_size_max"])
            wave_left -= 1
            created = min(wave_at + rng.uniform(0, 1800), first - 60)
            dom = (
                rng.choice(edu_domains)
                if tier in ("education", "research")
                else rng.choice(startup_domains)
                if tier == "startup"
                else rng.choice(_THROWAWAY_DOMAINS)
            )
            card = rng.choice(startup_cards) if tier == "startup" else None
        acct = _campaign_account(
            b,
            c,
            rng,
            tier=tier,
            country=country,
            created_at=created,
            verified=tier in ("education", "research"),
            email_domain=dom,
            payment=card,
            addrs=addrs,
            addr_w=aw,
            clients=clients,
        )
        if ev:
            acct.rotate = "request"
            acct.rotate_pool = ("residential", None)
        total = round(math.exp(rng.uniform(math.log(c["exchanges_min"]), math.log(c["exchanges_max"]))))
        share = rng.uniform(c["harvest_share_min"], c["harvest_share_max"])
        n_h = int(npr.binomial(total, share))
        models = _campaign_models(b, c, rng)
        end = min(b.t_end, first + life)
        for is_h, count in ((True, n_h), (False, total - n_h)):
            if count <= 0:
                continue
            pool = _HYDRA_HARVEST if is_h else _HYDRA_CUSTOMER
            kinds = npr.choice(
                len(pool), size=count, p=probs(c["harvest_mix"]) if is_h else [0.6, 0.2, 0.12, 0.08]
            )
            if ev:
                times = np.sort(first + npr.random(count) * (end - first))
            else:
                times = first + np.arange(count) * ((end - first) / count) + npr.uniform(0, 30, size=count)
            for k in np.unique(kinds):
                sel = kinds == k
                act = b.activity(
                    acct,
                    pool[int(k)],
                    harvest=is_h,
                    params={"tools": W.DEV_TOOLS[0], "templates": [0, 2, 5] if not ev else None},
                    models=models,
                    max_tokens=(4096,) if not ev else (None, 2048, 4096, 8192),
                    temperature=(None,),
                    error_429=0.01,
                )
                nt = (
                    np.ones(int(sel.sum()), dtype=np.int32)
                    if is_h and pool[int(k)] != "h_agentic_coding"
                    else _geom_turns(npr, int(sel.sum()), 1.8, 6)
                )
                act.batches.append(SessionBatch(times[sel], nt, 20.0, 0.6))


# ---------------------------------------------------------------- spread: many varied accounts, linked by metadata only

_SPREAD_KINDS = ("h_agentic_coding", "h_tool_use", "h_coding", "h_data_analysis", "h_vision", "h_reasoning")


def build_spread(b: Builder, c: dict) -> None:
    rng = py_stream(b.seed, "camp", c["campaign_id"], c["tactic"])
    npr = np_stream(b.seed, "camp", c["campaign_id"], c["tactic"])
    ev = c["tactic"] == "evasive"
    # the tell: one custom client build whose TLS fingerprint shows up under many different user agents
    rare_tls = I.ja3(f"spread-harness:{c['campaign_id']}")
    subnets = [b.nets.address(rng, b.nets.pick(rng, "cloud"), v6=False) for _ in range(c["n_subnets"])]
    cards = [I.payment_fp(rng) for _ in range(max(2, c["n_accounts"] // 6))]
    system = rng.choice(W.DATA_ANALYST_SYSTEM)
    lo, hi = c["capabilities_per_account"]
    for _ in range(c["n_accounts"]):
        tier = rng.choices(("free", "paid", "startup", "enterprise", "research"), (3, 3.5, 1.5, 1, 1))[0]
        fam = I.pick_family(rng, I.DEVELOPER_CLIENT_WEIGHTS | I.SERVER_CLIENT_WEIGHTS)
        client: Client = I.make_client(
            rng, fam, tls_override=rare_tls if rng.random() < c["rare_tls_share"] else None
        )
        if not ev and rng.random() < 0.6:
            base = rng.choice(subnets)
            addrs, country = [b.nets.subnet_address(rng, base)], b.country(rng)
        else:
            addrs, _, country = _evasive_addrs(b, rng)
        card = (
            rng.choice(cards)
            if rng.random() < c["card_share"]
            else (I.payment_fp(rng) if tier != "free" else None)
        )
        dom = (
            I.consumer_domain(rng)
            if rng.random() < 0.5
            else I.company_domain(rng, W.COMPANY_WORDS, W.COMPANY_NOUNS)
        )
        acct = _campaign_account(
            b,
            c,
            rng,
            tier=tier,
            country=country,
            created_at=b.created_before(rng, 4, 300),
            verified=rng.random() < 0.6,
            email_domain=dom,
            payment=card if tier != "free" else None,
            addrs=addrs,
            addr_w=[1.0],
            clients=[client],
            tz=float(rng.choice((-8, -5, 0, 1, 3, 5.5, 8, 9))),
        )
        models = _campaign_models(b, c, rng, {0: 0.7, 1: 0.3})
        caps = rng.sample(_SPREAD_KINDS, rng.randint(lo, hi))
        per_day = c["per_account_per_day"] * math.exp(rng.gauss(0, 0.6))
        active = [d for d in range(b.days) if rng.random() < c["active_day_p"]] or [rng.randrange(b.days)]
        mask = np.zeros(b.days)
        mask[active] = 1.0
        # per_day counts exchanges; sessions average about 2.5 turns across the capabilities
        n_sess = max(1, int(npr.poisson(per_day * len(active) / 2.5)))
        starts = diurnal_times(npr, n_sess, b.t0, b.days, acct.tz, "work", mask, float(npr.uniform(-2, 2)))
        which = npr.integers(0, len(caps), size=n_sess)
        for k, kind in enumerate(caps):
            sel = which == k
            if not sel.any():
                continue
            params = {
                "tools": W.DEV_TOOLS[rng.randrange(len(W.DEV_TOOLS))],
                "system": system if kind == "h_data_analysis" and not ev else None,
                "templates": [0, 1] if not ev else None,
            }
            act = b.activity(
                acct,
                kind,
                harvest=True,
                params=params,
                models=models,
                max_tokens=(None, 4096, 8192, 16000),
                temperature=(None, 0.2, 0.7, 1.0),
                error_429=0.004,
            )
            act.batches.append(
                SessionBatch(
                    starts[sel],
                    _geom_turns(npr, int(sel.sum()), 2.0 if kind != "h_agentic_coding" else 5.0, 30),
                    25.0,
                    0.9,
                )
            )
        _ordinary(b, acct, c["ordinary_share"], n_sess, npr, models)


BUILDERS = {
    "few-huge": build_few_huge,
    "synchronized": build_synchronized,
    "hydra": build_hydra,
    "spread": build_spread,
}


def build_campaigns(b: Builder) -> None:
    for c in b.world["campaigns"]:
        BUILDERS[c["shape"]](b, c)


__all__ = ["Activity", "build_campaigns"]
