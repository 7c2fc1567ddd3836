"""``APIKeyAuth``: the pure-ASGI API-key layer (401/403/429/503, identity, rate limits)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal

from akgate._asgi import (
    DEFAULT_MAX_BODY_SIZE,
    ClientDisconnected,
    read_request_json,
    replay_receive,
    route_path,
    scope_with_body,
    send_json,
)
from akgate._endpoints import (
    ENDPOINTS,
    EndpointSpec,
    Resolution,
    canonical_path,
    gateway_scope,
    not_allowed,
)
from akgate._model_ids import MODEL_SUFFIXES, split_model_suffix
from akgate._options import check_body_size
from akgate._types import ASGIApp, Message, Receive, Scope, Send
from akgate.context import SCOPE_KEY, Identity, RequestContext, request_context
from akgate.errors import GatewayError, send_error

from ._keys import Environment, KeyRecord, parse_key, resolve_pepper
from ._me import me_payload
from ._ratelimit import MemoryRateLimiter, RateLimiter, RateLimitResult, RedisRateLimiter
from ._redisstore import RedisKeyStore
from ._sqlite import SQLiteKeyStore
from ._stores import KEYS_ENV, KeyStore, MemoryKeyStore

__all__ = ["DEFAULT_PATH_SCOPES", "INFERENCE_SCOPES", "APIKeyAuth", "default_store"]

logger = logging.getLogger("akgate.auth")

INVALID_KEY_MESSAGE: Final = "Invalid API key provided."
#: The two cases a caller can tell apart offline, so saying which reveals nothing about the store.
MISSING_KEY_MESSAGE: Final = (
    "No API key provided. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
)
NOT_AKGATE_KEY_MESSAGE: Final = (
    "Invalid API key provided: not an akgate key (akgate keys start with ak_live_ or ak_test_; "
    "check that it was copied whole)."
)
#: Endpoint path -> the scope a restricted key needs there (read from the endpoint table).
DEFAULT_PATH_SCOPES: Final[Mapping[str, str]] = {
    spec.path: spec.scope for spec in ENDPOINTS if spec.scope is not None
}
#: What the ``inference`` scope grants.
INFERENCE_SCOPES: Final = frozenset({"chat", "responses", "messages", "models"})
#: ``model:<strategy>`` shortcuts (docs/compatibility.md, Contract §5), stripped before the
#: model allowlist.
_STRATEGY_SUFFIXES: Final = MODEL_SUFFIXES | {"floor", "nitro", "fast"}  # + legacy ones
_BEARER: Final = b"bearer "
MeExtension = Callable[[Identity], Awaitable[tuple[dict[str, Any], list[tuple[bytes, bytes]]]]]
_WWW_AUTHENTICATE: Final = {"WWW-Authenticate": "Bearer"}
#: Keys remembered parsed and hashed per layer (see ``APIKeyAuth._known``).
_KNOWN_KEYS_MAX: Final = 1024
#: The stores whose ``cached(key_hash)`` answers as their ``lookup`` would, without a coroutine
#: (exactly these classes: a subclass may look up differently).
_CACHING_STORES: Final = frozenset({MemoryKeyStore, SQLiteKeyStore, RedisKeyStore})
_RATE_HEADER_NAMES: Final = frozenset(
    {
        b"x-ratelimit-limit-requests",
        b"x-ratelimit-remaining-requests",
        b"x-ratelimit-reset-requests",
    }
)


def default_store() -> KeyStore:
    """``$AKGATE_API_KEYS`` as a memory store when set, else the SQLite file store.

    A bad ``$AKGATE_API_KEYS`` is a deployment mistake found while the app is being built (often
    at import, under a server): it exits with one line saying which entry is wrong, rather than a
    traceback that buries it.
    """
    if os.environ.get(KEYS_ENV):
        try:
            return MemoryKeyStore.from_env()
        except ValueError as exc:
            raise SystemExit(f"akgate: {exc}") from None
    return SQLiteKeyStore()


def _invalid(message: str = INVALID_KEY_MESSAGE) -> GatewayError:
    return GatewayError("invalid_api_key", message, headers=_WWW_AUTHENTICATE)


def _no_key_sent(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """No credential header, or only empty ones (``Authorization: Bearer`` with nothing)."""
    for name, value in headers:
        if name == b"authorization":
            value = value[7:] if value[:7].lower() == _BEARER else value
        elif name != b"x-api-key":
            continue
        if value.strip() and value.strip().lower() != b"bearer":
            return False
    return True


def _denied(message: str, param: str | None = None) -> GatewayError:
    return GatewayError("insufficient_permissions", message, param)


def _extract_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The presented key, or None when missing, malformed or ambiguous.

    Both ``Authorization: Bearer <key>`` and ``x-api-key: <key>`` are read; several values must
    all carry the same key, so a proxy cannot smuggle a second credential past a first one.
    """
    found: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if value[:7].lower() != _BEARER:
                return None
            token = value[7:].strip()
        elif name == b"x-api-key":
            token = value.strip()
        else:
            continue
        if not token or (found is not None and not hmac.compare_digest(found, token)):
            return None
        found = token
    return found


def _model_allowed(model: str, allowed: tuple[str, ...]) -> bool:
    model = split_model_suffix(model, _STRATEGY_SUFFIXES)[0]
    for entry in allowed:
        if entry == model or (entry.endswith("*") and model.startswith(entry[:-1])):
            return True
    return False


def _requested_models(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(param, model)`` for each model the request names (non-strings are validation's job)."""
    models: list[tuple[str, str]] = []
    if isinstance(payload.get("model"), str):
        models.append(("model", payload["model"]))
    gateway = payload.get("gateway")
    for param, source in (("gateway.models", gateway), ("models", payload)):
        if isinstance(source, Mapping) and isinstance(source.get("models"), list):
            for i, model in enumerate(source["models"]):
                if isinstance(model, str):
                    models.append((f"{param}[{i}]", model))
    return models


class APIKeyAuth:
    """Authenticate ``ak_live_`` / ``ak_test_`` keys on protected paths (default ``/v1/``).

    Sets ``ctx.identity`` (:class:`akgate.Identity`), enforces scopes, model allowlists, the
    test-key policy and per-key rate limits, serves ``GET /v1/me``, and answers every failure with
    the Auriko envelope (a store that cannot answer is a 503, never a 401).

    Options (keyword-only):

    * ``store``: the :class:`~akgate.auth.KeyStore` (default :func:`~akgate.auth.default_store`).
    * ``limiter``: a :class:`~akgate.auth.RateLimiter`; ``"auto"`` (default) shares a
      ``RedisKeyStore``'s client, else counts in memory; ``None``: no rate limits.
    * ``pepper``: the HMAC pepper the keys were created with (default ``$AKGATE_KEY_PEPPER``).
    * ``protected_paths``: more path prefixes of your app that need a key.
    * ``me_endpoint``: serve ``GET /v1/me`` (default ``True``).
    * ``allow_test_keys``: ``False`` refuses ``ak_test_`` keys with a 403.
    * ``default_rpm``: requests per minute for keys without their own limit (``None``: none).
    * ``max_body_size``: request body cap in bytes (413 above it).
    * ``unavailable_retry_after``: ``Retry-After`` seconds on a 503.
    * ``clock``: the epoch clock for expiry (tests inject one).
    * ``me_extension``: adds fields to the ``/v1/me`` answer (the spend layer's budgets).

    See ``docs/auth.md``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: KeyStore | None = None,
        limiter: RateLimiter | Literal["auto"] | None = "auto",
        pepper: str | bytes | None = None,
        protected_paths: Sequence[str] = ("/v1/",),
        me_endpoint: bool = True,
        allow_test_keys: bool = True,
        default_rpm: int | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        unavailable_retry_after: int = 1,
        clock: Callable[[], float] = time.time,
        me_extension: MeExtension | None = None,
    ) -> None:
        self.app = app
        #: Adds fields and headers to ``GET /v1/me`` (the spend layer's budgets).
        self.me_extension = me_extension
        self.store: KeyStore = store if store is not None else default_store()
        if limiter == "auto":
            if isinstance(self.store, RedisKeyStore):
                limiter = RedisRateLimiter(client=self.store.client)
            else:
                limiter = MemoryRateLimiter()
        self.limiter: RateLimiter | None = limiter
        if default_rpm is not None and default_rpm < 1:
            raise ValueError("default_rpm must be >= 1 or None")
        if unavailable_retry_after < 1:
            raise ValueError("unavailable_retry_after must be >= 1")
        for path in protected_paths:
            if not path.startswith("/"):
                raise ValueError(f"paths must start with '/': {path!r}")
        if not protected_paths:
            raise ValueError("protected_paths must not be empty")
        self.protected_paths = tuple(protected_paths)
        self.me_endpoint = me_endpoint
        self.allow_test_keys = allow_test_keys
        self.default_rpm = default_rpm
        self.max_body_size = check_body_size(max_body_size)
        self.unavailable_retry_after = str(unavailable_retry_after)
        self.clock = clock
        resolved = resolve_pepper(pepper)
        self._hash: Callable[[bytes], str]
        if resolved:
            base = hmac.new(resolved, digestmod=hashlib.sha256)

            def peppered(data: bytes) -> str:
                mac = base.copy()
                mac.update(data)
                return mac.hexdigest()

            self._hash = peppered
        else:
            self._hash = lambda data: hashlib.sha256(data).hexdigest()
        #: Keys that named a stored key lately -> ``(key_id, environment, key_hash)``. Parsing
        #: and hashing are pure functions of the key (and of this layer's pepper), so a caller
        #: seen before skips both (~1.5 µs a request); the store is still asked every time, so
        #: revocations and expiry apply as before. Only keys the store knew get in (forged
        #: well-formed keys cannot churn it), oldest out first past ``_KNOWN_KEYS_MAX``. The
        #: raw keys of recent callers stay in memory as they do in each request's headers.
        self._known: dict[bytes, tuple[str, Environment, str]] = {}

    def __repr__(self) -> str:
        return f"APIKeyAuth(store={self.store!r}, limiter={self.limiter!r})"

    def _unavailable(self, ctx: RequestContext, exc: BaseException) -> GatewayError:
        # The exception text of a backend may hold a URL with credentials: log its type only.
        logger.warning(
            "auth backend unavailable (%s); request %s answered 503",
            type(exc).__name__,
            ctx.request_id,
        )
        return GatewayError(
            "service_unavailable",
            "The API key service is temporarily unavailable. Please retry shortly.",
            headers={"Retry-After": self.unavailable_retry_after},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = scope.get(SCOPE_KEY)
        route = ctx.route if type(ctx) is RequestContext else None
        resolution: Resolution | None
        if route is not None and route[0] == scope["path"]:
            # What the two calls below answer when an outer layer resolved this path (inline:
            # two calls less per request).
            resolution = route[1]  # type: ignore[assignment]
        else:
            scope, send, ctx = request_context(scope, send)
            scope, resolution = gateway_scope(scope, ctx)
        assert ctx is not None
        method = scope["method"]
        spec: EndpointSpec | None = None
        if resolution is None:
            # Outside the gateway: an app's own protected prefixes, judged on the path as sent
            # and on its canonical form, so that neither '..' nor '//' steps out of them.
            path = route_path(scope)
            canonical = canonical_path(path) + "/"
            if not path.startswith(self.protected_paths) and not canonical.startswith(
                self.protected_paths
            ):
                # (The gateway's own paths are always protected: resolution is set for them.)
                await self.app(scope, receive, send)
                return
        elif resolution.refused:
            await send_error(send, resolution.error())
            return
        else:
            spec = resolution.spec
        if (spec is not None and spec.public and method in ("GET", "HEAD")) or method == "OPTIONS":
            # Public GETs, and CORS preflights (they carry no credentials; no provider forwards
            # an OPTIONS upstream, see akgate._endpoints).
            await self.app(scope, receive, send)
            return
        record = self._known_record(scope.get("headers", ()))
        if record is None:  # (not a key seen before, with its record cached and valid)
            try:
                record = await self._authenticate(scope, ctx)
            except GatewayError as err:
                await send_error(send, err)
                return
        identity = record.identity()
        ctx.identity = identity

        rpm = record.rate_limit_rpm or self.default_rpm
        rate: RateLimitResult | None = None
        if rpm is not None and self.limiter is not None:
            try:
                rate = await self.limiter.hit(record.key_id, rpm)
            except Exception as exc:
                await send_error(send, self._unavailable(ctx, exc))
                return
            send = _with_rate_headers(send, rate.headers())
            if not rate.allowed:
                retry_after = rate.retry_after(self.clock())
                logger.info("rate limit exceeded for %s", record.key_id)
                await send_error(
                    send,
                    GatewayError(
                        "rate_limit_exceeded",
                        f"Rate limit exceeded: this key allows {rpm} requests per minute "
                        f"(rpm). Retry after {retry_after} seconds.",
                        headers={"Retry-After": str(retry_after)},
                    ),
                )
                return

        if spec is not None and method not in spec.methods:
            await send_error(send, not_allowed(spec))
            return
        if self.me_endpoint and spec is not None and spec.name == "me":
            me = me_payload(identity, rpm)
            me_headers: list[tuple[bytes, bytes]] = []
            if self.me_extension is not None:
                try:
                    extra, me_headers = await self.me_extension(identity)
                except Exception as exc:
                    await send_error(send, self._unavailable(ctx, exc))
                    return
                me.update(extra)
            await send_json(send, 200, me, headers=me_headers)
            return

        try:
            if identity.scopes:  # (a key without scopes may call every endpoint)
                self._check_scope(identity, spec)
            if identity.allowed_models and spec is not None and spec.models and method == "POST":
                payload = await read_request_json(scope, receive, ctx, max_size=self.max_body_size)
                self._check_models(identity, payload)
                body = ctx.body or b""
                receive = replay_receive(body, ctx.raw_receive or receive)
                scope = scope_with_body(scope, body)
        except GatewayError as err:
            await send_error(send, err)
            return
        except ClientDisconnected:
            return
        await self.app(scope, receive, send)

    def _known_record(self, headers: Iterable[tuple[bytes, bytes]]) -> KeyRecord | None:
        """The record of a key seen before when its store has it cached and it passes every
        check of :meth:`_authenticate` (which would return it), else None: most requests, with
        no coroutine for the lookup."""
        store = self.store
        if type(store) not in _CACHING_STORES:
            return None
        raw = _extract_key(headers)
        known = self._known.get(raw) if type(raw) is bytes else None
        if known is None:
            return None
        key_hash = known[2]
        record: KeyRecord | None = store.cached(key_hash)  # type: ignore[attr-defined]
        if (
            record is None
            or record.revoked_at is not None
            or (record.expires_at is not None and self.clock() >= record.expires_at)
            or (known[1] == "test" and not self.allow_test_keys)
            or not hmac.compare_digest(record.key_hash, key_hash)
        ):
            return None
        return record

    async def _authenticate(self, scope: Scope, ctx: RequestContext) -> KeyRecord:
        headers = scope.get("headers", ())
        raw = _extract_key(headers)
        known = self._known.get(raw) if type(raw) is bytes else None
        if known is not None:
            key_id, environment, key_hash = known
        else:
            parsed = parse_key(raw) if raw is not None else None
            if raw is None or parsed is None:
                # Rejected offline: missing, malformed, wrong prefix or bad checksum.
                logger.debug("rejected a missing or malformed API key (request %s)", ctx.request_id)
                if raw is not None:
                    raise _invalid(NOT_AKGATE_KEY_MESSAGE)
                raise _invalid(
                    MISSING_KEY_MESSAGE if _no_key_sent(headers) else INVALID_KEY_MESSAGE
                )
            key_id, environment = parsed
            key_hash = self._hash(raw)
        try:
            record = await self.store.lookup(key_hash)
        except Exception as exc:
            raise self._unavailable(ctx, exc) from None
        if record is None or not hmac.compare_digest(record.key_hash, key_hash):
            logger.info("unknown API key %s (request %s)", key_id, ctx.request_id)
            raise _invalid()
        if known is None and type(raw) is bytes:
            self._remember(raw, (key_id, environment, key_hash))
        if record.revoked:
            logger.info("revoked API key %s (request %s)", key_id, ctx.request_id)
            raise _invalid()
        if record.expired(self.clock()):
            logger.info("expired API key %s (request %s)", key_id, ctx.request_id)
            raise GatewayError(
                "expired_api_key", "The API key has expired.", headers=_WWW_AUTHENTICATE
            )
        if environment == "test" and not self.allow_test_keys:
            raise _denied("Test keys (ak_test_) are not accepted here; use a live key.")
        return record

    def _remember(self, raw: bytes, parsed: tuple[str, Environment, str]) -> None:
        known = self._known
        if len(known) >= _KNOWN_KEYS_MAX:
            del known[next(iter(known))]
        known[raw] = parsed

    def _check_scope(self, identity: Identity, spec: EndpointSpec | None) -> None:
        scopes = identity.scopes
        if not scopes or "*" in scopes:
            return
        # A route no table row names (an app's own) needs "*"; a row without a scope, any key.
        required = "*" if spec is None else spec.scope
        if (
            required is None
            or required in scopes
            or (required in INFERENCE_SCOPES and "inference" in scopes)
        ):
            return
        what = "this endpoint" if required == "*" else f"the '{required}' scope"
        raise _denied(f"This API key does not have permission for {what}.")

    def _check_models(self, identity: Identity, payload: Mapping[str, Any]) -> None:
        for param, model in _requested_models(payload):
            if not _model_allowed(model, identity.allowed_models):
                shown = model if len(model) <= 100 else model[:100] + "..."
                raise _denied(f"This API key is not allowed to use model '{shown}'.", param)


def _with_rate_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            # Ours replace any the inner app set (e.g. copied from an upstream provider).
            headers = [
                h for h in message.get("headers", ()) if h[0].lower() not in _RATE_HEADER_NAMES
            ]
            message = {**message, "headers": [*headers, *extra]}
        await send(message)

    return send_with_headers
