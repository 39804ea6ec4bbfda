"""The legitimate population: who they are, what infrastructure they share and when they call.

Each builder turns world parameters into accounts and activities with planned session times. The
hard cases are built to share what campaigns share: teams share an org, a card, an office address
and a rubric template; classrooms share a campus NAT, an email domain and an assignment; eval
runners fire bursts of templated step-by-step prompts and jump to new models.
"""

from __future__ import annotations

import math
import random

import numpy as np

from . import infra as I
from . import wording as W
from .entities import Account, Activity, SessionBatch
from .infra import Addr, Client, NetTable
from .rand import hexid, np_stream, probs, py_stream
from .timing import DAY, day_weights, diurnal_times, regular_times

_CAMPUS_COUNTRIES = ("US", "US", "US", "GB", "DE", "FR", "NL", "AU", "JP")


class Builder:
    """Shared state for building accounts: the world's parameters, network table and id spaces."""

    def __init__(self, world: dict) -> None:
        self.world = world
        self.seed: int = world["seed"]
        w = world["window"]
        self.t0: float = w["t0"]
        self.days: int = w["days"]
        self.t_end: float = self.t0 + self.days * DAY
        self.weekday: int = w["start_weekday"]
        self.nets = NetTable(np_stream(self.seed, "nets"))
        m = world["models"]
        self.models: list[dict] = m["existing"] + m["releases"]
        self.n_existing = len(m["existing"])
        self.base_share: list[float] = m["base_share"]
        self.accounts: list[Account] = []
        self.activities: list[Activity] = []
        self._ids: set[str] = set()
        self._act_count: dict[int, int] = {}
        self._mobile_pools: dict[int, list[Addr]] = {}
        self._pool_rng = py_stream(self.seed, "shared-pools")
        self._shared_clients: dict[str, Client] = {}
        cw, cwt = I.country_weights()
        self.countries, self.country_w = cw, cwt

    # ---------------------------------------------------------------- identities and infrastructure

    def new_id(self, rng: random.Random, prefix: str, n: int = 20) -> str:
        while True:
            v = f"{prefix}{hexid(rng, n)}"
            if v not in self._ids:
                self._ids.add(v)
                return v

    def country(self, rng: random.Random) -> str:
        return rng.choices(self.countries, self.country_w)[0]

    def mobile_addr(self, rng: random.Random, country: str) -> Addr:
        """Carrier-grade NAT: a small pool of addresses per mobile carrier shared by many subscribers."""
        net = self.nets.pick(rng, "mobile", country)
        pool = self._mobile_pools.get(net.asn)
        if pool is None:
            pool = [self.nets.address(self._pool_rng, net) for _ in range(120)]
            self._mobile_pools[net.asn] = pool
        return rng.choice(pool)

    def shared_client(self, family: str) -> Client:
        """The most common build of a client family, shared by everyone who uses its default."""
        c = self._shared_clients.get(family)
        if c is None:
            c = I.make_client(py_stream(self.seed, "client", family), family)
            self._shared_clients[family] = c
        return c

    def client(self, rng: random.Random, weights: dict[str, float]) -> Client:
        fam = I.pick_family(rng, weights)
        return self.shared_client(fam) if rng.random() < 0.55 else I.make_client(rng, fam)

    def person_addrs(self, rng: random.Random, country: str) -> tuple[list[Addr], list[float]]:
        home = self.nets.address(rng, self.nets.pick(rng, "residential", country))
        addrs, w = [home], [1.0]
        if rng.random() < 0.45:
            addrs.append(self.mobile_addr(rng, country))
            w.append(rng.uniform(0.1, 0.6))
        if rng.random() < 0.06:  # consumer VPN egress, shared by many
            addrs.append(
                self.nets.address(self._pool_rng if rng.random() < 0.7 else rng, self.nets.pick(rng, "vpn"))
            )
            w.append(rng.uniform(0.2, 1.0))
        if rng.random() < 0.2:  # the household address changed during the window
            addrs.append(
                self.nets.subnet_address(rng, home)
                if ":" not in home.ip
                else self.nets.address(rng, self.nets.pick(rng, "residential", country))
            )
            w.append(0.4)
        return addrs, w

    def add_account(
        self,
        rng: random.Random,
        *,
        actor_type: str,
        tier: str,
        country: str,
        created_at: float,
        verified: bool,
        email_domain: str,
        payment: str | None,
        org_id: str | None,
        addrs: list[Addr],
        addr_w: list[float],
        clients: list[Client],
        client_w: list[float] | None = None,
        label: str = "legit",
        campaign: tuple[str, str] = ("", ""),
        tactic: str = "",
        tz: float | None = None,
    ) -> Account:
        acct = Account(
            idx=len(self.accounts),
            account_id=self.new_id(rng, "acct_"),
            actor_type=actor_type,
            label=label,
            campaign_id=campaign[0],
            campaign_shape=campaign[1],
            tier=tier,
            created_at=created_at,
            verified=verified,
            email_domain=email_domain,
            country=country,
            payment_fingerprint=payment,
            org_id=org_id or self.new_id(rng, "org_", 16),
            api_keys=[
                self.new_id(rng, "key_", 14)
                for _ in range(1 + int(rng.random() < 0.3) + int(rng.random() < 0.1))
            ],
            addrs=addrs,
            addr_weights=addr_w,
            clients=clients,
            client_weights=client_w or [1.0] * len(clients),
            tz=I.utc_offset(country) if tz is None else tz,
            tactic=tactic,
        )
        self.accounts.append(acct)
        return acct

    def created_before(self, rng: random.Random, lo_days: float = 2, hi_days: float = 900) -> float:
        return self.t0 - math.exp(rng.uniform(math.log(lo_days), math.log(hi_days))) * DAY

    # ---------------------------------------------------------------- models

    def legit_models(
        self, rng: random.Random, actor_type: str, conc: float = 4.0
    ) -> tuple[dict[int, float], list[tuple[int, float, float]]]:
        npr = np.random.default_rng(rng.getrandbits(63))
        w = npr.dirichlet(np.array(self.base_share) * conc + 0.05)
        weights = {i: float(x) for i, x in enumerate(w) if x > 0.01}
        p, delay = self.world["legit"]["adoption"][actor_type]
        adopt = []
        for j in range(self.n_existing, len(self.models)):
            if rng.random() < p:
                t = self.models[j]["released_at"] + rng.expovariate(1.0 / (delay * DAY))
                adopt.append((j, t, rng.uniform(0.2, 0.9)))
        return weights, adopt

    def activity(
        self,
        acct: Account,
        kind: str,
        *,
        harvest: bool = False,
        params: dict | None = None,
        models: tuple[dict[int, float], list] | None = None,
        max_tokens: tuple = (None,),
        temperature: tuple = (None,),
        error_429: float = 0.002,
    ) -> Activity:
        n = self._act_count.get(acct.idx, 0)
        self._act_count[acct.idx] = n + 1
        key = f"{acct.account_id}/{kind}/{n}"
        act = Activity(acct, kind, harvest, key, params or {}, max_tokens, temperature, error_429)
        if models is not None:
            act.model_weights, act.adopt = models
        self.activities.append(act)
        return act

    def dayw(self, weekend: float) -> np.ndarray:
        return day_weights(self.weekday, self.days, weekend)

    def clip(self, starts: np.ndarray) -> np.ndarray:
        return starts[(starts >= self.t0) & (starts < self.t_end)]


def _geom_turns(npr: np.random.Generator, n: int, mean: float, cap: int = 40) -> np.ndarray:
    return np.minimum(npr.geometric(1.0 / max(1.0, mean), size=n), cap).astype(np.int32)


def _lognormal_turns(
    npr: np.random.Generator, n: int, median: float, sigma: float, cap: int = 80
) -> np.ndarray:
    return np.clip(np.round(npr.lognormal(math.log(median), sigma, size=n)), 1, cap).astype(np.int32)


def _active_days(npr: np.random.Generator, b: Builder, k: int, weekend: float) -> np.ndarray:
    base = b.dayw(weekend)
    k = max(1, min(b.days, k))
    chosen = npr.choice(b.days, size=k, replace=False, p=base / base.sum())
    mask = np.zeros(b.days)
    mask[chosen] = base[chosen]
    return mask


# ---------------------------------------------------------------- chat users

_CHAT_KINDS = ("chat", "coding_help", "math_homework", "chat_vision", "tool_use")


def build_chat_users(b: Builder, n: int) -> None:
    p = b.world["legit"]["chat_user"]
    rng = py_stream(b.seed, "legit", "chat")
    npr = np_stream(b.seed, "legit", "chat")
    for _ in range(n):
        country = b.country(rng)
        addrs, aw = b.person_addrs(rng, country)
        paid = rng.random() < p["paid_share"]
        clients = [b.client(rng, I.CONSUMER_CLIENT_WEIGHTS)]
        if rng.random() < 0.25:
            clients.append(b.client(rng, I.CONSUMER_CLIENT_WEIGHTS))
        acct = b.add_account(
            rng,
            actor_type="chat_user",
            tier="paid" if paid else "free",
            country=country,
            created_at=b.created_before(rng),
            verified=paid or rng.random() < 0.5,
            email_domain=I.consumer_domain(rng),
            payment=I.payment_fp(rng) if paid else None,
            org_id=None,
            addrs=addrs,
            addr_w=aw,
            clients=clients,
            client_w=[1.0, 0.3][: len(clients)],
        )
        n_sess = max(1, round(float(npr.lognormal(math.log(p["sessions_median"]), p["sessions_sigma"]))))
        n_sess = min(n_sess, 400)
        mask = _active_days(npr, b, 1 + npr.poisson(n_sess / 2.2), 1.15)
        starts = diurnal_times(
            npr, n_sess, b.t0, b.days, acct.tz, "evening", mask, float(npr.uniform(-2.5, 2.5))
        )
        kinds = npr.choice(len(_CHAT_KINDS), size=n_sess, p=probs(p["kind_mix"]))
        models = b.legit_models(rng, "chat_user")
        mt = (
            (None,)
            if clients[0].family in ("chrome", "safari", "firefox", "ios-app", "okhttp")
            else (None, 1024, 2048, 4096)
        )
        for k, kind in enumerate(_CHAT_KINDS):
            sel = kinds == k
            if not sel.any():
                continue
            act = b.activity(acct, kind, models=models, max_tokens=mt, temperature=(None, None, 0.7, 1.0))
            act.batches.append(
                SessionBatch(starts[sel], _geom_turns(npr, int(sel.sum()), p["turns_mean"]), 50.0, 1.0)
            )


# ---------------------------------------------------------------- organisations: developers, graders, researchers


def _org(b: Builder, rng: random.Random, country: str, cloud_office: bool) -> dict:
    domain = (
        I.company_domain(rng, W.COMPANY_WORDS, W.COMPANY_NOUNS)
        if rng.random() < 0.8
        else I.consumer_domain(rng)
    )
    office_net = b.nets.pick(
        rng, "cloud" if cloud_office else "residential", None if cloud_office else country
    )
    office = b.nets.address(rng, office_net, v6=False)
    return {
        "org_id": b.new_id(rng, "org_", 16),
        "domain": domain,
        "card": I.payment_fp(rng) if rng.random() < 0.85 else None,
        "office": office,
        "country": country,
    }


def _member(
    b: Builder, rng: random.Random, org: dict, actor_type: str, tier: str, clients: list[Client]
) -> Account:
    country = org["country"] if rng.random() < 0.85 else b.country(rng)
    home, hw = b.person_addrs(rng, country)
    addrs = [b.nets.subnet_address(rng, org["office"]), *home]
    aw = [2.0, *[x * 0.6 for x in hw]]
    card = org["card"] if org["card"] and rng.random() < 0.9 else I.payment_fp(rng)
    return b.add_account(
        rng,
        actor_type=actor_type,
        tier=tier,
        country=country,
        created_at=b.created_before(rng, 5, 700),
        verified=True,
        email_domain=org["domain"],
        payment=card,
        org_id=org["org_id"],
        addrs=addrs,
        addr_w=aw,
        clients=clients,
    )


def _team_sizes(npr: np.random.Generator, n: int, mean: float) -> list[int]:
    sizes, total = [], 0
    while total < n:
        s = int(min(n - total, npr.geometric(1.0 / mean)))
        sizes.append(s)
        total += s
    return sizes


def build_developers(b: Builder, n: int) -> None:
    p = b.world["legit"]["agentic_developer"]
    rng = py_stream(b.seed, "legit", "dev")
    npr = np_stream(b.seed, "legit", "dev")
    for size in _team_sizes(npr, n, p["team_size_mean"]):
        org = _org(b, rng, b.country(rng), cloud_office=rng.random() < 0.4)
        team_tool = rng.randrange(len(W.DEV_TOOLS))
        tier = rng.choice(("paid", "paid", "enterprise", "startup"))
        for _ in range(size):
            clients = [b.client(rng, I.DEVELOPER_CLIENT_WEIGHTS)]
            acct = _member(b, rng, org, "agentic_developer", tier, clients)
            tool = team_tool if rng.random() < 0.7 else rng.randrange(len(W.DEV_TOOLS))
            heavy = p["heavy_factor"] if rng.random() < p["heavy_share"] else 1.0
            per_day = float(npr.lognormal(math.log(p["sessions_per_day_median"]), 0.7)) * heavy
            mask = _active_days(npr, b, int(npr.integers(min(2, b.days), b.days + 1)), 0.25)
            n_sess = int(npr.poisson(per_day * max(1, (mask > 0).sum())))
            if n_sess == 0:
                n_sess = 1
            starts = diurnal_times(
                npr, n_sess, b.t0, b.days, acct.tz, "developer", mask, float(npr.uniform(-1.5, 2.5))
            )
            models = b.legit_models(rng, "agentic_developer", conc=2.0)
            params = {
                "system": W.DEV_TOOL_SYSTEM[tool % len(W.DEV_TOOL_SYSTEM)],
                "tools": W.DEV_TOOLS[tool],
                "tool_share": rng.uniform(0.6, 0.9),
            }
            mt = (rng.choice((4096, 8192, 16384, 32000)),)
            act = b.activity(
                acct, "agentic_dev", params=params, models=models, max_tokens=mt, temperature=(None, 0.0, 0.2)
            )
            act.batches.append(
                SessionBatch(starts, _lognormal_turns(npr, n_sess, p["turns_median"], 0.75), 14.0, 1.1)
            )
            extra = int(npr.poisson(n_sess * 0.25)) + 1
            side = b.activity(
                acct,
                rng.choice(("coding_help", "chat", "tool_use")),
                models=models,
                max_tokens=(None, 2048, 4096),
            )
            side.batches.append(
                SessionBatch(
                    diurnal_times(npr, extra, b.t0, b.days, acct.tz, "developer", mask),
                    _geom_turns(npr, extra, 2.0),
                    60.0,
                    1.0,
                )
            )


def build_eval_runners(b: Builder, n: int) -> None:
    p = b.world["legit"]["eval_runner"]
    rng = py_stream(b.seed, "legit", "eval")
    npr = np_stream(b.seed, "legit", "eval")
    for size in _team_sizes(npr, n, 1.6):
        org = _org(b, rng, b.country(rng), cloud_office=True)
        tier = rng.choice(("research", "paid", "enterprise", "research"))
        for _ in range(size):
            acct = _member(b, rng, org, "eval_runner", tier, [b.client(rng, I.DEVELOPER_CLIENT_WEIGHTS)])
            bench = ("math", "code", "tools")[int(npr.choice(3, p=probs(p["bench_mix"])))]
            n_items = {"math": 1319, "code": 164, "tools": 3952}[bench]
            fmt = rng.randrange(len(W.EVAL_MATH_FORMATS) if bench == "math" else len(W.EVAL_CODE_FORMATS))
            params = {"bench": bench, "format": fmt, "system": rng.choice(W.EVAL_SYSTEMS)}
            mt = (rng.choice((512, 1024, 2048, 4096)),)
            weights, _ = b.legit_models(rng, "eval_runner", conc=1.0)
            runs: list[tuple[float, int]] = []
            for _ in range(int(npr.integers(1, p["runs_max"] + 1))):
                start = float(diurnal_times(npr, 1, b.t0, b.days, acct.tz, "work", b.dayw(0.3))[0])
                model = max(weights, key=lambda k: weights[k] * rng.random())
                runs.append((start, model))
            for j in range(b.n_existing, len(b.models)):
                if rng.random() < p["rerun_on_release_p"]:
                    runs.append((b.models[j]["released_at"] + rng.uniform(1.5, 30) * 3600, j))
            for start, model in runs:
                size_items = min(
                    n_items,
                    int(math.exp(rng.uniform(math.log(p["run_size_min"]), math.log(p["run_size_max"])))),
                )
                offset = 0 if rng.random() < 0.6 else rng.randrange(n_items)
                repeats = rng.choice((1, 1, 1, 3, 5)) if bench == "code" else rng.choice((1, 1, 1, 1, 2))
                tags = np.tile(np.arange(offset, offset + size_items) % n_items, repeats)
                gap = rng.uniform(0.15, 3.0)
                starts = start + np.cumsum(npr.exponential(gap, size=tags.size))
                keep = starts < b.t_end
                act = b.activity(
                    acct,
                    "eval",
                    params=params,
                    models=({model: 1.0}, []),
                    max_tokens=mt,
                    temperature=(0.0,),
                    error_429=0.02,
                )
                act.batches.append(
                    SessionBatch(starts[keep], np.ones(int(keep.sum()), dtype=np.int32), 1.0, 0.1, tags[keep])
                )
            side = b.activity(acct, "chat", models=(weights, []))
            k = int(npr.integers(1, 8))
            side.batches.append(
                SessionBatch(
                    diurnal_times(npr, k, b.t0, b.days, acct.tz, "work", b.dayw(0.3)),
                    _geom_turns(npr, k, 2),
                    60.0,
                    1.0,
                )
            )


def build_graders(b: Builder, n: int, n_corpus_rubrics: int) -> None:
    p = b.world["legit"]["grader_team"]
    rng = py_stream(b.seed, "legit", "grader")
    npr = np_stream(b.seed, "legit", "grader")
    for size in _team_sizes(npr, n, p["team_size_mean"]):
        org = _org(b, rng, b.country(rng), cloud_office=rng.random() < 0.7)
        # a team standardises on one or two rubric templates, usually a public one used verbatim
        rubrics = [
            ("corpus", rng.randrange(n_corpus_rubrics))
            if rng.random() < 0.7
            else ("own", rng.randrange(len(W.RUBRIC_GRADING)))
            for _ in range(rng.choice((1, 1, 2)))
        ]
        params = {"rubrics": rubrics, "system": rng.choice(W.GRADER_SYSTEMS)}
        tier = rng.choice(("enterprise", "paid", "startup"))
        for _ in range(size):
            acct = _member(b, rng, org, "grader_team", tier, [b.client(rng, I.SERVER_CLIENT_WEIGHTS)])
            weights, adopt = b.legit_models(rng, "grader_team", conc=0.8)
            models = (
                {max(weights, key=weights.get): 1.0},
                adopt,
            )  # a pipeline is configured with one judge model
            act = b.activity(
                acct,
                "grader",
                params=params,
                models=models,
                max_tokens=(rng.choice((256, 512, 1024, 2048)),),
                temperature=(0.0,),
                error_429=0.01,
            )
            workdays = [d for d in range(b.days) if (b.weekday + d) % 7 < 5 or rng.random() < 0.1]
            for d in workdays:
                for _ in range(int(npr.poisson(p["jobs_per_workday"]))):
                    size_items = int(np.clip(npr.lognormal(math.log(p["job_size_median"]), 0.8), 10, 3000))
                    hour = float(npr.choice(24, p=_WORK_HOURS)) + float(npr.random())
                    start = b.t0 + d * DAY + (hour - acct.tz) * 3600
                    starts = start + np.cumsum(npr.exponential(rng.uniform(0.3, 4.0), size=size_items))
                    act.batches.append(
                        SessionBatch(
                            b.clip(starts), np.ones(int(b.clip(starts).size), dtype=np.int32), 1.0, 0.1
                        )
                    )
            if not act.batches or sum(x.starts.size for x in act.batches) == 0:
                act.batches.append(
                    SessionBatch(
                        np.array([b.t0 + DAY * rng.uniform(0, b.days)]), np.ones(1, dtype=np.int32), 1.0, 0.1
                    )
                )


_WORK_HOURS = np.array(
    [0, 0, 0, 0, 0, 0, 0, 0.5, 2, 5, 6, 5, 3, 5, 6, 5, 4, 2, 1, 0.5, 0.3, 0.2, 0, 0], dtype=float
)
_WORK_HOURS /= _WORK_HOURS.sum()


def build_researchers(b: Builder, n: int) -> None:
    p = b.world["legit"]["safety_researcher"]
    rng = py_stream(b.seed, "legit", "research")
    npr = np_stream(b.seed, "legit", "research")
    for size in _team_sizes(npr, n, p["lab_size_mean"]):
        org = _org(
            b, rng, rng.choice(("US", "US", "GB", "DE", "CA", "FR", "CH")), cloud_office=rng.random() < 0.5
        )
        templates = rng.sample(W.RESEARCH_REASONING, rng.randint(2, 4))
        for _ in range(size):
            acct = _member(
                b,
                rng,
                org,
                "safety_researcher",
                rng.choice(("research", "research", "enterprise")),
                [b.client(rng, I.DEVELOPER_CLIENT_WEIGHTS)],
            )
            weights, adopt = b.legit_models(rng, "safety_researcher", conc=1.0)
            mask = _active_days(npr, b, int(npr.integers(min(2, b.days), b.days + 1)), 0.2)
            per_day = float(npr.lognormal(math.log(p["per_day_median"]), 0.7))
            n_sess = max(1, int(npr.poisson(per_day * (mask > 0).sum() / 1.6)))
            starts = diurnal_times(npr, n_sess, b.t0, b.days, acct.tz, "developer", mask)
            act = b.activity(
                acct,
                "research",
                params={
                    "templates": templates,
                    "system": rng.choice((None, None, "You are a helpful assistant.")),
                },
                models=(weights, adopt),
                max_tokens=(None, 4096, 8192, 16000),
                temperature=(0.0, 0.7, 1.0, None),
            )
            act.batches.append(SessionBatch(starts, _geom_turns(npr, n_sess, 1.6, 8), 40.0, 0.9))


# ---------------------------------------------------------------- SaaS applications


def build_saas(b: Builder, n_apps: int) -> None:
    p = b.world["legit"]["saas_app"]
    rng = py_stream(b.seed, "legit", "saas")
    npr = np_stream(b.seed, "legit", "saas")
    for _ in range(n_apps):
        country = b.country(rng)
        company = rng.choice(W.COMPANY_WORDS).title() + rng.choice(W.COMPANY_NOUNS)
        app = rng.randrange(len(W.SAAS_APPS))
        params = {
            "app": app,
            "company": company,
            "bot": rng.choice(("Ava", "Max", "Sunny", "Kit", "Juno", "Echo")),
            "product": rng.choice(W.PRODUCTS),
            "tone": rng.choice(("warm and playful", "concise", "luxury", "technical")),
            "words": rng.choice((80, 120, 150, 200)),
        }
        net = b.nets.pick(rng, "cloud")
        nat = [b.nets.address(rng, net, v6=False) for _ in range(rng.randint(1, 4))]
        client = b.shared_client(I.pick_family(rng, I.SERVER_CLIENT_WEIGHTS))
        card, org = I.payment_fp(rng), b.new_id(rng, "org_", 16)
        domain = I.company_domain(rng, W.COMPANY_WORDS, W.COMPANY_NOUNS)
        weekend = rng.uniform(0.3, 0.95)
        pattern = rng.choice(("work", "global", "evening"))
        per_day = float(np.clip(npr.lognormal(math.log(p["per_day_median"]), p["per_day_sigma"]), 20, 9000))
        envs = [("production", 1.0)] + ([("staging", rng.uniform(0.01, 0.08))] if rng.random() < 0.4 else [])
        models = b.legit_models(rng, "saas_app", conc=0.5)
        models = ({max(models[0], key=models[0].get): 1.0}, models[1])  # an app pins one model
        mt = (rng.choice((256, 512, 800, 1024)),)
        multi = W.SAAS_APPS[app]["multi"]
        for _env, share in envs:
            acct = b.add_account(
                rng,
                actor_type="saas_app",
                tier="enterprise",
                country=country,
                created_at=b.created_before(rng, 20, 900),
                verified=True,
                email_domain=domain,
                payment=card,
                org_id=org,
                addrs=nat,
                addr_w=[1.0] * len(nat),
                clients=[client],
            )
            total = max(1, int(npr.poisson(per_day * share * b.days / (1.8 if multi else 1.0))))
            starts = diurnal_times(
                npr, total, b.t0, b.days, acct.tz, pattern, b.dayw(weekend), float(npr.uniform(-1, 1))
            )
            nt = _geom_turns(npr, total, 2.2, 12) if multi else np.ones(total, dtype=np.int32)
            act = b.activity(
                acct,
                "saas",
                params=params,
                models=models,
                max_tokens=mt,
                temperature=(rng.choice((0.2, 0.3, 0.7)),),
                error_429=0.004,
            )
            act.batches.append(SessionBatch(starts, nt, 35.0, 0.8))


# ---------------------------------------------------------------- classrooms behind a campus NAT


def build_classrooms(b: Builder) -> int:
    p = b.world["legit"]["classroom"]
    rng = py_stream(b.seed, "legit", "class")
    npr = np_stream(b.seed, "legit", "class")
    count = 0
    n_classes = p["n_classes"]
    unis: list[dict] = []
    for _ in range(max(1, (n_classes + 1) // 2)):
        country = rng.choice(_CAMPUS_COUNTRIES)
        net = b.nets.pick(rng, "campus", country)
        nat = b.nets.address(rng, net, v6=False)
        unis.append(
            {
                "country": net.country,
                "domain": I.university_domain(rng, net.country),
                "nat": [nat] + [b.nets.subnet_address(rng, nat) for _ in range(rng.randint(0, 2))],
            }
        )
    for ci in range(n_classes):
        uni = unis[ci % len(unis)]
        size = int(rng.uniform(p["class_size_min"], p["class_size_max"]))
        assignments = rng.sample(range(len(W.CLASS_ASSIGNMENTS)), rng.randint(2, 5))
        meet_days = [d for d in range(b.days) if (b.weekday + d) % 7 in rng.sample(range(5), 2)]
        meet_hour = rng.choice((9, 10, 11, 13, 14, 15))
        tz = I.utc_offset(uni["country"])
        org = b.new_id(rng, "org_", 16)
        lab_client = b.shared_client("chrome")
        for _ in range(size):
            home, hw = b.person_addrs(rng, uni["country"])
            acct = b.add_account(
                rng,
                actor_type="classroom",
                tier="education",
                country=uni["country"],
                created_at=b.created_before(rng, 3, 400),
                verified=True,
                email_domain=uni["domain"],
                payment=None,
                org_id=org,
                addrs=home,
                addr_w=hw,
                clients=[lab_client, b.client(rng, I.CONSUMER_CLIENT_WEIGHTS)],
                client_w=[1.0, 0.5],
            )
            models = b.legit_models(rng, "classroom", conc=3.0)
            lab_starts: list[float] = []
            for d in meet_days:
                if rng.random() < p["lab_attendance"]:
                    start = b.t0 + d * DAY + (meet_hour - tz) * 3600
                    n_lab = 1 + int(npr.poisson(2.0))
                    lab_starts += [start + rng.uniform(0, 5400) for _ in range(n_lab)]
            home_n = int(npr.poisson(3.0)) + (0 if lab_starts else 1)
            home_starts = diurnal_times(npr, home_n, b.t0, b.days, tz, "student", b.dayw(1.0))
            for starts, where in ((np.array(lab_starts), "lab"), (home_starts, "home")):
                starts = b.clip(starts)
                if starts.size == 0:
                    continue
                # the assignment being worked on follows the course calendar
                tags = (
                    ((starts - b.t0) / (b.days * DAY) * len(assignments))
                    .astype(np.int64)
                    .clip(0, len(assignments) - 1)
                )
                act = b.activity(acct, "classroom", params={"assignments": assignments}, models=models)
                if where == "lab":  # lab sessions come from the campus NAT and the lab machines' browser
                    act.addrs, act.client = uni["nat"], lab_client
                act.batches.append(
                    SessionBatch(starts, _geom_turns(npr, starts.size, 2.0, 10), 70.0, 0.9, tags)
                )
            count += 1
    return count


def build_legit(b: Builder, n_corpus_rubrics: int) -> None:
    lp = b.world["legit"]
    n = lp["n_accounts_target"]
    n_class = build_classrooms(b)
    shares = lp["type_share"]
    counts = {t: max(1, round(n * s)) for t, s in shares.items()}
    build_developers(b, counts["agentic_developer"])
    build_eval_runners(b, counts["eval_runner"])
    build_graders(b, counts["grader_team"], n_corpus_rubrics)
    build_saas(b, max(1, round(counts["saas_app"] / 1.4)))
    build_researchers(b, counts["safety_researcher"])
    build_chat_users(b, max(1, n - n_class - sum(counts.values())))


__all__ = ["Builder", "build_legit", "regular_times"]
