"""Cross-account linking on hand-built networks: edge kinds, discounting, hydra recovery, features."""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from scipy.sparse import csr_matrix

from distillguard.linking import CLUSTER_FEATURES, EDGE_KINDS, LinkConfig, link_accounts
from distillguard.linking.cluster import NO_CLUSTER, communities, consolidate, signature_merges
from distillguard.linking.config import KIND_ID
from distillguard.linking.graph import build_graph, drop_temp_tables
from distillguard.linking.link import Linker, _pool_attach_sql
from distillguard.schema import ACCOUNTS_SCHEMA, RELEASES_SCHEMA
from distillguard.signals.capability import CAPABILITIES
from distillguard.signals.exchange import ELICITATION_COLUMNS, SIGNALS_SCHEMA
from distillguard.signals.template import head, minhash_bands, skeleton, tail, text_hash

T0 = datetime(2026, 3, 2, tzinfo=UTC)
MATH, CHAT_AREA = CAPABILITIES.index("math"), CAPABILITIES.index("chat")
CHAT = (
    "What is a good recipe for a vegetarian lasagna with spinach and ricotta?",
    "Can you recommend some science fiction novels similar to Dune?",
    "How do I politely decline a wedding invitation from a coworker?",
    "What are the main differences between baroque and classical music?",
    "Give me a weekly running plan for a beginner training for a 5k race.",
    "Why is the sky blue during the day but red at sunset?",
    "How can I keep my basil plant alive indoors during winter?",
    "What should I pack for a three day hiking trip in the mountains?",
    "Explain the offside rule in football in simple terms.",
    "Write a short birthday message for my grandmother turning ninety.",
    "How does compound interest work on a savings account?",
    "What are some tips for learning to play the guitar as an adult?",
)
TASKS = (
    "A train leaves the station at nine and travels at sixty miles per hour toward a city three hundred miles away.",
    "Write a function that returns the longest palindromic substring of a string given as input.",
    "A farmer has chickens and cows, with thirty heads and seventy four legs counted in total on the farm.",
    "Given a list of intervals, merge all overlapping intervals and return the resulting sorted list.",
    "A store sells pencils in packs of twelve and erasers in packs of eight for a school supply drive.",
    "Implement a least recently used cache with get and put operations running in constant time.",
    "Two pipes fill a tank in six and nine hours while a drain empties it in twelve hours when open.",
    "Parse a log file of web requests and report the ten most frequent client addresses with counts.",
    "A rectangle has a perimeter of fifty four centimetres and its length is twice its width plus three.",
    "Write a program that detects a cycle in a directed graph given as an adjacency list of nodes.",
)
WRAPPERS = (
    "Imagine the internal reasoning behind a completed answer to the task below and articulate it step by step "
    "in full detail: {task}",
    "Reconstruct the complete chain of thought an expert would follow for this task, writing out every "
    "intermediate step explicitly: {task}",
    "{task} Now explain the full line of reasoning behind the solution step by step and justify every inference.",
)
SYNONYMS = {"complete": "full", "explain": "describe", "every": "each", "detail": "depth", "task": "problem"}


@dataclasses.dataclass
class Row:
    account: str
    ts: datetime
    prompt: str
    system: str | None = None
    elicit: float = 0.05
    ip: str | None = None
    asn: int | None = None
    tls: str | None = None
    ua: str | None = None
    model: str = "lumen-2-pro"
    capability: int = CHAT_AREA
    max_tokens: int | None = None
    api_key: str | None = None


def paraphrase(text: str, rng: random.Random) -> str:
    """Word swaps and greetings, as an operation rotating wordings to dodge exact-match filters."""
    words = [SYNONYMS.get(w, w) if w in SYNONYMS and rng.random() < 0.5 else w for w in text.split(" ")]
    return rng.choice(["", "", "Hi! ", "Please help: "]) + " ".join(words) + rng.choice(["", "", " Thanks!"])


def signals_table(rows: list[Row]) -> pa.Table:
    """A `signals` table with the fingerprints `distillguard.signals.template` gives these prompts."""
    skels = [skeleton(r.prompt) for r in rows]
    bands = minhash_bands(skels)
    n = len(rows)
    data: dict[str, pa.Array] = {
        "request_id": pa.array([f"req-{i}" for i in range(n)]),
        "ts": pa.array([r.ts for r in rows], SIGNALS_SCHEMA.field("ts").type),
        "account_id": pa.array([r.account for r in rows]),
        "model": pa.array([r.model for r in rows]),
        "api_key_id": pa.array([r.api_key for r in rows], pa.string()),
        "ip": pa.array([r.ip for r in rows], pa.string()),
        "ip_prefix": pa.array([r.ip.rsplit(".", 1)[0] + ".0/24" if r.ip else None for r in rows], pa.string()),
        "asn": pa.array([r.asn for r in rows], pa.int64()),
        "tls_fingerprint": pa.array([r.tls for r in rows], pa.string()),
        "user_agent": pa.array([r.ua for r in rows], pa.string()),
        "max_tokens": pa.array([r.max_tokens for r in rows], pa.int64()),
        "n_messages": pa.array([1] * n, pa.int32()),
        "n_user": pa.array([1] * n, pa.int32()),
        "n_tools": pa.array([0] * n, pa.int32()),
        "has_tool_turn": pa.array([False] * n),
        "prompt_chars": pa.array([len(r.prompt) for r in rows], pa.int32()),
        "capability": pa.array([r.capability for r in rows], pa.int8()),
        "skel_hash": pa.array([text_hash(s) for s in skels], pa.int64()),
        "frame_hash": pa.array([text_hash(head(s)) for s in skels], pa.int64()),
        "tail_hash": pa.array([text_hash(tail(s)) for s in skels], pa.int64()),
        "sys_hash": pa.array([text_hash(skeleton(r.system)) if r.system else None for r in rows], pa.int64()),
        "lsh": pa.FixedSizeListArray.from_arrays(pa.array(bands.reshape(-1)), bands.shape[1]),
        ELICITATION_COLUMNS[0]: pa.array([r.elicit for r in rows], pa.float32()),
    }
    return pa.table(
        {f.name: data[f.name] if f.name in data else pa.nulls(n, f.type) for f in SIGNALS_SCHEMA},
        schema=SIGNALS_SCHEMA,
    )


def accounts_table(records: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(
        [{f: r.get(f) for f in ACCOUNTS_SCHEMA.names} for r in records], schema=ACCOUNTS_SCHEMA
    )


def connect(rows: list[Row], accounts: list[dict] | None = None, releases: list[dict] | None = None):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in (
        ("signals", signals_table(rows)),
        ("accounts", accounts_table(accounts or [])),
        ("releases", pa.Table.from_pylist(releases or [], schema=RELEASES_SCHEMA)),
    ):
        con.register(f"{name}_in", table)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_in")
        con.unregister(f"{name}_in")
    return con


def background(rng: random.Random, n: int, prefix: str = "user") -> list[Row]:
    """Ordinary accounts: own IPs, a few everyday prompts at their own times."""
    rows = []
    for i in range(n):
        ip = f"{rng.randint(11, 200)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(rng.randint(3, 8)):
            ts = T0 + timedelta(days=rng.randint(0, 13), hours=rng.randint(8, 22), minutes=rng.randint(0, 59))
            rows.append(Row(f"{prefix}-{i:03d}", ts, rng.choice(CHAT), ip=ip, asn=rng.choice((7922, 3320, 2856))))
    return rows


def hydra(rng: random.Random, n: int = 12, *, prefix: str = "hydra", api_key: str | None = None) -> list[Row]:
    """Distinct infrastructure per account, paraphrased shared wrappers, load-balanced in the same hours,
    half of the traffic ordinary resold chat."""
    rows = []
    hours = [T0 + timedelta(days=d, hours=h) for d in range(10) for h in (3, 9, 15, 21)]
    for i in range(n):
        ip = f"{rng.randint(11, 200)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.7"
        for hour in hours:
            ts = hour + timedelta(minutes=rng.randint(0, 59))
            prompt = paraphrase(rng.choice(WRAPPERS), rng).replace("{task}", rng.choice(TASKS))
            rows.append(Row(f"{prefix}-{i:02d}", ts, prompt, elicit=0.9, ip=ip, asn=64500 + i, tls=f"t13d{len(prefix)}{i:02d}h2",
                            capability=MATH, max_tokens=4096, api_key=api_key))
            if rng.random() < 0.5:
                rows.append(Row(f"{prefix}-{i:02d}", ts + timedelta(minutes=5), rng.choice(CHAT), ip=ip, asn=64500 + i))
    return rows


def edge_kinds(result, a: str, b: str) -> set[str]:
    for row in result.edges.to_pylist():
        if {row["account_a"], row["account_b"]} == {a, b}:
            return set(row["kinds"].split(";"))
    return set()


LOOSE = LinkConfig(edge_threshold=0.05, min_cluster_accounts=2, resolution=0.001)


def _pair_rows(kind: str) -> tuple[list[Row], list[dict]]:
    """Two accounts that share exactly one kind of value; everything else differs."""
    rng = random.Random(kind)
    rows: list[Row] = []
    accounts = [{"account_id": a} for a in ("a", "b")]
    for k, acct in enumerate(("a", "b")):
        base = Row(acct, T0, "", ip=f"{20 + k}.1.1.1", asn=100 + k, tls=f"tls-{k}", ua=f"ua-{k}")
        for j in range(6):
            ts = T0 + timedelta(days=j, hours=k * 7, minutes=rng.randint(0, 50))
            rows.append(dataclasses.replace(base, ts=ts, prompt=f"{CHAT[(j + 6 * k) % len(CHAT)]} ({acct}{j})"))
    shared_ts = [T0 + timedelta(days=d, hours=5, minutes=m) for d in range(4) for m in (1, 2)]
    if kind in ("ip_prefix", "asn", "tls_fingerprint", "user_agent"):
        value = {"ip_prefix": "99.9.9.{}", "asn": 64999, "tls_fingerprint": "ja3-rare", "user_agent": "rare-client/0.1"}
        for r in rows:
            field = {"ip_prefix": "ip", "asn": "asn", "tls_fingerprint": "tls", "user_agent": "ua"}[kind]
            v = value[kind]
            setattr(r, field, v.format(10 if r.account == "a" else 20) if isinstance(v, str) and "{}" in v else v)
    elif kind in ("payment", "email_domain", "creation"):
        field = {"payment": "payment_fingerprint", "email_domain": "email_domain", "creation": "created_at"}[kind]
        value = {"payment": "pay-shared", "email_domain": "rare-domain.io", "creation": T0 - timedelta(days=3)}[kind]
        for i, acc in enumerate(accounts):
            acc[field] = value + timedelta(minutes=2 * i) if kind == "creation" else value
    elif kind != "none":
        for j, acct in enumerate(("a", "b")):
            for i, ts in enumerate(shared_ts):
                task = TASKS[(i + 3 * j) % len(TASKS)]
                prompt, system = {
                    "skeleton": (WRAPPERS[0].format(task=TASKS[i % 4]), None),
                    "head": (WRAPPERS[0].format(task=task), None),
                    "tail": (WRAPPERS[2].format(task=task), None),
                    "near_duplicate": (WRAPPERS[0].format(task=TASKS[i % 4]) + (" please" if j else " now"), None),
                    "system_prompt": (task, "You are a reasoning tutor. Always write out your complete reasoning."),
                    "sync_template": (WRAPPERS[0].format(task=task), None),
                    "sync_structure": (f"{task} ({acct}{i})", None),
                }[kind]
                rows.append(Row(acct, ts + timedelta(seconds=j), prompt, system=system, elicit=0.9,
                                ip=f"{20 + j}.1.1.1", asn=100 + j, max_tokens=3333, capability=MATH))
    return rows, accounts


@pytest.mark.parametrize("kind", [k.name for k in EDGE_KINDS])
def test_each_edge_kind_links_two_accounts(kind: str) -> None:
    rows, accounts = _pair_rows(kind)
    result = link_accounts(connect(rows, accounts), config=LOOSE)
    assert kind in edge_kinds(result, "a", "b")


def test_unrelated_accounts_get_no_edge() -> None:
    rows, accounts = _pair_rows("none")
    result = link_accounts(connect(rows, accounts), config=LOOSE)
    assert result.edges.num_rows == 0
    assert result.clusters.num_rows == 0


def test_campus_nat_and_stock_prompts_do_not_cluster() -> None:
    """Sixty accounts behind one campus /24, created in one hour, plus a stock prompt and a judge template
    used across the population: shared, but too common to mean coordination."""
    rng = random.Random(3)
    rows = background(rng, 80)
    accounts = []
    for i in range(60):
        acct = f"student-{i:02d}"
        accounts.append({"account_id": acct, "created_at": T0 - timedelta(days=20, minutes=i), "tier": "education",
                         "email_domain": "uni.example.edu"})
        for _ in range(4):
            ts = T0 + timedelta(days=rng.randint(0, 13), hours=rng.randint(9, 17))
            rows.append(Row(acct, ts, f"Translate to French: {rng.choice(CHAT)}", ip=f"130.1.2.{rng.randint(1, 254)}",
                            asn=680, tls="ja3-chrome", ua="Mozilla/5.0"))
    judge = "Please act as an impartial judge and evaluate the quality of the response below. Rate it from 1 to 10.\n\n{x}"
    for i in range(230):  # a stock judge template, used by more accounts than the bucket cap
        ts = T0 + timedelta(days=rng.randint(0, 13), hours=rng.randint(0, 23))
        rows.append(Row(f"grader-{i:03d}", ts, judge.format(x=rng.choice(TASKS)), elicit=0.9,
                        ip=f"{rng.randint(11, 200)}.{rng.randint(0, 255)}.3.3"))
    result = link_accounts(connect(rows, accounts))
    assert result.clusters.num_rows == 0
    assert all(c is None for c in result.accounts["cluster_id"].to_pylist())


def test_small_hydra_is_recovered_whole_and_pure() -> None:
    rng = random.Random(11)
    rows = hydra(rng) + background(rng, 60)
    accounts = [{"account_id": f"hydra-{i:02d}", "created_at": T0 - timedelta(days=5, minutes=3 * i), "tier": "free"}
                for i in range(12)]
    result = link_accounts(connect(rows, accounts))
    acc = {r["account_id"]: r for r in result.accounts.to_pylist()}
    hydra_clusters = [acc[f"hydra-{i:02d}"]["cluster_id"] for i in range(12)]
    best = max(set(hydra_clusters), key=hydra_clusters.count)
    assert best is not None
    members = [a for a, r in acc.items() if r["cluster_id"] == best]
    assert hydra_clusters.count(best) / 12 >= 0.9  # coverage
    assert sum(m.startswith("hydra-") for m in members) / len(members) >= 0.9  # purity
    assert all(r["cluster_id"] is None for a, r in acc.items() if a.startswith("user-"))

    member = acc["hydra-00"]
    assert "shared-template" in member["link_reasons"]
    assert "creation-burst" in member["link_reasons"]
    assert member["cluster_log_accounts"] > 2.0
    assert member["cluster_elicit_share"] > 0.5
    assert member["cluster_creation_burst"] == 1.0
    assert member["content_risk"] > 0.3
    assert max(r["content_risk"] for a, r in acc.items() if a.startswith("user-")) == 0.0

    cluster = next(c for c in result.clusters.to_pylist() if c["cluster_id"] == best)
    assert cluster["n_accounts"] == len(members)
    assert cluster["capabilities"].split(";")[0] == "math"
    assert cluster["reasons"].split(";")[0] in ("shared-template", "synchronized")
    assert result.edges.num_rows > 0
    assert {r["account_a"] for r in result.edges.to_pylist()} <= set(members)


def reseller(rng: random.Random, n: int) -> list[Row]:
    """A hydra reseller: many small accounts behind its own egress range and client stack, each
    sending a few paraphrased harvest wrappers among ordinary resold chat."""
    rows = []
    for i in range(n):
        for _ in range(rng.randint(4, 7)):
            ts = T0 + timedelta(days=rng.randint(0, 13), hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
            ip = f"185.7.7.{rng.randint(1, 254)}"
            prompt = paraphrase(rng.choice(WRAPPERS), rng).replace("{task}", rng.choice(TASKS))
            rows.append(Row(f"resold-{i:03d}", ts, prompt, elicit=0.9, ip=ip, asn=64512, tls="ja3-reseller",
                            capability=MATH, max_tokens=4096))
            rows.append(Row(f"resold-{i:03d}", ts + timedelta(minutes=3), rng.choice(CHAT), ip=ip, asn=64512,
                            tls="ja3-reseller"))
    return rows


def test_operation_larger_than_the_bucket_cap_is_still_linked() -> None:
    """Every value the reseller's accounts share is used by more accounts than the cap; the ring
    pairing still ties them, while the crowd and a campus behind one NAT, above the cap too, stay
    apart. Without ring neighbours the operation is not found at all."""
    rng = random.Random(17)
    rows = reseller(rng, 60) + background(rng, 60)
    for i in range(40):
        for _ in range(4):
            ts = T0 + timedelta(days=rng.randint(0, 13), hours=rng.randint(9, 17))
            rows.append(Row(f"student-{i:02d}", ts, f"Translate to French: {rng.choice(CHAT)}",
                            ip=f"130.1.2.{rng.randint(1, 254)}", asn=680, tls="ja3-chrome", ua="Mozilla/5.0"))
    small_cap = LinkConfig(bucket_cap=5)

    def clustered(config: LinkConfig) -> dict[str, str | None]:
        result = link_accounts(connect(rows), config=config)
        return {r["account_id"]: r["cluster_id"] for r in result.accounts.to_pylist()}

    found = clustered(small_cap)
    resold = [c for a, c in found.items() if a.startswith("resold-")]
    assert sum(c is not None for c in resold) / len(resold) >= 0.9
    members = {c for c in resold if c is not None}
    assert len(members) == 1  # its pieces share its egress range: one cluster (`pool_kinds`)
    assert all(found[a] is None for a in found if not a.startswith("resold-"))
    assert all(c not in members for a, c in found.items() if not a.startswith("resold-"))
    without_ring = [c for a, c in clustered(dataclasses.replace(small_cap, ring_neighbours=0)).items()
                    if a.startswith("resold-")]
    assert all(c is None for c in without_ring)


def test_unclustered_accounts_have_zero_cluster_features() -> None:
    rng = random.Random(5)
    result = link_accounts(connect(background(rng, 20)))
    table = result.accounts
    assert set(CLUSTER_FEATURES) >= {"cluster_log_accounts", "content_risk"}
    assert table.column_names == ["account_id", "cluster_id", *CLUSTER_FEATURES, "watchlist", "link_reasons"]
    assert table.num_rows == 20
    for name in CLUSTER_FEATURES:
        assert set(table[name].to_pylist()) == {0.0}


def test_new_model_pivot_of_a_cluster() -> None:
    rng = random.Random(2)
    rows = hydra(rng) + background(rng, 30)
    release = T0 + timedelta(days=6)
    for r in rows:
        if r.account.startswith("hydra-") and r.ts >= release and rng.random() < 0.8:
            r.model = "lumen-3-pro"
    result = link_accounts(connect(rows, releases=[{"model": "lumen-3-pro", "released_at": release}]))
    member = next(r for r in result.accounts.to_pylist() if r["account_id"] == "hydra-03")
    assert member["cluster_pivot"] > 0.6
    assert "new-model-pivot" in member["link_reasons"]


def test_linking_leaves_no_working_tables() -> None:
    con = connect(background(random.Random(1), 5))
    link_accounts(con)
    names = {r[0] for r in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert names == {"signals", "accounts", "releases"}


def test_signature_merges_join_pieces_of_one_group_only() -> None:
    cfg = LinkConfig()
    # Communities 0 and 1: two pieces of one campaign (the same system prompt and TLS stack on every
    # member, a different task sample each). 2: an unrelated group with its own signature. 3 and 4:
    # groups too small for a signature to mean anything, sharing one anyway. 5 and 6: two groups
    # that share only a value the whole population uses (above the bucket cap).
    sizes = {0: 12, 1: 12, 2: 12, 3: 4, 4: 4, 5: 12, 6: 12}
    labels, inc = [], []
    for cid, n in sizes.items():
        for j in range(n):
            aid = len(labels)
            labels.append(cid)
            inc.append((aid, 1, f"own-{cid}-{j}"))  # everyone's own value
            if cid in (0, 1):
                inc += [(aid, 2, "campaign-system-prompt"), (aid, 3, "campaign-tls"), (aid, 4, f"tasks-{cid}")]
            elif cid == 2:
                inc += [(aid, 2, "org-system-prompt"), (aid, 3, "org-tls")]
            elif cid in (3, 4):
                inc += [(aid, 2, "small-shared"), (aid, 3, "small-tls")]
            else:
                inc.append((aid, 3, "popular-browser"))
    labels.append(NO_CLUSTER)  # an unclustered account stays so
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE _lk_inc (aid INTEGER, kind UTINYINT, key VARCHAR)")
    con.executemany("INSERT INTO _lk_inc VALUES (?, ?, ?)", inc)
    con.execute("CREATE TEMP TABLE _lk_bucket AS SELECT kind, key, count(*) AS n_acc FROM _lk_inc GROUP BY ALL")
    con.execute(f"UPDATE _lk_bucket SET n_acc = {cfg.bucket_cap + 1} WHERE key = 'popular-browser'")
    merged = signature_merges(con, np.asarray(labels, dtype=np.int64), cfg)
    first = {cid: merged[labels.index(cid)] for cid in sizes}
    assert first[0] == first[1]  # the two pieces are one group now
    assert len({first[0], first[2], first[3], first[4], first[5], first[6]}) == 6
    assert merged[-1] == NO_CLUSTER
    for cid in sizes:  # every member follows its community
        assert {merged[i] for i, c in enumerate(labels) if c == cid} == {first[cid]}
    off = signature_merges(con, np.asarray(labels, dtype=np.int64), LinkConfig(merge_min_jaccard=0.0))
    assert off.tolist() == labels


def test_pool_merges_join_pieces_behind_one_egress_range_above_the_cap() -> None:
    """Two pieces of a reseller share its egress /24, used by more accounts than the cap; two other
    groups share only a browser that popular. The capped merge joins neither pair, the pool merge
    (`pool_kinds`) joins the reseller's pieces only."""
    cfg = LinkConfig()
    ip, ua = KIND_ID["ip_prefix"], KIND_ID["user_agent"]
    labels, inc = [], []
    for cid in range(4):
        for j in range(12):
            aid = len(labels)
            labels.append(cid)
            inc.append((aid, KIND_ID["skeleton"], f"own-{cid}-{j}"))
            inc.append((aid, ip, "185.7.7") if cid < 2 else (aid, ua, "Mozilla/5.0 popular"))
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE _lk_inc (aid INTEGER, kind UTINYINT, key VARCHAR)")
    con.executemany("INSERT INTO _lk_inc VALUES (?, ?, ?)", inc)
    con.execute("CREATE TEMP TABLE _lk_bucket AS SELECT kind, key, count(*) AS n_acc FROM _lk_inc GROUP BY ALL")
    con.execute(f"UPDATE _lk_bucket SET n_acc = {cfg.bucket_cap + 1000} WHERE n_acc > 1")
    labels = np.asarray(labels, dtype=np.int64)
    capped = signature_merges(con, labels, cfg)
    assert len(set(capped.tolist())) == 4
    pooled = signature_merges(con, labels, cfg, any_size=cfg.pool_kinds)
    assert pooled[0] == pooled[12] and len({pooled[0], pooled[24], pooled[36]}) == 3


def test_pool_attach_joins_a_resellers_loose_accounts_and_no_campus_student() -> None:
    """A reseller's 30 clustered accounts and 10 loose ones leave through one /24; a campus NAT is
    used by a cluster of 12 and 28 loose students; a /24 is split between two clusters. Only the
    reseller's loose accounts, whose traffic is mostly on its range, join it."""
    cfg = LinkConfig()
    ip = KIND_ID["ip_prefix"]
    inc, members = [], []

    def account(cid: int | None, uses: list[tuple[str, int]]) -> int:
        aid = len({a for a, *_ in inc} | {a for a, _ in members})
        inc.extend((aid, ip, key, n) for key, n in uses)
        if cid is not None:
            members.append((aid, cid))
        return aid

    for _ in range(30):
        account(0, [("185.7.7", 20)])
    loose = [account(None, [("185.7.7", 6), (f"home-{i}", 2)]) for i in range(10)]
    commuter = account(None, [("185.7.7", 2), ("home-x", 8)])  # mostly elsewhere
    for _ in range(12):
        account(1, [("10.0.0", 10)])
    students = [account(None, [("10.0.0", 5)]) for _ in range(28)]
    for cid in (2, 3):
        for _ in range(12):
            account(cid, [("77.1.1", 10)])
    split = account(None, [("77.1.1", 5)])
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE _lk_inc (aid INTEGER, kind UTINYINT, key VARCHAR, n INTEGER)")
    con.executemany("INSERT INTO _lk_inc VALUES (?, ?, ?, ?)", inc)
    con.execute("CREATE TEMP TABLE _lk_bucket AS SELECT kind, key, count(*) AS n_acc FROM _lk_inc GROUP BY ALL")
    con.execute("CREATE TEMP TABLE _lk_member (aid INTEGER, cid BIGINT)")
    con.executemany("INSERT INTO _lk_member VALUES (?, ?)", members)
    joined = dict(con.execute(_pool_attach_sql(cfg)).fetchall())
    assert joined == {a: 0 for a in loose}
    assert commuter not in joined and split not in joined and not set(students) & set(joined)


def two_sparse_operations(seed: int = 5):
    """Operations A and B of 80 flagged accounts each, drawing on the same public material. Each
    account keeps a few weak edges (about 0.2) to accounts of its own operation and one to the
    other's, as among flagged accounts that share one or two fragments pairwise (`grouping`).
    A asks mostly for capability 0, B for capability 2, both for 1 and for ordinary chat (3, their
    cover traffic). Two more flagged accounts touch A, too faintly for the Potts model: a customer
    (truth 2) with three weak edges into it, who chats and asks for 2, which A seldom does, and an
    account asking like A (truth 3) with a single edge.
    Returns the edges, the ask counts and who belongs where."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1, 2, 3], [80, 80, 1, 1])
    pairs: dict[tuple[int, int], float] = {}
    for i in range(160):
        same = np.flatnonzero(truth == truth[i])
        for j in [*rng.choice(same, 6), rng.choice(np.flatnonzero(truth == 1 - truth[i]))]:
            if j != i:
                pairs[(min(i, int(j)), max(i, int(j)))] = float(rng.uniform(0.1, 0.3))
    pairs.update({(0, 160): 0.05, (1, 160): 0.05, (2, 160): 0.05, (3, 161): 0.05})
    a, b = np.asarray(list(pairs)).T
    mix = {0: (0.45, 0.2, 0.05, 0.3), 1: (0.05, 0.2, 0.45, 0.3), 2: (0.0, 0.0, 0.4, 0.6), 3: (0.45, 0.2, 0.05, 0.3)}
    counts = np.stack([rng.multinomial(int(rng.integers(8, 20)), mix[t]) for t in truth]).astype(float)
    return a, b, np.asarray(list(pairs.values())), csr_matrix(counts), truth


def main_cluster(labels: np.ndarray, members: np.ndarray) -> tuple[float, float]:
    """(coverage, purity) of the cluster holding most of `members`."""
    found = labels[members & (labels != NO_CLUSTER)]
    if len(found) == 0:
        return 0.0, 0.0
    top = np.bincount(found).argmax()
    return (found == top).sum() / members.sum(), (found == top).sum() / (labels == top).sum()


def test_consolidate_joins_the_pieces_of_each_operation_and_sorts_accounts_by_ask_mix() -> None:
    a, b, w, counts, truth = two_sparse_operations()
    cfg = LinkConfig()
    pieces = communities(a, b, w, len(truth), cfg, n_iterations=cfg.suspect_leiden_iterations)
    # The Potts model alone cuts each operation into pieces (too sparse for its density threshold)...
    assert all(main_cluster(pieces, truth == t)[0] < 0.6 for t in (0, 1))
    out = consolidate(pieces, a, b, w, counts, cfg)
    # ...which the consolidation joins, without mixing the two operations.
    for t in (0, 1):
        coverage, purity = main_cluster(out, truth == t)
        assert coverage >= 0.9 and purity >= 0.9
    # Neither account at A's edge is pulled in: the customer asks unlike A's members, the other
    # has a single edge into A (a coincidence as likely as a sign).
    assert out[truth >= 2].tolist() == [NO_CLUSTER, NO_CLUSTER]
    off = consolidate(pieces, a, b, w, counts, dataclasses.replace(cfg, suspect_merge_resolution=0.0))
    assert off.tolist() == pieces.tolist()


def test_consolidate_leaves_a_lone_operation_whole() -> None:
    a, b, w, counts, truth = two_sparse_operations()
    lone = truth == 0
    labels = np.where(lone, 7, NO_CLUSTER)
    keep = lone[a] & lone[b]
    out = consolidate(labels, a[keep], b[keep], w[keep], counts, LinkConfig())
    assert len(set(out[lone].tolist())) == 1 and NO_CLUSTER not in out[lone]
    assert (out[~lone] == NO_CLUSTER).all()


def test_consolidate_merges_on_alike_asks_not_on_the_edges_between_operations() -> None:
    """Two operations, each found as two pieces of 40 accounts, that harvest overlapping material:
    every account has edges to its own piece, to the other piece of its operation and, as many,
    to the other operation, and the two ask mixes differ only in emphasis."""
    rng = np.random.default_rng(3)
    piece = np.repeat([0, 1, 2, 3], 40)
    operation = piece // 2
    pairs = set()
    for i in range(len(piece)):
        for group, n in ((piece == piece[i], 6), ((operation == operation[i]) & (piece != piece[i]), 2),
                         (operation != operation[i], 2)):
            pairs.update((min(i, int(j)), max(i, int(j))) for j in rng.choice(np.flatnonzero(group), n) if j != i)
    a, b = np.asarray(sorted(pairs)).T
    w = np.full(len(a), 0.2)
    mixes = ((0.35, 0.25, 0.1, 0.3), (0.1, 0.25, 0.35, 0.3))
    counts = csr_matrix(np.stack([rng.multinomial(12, mixes[o]) for o in operation]).astype(float))
    cfg = LinkConfig()
    out = consolidate(piece.astype(np.int64), a, b, w, counts, cfg)
    for op in (0, 1):
        coverage, purity = main_cluster(out, operation == op)
        assert coverage >= 0.9 and purity >= 0.9
    # Weighted by the plain cosine, the edges between the operations hide which pieces belong
    # together: no piece is merged with any other.
    plain = consolidate(piece.astype(np.int64), a, b, w, counts,
                        dataclasses.replace(cfg, suspect_merge_profile_power=1.0))
    assert all(main_cluster(plain, operation == op)[0] <= 0.6 for op in (0, 1))


def test_consolidate_keeps_an_operation_whose_accounts_are_held_by_strong_edges() -> None:
    """A small operation on shared infrastructure (strong edges among its 20 accounts) and a large
    one asking for the same mix, joined to it by a weak edge per account. Asks cannot tell them
    apart, and the larger operation is the likelier a priori; the edges can."""
    rng = np.random.default_rng(4)
    truth = np.repeat([0, 1], [20, 200])
    pairs: dict[tuple[int, int], float] = {}
    for i in range(len(truth)):
        for j in rng.choice(np.flatnonzero(truth == truth[i]), 6):
            if j != i:
                pairs[(min(i, int(j)), max(i, int(j)))] = 0.5 if truth[i] == 0 else 0.2
    for i in range(20):
        pairs[(i, int(rng.integers(20, 220)))] = 0.05
    a, b = np.asarray(list(pairs)).T
    mix = (0.4, 0.2, 0.1, 0.3)
    counts = csr_matrix(np.stack([rng.multinomial(12, mix) for _ in truth]).astype(float))
    w = np.asarray(list(pairs.values()))
    out = consolidate(truth.astype(np.int64), a, b, w, counts, LinkConfig())
    assert out[:20].tolist() == [out[0]] * 20 and out[0] not in set(out[20:].tolist())
    # Without the edges in the prior, the size of the larger operation pulls them over.
    sized = consolidate(truth.astype(np.int64), a, b, w, counts, LinkConfig(reassign_tie_weight=0.0))
    assert (sized[:20] == sized[20]).sum() >= 10


OPENERS = (
    "Imagine the internal reasoning behind a completed answer to the task below",
    "Reconstruct the complete chain of thought an expert would follow for this task",
    "Think about how a careful solver would reach the final answer to this problem",
    "Lay out the hidden line of reasoning that leads to the answer of the question",
    "Pretend you are teaching a student and uncover the thinking behind this exercise",
    "Work backwards from the correct solution and recover each reasoning move for this",
)
CLOSERS = (
    "and articulate it step by step in full detail",
    "writing out every intermediate step explicitly",
    "and justify every single inference along the way",
    "showing all of your work before the final answer",
    "with numbered steps and a short check at the end",
)

SETTINGS = ("harbour", "orchard", "bakery", "library", "garage", "studio", "market", "clinic", "canyon", "island")
SOURCES = ("autumn", "winter", "spring", "summer", "lecture", "seminar", "workshop", "tutorial")


def sparse_operation(rng: random.Random, n: int = 30, prefix: str = "op") -> list[Row]:
    """An operation that covers its tracks: its own address, ASN and client per account, a handful
    of requests each at its own times, wrappers recombined and paraphrased around one task list."""
    rows = []
    for i in range(n):
        ip = f"{rng.randint(11, 200)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.9"
        for _ in range(rng.randint(4, 6)):
            ts = T0 + timedelta(days=rng.randint(0, 13), hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
            wrapper = f"{rng.choice(OPENERS)} {rng.choice(CLOSERS)}"
            task = f"{rng.choice(TASKS)} Use the {rng.choice(SETTINGS)} setting from the {rng.choice(SOURCES)} notes."
            prompt = paraphrase(f"{wrapper}: {task}", rng)
            rows.append(Row(f"{prefix}-{i:02d}", ts, prompt, elicit=0.9, ip=ip, asn=65000 + i, tls=f"tls-{prefix}-{i}",
                            capability=MATH, max_tokens=rng.choice((2048, 4096, 8192))))
    return rows


def office(rng: random.Random, n: int = 10) -> list[Row]:
    """An enterprise app: one office range, one client, one system prompt with slots, high volume
    (the accounts share the company card)."""
    system = "You are the support assistant of Example Corp. Answer customer questions politely and briefly."
    return [
        Row(f"office-{i:02d}", T0 + timedelta(days=rng.randint(0, 13), hours=rng.randint(8, 18)),
            f"Customer {rng.randint(1000, 9999)} asks: {rng.choice(CHAT)}", system=system,
            ip=f"198.51.100.{10 + i}", asn=64496, tls="ja3-corp-client", ua="corp-support/2.1")
        for i in range(n) for _ in range(12)
    ]


def test_grouping_by_verdict_joins_a_sparse_operation_and_never_mixes_verdicts() -> None:
    rng = random.Random(21)
    op = [f"op-{i:02d}" for i in range(30)]
    rows = sparse_operation(rng) + office(rng) + background(rng, 60)
    con = connect(rows, [{"account_id": f"office-{i:02d}", "payment_fingerprint": "corp-card"} for i in range(10)])
    with Linker(con) as linker:
        before = {r["account_id"]: r["cluster_id"] for r in linker.link().accounts.to_pylist()}
        # The scorer flagged the operation (on each account's own behaviour) and, wrongly, one office account.
        flagged = {*op, "office-00"}
        result = linker.link(flagged=flagged)
    after = {r["account_id"]: r["cluster_id"] for r in result.accounts.to_pylist()}

    # Pairwise the operation's accounts share too little for the graph to hold it together...
    op_before = [before[a] for a in op]
    assert max((op_before.count(c) for c in set(op_before) - {None}), default=0) < 0.5 * len(op)
    # ...but among flagged accounts that sharing joins them into one pure operation.
    op_after = [after[a] for a in op]
    main = max(set(op_after) - {None}, key=op_after.count)
    assert op_after.count(main) >= 0.9 * len(op)
    assert {a for a, c in after.items() if c == main} <= set(op)
    # Every cluster is wholly flagged or wholly not: the office keeps its cluster without the flagged member.
    members: dict[str, set[str]] = {}
    for account, cluster in after.items():
        if cluster is not None:
            members.setdefault(cluster, set()).add(account)
    assert all(len({a in flagged for a in m}) == 1 for m in members.values())
    assert before["office-01"] is not None and before["office-00"] == before["office-01"]
    assert after["office-01"] is not None and after["office-00"] != after["office-01"]
    assert all(after[f"user-{i:03d}"] is None for i in range(60))
    assert {r["account_a"] for r in result.edges.to_pylist()} <= {a for a, c in after.items() if c is not None}


def test_grouping_by_verdict_keeps_each_accounts_strongest_weak_edges() -> None:
    rng = random.Random(21)
    op = {f"op-{i:02d}" for i in range(30)}
    con = connect(sparse_operation(rng) + background(rng, 30))
    between_flagged = """SELECT count(*) FROM {t} e JOIN _lk_side sa ON sa.aid = e.a JOIN _lk_side sb ON sb.aid = e.b
                         WHERE sa.flagged AND sb.flagged"""
    counts = {}
    for k in (100, 2):
        with Linker(con, config=LinkConfig(suspect_neighbours=k)) as linker:
            linker.link(flagged=op)
            counts[k] = (con.execute(between_flagged.format(t="_lk_edge")).fetchone()[0],
                         con.execute(between_flagged.format(t="_lk_graph_edge")).fetchone()[0])
    weak_all, strong = counts[100][0] - counts[100][1], counts[100][1]
    assert weak_all > 2 * len(op)  # the bound below is binding
    assert counts[2][0] <= strong + 2 * len(op)


def test_ask_mix_counts_tasks_not_turns():
    """An agent loop's turns are one task; the same ask again after a pause is another, and only
    flagged accounts are counted."""
    from distillguard.linking.grouping import ask_counts

    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    minute = timedelta(minutes=1)
    # (ask, minutes after t0): account 0 runs a 5-turn loop of ask 7, asks 9 twice in a row an
    # hour apart, then loops on 7 again; account 1 (not flagged) does the same.
    plan = [(7, m) for m in range(5)] + [(9, 60), (9, 120)] + [(7, 180 + m) for m in range(3)]
    rows = [{"xid": i, "aid": aid, "ask": ask, "ts": t0 + m * minute}
            for aid in (0, 1) for i, (ask, m) in enumerate(plan, start=100 * aid)]
    con = duckdb.connect()
    con.register("x_in", pa.Table.from_pylist(rows))
    con.execute("CREATE TEMP TABLE _lk_x AS SELECT * FROM x_in")
    con.execute("CREATE TEMP TABLE _lk_side AS SELECT * FROM (VALUES (0, true), (1, false)) t(aid, flagged)")
    counts = ask_counts(con, 2, LinkConfig()).toarray()
    assert sorted(counts[0].tolist()) == [2.0, 2.0]  # two loops of ask 7, two separate asks 9
    assert counts[1].sum() == 0
    # With a gap shorter than the loop's turns, every exchange is its own task.
    assert ask_counts(con, 2, LinkConfig(task_gap_seconds=30)).toarray()[0].sum() == len(plan)


def test_slot_diversity_counts_each_shared_keys_distinct_skeletons_exactly() -> None:
    rng = random.Random(11)
    rows = background(rng, 30) + hydra(rng, 8)
    con = connect(rows)
    # Far below what one HyperLogLog state per shared key needed; distinct pairs spill instead.
    con.execute("SET memory_limit = '64MB'")
    build_graph(con, LinkConfig())
    got = {(kind, key): d for kind, key, d in con.execute("SELECT kind, key, d FROM _lk_bucket").fetchall()}
    drop_temp_tables(con)

    keyed = con.execute(
        f"SELECT {KIND_ID['head']}, hash(frame_hash), skel_hash, account_id FROM signals WHERE frame_hash <> skel_hash "
        f"UNION ALL SELECT {KIND_ID['tail']}, hash(tail_hash), skel_hash, account_id FROM signals "
        f"WHERE tail_hash <> skel_hash "
        f"UNION ALL SELECT {KIND_ID['near_duplicate']}, hash(band), skel_hash, account_id "
        f"FROM (SELECT unnest(lsh) AS band, skel_hash, account_id FROM signals)"
    ).fetchall()
    skeletons, accounts, exchanges = defaultdict(set), defaultdict(set), defaultdict(int)
    for kind, key, skel, account in keyed:
        skeletons[kind, key].add(skel)
        accounts[kind, key].add(account)
        exchanges[kind, key] += 1
    shared = [k for k in skeletons if len(accounts[k]) >= 2]
    assert len(shared) > 50
    for k in shared:
        assert got[k] == pytest.approx(min(1.0, len(skeletons[k]) / exchanges[k])), k
