"""The DuckDB store and the `distillguard ingest` command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from typer.testing import CliRunner

from distillguard.cli import app
from distillguard.errors import InputError
from distillguard.ingest import RejectSink, ingest_to_duckdb
from distillguard.schema import EXCHANGE_FIELDS

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


def record(i: int, **overrides: Any) -> dict[str, Any]:
    return {
        "request_id": f"req-{i:04d}",
        "ts": 1770110100000 + i * 1000,
        "account_id": f"acct-{i % 5}",
        "model": "frontier-2",
        "messages": [{"role": "user", "content": f"Write a rubric to grade essay {i}."}],
        "tools": ["search"],
        **overrides,
    }


def write_jsonl(path: Path, records: list[dict[str, Any]], extra_lines: bytes = b"") -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records) + extra_lines)
    return path


def test_ingest_is_idempotent_on_request_id(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "day1.jsonl", [record(i) for i in range(300)], b"not json\n")
    db = tmp_path / "store.duckdb"
    first = ingest_to_duckdb([log], db, rejects=RejectSink(None), batch_size=64)
    assert (first.read, first.accepted, first.inserted, first.duplicates, first.rejected) == (
        301,
        300,
        300,
        0,
        1,
    )

    again = ingest_to_duckdb([log], db, rejects=RejectSink(None), batch_size=64)
    assert (again.inserted, again.duplicates, again.table_rows) == (0, 300, 300)

    # A later log overlapping the first: only the new ids are added; the stored copy is kept.
    day2 = write_jsonl(tmp_path / "day2.jsonl", [record(i, model="changed") for i in range(250, 400)])
    third = ingest_to_duckdb([day2], db, rejects=RejectSink(None))
    assert (third.inserted, third.duplicates, third.table_rows) == (100, 50, 400)

    with duckdb.connect(str(db), read_only=True) as con:
        columns = [row[0] for row in con.execute("DESCRIBE exchanges").fetchall()]
        assert tuple(columns) == EXCHANGE_FIELDS
        models = dict(con.execute("SELECT model, count(*) FROM exchanges GROUP BY model").fetchall())
        assert models == {"frontier-2": 300, "changed": 100}
        ts, tools, first_message = con.execute(
            "SELECT ts, tools, messages[1].content FROM exchanges WHERE request_id = 'req-0001'"
        ).fetchone()
        assert ts.timestamp() == 1770110101.0 and tools == ["search"]
        assert first_message == "Write a rubric to grade essay 1."


def test_duplicates_within_one_input_keep_the_first(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", [record(1), record(2), record(1, model="second copy")])
    db = tmp_path / "store.duckdb"
    result = ingest_to_duckdb([log], db, rejects=RejectSink(None))
    assert (result.accepted, result.inserted, result.duplicates) == (3, 2, 1)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT model FROM exchanges WHERE request_id = 'req-0001'").fetchone() == (
            "frontier-2",
        )


def test_a_foreign_exchanges_table_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE exchanges (id INTEGER)")
    log = write_jsonl(tmp_path / "log.jsonl", [record(1)])
    with pytest.raises(InputError, match="different columns"):
        ingest_to_duckdb([log], db, rejects=RejectSink(None))


def test_cli_ingests_a_folder_and_reports(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(FIXTURES, logs)
    db = tmp_path / "out" / "exchanges.duckdb"
    runner = CliRunner()
    args = ["ingest", str(logs), "--db", str(db), "--account", "acct-batch"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "read      13 records from 4 files" in result.output
    assert "stored    9 new exchanges" in result.output
    assert "rejected  1 -> " in result.output and "unmappable" in result.output
    rejected = (tmp_path / "out" / "exchanges.rejected.jsonl").read_bytes().splitlines()
    assert len(rejected) == 1 and orjson.loads(rejected[0])["reason"].startswith("unmappable: ts")

    again = runner.invoke(app, [*args, "--rejected", str(tmp_path / "rejected-2.jsonl")])
    assert again.exit_code == 0
    assert "stored    0 new exchanges" in again.output and "present   9 already stored" in again.output
    assert (tmp_path / "rejected-2.jsonl").exists()


def test_cli_forced_format_rejects_what_does_not_fit(tmp_path: Path) -> None:
    db = tmp_path / "exchanges.duckdb"
    result = CliRunner().invoke(
        app, ["ingest", str(FIXTURES / "contract.jsonl"), "--db", str(db), "--format", "openai-batch", "-q"]
    )
    assert result.exit_code == 0
    assert "stored    0 new exchanges" in result.output and "rejected  4" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "missing.jsonl", "--db", "x.duckdb"], "error: no such file: missing.jsonl"),
        (
            ["ingest", str(FIXTURES / "contract.jsonl"), "--db", "x.duckdb", "--format", "xml"],
            "error: unknown format: xml",
        ),
    ],
)
def test_cli_errors_are_one_line_with_nonzero_exit(tmp_path: Path, args: list[str], message: str) -> None:
    cli = Path(sys.executable).with_name("distillguard")
    done = subprocess.run(
        [str(cli), *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith(message) and len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == "" and not (tmp_path / "x.duckdb").exists()  # nothing created on bad input
