"""The embedded batch engine: read -> signals -> DuckDB -> features -> links -> scores, on one machine.

Exchange text lives only inside one record batch at a time: each batch is turned into its signals
(hashes, scores, metadata) and appended to a DuckDB table, so memory grows with the number of
exchanges times a few dozen bytes, not with prompt text.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from distillguard.behaviour.features import STATE_TABLE, account_features, ensure_side_tables
from distillguard.ingest import RejectSink, input_size, read_accounts, read_exchanges, read_releases
from distillguard.intel.watchlist import Watchlist
from distillguard.linking import LinkResult, link_accounts
from distillguard.linking.link import Linker
from distillguard.progress import StageClock, track
from distillguard.scoring import DEFAULT_FPR_BUDGET, DEFAULT_SEGMENT_FPR_BUDGET
from distillguard.scoring.assign import cluster_verdicts, inherit, regroup, score_table
from distillguard.scoring.model import AccountModel
from distillguard.signals.exchange import SIGNALS_SCHEMA, exchange_signals, request_prompts

SAMPLES_PER_ACCOUNT = 3
SAMPLE_CHARS = 400


@dataclass
class AnalysisResult:
    accounts: pa.Table  # account_id, n_exchanges, features, risk, flagged, cluster_id, reasons
    clusters: pa.Table
    threshold: float
    n_exchanges: int
    n_duplicates: int
    rejected: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)  # account -> first request texts
    con: duckdb.DuckDBPyConnection | None = None
    link: LinkResult | None = None  # graph, cluster features and edges behind `clusters`
    # The grouping the risks were computed on (`linking.grouping`): what the gateway scores with.
    scoring_link: LinkResult | None = None
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds, in flow order


# DuckDB spills to disk beyond this, keeping the whole analysis within the 2 GiB memory aim. A
# machine with more memory can give it more (DISTILLGUARD_DUCKDB_MEMORY, e.g. "4GB").
DUCKDB_MEMORY_LIMIT = os.environ.get("DISTILLGUARD_DUCKDB_MEMORY", "1GB")


def open_store(db_path: Path | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(db_path) if db_path else ":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    # One spill folder per process: concurrent analyses must not share DuckDB's temporary files.
    spill = Path(tempfile.gettempdir()) / f"distillguard-spill-{os.getpid()}"
    con.execute(f"SET temp_directory = '{spill}'")
    # The commands draw their own progress bars (and none with --quiet); DuckDB's would interleave.
    con.execute("SET enable_progress_bar = false")
    return con


def collect_samples(batch: pa.RecordBatch, samples: dict[str, list[str]]) -> None:
    """Keep the first few request texts of every account (bounded) for the analyst's report."""
    rows = []
    for i, account in enumerate(batch.column("account_id").to_pylist()):
        kept = samples.setdefault(account, [])
        if len(kept) < SAMPLES_PER_ACCOUNT:
            kept.append("")
            rows.append((i, account, len(kept) - 1))
    if rows:
        texts = request_prompts(batch.take(pa.array([r[0] for r in rows])))
        for (_, account, slot), text in zip(rows, texts, strict=True):
            samples[account][slot] = text[:SAMPLE_CHARS]


def _sampled(batches: Iterable[pa.RecordBatch], samples: dict[str, list[str]]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        collect_samples(batch, samples)
        yield batch


PARALLEL_MIN_BYTES = 32 << 20


def signal_workers(input_bytes: int) -> int:
    return (os.cpu_count() or 1) if input_bytes >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1 else 0


def _watch_parent(parent: int, every: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: leave when the parent is gone.

    A killed parent (SIGKILL, an OOM kill) never shuts its pool down, and the idle workers would
    otherwise wait on their queue for ever.
    """
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


@contextmanager
def _signal_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    if workers <= 0:
        yield None
        return
    # `spawn`: the parent holds a DuckDB connection and its threads, which must not be forked.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
        yield pool


def _map_signals(
    pool: ProcessPoolExecutor | None, batches: Iterator[pa.RecordBatch], workers: int
) -> Iterator[tuple[pa.RecordBatch, pa.RecordBatch]]:
    """(batch, its signals) in input order; at most 2 batches per worker in flight bounds memory."""
    if pool is None:
        for batch in batches:
            yield batch, exchange_signals(batch)
        return
    pending: deque[tuple[pa.RecordBatch, Future[pa.RecordBatch]]] = deque()
    for batch in batches:
        pending.append((batch, pool.submit(exchange_signals, batch)))
        if len(pending) >= 2 * workers:
            done, future = pending.popleft()
            yield done, future.result()
    while pending:
        done, future = pending.popleft()
        yield done, future.result()


def load_signals(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[str | Path],
    *,
    rejects: RejectSink,
    fmt: str = "auto",
    quiet: bool = False,
    samples: dict[str, list[str]] | None = None,
    workers: int | None = None,
    spark: str | None = None,
) -> tuple[int, int]:
    """Read the logs into the `signals` table; returns (exchanges kept, duplicate request ids dropped).

    `workers` processes compute the signals while this one reads and validates (default: one per
    core for inputs over `PARALLEL_MIN_BYTES`, none below, where start-up would cost more). With
    `spark` (a Spark master URL) the signals are computed on Spark instead (`engines.spark`)."""
    con.execute(f"DROP TABLE IF EXISTS signals_raw; DROP TABLE IF EXISTS {STATE_TABLE}")
    con.register("signals_empty", SIGNALS_SCHEMA.empty_table())
    con.execute("CREATE TABLE signals_raw AS SELECT * FROM signals_empty")
    con.unregister("signals_empty")
    size = input_size(paths)
    workers = 0 if spark else signal_workers(size) if workers is None else workers
    with track("reading and scoring exchanges", total=size, quiet=quiet) as bar, _signal_pool(workers) as pool:
        batches = read_exchanges(paths, fmt=fmt, rejects=rejects, on_progress=bar.advance)
        if samples is not None:
            batches = _sampled(batches, samples)
        if spark:
            from distillguard.engines.spark import insert_signals

            insert_signals(con, batches, master=spark)
        else:
            for _, sig in _map_signals(pool, batches, workers):
                con.register("signals_batch", sig)
                con.execute("INSERT INTO signals_raw SELECT * FROM signals_batch")
                con.unregister("signals_batch")
    # The same exchange logged twice (overlapping exports) must count once.
    con.execute("DROP TABLE IF EXISTS signals")
    con.execute(
        "CREATE TABLE signals AS SELECT * FROM signals_raw "
        "QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts) = 1"
    )
    total = con.execute("SELECT count(*) FROM signals_raw").fetchall()[0][0]
    kept = con.execute("SELECT count(*) FROM signals").fetchall()[0][0]
    con.execute("DROP TABLE signals_raw")
    return kept, total - kept


def load_side_tables(
    con: duckdb.DuckDBPyConnection,
    *,
    rejects: RejectSink,
    accounts: Path | None,
    releases: Path | None,
) -> None:
    for name, path, reader in (("accounts", accounts, read_accounts), ("releases", releases, read_releases)):
        if path is None:
            continue
        con.register(f"{name}_in", reader(path, rejects))
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_in")
        con.unregister(f"{name}_in")
    ensure_side_tables(con)


def load_features(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[str | Path],
    *,
    rejects: RejectSink,
    accounts: Path | None = None,
    releases: Path | None = None,
    fmt: str = "auto",
    quiet: bool = False,
    samples: dict[str, list[str]] | None = None,
    spark: str | None = None,
) -> tuple[pa.Table, int, int]:
    """Read the logs and side tables into `con`: (account features, exchanges kept, duplicates dropped)."""
    load_side_tables(con, rejects=rejects, accounts=accounts, releases=releases)
    kept, duplicates = load_signals(con, paths, rejects=rejects, fmt=fmt, quiet=quiet, samples=samples, spark=spark)
    return account_features(con), kept, duplicates


def join_on_account(left: pa.Table, right: pa.Table) -> pa.Table:
    """Left join of two one-row-per-account tables, in account_id order (the feature table's)."""
    return left.join(right, "account_id", join_type="left outer").sort_by("account_id")


def account_table_for_training(sim_dir: Path) -> pa.Table:
    """Account features of a simulator output folder (exchanges, accounts, releases), as scored."""
    con = open_store(None)
    with RejectSink(None) as rejects:
        features, _, _ = load_features(
            con,
            [sim_dir / "exchanges.jsonl.gz"],
            rejects=rejects,
            accounts=sim_dir / "accounts.jsonl",
            releases=sim_dir / "releases.jsonl",
            quiet=True,
        )
    return join_on_account(features, link_accounts(con).accounts)


def score_and_group(
    linker: Linker, score: Callable[[LinkResult], pa.Table]
) -> tuple[pa.Table, pa.Table, LinkResult, LinkResult]:
    """Score accounts with the clusters of the whole graph, then report clusters grouped by verdict:
    (scored accounts with their reported cluster, contract cluster rows, the reported grouping,
    the grouping the scores were computed on)."""
    first = linker.link()
    scored = score(first)
    scored = inherit(scored, linker.inherited(scored))
    link = linker.link(flagged=scored.filter(scored.column("flagged")).column("account_id").to_pylist())
    scored = regroup(scored, link.accounts)
    return scored, cluster_verdicts(scored, link.clusters), link, first


def analyze(
    paths: Sequence[str | Path],
    *,
    rejected_path: Path | None,
    accounts: Path | None = None,
    releases: Path | None = None,
    fmt: str = "auto",
    fpr_budget: float = DEFAULT_FPR_BUDGET,
    segment_fpr_budget: float = DEFAULT_SEGMENT_FPR_BUDGET,
    model: AccountModel | None = None,
    db_path: Path | None = None,
    watchlist: Watchlist | None = None,
    quiet: bool = False,
    spark: str | None = None,
) -> AnalysisResult:
    """Run the whole batch flow and return scored accounts and clusters (writing is the caller's).

    Accounts are scored with the clusters of the whole graph; the reported clusters are then
    regrouped by verdict (`linking.grouping`), so each is wholly flagged or wholly not.
    """
    model = model or AccountModel.load()
    threshold = model.threshold(fpr_budget, segment_fpr_budget)
    con = open_store(db_path)
    samples: dict[str, list[str]] = {}
    timings: dict[str, float] = {}
    clock = StageClock(timings)
    with RejectSink(rejected_path) as rejects:
        load_side_tables(con, rejects=rejects, accounts=accounts, releases=releases)
        kept, duplicates = load_signals(con, paths, rejects=rejects, fmt=fmt, quiet=quiet, samples=samples,
                                        spark=spark)
        rejected = dict(rejects.counts)
    clock.lap("read, validate, signals")
    features = account_features(con)
    clock.lap("account behaviour")
    link_timings: dict[str, float] = {}

    def score(first: LinkResult) -> pa.Table:
        clock.lap("linking")
        timings.update((f"linking: {stage}", seconds) for stage, seconds in link_timings.items())
        table = score_table(join_on_account(features, first.accounts), model, threshold)
        clock.lap("scoring")
        return table

    with Linker(con, watchlist=watchlist, timings=link_timings) as linker:
        scored, clusters, link, first = score_and_group(linker, score)
    clock.lap("regrouping by verdict")
    return AnalysisResult(
        accounts=scored,
        clusters=clusters,
        link=link,
        scoring_link=first,
        samples=samples,
        threshold=threshold,
        n_exchanges=kept,
        n_duplicates=duplicates,
        rejected=rejected,
        con=con,
        timings=timings,
    )
