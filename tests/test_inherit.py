"""Accounts that share egress ranges or cards almost only with flagged accounts are flagged with them
(`Linker.inherited`): a reseller's smallest accounts, never a campus NAT's students."""

import csv
from pathlib import Path

import duckdb
import pytest
from worldgen import generate

from distillguard.engines.local import join_on_account, load_features, open_store
from distillguard.ingest import RejectSink
from distillguard.linking.config import KIND_ID, SHARED_INFRASTRUCTURE, LinkConfig
from distillguard.linking.link import Linker, _inherit_sql
from distillguard.scoring.assign import inherit, score_table
from distillguard.scoring.model import AccountModel


def test_only_accounts_on_almost_wholly_flagged_values_inherit() -> None:
    """A reseller /24 used by 60 flagged accounts and 6 unflagged ones (mostly on it), a commuter
    who passes through it, a campus NAT of 12 flagged and 28 unflagged students, a range of 3
    flagged accounts and 1 other (too few to say), and a card shared by 9 flagged accounts and one
    more."""
    cfg = LinkConfig()
    ip, card = KIND_ID["ip_prefix"], KIND_ID["payment"]
    inc, verdict, n_ex = [], [], []

    def account(flagged: bool, risk: float, uses: list[tuple[int, str, int]], total: int) -> int:
        aid = len(verdict)
        verdict.append((aid, risk, flagged))
        n_ex.append((aid, total))
        inc.extend((aid, kind, key, n) for kind, key, n in uses)
        return aid

    for i in range(60):
        account(True, 0.95 + i / 1000, [(ip, "185.7.7", 20)], 20)
    loose = [account(False, 0.2, [(ip, "185.7.7", 6), (ip, f"home-{i}", 2)], 8) for i in range(6)]
    commuter = account(False, 0.2, [(ip, "185.7.7", 2), (ip, "home-x", 8)], 10)
    for _ in range(12):
        account(True, 0.97, [(ip, "10.0.0", 10)], 10)
    students = [account(False, 0.1, [(ip, "10.0.0", 5)], 5) for _ in range(28)]
    for _ in range(3):
        account(True, 0.99, [(ip, "77.1.1", 10)], 10)
    lone = account(False, 0.3, [(ip, "77.1.1", 10)], 10)
    for _ in range(9):
        account(True, 0.9, [(card, "card-1", 3)], 3)
    payer = account(False, 0.4, [(card, "card-1", 4)], 4)

    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE _lk_inc (aid INTEGER, kind UTINYINT, key VARCHAR, n INTEGER)")
    con.executemany("INSERT INTO _lk_inc VALUES (?, ?, ?, ?)", inc)
    con.execute("CREATE TEMP TABLE _lk_verdict (aid INTEGER, risk DOUBLE, flagged BOOLEAN)")
    con.executemany("INSERT INTO _lk_verdict VALUES (?, ?, ?)", verdict)
    con.execute("CREATE TEMP TABLE _lk_acct (aid INTEGER, n_ex BIGINT)")
    con.executemany("INSERT INTO _lk_acct VALUES (?, ?)", n_ex)
    found = {aid: (kind, risk) for aid, kind, risk in con.execute(_inherit_sql(cfg)).fetchall()}
    assert set(found) == {*loose, payer}
    # The median risk of the value's flagged users: above the threshold they were flagged at.
    assert all(found[a] == (ip, pytest.approx(0.9795)) for a in loose)
    assert found[payer] == (card, pytest.approx(0.9))
    assert commuter not in found and lone not in found and not set(students) & set(found)


@pytest.fixture(scope="module")
def reseller_world(tmp_path_factory) -> Path:
    """An independent generator's naive world: its hydra reseller's accounts leave through shared
    egress ranges, and many of them harvest too little to be flagged on their own."""
    out = tmp_path_factory.mktemp("inherit") / "world"
    generate(321, "naive", out, scale=0.2, shape="contract", days=7)
    return out


def test_a_resellers_unflagged_accounts_inherit_its_verdict(reseller_world: Path) -> None:
    con = open_store(None)
    with RejectSink(None) as rejects:
        features, _, _ = load_features(con, [reseller_world / "exchanges.jsonl.gz"], rejects=rejects, quiet=True,
                                       accounts=reseller_world / "accounts.jsonl",
                                       releases=reseller_world / "releases.jsonl")
    model = AccountModel.load()
    threshold = model.threshold(0.001, 0.0025)
    with reseller_world.joinpath("truth.csv").open(newline="") as fh:
        truth = {r["account_id"]: r for r in csv.DictReader(fh)}
    with Linker(con) as linker:
        scored = score_table(join_on_account(features, linker.link().accounts), model, threshold)
        inherited = linker.inherited(scored)
    with Linker(con, config=LinkConfig(inherit_rounds=0)) as linker:
        assert linker.inherited(scored).num_rows == 0
    ids = inherited.column("account_id").to_pylist()
    assert len(ids) >= 50
    assert {truth[a]["label"] for a in ids} == {"campaign"}
    assert {truth[a]["campaign_shape"] for a in ids} == {"hydra"}
    after = {r["account_id"]: r for r in inherit(scored, inherited).to_pylist()}
    for account in ids:
        row = after[account]
        assert row["flagged"] and row["risk"] > threshold
        assert row["reasons"].split(";")[0] == SHARED_INFRASTRUCTURE
    before = {r["account_id"]: r for r in scored.to_pylist()}
    assert all(after[a] == before[a] for a in before if a not in set(ids))
