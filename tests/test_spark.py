"""The Spark engine against the local one: the same world gives the same outputs (Spark in local mode)."""

import csv
import gzip
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from distillguard.behaviour.features import STATE_TABLE
from distillguard.cli import app
from distillguard.sim import simulate

runner = CliRunner()


def _analyze(sim: Path, logs: list[Path], out: Path, *extra: str) -> None:
    result = runner.invoke(app, ["analyze", *map(str, logs), "--accounts", str(sim / "accounts.jsonl"),
                                 "--releases", str(sim / "releases.jsonl"), "--out", str(out), "--quiet", *extra])
    assert result.exit_code == 0, result.output


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.fail("the Spark engine needs a Java runtime (Debian: apt-get install openjdk-17-jre-headless)")
    root = tmp_path_factory.mktemp("spark")
    sim = root / "sim"
    simulate("small", 5, sim, scale=0.2, quiet=True)
    # A second log with records the reader refuses: both engines must refuse the same ones.
    broken = root / "broken.jsonl.gz"
    with gzip.open(sim / "exchanges.jsonl.gz", "rt") as src, gzip.open(broken, "wt") as dst:
        first = src.readline()
        dst.write(first.replace('"account_id"', '"acct"', 1))
        dst.write("{not json\n")
    logs = [sim / "exchanges.jsonl.gz", broken]
    _analyze(sim, logs, root / "local")
    _analyze(sim, logs, root / "spark", "--engine", "spark", "--spark-master", "local[2]",
             "--db", str(root / "spark.duckdb"))
    return root / "local", root / "spark"


def test_accounts_are_scored_the_same(both):
    local, spark = (_rows(d / "accounts.csv") for d in both)
    assert len(local) == len(spark) > 100
    assert sum(r["flagged"] == "true" for r in local) > 0
    for a, b in zip(local, spark, strict=True):
        assert a["account_id"] == b["account_id"]
        assert abs(float(a["risk"]) - float(b["risk"])) <= 1e-6
        assert (a["flagged"], a["cluster_id"], a["reasons"]) == (b["flagged"], b["cluster_id"], b["reasons"])


def test_account_behaviour_was_folded_on_spark(both):
    # Parity alone would also hold if the driver had folded the states itself.
    _, spark = both
    con = duckdb.connect(str(spark.parent / "spark.duckdb"), read_only=True)
    (states, accounts, signals), = con.execute(
        f"SELECT (SELECT count(*) FROM {STATE_TABLE}), (SELECT count(DISTINCT account_id) FROM {STATE_TABLE}),"
        " (SELECT count(DISTINCT account_id) FROM signals)").fetchall()
    con.close()
    assert states == accounts == signals == len(_rows(spark / "accounts.csv"))


def test_clusters_and_rejected_records_are_the_same(both):
    local, spark = both
    assert _rows(local / "clusters.csv") == _rows(spark / "clusters.csv")
    rejected = (local / "rejected.jsonl").read_text()
    assert rejected.count("\n") == 2
    assert rejected == (spark / "rejected.jsonl").read_text()


def test_unknown_engine_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["analyze", str(tmp_path), "--out", str(tmp_path / "o"), "--engine", "dask"])
    assert result.exit_code != 0
    assert "--engine 'dask': expected local or spark" in str(result.exception) + result.output
