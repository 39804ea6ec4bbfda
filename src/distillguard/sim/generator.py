"""Scenarios and the end-to-end simulation: populate, decide outcomes, sort, render, write."""

from __future__ import annotations

import csv
import gzip
import multiprocessing as mp
import os
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import orjson

from distillguard.errors import DistillguardError
from distillguard.progress import track
from distillguard.schema import TRUTH_CSV_HEADER
from distillguard.sim import campaigns, corpora, legit, randomworld
from distillguard.sim.population import Account, EventBuilder, Sim
from distillguard.sim.recipes import Prompt, Renderer
from distillguard.sim.timing import MODELS, RELEASES, iso_ms
from distillguard.sim.usage import STOP_REASONS, assign_models, assign_usage
from distillguard.sim.world import CLIENT_KINDS, IdFactory, World

Generator = Callable[[Sim, np.random.Generator, int], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    legit_scale: float  # multiplies the legitimate population
    naive_scale: float  # multiplies the naive campaigns (0: none)
    adaptive_scale: float  # multiplies the adaptive campaigns (0: none)
    description: str


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("small", 0.13, 0.13, 0.0, "~40k exchanges: every actor type and the four naive campaigns"),
        Scenario("medium", 1.0, 1.0, 0.0, "~300k exchanges: >=200 accounts per hard case, the four naive campaigns"),
        Scenario("adaptive", 1.0, 0.0, 1.0, "~300k exchanges: the medium population, every campaign adaptive"),
        Scenario("large", 6.5, 3.0, 3.0, "~2M exchanges: naive and adaptive campaigns side by side"),
        # Its populations come from randomworld.draw_spec, not from the scales.
        Scenario("random", 0.0, 0.0, 0.0, "every size, rate and mix drawn from the seed (written to world.json)"),
    )
}
RANDOM = "random"

# (actor type, generator, accounts at scale 1, minimum when present)
LEGIT_ACTORS: tuple[tuple[str, Generator, int, int], ...] = (
    ("chat_user", legit.chat_users, 4700, 5),
    ("enterprise_app", legit.enterprise_apps, 220, 2),
    ("benchmark_runner", legit.benchmark_runners, 220, 2),
    ("classroom", legit.classrooms, 250, 3),
    ("agentic_dev", legit.agentic_devs, 240, 2),
    ("eval_grader", legit.eval_graders, 220, 2),
    ("reasoning_researcher", legit.reasoning_researchers, 220, 2),
)
# (campaign kind, actor type of its accounts, naive generator, naive accounts, adaptive accounts)
CAMPAIGN_KINDS: tuple[tuple[str, str, Callable[..., None], int, int], ...] = (
    ("reasoning", "reasoning_harvester", campaigns.reasoning_naive, 30, 150),
    ("agentic", "agentic_harvester", campaigns.agentic_naive, 300, 800),
    ("coding", "coding_harvester", campaigns.coding_naive, 60, 900),
    ("hydra", "hydra_reseller", campaigns.hydra_naive, 400, 800),
)
MIN_CAMPAIGN_ACCOUNTS = 3
WRITE_CHUNK = 20_000
_N_STREAMS = 3 + len(LEGIT_ACTORS) + 2 * len(CAMPAIGN_KINDS)


@dataclass
class SimSummary:
    """What a simulation wrote: counts per actor type and per campaign."""

    scenario: str
    seed: int
    scale: float
    out: Path
    n_accounts: int
    n_exchanges: int
    accounts_by_actor: dict[str, int] = field(default_factory=dict)
    exchanges_by_actor: dict[str, int] = field(default_factory=dict)
    accounts_by_campaign: dict[str, int] = field(default_factory=dict)
    exchanges_by_campaign: dict[str, int] = field(default_factory=dict)


def _count(base: int, factor: float, minimum: int) -> int:
    return 0 if factor <= 0 else max(minimum, round(base * factor))


def plan(scenario: Scenario, scale: float) -> list[tuple[str, str, Generator, int]]:
    """(actor type, campaign, generator, accounts) in a fixed order; zero-account entries included."""
    out: list[tuple[str, str, Generator, int]] = [
        (actor, "", gen, _count(base, scenario.legit_scale * scale, lo)) for actor, gen, base, lo in LEGIT_ACTORS
    ]
    for kind, actor, gen, naive, adaptive in CAMPAIGN_KINDS:
        out.append((actor, kind, partial(gen, actor_type=actor, campaign=kind),
                    _count(naive, scenario.naive_scale * scale, MIN_CAMPAIGN_ACCOUNTS)))
        name, atype = f"{kind}-adaptive", f"{actor}_adaptive"
        out.append((atype, name, partial(campaigns.adaptive, actor_type=atype, campaign=name, kind=kind),
                    _count(adaptive, scenario.adaptive_scale * scale, MIN_CAMPAIGN_ACCOUNTS)))
    return out


def _entropy(scenario: str, seed: int) -> tuple[int, int]:
    return seed, zlib.crc32(scenario.encode())


def _streams(scenario: str, seed: int) -> list[np.random.Generator]:
    """Independent generators for the world, ids, outcomes and each actor, from (seed, scenario)."""
    ss = np.random.SeedSequence(list(_entropy(scenario, seed)))
    return [np.random.default_rng(s) for s in ss.spawn(_N_STREAMS)]


def populate(scenario: Scenario, seed: int, scale: float, quiet: bool = False) -> tuple[Sim, dict[str, np.ndarray]]:
    """Generate every account and its exchanges; return them with outcome columns filled, in time order.

    Ties on the millisecond are broken at random, so the order never reflects which actor came first.
    """
    rngs = _streams(scenario.name, seed)
    sim = Sim(world=World(rngs[0]), ids=IdFactory(rngs[1]), events=EventBuilder())
    steps = plan(scenario, scale)
    return sim, _run_steps(sim, steps, rngs[3:3 + len(steps)], rngs[2], quiet)


def _run_steps(
    sim: Sim, steps: list[tuple[str, str, Generator, int]], rngs: list[np.random.Generator],
    outcomes: np.random.Generator, quiet: bool,
) -> dict[str, np.ndarray]:
    with track("simulating actors", total=len(steps), quiet=quiet) as bar:
        for (actor, _campaign, gen, n), rng in zip(steps, rngs, strict=True):
            bar.set_description(f"simulating {actor}")
            if n:
                gen(sim, rng, n)
            bar.advance()
    ev = sim.events.build()
    assign_models(outcomes, ev, sim.accounts, sim.n_convs, sim.clock.release)
    assign_usage(outcomes, ev, sim.accounts, sim.clock.release)
    order = np.lexsort((outcomes.permutation(len(ev["ts"])), ev["ts"]))
    return {k: v[order] for k, v in ev.items()}


def random_plan(spec: randomworld.WorldSpec, scale: float) -> list[tuple[str, str, Generator, int]]:
    """(actor type, campaign, generator, accounts) of a drawn world, legitimate groups first."""
    gens = {actor: gen for actor, gen, _, _ in LEGIT_ACTORS}
    out: list[tuple[str, str, Generator, int]] = [
        (g.actor_type, "", partial(gens[g.actor_type], volume=g.volume), randomworld.scaled(g.accounts, scale, g.heavy))
        for g in spec.legit
    ]
    out += [(c.actor_type, c.name, partial(randomworld.campaign, spec=c), randomworld.scaled(c.accounts, scale))
            for c in spec.campaigns]
    return out


MAX_PASSES = 4


def populate_random(
    seed: int, scale: float, quiet: bool = False
) -> tuple[Sim, dict[str, np.ndarray], randomworld.WorldSpec, dict[str, float]]:
    """Draw a world from `seed`, cap it, and generate it.

    Volumes are first scaled by a forecast; when the generated total still exceeds the cap (floors
    of one conversation or run per account make the forecast inexact), every per-account volume is
    scaled down again and the world regenerated from the same generators, so the result depends on
    the seed and scale alone.
    """
    ss = np.random.SeedSequence(list(_entropy(RANDOM, seed)))
    base = ss.spawn(4)  # world, ids, outcomes, the drawn parameters
    spec = randomworld.draw_spec(np.random.default_rng(base[3]), seed)
    randomworld.cap_accounts(spec)
    group_seeds = ss.spawn(len(spec.legit) + len(spec.campaigns))
    cap = randomworld.MAX_EXCHANGES * scale
    randomworld.set_volume(spec, 1.0)
    forecast = randomworld.expected_exchanges(spec, scale)
    factor = min(1.0, cap / forecast)
    for attempt in range(1, MAX_PASSES + 1):
        randomworld.set_volume(spec, factor)
        sim = Sim(world=World(np.random.default_rng(base[0])), ids=IdFactory(np.random.default_rng(base[1])),
                  events=EventBuilder(), clock=spec.clock)
        steps = random_plan(spec, scale)
        ev = _run_steps(sim, steps, [np.random.default_rng(s) for s in group_seeds],
                        np.random.default_rng(base[2]), quiet)
        total = len(ev["ts"])
        if total <= 1.02 * cap or attempt == MAX_PASSES:
            break
        factor *= 0.97 * cap / total
    return sim, ev, spec, {"exchange_cap": round(cap), "forecast_at_volume_1": round(forecast), "passes": attempt}


def _input_tokens(p: Prompt) -> int:
    """Roughly four characters a token, plus per-message, per-tool and per-image overheads."""
    chars = len(p.system or "")
    for m in p.messages:
        c = m["content"]
        chars += len(c) if isinstance(c, str) else sum(len(part.get("text", "")) for part in c)
    return chars // 4 + 4 * len(p.messages) + 90 * len(p.tools or ()) + 1100 * p.n_images + 8


# Columns of the event table a record needs, in the order `_record` reads them.
_ROW = ("model", "key", "ipx", "cli", "conv", "max_tokens", "temperature", "stream", "output_tokens",
        "reasoning_tokens", "stop", "status")


def _record(p: Prompt, acc: Account, request_id: str, ts: str, row: tuple, conv_ids: list[str]) -> dict:
    """One exchange in the contract's field names; optional fields only when the client sent them."""
    model, key, ipx, cli, conv, max_tokens, temperature, stream, out, reasoning, stop, status = row
    kind_idx, tls = acc.clients[cli % len(acc.clients)]
    kind = CLIENT_KINDS[kind_idx]
    rec: dict = {"request_id": request_id, "ts": ts, "account_id": acc.account_id, "model": MODELS[model]}
    if p.system is not None and kind.style == "message":
        rec["messages"] = [{"role": "system", "content": p.system}, *p.messages]
    else:
        rec["messages"] = p.messages
        if p.system is not None:
            rec["system"] = p.system
    ip, asn, country = acc.ips[ipx % len(acc.ips)]
    rec["org_id"] = acc.org_id
    rec["api_key_id"] = acc.keys[key % len(acc.keys)]
    if conv >= 0 and acc.sends_conversation_id:
        rec["conversation_id"] = conv_ids[conv]
    rec["ip"], rec["asn"], rec["country"] = ip, asn, country
    rec["user_agent"], rec["tls_fingerprint"] = kind.user_agent, tls
    if acc.payment is not None:
        rec["payment_fingerprint"] = acc.payment
    if max_tokens > 0:
        rec["max_tokens"] = max_tokens
    if temperature == temperature:  # not NaN: the client sent one
        rec["temperature"] = temperature
    if p.tools:
        rec["tools"] = list(p.tools)
    rec["stream"] = stream
    rec["input_tokens"] = _input_tokens(p)
    rec["output_tokens"] = out
    rec["reasoning_tokens"] = reasoning
    if stop:
        rec["stop_reason"] = STOP_REASONS[stop]
    rec["status"] = status
    return rec


@dataclass
class _WriteState:
    """What chunk rendering needs; set before worker processes fork so they inherit it."""

    sim: Sim
    ev: dict[str, np.ndarray]  # sorted by time
    conv_ids: list[str]
    entropy: tuple[int, ...]
    renderer: Renderer | None = None


_STATE: _WriteState | None = None


def _render_chunk(chunk: int) -> bytes:
    """Chunk `chunk` of the sorted log as one gzip member (a gzip file may hold several in a row).

    Request ids come from a generator of their own per chunk, so chunks render independently, in
    any process, to the same bytes.
    """
    st = _STATE
    assert st is not None, "write state not set"
    if st.renderer is None:
        st.renderer = Renderer(corpora.load())
    render = st.renderer.render
    idx = slice(chunk * WRITE_CHUNK, (chunk + 1) * WRITE_CHUNK)
    ev, accounts, conv_ids, dumps = st.ev, st.sim.accounts, st.conv_ids, orjson.dumps
    ts = iso_ms(ev["ts"][idx])
    rids = IdFactory(np.random.default_rng([*st.entropy, chunk])).new("req_", len(ts), 24)
    content = zip(*(ev[k][idx].tolist() for k in ("acct", "recipe", "item", "var", "turn")), strict=True)
    rows = zip(*(ev[k][idx].tolist() for k in _ROW), strict=True)
    lines = []
    for (a, recipe, item, var, turn), row, rid, t in zip(content, rows, rids, ts, strict=True):
        acc = accounts[a]
        lines.append(dumps(_record(render(recipe, acc, item, var, turn), acc, rid, t, row, conv_ids)))
    lines.append(b"")
    return gzip.compress(b"\n".join(lines), compresslevel=1, mtime=0)


def _workers() -> int:
    """Worker processes for rendering: forked ones share the event table without copying it."""
    if "fork" not in mp.get_all_start_methods():
        return 0
    return min(2, os.cpu_count() or 1)


def write_exchanges(
    path: Path, sim: Sim, ev: dict[str, np.ndarray], entropy: tuple[int, ...], quiet: bool = False
) -> None:
    """Render and write the (time-sorted) exchanges as gzipped JSON Lines, chunk by chunk."""
    global _STATE
    n = len(ev["ts"])
    n_chunks = -(-n // WRITE_CHUNK)
    _STATE = _WriteState(sim, ev, sim.ids.new("conv_", sim.n_convs, 20), entropy)
    workers = _workers() if n_chunks > 2 else 0
    # Fork before the progress bar starts its refresh thread.
    pool = mp.get_context("fork").Pool(workers) if workers else None
    try:
        blobs = pool.imap(_render_chunk, range(n_chunks)) if pool else map(_render_chunk, range(n_chunks))
        with path.open("wb") as fh, track("writing exchanges", total=n, quiet=quiet) as bar:
            for i, blob in enumerate(blobs):
                fh.write(blob)
                bar.advance(min(WRITE_CHUNK, n - i * WRITE_CHUNK))
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        _STATE = None


def write_accounts(path: Path, accounts: list[Account]) -> None:
    with path.open("wb") as fh:
        for a, created in zip(accounts, iso_ms(np.array([a.created_at for a in accounts], dtype=np.int64)), strict=True):
            fh.write(orjson.dumps({
                "account_id": a.account_id, "created_at": created, "tier": a.tier, "verified": a.verified,
                "email_domain": a.email_domain, "country": a.country, "payment_fingerprint": a.payment,
            }) + b"\n")


def write_releases(path: Path, releases: tuple[tuple[str, int], ...] = RELEASES) -> None:
    stamps = iso_ms(np.array([t for _, t in releases], dtype=np.int64))
    with path.open("wb") as fh:
        for (model, _), ts in zip(releases, stamps, strict=True):
            fh.write(orjson.dumps({"model": model, "released_at": ts}) + b"\n")


def write_truth(path: Path, accounts: list[Account], shapes: dict[str, str] | None = None) -> None:
    """The truth table; with `shapes` (campaign -> shape) an extra last column `campaign_shape`."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow((*TRUTH_CSV_HEADER, "campaign_shape") if shapes is not None else TRUTH_CSV_HEADER)
        for a in accounts:
            row = [a.account_id, "campaign" if a.campaign else "legit", a.campaign, a.actor_type]
            w.writerow(row if shapes is None else [*row, shapes.get(a.campaign, "")])


def simulate(scenario: str, seed: int, out: Path, scale: float = 1.0, *, quiet: bool = False) -> SimSummary:
    """Simulate `scenario` with `seed` into `out` (created if needed); same inputs, same bytes."""
    if scenario not in SCENARIOS:
        raise DistillguardError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if seed < 0 or seed >= 1 << 63:
        raise DistillguardError("--seed must be a non-negative integer below 2**63")
    if not (0 < scale <= 10):
        raise DistillguardError("--scale must be in (0, 10]")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DistillguardError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)

    spec: randomworld.WorldSpec | None = None
    sizing: dict[str, float] = {}
    if scenario == RANDOM:
        sim, ev, spec, sizing = populate_random(seed, scale, quiet)
    else:
        sim, ev = populate(SCENARIOS[scenario], seed, scale, quiet)
    # Request ids come from generators of their own, keyed by (seed, scenario, tag, chunk).
    write_exchanges(out / "exchanges.jsonl.gz", sim, ev, (*_entropy(scenario, seed), 0x72657173), quiet)

    per_account = np.bincount(ev["acct"], minlength=len(sim.accounts))
    # Accounts without traffic in the window are left out: the side tables describe who was seen.
    seen = sorted((a for a, k in zip(sim.accounts, per_account, strict=True) if k), key=lambda a: a.account_id)
    write_accounts(out / "accounts.jsonl", seen)
    write_releases(out / "releases.jsonl", sim.clock.releases)
    write_truth(out / "truth.csv", seen, None if spec is None else {c.name: c.shape for c in spec.campaigns})

    summary = SimSummary(scenario, seed, scale, out, len(seen), len(ev["ts"]))
    acc_n: Counter[str] = Counter()
    exch_n: Counter[str] = Counter()
    camp_acc: Counter[str] = Counter()
    camp_exch: Counter[str] = Counter()
    for a, k in zip(sim.accounts, per_account.tolist(), strict=True):
        if k:
            acc_n[a.actor_type] += 1
            exch_n[a.actor_type] += k
            if a.campaign:
                camp_acc[a.campaign] += 1
                camp_exch[a.campaign] += k
    summary.accounts_by_actor, summary.exchanges_by_actor = dict(acc_n), dict(exch_n)
    summary.accounts_by_campaign, summary.exchanges_by_campaign = dict(camp_acc), dict(camp_exch)
    if spec is not None:
        write_world(out / "world.json", spec, scale, sizing, summary)
    return summary


def write_world(path: Path, spec: randomworld.WorldSpec, scale: float, sizing: dict[str, float],
                summary: SimSummary) -> None:
    """What a random world drew (before and after the caps) and what it came to."""
    clock = spec.clock
    doc = {
        "scenario": RANDOM, "seed": spec.seed, "scale": scale,
        "window": {"start": iso_ms(np.array([clock.start]))[0], "end": iso_ms(np.array([clock.end]))[0],
                   "days": clock.days, "release": iso_ms(np.array([clock.release]))[0]},
        **{k: v for k, v in spec.to_json().items() if k not in ("seed", "window_days", "release_hours")},
        "sizing": sizing,
        "generated": {
            "accounts": summary.n_accounts, "exchanges": summary.n_exchanges,
            "accounts_by_actor": dict(sorted(summary.accounts_by_actor.items())),
            "exchanges_by_actor": dict(sorted(summary.exchanges_by_actor.items())),
            "accounts_by_campaign": dict(sorted(summary.accounts_by_campaign.items())),
            "exchanges_by_campaign": dict(sorted(summary.exchanges_by_campaign.items())),
        },
    }
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
