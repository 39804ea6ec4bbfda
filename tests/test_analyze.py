"""End to end: simulate a small world, run `distillguard analyze`, check the output contract."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import stix2
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.sim import simulate

runner = CliRunner()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    simulate("small", 11, root / "sim", scale=0.15, quiet=True)
    out = root / "out"
    result = runner.invoke(
        app,
        [
            "analyze", str(root / "sim" / "exchanges.jsonl.gz"),
            "--accounts", str(root / "sim" / "accounts.jsonl"),
            "--releases", str(root / "sim" / "releases.jsonl"),
            "--truth", str(root / "sim" / "truth.csv"),
            "--out", str(out), "--quiet", "--timings", str(root / "timings.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    return root / "sim", out


def _rows(path):
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_accounts_csv_contract(analysed):
    sim, out = analysed
    with (out / "accounts.csv").open() as fh:
        assert fh.readline().strip() == "account_id,risk,flagged,cluster_id,reasons"
    rows = _rows(out / "accounts.csv")
    truth = {r["account_id"]: r for r in _rows(sim / "truth.csv")}
    assert {r["account_id"] for r in rows} == set(truth)  # one row for every account seen
    assert len(rows) == len(truth)
    for r in rows:
        assert 0.0 <= float(r["risk"]) <= 1.0
        assert r["flagged"] in ("true", "false")
        if r["flagged"] == "true":
            assert r["reasons"], "a flagged account always has a reason"
        for code in filter(None, r["reasons"].split(";")):
            assert code == code.lower() and " " not in code


def test_campaign_accounts_score_higher_than_legitimate_ones(analysed):
    sim, out = analysed
    truth = {r["account_id"]: r["label"] for r in _rows(sim / "truth.csv")}
    risks = {"campaign": [], "legit": []}
    for r in _rows(out / "accounts.csv"):
        risks[truth[r["account_id"]]].append(float(r["risk"]))
    mean = {k: sum(v) / len(v) for k, v in risks.items()}
    assert mean["campaign"] > mean["legit"] + 0.3


def test_clusters_csv_and_cluster_ids_agree(analysed):
    _, out = analysed
    with (out / "clusters.csv").open() as fh:
        assert fh.readline().strip() == "cluster_id,n_accounts,n_exchanges,risk,capabilities,reasons"
    clusters = {r["cluster_id"]: r for r in _rows(out / "clusters.csv")}
    members: dict[str, int] = {}
    for r in _rows(out / "accounts.csv"):
        if r["cluster_id"]:
            members[r["cluster_id"]] = members.get(r["cluster_id"], 0) + 1
    assert set(members) == set(clusters)
    for cid, n in members.items():
        assert int(clusters[cid]["n_accounts"]) == n


def test_stix_bundle_parses_and_holds_no_prompt_text(analysed):
    sim, out = analysed
    text = (out / "indicators.stix.json").read_text()
    bundle = stix2.parse(text, allow_custom=True)
    assert bundle.type == "bundle"
    first_prompt = json.loads(
        __import__("gzip").open(sim / "exchanges.jsonl.gz", "rt").readline()
    )["messages"][-1]["content"]
    if isinstance(first_prompt, str) and len(first_prompt) > 30:
        assert first_prompt[:30] not in text


def test_report_and_rejected_files_written(analysed):
    _, out = analysed
    html = (out / "report.html").read_text()
    assert "<html" in html and "Evaluation" in html
    assert (out / "rejected.jsonl").exists()


def test_timings_name_every_stage_in_flow_order(analysed):
    _, out = analysed
    timings = json.loads((out.parent / "timings.json").read_text())
    stages = [k for k in timings if ":" not in k]
    assert stages == ["read, validate, signals", "account behaviour", "linking", "scoring",
                      "regrouping by verdict", "outputs"]
    assert all(v >= 0 for v in timings.values()) and timings["read, validate, signals"] > 0
    parts = sum(v for k, v in timings.items() if k.startswith("linking: "))
    assert 0 < parts <= timings["linking"] + 1e-6


def test_unusable_input_is_a_one_line_error(tmp_path):
    exe = Path(sys.executable).parent / "distillguard"
    missing = tmp_path / "missing.jsonl"
    proc = subprocess.run([str(exe), "analyze", str(missing), "--out", str(tmp_path / "o"), "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "missing.jsonl" in lines[0], proc.stderr


def test_running_out_of_duckdb_memory_is_a_one_line_error_naming_the_setting(tmp_path):
    exe = Path(sys.executable).parent / "distillguard"
    log = Path(__file__).parent / "fixtures" / "ingest" / "contract.jsonl"
    env = {**os.environ, "DISTILLGUARD_DUCKDB_MEMORY": "1MB"}
    proc = subprocess.run([str(exe), "analyze", str(log), "--out", str(tmp_path / "o"), "--quiet"],
                          capture_output=True, text=True, env=env)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "allocate" in lines[0] and "DISTILLGUARD_DUCKDB_MEMORY" in lines[0]


def test_a_full_spill_disk_is_a_one_line_error_naming_the_folder(monkeypatch, capsys):
    import duckdb

    import distillguard.cli as cli

    def full(*args, **kwargs):
        raise duckdb.IOException('IO Error: Could not write file "/tmp/distillguard-spill-1/x.tmp": '
                                 "No space left on device")

    monkeypatch.setattr(cli, "app", full)
    with pytest.raises(SystemExit) as stop:
        cli.main()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stop.value.code == 1 and len(lines) == 1
    assert "No space left on device" in lines[0] and "TMPDIR" in lines[0]


PARENT = """
import os, sys
from distillguard.engines.local import _signal_pool

if __name__ == "__main__":
    with _signal_pool(1) as pool:
        print(pool.submit(os.getpid).result(), flush=True)
        sys.stdin.read()
"""


def test_signal_workers_leave_when_their_parent_is_killed(tmp_path):
    import signal
    import time

    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    assert Path(f"/proc/{worker}").exists()  # alive while its parent is
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    status = Path(f"/proc/{worker}/status")
    while time.monotonic() < deadline:
        try:
            if "State:\tZ" in status.read_text():  # exited, not yet reaped by its new parent
                return
        except FileNotFoundError:
            return
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    pytest.fail("signal worker still running 10 s after its parent was killed")
