"""Every reason code detection can give an account or a cluster: one registry, read by scoring (which
feature gives which code), linking (edge kinds), policy (rules that name codes), the online engine
and the report (the analyst's one-line description).

A code's `source` says which stage produces it: `behaviour` (an account's own traffic), `linking`
(its cluster and the links to it), `intel` (a shared watchlist) or `scoring` (the fallback when no
single signal is strong enough to be listed).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    code: str
    source: str
    description: str


REASONS: tuple[Reason, ...] = (
    Reason("high-volume", "behaviour",
           "Many exchanges over the window, or per active day, compared with typical accounts."),
    Reason("burst-volume", "behaviour", "One hour with far more exchanges than a typical account's busiest hour."),
    Reason("sustained-activity", "behaviour", "Active on most days of the window, like a job that does not stop."),
    Reason("round-the-clock", "behaviour",
           "Traffic spread evenly over the 24 hours of the day instead of following a working day."),
    Reason("machine-timing", "behaviour",
           "Requests paced at regular intervals, as a script or a load balancer sends them."),
    Reason("reasoning-extraction", "behaviour",
           "Prompts asking the model to write out its step-by-step reasoning (chain-of-thought harvesting)."),
    Reason("grader-rubric", "behaviour",
           "Prompts using the model as a grader or reward model, scoring answers against a rubric."),
    Reason("synthetic-data-generation", "behaviour",
           "Prompts asking for batches of training examples, instructions or question-answer pairs."),
    Reason("sensitive-rewrite", "behaviour", "Prompts asking for 'safe' rewrites of politically sensitive questions."),
    Reason("agent-trace-harvest", "behaviour", "Prompts built to collect complete agent or tool-use traces."),
    Reason("elicitation", "behaviour", "A large share of prompts of any of the elicitation kinds above."),
    Reason("template-concentration", "behaviour",
           "Most prompts share one template or system prompt and differ only in their slots."),
    Reason("capability-focus", "behaviour",
           "Traffic narrowly focused on capabilities most valuable for training (coding, math, agentic, reasoning)."),
    Reason("single-turn", "behaviour", "Almost every exchange is a fresh single-turn request rather than a conversation."),
    Reason("tool-use-focus", "behaviour", "Most exchanges offer tools to the model or carry tool turns."),
    Reason("long-outputs", "behaviour",
           "Requests that draw long answers: high output/input token ratio, often stopped at max_tokens."),
    Reason("new-model-pivot", "behaviour", "Traffic moved to a newly released model within 24 hours of its release."),
    Reason("new-account", "behaviour", "The account was created less than 30 days before its traffic."),
    Reason("entry-point-tier", "behaviour",
           "The account is on a cheap or lightly verified programme (free, education, startup, research, trial)."),
    Reason("unverified", "behaviour", "The account has not been verified."),
    Reason("coordinated-cluster", "linking",
           "The account is linked to other accounts into a cluster that scores high as a whole."),
    Reason("shared-harvest-content", "linking",
           "The account sends the same harvesting prompts (near-duplicates) as other suspect accounts."),
    Reason("shared-infrastructure", "linking",
           "Linked to its cluster by shared IP prefixes, ASN, TLS fingerprint, user agent or e-mail domain."),
    Reason("shared-payment", "linking", "Linked to its cluster by a shared payment instrument."),
    Reason("creation-burst", "linking", "Created within minutes of other accounts of its cluster."),
    Reason("shared-template", "linking",
           "Linked to its cluster by the same prompt wrappers, system prompts or near-duplicate prompts."),
    Reason("synchronized", "linking",
           "Sends the same wrappers or request shapes in the same hours as other accounts of its cluster."),
    Reason("watchlist-match", "intel", "The account matches an indicator on a shared watchlist."),
    Reason("combined-signals", "scoring",
           "Flagged by several weaker signals together, none strong enough on its own to be listed."),
)

BY_CODE: dict[str, Reason] = {r.code: r for r in REASONS}
CODES: frozenset[str] = frozenset(BY_CODE)


def code(name: str) -> str:
    """`name` itself, after checking it is a registered code (so a typo fails at import, not in a report)."""
    if name not in BY_CODE:
        raise KeyError(f"unknown reason code {name!r}")
    return name


COORDINATED_CLUSTER = code("coordinated-cluster")
SHARED_INFRASTRUCTURE = code("shared-infrastructure")
SHARED_PAYMENT = code("shared-payment")
SHARED_TEMPLATE = code("shared-template")
SYNCHRONIZED = code("synchronized")
CREATION_BURST = code("creation-burst")
NEW_MODEL_PIVOT = code("new-model-pivot")
SHARED_HARVEST_CONTENT = code("shared-harvest-content")
WATCHLIST_MATCH = code("watchlist-match")
COMBINED_SIGNALS = code("combined-signals")
