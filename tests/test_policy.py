"""Policy parsing and decisions, and token buckets in memory and in a real Redis."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest
import redis

from distillguard.errors import InputError
from distillguard.policy import (
    DEFAULT_POLICY,
    Assessment,
    DegradeSpec,
    MemoryBuckets,
    Policy,
    RedisBuckets,
)

ROOT = Path(__file__).resolve().parent.parent


def assess(**kw: Any) -> Assessment:
    base: dict[str, Any] = {"account_id": "a1", "risk": 0.0, "flagged": False}
    base.update(kw)
    return Assessment(**base)


def one_rule(when: dict[str, Any], action: str = "monitor", **extra: Any) -> Policy:
    return Policy.from_dict(
        {"version": 1, "rules": [{"name": "r", "when": when, "action": action, **extra}], "default": "allow"}
    )


THROTTLE_6_3 = {"per_minute": 6, "burst": 3, "scope": "account"}


# ------------------------------------------------------------------ the shipped default


def test_default_yaml_is_the_embedded_default() -> None:
    from_file = Policy.from_yaml(ROOT / "policies" / "default.yaml")
    assert from_file == Policy.default()
    assert from_file.default_action == "allow"
    assert [r.name for r in from_file.rules] == [r["name"] for r in DEFAULT_POLICY["rules"]]


@pytest.mark.parametrize(
    ("kw", "action", "rule"),
    [
        ({"risk": 0.99, "flagged": True, "n_exchanges": 50}, "block", "block-high-risk"),
        # Near-certain risk needs little history; a merely flagged account needs ten exchanges.
        ({"risk": 0.99, "flagged": True, "n_exchanges": 1}, "throttle", "throttle-near-certain-early"),
        ({"risk": 0.99, "flagged": True, "n_exchanges": 0}, "monitor", "monitor-elevated-risk"),
        ({"risk": 0.96, "flagged": True, "n_exchanges": 5}, "throttle", "throttle-very-likely"),
        ({"risk": 0.92, "flagged": True, "n_exchanges": 7}, "throttle", "throttle-likely"),
        ({"risk": 0.7, "flagged": True, "n_exchanges": 9}, "monitor", "monitor-elevated-risk"),
        (
            {"risk": 0.7, "flagged": True, "n_exchanges": 12, "cluster_id": "cl-0001", "cluster_risk": 0.95},
            "block",
            "block-flagged-in-high-risk-cluster",
        ),
        (
            {"risk": 0.7, "flagged": True, "n_exchanges": 12, "reasons": ("reasoning-extraction",)},
            "degrade",
            "degrade-reasoning-harvest",
        ),
        # A new member of a high-risk cluster is throttled on the cluster's evidence alone.
        (
            {"risk": 0.1, "n_exchanges": 0, "cluster_id": "cl-0002", "cluster_risk": 0.8},
            "throttle",
            "throttle-high-risk-cluster",
        ),
        ({"risk": 0.1, "n_exchanges": 0, "cluster_id": "cl-0003", "cluster_risk": 0.75}, "allow", "default"),
        ({"risk": 0.7, "flagged": True, "n_exchanges": 10}, "throttle", "throttle-flagged"),
        ({"risk": 0.4}, "monitor", "monitor-elevated-risk"),
        ({"risk": 0.1}, "allow", "default"),
    ],
)
def test_default_policy_actions(kw: dict[str, Any], action: str, rule: str) -> None:
    d = Policy.default().decide(assess(**kw), now=0.0, buckets=MemoryBuckets())
    assert (d.action, d.rule) == (action, rule)


# ------------------------------------------------------------------ conditions


@pytest.mark.parametrize(
    ("when", "kw", "matches"),
    [
        ({}, {}, True),
        ({"risk_at_least": 0.5}, {"risk": 0.5}, True),
        ({"risk_at_least": 0.5}, {"risk": 0.49}, False),
        ({"flagged": True}, {"flagged": True}, True),
        ({"flagged": True}, {"flagged": False}, False),
        ({"flagged": False}, {"flagged": False}, True),
        (
            {"reasons_any": ["shared-payment", "machine-timing"]},
            {"reasons": ("high-volume", "machine-timing")},
            True,
        ),
        ({"reasons_any": ["shared-payment"]}, {"reasons": ("high-volume",)}, False),
        ({"reasons_any": ["shared-payment"]}, {}, False),
        ({"cluster_risk_at_least": 0.6}, {"cluster_risk": 0.6}, True),
        ({"cluster_risk_at_least": 0.6}, {"cluster_risk": 0.59}, False),
        ({"in_cluster": True}, {"cluster_id": "cl-0001"}, True),
        ({"in_cluster": True}, {}, False),
        ({"in_cluster": False}, {}, True),
        ({"in_cluster": False}, {"cluster_id": "cl-0001"}, False),
        ({"min_exchanges": 20}, {"n_exchanges": 20}, True),
        ({"min_exchanges": 20}, {"n_exchanges": 19}, False),
        # All conditions must hold.
        ({"risk_at_least": 0.5, "flagged": True}, {"risk": 0.9, "flagged": False}, False),
        ({"risk_at_least": 0.5, "flagged": True}, {"risk": 0.9, "flagged": True}, True),
    ],
)
def test_each_condition(when: dict[str, Any], kw: dict[str, Any], matches: bool) -> None:
    d = one_rule(when).decide(assess(**kw), now=0.0, buckets=MemoryBuckets())
    assert (d.action, d.rule) == (("monitor", "r") if matches else ("allow", "default"))


def test_missing_or_null_when_always_matches() -> None:
    for rule in ({"name": "r", "action": "monitor"}, {"name": "r", "when": None, "action": "monitor"}):
        p = Policy.from_dict({"version": 1, "rules": [rule]})
        assert p.decide(assess(), 0.0, MemoryBuckets()).rule == "r"


def test_first_matching_rule_wins() -> None:
    p = Policy.from_dict(
        {
            "version": 1,
            "rules": [
                {"name": "high", "when": {"risk_at_least": 0.9}, "action": "block"},
                {"name": "mid", "when": {"risk_at_least": 0.5}, "action": "monitor"},
                {"name": "also-high", "when": {"risk_at_least": 0.9}, "action": "degrade"},
            ],
            "default": "monitor",
        }
    )
    b = MemoryBuckets()
    assert p.decide(assess(risk=0.95), 0.0, b).rule == "high"
    assert p.decide(assess(risk=0.6), 0.0, b).rule == "mid"
    low = p.decide(assess(risk=0.1, reasons=("high-volume",)), 0.0, b)
    assert (low.action, low.rule, low.reasons, low.risk) == ("monitor", "default", ("high-volume",), 0.1)


def test_decision_carries_reasons_and_risk() -> None:
    d = one_rule({"flagged": True}, "block").decide(
        assess(risk=0.97, flagged=True, reasons=("grader-rubric", "single-turn")), 0.0, MemoryBuckets()
    )
    assert (d.action, d.rule, d.reasons, d.risk, d.refused) == (
        "block",
        "r",
        ("grader-rubric", "single-turn"),
        0.97,
        True,
    )


# ------------------------------------------------------------------ throttle and degrade


def test_throttle_refuses_after_burst_and_recovers() -> None:
    p = one_rule({"flagged": True}, "throttle", throttle=THROTTLE_6_3)
    b = MemoryBuckets()
    a = assess(flagged=True)
    first = [p.decide(a, 100.0, b) for _ in range(3)]
    assert all(d.action == "throttle" and d.retry_after is None and not d.refused for d in first)
    refused = p.decide(a, 100.0, b)
    assert refused.action == "throttle" and refused.refused
    assert refused.retry_after == pytest.approx(10.0)  # 6 per minute: one token every 10 s
    assert p.decide(a, 105.0, b).retry_after == pytest.approx(5.0)
    assert p.decide(a, 110.0, b).retry_after is None  # waited exactly as told
    assert p.decide(a, 110.0, b).retry_after == pytest.approx(10.0)
    # A long pause refills to the burst, never beyond it.
    after_pause = [p.decide(a, 10_000.0, b).retry_after for _ in range(4)]
    assert after_pause[:3] == [None, None, None] and after_pause[3] == pytest.approx(10.0)


def test_throttle_clock_stepping_back_mints_no_tokens() -> None:
    b = MemoryBuckets()
    assert [b.take("k", 60, 1, 50.0), b.take("k", 60, 1, 40.0)] == [None, pytest.approx(1.0)]
    assert b.take("k", 60, 1, 50.5) == pytest.approx(0.5)  # measured from 50, not from 40


def test_throttle_scopes() -> None:
    cluster = one_rule(
        {"flagged": True}, "throttle", throttle={"per_minute": 6, "burst": 2, "scope": "cluster"}
    )
    b = MemoryBuckets()
    a1 = assess(account_id="a1", flagged=True, cluster_id="cl-0001")
    a2 = assess(account_id="a2", flagged=True, cluster_id="cl-0001")
    loner = assess(account_id="a3", flagged=True)
    assert cluster.decide(a1, 0.0, b).retry_after is None
    assert cluster.decide(a2, 0.0, b).retry_after is None
    # The cluster's budget is spent, whichever member asks next.
    assert cluster.decide(a1, 0.0, b).retry_after is not None
    assert cluster.decide(a2, 0.0, b).retry_after is not None
    # Without a cluster the account falls back to its own bucket.
    assert cluster.decide(loner, 0.0, b).retry_after is None
    # Account scope: each member of the cluster has its own budget.
    account = one_rule({"flagged": True}, "throttle", throttle={"per_minute": 6, "burst": 1})
    b2 = MemoryBuckets()
    assert [account.decide(a, 0.0, b2).retry_after for a in (a1, a2)] == [None, None]
    assert account.decide(a1, 0.0, b2).retry_after is not None


def test_degrade_and_decline() -> None:
    spec = {"strip_reasoning": False, "max_tokens": 512, "decline_reasoning_extraction": True}
    p = one_rule({"flagged": True}, "degrade", degrade=spec)
    b = MemoryBuckets()
    extraction = p.decide(assess(flagged=True, request_signals=frozenset({"e_reasoning"})), 0.0, b)
    assert extraction.degrade == DegradeSpec(strip_reasoning=False, max_tokens=512)
    assert extraction.decline and extraction.refused
    other = p.decide(assess(flagged=True, request_signals=frozenset({"e_rubric"})), 0.0, b)
    assert other.action == "degrade" and not other.decline and not other.refused
    lenient = one_rule({}, "degrade", degrade={"decline_reasoning_extraction": False})
    d = lenient.decide(assess(request_signals=frozenset({"e_reasoning"})), 0.0, b)
    assert not d.decline and d.degrade == DegradeSpec(decline_reasoning_extraction=False)
    assert one_rule({}, "degrade").decide(assess(), 0.0, b).degrade == DegradeSpec()


# ------------------------------------------------------------------ validation


def _with(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of a valid policy with one field (dotted path, list indexes as ints) replaced."""
    data = copy.deepcopy(base or DEFAULT_POLICY)
    parts = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = data
    for p in parts[:-1]:
        node = node[p]
    if value is _DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "<policy>: top level: expected a mapping"),
        (None, "<policy>: top level: expected a mapping"),
        (_with("version", _DELETE), "<policy>: version: required"),
        (_with("version", 2), "<policy>: version: expected 1"),
        (_with("version", True), "<policy>: version: expected 1"),
        (_with("rules", _DELETE), "<policy>: rules: required"),
        (_with("rules", {"a": 1}), "<policy>: rules: expected a list of rules"),
        (_with("rule", []), "<policy>: rule: unknown key"),
        (_with("default", "permit"), "<policy>: default: expected one of allow, monitor"),
        (_with("rules.0", "block"), "<policy>: rules[0]: expected a mapping"),
        (_with("rules.1.name", _DELETE), "<policy>: rules[1].name: required"),
        (_with("rules.1.name", ""), "<policy>: rules[1].name: expected a non-empty string"),
        (_with("rules.1.name", 7), "<policy>: rules[1].name: expected a non-empty string"),
        (_with("rules.1.name", "x" * 101), "<policy>: rules[1].name: expected a non-empty string"),
        (_with("rules.1.name", "default"), "<policy>: rules[1].name: 'default' is reserved"),
        (_with("rules.1.name", "block-high-risk"), "<policy>: rules[1].name: duplicate rule name"),
        (_with("rules.1.action", _DELETE), "<policy>: rules[1].action: required"),
        (_with("rules.1.action", "suspend"), "<policy>: rules[1].action: expected one of allow"),
        (_with("rules.1.actoin", "block"), "<policy>: rules[1].actoin: unknown key"),
        (_with("rules.1.when", [1]), "<policy>: rules[1].when: expected a mapping"),
        (_with("rules.1.when.risk_atleast", 0.5), "<policy>: rules[1].when.risk_atleast: unknown key"),
        (
            _with("rules.0.when.risk_at_least", 1.5),
            "<policy>: rules[0].when.risk_at_least: expected a number in [0, 1]",
        ),
        (
            _with("rules.0.when.risk_at_least", -0.1),
            "rules[0].when.risk_at_least: expected a number in [0, 1]",
        ),
        (
            _with("rules.0.when.risk_at_least", "high"),
            "rules[0].when.risk_at_least: expected a number in [0, 1]",
        ),
        (
            _with("rules.0.when.risk_at_least", True),
            "rules[0].when.risk_at_least: expected a number in [0, 1]",
        ),
        (_with("rules.0.when.risk_at_least", float("nan")), "rules[0].when.risk_at_least: expected a number"),
        (
            _with("rules.1.when.cluster_risk_at_least", 2),
            "rules[1].when.cluster_risk_at_least: expected a number in",
        ),
        (_with("rules.1.when.flagged", "yes"), "rules[1].when.flagged: expected true or false"),
        (_with("rules.1.when.in_cluster", 1), "rules[1].when.in_cluster: expected true or false"),
        (_with("rules.0.when.min_exchanges", -1), "rules[0].when.min_exchanges: expected an integer >= 0"),
        (_with("rules.0.when.min_exchanges", 2.5), "rules[0].when.min_exchanges: expected an integer >= 0"),
        (_with("rules.0.when.min_exchanges", False), "rules[0].when.min_exchanges: expected an integer >= 0"),
        (
            _with("rules.2.when.reasons_any", "reasoning-extraction"),
            "rules[2].when.reasons_any: expected a non-empty list",
        ),
        (_with("rules.2.when.reasons_any", []), "rules[2].when.reasons_any: expected a non-empty list"),
        (
            _with("rules.2.when.reasons_any.1", 3),
            "rules[2].when.reasons_any[1]: expected a reason code string",
        ),
        (
            _with("rules.2.when.reasons_any.1", "reasoning_extraction"),
            "rules[2].when.reasons_any[1]: unknown reason code",
        ),
        (_with("rules.4.throttle", _DELETE), "rules[4].throttle: required when action is throttle"),
        (_with("rules.4.throttle", 5), "rules[4].throttle: expected a mapping"),
        (_with("rules.4.throttle.per_minute", _DELETE), "rules[4].throttle.per_minute: required"),
        (_with("rules.4.throttle.per_minute", 0), "rules[4].throttle.per_minute: expected a number > 0"),
        (_with("rules.4.throttle.per_minute", "6"), "rules[4].throttle.per_minute: expected a number > 0"),
        (
            _with("rules.4.throttle.per_minute", float("inf")),
            "rules[4].throttle.per_minute: expected a number > 0",
        ),
        (_with("rules.4.throttle.burst", 0), "rules[4].throttle.burst: expected an integer in [1,"),
        (_with("rules.4.throttle.burst", 1.5), "rules[4].throttle.burst: expected an integer in [1,"),
        (_with("rules.4.throttle.scope", "org"), "rules[4].throttle.scope: expected one of account, cluster"),
        (_with("rules.4.throttle.per_hour", 1), "rules[4].throttle.per_hour: unknown key"),
        (_with("rules.0.throttle", THROTTLE_6_3), "rules[0].throttle: only allowed when action is throttle"),
        (_with("rules.0.degrade", {}), "rules[0].degrade: only allowed when action is degrade"),
        (_with("rules.2.degrade", "strip"), "rules[2].degrade: expected a mapping"),
        (
            _with("rules.2.degrade.max_tokens", 0),
            "rules[2].degrade.max_tokens: expected an integer >= 1 or null",
        ),
        (
            _with("rules.2.degrade.strip_reasoning", "no"),
            "rules[2].degrade.strip_reasoning: expected true or false",
        ),
        (
            _with("rules.2.degrade.decline_reasoning_extraction", None),
            "rules[2].degrade.decline_reasoning_extraction: expected true or false",
        ),
        (_with("rules.2.degrade.cap", 1), "rules[2].degrade.cap: unknown key"),
        (
            _with("rules", [{"name": f"r{i}", "action": "allow"} for i in range(1001)]),
            "rules: at most 1000 rules",
        ),
    ],
)
def test_validation_errors_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(InputError) as err:
        Policy.from_dict(data)
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_valid_variants_parse() -> None:
    p = Policy.from_dict(
        {
            "version": 1,
            "rules": [
                {"name": "t", "when": {}, "action": "throttle", "throttle": {"per_minute": 0.5, "burst": 1}},
                {"name": "d", "action": "degrade", "degrade": {"max_tokens": None}},
            ],
        }
    )
    assert p.default_action == "allow"
    assert p.rules[0].throttle is not None and p.rules[0].throttle.scope == "account"
    assert p.rules[1].degrade == DegradeSpec(max_tokens=None)


def test_yaml_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InputError, match=r"nope\.yaml: cannot read policy"):
        Policy.from_yaml(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nrules: [\n  - name: x\n")
    with pytest.raises(InputError, match=r"broken\.yaml: not valid YAML: line \d+") as err:
        Policy.from_yaml(broken)
    assert "\n" not in str(err.value)
    typo = tmp_path / "policy.yaml"
    typo.write_text("version: 1\nrules:\n  - name: x\n    when: {risk_at_leest: 0.5}\n    action: block\n")
    with pytest.raises(InputError, match=r"policy\.yaml: rules\[0\]\.when\.risk_at_leest: unknown key"):
        Policy.from_yaml(typo)
    huge = tmp_path / "huge.yaml"
    huge.write_text("#" * 1_000_001)
    with pytest.raises(InputError, match="larger than"):
        Policy.from_yaml(huge)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"version: 1\nrules: []\n# \xff\xfe\n")
    with pytest.raises(InputError, match="not UTF-8"):
        Policy.from_yaml(binary)
    with pytest.raises(InputError, match="cannot read policy"):
        Policy.from_yaml(tmp_path)


# ------------------------------------------------------------------ buckets


def test_memory_buckets_lru_bound() -> None:
    b = MemoryBuckets(max_keys=100)
    assert b.take("first", 1, 1, 0.0) is None
    assert b.take("first", 1, 1, 0.0) is not None  # empty now
    for i in range(1000):
        b.take(f"k{i}", 1, 1, 0.0)
        assert len(b) <= 100
    assert len(b) == 100
    # Evicted long ago: back as a full bucket.
    assert b.take("first", 1, 1, 0.0) is None
    # Recently used keys survive eviction.
    assert b.take("k999", 1, 1, 0.0) is not None


def test_bucket_parameters_are_checked() -> None:
    b = MemoryBuckets()
    for args in (("k", 0, 1), ("k", 6, 0), ("k", float("nan"), 1), ("", 6, 1), ("k", 6, True)):
        with pytest.raises(ValueError):
            b.take(*args, now=0.0)
    with pytest.raises(ValueError):
        MemoryBuckets(max_keys=0)


def _sequence(seed: int, n: int = 600) -> list[tuple[str, float, int, float]]:
    rng = random.Random(seed)
    now = 1_700_000_000.0
    out = []
    for _ in range(n):
        now += rng.choice([0.0, 0.0, 0.3, 1.7, 12.5, 90.0]) * rng.random()
        if rng.random() < 0.05:
            now -= 3.0  # an out-of-order request from another replica
        key = rng.choice(["acct:a", "acct:b", "clus:cl-0001"])
        per_minute, burst = {"acct:a": (6.0, 3), "acct:b": (0.7, 1), "clus:cl-0001": (30.0, 10)}[key]
        out.append((key, per_minute, burst, now))
    return out


def test_redis_buckets_agree_with_memory(redis_client: Any) -> None:
    mem, red = MemoryBuckets(), RedisBuckets(redis_client)
    for seed in (1, 2):
        got_mem = [mem.take(k, pm, b, now) for k, pm, b, now in _sequence(seed)]
        got_red = [red.take(k, pm, b, now) for k, pm, b, now in _sequence(seed)]
        assert got_red == got_mem  # same doubles, bit for bit
        assert any(w is None for w in got_mem) and any(w is not None for w in got_mem)
    # Buckets live under the prefix and expire once idle long enough to have refilled.
    keys = sorted(k.decode() for k in redis_client.keys("*"))
    assert keys == ["dg:tb:acct:a", "dg:tb:acct:b", "dg:tb:clus:cl-0001"]
    ttl_ms = redis_client.pttl("dg:tb:acct:a")
    assert 0 < ttl_ms <= 3 / (6 / 60) * 1000 + 1000


def test_policy_with_redis_buckets_shares_budget_across_clients(redis_client: Any, redis_url: str) -> None:
    # Two gateway replicas, each with its own connection, one cluster budget.
    p = one_rule({"flagged": True}, "throttle", throttle={"per_minute": 6, "burst": 2, "scope": "cluster"})
    replicas = [RedisBuckets(redis_client), RedisBuckets(redis.Redis.from_url(redis_url))]
    a1 = assess(account_id="a1", flagged=True, cluster_id="cl-9")
    a2 = assess(account_id="a2", flagged=True, cluster_id="cl-9")
    waits = [
        p.decide(a, 1000.0, r).retry_after
        for a, r in ((a1, replicas[0]), (a2, replicas[1]), (a1, replicas[1]))
    ]
    assert waits[:2] == [None, None] and waits[2] == pytest.approx(10.0)
    replicas[1].client.close()
