"""A watchlist of indicators imported from partners' STIX bundles, matched against our own traffic.

The watchlist is a small JSON file (never pickle): for each indicator kind the set of values, and
the list of bundles it came from. `match` finds the accounts of a `signals` table that used any of
them: plain values (IP ranges, ASNs, TLS fingerprints) by comparison, keyed ones by computing the
same HMAC of our own hashes with the agreed key.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import stix2

from distillguard.behaviour.features import ensure_side_tables
from distillguard.errors import InputError
from distillguard.intel.fingerprint import intel_key, key_id, keyed
from distillguard.intel.indicators import INDICATOR_KINDS, parse_pattern

WATCHLIST_ENV = "DISTILLGUARD_WATCHLIST"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_INDICATORS = 500_000
FORMAT_VERSION = 1

# Our hash columns behind each keyed kind; bands are the elements of `lsh`.
_KEYED_COLUMNS = {
    "payment_hmac": "payment_fingerprint",
    "skeleton_hmac": "skel_hash",
    "head_hmac": "frame_hash",
    "tail_hmac": "tail_hash",
    "system_hmac": "sys_hash",
    "band_hmac": "lsh",
}
_PLAIN_COLUMNS = {"asn": "asn", "tls_fingerprint": "tls_fingerprint"}


def default_path() -> Path:
    """$DISTILLGUARD_WATCHLIST, else $XDG_DATA_HOME (or ~/.local/share)/distillguard/watchlist.json."""
    if os.environ.get(WATCHLIST_ENV):
        return Path(os.environ[WATCHLIST_ENV])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "distillguard" / "watchlist.json"


@dataclass
class Watchlist:
    indicators: dict[str, set[str]] = field(default_factory=lambda: {k.name: set() for k in INDICATOR_KINDS})
    sources: list[dict[str, object]] = field(default_factory=list)
    key: bytes = field(default_factory=intel_key)

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.indicators.values())

    @classmethod
    def load(cls, path: Path, *, key: bytes | None = None) -> Watchlist:
        """Read a watchlist file; a missing file is an empty watchlist."""
        wl = cls(key=key if key is not None else intel_key())
        path = Path(path)
        if not path.exists():
            return wl
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for name, values in dict(data.get("indicators", {})).items():
                if name in wl.indicators:
                    wl.indicators[name] = {str(v) for v in values}
            wl.sources = list(data.get("sources", []))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise InputError(f"cannot read watchlist {path}: {exc}") from exc
        return wl

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "version": FORMAT_VERSION,
            "key_id": key_id(self.key),
            "sources": self.sources,
            "indicators": {k: sorted(v) for k, v in self.indicators.items()},
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(path)

    def import_bundle(self, bundle_path: Path) -> dict[str, int]:
        """Add the indicators of a STIX 2.1 bundle; returns counts of new values per kind (and 'skipped')."""
        bundle_path = Path(bundle_path)
        try:
            if bundle_path.stat().st_size > MAX_BUNDLE_BYTES:
                raise InputError(f"{bundle_path} is larger than {MAX_BUNDLE_BYTES // 2**20} MiB")
            bundle = stix2.parse(bundle_path.read_text(encoding="utf-8"), allow_custom=True)
        except OSError as exc:
            raise InputError(f"cannot read bundle {bundle_path}: {exc.strerror}") from exc
        except (stix2.exceptions.STIXError, ValueError) as exc:
            raise InputError(f"{bundle_path} is not a valid STIX 2.1 bundle: {str(exc).splitlines()[0]}") from exc
        if getattr(bundle, "type", None) != "bundle":
            raise InputError(f"{bundle_path} holds a single {getattr(bundle, 'type', 'object')}, not a bundle")
        added = {k.name: 0 for k in INDICATOR_KINDS} | {"skipped": 0}
        for obj in getattr(bundle, "objects", None) or []:
            if obj.get("type") != "indicator" or obj.get("pattern_type") != "stix":
                continue
            parsed = parse_pattern(str(obj.get("pattern", "")))
            if parsed is None:
                added["skipped"] += 1
                continue
            kind, value = parsed
            if self.size >= MAX_INDICATORS:
                raise InputError(f"watchlist would exceed {MAX_INDICATORS} indicators")
            if value not in self.indicators[kind]:
                self.indicators[kind].add(value)
                added[kind] += 1
        self.sources.append(
            {"bundle": str(bundle.id), "file": bundle_path.name, "imported_at": datetime.now(UTC).isoformat()}
        )
        return added

    def match(self, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        """account_id -> number of distinct watchlist indicators its traffic (or account record) matched."""
        ensure_side_tables(con)
        frames = [self._plain_matches(con), self._prefix_matches(con), *self._keyed_matches(con)]
        rows = [r for r in frames if r.num_rows]
        if not rows:
            return {}
        con.register("_wl_hits", pa.concat_tables(rows))
        try:
            result = con.sql(
                "SELECT account_id, count(DISTINCT indicator) FROM _wl_hits GROUP BY account_id"
            ).fetchall()
        finally:
            con.unregister("_wl_hits")
        return {account: int(n) for account, n in result}

    def _lookup(
        self, con: duckdb.DuckDBPyConnection, kind: str, sql: str, values: list[str], indicators: list[str]
    ) -> pa.Table:
        """Accounts whose `sql` value (a `v` column over signals) is in `values`."""
        if not values:
            return _empty_hits()
        con.register("_wl_values", pa.table({"v": pa.array(values, pa.string()), "ind": indicators}))
        try:
            return con.sql(
                f"SELECT DISTINCT s.account_id, '{kind}:' || w.ind AS indicator FROM ({sql}) s "
                "JOIN _wl_values w ON s.v = w.v"
            ).to_arrow_table()
        finally:
            con.unregister("_wl_values")

    def _plain_matches(self, con: duckdb.DuckDBPyConnection) -> pa.Table:
        tables = []
        for kind, column in _PLAIN_COLUMNS.items():
            values = sorted(self.indicators[kind])
            sql = f"SELECT account_id, {column}::VARCHAR AS v FROM signals WHERE {column} IS NOT NULL"
            tables.append(self._lookup(con, kind, sql, values, values))
        return pa.concat_tables(tables)

    def _prefix_matches(self, con: duckdb.DuckDBPyConnection) -> pa.Table:
        """IP ranges of any length: each distinct client IP is tested against the ranges by length."""
        networks = []
        for kind in ("ipv4_prefix", "ipv6_prefix"):
            for text in self.indicators[kind]:
                try:
                    networks.append(ipaddress.ip_network(text, strict=False))
                except ValueError:
                    continue
        if not networks:
            return _empty_hits()
        by_length: dict[tuple[int, int], set[str]] = {}
        for net in networks:
            by_length.setdefault((net.version, net.prefixlen), set()).add(str(net))
        ips = [r[0] for r in con.sql("SELECT DISTINCT ip FROM signals WHERE ip IS NOT NULL").fetchall()]
        values, indicators = [], []
        for ip in ips:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                continue
            for (version, length), nets in by_length.items():
                if addr.version == version:
                    net = str(ipaddress.ip_network(f"{addr}/{length}", strict=False))
                    if net in nets:
                        values.append(ip)
                        indicators.append(net)
        sql = "SELECT account_id, ip AS v FROM signals WHERE ip IS NOT NULL"
        return self._lookup(con, "ip", sql, values, indicators)

    def _keyed_matches(self, con: duckdb.DuckDBPyConnection) -> list[pa.Table]:
        tables = []
        for kind, column in _KEYED_COLUMNS.items():
            wanted = self.indicators[kind]
            if not wanted:
                continue
            if column == "lsh":
                sql = "SELECT account_id, band::VARCHAR AS v FROM (SELECT account_id, unnest(lsh) AS band FROM signals)"
            elif column == "payment_fingerprint":
                sql = (
                    "SELECT account_id, payment_fingerprint AS v FROM signals WHERE payment_fingerprint IS NOT NULL "
                    "UNION ALL SELECT account_id, payment_fingerprint FROM accounts WHERE payment_fingerprint IS NOT NULL"
                )
            else:
                sql = f"SELECT account_id, {column}::VARCHAR AS v FROM signals WHERE {column} IS NOT NULL"
            distinct = [r[0] for r in con.sql(f"SELECT DISTINCT v FROM ({sql})").fetchall()]
            hits = [(v, h) for v in distinct if (h := keyed(self.key, v)) in wanted]
            tables.append(self._lookup(con, kind, sql, [v for v, _ in hits], [h for _, h in hits]))
        return tables


def _empty_hits() -> pa.Table:
    return pa.table({"account_id": pa.array([], pa.string()), "indicator": pa.array([], pa.string())})
