"""worldgen: ground truth is consistent, the log keeps the contract, output is reproducible, and the
detector's source never refers to the generator that evaluates it."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from worldgen import generate

ROOT = Path(__file__).resolve().parents[1]
SCALE, DAYS = 0.05, 3
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")

OPTIONAL_TYPES: dict[str, tuple[type, ...]] = {
    "system": (str,),
    "org_id": (str,),
    "api_key_id": (str,),
    "conversation_id": (str,),
    "ip": (str,),
    "asn": (int,),
    "country": (str,),
    "user_agent": (str,),
    "tls_fingerprint": (str,),
    "payment_fingerprint": (str,),
    "max_tokens": (int,),
    "temperature": (int, float),
    "tools": (list,),
    "stream": (bool,),
    "response_text": (str,),
    "input_tokens": (int,),
    "output_tokens": (int,),
    "reasoning_tokens": (int,),
    "stop_reason": (str,),
    "status": (int,),
}
REQUIRED = ("request_id", "ts", "account_id", "model", "messages")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for shape in ("contract", "access-log", "openai-batch"):
        d = tmp_path_factory.mktemp(shape)
        generate(7, "mixed", d, scale=SCALE, shape=shape, days=DAYS)
        out[shape] = d
    return out


def _jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _truth(d: Path) -> dict[str, dict]:
    with open(d / "truth.csv", newline="") as fh:
        return {r["account_id"]: r for r in csv.DictReader(fh)}


def _exchange_truth(d: Path) -> dict[str, tuple[str, int]]:
    with gzip.open(d / "exchange_truth.csv.gz", "rt", newline="") as fh:
        return {r["request_id"]: (r["account_id"], int(r["harvest"])) for r in csv.DictReader(fh)}


def _log_rows(d: Path, shape: str) -> list[tuple[str, str]]:
    """(request_id, account_id) of every exchange in the log, whatever its shape."""
    if shape == "contract":
        return [(r["request_id"], r["account_id"]) for r in _jsonl(d / "exchanges.jsonl.gz")]
    if shape == "access-log":
        return [(r["request_id"], r["account_id"]) for r in _jsonl(d / "access.jsonl.gz")]
    inputs = {r["custom_id"]: r for r in _jsonl(d / "batch_input.jsonl")}
    rows = []
    for o in _jsonl(d / "batch_output.jsonl"):
        rows.append((o["response"]["request_id"], inputs[o["custom_id"]]["body"]["metadata"]["account_id"]))
    assert len(rows) == len(inputs)
    return rows


@pytest.mark.parametrize("shape", ["contract", "access-log", "openai-batch"])
def test_truth_is_consistent(worlds: dict[str, Path], shape: str) -> None:
    d = worlds[shape]
    truth = _truth(d)
    accounts = {r["account_id"]: r for r in _jsonl(d / "accounts.jsonl")}
    ex_truth = _exchange_truth(d)
    rows = _log_rows(d, shape)
    assert rows
    logged = {a for _, a in rows}
    assert logged == set(truth) == set(accounts)  # one truth row per account in the log
    assert {rid for rid, _ in rows} == set(ex_truth)
    assert len({rid for rid, _ in rows}) == len(rows)  # request ids are unique
    for rid, acct in rows:
        assert ex_truth[rid][0] == acct
    world = json.loads((d / "world.json").read_text())
    shapes = {c["campaign_id"]: c["shape"] for c in world["campaigns"]}
    for r in truth.values():
        if r["label"] == "campaign":
            assert shapes[r["campaign_id"]] == r["campaign_shape"]
            assert r["campaign_shape"] in ("few-huge", "synchronized", "hydra", "spread")
        else:
            assert r["label"] == "legit" and r["campaign_id"] == "" and r["campaign_shape"] == ""
            assert r["actor_type"] in (
                "chat_user",
                "agentic_developer",
                "eval_runner",
                "grader_team",
                "saas_app",
                "classroom",
                "safety_researcher",
            )
    assert {r["campaign_id"] for r in truth.values() if r["label"] == "campaign"} == set(shapes)
    harvesters = {acct for acct, h in ex_truth.values() if h == 1}
    assert harvesters, "a world has harvest traffic"
    assert all(truth[a]["label"] == "campaign" for a in harvesters)
    for r in _jsonl(d / "releases.jsonl"):
        assert RFC3339.match(r["released_at"]) and r["model"]


def test_contract_types(worlds: dict[str, Path]) -> None:
    recs = _jsonl(worlds["contract"] / "exchanges.jsonl.gz")
    allowed = set(REQUIRED) | set(OPTIONAL_TYPES)
    for r in recs:
        assert set(r) <= allowed
        for k in REQUIRED:
            assert k in r
        assert (
            isinstance(r["request_id"], str)
            and isinstance(r["account_id"], str)
            and isinstance(r["model"], str)
        )
        assert RFC3339.match(r["ts"]), r["ts"]
        assert isinstance(r["messages"], list) and r["messages"]
        for m in r["messages"]:
            assert m["role"] in ("system", "user", "assistant", "tool")
            assert isinstance(m["content"], str | list)
        for k, types in OPTIONAL_TYPES.items():
            if k in r:
                assert isinstance(r[k], types) and not (bool in types) ^ isinstance(r[k], bool), (k, r[k])
        if "tools" in r:
            assert all(isinstance(t, str) for t in r["tools"])
        if r.get("stop_reason") == "max_tokens":
            assert r["output_tokens"] == r["max_tokens"]
    for a in _jsonl(worlds["contract"] / "accounts.jsonl"):
        assert RFC3339.match(a["created_at"]) and isinstance(a["verified"], bool)
        assert a["tier"] in ("free", "paid", "education", "startup", "research", "enterprise")


def test_access_log_fields(worlds: dict[str, Path]) -> None:
    names = {
        "timestamp",
        "request_id",
        "account_id",
        "model",
        "prompt",
        "system_prompt",
        "ip_address",
        "asn_number",
        "country_code",
        "user_agent",
        "ja3_hash",
        "payment_method_hash",
        "max_tokens",
        "token_count",
        "prompt_tokens",
        "finish_reason",
        "status",
    }
    for r in _jsonl(worlds["access-log"] / "access.jsonl.gz"):
        assert set(r) == names
        assert r["max_tokens"] == "-" or int(r["max_tokens"]) > 0


def _digest(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def test_same_seed_same_bytes(worlds: dict[str, Path], tmp_path: Path) -> None:
    generate(7, "mixed", tmp_path / "here", scale=SCALE, shape="contract", days=DAYS)
    assert _digest(tmp_path / "here") == _digest(worlds["contract"])
    # Another process too: nothing of the interpreter's state (addresses, hash seeds) may leak in.
    subprocess.run([sys.executable, "-m", "worldgen", "--seed", "7", "--profile", "mixed", "--out",
                    str(tmp_path / "there"), "--scale", str(SCALE), "--days", str(DAYS)],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    assert _digest(tmp_path / "there") == _digest(worlds["contract"])


def test_different_seeds_differ(worlds: dict[str, Path], tmp_path: Path) -> None:
    generate(8, "mixed", tmp_path, scale=0.02, shape="contract", days=1)
    other = json.loads((tmp_path / "world.json").read_text())
    mine = json.loads((worlds["contract"] / "world.json").read_text())
    assert other != mine
    assert other["legit"] != mine["legit"] and other["models"] != mine["models"]


def test_detector_does_not_know_the_generator() -> None:
    src = ROOT / "src" / "distillguard"
    if not src.is_dir():
        pytest.skip("no detector source in this checkout")

    def text(path: Path) -> bytes:
        # A shipped model records where its operating point was read (its `meta`): provenance,
        # not something the detector acts on.
        if path.suffix == ".json" and path.parent.name == "models":
            return json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "meta"}).encode()
        return path.read_bytes()

    offenders = [
        str(p.relative_to(ROOT))
        for p in sorted(src.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and b"worldgen" in text(p).lower()
    ]
    assert offenders == []


def test_legit_traffic_does_not_depend_on_profile(tmp_path: Path) -> None:
    logs = {}
    for profile in ("naive", "evasive"):
        d = tmp_path / profile
        generate(9, profile, d, scale=0.02, shape="contract", days=1)
        legit = {a for a, r in _truth(d).items() if r["label"] == "legit"}
        logs[profile] = [r for r in _jsonl(d / "exchanges.jsonl.gz") if r["account_id"] in legit]
    assert logs["naive"] and logs["naive"] == logs["evasive"]
