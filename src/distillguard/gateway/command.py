"""`distillguard gateway` (CONTRACT section 4) and `distillguard standin`, the stand-in model API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distillguard.errors import InputError
from distillguard.gateway import DEFAULT_MAX_HEADER_BYTES

DEFAULT_MAX_CONCURRENCY = 256


def _serve(app: object, host: str, port: int, log_level: str, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
           max_concurrency: int | None = None) -> None:
    import uvicorn

    from distillguard.gateway.keys import install_log_redaction
    from distillguard.gateway.server import uvicorn_config

    config = uvicorn_config(app, host, port, log_level=log_level, max_header_bytes=max_header_bytes,
                            max_concurrency=max_concurrency)
    # uvicorn configures its loggers when the Config is built: redaction goes on after that.
    install_log_redaction()
    uvicorn.Server(config).run()


def gateway_command(
    upstream: Annotated[str, typer.Option("--upstream", help="Base URL of the model API to protect, e.g. https://api.openai.com.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy file (YAML); the built-in policy when omitted.")] = None,
    accounts: Annotated[
        Path | None,
        typer.Option("--accounts", help="Accounts table (JSONL, CSV or Parquet); its api_key_sha256 column maps keys to accounts."),
    ] = None,
    releases: Annotated[
        Path | None, typer.Option("--releases", help="Model releases table (JSONL or Parquet), for the new-model pivot.")
    ] = None,
    links: Annotated[
        Path | None,
        typer.Option("--links", help="Cluster snapshot folder written by `analyze --out DIR` (DIR/links); "
                                     "reloaded when rewritten."),
    ] = None,
    attach: Annotated[
        bool,
        typer.Option("--attach/--no-attach", help="Attach new accounts that reuse a high-risk cluster's "
                                                  "distinctive content or infrastructure to it (needs --links)."),
    ] = False,
    redis: Annotated[
        str | None, typer.Option("--redis", help="Redis URL for state shared by several gateway replicas, e.g. redis://host:6379/0.")
    ] = None,
    audit: Annotated[Path | None, typer.Option("--audit", help="Append one JSON line per request to this file.")] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option("--trusted-proxy", help="CIDR of a proxy whose X-Forwarded-For is believed (repeatable)."),
    ] = None,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="Largest request body accepted (413 above).")] = 1 << 20,
    max_header_bytes: Annotated[
        int,
        typer.Option("--max-header-bytes", help="Largest request head (line and headers) accepted "
                                                "(400 above)."),
    ] = DEFAULT_MAX_HEADER_BYTES,
    upstream_timeout: Annotated[
        float, typer.Option("--upstream-timeout", help="Seconds the upstream may stay silent before a 504.")
    ] = 600.0,
    max_concurrency: Annotated[
        int, typer.Option("--max-concurrency", help="Open requests (including those waiting on the upstream) "
                                                    "above which new ones get 503.")
    ] = DEFAULT_MAX_CONCURRENCY,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the online gateway: a proxy in front of an OpenAI- or Anthropic-compatible API that
    throttles, degrades or blocks distillation campaigns as they run."""
    # Imported here so that `distillguard --help` does not pay for the web stack and the detector.
    from distillguard.gateway.app import GatewayConfig, create_app
    from distillguard.gateway.keys import KeyMap

    try:
        from distillguard.engines.online import OnlineDetector
    except ImportError as exc:
        raise InputError(f"the online detector is not available: {exc}") from None
    if max_body_bytes < 1 or max_header_bytes < 1024:
        raise InputError("--max-body-bytes must be positive and --max-header-bytes at least 1024")
    config = GatewayConfig(
        upstream=upstream,
        max_body_bytes=max_body_bytes,
        trusted_proxies=tuple(trusted_proxy or ()),
        audit_path=audit,
        keymap=KeyMap.load(accounts) if accounts is not None else None,
        upstream_timeout=upstream_timeout,
    )
    if attach and links is None:
        raise InputError("--attach needs --links: new accounts are attached to the clusters of a snapshot")
    detector = OnlineDetector.create(policy=policy, accounts=accounts, releases=releases, redis_url=redis,
                                     links=links, attach=attach)
    if max_concurrency < 1:
        raise InputError("--max-concurrency must be positive")
    _serve(create_app(config, detector), host, port, log_level, max_header_bytes, max_concurrency)


def standin_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8081,
    latency_ms: Annotated[float, typer.Option("--latency-ms", help="Fixed delay before every answer.")] = 0.0,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "warning",
) -> None:
    """Run a stand-in model API (OpenAI chat completions and Anthropic messages, streaming too) with
    predictable answers, for demos, tests and gateway benchmarks."""
    from distillguard.gateway.standin import create_standin_app

    if latency_ms < 0:
        raise InputError("--latency-ms must not be negative")
    _serve(create_standin_app(latency_ms), host, port, log_level)
