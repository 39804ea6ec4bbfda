"""Keyed fingerprints: how prompt templates and payment instruments are shared without their content.

A partner matches its own traffic against our indicators by computing the same fingerprint of its
own prompts: ``HMAC-SHA256(key, str(h))`` as lower-case hex, where ``h`` is the signed 64-bit hash
that `distillguard.signals.template` gives (``text_hash(skeleton(prompt))`` and so on; see
docs/linking.md). The key is agreed between the sharing partners: ``DEFAULT_KEY`` unless the
``DISTILLGUARD_INTEL_KEY`` environment variable sets another. Without the key a fingerprint cannot
be tested against guessed prompts, and prompt text itself never leaves the provider.
"""

from __future__ import annotations

import hashlib
import hmac
import os

DEFAULT_KEY = b"distillguard-indicators-v1"
KEY_ENV = "DISTILLGUARD_INTEL_KEY"


def intel_key(value: str | None = None) -> bytes:
    """The sharing key: an explicit value, else $DISTILLGUARD_INTEL_KEY, else the documented default."""
    chosen = value if value is not None else os.environ.get(KEY_ENV)
    return chosen.encode("utf-8") if chosen else DEFAULT_KEY


def key_id(key: bytes) -> str:
    """A short public identifier of a key, so partners can tell whether they use the same one."""
    return hashlib.sha256(b"distillguard-key-id:" + key).hexdigest()[:16]


def keyed(key: bytes, value: int | str) -> str:
    """HMAC-SHA256 of the decimal (or plain string) form of a value, as lower-case hex."""
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()
