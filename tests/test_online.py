"""Account state: the batch fold agrees with an independent SQL definition of the features and with
the state built one exchange at a time; replay agrees with analyze."""

import csv
import math
import random
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from distillguard.behaviour.features import FEATURES, STATE_TABLE, account_features, account_states
from distillguard.behaviour.state import (
    _NULL_KEY,
    DISTINCT_SLOTS,
    HEAVY_SLOTS,
    MAX_STATE_BYTES,
    AccountInfo,
    AccountState,
    Release,
    _mix64,
    mix64_array,
    window_days,
)
from distillguard.cli import app
from distillguard.engines.local import load_side_tables, load_signals, open_store
from distillguard.engines.online import OnlineDetector, account_infos, release_list
from distillguard.engines.state import MemoryStore
from distillguard.ingest.rejects import RejectSink
from distillguard.policy.policy import Policy
from distillguard.sim import simulate
from feature_oracle import FEATURE_SQL

runner = CliRunner()
# Features read from sketches; every other feature must match the SQL to rounding error.
SKETCHED = {"top_frame_share", "top_tail_share", "top_skeleton_share", "frame_diversity"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("online")
    simulate("small", 23, root / "sim", scale=0.12, quiet=True)
    return root / "sim"


@pytest.fixture(scope="module")
def batch(world):
    """The batch path's signals and features for the simulated world."""
    con = open_store(None)
    with RejectSink(None) as rejects:
        load_signals(con, [world / "exchanges.jsonl.gz"], rejects=rejects, quiet=True)
        load_side_tables(con, rejects=rejects, accounts=world / "accounts.jsonl", releases=world / "releases.jsonl")
    return con, account_features(con)


def _fold(con):
    releases = release_list(con.sql("SELECT * FROM releases").to_arrow_table())
    rows = con.sql("SELECT * REPLACE (epoch_ms(ts) AS ts) FROM signals ORDER BY ts, request_id").to_arrow_table()
    states: dict[str, AccountState] = {}
    for row in rows.to_pylist():
        states.setdefault(row["account_id"], AccountState()).update(row, releases)
    lo, hi = con.execute("SELECT epoch_ms(min(ts)), epoch_ms(max(ts)) FROM signals").fetchall()[0]
    return states, window_days(lo, hi)


def test_batch_fold_matches_the_sql_definition(batch):
    """Every feature of the fold equals the SQL oracle's; template diversity, a k-minimum-values
    estimate above `DISTINCT_SLOTS` distinct frames, within the sketch's error there."""
    con, features = batch
    oracle = {row["account_id"]: row for row in con.sql(FEATURE_SQL).to_arrow_table().to_pylist()}
    ids, states = account_states(con)
    assert ids == features.column("account_id").to_pylist() == sorted(oracle)
    errors = []
    for row, state in zip(features.to_pylist(), states, strict=True):
        expected = oracle[row["account_id"]]
        assert row["n_exchanges"] == expected["n_exchanges"] == state.n
        for name in FEATURES:
            if name == "frame_diversity" and len(state.frames.mins) == DISTINCT_SLOTS:
                continue
            assert row[name] == pytest.approx(expected[name], abs=1e-9), name
        if len(state.frames.mins) == DISTINCT_SLOTS:
            distinct = expected["frame_diversity"] * state.n
            errors.append(abs(state.frames.estimate() - distinct) / distinct)
    # Relative error of k-minimum-values is about 1/sqrt(k - 2): 0.27 for 16 slots.
    assert len(errors) >= 5 and float(np.median(errors)) < 0.3


def test_vectorised_hash_matches_the_scalar_one():
    keys = np.array([0, 1, -1, _NULL_KEY, 2**63 - 1, -(2**63), 123456789], dtype=np.int64)
    assert mix64_array(keys).tolist() == [_mix64(int(k)) for k in keys]


def test_streamed_states_match_the_batch_fold(batch):
    con, features = batch
    states, days = _fold(con)
    infos = account_infos(con.sql("SELECT * FROM accounts").to_arrow_table())
    exact_accounts = 0
    for expected in features.to_pylist():
        state = states[expected["account_id"]]
        online = state.features(days, infos.get(expected["account_id"]))
        for name in FEATURES:
            if name in SKETCHED:
                continue
            assert online[name] == pytest.approx(expected[name], abs=1e-9), name
        if len(state.frames.mins) < DISTINCT_SLOTS and all(len(s.counts) < HEAVY_SLOTS for s in state.templates):
            exact_accounts += 1
            for name in SKETCHED:  # below the sketch sizes the sketches are exact
                assert online[name] == pytest.approx(expected[name], abs=1e-9), name
        else:
            for name in SKETCHED:  # above, a share is never overstated (Space-Saving lower bound)
                if name != "frame_diversity":
                    assert online[name] <= expected[name] + 1e-9, name
    assert exact_accounts >= 10  # the exact branch above was exercised


def test_state_roundtrips_and_merges(batch):
    con, _ = batch
    rows = con.sql("SELECT * REPLACE (epoch_ms(ts) AS ts) FROM signals ORDER BY ts").to_arrow_table().to_pylist()
    busiest = max({r["account_id"] for r in rows}, key=lambda a: sum(r["account_id"] == a for r in rows))
    mine = [r for r in rows if r["account_id"] == busiest]
    releases = [Release("m-new", mine[len(mine) // 2]["ts"])]
    whole, left, right = AccountState(), AccountState(), AccountState()
    for i, row in enumerate(mine):
        whole.update(row, releases)
        (left if i % 2 else right).update(row, releases)
    blob = whole.to_bytes()
    assert len(blob) <= MAX_STATE_BYTES
    again = AccountState.from_bytes(blob)
    assert again.to_bytes() == blob
    left.merge(right)
    info = AccountInfo(created_at_ms=mine[0]["ts"], tier="education", verified=False)
    merged, direct = left.features(14, info), whole.features(14, info)
    for name in FEATURES:
        if name in SKETCHED or name in {"log_peak_hour", "gap_regularity"}:
            continue  # order-dependent or sketched: checked elsewhere
        assert merged[name] == pytest.approx(direct[name], abs=1e-9), name


def _states_of(con, where: str) -> pa.Table:
    """Serialised states of the `signals` rows matching `where`, folded on a connection of their own
    (as an executor of a distributed engine folds its partition)."""
    part = duckdb.connect()
    part.register("signals", con.sql(f"SELECT * FROM signals WHERE {where}").to_arrow_table())
    part.register("releases", con.sql("SELECT * FROM releases").to_arrow_table())
    ids, states = account_states(part)
    part.close()
    return pa.table({"account_id": ids, "state": [s.to_bytes() for s in states]})


def test_features_from_partition_states(batch):
    """States folded per partition and left in `STATE_TABLE` give the features of the whole fold:
    exactly when each account is in one partition, and every counter when an account is split."""
    con, features = batch
    direct = {r["account_id"]: r for r in features.to_pylist()}
    mid = con.execute("SELECT epoch_ms(min(ts) + (max(ts) - min(ts)) / 2) FROM signals").fetchall()[0][0]
    splits = {
        "by account": [f"hash(account_id) % 3 = {k}" for k in range(3)],
        "by time": [f"epoch_ms(ts) < {mid}", f"epoch_ms(ts) >= {mid}"],
    }
    for how, parts in splits.items():
        blobs = pa.concat_tables([_states_of(con, where) for where in parts])
        con.register("_blobs", blobs)
        con.execute(f"CREATE TABLE {STATE_TABLE} AS SELECT * FROM _blobs")
        try:
            merged = {r["account_id"]: r for r in account_features(con).to_pylist()}
        finally:
            con.execute(f"DROP TABLE {STATE_TABLE}")
            con.unregister("_blobs")
        assert merged.keys() == direct.keys()
        split = how == "by time"
        inexact = SKETCHED | {"log_peak_hour", "gap_regularity"} if split else set()
        for account, row in merged.items():
            for name in ("n_exchanges", *FEATURES):
                if name not in inexact:
                    assert row[name] == pytest.approx(direct[account][name], abs=1e-9), (how, name)


@pytest.mark.parametrize("cut", [0, 10, 95, 180])
def test_corrupt_state_is_refused(batch, cut):
    con, _ = batch
    state = AccountState()
    for row in con.sql("SELECT * REPLACE (epoch_ms(ts) AS ts) FROM signals LIMIT 50").to_arrow_table().to_pylist():
        state.update(row)
    blob = state.to_bytes()
    with pytest.raises(ValueError, match="account state"):
        AccountState.from_bytes(blob[:cut] if cut < len(blob) else blob + b"x")


def test_random_bytes_are_refused_with_value_error_only():
    """A corrupt blob (e.g. a tampered Redis value) is refused cleanly, never an IndexError or crash."""
    rng = random.Random(5)
    refused = 0
    for _ in range(300):
        blob = bytes([1]) + bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 400)))
        try:
            AccountState.from_bytes(blob)
        except ValueError:
            refused += 1
    assert refused == 300


def test_memory_per_account_is_bounded():
    """A flood of new accounts keeps the store at its bound (LRU), each blob under MAX_STATE_BYTES."""
    store = MemoryStore(max_entries=300)
    detector = OnlineDetector(store=store)
    for i in range(1500):
        detector.assess({"request_id": f"r{i}", "ts": 1_700_000_000_000 + 1000 * i, "account_id": f"flood-{i}",
                         "model": "m", "messages": [{"role": "user", "content": f"question number {i}"}]},
                        now=float(i))
    assert len(store) <= 300
    assert store.get("flood-1499") is not None and store.get("flood-0") is None
    assert len(store.get("flood-1499")) <= MAX_STATE_BYTES


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def replayed(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("replay")
    args = ["--accounts", str(world / "accounts.jsonl"), "--releases", str(world / "releases.jsonl"), "--quiet"]
    result = runner.invoke(app, ["replay", str(world / "exchanges.jsonl.gz"), *args, "--relink-hours", "24",
                                 "--out", str(out / "replay")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["analyze", str(world / "exchanges.jsonl.gz"), *args, "--out", str(out / "batch")])
    assert result.exit_code == 0, result.output
    return out / "replay", out / "batch"


def test_replay_writes_the_contract(replayed, world):
    out, _ = replayed
    rows = _csv(out / "actions.csv")
    assert rows, "the small world has campaigns; some account must be acted on"
    assert list(rows[0]) == ["account_id", "action", "first_ts", "exchanges_before"]
    truth = {r["account_id"]: r for r in _csv(world / "truth.csv")}
    for row in rows:
        assert row["action"] in {"monitor", "throttle", "degrade", "block"}
        assert row["first_ts"].endswith("Z") and int(row["exchanges_before"]) >= 0
        assert row["account_id"] in truth
    contained = {r["account_id"] for r in rows if r["action"] in {"throttle", "degrade", "block"}}
    campaign = {a for a, t in truth.items() if t["label"] == "campaign"}
    assert len(contained & campaign) >= 0.8 * len(campaign)
    assert (out / "rejected.jsonl").exists()


def test_replay_final_risk_agrees_with_analyze(replayed):
    """Parity (README "Containing campaigns online"): after the whole log, |risk difference| <= 0.1 for every account and
    <= 0.02 for 95% of them, and the flag agrees for at least 99% (the sketches are the only source
    of difference; below their sizes features are exact), and accounts with the same flag, outside
    the clusters of accounts whose flag differs, are clustered in both or in neither."""
    out, batch_out = replayed
    online = {r["account_id"]: r for r in _csv(out / "accounts.csv")}
    batch = {r["account_id"]: r for r in _csv(batch_out / "accounts.csv")}
    assert online.keys() == batch.keys()
    diffs = sorted(abs(float(online[a]["risk"]) - float(batch[a]["risk"])) for a in batch)
    assert diffs[-1] <= 0.1
    assert diffs[math.floor(0.95 * (len(diffs) - 1))] <= 0.02
    agree = sum(online[a]["flagged"] == batch[a]["flagged"] for a in batch)
    assert agree >= 0.99 * len(batch)
    # Reported clusters are grouped by verdict, so an account whose flag differs may be clustered
    # differently, and so may the members of its cluster (one account fewer can leave a group below
    # the minimum cluster size): compare the others.
    differ = {a for a in batch if online[a]["flagged"] != batch[a]["flagged"]}
    touched = [{r[a]["cluster_id"] for a in differ} - {""} for r in (online, batch)]
    settled = [a for a in batch if a not in differ
               and online[a]["cluster_id"] not in touched[0] and batch[a]["cluster_id"] not in touched[1]]
    assert len(settled) >= 0.95 * len(batch)
    assert all(bool(online[a]["cluster_id"]) == bool(batch[a]["cluster_id"]) for a in settled)


def test_replay_refuses_bad_options(world, tmp_path):
    result = runner.invoke(app, ["replay", str(world / "exchanges.jsonl.gz"), "--relink-hours", "-1",
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    bad = tmp_path / "policy.yaml"
    bad.write_text("version: 1\nrules: [{name: x, when: {risk_at_least: 3}, action: block}]\n")
    result = runner.invoke(app, ["replay", str(world / "exchanges.jsonl.gz"), "--policy", str(bad),
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    result = runner.invoke(app, ["replay", str(world / "exchanges.jsonl.gz"), "--segment-fpr-budget", "1.5",
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code != 0


def test_gateway_assess_matches_replay_observe(batch):
    """The gateway's entry point (a contract record) and replay's (a signals row) fold the same state."""
    con, _ = batch
    records = con.sql(
        "SELECT request_id, epoch_ms(ts) AS ts, account_id, model, ip FROM signals ORDER BY ts LIMIT 1"
    ).to_arrow_table().to_pylist()
    record = {**records[0], "messages": [{"role": "user", "content": "Explain step by step how to sort a list."}]}
    gateway, offline = OnlineDetector(policy=Policy.default()), OnlineDetector(policy=Policy.default())
    decision = gateway.assess(dict(record), now=0.0)
    gateway.complete({**record, "output_tokens": 40, "input_tokens": 9, "stop_reason": "end_turn"})
    from distillguard.ingest.normalise import exchange_row
    from distillguard.ingest.reader import rows_to_batch
    from distillguard.signals.exchange import exchange_signals

    row = exchange_signals(rows_to_batch([exchange_row(
        {**record, "output_tokens": 40, "input_tokens": 9, "stop_reason": "end_turn"})])).to_pylist()[0]
    row["ts"] = record["ts"]
    assert offline.observe(row, now=0.0).action == decision.action
    assert gateway.store.get(record["account_id"]) == offline.store.get(record["account_id"])


def test_kept_states_never_outlive_their_blob(batch):
    """Parsed states are reused only for the very blob they were written to: not after an update
    that failed halfway, and not after the store's blob was replaced behind the detector's back."""
    con, _ = batch
    rows = con.sql("SELECT * REPLACE (epoch_ms(ts) AS ts) FROM signals ORDER BY ts LIMIT 3").to_arrow_table()
    first, second, third = (dict(r, account_id="acct-x") for r in rows.to_pylist())
    detector = OnlineDetector(policy=Policy.default())
    assert detector.observe_many([first], [0.0])[0][1] == 0
    broken = {k: v for k, v in second.items() if k != "capability"}  # fails after counting the exchange
    with pytest.raises(KeyError):
        detector.observe_many([broken], [0.0])
    assert detector.observe_many([second], [0.0])[0][1] == 1  # the failed update left nothing behind
    assert AccountState.from_bytes(detector.store.get("acct-x")).n == 2
    other = OnlineDetector(policy=Policy.default())
    other.observe_many([first], [0.0])
    detector.store.update("acct-x", lambda _: other.store.get("acct-x"))  # another writer's blob
    assert detector.observe_many([third], [0.0])[0][1] == 1


def _signals_table(rows):
    from distillguard.signals.exchange import SIGNALS_SCHEMA

    full = []
    for r in rows:
        base = {name: None for name in SIGNALS_SCHEMA.names}
        base.update({"lsh": [0] * 8, "ts": 0, "model": "m", "capability": 0})
        base.update(r)
        full.append(base)
    import pyarrow as pa

    return pa.Table.from_pylist(full, schema=SIGNALS_SCHEMA)


def test_cluster_keys_keep_only_distinctive_infrastructure():
    """A network's own proxy range attaches a newcomer, even when a linking pass split the network
    over two clusters or left some of its flagged accounts out; a range it shares with honest
    accounts does not, and content keys never attach (honest benchmark runs share problem sets)."""
    import duckdb
    import pyarrow as pa

    from distillguard.linking.attach import cluster_keys, match_cluster

    rows = []
    for i in range(4):  # the network: its own range, plus a cloud range it shares with honest users
        rows.append({"request_id": f"c{i}", "account_id": f"camp-{i}", "ip_prefix": "203.0.113.0/24",
                     "frame_hash": 111, "lsh": [7001] * 8})
        rows.append({"request_id": f"c{i}s", "account_id": f"camp-{i}", "ip_prefix": "198.51.100.0/24"})
    for i in range(4, 7):  # the same network, found as a second cluster by the linking pass
        rows.append({"request_id": f"c{i}", "account_id": f"camp-{i}", "ip_prefix": "203.0.113.0/24"})
    for i in range(7, 9):  # flagged members the pass left unclustered
        rows.append({"request_id": f"c{i}", "account_id": f"camp-{i}", "ip_prefix": "203.0.113.0/24"})
    for i in range(6):  # honest users of the cloud range
        rows.append({"request_id": f"l{i}", "account_id": f"legit-{i}", "ip_prefix": "198.51.100.0/24"})
    con = duckdb.connect()
    con.register("signals_in", _signals_table(rows))
    con.execute("CREATE TABLE signals AS SELECT * FROM signals_in")
    members = pa.table({"account_id": [f"camp-{i}" for i in range(7)], "cluster_id": ["cl-1"] * 4 + ["cl-2"] * 3})
    asked: list[str] = []

    def flagged(accounts: list[str]) -> set[str]:
        asked.extend(accounts)
        return {a for a in accounts if a.startswith("camp-")}

    index = cluster_keys(con, members, ["cl-1", "cl-2"], flagged)
    # Only the outsiders of a key that fails without them are looked up; the cloud range, mostly
    # used by outsiders, is never distinctive and its honest users are not scored for it.
    assert sorted(asked) == ["camp-7", "camp-8"]
    # The range is split 4/3 over the two clusters: still distinctive, lent to the larger share.
    assert index == {("ip_prefix", "203.0.113.0/24"): "cl-1"}
    # Unflagged, the two unclustered users of the range are outsiders: 7 of 9 is below 90%.
    assert cluster_keys(con, members, ["cl-1", "cl-2"]) == {}
    assert match_cluster({"ip_prefix": "203.0.113.0/24"}, index) == "cl-1"
    assert match_cluster({"ip_prefix": "198.51.100.0/24", "frame_hash": 111, "lsh": [7001] * 8}, index) is None
    assert cluster_keys(con, members, [], flagged) == {}


def test_a_request_through_a_flagged_operations_range_inherits_its_verdict(batch):
    """Online verdict inheritance: the egress ranges that flagged accounts almost only use are
    indexed with their median risk; a new account's request through one is flagged at that risk
    with `shared-infrastructure` first, and a request through a range shared with honest users or
    used by too few accounts keeps the model's verdict."""
    import duckdb
    import pyarrow as pa

    from distillguard.linking.snapshot import LinkSnapshot

    rows = [{"request_id": f"c{i}", "account_id": f"camp-{i}", "ip_prefix": "203.0.113.0/24"} for i in range(6)]
    rows += [{"request_id": f"o{i}", "account_id": f"camp-{i}", "ip_prefix": "198.51.100.0/24"} for i in range(6)]
    rows += [{"request_id": f"l{i}", "account_id": f"legit-{i}", "ip_prefix": "198.51.100.0/24"} for i in range(6)]
    rows += [{"request_id": f"s{i}", "account_id": f"camp-{i}", "ip_prefix": "192.0.2.0/24"} for i in range(4)]
    con = duckdb.connect()
    con.register("signals", _signals_table(rows))
    verdicts = pa.table({"account_id": [f"camp-{i}" for i in range(6)] + [f"legit-{i}" for i in range(6)],
                         "risk": [0.91, 0.93, 0.95, 0.97, 0.99, 0.2] + [0.01] * 6,
                         "flagged": [True] * 5 + [False] + [False] * 6})
    snapshot = LinkSnapshot()
    snapshot.index_egress(con, verdicts)
    # 5 of the range's 6 users flagged is below 90%: with the sixth flagged too, it is the network's.
    assert snapshot.egress == {}
    verdicts = verdicts.set_column(2, "flagged", pa.array([True] * 6 + [False] * 6))
    snapshot.index_egress(con, verdicts)
    assert snapshot.egress == {("ip_prefix", "203.0.113.0/24"): pytest.approx(0.94)}

    base, _ = batch
    row = base.sql("SELECT * REPLACE (epoch_ms(ts) AS ts) FROM signals ORDER BY ts LIMIT 1").to_arrow_table().to_pylist()[0]
    detector = OnlineDetector(policy=Policy.default())
    plain = detector.observe_many([dict(row, account_id="newcomer", ip_prefix="198.51.100.0/24")], [0.0])
    assert plain[0][0].risk < detector.threshold
    detector.use_links(snapshot)
    through = detector.observe_many([dict(row, account_id="newcomer-2", ip_prefix="203.0.113.0/24")], [0.0])
    assert through[0][0].risk == pytest.approx(0.94) and detector.threshold < 0.94
    assert through[0][0].reasons[0] == "shared-infrastructure"
    elsewhere = detector.observe_many([dict(row, account_id="newcomer-3", ip_prefix="192.0.2.0/24")], [0.0])
    assert elsewhere[0][0].risk < detector.threshold


def test_gateway_loads_the_cluster_snapshot_of_analyze(replayed, tmp_path):
    from distillguard.errors import InputError
    from distillguard.linking.snapshot import LinkSnapshot

    _, batch_out = replayed
    snap = LinkSnapshot.read(batch_out / "links")
    # The snapshot holds the clusters the risks were computed on, each with its members' mean risk.
    rows = _csv(batch_out / "accounts.csv")
    risk = {r["account_id"]: float(r["risk"]) for r in rows}
    members: dict[str, list[float]] = {}
    for account, cluster in snap.cluster_of.items():
        members.setdefault(cluster, []).append(risk[account])
    assert members and snap.cluster_risk == pytest.approx({c: sum(r) / len(r) for c, r in members.items()})
    # The reported clusters are regrouped by verdict: each is wholly flagged or wholly not.
    verdicts: dict[str, set[str]] = {}
    for r in rows:
        if r["cluster_id"]:
            verdicts.setdefault(r["cluster_id"], set()).add(r["flagged"])
    assert verdicts and all(len(v) == 1 for v in verdicts.values())

    detector = OnlineDetector()
    detector.watch_links(batch_out / "links")
    member = next(iter(snap.cluster_of))
    state = AccountState()
    state.update({"ts": 1_700_000_000_000, "account_id": member, "model": "m", "capability": 0, "n_user": 1,
                  "n_messages": 1, "has_tool_turn": False, "n_tools": 0, "frame_hash": 1, "tail_hash": 1,
                  "skel_hash": 1, "sys_hash": None, "e_reasoning": 0, "e_rubric": 0, "e_generation": 0,
                  "e_rewrite": 0, "e_agent_trace": 0})
    x = detector.feature_row(member, state, 1_700_000_000_000)
    cols = [detector.model.features.index(c) for c in ("cluster_log_accounts", "cluster_sync")]
    assert x[cols].tolist() == pytest.approx([snap.values[member][0], snap.values[member][4]])

    broken = tmp_path / "links"
    broken.mkdir()
    (broken / "snapshot.json").write_text('{"version": 1, "columns": ["x"]}')
    with pytest.raises(InputError, match="another version"):
        LinkSnapshot.read(broken)
    with pytest.raises(InputError, match="no cluster snapshot"):
        OnlineDetector().watch_links(tmp_path / "missing")


def test_rewritten_snapshot_is_picked_up(tmp_path, monkeypatch):
    import os

    import numpy as np

    from distillguard.engines import online
    from distillguard.linking.features import CLUSTER_FEATURES
    from distillguard.linking.snapshot import LinkSnapshot

    def snapshot(cluster: str) -> LinkSnapshot:
        snap = LinkSnapshot()
        snap.values["acct-1"] = np.zeros(len(CLUSTER_FEATURES) + 1)
        snap.cluster_of["acct-1"] = cluster
        snap.cluster_risk[cluster] = 0.7
        return snap

    folder = tmp_path / "links"
    snapshot("cl-old").write(folder)
    detector = OnlineDetector()
    detector.watch_links(folder)
    assert detector.links.cluster_of == {"acct-1": "cl-old"}
    monkeypatch.setattr(online, "LINKS_CHECK_SECONDS", 0.0)
    snapshot("cl-new").write(folder)
    stamp = (folder / "snapshot.json").stat().st_mtime + 5
    os.utime(folder / "snapshot.json", (stamp, stamp))
    detector.assess({"request_id": "r1", "ts": 1_700_000_000_000, "account_id": "acct-2", "model": "m",
                     "messages": [{"role": "user", "content": "hello"}]}, now=0.0)
    assert detector.links.cluster_of == {"acct-1": "cl-new"}
    (folder / "accounts.parquet").write_bytes(b"not parquet")  # a broken rewrite keeps the last good one
    os.utime(folder / "snapshot.json", (stamp + 5, stamp + 5))
    detector.assess({"request_id": "r2", "ts": 1_700_000_001_000, "account_id": "acct-2", "model": "m",
                     "messages": [{"role": "user", "content": "hello"}]}, now=1.0)
    assert detector.links.cluster_of == {"acct-1": "cl-new"}
