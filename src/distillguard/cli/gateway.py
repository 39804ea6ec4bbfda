"""`distillguard gateway` (CONTRACT section 4) and `distillguard standin`, the stand-in model API."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from distillguard.cli.analyze import FprBudgetOption, SegmentBudgetOption
from distillguard.engines.state import DEFAULT_MAX_ACCOUNTS, DEFAULT_PROBATION_ACCOUNTS, DEFAULT_REDIS_TIMEOUT
from distillguard.errors import InputError
from distillguard.gateway import DEFAULT_MAX_HEADER_BYTES
from distillguard.gateway.translate import DEFAULT_MAX_MESSAGES, DEFAULT_MAX_PARTS
from distillguard.scoring import DEFAULT_FPR_BUDGET, DEFAULT_SEGMENT_FPR_BUDGET

DEFAULT_MAX_CONCURRENCY = 256


# Options of `gateway`, handed to each worker process when there are several (JSON, never pickle).
WORKER_OPTIONS_ENV = "DISTILLGUARD_GATEWAY_OPTIONS"


def _serve(app: object, host: str, port: int, log_level: str, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
           max_concurrency: int | None = None, workers: int = 1, limits: Any = None,
           admin: tuple[str, int] | None = None) -> None:
    import uvicorn

    from distillguard.gateway.keys import install_log_redaction
    from distillguard.gateway.server import uvicorn_config

    options: dict[str, Any] = {"log_level": log_level, "max_header_bytes": max_header_bytes,
                               "max_concurrency": max_concurrency}
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        # One listening socket shared by worker processes; each builds its own gateway from
        # WORKER_OPTIONS_ENV (and installs log redaction as it does). The Config, limits included,
        # is handed to each worker as is (uvicorn.run would build one without them).
        config = uvicorn_config(app, host, port, limits=limits, workers=workers, factory=True, **options)
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    config = uvicorn_config(app, host, port, limits=limits, **options)
    if admin is None:
        # uvicorn configures its loggers when the Config is built: redaction goes on after that.
        install_log_redaction()
        uvicorn.Server(config).run()
        return
    import asyncio

    from distillguard.gateway.app import create_admin_app

    admin_config = uvicorn_config(create_admin_app(app), admin[0], admin[1], lifespan="off",  # type: ignore[arg-type]
                                  log_level=log_level, max_header_bytes=max_header_bytes)
    install_log_redaction()
    api_server, admin_server = uvicorn.Server(config), uvicorn.Server(admin_config)

    async def both() -> None:
        # The API server is started last so that it is the one that receives SIGINT/SIGTERM
        # (uvicorn installs one handler per process); the admin server follows it down.
        admin_task = asyncio.create_task(admin_server.serve())
        try:
            await api_server.serve()
        finally:
            admin_server.should_exit = True
            await admin_task

    asyncio.run(both())


def _gateway_app(options: dict[str, Any]) -> Any:
    """The gateway app from the command's options (plain JSON types, so workers can rebuild it)."""
    from distillguard.gateway.app import GatewayConfig, create_app
    from distillguard.gateway.keys import KeyMap

    try:
        from distillguard.engines.online import OnlineDetector
    except ImportError as exc:
        raise InputError(f"the online detector is not available: {exc}") from None
    path = {key: Path(value) if value is not None else None
            for key, value in options.items() if key in ("policy", "accounts", "releases", "links", "audit")}
    config = GatewayConfig(
        upstream=options["upstream"],
        max_body_bytes=options["max_body_bytes"],
        trusted_proxies=tuple(options["trusted_proxy"]),
        audit_path=path["audit"],
        keymap=KeyMap.load(path["accounts"]) if path["accounts"] is not None else None,
        upstream_timeout=options["upstream_timeout"],
        body_timeout=options.get("body_timeout", 30.0),
        max_messages=options.get("max_messages", DEFAULT_MAX_MESSAGES),
        max_parts=options.get("max_parts", DEFAULT_MAX_PARTS),
        admin_separate=options.get("admin_separate", False),
    )
    detector = OnlineDetector.create(policy=path["policy"], accounts=path["accounts"], releases=path["releases"],
                                     redis_url=options["redis"], links=path["links"], attach=options["attach"],
                                     fpr_budget=options["fpr_budget"],
                                     segment_fpr_budget=options["segment_fpr_budget"],
                                     redis_timeout=options.get("redis_timeout", DEFAULT_REDIS_TIMEOUT),
                                     max_accounts=options.get("max_accounts", DEFAULT_MAX_ACCOUNTS),
                                     probation_accounts=options.get("probation_accounts", DEFAULT_PROBATION_ACCOUNTS))
    return create_app(config, detector)


def worker_app() -> Any:
    """uvicorn's app factory in each worker process of `gateway --workers N`."""
    return _gateway_app(json.loads(os.environ[WORKER_OPTIONS_ENV]))


def gateway_command(
    upstream: Annotated[str, typer.Option("--upstream", help="Base URL of the model API to protect, e.g. https://api.openai.com.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy file (YAML); the built-in policy when omitted.")] = None,
    accounts: Annotated[
        Path | None,
        typer.Option("--accounts", help="Accounts table (JSONL or Parquet, as for analyze); its api_key_sha256 column maps keys to accounts."),
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
        bool | None,
        typer.Option("--attach/--no-attach", help="Attach new accounts that reuse a high-risk cluster's "
                                                  "distinctive infrastructure to it (default: on with --links)."),
    ] = None,
    redis: Annotated[
        str | None, typer.Option("--redis", help="Redis URL for state shared by several gateway replicas, e.g. redis://host:6379/0.")
    ] = None,
    redis_timeout: Annotated[
        float, typer.Option("--redis-timeout", help="Seconds to wait on Redis per command before the policy's "
                                                    "on_state_unavailable applies.")
    ] = DEFAULT_REDIS_TIMEOUT,
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
    head_timeout: Annotated[
        float, typer.Option("--head-timeout", help="Seconds a connection has to send a complete request head "
                                                   "(408 and closed after).")
    ] = 10.0,
    body_timeout: Annotated[
        float, typer.Option("--body-timeout", help="Seconds a request has to send its whole body (408 after).")
    ] = 30.0,
    max_connections_per_ip: Annotated[
        int, typer.Option("--max-connections-per-ip", help="Open connections allowed from one client address "
                                                           "(--trusted-proxy addresses exempt); 0 for no cap.")
    ] = 64,
    max_messages: Annotated[
        int, typer.Option("--max-messages", help="Messages per request (400 above).")
    ] = DEFAULT_MAX_MESSAGES,
    max_parts: Annotated[
        int, typer.Option("--max-parts", help="Content parts per request, all messages together (400 above).")
    ] = DEFAULT_MAX_PARTS,
    max_accounts: Annotated[
        int, typer.Option("--max-accounts", help="Confirmed accounts whose state is kept (least recently "
                                                 "updated evicted first), in memory or in Redis.")
    ] = DEFAULT_MAX_ACCOUNTS,
    probation_accounts: Annotated[
        int, typer.Option("--probation-accounts", help="Accounts not yet confirmed by an accepted request "
                                                       "whose state is kept apart (least recently updated "
                                                       "evicted first).")
    ] = DEFAULT_PROBATION_ACCOUNTS,
    admin_port: Annotated[
        int | None, typer.Option("--admin-port", help="Serve /healthz and /metrics on this port only (not on "
                                                      "--port), for probes and scrapers.")
    ] = None,
    admin_host: Annotated[str, typer.Option("--admin-host", help="Address of the admin port.")] = "127.0.0.1",
    workers: Annotated[
        int, typer.Option("--workers", help="Worker processes sharing the port (above 1 needs --redis); "
                                            "about one per core.")
    ] = 1,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
    fpr_budget: FprBudgetOption = DEFAULT_FPR_BUDGET,
    segment_fpr_budget: SegmentBudgetOption = DEFAULT_SEGMENT_FPR_BUDGET,
) -> None:
    """Run the online gateway: a proxy in front of an OpenAI- or Anthropic-compatible API that
    throttles, degrades or blocks distillation campaigns as they run."""
    if max_body_bytes < 1 or max_header_bytes < 1024:
        raise InputError("--max-body-bytes must be positive and --max-header-bytes at least 1024")
    if attach and links is None:
        raise InputError("--attach needs --links: new accounts are attached to the clusters of a snapshot")
    attach = links is not None if attach is None else attach
    if max_concurrency < 1:
        raise InputError("--max-concurrency must be positive")
    if workers < 1:
        raise InputError("--workers must be at least 1")
    if admin_port is not None and workers > 1:
        raise InputError("--admin-port needs --workers 1: each worker process would need an admin port of its own")
    if admin_port is not None and admin_host == host and admin_port == port:
        raise InputError("--admin-port must differ from --port")
    if min(max_messages, max_parts, max_accounts, probation_accounts) < 1:
        raise InputError("--max-messages, --max-parts, --max-accounts and --probation-accounts must be positive")
    if not 0 < redis_timeout <= 60:
        raise InputError("--redis-timeout must be in (0, 60] seconds")
    if head_timeout <= 0 or body_timeout <= 0 or max_connections_per_ip < 0:
        raise InputError("--head-timeout and --body-timeout must be positive, --max-connections-per-ip not negative")
    if workers > 1 and redis is None:
        raise InputError("--workers above 1 needs --redis: the worker processes must share account state, "
                         "or each would see only part of every account's traffic")
    options = {
        "upstream": upstream, "max_body_bytes": max_body_bytes, "trusted_proxy": list(trusted_proxy or ()),
        "upstream_timeout": upstream_timeout, "body_timeout": body_timeout, "redis": redis,
        "redis_timeout": redis_timeout, "attach": attach, "max_messages": max_messages, "max_parts": max_parts,
        "max_accounts": max_accounts, "probation_accounts": probation_accounts,
        "admin_separate": admin_port is not None,
        "fpr_budget": fpr_budget, "segment_fpr_budget": segment_fpr_budget,
        **{key: str(value) if value is not None else None
           for key, value in (("policy", policy), ("accounts", accounts), ("releases", releases), ("links", links),
                              ("audit", audit))},
    }
    # Built here even with several workers: bad options and files fail once, with one line, at start.
    app = _gateway_app(options)
    if workers > 1:
        os.environ[WORKER_OPTIONS_ENV] = json.dumps(options)
        app = "distillguard.cli.gateway:worker_app"
    from distillguard.gateway.server import ConnectionLimits

    limits = ConnectionLimits(head_timeout=head_timeout, max_connections_per_ip=max_connections_per_ip or None,
                              exempt_networks=tuple(trusted_proxy or ()))
    _serve(app, host, port, log_level, max_header_bytes, max_concurrency, workers, limits,
           admin=(admin_host, admin_port) if admin_port is not None else None)


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
