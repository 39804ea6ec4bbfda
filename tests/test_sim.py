"""The traffic simulator: determinism, population, contract validity, ground truth, leaks, pivots."""

from __future__ import annotations

import csv
import gzip
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.errors import DistillguardError
from distillguard.schema import TRUTH_CSV_HEADER
from distillguard.sim import SCENARIOS, SimSummary, simulate
from distillguard.sim.generator import CAMPAIGN_KINDS, LEGIT_ACTORS
from distillguard.sim.world import NETWORK_TABLES as _NETWORK_TABLES

SCALE = 0.02  # a few thousand exchanges per run: every actor type, each campaign's minimum accounts
FILES = ("exchanges.jsonl.gz", "accounts.jsonl", "releases.jsonl", "truth.csv")
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ROLES = {"system", "user", "assistant", "tool"}
OPTIONAL_TYPES: dict[str, type | tuple[type, ...]] = {
    "system": str, "org_id": str, "api_key_id": str, "conversation_id": str, "ip": str, "asn": int,
    "country": str, "user_agent": str, "tls_fingerprint": str, "payment_fingerprint": str, "max_tokens": int,
    "temperature": (int, float), "tools": list, "stream": bool, "input_tokens": int, "output_tokens": int,
    "reasoning_tokens": int, "stop_reason": str, "status": int,
}


class Run:
    """One simulation's files, parsed."""

    def __init__(self, summary: SimSummary) -> None:
        self.summary = summary
        self.dir = summary.out
        with gzip.open(self.dir / "exchanges.jsonl.gz", "rb") as fh:
            self.exchanges = [orjson.loads(line) for line in fh]
        self.accounts = [orjson.loads(line) for line in (self.dir / "accounts.jsonl").read_bytes().splitlines()]
        self.releases = [orjson.loads(line) for line in (self.dir / "releases.jsonl").read_bytes().splitlines()]
        with (self.dir / "truth.csv").open(newline="") as fh:
            reader = csv.reader(fh)
            self.truth_header = tuple(next(reader))
            self.truth = {row[0]: dict(zip(self.truth_header, row, strict=True)) for row in reader}

    def by_label(self, label: str) -> list[dict]:
        return [r for r in self.exchanges if self.truth[r["account_id"]]["label"] == label]

    def of_actor(self, actor_type: str) -> list[dict]:
        return [r for r in self.exchanges if self.truth[r["account_id"]]["actor_type"] == actor_type]


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(simulate("medium", 11, tmp_path_factory.mktemp("medium"), SCALE, quiet=True))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The `small` scenario at full size: enough accounts per type for value-overlap checks."""
    return Run(simulate("small", 5, tmp_path_factory.mktemp("small"), quiet=True))


@pytest.fixture(scope="module")
def adaptive(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(simulate("adaptive", 11, tmp_path_factory.mktemp("adaptive"), SCALE, quiet=True))


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s)


# -- determinism ----------------------------------------------------------------------------

def test_same_seed_gives_identical_files_and_another_seed_does_not(medium: Run, tmp_path: Path) -> None:
    again = simulate("medium", 11, tmp_path / "again", SCALE, quiet=True)
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (medium.dir / name).read_bytes(), name
    assert again.n_exchanges == medium.summary.n_exchanges

    simulate("medium", 12, tmp_path / "other", SCALE, quiet=True)
    for name in ("exchanges.jsonl.gz", "accounts.jsonl", "truth.csv"):
        assert (tmp_path / "other" / name).read_bytes() != (medium.dir / name).read_bytes(), name


def test_worker_processes_do_not_change_the_bytes(medium: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from distillguard.sim import generator

    monkeypatch.setattr(generator, "_workers", lambda: 0)
    simulate("medium", 11, tmp_path, SCALE, quiet=True)
    assert (tmp_path / "exchanges.jsonl.gz").read_bytes() == (medium.dir / "exchanges.jsonl.gz").read_bytes()


# -- population -----------------------------------------------------------------------------

def test_every_actor_type_and_campaign_is_present(medium: Run) -> None:
    truth = medium.truth.values()
    actors = Counter(t["actor_type"] for t in truth)
    for actor, *_ in LEGIT_ACTORS:
        assert actors[actor] >= 2, actor
    campaigns = Counter(t["campaign"] for t in truth if t["label"] == "campaign")
    assert set(campaigns) == {kind for kind, *_ in CAMPAIGN_KINDS}
    assert all(n >= 3 for n in campaigns.values())
    labels = Counter(t["label"] for t in truth)
    assert set(labels) == {"legit", "campaign"}
    assert labels["legit"] > labels["campaign"]
    # Every account sends traffic, and the summary matches the files.
    per_account = Counter(r["account_id"] for r in medium.exchanges)
    assert set(per_account) == set(medium.truth)
    assert medium.summary.n_exchanges == len(medium.exchanges)
    assert sum(medium.summary.exchanges_by_actor.values()) == len(medium.exchanges)
    assert medium.summary.accounts_by_actor == dict(actors)


def test_adaptive_scenario_runs_only_adaptive_campaigns(adaptive: Run) -> None:
    campaigns = {t["campaign"] for t in adaptive.truth.values() if t["label"] == "campaign"}
    assert campaigns == {f"{kind}-adaptive" for kind, *_ in CAMPAIGN_KINDS}
    assert all(t["actor_type"].endswith("_adaptive") for t in adaptive.truth.values() if t["label"] == "campaign")


def test_scenarios_target_their_volumes() -> None:
    from distillguard.sim.generator import plan

    medium = dict((a, n) for a, _, _, n in plan(SCENARIOS["medium"], 1.0))
    legit = sum(medium[a] for a, *_ in LEGIT_ACTORS)
    assert legit >= 6000
    assert all(medium[a] >= 200 for a, *_ in LEGIT_ACTORS)
    assert all(n == 0 for a, _, _, n in plan(SCENARIOS["medium"], 1.0) if a.endswith("_adaptive"))
    large = plan(SCENARIOS["large"], 1.0)
    assert any(n and a.endswith("_adaptive") for a, _, _, n in large)
    assert any(n and a.endswith(("_harvester", "_reseller")) for a, _, _, n in large)


# -- contract -------------------------------------------------------------------------------

def _check_record(r: dict) -> None:
    for field, kind in (("request_id", str), ("ts", str), ("account_id", str), ("model", str), ("messages", list)):
        assert isinstance(r[field], kind), field
    assert RFC3339_MS.match(r["ts"]), r["ts"]
    assert r["messages"], "messages must not be empty"
    for m in r["messages"]:
        assert set(m) == {"role", "content"} and m["role"] in ROLES
        if isinstance(m["content"], list):
            assert any(p.get("type") == "text" and isinstance(p["text"], str) for p in m["content"])
        else:
            assert isinstance(m["content"], str) and m["content"]
    for field, kind in OPTIONAL_TYPES.items():
        if field in r:
            assert isinstance(r[field], kind) and not (kind is int and isinstance(r[field], bool)), field
    assert set(r) <= {"request_id", "ts", "account_id", "model", "messages", *OPTIONAL_TYPES}
    assert "response_text" not in r
    if "tools" in r:
        assert r["tools"] and all(isinstance(t, str) for t in r["tools"])
    if r["status"] != 200:
        assert r["output_tokens"] == 0 and "stop_reason" not in r


def test_every_record_follows_the_contract_and_the_log_is_sorted(medium: Run, adaptive: Run) -> None:
    for run in (medium, adaptive):
        ids = set()
        previous = ""
        for r in run.exchanges:
            _check_record(r)
            assert r["ts"] >= previous  # same-format UTC strings sort as times
            previous = r["ts"]
            ids.add(r["request_id"])
        assert len(ids) == len(run.exchanges)
        start, end = _ts(run.exchanges[0]["ts"]), _ts(run.exchanges[-1]["ts"])
        assert end - start <= timedelta(days=14)


def test_both_system_prompt_styles_and_realistic_usage(medium: Run) -> None:
    records = medium.exchanges
    assert any("system" in r for r in records)
    assert any(r["messages"][0]["role"] == "system" for r in records)
    assert any(":" in r["ip"] for r in records) and any("." in r["ip"] for r in records)
    assert any(r["messages"][-1]["role"] == "tool" for r in records)
    assert any(isinstance(m["content"], list) for r in records for m in r["messages"])
    assert {r["stop_reason"] for r in records if "stop_reason" in r} >= {"end_turn", "tool_use", "max_tokens"}
    statuses = Counter(r["status"] for r in records)
    assert set(statuses) <= {200, 429, 500, 529} and statuses[200] > 0.95 * len(records)
    # Harvesting asks for long outputs; ordinary chat does not.
    def mean_out(rs: list[dict]) -> float:
        return sum(r["output_tokens"] for r in rs) / len(rs)
    assert mean_out(medium.of_actor("reasoning_harvester")) > 2 * mean_out(medium.of_actor("chat_user"))


def test_side_tables(medium: Run) -> None:
    assert medium.truth_header == TRUTH_CSV_HEADER
    fields = {"account_id", "created_at", "tier", "verified", "email_domain", "country", "payment_fingerprint"}
    assert all(set(a) == fields for a in medium.accounts)
    assert all(RFC3339_MS.match(a["created_at"]) for a in medium.accounts)
    assert {a["account_id"] for a in medium.accounts} == set(medium.truth)
    assert [a["account_id"] for a in medium.accounts] == sorted(a["account_id"] for a in medium.accounts)
    for t in medium.truth.values():
        assert (t["label"] == "campaign") == bool(t["campaign"]) and t["label"] in {"campaign", "legit"}
    models = {r["model"]: _ts(r["released_at"]) for r in medium.releases}
    first, last = _ts(medium.exchanges[0]["ts"]), _ts(medium.exchanges[-1]["ts"])
    assert sum(first < t < last for t in models.values()) == 1
    assert {r["model"] for r in medium.exchanges} == set(models)
    # An account's traffic never predates its creation.
    created = {a["account_id"]: _ts(a["created_at"]) for a in medium.accounts}
    assert all(_ts(r["ts"]) >= created[r["account_id"]] for r in medium.exchanges)


# -- no label leaks -------------------------------------------------------------------------

def _shape(value: str) -> tuple[str, int, frozenset[str]]:
    prefix, _, body = value.partition("_")
    return prefix, len(body), frozenset("digit" if c.isdigit() else "alpha" for c in body)


def test_identifiers_and_side_tables_look_the_same_for_both_labels(medium: Run, adaptive: Run) -> None:
    for run in (medium, adaptive):
        shapes: dict[str, defaultdict[str, set]] = {"legit": defaultdict(set), "campaign": defaultdict(set)}
        for r in run.exchanges:
            label = run.truth[r["account_id"]]["label"]
            for field in ("request_id", "account_id", "org_id", "api_key_id", "conversation_id"):
                if field in r:
                    prefix, length, _ = _shape(r[field])
                    shapes[label][field].add((prefix, length))
        for field, legit_shapes in shapes["legit"].items():
            assert shapes["campaign"][field] <= legit_shapes, field
        alphabet = set("0123456789abcdefghjkmnpqrstvwxyz")
        assert all(set(a["account_id"][5:]) <= alphabet and len(a["account_id"]) == 21 for a in run.accounts)


def test_campaign_values_also_occur_in_legitimate_traffic(small: Run, adaptive: Run) -> None:
    """Campaign exchanges carry values ordinary users also send: no field tells the label by itself.

    Exception, documented in docs/simulator.md: a naive campaign's custom client has its own TLS
    fingerprint (rare fingerprints exist among ordinary users too, so rarity alone is not a label).
    """
    for run, share in ((small, 0.99), (adaptive, 0.9)):  # the tiny adaptive run covers fewer legit values
        legit, campaign = run.by_label("legit"), run.by_label("campaign")
        for field in ("user_agent", "country", "model", "max_tokens", "temperature", "stop_reason"):
            legit_values = {r.get(field) for r in legit}
            shared = sum(r.get(field) in legit_values for r in campaign)
            assert shared >= share * len(campaign), field
        if run is small:
            # Which optional fields a request carries combines several client habits; a small run does
            # not hold every combination (at `medium` size over 99.9% of campaign requests match one).
            legit_shapes = {frozenset(r) for r in legit}
            assert sum(frozenset(r) in legit_shapes for r in campaign) >= 0.8 * len(campaign)
        tiers = {a["account_id"]: a["tier"] for a in run.accounts}
        legit_tiers = {tiers[a] for a, t in run.truth.items() if t["label"] == "legit"}
        assert {tiers[a] for a, t in run.truth.items() if t["label"] == "campaign"} <= legit_tiers
        # Campaigns use the same public networks as everyone (clouds, ISPs, carriers): no AS of their own.
        world_asns = {asn for _, table in _NETWORK_TABLES for asn, _ in table}
        assert {r["asn"] for r in campaign} <= world_asns
        by_fp: defaultdict[str, set[str]] = defaultdict(set)
        for r in legit:
            by_fp[r["tls_fingerprint"]].add(r["account_id"])
        assert any(len(accounts) == 1 for accounts in by_fp.values())  # ordinary users with rare clients


def test_rate_limits_answer_429_beyond_the_tier_quota() -> None:
    import numpy as np

    from distillguard.sim.population import TIER_RPM, Account, Habits
    from distillguard.sim.usage import rate_limited

    def account(tier: str) -> Account:
        return Account("a", "chat_user", "", 0, tier, True, "x.com", "US", None, "o", ["k"], [], [], Habits())

    burst = 3 * TIER_RPM["free"]
    ev = {"acct": np.r_[np.zeros(burst), np.ones(burst)].astype(np.int32),
          "ts": np.r_[np.arange(burst) * 100, np.arange(burst) * 100].astype(np.int64)}
    limited = rate_limited(ev, [account("free"), account("enterprise")])
    assert limited[:burst].sum() == burst - TIER_RPM["free"]
    assert not limited[burst:].any()


def test_no_label_words_in_the_data(medium: Run, adaptive: Run) -> None:
    words = {t["actor_type"] for run in (medium, adaptive) for t in run.truth.values()}
    words |= {t["campaign"] for run in (medium, adaptive) for t in run.truth.values() if t["campaign"]}
    words = {w for w in words if "_" in w or "-" in w}  # single words ("classroom") occur in prompts anyway
    for run in (medium, adaptive):
        raw = gzip.decompress((run.dir / "exchanges.jsonl.gz").read_bytes()) + (run.dir / "accounts.jsonl").read_bytes()
        for w in words:
            assert w.encode() not in raw, w


# -- campaign behaviour ---------------------------------------------------------------------

def test_coding_campaign_moves_half_its_traffic_to_the_new_model_within_a_day(medium: Run) -> None:
    released = {r["model"]: _ts(r["released_at"]) for r in medium.releases}
    new_model = max(released, key=lambda m: released[m])
    t0 = released[new_model]

    def share_new(records: list[dict], lo: timedelta, hi: timedelta) -> float:
        window = [r for r in records if t0 + lo <= _ts(r["ts"]) < t0 + hi]
        return sum(r["model"] == new_model for r in window) / max(1, len(window))

    coding = medium.of_actor("coding_harvester")
    assert share_new(coding, timedelta(days=-7), timedelta(0)) == 0
    assert share_new(coding, timedelta(hours=12), timedelta(hours=36)) > 0.35
    assert share_new(coding, timedelta(hours=12), timedelta(hours=36)) > share_new(
        medium.of_actor("chat_user"), timedelta(hours=12), timedelta(hours=36)
    )


def test_naive_campaigns_share_infrastructure_and_adaptive_ones_do_not(medium: Run, adaptive: Run) -> None:
    def per_account(run: Run, actor: str, field: str) -> dict[str, str]:
        return {r["account_id"]: r[field] for r in run.of_actor(actor) if field in r}

    naive_cards = per_account(medium, "reasoning_harvester", "payment_fingerprint")
    assert len(set(naive_cards.values())) < len(naive_cards)
    naive_tls = per_account(medium, "reasoning_harvester", "tls_fingerprint")
    assert len(set(naive_tls.values())) == 1
    for actor in ("reasoning_harvester_adaptive", "coding_harvester_adaptive", "agentic_harvester_adaptive"):
        cards = per_account(adaptive, actor, "payment_fingerprint")
        assert len(set(cards.values())) == len(cards), actor
        blocks = {a: ip.rsplit(".", 1)[0] if "." in ip else ip[:19] for a, ip in per_account(adaptive, actor, "ip").items()}
        assert len(set(blocks.values())) >= 0.9 * len(blocks), actor


def test_adaptive_accounts_stay_small_and_vary_their_wording(adaptive: Run) -> None:
    counts = Counter(r["account_id"] for r in adaptive.exchanges)
    def median(actor: str) -> float:
        values = sorted(counts[a] for a, t in adaptive.truth.items() if t["actor_type"] == actor)
        return values[len(values) // 2]
    assert median("coding_harvester_adaptive") < 10 * median("chat_user")
    # First requests of episodes (later turns replay the same opening message).
    openings = [
        r["messages"][-1]["content"] for r in adaptive.by_label("campaign")
        if r["messages"][-1]["role"] == "user" and isinstance(r["messages"][-1]["content"], str)
        and not any(m["role"] in ("assistant", "tool") for m in r["messages"])
    ]
    assert len(set(openings)) > 0.9 * len(openings)
    # The wrappers vary: openings rarely share their first 40 characters.
    assert len({t[:40] for t in openings}) > 0.5 * len(openings)


def test_naive_reasoning_campaign_is_synchronised(medium: Run) -> None:
    """Batches go out round-robin: many different accounts within the same minute."""
    per_minute: defaultdict[str, set[str]] = defaultdict(set)
    for r in medium.of_actor("reasoning_harvester"):
        per_minute[r["ts"][:16]].add(r["account_id"])
    n_accounts = len({r["account_id"] for r in medium.of_actor("reasoning_harvester")})
    assert max(len(a) for a in per_minute.values()) == n_accounts


# -- interface ------------------------------------------------------------------------------

def test_bad_options_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DistillguardError, match="unknown scenario"):
        simulate("huge", 1, tmp_path)
    with pytest.raises(DistillguardError, match="seed"):
        simulate("small", -1, tmp_path)
    with pytest.raises(DistillguardError, match="scale"):
        simulate("small", 1, tmp_path, scale=0)


def test_cli_writes_files_and_prints_a_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--scenario", "small", "--seed", "3", "--out", str(tmp_path), "--scale", "0.05"]
    )
    assert result.exit_code == 0, result.output
    assert "chat_user" in result.output and "total" in result.output
    assert all((tmp_path / name).exists() for name in FILES)


# -- randomised worlds ----------------------------------------------------------------------

RANDOM_SCALE = 0.02


@pytest.fixture(scope="module")
def random_world(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(simulate("random", 1, tmp_path_factory.mktemp("random"), RANDOM_SCALE, quiet=True))


def _world(run: Run) -> dict:
    return orjson.loads((run.dir / "world.json").read_bytes())


def test_random_worlds_repeat_byte_for_byte_and_differ_between_seeds(random_world: Run, tmp_path: Path) -> None:
    simulate("random", 1, tmp_path / "again", RANDOM_SCALE, quiet=True)
    for name in (*FILES, "world.json"):
        assert (tmp_path / "again" / name).read_bytes() == (random_world.dir / name).read_bytes(), name
    simulate("random", 2, tmp_path / "other", RANDOM_SCALE, quiet=True)
    first, other = _world(random_world), orjson.loads((tmp_path / "other" / "world.json").read_bytes())
    assert first["campaigns"] != other["campaigns"] and first["legit"] != other["legit"]


def test_random_draws_respect_their_ranges() -> None:
    import numpy as np

    from distillguard.sim import randomworld as rw

    shapes, variants, sizes = Counter(), Counter(), []
    for seed in range(300):
        spec = rw.draw_spec(np.random.default_rng(seed), seed)
        assert rw.WINDOW_DAYS_RANGE[0] <= spec.window_days <= rw.WINDOW_DAYS_RANGE[1]
        assert 0 < spec.release_hours < 24 * spec.window_days
        assert len(spec.campaigns) >= rw.MIN_CAMPAIGNS
        assert len({c.name for c in spec.campaigns}) == len(spec.campaigns)
        for c in spec.campaigns:
            lo, hi = rw.SHAPE_ACCOUNTS[c.shape]
            assert lo <= c.accounts_drawn <= hi and 5 <= c.accounts_drawn <= 20_000, c
            lo, hi = rw.SHAPE_PER_DAY[c.shape]
            assert lo <= c.per_day_drawn <= hi, c
            assert 0.1 <= c.harvest_share <= 1.0
            assert (c.shape == "hydra") == (c.kind == "hydra")
            assert c.actor_type.endswith("_adaptive") == (c.variant == "adaptive")
            shapes[c.shape] += 1
            variants[c.variant] += 1
            sizes.append(c.accounts_drawn)
        for g in spec.legit:
            (c_lo, c_hi), (v_lo, v_hi), _ = rw.LEGIT_RANGES[g.actor_type]
            if g.heavy:
                assert rw.HEAVY_VOLUME[0] <= g.volume_drawn <= rw.HEAVY_VOLUME[1]
            else:
                assert c_lo <= g.accounts_drawn <= c_hi and v_lo <= g.volume_drawn <= v_hi
        rw.cap_accounts(spec)
        campaign_accounts = sum(c.accounts for c in spec.campaigns)
        legit_accounts = sum(g.accounts for g in spec.legit)
        assert campaign_accounts <= rw.MAX_CAMPAIGN_ACCOUNTS + 5 * len(spec.campaigns)
        # The cap never takes the legitimate population below its floor, and worlds stay in the thousands.
        slack = len(spec.legit)  # rounding, one account per group
        assert legit_accounts >= min(rw.MIN_LEGIT_ACCOUNTS, sum(g.accounts_drawn for g in spec.legit)) - slack
        assert campaign_accounts + legit_accounts >= 1_500
        assert campaign_accounts + legit_accounts <= rw.MAX_ACCOUNTS + slack or \
            legit_accounts <= rw.MIN_LEGIT_ACCOUNTS + slack
    assert set(shapes) == set(rw.SHAPES) and set(variants) == {"naive", "adaptive"}
    assert min(sizes) <= 10 and max(sizes) >= 5_000  # both ends of the range occur


def test_random_world_truth_matches_its_parameters(random_world: Run) -> None:
    world, run = _world(random_world), random_world
    assert run.truth_header == (*TRUTH_CSV_HEADER, "campaign_shape")
    shapes = {c["name"]: c["shape"] for c in world["campaigns"]}
    actor_of = {c["name"]: c["actor_type"] for c in world["campaigns"]}
    for t in run.truth.values():
        assert (t["label"] == "campaign") == bool(t["campaign"])
        if t["campaign"]:
            assert t["campaign_shape"] == shapes[t["campaign"]] and t["actor_type"] == actor_of[t["campaign"]]
        else:
            assert t["campaign_shape"] == "" and t["actor_type"] in {a for a, *_ in LEGIT_ACTORS}
    assert {t["campaign"] for t in run.truth.values() if t["campaign"]} <= set(shapes)
    # Every account in the truth sends traffic, and world.json counts what was written.
    per_account = Counter(r["account_id"] for r in run.exchanges)
    assert set(per_account) == set(run.truth) == {a["account_id"] for a in run.accounts}
    generated = world["generated"]
    assert generated["exchanges"] == len(run.exchanges) <= 1.02 * world["sizing"]["exchange_cap"]
    assert generated["accounts"] == len(run.truth)
    campaign_exchanges = Counter(run.truth[r["account_id"]]["campaign"] for r in run.exchanges)
    assert {k: v for k, v in campaign_exchanges.items() if k} == generated["exchanges_by_campaign"]
    # Traffic stays in the drawn window; the new model appears at the drawn release and not before.
    start, end = _ts(world["window"]["start"]), _ts(world["window"]["end"])
    assert end - start == timedelta(days=world["window"]["days"])
    assert all(start <= _ts(r["ts"]) < end for r in run.exchanges)
    released = {r["model"]: r["released_at"] for r in run.releases}
    new_model = max(released, key=lambda m: released[m])
    assert released[new_model] == world["window"]["release"]
    assert min(r["ts"] for r in run.exchanges if r["model"] == new_model) >= world["window"]["release"]
    for r in run.exchanges[::50]:
        _check_record(r)


def test_random_scenario_from_the_cli(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--scenario", "random", "--seed", "4", "--out", str(tmp_path), "--scale", "0.01", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert all((tmp_path / name).exists() for name in (*FILES, "world.json"))
