"""The online engine: one exchange in, one decision out, with the batch analysis's signals and scores.

`OnlineDetector` is what the gateway and `replay` share. For each exchange it computes the exchange
signals (the batch signal code through its Arrow-free entry point `signals.exchange_signal_rows`,
or a precomputed row in replay), folds them into the account's `AccountState` (an atomic update in
the state store, so gateway replicas sharing Redis see one account), reads the account features,
adds its cluster's features from the latest `LinkSnapshot`, scores with the same `AccountModel` as
`analyze`, and asks the `Policy` for a decision. Exchanges that arrive together are handled in one
call (`assess_many`, `observe_many`): the same decisions as one at a time, for less work.

Clusters are not recomputed per request: linking is a batch step (Leiden over the whole account
graph). The snapshot it produces is swapped in whole, by `replay` every few hours of traffic and by
a gateway from the last analysis; between two snapshots an account keeps its cluster.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from distillguard.behaviour.state import (
    AccountInfo,
    AccountState,
    Release,
    account_infos,
    release_list,
    window_days,
)
from distillguard.engines.state import (
    DEFAULT_MAX_ACCOUNTS,
    DEFAULT_PROBATION_ACCOUNTS,
    DEFAULT_REDIS_TIMEOUT,
    MemoryStore,
    ProbationStore,
    StateStore,
)
from distillguard.errors import InputError
from distillguard.ingest.normalise import exchange_row
from distillguard.linking.attach import match_cluster
from distillguard.linking.features import CLUSTER_FEATURES
from distillguard.linking.snapshot import LinkSnapshot
from distillguard.policy.buckets import BucketStore, MemoryBuckets
from distillguard.policy.decision import Assessment, Decision
from distillguard.policy.policy import Policy
from distillguard.scoring import DEFAULT_FPR_BUDGET, DEFAULT_SEGMENT_FPR_BUDGET
from distillguard.scoring.assign import merge_reasons, risk_of, score_table
from distillguard.scoring.model import AccountModel
from distillguard.signals.exchange import ELICITATION_COLUMNS, exchange_signal_rows

# Reason codes cost ~15 model evaluations; an account's reasons change slowly, so they are
# recomputed only after its volume grew by this share (or REASONS_MIN_STEP exchanges).
REASONS_GROWTH = 0.25
REASONS_MIN_STEP = 10
REASON_CACHE_SIZE = 100_000
_WINDOW_KEY = "~window-start"
LINKS_CHECK_SECONDS = 30.0
# Parsed account states kept beside their blobs, at most (about 6 kB each when their sketches are full).
LIVE_STATES = 256
logger = logging.getLogger("distillguard.online")


@dataclass(frozen=True)
class _Seen:
    """One exchange folded into its account: what its assessment needs besides the model's logit."""

    account: str
    n: int
    before: int
    x: np.ndarray
    link: np.ndarray | None
    cluster_id: str | None
    cluster_risk: float
    request_signals: frozenset[str]
    # The risk this request inherits from its egress range or card, and the kind's reason code.
    inherited: tuple[float, str | None] = (0.0, None)


class OnlineDetector:
    """Assess exchanges as they come, alone or in batches; see the module docstring."""

    def __init__(
        self,
        *,
        model: AccountModel | None = None,
        policy: Policy | None = None,
        store: StateStore | None = None,
        buckets: BucketStore | None = None,
        accounts: Mapping[str, AccountInfo] | None = None,
        releases: Sequence[Release] = (),
        fpr_budget: float = DEFAULT_FPR_BUDGET,
        segment_fpr_budget: float = DEFAULT_SEGMENT_FPR_BUDGET,
        attach: bool = False,
    ) -> None:
        self.model = model or AccountModel.load()
        self.threshold = self.model.threshold(fpr_budget, segment_fpr_budget)
        self.policy = policy or Policy.default()
        self.store = store if store is not None else MemoryStore()
        self.buckets = buckets if buckets is not None else MemoryBuckets()
        self.accounts = dict(accounts or {})
        self.releases = tuple(sorted(releases, key=lambda r: r.released_at_ms))
        self.links = LinkSnapshot()
        # Attach unclustered accounts to high-risk clusters between linking passes (`linking.attach`).
        self.attach = attach
        self._window_start: int | None = None
        self._links_path: Path | None = None
        self._links_mtime: float | None = None
        self._links_checked = 0.0
        self._link_cols = [self.model.features.index(c) for c in CLUSTER_FEATURES if c in self.model.features]
        self._link_src = [i for i, c in enumerate(CLUSTER_FEATURES) if c in self.model.features]
        self._reasons: OrderedDict[str, tuple[int, tuple[str, ...]]] = OrderedDict()
        # Parsed states of the accounts updated last, with the blob each was written to (bounded).
        self._live: OrderedDict[str, tuple[bytes, AccountState]] = OrderedDict()

    @classmethod
    def create(
        cls,
        *,
        policy: Path | None = None,
        accounts: Path | None = None,
        releases: Path | None = None,
        redis_url: str | None = None,
        links: Path | None = None,
        attach: bool = False,
        fpr_budget: float = DEFAULT_FPR_BUDGET,
        segment_fpr_budget: float = DEFAULT_SEGMENT_FPR_BUDGET,
        redis_timeout: float = DEFAULT_REDIS_TIMEOUT,
        max_accounts: int = DEFAULT_MAX_ACCOUNTS,
        probation_accounts: int = DEFAULT_PROBATION_ACCOUNTS,
    ) -> OnlineDetector:
        """A detector from the command line's files: in-process state, or shared through Redis.

        With Redis the detector is asynchronous (`asynchronous`, `assess_many_async`, ...): its
        state and buckets go through redis-py's asyncio client with `redis_timeout` per command, for
        the gateway's event loop.

        Either way, state is kept in two bounded pools (`ProbationStore`): at most `max_accounts`
        confirmed accounts (known to the accounts table, or with a request the upstream accepted),
        and at most `probation_accounts` others, so that keys the upstream refuses cannot evict the
        state of real accounts."""
        from distillguard.ingest.rejects import RejectSink
        from distillguard.ingest.tables import read_accounts, read_releases

        rejects = RejectSink(None)
        store: Any = ProbationStore(MemoryStore(max_accounts), MemoryStore(probation_accounts))
        buckets: Any = None
        if redis_url:
            from distillguard.engines.state import AsyncRedisStore, async_redis_from_url
            from distillguard.policy.buckets import AsyncRedisBuckets

            client = async_redis_from_url(redis_url, timeout=redis_timeout)
            store = AsyncRedisStore(client, timeout=redis_timeout, max_entries=max_accounts,
                                    probation_entries=probation_accounts)
            buckets = AsyncRedisBuckets(client)
        account_table = read_accounts(accounts, rejects) if accounts else None
        release_table = read_releases(releases, rejects) if releases else None
        if rejects.total:
            # A service has no rejected-records file to show: it refuses to start on a side table it
            # would only half use, rather than score accounts without their age or tier.
            raise InputError(f"{rejects.first} ({rejects.total} row(s) of the accounts/releases tables refused; "
                             "they are read as for analyze: JSON Lines, gzip or Parquet)")
        detector = cls(
            policy=Policy.from_yaml(policy) if policy else None,
            store=store,
            buckets=buckets,
            accounts=account_infos(account_table) if account_table is not None else None,
            releases=release_list(release_table) if release_table is not None else (),
            fpr_budget=fpr_budget,
            segment_fpr_budget=segment_fpr_budget,
            attach=attach,
        )
        if links is not None:
            detector.watch_links(links)
        detector.warm_up()
        return detector

    def warm_up(self) -> None:
        """Load the classifiers and compile the patterns now, not on the first customer's request."""
        probe = {"request_id": "warm-up", "ts": 1_767_225_600_000, "account_id": "warm-up", "model": "warm-up",
                 "messages": [{"role": "user", "content": "Explain step by step how to sort a list."}]}
        exchange_signal_rows([exchange_row(probe)])
        self.model.logit(self.model.typical[None, :])

    def watch_links(self, folder: Path) -> None:
        """Use the cluster snapshot in `folder` (written by `analyze --out DIR` as DIR/links) and
        reload it whenever it is rewritten, checked at most every `LINKS_CHECK_SECONDS`."""
        try:
            mtime = (folder / "snapshot.json").stat().st_mtime
        except OSError:
            raise InputError(f"{folder}: no cluster snapshot here (expected snapshot.json from analyze)") from None
        self.use_links(LinkSnapshot.read(folder))
        self._links_path, self._links_mtime = folder, mtime
        self._links_checked = time.monotonic()

    def _maybe_reload_links(self) -> None:
        if self._links_path is None or time.monotonic() - self._links_checked < LINKS_CHECK_SECONDS:
            return
        self._links_checked = time.monotonic()
        try:
            mtime = (self._links_path / "snapshot.json").stat().st_mtime
            if mtime != self._links_mtime:
                self.use_links(LinkSnapshot.read(self._links_path))
                self._links_mtime = mtime
        except (OSError, InputError) as exc:
            # A half-written snapshot must not stop the gateway: keep the current one, retry later.
            logger.warning("cluster snapshot not reloaded: %s", exc)

    # -- the gateway's interface -----------------------------------------------------------------
    def assess(self, record: dict[str, Any], now: float) -> Decision:
        """Decide on a request (a contract record without response fields) as it arrives."""
        return self.assess_many([record], now)[0]

    def assess_many(self, records: Sequence[dict[str, Any]], now: float) -> list[Decision]:
        """`assess` for requests that arrived together, in order: one pass of the signal code over
        them all (its Arrow-free entry point, which gives the same values) and one model call."""
        if not records:
            return []
        rows = exchange_signal_rows([exchange_row(record) for record in records])
        return [decision for decision, _ in self.observe_many(rows, [now] * len(rows), with_usage=False)]

    def complete(self, record: dict[str, Any]) -> None:
        """Add the response's usage once it has ended (streamed or not)."""
        self.complete_many([record])

    def complete_many(self, records: Sequence[dict[str, Any]]) -> None:
        """`complete` for several answers: one state update per account, one store step for all."""
        updates = self._usage_updates(records)
        self._update_store(updates, self._confirmed(updates, records))

    def _update_store(self, updates: Mapping[str, Callable[[bytes | None], bytes]], confirmed: set[str]) -> None:
        if getattr(self.store, "tiered", False):
            self.store.update_many(updates, confirmed=confirmed)  # type: ignore[call-arg]
        else:
            self.store.update_many(updates)

    def _confirmed(self, accounts: Collection[str], records: Sequence[Mapping[str, Any]]) -> set[str]:
        """The accounts of `accounts` whose state belongs in the main pool of a `ProbationStore`:
        known to the accounts table, or with a request in `records` that the upstream accepted."""
        accepted = {str(r["account_id"]) for r in records if type(r.get("status")) is int and 200 <= r["status"] < 300}
        return {account for account in accounts if account in self.accounts or account in accepted}

    def _usage_updates(self, records: Sequence[dict[str, Any]]) -> dict[str, Callable[[bytes | None], bytes]]:
        by_account: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_account.setdefault(str(record["account_id"]), []).append(record)

        def adder(account: str, done: list[dict[str, Any]]) -> Callable[[bytes | None], bytes]:
            def add(blob: bytes | None) -> bytes:
                state = self._take_state(account, blob)
                for record in done:
                    state.add_usage(record.get("input_tokens"), record.get("output_tokens"),
                                    record.get("stop_reason"))
                return self._keep_state(account, state)

            return add

        return {account: adder(account, done) for account, done in by_account.items()}

    # -- the gateway's interface with state in Redis ---------------------------------------------
    @property
    def asynchronous(self) -> bool:
        """True when state is in Redis: the gateway then awaits the `*_async` methods."""
        return bool(getattr(self.store, "asynchronous", False))

    async def assess_many_async(self, records: Sequence[dict[str, Any]], now: float) -> list[Decision]:
        """`assess_many` with an asynchronous store and buckets (the same decisions)."""
        if not records:
            return []
        rows = exchange_signal_rows([exchange_row(record) for record in records])
        self._maybe_reload_links()
        if self._window_start is None:
            ts = min(int(row["ts"]) for row in rows)
            packed = struct.pack("<q", ts)
            blob = await self.store.update(_WINDOW_KEY, lambda old: old or packed)
            self._window_start = struct.unpack("<q", blob)[0]
        updates, seen = self._folds(rows, with_usage=False)
        await self.store.update_many(updates, confirmed=self._confirmed(updates, ()))
        assessments = self._assessments(seen)
        rules = [self.policy.rule_for(a) for a in assessments]
        takes = [(rule.throttle.bucket_key(a), rule.throttle.per_minute, rule.throttle.burst, now)
                 for rule, a in zip(rules, assessments, strict=True) if rule is not None and rule.throttle is not None]
        waits = iter(await self.buckets.take_many(takes))
        return [self.policy.decision(rule, a, next(waits) if rule is not None and rule.throttle is not None else None)
                for rule, a in zip(rules, assessments, strict=True)]

    async def complete_many_async(self, records: Sequence[dict[str, Any]]) -> None:
        """`complete_many` with an asynchronous store."""
        updates = self._usage_updates(records)
        await self.store.update_many(updates, confirmed=self._confirmed(updates, records))

    async def health_async(self) -> dict[str, str]:
        """What `/healthz` reports about the state store: answers promptly whatever Redis does."""
        ping = getattr(self.store, "ping", None)
        if ping is None:
            return {}
        return {"state": "ok" if await ping() else "unavailable"}

    async def aclose(self) -> None:
        close = getattr(self.store, "aclose", None)
        if close is not None:
            await close()

    # -- shared by gateway and replay ------------------------------------------------------------
    def observe(self, row: Mapping[str, Any], now: float, *, with_usage: bool = True) -> Decision:
        """Fold one signals row (`ts` in epoch ms) into its account and decide on it."""
        return self.observe_many([row], [now], with_usage=with_usage)[0][0]

    def observe_many(
        self, rows: Sequence[Mapping[str, Any]], nows: Sequence[float], *, with_usage: bool = True
    ) -> list[tuple[Decision, int]]:
        """Fold signals rows into their accounts in order and decide on each, returning with every
        decision how many exchanges the account had made before. Each row is assessed on the state
        its own update left, exactly as if the rows came one at a time; only the model evaluation is
        shared, one call for all rows."""
        self._maybe_reload_links()
        if not rows:
            return []
        updates, seen = self._folds(rows, with_usage)
        self._update_store(updates, self._confirmed(updates, ()))
        assessments = self._assessments(seen)
        return [(self.policy.decide(a, now, self.buckets), s.before)
                for s, a, now in zip(seen, assessments, nows, strict=True)]

    def _folds(self, rows: Sequence[Mapping[str, Any]], with_usage: bool
               ) -> tuple[dict[str, Callable[[bytes | None], bytes]], list[_Seen]]:
        """The state update of each account of `rows`, and the list each fills with what every row's
        assessment needs (filled when the store runs the updates)."""
        by_account: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            by_account.setdefault(str(row["account_id"]), []).append(i)
        seen: list[_Seen] = [None] * len(rows)  # type: ignore[list-item]

        def folder(account: str, indices: list[int]) -> Callable[[bytes | None], bytes]:
            def fold(blob: bytes | None) -> bytes:
                # Runs again when a concurrent replica wrote first: the last run is what counts.
                state = self._take_state(account, blob)
                for i in indices:
                    before = state.n
                    state.update(rows[i], self.releases, usage=with_usage)
                    seen[i] = self._seen(account, rows[i], state, before)
                return self._keep_state(account, state)

            return fold

        return {account: folder(account, indices) for account, indices in by_account.items()}, seen

    def _assessments(self, seen: list[_Seen]) -> list[Assessment]:
        logits = self.model.logit(np.vstack([s.x for s in seen]))
        return [self._assessment(s, float(logit)) for s, logit in zip(seen, logits, strict=True)]

    def _take_state(self, account: str, blob: bytes | None) -> AccountState:
        """The account's state as `blob` holds it. The store keeps the very blob object that
        `_keep_state` returned, so when it hands that object back the state parsed from it is still
        here and need not be parsed again (a request's assessment and its completion, a busy
        account's next request). Taken out while in use: an update that fails leaves nothing stale."""
        kept = self._live.pop(account, None)
        if kept is not None and blob is not None and kept[0] is blob:
            return kept[1]
        return AccountState.from_bytes(blob) if blob else AccountState()

    def _keep_state(self, account: str, state: AccountState) -> bytes:
        blob = state.to_bytes()
        self._live[account] = (blob, state)
        if len(self._live) > LIVE_STATES:
            self._live.popitem(last=False)
        return blob

    def _seen(self, account: str, row: Mapping[str, Any], state: AccountState, before: int) -> _Seen:
        if self.attach and self.links.key_index and account not in self.links.cluster_of:
            cluster = match_cluster(row, self.links.key_index)
            if cluster is not None:
                self.links.attach(account, cluster)
        cluster_id = self.links.cluster_of.get(account)
        return _Seen(
            account=account,
            n=state.n,
            before=before,
            x=self.feature_row(account, state, int(row["ts"])),
            link=self.links.values.get(account),
            cluster_id=cluster_id,
            cluster_risk=self.links.cluster_risk.get(cluster_id, 0.0) if cluster_id else 0.0,
            request_signals=frozenset(c for c in ELICITATION_COLUMNS if (row.get(c) or 0) > 0.5),
            inherited=self.links.inherited(row),
        )

    def _assessment(self, seen: _Seen, logit: float) -> Assessment:
        risk = float(risk_of(logit, seen.link[-1] if seen.link is not None else 0.0))
        flagged = risk > self.threshold
        reasons = self._reasons_for(seen.account, seen.n, seen.x, flagged, seen.link)
        inherited, code = seen.inherited
        if not flagged and inherited > self.threshold:
            # As `analyze` does after scoring (`Linker.inherited`), for this request's egress.
            risk, flagged = inherited, True
            reasons = (code, *(r for r in reasons if r != code))
        return Assessment(
            account_id=seen.account,
            risk=risk,
            flagged=bool(flagged),
            reasons=reasons,
            cluster_id=seen.cluster_id,
            cluster_risk=seen.cluster_risk,
            n_exchanges=seen.before,
            request_signals=seen.request_signals,
        )

    def feature_row(self, account: str, state: AccountState, ts: int) -> np.ndarray:
        """The model's feature vector for an account: its own features and its cluster's."""
        feats = state.features(window_days(self.window_start(ts), ts), self.accounts.get(account))
        x = np.array([feats.get(name, 0.0) for name in self.model.features], dtype=np.float64)
        link = self.links.values.get(account)
        if link is not None:
            x[self._link_cols] = link[self._link_src]
        return x

    def window_start(self, ts: int) -> int:
        """Start of the observation window: the first exchange any replica saw (kept in the store)."""
        if self._window_start is None:
            packed = struct.pack("<q", ts)
            blob = self.store.update(_WINDOW_KEY, lambda old: old or packed)
            self._window_start = struct.unpack("<q", blob)[0]
        return self._window_start

    def _reasons_for(
        self, account: str, n: int, x: np.ndarray, flagged: bool, link: np.ndarray | None
    ) -> tuple[str, ...]:
        if not flagged and (link is None or link[-1] <= 0):
            return ()
        cached = self._reasons.get(account)
        if cached is not None and n - cached[0] < max(REASONS_MIN_STEP, REASONS_GROWTH * cached[0]):
            self._reasons.move_to_end(account)
            return cached[1]
        model_reasons = self.model.reasons(x[None, :])[0]
        watch = float(link[-1]) if link is not None else 0.0
        text = merge_reasons(model_reasons, self.links.link_reasons.get(account), watch, flagged)
        reasons = tuple(c for c in text.split(";") if c)
        self._reasons[account] = (n, reasons)
        if len(self._reasons) > REASON_CACHE_SIZE:
            self._reasons.popitem(last=False)
        return reasons

    # -- snapshots ---------------------------------------------------------------------------------
    def set_links(self, snapshot: LinkSnapshot, now_ts: int, accounts: Sequence[str] | None = None) -> dict[str, float]:
        """Swap in a new linking pass; cluster risk is the mean current risk of its members. Returns
        the current risks of `accounts` (default: the clustered ones; they must include them), for
        callers that need more verdicts under the new pass than its clusters' own."""
        self.use_links(snapshot)
        risk = self.risks(list(snapshot.cluster_of) if accounts is None else accounts, now_ts)
        snapshot.set_cluster_risk(risk)
        snapshot.finish()
        return risk

    def risks(self, accounts: Sequence[str], now_ts: int) -> dict[str, float]:
        """Current risk of each of `accounts` that has state, as its next exchange would be scored."""
        table = self.feature_table(accounts, now_ts)
        risk = score_table(table, self.model, self.threshold).column("risk").to_pylist()
        return dict(zip(table.column("account_id").to_pylist(), risk, strict=True))

    def use_links(self, snapshot: LinkSnapshot) -> None:
        """Swap in a snapshot that carries its own cluster risks (a gateway loading `analyze`'s)."""
        self.links = snapshot
        self._reasons.clear()

    def feature_table(self, accounts: Sequence[str], now_ts: int) -> pa.Table:
        """Model features of the given accounts that have state, with their cluster columns, in the
        shape `scoring.assign.score_table` takes: batch and online score through the same code."""
        blobs = self.store.get_many(list(accounts)) if accounts else []
        ids, rows = [], []
        for account, blob in zip(accounts, blobs, strict=True):
            if blob:
                ids.append(account)
                rows.append(self.feature_row(account, AccountState.from_bytes(blob), now_ts))
        x = np.vstack(rows) if rows else np.zeros((0, len(self.model.features)))
        columns: dict[str, Any] = {"account_id": pa.array(ids, pa.string())}
        for j, name in enumerate(self.model.features):
            columns[name] = pa.array(x[:, j], pa.float64())
        columns["cluster_id"] = pa.array([self.links.cluster_of.get(a) for a in ids], pa.string())
        columns["link_reasons"] = pa.array([self.links.link_reasons.get(a) for a in ids], pa.string())
        columns["watchlist"] = pa.array(
            [float(self.links.values[a][-1]) if a in self.links.values else 0.0 for a in ids], pa.float64()
        )
        return pa.table(columns)
