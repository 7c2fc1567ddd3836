"""``SpendControl``: budgets and token limits at admission, one ledger record per request."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import anyio
from pydantic_core import from_json

from akgate._asgi import (
    DEFAULT_MAX_BODY_SIZE,
    ClientDisconnected,
    read_request_json,
    replay_receive,
    scope_with_body,
)
from akgate._endpoints import Resolution, gateway_scope
from akgate._options import check_body_size
from akgate._types import ASGIApp, Message, Receive, Scope, Send
from akgate.auth._keys import iso_timestamp
from akgate.context import SCOPE_KEY, Endpoint, Identity, RequestContext, request_context
from akgate.errors import GatewayError, send_error
from akgate.routing import Catalog

from ._counters import (
    USD_UNITS,
    Admission,
    MemorySpendCounters,
    Slot,
    SpendCounters,
    to_units,
)
from ._estimate import (
    Price,
    StreamTally,
    estimate_tokens,
    max_output_tokens,
    price_of,
    requested_model,
    text_chars,
)
from ._ledger import UsageLedger, record_row
from ._limits import Limits, LimitScope, LimitStore
from ._periods import PERIODS, Period, period_window
from ._record import UsageRecord

__all__ = ["SpendControl", "format_usd"]

logger = logging.getLogger("akgate.usage")

#: Endpoint-table rows that are inference requests: what the layer limits and records.
_BILLED: Final = frozenset({"chat_completions", "responses", "messages"})
_TPM_WINDOW: Final = 60.0
_MAX_PLANS: Final = 4096
#: Slot lists kept per plan (one per distinct estimate; requests of one client repeat them).
_MAX_SLOT_SETS: Final = 64
_ERROR_BODY_CAP: Final = 65536
_OWN_HEADER_PREFIXES: Final = (
    b"x-budget-",
    b"x-ratelimit-limit-tokens",
    b"x-ratelimit-remaining-tokens",
    b"x-ratelimit-reset-tokens",
)
_BUDGET_HEADERS: Final = {
    period: (f"x-budget-{period}-limit".encode(), f"x-budget-{period}-spend".encode())
    for period in PERIODS
}


@lru_cache(maxsize=256)
def _reset_header(reset: float) -> bytes:
    return (iso_timestamp(reset) or "").encode()


@lru_cache(maxsize=1024)
def format_usd(units: int) -> str:
    """Counter units as a USD string with at least two decimals (``"5.00"``, ``"0.0012"``)."""
    whole, frac = divmod(max(0, units), USD_UNITS)
    return f"{whole}.{f'{frac:010d}'.rstrip('0').ljust(2, '0')}"


def _usd_bytes(units: int) -> bytes:
    """:func:`format_usd` as header bytes, uncached (a spend changes with every request)."""
    whole, frac = divmod(units if units > 0 else 0, USD_UNITS)
    decimals = (b"%010d" % frac).rstrip(b"0")
    return b"%d.%s" % (whole, decimals if len(decimals) >= 2 else decimals.ljust(2, b"0"))


@dataclass(frozen=True, slots=True)
class _Check:
    """One counter of a key's plan: a budget period of a scope, or the key's tpm minute. The
    same for every request of the key in that minute (only the reserved amount differs, in the
    request's :class:`Slot`), so it is built once with its header values."""

    scope: LimitScope
    period: Period | None  # None: the tpm minute
    key: str
    limit: int
    enforce: bool
    reset: float
    #: Whether this row gives its period's ``X-Budget-<Period>-*`` headers (the key's budget of
    #: a period, else the workspace's) or, for tpm, the token headers.
    show: bool = True
    limit_header: tuple[bytes, bytes] = (b"", b"")
    spend_name: bytes = b""
    reset_text: bytes = b""


def _check(
    scope: LimitScope,
    period: Period | None,
    key: str,
    limit: int,
    enforce: bool,
    reset: float,
    show: bool,
) -> _Check:
    if period is None:
        return _Check(
            scope,
            period,
            key,
            limit,
            enforce,
            reset,
            show,
            (b"x-ratelimit-limit-tokens", str(limit).encode()),
            b"",
            _reset_header(reset),
        )
    limit_name, spend_name = _BUDGET_HEADERS[period]
    return _Check(
        scope,
        period,
        key,
        limit,
        enforce,
        reset,
        show,
        (limit_name, format_usd(limit).encode()),
        spend_name,
        b"",
    )


class _Outcome:
    """What the client received, observed on the way out: the answer's status, whether its
    last body message went out, the stream's tally, an error answer's body, a stream's error
    code."""

    __slots__ = ("body", "complete", "error_code", "status", "tally")

    def __init__(
        self,
        status: int = 0,
        complete: bool = False,
        tally: StreamTally | None = None,
        body: list[bytes] | None = None,
        error_code: str | None = None,
    ) -> None:
        self.status = status
        self.complete = complete
        self.tally = tally
        self.body = body
        self.error_code = error_code


class SpendControl:
    """Budgets (USD per key and per workspace, daily/weekly/monthly UTC), tokens per minute per
    key, and a usage ledger with one record per finished inference request.

    Sits inside :class:`~akgate.APIKeyAuth` (it needs the caller's identity) and outside
    routing (which computes ``routing_metadata.cost``). See ``docs/spend.md``.

    Options (keyword-only):

    * ``ledger``: where records go (``None``: no ledger).
    * ``limits``: where budgets and tpm are configured (``None``: no limits, ledger only).
    * ``counters``: spend and token counters; default in process (one worker), use
      :class:`~akgate.usage.RedisSpendCounters` with several workers.
    * ``catalog``: prices for the admission estimate (``max tokens x price``).
    * ``default_max_tokens``: output tokens assumed when a request names no cap and the
      catalog has none either.
    * ``max_body_size``: request body cap in bytes (413 above it).
    * ``unavailable_retry_after``: ``Retry-After`` seconds on a 503 (a store that cannot answer).
    * ``clock``: the epoch clock of budget periods (tests inject one).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        ledger: UsageLedger | None = None,
        limits: LimitStore | None = None,
        counters: SpendCounters | None = None,
        catalog: Catalog | None = None,
        default_max_tokens: int = 4096,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        unavailable_retry_after: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if default_max_tokens < 1:
            raise ValueError("default_max_tokens must be >= 1")
        self.app = app
        self.ledger = ledger
        self.limits = limits
        self.counters: SpendCounters = (
            counters if counters is not None else MemorySpendCounters(clock=clock)
        )
        #: The limit store's synchronous cache lookup, when it has one (``peek_limits``).
        self._peek_limits: Callable[[LimitScope, str], tuple[bool, Limits | None]] | None = getattr(
            limits, "peek_limits", None
        )
        self._plans: dict[
            tuple[str, str, int],
            tuple[Any, Any, tuple[_Check, ...], dict[tuple[int, int], list[Slot]]],
        ] = {}
        self._prices: dict[str, Price | None] = {}
        # In-process settlement never suspends, so a cancellation cannot cut it: no shield.
        self._shield_settle = not isinstance(self.counters, MemorySpendCounters)
        self.catalog = catalog
        self.default_max_tokens = default_max_tokens
        self.max_body_size = check_body_size(max_body_size)
        self.unavailable_retry_after = str(unavailable_retry_after)
        self.clock = clock

    def __repr__(self) -> str:
        return f"SpendControl(ledger={self.ledger!r}, counters={self.counters!r})"

    # -- ASGI ---------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if kind != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        ctx = scope.get(SCOPE_KEY)
        resolution: Resolution | None
        if (
            isinstance(ctx, RequestContext)
            and ctx.route is not None
            and ctx.route[0] == scope["path"]
        ):
            # An outer layer resolved this very path and made the context (gateway_scope's
            # cache, read without its two calls).
            resolution = ctx.route[1]  # type: ignore[assignment]
        else:
            scope, send, ctx = request_context(scope, send)
            # The endpoint table decides what is a chat or responses request (one path rule).
            scope, resolution = gateway_scope(scope, ctx)
        spec = resolution.spec if resolution is not None and not resolution.refused else None
        # Inference requests only (a token count is free and not billed).
        endpoint = spec.kind if spec is not None and spec.name in _BILLED else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        identity = ctx.identity
        limits: tuple[Limits | None, Limits | None] = (None, None)
        if identity is not None and self.limits is not None:
            cached = self._cached_limits(identity)
            if cached is not None:
                limits = cached
            else:
                try:
                    limits = await self._limits_of(identity)
                except Exception as exc:
                    await send_error(send, self._unavailable(ctx, exc))
                    self._record(ctx, endpoint, {}, identity, _failed(503, "service_unavailable"))
                    return
        payload: dict[str, Any] | None = None
        if limits[0] is not None or limits[1] is not None:
            # Admission needs the request (model, max tokens); without limits the body is left
            # to the inner layers and the record reads what they parsed.
            try:
                payload = await read_request_json(scope, receive, ctx, max_size=self.max_body_size)
            except ClientDisconnected:
                return
            except GatewayError:
                payload = {}  # not JSON: validation (or the app) answers; nothing to charge
            if ctx.body is not None:
                receive = replay_receive(ctx.body, ctx.raw_receive or receive)
                scope = scope_with_body(scope, ctx.body)
        # (Served here rather than in a method of its own: a coroutine less on every
        # request, and one frame less each time the request's task resumes.)
        checks: tuple[_Check, ...] = ()
        slots: list[Slot] = []
        admission: Admission | None = None
        now = 0.0  # the limits' clock, read when there are limits to check
        if identity is not None and payload is not None:
            now = self.clock()
            checks, slot_sets = self._plan(identity, *limits, now)
            slots = self._slots(checks, slot_sets, payload, ctx)
            try:
                admission = await self.counters.reserve(slots)
            except Exception as exc:
                await send_error(send, self._unavailable(ctx, exc))
                self._record(ctx, endpoint, payload, identity, _failed(503, "service_unavailable"))
                return
        headers: list[tuple[bytes, bytes]] = []
        if admission is not None:
            headers = _headers(checks, slots, admission)
            if admission.blocked >= 0:
                error = self._refusal(checks[admission.blocked], now)
                await send_error(send, error, headers=headers)
                self._record(ctx, endpoint, payload or {}, identity, _failed(429, error.code))
                return

        # What the client received, noted in the closure's own variables (cheaper to set than
        # an object's attributes) and made an _Outcome once the answer is over.
        answer_status = 0
        complete = False
        tally: StreamTally | None = None
        error_body: list[bytes] | None = None
        stream_error: str | None = None
        t_start = time.perf_counter()

        async def observe(message: Message) -> None:
            nonlocal answer_status, complete, tally, error_body, stream_error
            kind = message["type"]
            if kind == "http.response.start":
                status = answer_status = message["status"]
                ctype = b""
                if headers:
                    inner = []
                    # One pass: find the content type and drop the app's copies of our headers
                    # (e.g. copied from an upstream gateway's).
                    for header in message.get("headers", ()):
                        name = header[0].lower()
                        if name == b"content-type":
                            ctype = header[1]
                        elif name.startswith(_OWN_HEADER_PREFIXES):
                            continue
                        inner.append(header)
                    inner += headers
                    message = {**message, "headers": inner}
                else:  # no headers of ours (no limits): the message goes on as it came
                    ctype = _content_type(message.get("headers", ()))
                if ctype.find(b"text/event-stream") >= 0:
                    tally = StreamTally(endpoint)
                elif status >= 400:
                    error_body = []
            elif kind == "http.response.body":
                chunk = message.get("body", b"")
                if tally is not None and chunk:
                    tally.feed(chunk)
                    if chunk.find(b'"error"') >= 0 and stream_error is None:
                        stream_error = _stream_error_code(chunk)
                elif (
                    error_body is not None and chunk and sum(map(len, error_body)) < _ERROR_BODY_CAP
                ):
                    error_body.append(chunk)
                if not message.get("more_body", False):
                    complete = True
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            request = payload if payload is not None else ctx.payload or {}
            stream = request.get("stream") is True
            outcome = _Outcome(answer_status, complete, tally, error_body, stream_error)
            row = self._build_row(ctx, endpoint, request, identity, outcome, stream, t_start)
            if admission is None:
                self._append_row(row)
            else:
                record = UsageRecord(*row)
                if self._shield_settle:
                    # Shielded: a cancelled request (client gone) is still settled.
                    with anyio.CancelScope(shield=True):
                        await self._settle(ctx, checks, slots, record)
                else:
                    await self._settle(ctx, checks, slots, record)
                self._append(record)

    def _cached_limits(self, identity: Identity) -> tuple[Limits | None, Limits | None] | None:
        """The limits from the store's cache without an ``await`` (the usual path), or None
        when either is not cached (or the store has no ``peek_limits``)."""
        peek = self._peek_limits
        if peek is None:
            return None
        key_hit, key_limits = peek("api_key", identity.key_id)
        ws_hit, ws_limits = peek("workspace", identity.workspace_id)
        if not (key_hit and ws_hit):
            return None
        return (
            None if key_limits is None or key_limits.empty else key_limits,
            None if ws_limits is None or ws_limits.empty else ws_limits,
        )

    async def _limits_of(self, identity: Identity) -> tuple[Limits | None, Limits | None]:
        """The key's and the workspace's limits (None where there are none)."""
        assert self.limits is not None
        key_limits = await self.limits.get_limits("api_key", identity.key_id)
        ws_limits = await self.limits.get_limits("workspace", identity.workspace_id)
        return (
            None if key_limits is None or key_limits.empty else key_limits,
            None if ws_limits is None or ws_limits.empty else ws_limits,
        )

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        ledger = self.ledger

        async def send_flushing(message: Message) -> None:
            # Every request has finished by now (the server drained them): write them all.
            if (
                message["type"] == "lifespan.shutdown.complete"
                and ledger is not None
                and not await ledger.flush()
            ):
                logger.error("akgate usage: records still unwritten at shutdown")
            await send(message)

        await self.app(scope, receive, send_flushing)

    # -- admission ----------------------------------------------------------------------------
    def _slots(
        self,
        checks: tuple[_Check, ...],
        slot_sets: dict[tuple[int, int], list[Slot]],
        payload: Mapping[str, Any],
        ctx: RequestContext,
    ) -> list[Slot]:
        """This request's counters, each with its share of the admission estimate (the same
        list for requests of the same key and estimate in this minute: slots are read-only)."""
        price = self._price(payload)
        default = self.default_max_tokens
        if price is not None and price.max_output_tokens:
            default = price.max_output_tokens
        cap = max_output_tokens(payload, default)
        input_tokens = estimate_tokens(len(ctx.body or b""))
        usd_estimate = 0
        if price is not None:
            usd_estimate = math.ceil(
                (input_tokens * price.input + cap * price.output) * USD_UNITS / 1_000_000
            )
        tokens_estimate = input_tokens + cap
        slots = slot_sets.get((usd_estimate, tokens_estimate))
        if slots is None:
            slots = [
                Slot(
                    c.key,
                    c.limit,
                    c.enforce,
                    c.reset,
                    tokens_estimate if c.period is None else usd_estimate,
                )
                for c in checks
            ]
            if len(slot_sets) >= _MAX_SLOT_SETS:
                slot_sets.clear()
            slot_sets[usd_estimate, tokens_estimate] = slots
        return slots

    def _plan(
        self, identity: Identity, key_limits: Limits | None, ws_limits: Limits | None, now: float
    ) -> tuple[tuple[_Check, ...], dict[tuple[int, int], list[Slot]]]:
        """The counters of a key for this minute (names, limits, resets, header values) and its
        slot lists by estimate, computed once per key, limits and minute: building them costs
        more than checking them."""
        cache_key = (identity.key_id, identity.workspace_id, int(now // _TPM_WINDOW))
        cached = self._plans.get(cache_key)
        if cached is not None and cached[0] is key_limits and cached[1] is ws_limits:
            return cached[2], cached[3]
        rows: list[_Check] = []
        shown: set[Period] = set()
        for scope, limits, owner in (
            ("api_key", key_limits, identity.key_id),
            ("workspace", ws_limits, identity.workspace_id),
        ):
            if limits is None:
                continue
            for period in PERIODS:
                budget = limits.budgets.get(period)
                if budget is not None:
                    window = period_window(period, now)
                    key = f"b:{scope}:{owner}:{window.label}"
                    limit = to_units(budget.limit_usd)
                    show = period not in shown
                    shown.add(period)
                    rows.append(
                        _check(scope, period, key, limit, budget.enforce, window.reset, show)  # type: ignore[arg-type]
                    )
        if key_limits is not None and key_limits.tpm is not None:
            minute = int(now // _TPM_WINDOW)
            reset = (minute + 1) * _TPM_WINDOW
            key = f"t:{identity.key_id}:{minute}"
            rows.append(_check("api_key", None, key, key_limits.tpm, True, reset, True))
        plan = tuple(rows)
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()  # a new minute or many keys: start over (bounded)
        slot_sets: dict[tuple[int, int], list[Slot]] = {}
        self._plans[cache_key] = (key_limits, ws_limits, plan, slot_sets)
        return plan, slot_sets

    def _price(self, payload: Mapping[str, Any]) -> Price | None:
        """The highest prices the request may be routed to (cached per model name)."""
        if self.catalog is None:
            return None
        model = payload.get("model")
        if not isinstance(model, str):
            return price_of(self.catalog, payload)  # gateway.models: rare, not cached
        if model not in self._prices:
            if len(self._prices) >= _MAX_PLANS:
                self._prices.clear()
            self._prices[model] = price_of(self.catalog, payload)
        return self._prices[model]

    def _refusal(self, check: _Check, now: float) -> GatewayError:
        retry_after = str(max(1, math.ceil(check.reset - now)))
        if check.period is None:
            return GatewayError(
                "rate_limit_exceeded",
                f"Token rate limit exceeded: this key allows {check.limit} tokens per minute "
                f"(tpm). Retry after {retry_after} seconds.",
                headers={"Retry-After": retry_after},
            )
        who = "API key" if check.scope == "api_key" else "workspace"
        return GatewayError(
            "budget_exhausted",
            f"The {check.period} budget of this {who} ({format_usd(check.limit)} USD) is "
            f"exhausted; it resets at {iso_timestamp(check.reset)}.",
            # Retrying before the reset cannot succeed: the openai SDK honours this header.
            headers={"Retry-After": retry_after, "X-Should-Retry": "false"},
        )

    def _unavailable(self, ctx: RequestContext, exc: BaseException) -> GatewayError:
        logger.warning(
            "akgate spend backend unavailable (%s); request %s answered 503",
            type(exc).__name__,
            ctx.request_id,
        )
        return GatewayError(
            "service_unavailable",
            "The spend-limit service is temporarily unavailable. Please retry shortly.",
            headers={"Retry-After": self.unavailable_retry_after},
        )

    async def _settle(
        self,
        ctx: RequestContext,
        checks: tuple[_Check, ...],
        slots: list[Slot],
        record: UsageRecord,
    ) -> None:
        cost = to_units(record.cost_usd)
        tokens = record.input_tokens + record.output_tokens
        actual = [tokens if c.period is None else cost for c in checks]
        try:
            await self.counters.settle(slots, actual)
        except Exception as exc:
            # The reservation expires with its period; the ledger still has the record.
            logger.warning(
                "akgate spend: settling request %s failed (%s)", ctx.request_id, type(exc).__name__
            )

    # -- the ledger record --------------------------------------------------------------------
    def _build_record(
        self,
        ctx: RequestContext,
        endpoint: Endpoint,
        payload: Mapping[str, Any],
        identity: Identity | None,
        outcome: _Outcome,
        stream: bool,
        t_start: float,
    ) -> UsageRecord:
        return UsageRecord(
            *self._build_row(ctx, endpoint, payload, identity, outcome, stream, t_start)
        )

    def _build_row(
        self,
        ctx: RequestContext,
        endpoint: Endpoint,
        payload: Mapping[str, Any],
        identity: Identity | None,
        outcome: _Outcome,
        stream: bool,
        t_start: float,
    ) -> tuple[Any, ...]:
        """The request's record as the ledger queues it: its fields in ``RECORD_COLUMNS``
        order (``UsageRecord(*row)`` is the record). The usual case is built as that tuple,
        without the record object and the ledger's copy of its fields."""
        routing = ctx.state.get("routing") or {}
        metadata = routing.get("metadata")
        usage = routing.get("usage")
        error_code = outcome.error_code
        if outcome.body:
            error_code = _json_error_code(b"".join(outcome.body))
        disconnected = not outcome.complete
        if not disconnected:
            for attempt in routing.get("attempts", ()):
                if attempt.get("outcome") == "client_disconnected":
                    disconnected = True
                    break
        if disconnected and error_code is None and outcome.status < 400:
            error_code = "client_disconnected"
        status = outcome.status or (499 if disconnected else 500)
        if not error_code and status >= 400:
            error_code = f"http_{status}"
        key_id = workspace_id = ""
        if identity is not None:
            key_id, workspace_id = identity.key_id, identity.workspace_id
        duration_ms = round((time.perf_counter() - t_start) * 1000, 3)
        model = requested_model(payload)
        if type(metadata) is dict or isinstance(metadata, Mapping):
            # The usual case, built without an intermediate dict: it runs on every request.
            cost = metadata.get("cost") or {}
            input_tokens, output_tokens, cached, reasoning = _token_counts(usage)
            # In field order (UsageRecord's), as the ledger queues a record.
            return (
                self.clock(),  # ts
                ctx.request_id,
                key_id,
                workspace_id,
                endpoint,
                model,
                metadata.get("provider"),
                metadata.get("provider_model_id"),
                input_tokens,
                output_tokens,
                cached,  # cached_tokens
                reasoning,  # reasoning_tokens
                cost.get("usd", 0.0),  # cost_usd
                cost.get("cache_savings_usd", 0.0),
                metadata.get("ttft_ms"),
                duration_ms,
                status,
                error_code,
                stream,
                disconnected,  # client_disconnected
                False,  # estimated
            )
        fields: dict[str, Any] = {}
        if routing.get("route") is not None and usage is not None:
            # The provider reported its usage but the client left before the final chunk.
            fields = _from_usage(routing["route"], usage)
        elif routing.get("route") is not None and outcome.tally is not None:
            fields = _estimated(routing["route"], payload, outcome.tally)
        record = UsageRecord(
            ts=self.clock(),
            request_id=ctx.request_id,
            key_id=key_id,
            workspace_id=workspace_id,
            endpoint=endpoint,
            model=model,
            duration_ms=duration_ms,
            status=status,
            error_code=error_code,
            stream=stream,
            client_disconnected=disconnected,
            **fields,
        )
        return record_row(record)

    def _record(
        self,
        ctx: RequestContext,
        endpoint: Endpoint,
        payload: Mapping[str, Any],
        identity: Identity | None,
        outcome: _Outcome,
    ) -> None:
        self._append(
            self._build_record(
                ctx,
                endpoint,
                payload,
                identity,
                outcome,
                payload.get("stream") is True,
                ctx.started,
            )
        )

    def _append(self, record: UsageRecord) -> None:
        if self.ledger is not None:
            self.ledger.append(record)

    def _append_row(self, row: tuple[Any, ...]) -> None:
        """Queue the record ``row`` holds: as the row itself when the ledger is a plain
        ``UsageLedger`` without an ``on_record`` hook (what ``append`` would queue), else as
        the record, through ``append``."""
        ledger = self.ledger
        if ledger is None:
            return
        if type(ledger) is UsageLedger and ledger.on_record is None:
            ledger._queue_row(row)
        else:
            ledger.append(UsageRecord(*row))

    # -- /v1/me -------------------------------------------------------------------------------
    async def me_extension(
        self, identity: Identity
    ) -> tuple[dict[str, Any], list[tuple[bytes, bytes]]]:
        """``budgets`` (limit, spend and reset of each) and the tpm for ``GET /v1/me``."""
        if self.limits is None:
            return {}, []
        now = self.clock()
        key_limits = await self.limits.get_limits("api_key", identity.key_id)
        ws_limits = await self.limits.get_limits("workspace", identity.workspace_id)
        entries: list[tuple[LimitScope, Period, Limits, str]] = []
        for scope, limits, owner in (
            ("api_key", key_limits, identity.key_id),
            ("workspace", ws_limits, identity.workspace_id),
        ):
            if limits is not None:
                entries += [(scope, p, limits, owner) for p in PERIODS if p in limits.budgets]  # type: ignore[misc]
        windows = [period_window(period, now) for _, period, _, _ in entries]
        keys = [
            f"b:{scope}:{owner}:{w.label}"
            for (scope, _, _, owner), w in zip(entries, windows, strict=True)
        ]
        used = await self.counters.read(keys) if keys else []
        budgets = []
        checks = []
        shown: set[Period] = set()
        for (scope, period, limits, _), window, (spent, reserved), key in zip(
            entries, windows, used, keys, strict=True
        ):
            budget = limits.budgets[period]
            budgets.append(
                {
                    "scope": scope,
                    "period": period,
                    "limit_usd": budget.limit_usd,
                    "spend_usd": spent / USD_UNITS,
                    "reserved_usd": reserved / USD_UNITS,
                    "enforce": budget.enforce,
                    "resets_at": iso_timestamp(window.reset),
                }
            )
            limit = to_units(budget.limit_usd)
            checks.append(
                _check(scope, period, key, limit, budget.enforce, window.reset, period not in shown)
            )
            shown.add(period)
        extra: dict[str, Any] = {"budgets": budgets}
        if key_limits is not None and key_limits.tpm is not None:
            extra["tokens_per_minute"] = key_limits.tpm
        slots = [Slot(c.key, c.limit, c.enforce, c.reset, 0) for c in checks]
        headers = _headers(checks, slots, Admission(-1, used)) if checks else []
        return extra, headers


def _headers(
    checks: Sequence[_Check], slots: Sequence[Slot], admission: Admission
) -> list[tuple[bytes, bytes]]:
    """``X-Budget-*`` (the key's budget per period, else the workspace's) and the tokens
    ``X-RateLimit-*``; the limits' values were formatted with the plan."""
    headers: list[tuple[bytes, bytes]] = []
    exceeded: _Check | None = None
    admitted = admission.blocked < 0
    for check, slot, (spent, reserved) in zip(checks, slots, admission.used, strict=True):
        if check.period is None:
            left = check.limit - spent - reserved - (slot.amount if admitted else 0)
            headers += (
                check.limit_header,
                (b"x-ratelimit-remaining-tokens", b"%d" % (left if left > 0 else 0)),
                (b"x-ratelimit-reset-tokens", check.reset_text),
            )
            continue
        if exceeded is None and spent >= check.limit:
            exceeded = check
        if check.show:
            headers += (check.limit_header, (check.spend_name, _usd_bytes(spent)))
    if exceeded is not None:
        headers += (
            (b"x-budget-exceeded", b"true"),
            (b"x-budget-exceeded-period", str(exceeded.period).encode()),
            (b"x-budget-exceeded-scope", exceeded.scope.encode()),
        )
    return headers


def _failed(status: int, code: str) -> _Outcome:
    return _Outcome(status, True, None, None, code)


def _int(value: Any) -> int:
    """A positive int count, else 0 (a bool is not a count)."""
    if type(value) is int:  # the usual case, without the isinstance checks
        return value if value > 0 else 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _detail(details: Any, name: str) -> int:
    """``details[name]`` as a count; 0 when ``details`` is missing or not a mapping."""
    if details is None:  # the usual case: no isinstance against the Mapping ABC (slow)
        return 0
    if type(details) is dict or isinstance(details, Mapping):
        return _int(details.get(name))
    return 0


def _token_counts(usage: Any) -> tuple[int, int, int, int]:
    """Input, output, cached and reasoning tokens from chat (``prompt_tokens``...) or
    responses usage: ``_int`` of each count, ``_detail`` of each detail."""
    if type(usage) is not dict and not isinstance(usage, Mapping):
        return 0, 0, 0, 0
    get = usage.get
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        names = _CHAT_USAGE
    else:
        names = _RESPONSES_USAGE
    inp, out, inp_details, out_details = get(names[0]), get(names[1]), get(names[2]), get(names[3])
    # The usual values (int counts, dict or absent details) without a call per field: every
    # request's record reads them.
    return (
        inp if type(inp) is int and inp > 0 else _int(inp),
        out if type(out) is int and out > 0 else _int(out),
        _int(inp_details.get("cached_tokens"))
        if type(inp_details) is dict
        else _detail(inp_details, "cached_tokens"),
        _int(out_details.get("reasoning_tokens"))
        if type(out_details) is dict
        else _detail(out_details, "reasoning_tokens"),
    )


#: The count and detail fields of chat usage and of responses usage, in _token_counts' order.
_CHAT_USAGE: Final = (
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
)
_RESPONSES_USAGE: Final = (
    "input_tokens",
    "output_tokens",
    "input_tokens_details",
    "output_tokens_details",
)


def _content_type(headers: Any) -> bytes:
    """The value of the last ``content-type`` header (names in any case), else ``b""``."""
    ctype = b""
    for name, value in headers:
        # Only a 12-byte name is lowered: lowering every name costs more.
        if len(name) == 12 and name.lower() == b"content-type":
            ctype = value
    return ctype


def _tokens(usage: Any) -> dict[str, int]:
    """Token fields of a record from chat or responses usage."""
    inp, out, cached, reasoning = _token_counts(usage)
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cached_tokens": cached,
        "reasoning_tokens": reasoning,
    }


def _from_usage(route: Any, usage: Any) -> dict[str, Any]:
    """Fields priced from the provider's usage, as routing prices ``routing_metadata``."""
    from akgate.routing._cost import compute_cost, token_counts

    tokens = token_counts(usage)
    cost = compute_cost(tokens, route.offering) if tokens is not None else {}
    return {
        "provider": route.provider.name,
        "provider_model": route.model.provider_model_id(route.offering),
        "cost_usd": cost.get("usd", 0.0),
        "cache_savings_usd": cost.get("cache_savings_usd", 0.0),
        **_tokens(usage),
    }


def _estimated(route: Any, payload: Mapping[str, Any], tally: StreamTally) -> dict[str, Any]:
    """Fields for a stream that ended before its usage: tokens estimated from the text."""
    from akgate.routing._cost import TokenCounts, compute_cost

    text = text_chars(payload.get("messages")) + text_chars(payload.get("input"))
    text += text_chars(payload.get("instructions"))
    tokens = TokenCounts(estimate_tokens(text), estimate_tokens(tally.chars), 0)
    cost = compute_cost(tokens, route.offering)
    return {
        "provider": route.provider.name,
        "provider_model": route.model.provider_model_id(route.offering),
        "input_tokens": tokens.input,
        "output_tokens": tokens.output,
        "cost_usd": cost["usd"],
        "estimated": True,
    }


def _json_error_code(body: bytes) -> str | None:
    try:
        data = from_json(body)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return code if isinstance(code, str) else None
    return None


def _stream_error_code(chunk: bytes) -> str | None:
    for line in chunk.split(b"\n"):
        if line.startswith(b"data:") and b'"error"' in line:
            try:
                data = from_json(line[5:].strip())
            except ValueError:
                continue
            if isinstance(data, dict):
                error = data.get("error")
                if isinstance(error, dict) and isinstance(error.get("code"), str):
                    return str(error["code"])
                if data.get("type") == "error" and isinstance(data.get("code"), str):
                    return str(data["code"])
    return None
