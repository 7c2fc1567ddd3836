"""The operations layers :func:`~akgate.ops._stack.operations` composes, crossed in one step.

``HealthChecks -> PrometheusMetrics -> Tracing -> AccessLog`` are four coroutines on every
request, each looking at the scope and the path again, and the last two finishing the same
observation twice. :class:`Operations` knows that composition, so for the usual request (HTTP,
not one of the layers' own paths, no span to record) it does in one coroutine what the four do:
the shared observation, the open-streams gauge, the access line, then the metrics, in the order
the layers would. Every other request (probes, scrapes, skipped paths, a traced request, any
other scope) goes through the layers themselves, and each layer alone is unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from akgate._asgi import route_path
from akgate._types import ASGIApp, Receive, Scope, Send
from akgate.context import SCOPE_KEY, RequestContext, open_context

from ._observe import OBSERVATION_KEY, Observation, endpoint_label, observe, release

if TYPE_CHECKING:
    from ._accesslog import AccessLog
    from ._metrics import PrometheusMetrics
    from ._tracing import Tracing

__all__ = ["Operations"]


class Operations:
    """``layers`` (the composed operations layers, outermost first) around ``app``, with their
    usual request served in one step.

    ``.app`` is the outermost layer, so that whatever follows ``.app`` (readiness discovery,
    your own inspection) finds every layer; ``metrics``, ``tracing`` and ``access_log`` are the
    layers of the composition (``None`` when left out), ``own_paths`` the paths answered by a
    layer (health, readiness, metrics).
    """

    __slots__ = ("_access", "_inner", "_metrics", "_own_paths", "_skip_paths", "_tracing", "app")

    def __init__(
        self,
        layers: ASGIApp,
        app: ASGIApp,
        *,
        own_paths: frozenset[str],
        metrics: PrometheusMetrics | None,
        tracing: Tracing | None,
        access_log: AccessLog | None,
    ) -> None:
        self.app = layers
        self._inner = app
        self._own_paths = own_paths
        self._metrics = metrics
        self._tracing = tracing
        self._access = access_log
        self._skip_paths = access_log.skip_paths if access_log is not None else frozenset()

    def __repr__(self) -> str:
        return f"Operations({self.app!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracing = self._tracing
        if scope["type"] != "http" or (tracing is not None and not tracing._untraced()):
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if path in self._own_paths or path in self._skip_paths:
            await self.app(scope, receive, send)
            return
        # What the layers do, outermost first: one observation (the outermost layer's), the
        # metrics' stream gauge; then, innermost first, the access line and the metrics.
        ctx = scope.get(SCOPE_KEY)
        if isinstance(ctx, RequestContext):
            owned = not isinstance(ctx.state.get(OBSERVATION_KEY), Observation)
            obs, send = observe(scope, send, ctx, path)
        else:  # (observed_request, inline: the outermost akgate layer, the usual case)
            scope, ctx = open_context(scope, path)
            obs = Observation(scope, ctx, path)
            ctx.state[OBSERVATION_KEY] = obs
            send = obs.wrap(send, ctx.request_id.encode())
            owned = True
        metrics = self._metrics
        streaming: list[str] = []
        if metrics is not None:

            def stream_started() -> None:
                label = endpoint_label(obs.path, ctx)
                streaming.append(label)
                metrics._child(metrics.open_streams, label).inc()

            obs.on_stream_start(stream_started)
        access = self._access
        try:
            await self._inner(scope, receive, send)
        except BaseException as exc:
            obs.finish(exc)
            if access is not None:
                access._log(obs)
            raise
        else:
            obs.finish()
            if access is not None:
                access._log(obs)
        finally:
            if metrics is not None:
                if streaming:
                    metrics._child(metrics.open_streams, streaming[0]).dec()
                metrics._record(obs)
            if owned:  # freed now, not by the garbage collector (see release)
                release(ctx, obs)
