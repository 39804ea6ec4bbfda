"""The enforcement policy: ordered rules mapping an account's `Assessment` to a `Decision`.

A policy is read from YAML (docs/policy.md) and validated strictly: every key is known, every value
has the right type and range, and a mistake is reported as one line naming the file and the field,
such as ``policy.yaml: rules[2].when.risk_at_least: expected a number in [0, 1]``. A typo must fail
loudly, because a rule that silently never matches leaves a campaign running.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from distillguard.errors import InputError
from distillguard.policy.buckets import BucketStore
from distillguard.policy.decision import ACTIONS, Assessment, Decision, DegradeSpec
from distillguard.reasons import CODES

POLICY_VERSION = 1
MAX_POLICY_BYTES = 1_000_000
MAX_RULES = 1_000
MAX_NAME_LENGTH = 100
MAX_BURST = 1_000_000
MAX_PER_MINUTE = 1_000_000.0
SCOPES = ("account", "cluster")
# What the gateway does with a request the detector could not decide on (docs/policy.md "When
# detection fails"): `refuse` it (fail closed) or `allow` it (fail open).
FAILURE_MODES = ("refuse", "allow")
# A fault confined to one request is triggered by that request's own content, so allowing it would
# let anyone switch detection off for their traffic: refused by default.
DEFAULT_ON_DETECTOR_ERROR = "refuse"
# A state store that does not answer fails every request alike and is not something a client can
# trigger at will; refusing would make Redis a single point of failure for the whole API.
DEFAULT_ON_STATE_UNAVAILABLE = "allow"
# The request signal a degrade rule may decline (distillguard.signals, elicitation kinds).
REASONING_SIGNAL = "e_reasoning"

# The shipped default (also policies/default.yaml; a test keeps the two identical). Conservative:
# only overwhelming evidence blocks, and most flagged accounts are slowed or degraded, not cut off,
# so a legitimate heavy user flagged by mistake keeps working. docs/policy.md explains each rule.
DEFAULT_POLICY: dict[str, Any] = {
    "version": 1,
    "rules": [
        {
            "name": "block-high-risk",
            "when": {
                "risk_at_least": 0.98,
                "min_exchanges": 20
            },
            "action": "block"
        },
        {
            "name": "block-flagged-in-high-risk-cluster",
            "when": {
                "flagged": True,
                "min_exchanges": 10,
                "cluster_risk_at_least": 0.9
            },
            "action": "block"
        },
        {
            "name": "degrade-reasoning-harvest",
            "when": {
                "flagged": True,
                "min_exchanges": 10,
                "reasons_any": [
                    "reasoning-extraction",
                    "agent-trace-harvest"
                ]
            },
            "action": "degrade",
            "degrade": {
                "strip_reasoning": True,
                "max_tokens": 2048,
                "decline_reasoning_extraction": True
            }
        },
        {
            "name": "throttle-high-risk-cluster",
            "when": {
                "in_cluster": True,
                "cluster_risk_at_least": 0.8
            },
            "action": "throttle",
            "throttle": {
                "per_minute": 30,
                "burst": 10,
                "scope": "cluster"
            }
        },
        {
            "name": "throttle-near-certain-early",
            "when": {
                "risk_at_least": 0.98,
                "min_exchanges": 1
            },
            "action": "throttle",
            "throttle": {
                "per_minute": 6,
                "burst": 3,
                "scope": "account"
            }
        },
        {
            "name": "throttle-very-likely",
            "when": {
                "risk_at_least": 0.95,
                "min_exchanges": 5
            },
            "action": "throttle",
            "throttle": {
                "per_minute": 6,
                "burst": 3,
                "scope": "account"
            }
        },
        {
            "name": "throttle-likely",
            "when": {
                "risk_at_least": 0.9,
                "min_exchanges": 7
            },
            "action": "throttle",
            "throttle": {
                "per_minute": 6,
                "burst": 3,
                "scope": "account"
            }
        },
        {
            "name": "throttle-flagged",
            "when": {
                "flagged": True,
                "min_exchanges": 10
            },
            "action": "throttle",
            "throttle": {
                "per_minute": 6,
                "burst": 3,
                "scope": "account"
            }
        },
        {
            "name": "monitor-elevated-risk",
            "when": {
                "risk_at_least": 0.3
            },
            "action": "monitor"
        }
    ],
    "default": "allow"
}


@dataclass(frozen=True)
class When:
    """Conditions of a rule; all given ones must hold, and no condition at all always matches."""

    risk_at_least: float | None = None
    flagged: bool | None = None
    reasons_any: tuple[str, ...] | None = None
    cluster_risk_at_least: float | None = None
    in_cluster: bool | None = None
    min_exchanges: int | None = None

    def matches(self, a: Assessment) -> bool:
        return (
            (self.risk_at_least is None or a.risk >= self.risk_at_least)
            and (self.flagged is None or a.flagged == self.flagged)
            and (self.reasons_any is None or any(r in a.reasons for r in self.reasons_any))
            and (self.cluster_risk_at_least is None or a.cluster_risk >= self.cluster_risk_at_least)
            and (self.in_cluster is None or (a.cluster_id is not None) == self.in_cluster)
            and (self.min_exchanges is None or a.n_exchanges >= self.min_exchanges)
        )


@dataclass(frozen=True)
class ThrottleSpec:
    per_minute: float
    burst: int
    scope: str = "account"  # "cluster": one bucket shared by every account of the cluster

    def bucket_key(self, a: Assessment) -> str:
        # An unclustered account has no cluster bucket to share, so it is throttled on its own.
        if self.scope == "cluster" and a.cluster_id is not None:
            return f"clus:{a.cluster_id}"
        return f"acct:{a.account_id}"


@dataclass(frozen=True)
class Rule:
    name: str
    when: When
    action: str
    throttle: ThrottleSpec | None = None
    degrade: DegradeSpec | None = None


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    default_action: str = "allow"  # the YAML's `default`: the action when no rule matches
    on_detector_error: str = DEFAULT_ON_DETECTOR_ERROR  # one of FAILURE_MODES
    on_state_unavailable: str = DEFAULT_ON_STATE_UNAVAILABLE

    @classmethod
    def default(cls) -> Policy:
        """The shipped policy, `DEFAULT_POLICY` (the same as policies/default.yaml)."""
        return cls.from_dict(DEFAULT_POLICY, source="DEFAULT_POLICY")

    @classmethod
    def from_yaml(cls, path: Path) -> Policy:
        path = Path(path)
        source = str(path)
        try:
            with path.open("rb") as f:  # bounded read: a huge file or a device cannot exhaust memory
                raw = f.read(MAX_POLICY_BYTES + 1)
        except OSError as exc:
            raise InputError(f"{source}: cannot read policy: {exc.strerror or _one_line(exc)}") from None
        if len(raw) > MAX_POLICY_BYTES:
            raise InputError(f"{source}: policy file is larger than {MAX_POLICY_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{source}: policy file is not UTF-8 text") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<policy>") -> Policy:
        return _parse_policy(data, source)

    def decide(self, a: Assessment, now: float, buckets: BucketStore) -> Decision:
        """The action for this request: the first rule whose conditions hold, else the default."""
        rule = self.rule_for(a)
        if rule is None:
            return self.decision(None, a)
        wait = None
        if rule.throttle is not None:
            t = rule.throttle
            wait = buckets.take(t.bucket_key(a), t.per_minute, t.burst, now)
        return self.decision(rule, a, wait)

    def rule_for(self, a: Assessment) -> Rule | None:
        """The first rule whose conditions hold (None: the default action). With `decision`, the
        two halves of `decide`, for callers that take the throttle tokens themselves (the gateway
        takes a whole batch's from Redis in one round trip)."""
        for rule in self.rules:
            if rule.when.matches(a):
                return rule
        return None

    def decision(self, rule: Rule | None, a: Assessment, wait: float | None = None) -> Decision:
        """The decision of `rule` on `a`; `wait` is what its throttle's token take answered."""
        if rule is None:
            return Decision(action=self.default_action, rule="default", reasons=a.reasons, risk=a.risk)
        return _apply(rule, a, wait)


def _apply(rule: Rule, a: Assessment, wait: float | None) -> Decision:
    base = {"action": rule.action, "rule": rule.name, "reasons": a.reasons, "risk": a.risk}
    if rule.throttle is not None:
        return Decision(**base, retry_after=wait)
    if rule.action == "degrade":
        spec = rule.degrade or DegradeSpec()
        decline = spec.decline_reasoning_extraction and REASONING_SIGNAL in a.request_signals
        return Decision(**base, degrade=spec, decline=decline)
    return Decision(**base)


# ---------------------------------------------------------------- validation


class _Bad(Exception):
    """A validation failure at `where` (a field path); turned into an InputError with the source."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or _one_line(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{' '.join(str(problem).split())}"


def _parse_policy(data: Any, source: str) -> Policy:
    try:
        top = _mapping(data, "", required={"version", "rules"},
                       allowed={"version", "rules", "default", "on_detector_error", "on_state_unavailable"})
        version = top["version"]
        if isinstance(version, bool) or version != POLICY_VERSION:
            raise _Bad("version", f"expected {POLICY_VERSION}")
        rules_raw = top["rules"]
        if not isinstance(rules_raw, list):
            raise _Bad("rules", "expected a list of rules")
        if len(rules_raw) > MAX_RULES:
            raise _Bad("rules", f"at most {MAX_RULES} rules, got {len(rules_raw)}")
        rules = tuple(_parse_rule(r, f"rules[{i}]") for i, r in enumerate(rules_raw))
        seen: set[str] = set()
        for i, rule in enumerate(rules):
            if rule.name in seen:
                raise _Bad(f"rules[{i}].name", f"duplicate rule name {rule.name!r}")
            seen.add(rule.name)
        default = _action(top.get("default", "allow"), "default")
        on_error = _failure_mode(top.get("on_detector_error", DEFAULT_ON_DETECTOR_ERROR), "on_detector_error")
        on_unavailable = _failure_mode(top.get("on_state_unavailable", DEFAULT_ON_STATE_UNAVAILABLE),
                                       "on_state_unavailable")
    except _Bad as bad:
        raise InputError(f"{source}: {bad}") from None
    return Policy(rules=rules, default_action=default, on_detector_error=on_error,
                  on_state_unavailable=on_unavailable)


def _failure_mode(v: Any, where: str) -> str:
    if not isinstance(v, str) or v not in FAILURE_MODES:
        raise _Bad(where, f"expected one of {', '.join(FAILURE_MODES)}")
    return v


_RULE_KEYS = {"name", "when", "action", "throttle", "degrade"}
_WHEN_KEYS = {
    "risk_at_least",
    "flagged",
    "reasons_any",
    "cluster_risk_at_least",
    "in_cluster",
    "min_exchanges",
}
_THROTTLE_KEYS = {"per_minute", "burst", "scope"}
_DEGRADE_KEYS = {"strip_reasoning", "max_tokens", "decline_reasoning_extraction"}


def _parse_rule(raw: Any, where: str) -> Rule:
    r = _mapping(raw, where, required={"name", "action"}, allowed=_RULE_KEYS)
    name = r["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise _Bad(f"{where}.name", f"expected a non-empty string of at most {MAX_NAME_LENGTH} characters")
    if name == "default":
        raise _Bad(f"{where}.name", "'default' is reserved for decisions no rule matched")
    action = _action(r["action"], f"{where}.action")
    when = _parse_when(r.get("when", {}), f"{where}.when")
    throttle = None
    if action == "throttle":
        if "throttle" not in r:
            raise _Bad(f"{where}.throttle", "required when action is throttle")
        throttle = _parse_throttle(r["throttle"], f"{where}.throttle")
    elif "throttle" in r:
        raise _Bad(f"{where}.throttle", f"only allowed when action is throttle, not {action}")
    degrade = None
    if "degrade" in r:
        if action != "degrade":
            raise _Bad(f"{where}.degrade", f"only allowed when action is degrade, not {action}")
        degrade = _parse_degrade(r["degrade"], f"{where}.degrade")
    elif action == "degrade":
        degrade = DegradeSpec()
    return Rule(name=name, when=when, action=action, throttle=throttle, degrade=degrade)


def _parse_when(raw: Any, where: str) -> When:
    if raw is None:  # `when:` with nothing after it reads as null: the same as an empty condition
        raw = {}
    w = _mapping(raw, where, required=set(), allowed=_WHEN_KEYS)
    reasons = None
    if "reasons_any" in w:
        reasons = _reason_list(w["reasons_any"], f"{where}.reasons_any")
    return When(
        risk_at_least=_opt(w, "risk_at_least", where, _unit_float),
        flagged=_opt(w, "flagged", where, _bool),
        reasons_any=reasons,
        cluster_risk_at_least=_opt(w, "cluster_risk_at_least", where, _unit_float),
        in_cluster=_opt(w, "in_cluster", where, _bool),
        min_exchanges=_opt(w, "min_exchanges", where, _non_negative_int),
    )


def _parse_throttle(raw: Any, where: str) -> ThrottleSpec:
    t = _mapping(raw, where, required={"per_minute", "burst"}, allowed=_THROTTLE_KEYS)
    per_minute = t["per_minute"]
    if not _is_number(per_minute) or not 0 < per_minute <= MAX_PER_MINUTE:
        raise _Bad(f"{where}.per_minute", f"expected a number > 0 and <= {MAX_PER_MINUTE:g}")
    burst = t["burst"]
    if not _is_int(burst) or not 1 <= burst <= MAX_BURST:
        raise _Bad(f"{where}.burst", f"expected an integer in [1, {MAX_BURST}]")
    scope = t.get("scope", "account")
    if scope not in SCOPES:
        raise _Bad(f"{where}.scope", f"expected one of {', '.join(SCOPES)}")
    return ThrottleSpec(per_minute=float(per_minute), burst=burst, scope=scope)


def _parse_degrade(raw: Any, where: str) -> DegradeSpec:
    if raw is None:
        raw = {}
    d = _mapping(raw, where, required=set(), allowed=_DEGRADE_KEYS)
    defaults = DegradeSpec()
    max_tokens = d.get("max_tokens", defaults.max_tokens)
    if max_tokens is not None and (not _is_int(max_tokens) or max_tokens < 1):
        raise _Bad(f"{where}.max_tokens", "expected an integer >= 1 or null")
    return DegradeSpec(
        strip_reasoning=_bool(d.get("strip_reasoning", defaults.strip_reasoning), f"{where}.strip_reasoning"),
        max_tokens=max_tokens,
        decline_reasoning_extraction=_bool(
            d.get("decline_reasoning_extraction", defaults.decline_reasoning_extraction),
            f"{where}.decline_reasoning_extraction",
        ),
    )


def _mapping(raw: Any, where: str, *, required: set[str], allowed: set[str]) -> Mapping[str, Any]:
    """`raw` as a mapping with only `allowed` keys and all `required` ones; `where` "" is the top level."""
    if not isinstance(raw, Mapping):
        raise _Bad(where or "top level", "expected a mapping")
    for key in raw:
        if not isinstance(key, str) or key not in allowed:
            field = _field(where, str(key)[:60])
            raise _Bad(field, f"unknown key (expected one of {', '.join(sorted(allowed))})")
    for key in sorted(required):
        if key not in raw:
            raise _Bad(_field(where, key), "required")
    return raw


def _field(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _opt(m: Mapping[str, Any], key: str, where: str, parse: Any) -> Any:
    return parse(m[key], f"{where}.{key}") if key in m else None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _unit_float(v: Any, where: str) -> float:
    if not _is_number(v) or not 0.0 <= v <= 1.0:
        raise _Bad(where, "expected a number in [0, 1]")
    return float(v)


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise _Bad(where, "expected true or false")
    return v


def _non_negative_int(v: Any, where: str) -> int:
    if not _is_int(v) or v < 0:
        raise _Bad(where, "expected an integer >= 0")
    return int(v)


def _action(v: Any, where: str) -> str:
    if not isinstance(v, str) or v not in ACTIONS:
        raise _Bad(where, f"expected one of {', '.join(ACTIONS)}")
    return v


def known_reason_codes() -> frozenset[str]:
    """Every reason code detection can give an account (README "Reason codes")."""
    return CODES


def _reason_list(v: Any, where: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not v:
        raise _Bad(where, "expected a non-empty list of reason codes")
    known = known_reason_codes()
    for i, code in enumerate(v):
        if not isinstance(code, str):
            raise _Bad(f"{where}[{i}]", "expected a reason code string")
        if code not in known:
            raise _Bad(f"{where}[{i}]", f"unknown reason code {code[:60]!r} (see README 'Reason codes')")
    return tuple(dict.fromkeys(v))
