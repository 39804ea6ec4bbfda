"""Policy stage: from an account's assessment to the action taken on its request."""

from distillguard.policy.buckets import BucketStore, MemoryBuckets, RedisBuckets
from distillguard.policy.decision import ACTIONS, Assessment, Decision, DegradeSpec, severity
from distillguard.policy.policy import DEFAULT_POLICY, Policy, Rule, ThrottleSpec, When

__all__ = [
    "ACTIONS",
    "DEFAULT_POLICY",
    "Assessment",
    "BucketStore",
    "Decision",
    "DegradeSpec",
    "MemoryBuckets",
    "Policy",
    "RedisBuckets",
    "Rule",
    "ThrottleSpec",
    "When",
    "severity",
]
