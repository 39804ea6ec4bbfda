"""The values that flow between detection, policy and enforcement.

Detection produces an `Assessment` of one account at the moment of one request; the policy turns it
into a `Decision`; the gateway (or the replay engine) enforces it. All three are plain frozen data so
decisions can be audited, compared and replayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Ordered from mildest to harshest: the order is used to report the first time an account reached
# each level and to pick the harsher of an account's and its cluster's actions.
ACTIONS: tuple[str, ...] = ("allow", "monitor", "throttle", "degrade", "block")


def severity(action: str) -> int:
    return ACTIONS.index(action)


@dataclass(frozen=True)
class Assessment:
    """What detection knows about an account when one of its requests arrives."""

    account_id: str
    risk: float  # calibrated account risk in [0, 1], as in accounts.csv
    flagged: bool  # risk at or above the model's operating point
    reasons: tuple[str, ...] = ()  # reason codes, strongest first (README "Reason codes")
    cluster_id: str | None = None
    cluster_risk: float = 0.0  # risk of the account's cluster, 0 when unclustered
    n_exchanges: int = 0  # exchanges the account made before this one
    # Elicitation signals that fired on *this* request (e.g. "e_reasoning"), for per-request degrading.
    request_signals: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DegradeSpec:
    """How a degraded response differs from a normal one."""

    strip_reasoning: bool = True  # remove reasoning/thinking content from responses
    max_tokens: int | None = None  # cap on the requested output budget
    decline_reasoning_extraction: bool = True  # refuse requests whose own signals are e_reasoning


@dataclass(frozen=True)
class Decision:
    """The action taken on one request, with the rule and reasons behind it (audited as is)."""

    action: str  # one of ACTIONS
    rule: str  # name of the policy rule that matched
    reasons: tuple[str, ...] = ()
    risk: float = 0.0
    retry_after: float | None = None  # seconds, set when a throttle refused this request
    degrade: DegradeSpec | None = None
    decline: bool = False  # refuse this request with a clear message (degrade of an extraction request)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        """True when the request must not reach the upstream model."""
        return self.action == "block" or self.retry_after is not None or self.decline


# Rules of decisions taken without the detector: it failed on this very request, or its state store
# did not answer. They are counted apart (`detector-error` in the gateway's decisions metric).
DETECTOR_ERROR = "detector-error"
STATE_UNAVAILABLE = "state-unavailable"
FAILURE_RULES = frozenset({DETECTOR_ERROR, STATE_UNAVAILABLE})


def failure_decision(rule: str, mode: str) -> Decision:
    """The decision on a request the detector could not assess: `mode` "allow" forwards it, "refuse"
    refuses it (the gateway answers 503, not a policy refusal)."""
    return Decision(action="allow" if mode == "allow" else "block", rule=rule)
