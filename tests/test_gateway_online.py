"""The gateway with the real online detector: clusters found by `analyze` are enforced inline."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import openai
import pytest

from distillguard.engines.online import OnlineDetector
from distillguard.gateway.app import GatewayConfig, create_app
from distillguard.gateway.standin import create_standin_app
from distillguard.linking.features import CLUSTER_FEATURES
from distillguard.linking.snapshot import LinkSnapshot
from gateway_helpers import ServerThread

MEMBER_KEY = "sk-test-member-0001"
OUTSIDER_KEY = "sk-test-outsider-0002"


def _account(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    """A cluster snapshot in which the member key's account belongs to a high-risk cluster."""
    snap = LinkSnapshot()
    values = np.zeros(len(CLUSTER_FEATURES) + 1)
    values[0] = np.log(40)  # cluster_log_accounts
    snap.values[_account(MEMBER_KEY)] = values
    snap.cluster_of[_account(MEMBER_KEY)] = "cl-hydra"
    snap.link_reasons[_account(MEMBER_KEY)] = "shared-template"
    snap.cluster_risk["cl-hydra"] = 0.97
    folder = tmp_path / "links"
    snap.write(folder)
    return folder


def test_cluster_member_is_throttled_through_the_sdk(snapshot: Path, tmp_path: Path) -> None:
    detector = OnlineDetector.create(links=snapshot)
    with ServerThread(create_standin_app()) as upstream:
        config = GatewayConfig(upstream=upstream.url, audit_path=tmp_path / "audit.jsonl")
        with ServerThread(create_app(config, detector)) as gateway:
            member = openai.OpenAI(base_url=gateway.url + "/v1", api_key=MEMBER_KEY, max_retries=0)
            outsider = openai.OpenAI(base_url=gateway.url + "/v1", api_key=OUTSIDER_KEY, max_retries=0)
            ask = {"model": "standin-1", "messages": [{"role": "user", "content": "Sort a list in Python."}]}
            # The default policy's cluster rule: one budget of burst 10 for the whole cluster.
            for _ in range(10):
                assert member.chat.completions.create(**ask).choices[0].message.content
            with pytest.raises(openai.RateLimitError) as refused:
                member.chat.completions.create(**ask)
            assert int(refused.value.response.headers["retry-after"]) >= 1
            for _ in range(12):  # an account outside the cluster is untouched
                assert outsider.chat.completions.create(**ask).choices[0].message.content
    audit = (tmp_path / "audit.jsonl").read_text()
    assert '"rule": "throttle-high-risk-cluster"' in audit or '"rule":"throttle-high-risk-cluster"' in audit
    assert MEMBER_KEY not in audit and OUTSIDER_KEY not in audit


@pytest.mark.parametrize("attach", [True, False])
def test_newcomer_from_a_clusters_own_range_is_attached(tmp_path: Path, attach: bool) -> None:
    """A fresh key sending from an address range distinctive of a high-risk cluster joins it at its
    first request and shares the cluster's budget; without attaching it is an unknown account."""
    from distillguard.signals.exchange import ip_prefix

    snap = LinkSnapshot()
    values = np.zeros(len(CLUSTER_FEATURES) + 1)
    values[0] = np.log(40)
    for i in range(5):
        snap.values[f"member-{i}"] = values
        snap.cluster_of[f"member-{i}"] = "cl-hydra"
    snap.cluster_risk["cl-hydra"] = 0.97
    snap.key_index[("ip_prefix", str(ip_prefix("127.0.0.1")))] = "cl-hydra"
    snap.finish()
    folder = tmp_path / "links"
    snap.write(folder)
    detector = OnlineDetector.create(links=folder, attach=attach)
    with ServerThread(create_standin_app()) as upstream:
        config = GatewayConfig(upstream=upstream.url, audit_path=tmp_path / "audit.jsonl")
        with ServerThread(create_app(config, detector)) as gateway:
            newcomer = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-test-newcomer-0003", max_retries=0)
            ask = {"model": "standin-1", "messages": [{"role": "user", "content": "Sort a list in Python."}]}
            for _ in range(10):
                assert newcomer.chat.completions.create(**ask).choices[0].message.content
            if attach:
                with pytest.raises(openai.RateLimitError):
                    newcomer.chat.completions.create(**ask)
            else:
                assert newcomer.chat.completions.create(**ask).choices[0].message.content
    audit = (tmp_path / "audit.jsonl").read_text()
    assert ("throttle-high-risk-cluster" in audit) == attach
