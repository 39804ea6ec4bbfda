"""The reason-code registry is the only place codes are defined: every stage's codes are in it."""

from __future__ import annotations

import pytest

from distillguard.linking.config import EDGE_KINDS
from distillguard.policy.policy import known_reason_codes
from distillguard.reasons import BY_CODE, CODES, REASONS, code
from distillguard.report.html import REASON_DESCRIPTIONS
from distillguard.scoring.model import REASON_OF_FEATURE


def test_every_code_any_stage_emits_is_registered() -> None:
    assert set(REASON_OF_FEATURE.values()) <= CODES
    assert {k.reason for k in EDGE_KINDS} <= CODES
    assert known_reason_codes() == CODES
    assert set(REASON_DESCRIPTIONS) == CODES


def test_registry_entries_are_unique_and_described() -> None:
    assert len(BY_CODE) == len(REASONS)
    for r in REASONS:
        assert r.source in ("behaviour", "linking", "intel", "scoring")
        assert r.description.endswith(".") and len(r.description) > 20


def test_unknown_code_is_refused() -> None:
    assert code("shared-template") == "shared-template"
    with pytest.raises(KeyError, match="shared-templates"):
        code("shared-templates")
