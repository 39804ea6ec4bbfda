"""API keys: finding the key in a request, hashing it, and mapping it to the account that owns it.

The raw key only ever lives in the request headers that are forwarded upstream. Everything the
gateway keeps, logs or audits uses its SHA-256: `api_key_id` ("sha256:" + 16 hex digits) and, when
the accounts table does not know the key, a stable stand-in account id ("key-" + 16 hex digits).

The accounts table (JSONL, optionally gzip, or Parquet, as for `analyze`) maps keys through an optional column
`api_key_sha256`: the hex SHA-256 of one key, or several (a list, or a string separated by `;`, `,`,
`|` or spaces). A key claimed by two accounts is an error at start-up rather than a guess.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from distillguard.errors import InputError

KEY_COLUMN = "api_key_sha256"
# Real keys are well under this; a longer "key" is garbage or an attack on the hashing path.
MAX_KEY_LENGTH = 512
MAX_ACCOUNT_ID_LENGTH = 256
_KEY_CHARS = re.compile(r"[\x21-\x7e]+")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_LIST_SEPARATORS = re.compile(r"[;,|\s]+")


@dataclass(frozen=True)
class KeyIdentity:
    """Who a request is attributed to: never the key itself."""

    account_id: str
    api_key_id: str


def key_digest(key: str) -> str:
    """Hex SHA-256 of a key, the only form in which keys are compared or kept."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_key_id(digest: str) -> str:
    return "sha256:" + digest[:16]


def fallback_account_id(digest: str) -> str:
    """Account of a key the accounts table does not know: stable, and distinct per key."""
    return "key-" + digest[:16]


def _valid_key(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_KEY_LENGTH or not _KEY_CHARS.fullmatch(value):
        return None
    return value


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return _valid_key(token) if scheme.lower() == "bearer" else None


def extract_api_key(headers: Mapping[str, str], prefer_x_api_key: bool = False) -> str | None:
    """The API key of a request (`Authorization: Bearer` or `x-api-key`), or None when absent or malformed.

    Each API's own header is tried first (Anthropic's SDK sends `x-api-key`, OpenAI's a bearer token),
    so a request carrying both is attributed to the key the upstream will bill.
    """
    bearer = _bearer(headers.get("authorization"))
    x_api_key = _valid_key(headers.get("x-api-key"))
    first, second = (x_api_key, bearer) if prefer_x_api_key else (bearer, x_api_key)
    return first if first is not None else second


# The headers a client may authenticate with, each scored under the same rules.
CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")
# Other places some model APIs read a key from (Azure's `api-key`, Google's `x-goog-api-key` and
# `?key=`): never scored, so never forwarded, or the upstream could bill a key the detector never saw.
UNSCORED_CREDENTIAL_HEADERS = frozenset({b"api-key", b"x-goog-api-key"})
QUERY_CREDENTIALS = frozenset({"api_key", "api-key", "apikey", "key", "access_token"})


class CredentialError(ValueError):
    """A request whose credentials are ambiguous; the message is safe to show to the client."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Credential:
    """The one key of a request, and the header that carries it upstream (exactly as received)."""

    key: str
    header: tuple[bytes, bytes]


def _query_names(query_string: bytes) -> set[str]:
    from urllib.parse import parse_qsl

    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return {name.strip().lower() for name, _ in pairs}


def request_credential(raw_headers: Iterable[tuple[bytes, bytes]], query_string: bytes = b"",
                       prefer_x_api_key: bool = False) -> Credential | None:
    """The credential to score and forward, None when there is none, or `CredentialError` when the
    request carries more than one: a repeated credential header, `Authorization: Bearer` and
    `x-api-key` with different keys, an `Authorization` that is not a bearer token, a key in the
    query string. The scored key must be the billed key: whatever is ambiguous is refused rather
    than guessed, and only the scored header goes upstream (`forwarded_headers`)."""
    found: dict[bytes, list[bytes]] = {}
    for name, value in raw_headers:
        lower = name.lower()
        if lower in CREDENTIAL_HEADERS:
            found.setdefault(lower, []).append(value)
    for name, values in found.items():
        if len(values) > 1:
            raise CredentialError(400, f"The request carries {len(values)} '{name.decode()}' headers; send exactly "
                                       "one credential.", "duplicate_credentials")
    if query_string and QUERY_CREDENTIALS & _query_names(query_string):
        raise CredentialError(400, "API keys are accepted in headers only ('Authorization: Bearer <key>' or "
                                   "'x-api-key: <key>'), not in the query string.", "credential_in_query")
    bearer = x_api_key = None
    if b"authorization" in found:
        bearer = _bearer(found[b"authorization"][0].decode("latin-1"))
        if bearer is None:
            raise CredentialError(401, "The Authorization header must be 'Bearer <key>'.", "invalid_api_key")
    if b"x-api-key" in found:
        x_api_key = _valid_key(found[b"x-api-key"][0].decode("latin-1"))
        if x_api_key is None:
            raise CredentialError(401, "The x-api-key header does not hold a valid key.", "invalid_api_key")
    if bearer is not None and x_api_key is not None and bearer != x_api_key:
        raise CredentialError(400, "The request carries two different API keys ('Authorization' and 'x-api-key'); "
                                   "send exactly one.", "conflicting_credentials")
    use_x = x_api_key is not None and (prefer_x_api_key or bearer is None)
    if use_x:
        assert x_api_key is not None
        return Credential(x_api_key, (b"x-api-key", found[b"x-api-key"][0]))
    if bearer is not None:
        return Credential(bearer, (b"authorization", found[b"authorization"][0]))
    return None


def forwarded_headers(headers: Iterable[tuple[bytes, bytes]], credential: Credential) -> list[tuple[bytes, bytes]]:
    """`headers` with every credential header replaced by the one that was scored."""
    dropped = frozenset(CREDENTIAL_HEADERS) | UNSCORED_CREDENTIAL_HEADERS
    return [*(pair for pair in headers if pair[0].lower() not in dropped), credential.header]


def parse_digests(value: Any, where: str) -> list[str]:
    """The key digests of one accounts-table cell: None, a hex string, a separated string or a list."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):  # a JSON list written as a string
            try:
                value = json.loads(text)
            except ValueError:
                raise InputError(f"{where}: {KEY_COLUMN} is not a valid list") from None
        else:
            value = [part for part in _LIST_SEPARATORS.split(text) if part]
    if not isinstance(value, list | tuple):
        raise InputError(f"{where}: {KEY_COLUMN} must be a string or a list of strings")
    digests = []
    for item in value:
        if not isinstance(item, str):
            raise InputError(f"{where}: {KEY_COLUMN} must hold strings")
        digest = item.strip().lower().removeprefix("sha256:")
        if not _HEX_DIGEST.fullmatch(digest):
            raise InputError(f"{where}: {KEY_COLUMN} value is not a hex SHA-256 (64 hex digits)")
        digests.append(digest)
    return digests


def _jsonl_rows(path: Path, opener: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    with opener(path, "rt", encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise InputError(f"{path}:{line_no}: not valid JSON") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{line_no}: not a JSON object")
            yield f"{path}:{line_no}", row


def _parquet_rows(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    parquet = pq.ParquetFile(path)
    names = set(parquet.schema_arrow.names)
    if KEY_COLUMN not in names:
        return
    if "account_id" not in names:
        raise InputError(f"{path}: no account_id column")
    row_no = 0
    for batch in parquet.iter_batches(columns=["account_id", KEY_COLUMN]):
        for row in batch.to_pylist():
            row_no += 1
            yield f"{path}: row {row_no}", row


def _rows(path: Path) -> Iterator[tuple[str, Mapping[str, Any]]]:
    with path.open("rb") as fh:
        head = fh.read(4)
    if head == b"PAR1":
        return _parquet_rows(path)
    if head[:2] == b"\x1f\x8b":
        return _jsonl_rows(path, gzip.open)
    return _jsonl_rows(path, open)


class KeyMap:
    """Key digest -> account id, from the accounts table."""

    def __init__(self, accounts_by_digest: Mapping[str, str]) -> None:
        self._accounts = dict(accounts_by_digest)

    def __len__(self) -> int:
        return len(self._accounts)

    @classmethod
    def from_rows(cls, rows: Iterator[tuple[str, Mapping[str, Any]]]) -> KeyMap:
        accounts: dict[str, str] = {}
        for where, row in rows:
            digests = parse_digests(row.get(KEY_COLUMN), where)
            if not digests:
                continue
            account = row.get("account_id")
            if not isinstance(account, str) or not account or len(account) > MAX_ACCOUNT_ID_LENGTH:
                raise InputError(f"{where}: account_id must be a non-empty string")
            for digest in digests:
                owner = accounts.setdefault(digest, account)
                if owner != account:
                    raise InputError(f"{where}: a key hash is claimed by two accounts ({owner!r} and {account!r})")
        return cls(accounts)

    @classmethod
    def load(cls, path: str | Path) -> KeyMap:
        """The key map of an accounts file; empty when the file has no `api_key_sha256` column."""
        path = Path(path)
        try:
            return cls.from_rows(_rows(path))
        except InputError:
            raise
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"cannot read accounts file {path}: {exc}") from None

    def identify(self, key: str) -> KeyIdentity:
        digest = key_digest(key)
        account = self._accounts.get(digest) or fallback_account_id(digest)
        return KeyIdentity(account_id=account, api_key_id=api_key_id(digest))


def identify(key: str, keymap: KeyMap | None) -> KeyIdentity:
    """The identity of a key, through the accounts table when there is one."""
    return (keymap or _EMPTY).identify(key)


_EMPTY = KeyMap({})


# ---------------------------------------------------------------- log redaction

# Nothing should ever log a key; these patterns are the second line of defence if something does
# (an exception that quotes headers, a library's debug output).
_REDACTIONS = (
    (re.compile(r"(?i)\b(bearer)\s+[^\s,;\"'()\[\]]+"), r"\1 [REDACTED]"),
    (re.compile(r"(?i)\b(x-api-key|api[_-]?key|authorization|access[_-]?token|secret)"
                r"(['\"]?\s*[:=,]\s*(?:(?-i:b)?['\"])?)(?!\[REDACTED\])([^\s\"',;&})\]]+)"), r"\1\2[REDACTED]"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-[REDACTED]"),
)
# HTTP client libraries too: the gateway's own (aiohttp) and any other in the same process.
REDACTED_LOGGERS = ("distillguard.gateway", "uvicorn", "uvicorn.error", "uvicorn.access", "aiohttp.client",
                    "aiohttp.internal", "httpx", "httpcore")


def redact(text: str) -> str:
    """`text` with anything that looks like a credential replaced by [REDACTED]."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _redact_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(redact(a) if isinstance(a, str) else a for a in args)
    if isinstance(args, Mapping):
        return {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}
    return args


class RedactingFilter(logging.Filter):
    """Rewrites log records so that no credential reaches a handler, tracebacks included."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own error reporting
            return True
        redacted = redact(message)
        if redacted != message:
            # Formatters may read the arguments themselves (uvicorn's access formatter unpacks
            # them into client, method, path...): redact them in place and keep their shape, and
            # only when that does not cover the rendered text fall back to a message without them.
            record.args = _redact_args(record.args)
            try:
                covered = record.getMessage() == redacted
            except Exception:
                covered = False
            if not covered:
                record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(names: tuple[str, ...] = REDACTED_LOGGERS) -> None:
    """Adds the redacting filter to each named logger, once. A logger's filters only see records
    logged to that very logger (not its children's), hence the explicit list."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
