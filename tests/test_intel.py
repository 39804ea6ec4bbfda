"""Indicator sharing: STIX bundle of a flagged hydra, watchlist import and matching, the intel CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import stix2
from typer.testing import CliRunner

from distillguard.cli.intel import intel_app
from distillguard.errors import InputError
from distillguard.intel.fingerprint import DEFAULT_KEY, keyed
from distillguard.intel.indicators import INDICATOR_KINDS, parse_pattern, pattern_of
from distillguard.intel.stix import build_bundle, write_bundle
from distillguard.intel.watchlist import Watchlist
from distillguard.linking import link_accounts
from distillguard.signals.template import head, skeleton, text_hash
from test_linking import TASKS, WRAPPERS, background, connect, hydra

API_KEY = "sk-live-7f3a9c0d2b"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """A provider's analysis with one hydra cluster flagged, written as indicators.stix.json."""
    rng = random.Random(11)
    rows = hydra(rng, api_key=API_KEY) + background(rng, 40)
    con = connect(rows)
    link = link_accounts(con)
    cluster = link.accounts.to_pylist()[0]["cluster_id"]  # accounts are sorted: hydra-00 comes first
    assert cluster is not None
    path = tmp_path_factory.mktemp("intel") / "indicators.stix.json"
    write_bundle(build_bundle(con, link, {cluster}, key=DEFAULT_KEY), path)
    return path, rows


def test_bundle_is_valid_stix_without_prompts_or_keys(exported: tuple[Path, list]) -> None:
    path, rows = exported
    text = path.read_text()
    bundle = stix2.parse(text)
    types = [o.type for o in bundle.objects]
    assert types.count("campaign") == 1
    assert types.count("indicator") == types.count("relationship") > 10
    patterns = [o.pattern for o in bundle.objects if o.type == "indicator"]
    assert any(p.startswith("[ipv4-addr:value ISSUBSET") for p in patterns)
    assert any("head_hmac" in p for p in patterns)
    assert API_KEY not in text
    assert "hydra-" not in text  # no account identifiers
    for r in rows:
        assert r.prompt[:40] not in text
    for word in ("reasoning behind", "palindromic", "chain of thought"):
        assert word not in text.lower()


def test_partner_computes_the_same_template_fingerprint(exported: tuple[Path, list]) -> None:
    """The documented recipe: HMAC-SHA256(key, str(text_hash(head(skeleton(prompt)))))."""
    path, _ = exported
    prompt = WRAPPERS[0].replace("{task}", TASKS[0])
    mine = keyed(DEFAULT_KEY, text_hash(head(skeleton(prompt))))
    assert mine in path.read_text()


def test_every_indicator_kind_round_trips_through_its_pattern() -> None:
    for kind in INDICATOR_KINDS:
        value = "64512" if kind.numeric else ("10.0.0.0/24" if "prefix" in kind.name else "ab12" * 16)
        pattern = pattern_of(kind, value)
        stix2.Indicator(pattern=pattern, pattern_type="stix")  # validated by the STIX pattern grammar
        assert parse_pattern(pattern) == (kind.name, value)
    assert parse_pattern("[file:name = 'x.exe']") is None


def test_imported_bundle_raises_watchlist_matches(exported: tuple[Path, list], tmp_path: Path) -> None:
    path, _ = exported
    wl = Watchlist(key=DEFAULT_KEY)
    added = wl.import_bundle(path)
    assert added["head_hmac"] > 0 and added["ipv4_prefix"] > 0
    wl.save(tmp_path / "wl.json")
    wl = Watchlist.load(tmp_path / "wl.json", key=DEFAULT_KEY)

    # Our own traffic: the same operation reuses its wrappers from new accounts, next to bystanders.
    rng = random.Random(99)
    con = connect(hydra(rng, n=3, prefix="newhydra") + background(rng, 15, prefix="ours"))
    matches = wl.match(con)
    assert set(matches) == {"newhydra-00", "newhydra-01", "newhydra-02"}
    result = link_accounts(con, watchlist=wl)
    rows = {r["account_id"]: r for r in result.accounts.to_pylist()}
    assert rows["newhydra-01"]["watchlist"] == 1.0
    assert "watchlist-match" in rows["newhydra-01"]["link_reasons"]
    assert rows["ours-000"]["watchlist"] == 0.0


def test_watchlist_rejects_what_is_not_a_bundle(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "indicator", "hello": 1}))
    with pytest.raises(InputError):
        Watchlist().import_bundle(bad)
    with pytest.raises(InputError):
        Watchlist().import_bundle(tmp_path / "missing.json")


def test_intel_cli_import_and_show(exported: tuple[Path, list], tmp_path: Path) -> None:
    path, _ = exported
    wl_path = tmp_path / "watch" / "watchlist.json"
    runner = CliRunner()
    result = runner.invoke(intel_app, ["import", str(path), "--watchlist", str(wl_path)])
    assert result.exit_code == 0, result.output
    assert "imported" in result.output and wl_path.exists()
    stored = json.loads(wl_path.read_text())
    assert stored["indicators"]["head_hmac"]
    again = runner.invoke(intel_app, ["import", str(path), "--watchlist", str(wl_path)])
    assert "imported 0 new indicators" in again.output
    shown = runner.invoke(intel_app, ["show", "--watchlist", str(wl_path)])
    assert shown.exit_code == 0 and "head_hmac" in shown.output
    failed = runner.invoke(intel_app, ["import", str(tmp_path / "nope.json"), "--watchlist", str(wl_path)])
    assert failed.exit_code != 0 and isinstance(failed.exception, InputError)
