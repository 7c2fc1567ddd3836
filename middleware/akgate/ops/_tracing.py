"""``Tracing``: OpenTelemetry spans with the GenAI semantic-convention attributes.

One SERVER span per request and one CLIENT span per routing attempt (a fallback shows as a second
attempt span). Only ``opentelemetry-api`` is used (``pip install 'akgate[tracing]'``): your own SDK
set-up (``TracerProvider``, exporters, sampling) decides where spans go; without one they cost
next to nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from akgate._types import ASGIApp, Message, Receive, Scope, Send
from akgate._version import __version__
from akgate.context import RequestContext

from ._observe import Observation, observed_request, release

__all__ = ["TRACER_STATE_KEY", "Tracing", "attempt_span"]

#: Where the request's tracer waits for routing (``ctx.state``), so attempts get child spans.
TRACER_STATE_KEY: Final = "akgate.tracer"
_OPERATIONS: Final = {"chat_completions": "chat", "responses": "chat", "messages": "chat"}
_FINISH_REASON: Final = re.compile(rb'"(?:finish_reason|stop_reason)"\s*:\s*"([a-z_]{1,32})"')
_STATUS: Final = re.compile(rb'"status"\s*:\s*"(completed|incomplete|failed|cancelled)"')
_MAX_REASONS: Final = 8
_MAX_SCAN: Final = 1 << 20
#: Names the tracer provider to load when none is set in code (the API reads it lazily).
_PROVIDER_ENV: Final = "OTEL_PYTHON_TRACER_PROVIDER"


def _tracer(tracer_provider: Any) -> Any:
    try:
        from opentelemetry import trace
    except ImportError:
        raise ImportError(
            "Tracing needs opentelemetry-api: pip install 'akgate[tracing]'"
        ) from None
    return trace.get_tracer("akgate", __version__, tracer_provider=tracer_provider)


@contextmanager
def attempt_span(ctx: RequestContext, provider: str, model: str) -> Iterator[dict[str, Any]]:
    """A CLIENT span around one routing attempt when the request is traced; yields a dict the
    caller fills with ``outcome`` (and may leave empty)."""
    tracer = ctx.state.get(TRACER_STATE_KEY)
    result: dict[str, Any] = {}
    if tracer is None:
        yield result
        return
    operation = _OPERATIONS.get(ctx.endpoint or "", "chat")
    with tracer.start_as_current_span(
        f"{operation} {model}",
        kind=_kind("CLIENT"),
        attributes={
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield result
        outcome = result.get("outcome")
        if outcome:
            span.set_attribute("akgate.attempt.outcome", outcome)
            if outcome != "ok":
                span.set_status(_status_error(), outcome)
                span.set_attribute("error.type", outcome)


def _untraced_check(tracer_provider: Any) -> Callable[[], bool]:
    """A check, cheap enough for every request, that no span could record: no SDK set up (the
    API's proxy or no-op provider), now. An SDK installed later is seen from then on."""
    from opentelemetry import trace

    no_ops = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    if tracer_provider is not None:
        fixed = isinstance(tracer_provider, no_ops)
        return lambda: fixed
    get_provider = trace.get_tracer_provider
    if hasattr(trace, "_TRACER_PROVIDER") and _PROVIDER_ENV not in os.environ:
        # The API's global, read directly: get_tracer_provider() looks the environment up on
        # every call while no provider is set (~3 µs per request). ``None`` means what it
        # returns then: the proxy provider, whose spans do not record.
        return lambda: trace._TRACER_PROVIDER is None or isinstance(trace._TRACER_PROVIDER, no_ops)
    return lambda: isinstance(get_provider(), no_ops)


def _kind(name: str) -> Any:
    from opentelemetry.trace import SpanKind

    return getattr(SpanKind, name)


def _status_error() -> Any:
    from opentelemetry.trace import StatusCode

    return StatusCode.ERROR


class Tracing:
    """Trace every HTTP request the stack below answers.

    The request span is named ``"{operation} {model}"`` (``chat gpt-4o``) on the inference
    endpoints, ``"{METHOD} {endpoint}"`` elsewhere, with ``gen_ai.operation.name``,
    ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.provider.name``,
    ``gen_ai.usage.input_tokens``/``output_tokens``, ``gen_ai.response.finish_reasons``,
    ``http.request.method``, ``http.response.status_code``, ``akgate.request_id``,
    ``akgate.key_id``, ``akgate.cost_usd``; a 5xx (or an exception) marks it as an error with
    ``error.type``. Message contents are never recorded.

    Options (keyword-only):

    * ``tracer_provider``: the OpenTelemetry tracer provider (default: the global one).

    See ``docs/operations.md``.
    """

    def __init__(self, app: ASGIApp, *, tracer_provider: Any = None) -> None:
        self.app = app
        self.tracer = _tracer(tracer_provider)
        self._untraced = _untraced_check(tracer_provider)

    def __repr__(self) -> str:
        return f"Tracing({self.app!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._untraced():
            # No SDK set up: every span would be a non-recording no-op (~20 µs per request).
            await self.app(scope, receive, send)
            return
        scope, observed, ctx, obs = observed_request(scope, send)
        with self.tracer.start_as_current_span(
            f"{obs.method} {obs.endpoint}",
            kind=_kind("SERVER"),
            attributes={"http.request.method": obs.method, "akgate.request_id": ctx.request_id},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            recording = span.is_recording()
            if recording:
                ctx.state[TRACER_STATE_KEY] = self.tracer
            reasons: list[str] = []
            scanned = [0]

            async def traced_send(message: Message) -> None:
                if recording and message["type"] == "http.response.body" and obs.status < 400:
                    body = message.get("body", b"")
                    if body and scanned[0] < _MAX_SCAN:
                        scanned[0] += len(body)
                        _collect_reasons(body, reasons)
                await observed(message)

            try:
                await self.app(scope, receive, traced_send if recording else observed)
            except BaseException as exc:
                obs.finish(exc)
                if recording:
                    span.set_attribute("error.type", type(exc).__name__)
                raise
            else:
                obs.finish()
            finally:
                ctx.state.pop(TRACER_STATE_KEY, None)
                if recording:
                    _annotate(span, obs, reasons)
                if observed is not send:  # this layer made the observation
                    release(ctx, obs)


def _collect_reasons(body: bytes, reasons: list[str]) -> None:
    for pattern in (_FINISH_REASON, _STATUS):
        for match in pattern.finditer(body):
            reason = match.group(1).decode()
            if reason not in reasons and len(reasons) < _MAX_REASONS:
                reasons.append(reason)


def _annotate(span: Any, obs: Observation, reasons: list[str]) -> None:
    endpoint = obs.endpoint
    operation = _OPERATIONS.get(endpoint)
    attributes: dict[str, Any] = {"http.response.status_code": obs.status}
    if operation is not None:
        attributes["gen_ai.operation.name"] = operation
        requested = obs.requested_model
        if requested:
            attributes["gen_ai.request.model"] = requested
            span.update_name(f"{operation} {requested}")
    else:  # the name the endpoint table gave it, known only once a layer resolved the path
        span.update_name(f"{obs.method} {endpoint}")
    response_model = obs.provider_model or (obs.model if obs.metadata else None)
    if response_model:
        attributes["gen_ai.response.model"] = response_model
    if obs.provider:
        attributes["gen_ai.provider.name"] = obs.provider
    tokens = obs.tokens
    if tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = tokens[0]
        attributes["gen_ai.usage.output_tokens"] = tokens[1]
    finish = [r for r in reasons if r not in ("completed",)] or reasons
    if finish and operation is not None:
        attributes["gen_ai.response.finish_reasons"] = finish
    if obs.cost is not None:
        attributes["akgate.cost_usd"] = obs.cost
    if obs.key_id:
        attributes["akgate.key_id"] = obs.key_id
    if obs.fallbacks:
        attributes["akgate.fallbacks"] = obs.fallbacks
    if obs.stream and obs.ttft is not None:
        attributes["akgate.ttft_ms"] = round(obs.ttft * 1000, 1)
    if obs.error_code:
        attributes["error.type"] = obs.error_code
    span.set_attributes(attributes)
    if obs.status >= 500:
        span.set_status(_status_error(), obs.error_code or str(obs.status))
