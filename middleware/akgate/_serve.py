"""``akgate serve``: run the gateway on uvicorn, in front of the demo model or a real upstream."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import inspect
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal

import anyio

from akgate._fdlog import install_fd_exhaustion_filter
from akgate._firstrun import KeyChoice, choose_key, print_banner, store_label
from akgate._types import ASGIApp
from akgate.auth import KeyStore, ensure_demo_key, open_key_store

__all__ = [
    "ServeConfig",
    "add_serve_command",
    "build_app",
    "print_banner",
    "serve",
    "upstream_models",
]

_INSTALL_HINT = "akgate serve needs uvicorn: pip install 'akgate[server]'"
#: How the parent hands its resolved ServeConfig to worker processes (they start fresh: spawn).
_WORKER_CONFIG_ENV = "_AKGATE_SERVE_CONFIG"
_LOOPS = ("auto", "asyncio", "uvloop")
_HTTP_IMPLS = ("auto", "h11", "httptools")


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """What ``akgate serve`` runs (the CLI options)."""

    host: str = "127.0.0.1"
    port: int = 8000
    #: An OpenAI-compatible base URL to front instead of the demo model.
    upstream: str | None = None
    upstream_key_env: str = "OPENAI_API_KEY"
    #: Model ids the upstream serves (asked from its ``/models`` when empty).
    models: tuple[str, ...] = ()
    #: Pause between the demo model's streamed tokens.
    token_delay_ms: float = 15.0
    #: The SQLite key store (default ``$AKGATE_HOME/keys.sqlite3``, ``~/.akgate``).
    db: str | None = None
    #: Keys, rate limits and routing stats in Redis instead.
    redis_url: str | None = None
    #: The usage ledger and spend limits (default: ``usage.sqlite3`` beside the key file).
    usage_db: str | None = None
    #: The response store URL (``off``: stateless); default beside the keys (see --help).
    responses_store: str | None = None
    #: The encrypted-reasoning key ring (``serve`` fills it: env, else a kept file).
    reasoning_keys: str | None = None
    #: uvicorn's event loop and HTTP parser; ``auto`` takes uvloop and httptools when installed.
    loop: str = "auto"
    http: str = "auto"
    #: Worker processes sharing the listening socket (each runs its own copy of the stack).
    workers: int = 1
    #: Upstream timeouts in seconds (``UpstreamProvider``'s options; total ``None``: no limit).
    connect_timeout: float = 10.0
    first_byte_timeout: float = 120.0
    idle_timeout: float = 120.0
    total_timeout: float | None = None
    #: Seconds a request has to deliver its body (slow clients get 408 and are disconnected).
    body_timeout: float = 60.0
    #: uvicorn's cap on concurrent connections and tasks (503 past it); None: no cap.
    limit_concurrency: int | None = None
    #: uvicorn's idle keep-alive timeout, in seconds.
    timeout_keep_alive: int = 5
    #: Idle seconds before a ``: keep-alive`` comment on a stream (``None``: no heartbeats).
    sse_heartbeat: float | None = 15.0
    #: Serve the public ``/v1/directory/models`` and ``/v1/registry/*`` endpoints.
    public_directory: bool = True
    # -- operations (akgate.ops): None turns one off ----------------------------------------
    healthz_path: str | None = "/healthz"
    readyz_path: str | None = "/readyz"
    metrics_path: str | None = "/metrics"
    access_log: bool = True
    log_format: Literal["text", "json"] = "text"
    tracing: bool | None = None  # None: when opentelemetry-api is installed


def build_app(config: ServeConfig, *, keys: KeyStore | None = None) -> ASGIApp:
    """The one place that composes the served stack: every akgate layer around the provider.

    ``APIKeyAuth -> RequestValidation -> Routing -> [ResponsesAdapter ->] provider``, where the
    provider is the demo model or an :class:`~akgate.UpstreamProvider` for ``--upstream``.
    """
    from akgate.routing import Catalog
    from akgate.stack import gateway
    from akgate.store._cli import serve_reasoning_keys, serve_store_url
    from akgate.usage._cli import usage_db_beside

    store = keys if keys is not None else open_key_store(config.db, config.redis_url)
    usage_db: str | os.PathLike[str] = config.usage_db or usage_db_beside(config.db)
    responses = serve_store_url(config.responses_store, db=config.db, redis=config.redis_url)
    # The encrypted-reasoning ring: the one serve() prepared, else made (and kept beside the
    # stores) when a request first needs it.
    ring = config.reasoning_keys or partial(serve_reasoning_keys, config.db)
    stateful = {"reasoning_keys": ring} if responses else None
    if config.upstream:
        from akgate.providers._upstream import UpstreamProvider

        # A missing key is fine for local servers (vLLM, Ollama): forward without one.
        api_key = os.environ.get(config.upstream_key_env) or None
        models = config.models or upstream_models(config.upstream, api_key)
        return gateway(
            # Only requests that passed auth carry the operator's key upstream.
            UpstreamProvider(
                config.upstream,
                api_key=api_key,
                require_identity=True,
                connect_timeout=config.connect_timeout,
                first_byte_timeout=config.first_byte_timeout,
                idle_timeout=config.idle_timeout,
                total_timeout=config.total_timeout,
            ),
            keys=store,
            body_timeout=config.body_timeout,
            redis_url=config.redis_url,
            models=models,
            demo=False,
            app_provider="upstream",
            usage_db=usage_db,
            response_store=responses,
            response_store_options=stateful,
            hosted_tools="lenient",  # agents (Codex) send hosted tools a chat upstream cannot run
            inline_files=True,  # files sent inline; the catalog says which models read them
            sse_heartbeat=config.sse_heartbeat,
            routing_options={"public_endpoints": config.public_directory},
        )
    from akgate.providers._demo import DemoModel

    # The demo model is the wrapped app, registered as the demo catalog's provider.
    return gateway(
        DemoModel(token_delay=config.token_delay_ms / 1000),
        keys=store,
        body_timeout=config.body_timeout,
        redis_url=config.redis_url,
        catalog=Catalog.demo(),
        app_provider="demo",
        usage_db=usage_db,
        response_store=responses,
        response_store_options=stateful,
        hosted_tools="lenient",  # agents (Codex) send hosted tools the demo cannot run
        inline_files=True,  # the demo reads files sent inline (name, type, size, PDF text)
        sse_heartbeat=config.sse_heartbeat,
        routing_options={"public_endpoints": config.public_directory},
    )


def upstream_models(base_url: str, api_key: str | None) -> tuple[str, ...]:
    """The model ids an OpenAI-compatible server lists at ``{base_url}/models``."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    shown = _without_credentials(base_url)
    try:
        response = httpx.get(base_url.rstrip("/") + "/models", headers=headers, timeout=10)
        response.raise_for_status()
        ids = tuple(str(entry["id"]) for entry in response.json().get("data", []) if "id" in entry)
    except httpx.TransportError as exc:
        # Down, unreachable or too slow: saying so beats sending the user to --model.
        raise ValueError(
            f"cannot connect to {shown} ({type(exc).__name__}): is the upstream running? "
            "(with --model NAME akgate starts without asking it)"
        ) from None
    except httpx.HTTPStatusError as exc:
        raise ValueError(
            f"{shown}/models answered {exc.response.status_code}; check the upstream key "
            "(--upstream-key-env) or name the models with --model NAME"
        ) from None
    except (httpx.HTTPError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"could not read the model list of {shown} ({type(exc).__name__}); "
            "name them with --model NAME"
        ) from None
    if not ids:
        raise ValueError("the upstream lists no models; name them with --model NAME")
    return ids


def _without_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part and query string, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def base_url_for(host: str, port: int) -> str:
    """The URL clients use (``/v1`` included); wildcard hosts are shown as loopback."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/v1"


def serve(config: ServeConfig) -> int:
    """Run uvicorn until SIGINT/SIGTERM; returns the process exit code."""
    try:
        import uvicorn
    except ImportError:
        print(_INSTALL_HINT, file=sys.stderr)
        return 1
    if config.workers < 1:
        print("akgate serve: --workers must be >= 1", file=sys.stderr)
        return 2
    from akgate.usage._workers import per_worker_limits_warning

    if warning := per_worker_limits_warning(config.workers, config.redis_url):
        print(warning, file=sys.stderr)
    # Bind first: a port in use must fail before a demo key is created that nobody would see.
    try:
        sock = _bind(config.host, config.port)
    except OSError as exc:
        print(
            f"akgate serve: cannot listen on {config.host}:{config.port} ({exc.strerror or exc}); "
            "choose another port with --port N (--port 0 picks a free one)",
            file=sys.stderr,
        )
        return 1
    port = sock.getsockname()[1]
    try:
        from akgate.store._cli import serve_reasoning_keys, serve_store_url

        if serve_store_url(config.responses_store, db=config.db, redis=config.redis_url):
            config = replace(config, reasoning_keys=serve_reasoning_keys(config.db))
        if config.workers > 1:
            # Resolved once here, so that a bad --upstream fails before any worker starts.
            if config.upstream and not config.models:
                upstream_key = os.environ.get(config.upstream_key_env) or None
                config = dataclasses.replace(
                    config, models=upstream_models(config.upstream, upstream_key)
                )
            app: ASGIApp | None = None
        else:
            # The served store is opened by build_app: connections made in the start-up loop
            # below would be bound to it (a pooled Redis connection failed the first request,
            # "Event loop is closed", with a 503).
            app = build_app(config)
        # Created once everything else worked, before the server starts, so that only this
        # process can create it and the banner below always shows it.
        choice, shown_store, store_option = anyio.run(_first_key, config)
    except ValueError as exc:
        sock.close()
        print(f"akgate serve: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the key store is unreachable: say which, without secrets
        sock.close()
        print(f"akgate serve: key store unavailable ({type(exc).__name__})", file=sys.stderr)
        return 1
    if app is None:
        return _serve_workers(config, sock, choice, shown_store, store_option)
    app = _with_operations(app, config)

    class BannerServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # printed once the socket accepts, so the URL works right away
                print_banner(
                    base_url_for(config.host, port),
                    choice,
                    store=shown_store,
                    store_option=store_option,
                    upstream=config.upstream,
                    model=config.models[0] if config.models else "demo",
                )

    # Everything built so far (modules, catalog, validators) lives as long as the process: keep
    # it out of the collector's full passes. Measured over uvicorn at c=32: p99 24 -> 10 ms for
    # the bare demo, 29 -> 15 ms for the full stack; throughput unchanged.
    gc.collect()
    gc.freeze()
    install_fd_exhaustion_filter()
    server = BannerServer(uvicorn.Config(app, **_uvicorn_options(config)))
    with sock, _no_signal_reraise():
        server.run(sockets=[sock])
    return 0


async def _first_key(config: ServeConfig) -> tuple[KeyChoice, str, str]:
    """A demo key on a fresh store, else the key this terminal knows (``$AKGATE_KEY``); and how
    the banner names the store. The store is closed again (the served one is built afresh)."""
    store = open_key_store(config.db, config.redis_url)
    try:
        choice = await choose_key(store, await ensure_demo_key(store))
        return (choice, *store_label(store, config.db, config.redis_url))
    finally:
        await store.aclose()


def _uvicorn_options(config: ServeConfig) -> dict[str, Any]:
    return {
        "log_level": "info",
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
        "limit_concurrency": config.limit_concurrency,
        "timeout_keep_alive": config.timeout_keep_alive,
        "loop": config.loop,
        "http": _http_protocol(config.http),
        "access_log": not config.access_log,  # akgate's structured line replaces uvicorn's
    }


def _http_protocol(http: str) -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol sending each response's head and body in one system call;
    uvicorn's own choice when httptools is not installed (or ``--http h11``)."""
    if http not in ("auto", "httptools"):
        return http
    try:
        from akgate._serve_protocol import CoalescingHttpToolsProtocol
    except ImportError:
        return http
    return CoalescingHttpToolsProtocol


def _serve_workers(
    config: ServeConfig,
    sock: socket.socket,
    choice: KeyChoice,
    shown_store: str,
    store_option: str,
) -> int:
    """Run ``config.workers`` uvicorn processes on one listening socket, supervised by uvicorn.

    Each worker builds its own stack (its own key store connection and upstream pool). Keys in
    SQLite are shared by the workers of one host (the usage ledger too); rate limits, budget and
    token counters and routing stats are shared only through ``--redis``. Metrics are summed over
    the workers through prometheus-client's multi-process mode (a temporary
    ``PROMETHEUS_MULTIPROC_DIR`` unless one is set).
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    metrics_dir = None
    if config.metrics_path is not None and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="akgate-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # inherited by the workers
    os.environ[_WORKER_CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
    uv_config = uvicorn.Config(
        f"{__name__}:_worker_app", factory=True, workers=config.workers, **_uvicorn_options(config)
    )
    # Connections queue in the backlog until a worker takes them, so the URL works right away.
    sock.listen(uv_config.backlog)
    print_banner(
        base_url_for(config.host, sock.getsockname()[1]),
        choice,
        store=shown_store,
        store_option=store_option,
        upstream=config.upstream,
        model=config.models[0] if config.models else "demo",
    )
    # uvicorn < 0.52 takes the worker's entry point as ``target``; later versions build it.
    takes_target = "target" in inspect.signature(Multiprocess).parameters
    extra = {"target": uvicorn.Server(uv_config).run} if takes_target else {}
    try:
        with sock, _no_signal_reraise():
            Multiprocess(uv_config, sockets=[sock], **extra).run()
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _worker_app() -> ASGIApp:
    """The app of one ``--workers`` process, built from the parent's resolved config."""
    fields = json.loads(os.environ[_WORKER_CONFIG_ENV])
    fields["models"] = tuple(fields["models"])
    config = ServeConfig(**fields)
    app = _with_operations(build_app(config), config)
    install_fd_exhaustion_filter()
    gc.collect()
    gc.freeze()  # as in the single-process server: long-lived objects out of full passes
    return app


def _with_operations(app: ASGIApp, config: ServeConfig) -> ASGIApp:
    """Health, metrics, traces and the access log around the stack (``akgate.ops``)."""
    from akgate.ops._stack import configure_logging, operations

    configure_logging(config.log_format)
    metrics_path = config.metrics_path
    if metrics_path is not None:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            print(
                "akgate serve: /metrics is off: pip install 'akgate[metrics]' to expose it",
                file=sys.stderr,
            )
            metrics_path = None
    return operations(
        app,
        healthz_path=config.healthz_path,
        readyz_path=config.readyz_path,
        metrics_path=metrics_path,
        access_log=config.access_log,
        log_format=config.log_format,
        tracing=config.tracing,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets whose protocol says
    # TCP. Without it Nagle holds each response's second write until the client's delayed ACK,
    # ~40 ms per keep-alive request. TCP_NODELAY on the listener is inherited by accepted
    # sockets on Linux too, for event loops that do not set it themselves.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


@contextmanager
def _no_signal_reraise() -> Iterator[None]:
    """Make SIGINT/SIGTERM a clean exit (status 0).

    uvicorn handles the signal, shuts down gracefully, then re-raises it to the handler that was
    installed before it started; a no-op handler there turns that into a normal return.
    """
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_command(args: argparse.Namespace) -> int:
    config = ServeConfig(
        host=args.host,
        port=args.port,
        upstream=args.upstream,
        upstream_key_env=args.upstream_key_env,
        models=tuple(args.model or ()),
        token_delay_ms=args.token_delay_ms,
        db=args.db,
        redis_url=args.redis,
        usage_db=args.usage_db,
        responses_store=args.responses_store,
        loop=args.loop,
        http=args.http,
        workers=args.workers,
        connect_timeout=args.connect_timeout,
        first_byte_timeout=args.first_byte_timeout,
        idle_timeout=args.idle_timeout,
        total_timeout=args.total_timeout,
        body_timeout=args.body_timeout,
        limit_concurrency=args.limit_concurrency,
        timeout_keep_alive=args.timeout_keep_alive,
        sse_heartbeat=args.sse_heartbeat or None,
        public_directory=not args.no_public_directory,
        healthz_path=None if args.no_health else args.healthz_path,
        readyz_path=None if args.no_health else args.readyz_path,
        metrics_path=None if args.no_metrics else args.metrics_path,
        access_log=not args.no_access_log,
        log_format=args.log_format,
        tracing=False if args.no_tracing else None,
    )
    return serve(config)


def add_serve_command(subparsers: Any) -> None:
    """Register ``akgate serve`` on the CLI's sub-parsers."""
    parser = subparsers.add_parser(
        "serve",
        help="run the gateway on uvicorn (demo model by default)",
        description="Serve the akgate stack on uvicorn: the embedded demo model, or --upstream.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any)")
    parser.add_argument(
        "--upstream",
        metavar="URL",
        help="front this OpenAI-compatible base URL (e.g. https://api.openai.com/v1)",
    )
    parser.add_argument(
        "--upstream-key-env",
        metavar="NAME",
        default="OPENAI_API_KEY",
        help="env var holding the upstream API key (default: OPENAI_API_KEY)",
    )
    parser.add_argument(
        "--model",
        action="append",
        metavar="NAME",
        help="a model id the upstream serves (repeatable; default: ask its /models)",
    )
    for flag, default, meaning in (
        ("--connect-timeout", 10.0, "connecting to the upstream (TCP and TLS)"),
        ("--first-byte-timeout", 120.0, "request sent -> the upstream's response headers"),
        ("--idle-timeout", 120.0, "between two chunks of the upstream's body"),
        ("--total-timeout", None, "the whole upstream exchange, stream included"),
    ):
        parser.add_argument(
            flag,
            type=float,
            default=default,
            metavar="S",
            help=f"{meaning} (default: {default if default is not None else 'no limit'})",
        )
    parser.add_argument("--db", metavar="PATH", help="SQLite key store (default ~/.akgate)")
    parser.add_argument("--redis", metavar="URL", help="keys, limits and stats in Redis")
    parser.add_argument(
        "--usage-db", metavar="PATH", help="usage ledger and budgets (default: beside --db)"
    )
    parser.add_argument(
        "--responses-store",
        metavar="URL",
        help="stored responses: sqlite:///path, redis://..., memory:// or off "
        "(default: responses.sqlite3 beside the key store, or --redis)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes on one socket (default: 1; share limits and stats with --redis)",
    )
    parser.add_argument(
        "--loop",
        choices=_LOOPS,
        default="auto",
        help="event loop (default: auto = uvloop when installed)",
    )
    parser.add_argument(
        "--http",
        choices=_HTTP_IMPLS,
        default="auto",
        help="HTTP/1.1 parser (default: auto = httptools when installed)",
    )
    parser.add_argument(
        "--token-delay-ms",
        type=float,
        default=15.0,
        metavar="MS",
        help="pause between the demo model's streamed tokens (default: 15)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds a request has to send its whole body; then 408 (default: 60)",
    )
    parser.add_argument(
        "--limit-concurrency",
        type=int,
        metavar="N",
        help="at most N connections at once; more get 503 (default: no cap)",
    )
    parser.add_argument(
        "--timeout-keep-alive",
        type=int,
        default=5,
        metavar="S",
        help="close idle keep-alive connections after S seconds (default: 5)",
    )
    parser.add_argument(
        "--sse-heartbeat",
        type=_non_negative_seconds,
        default=15.0,
        metavar="SECONDS",
        help="send ': keep-alive' on a stream idle this long (default: 15; 0: never)",
    )
    parser.add_argument(
        "--no-public-directory",
        action="store_true",
        help="do not serve the keyless /v1/directory/models and /v1/registry/* endpoints",
    )
    _add_operations_options(parser)
    parser.set_defaults(handler=_run_command)


def _add_operations_options(parser: argparse.ArgumentParser) -> None:
    ops = parser.add_argument_group("operations (health, metrics, logs, traces)")
    ops.add_argument("--healthz-path", default="/healthz", metavar="PATH", help="(/healthz)")
    ops.add_argument("--readyz-path", default="/readyz", metavar="PATH", help="(/readyz)")
    ops.add_argument("--no-health", action="store_true", help="serve neither health path")
    ops.add_argument("--metrics-path", default="/metrics", metavar="PATH", help="(/metrics)")
    ops.add_argument("--no-metrics", action="store_true", help="no Prometheus exposition")
    ops.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="access log format"
    )
    ops.add_argument("--no-access-log", action="store_true", help="uvicorn's access line instead")
    ops.add_argument("--no-tracing", action="store_true", help="no OpenTelemetry spans")


def _non_negative_seconds(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError("must be a finite number of seconds >= 0")
    return value
