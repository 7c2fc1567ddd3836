"""``PrometheusMetrics``: request, latency, token, cost and stream metrics, and their exposition.

Needs ``prometheus-client`` (``pip install 'akgate[metrics]'``; the ``server`` extra brings it),
imported when the layer is built. Labels are bounded: endpoint names, catalog model ids, provider
names, status codes; never raw paths or key ids.

Several worker processes: set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the
workers start; every worker then writes its samples there and the exposition (any worker) sums
them (``docs/operations.md``).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable
from functools import cache
from typing import Any, Final

from akgate._asgi import route_path
from akgate._types import ASGIApp, Receive, Scope, Send

from ._observe import Observation, answered, endpoint_label, observed_request, release

__all__ = ["LATENCY_BUCKETS", "PrometheusMetrics"]

#: Seconds: LLM requests run from milliseconds (cached, errors) to minutes (long generations).
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: 429 error codes (errors.py) -> the ``reason`` label of ``rejections_total``.
_REJECTIONS: Final = {
    "rate_limit_exceeded": "rate_limit",
    "rate_limit_error": "rate_limit",  # Anthropic's envelope on /v1/messages names the type only
    "budget_exhausted": "budget",
    "insufficient_quota": "budget",
}
_MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


class PrometheusMetrics:
    """Record every HTTP request and serve the Prometheus text exposition at ``path``.

    Metrics (prefix ``namespace``, default ``akgate``): ``requests_total`` (endpoint, model,
    provider, status), ``request_duration_seconds`` and ``time_to_first_token_seconds``
    histograms (endpoint, model, provider), ``tokens_total`` (model, provider, direction),
    ``cost_usd_total`` (model, provider), ``fallbacks_total`` (endpoint),
    ``rejections_total`` (reason: ``rate_limit``/``budget``) and the ``open_streams`` gauge
    (endpoint).

    Options (keyword-only):

    * ``path``: where the exposition is served (``None``: record without serving; expose
      ``registry`` yourself).
    * ``registry``: the ``prometheus_client`` registry (default: a new one).
    * ``namespace``: the metric name prefix (default ``akgate``).

    See ``docs/operations.md``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str | None = "/metrics",
        registry: Any = None,
        namespace: str = "akgate",
    ) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise ImportError(
                "PrometheusMetrics needs prometheus-client: pip install 'akgate[metrics]'"
            ) from None
        if path is not None and not path.startswith("/"):
            raise ValueError("path must start with '/'")
        self.app = app
        self.path = path
        self.multiprocess = bool(os.environ.get(_MULTIPROC_ENV))
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        r, ns = self.registry, namespace
        model_labels = ("endpoint", "model", "provider")
        self.requests = prom.Counter(
            "requests",
            "HTTP requests answered.",
            (*model_labels, "status"),
            registry=r,
            namespace=ns,
        )
        self.duration = prom.Histogram(
            "request_duration_seconds",
            "Time from the request to the end of its answer.",
            model_labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
            namespace=ns,
        )
        self.ttft = prom.Histogram(
            "time_to_first_token_seconds",
            "Time from the request to the first streamed byte (streams only).",
            model_labels,
            buckets=_TTFT_BUCKETS,
            registry=r,
            namespace=ns,
        )
        self.tokens = prom.Counter(
            "tokens",
            "Tokens reported by providers.",
            ("model", "provider", "direction"),
            registry=r,
            namespace=ns,
        )
        self.cost = prom.Counter(
            "cost_usd",
            "Cost in USD (catalog prices).",
            ("model", "provider"),
            registry=r,
            namespace=ns,
        )
        self.fallbacks = prom.Counter(
            "fallbacks",
            "Provider attempts that failed and fell back.",
            ("endpoint",),
            registry=r,
            namespace=ns,
        )
        self.rejections = prom.Counter(
            "rejections",
            "Requests refused by a rate limit or a budget.",
            ("reason",),
            registry=r,
            namespace=ns,
        )
        self.open_streams = prom.Gauge(
            "open_streams",
            "Streamed answers in progress.",
            ("endpoint",),
            registry=r,
            namespace=ns,
            multiprocess_mode="livesum",
        )
        #: Labelled children by (metric, labels): prometheus-client validates the labels and
        #: takes a lock on every ``labels()`` call; the label sets are bounded (see above).
        self._children: dict[tuple[Any, ...], Any] = {}
        #: What every answer records, bound per (endpoint, model, provider, status): the
        #: request counter's ``inc`` and the duration's ``observe`` in one look-up.
        self._answers: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}
        #: The input and output token counters' adders, then their ``inc``, per (model,
        #: provider).
        self._usage: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = {}
        #: The cost counter's ``inc`` per (model, provider) (a series appears once it counts).
        self._costs: dict[tuple[str, str], Any] = {}
        self._exposition = prom.generate_latest
        self._content_type = prom.CONTENT_TYPE_LATEST.encode()
        self._prom = prom

    def __repr__(self) -> str:
        return f"PrometheusMetrics({self.app!r}, path={self.path!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.path is not None and route_path(scope) == self.path:
            await self._serve(scope, send)
            return
        original = send
        scope, send, ctx, obs = observed_request(scope, send)
        streaming: list[str] = []

        def stream_started() -> None:
            label = endpoint_label(obs.path, ctx)
            streaming.append(label)
            self._child(self.open_streams, label).inc()

        obs.on_stream_start(stream_started)
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            obs.finish(exc)
            raise
        else:
            obs.finish()
        finally:
            if streaming:
                self._child(self.open_streams, streaming[0]).dec()
            self._record(obs)
            if send is not original:  # this layer made the observation
                release(ctx, obs)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _record(self, obs: Observation) -> None:
        endpoint, model, provider, tokens, cost, fallbacks = metric_fields(obs)
        child = self._child
        status = obs.status
        answer = self._answers.get((endpoint, model, provider, status))
        if answer is None:
            answer = self._answers[(endpoint, model, provider, status)] = (
                _adder(child(self.requests, endpoint, model, provider, str(status))),
                _observer(child(self.duration, endpoint, model, provider)),
            )
        count, observe_duration = answer
        count(1)
        observe_duration(obs.duration)
        ttft = obs.ttft
        if ttft is not None:
            child(self.ttft, endpoint, model, provider).observe(ttft)
        if tokens is not None:
            usage = self._usage.get((model, provider))
            if usage is None:
                usage = self._usage[(model, provider)] = (
                    _adder(child(self.tokens, model, provider, "input")),
                    _adder(child(self.tokens, model, provider, "output")),
                    child(self.tokens, model, provider, "input").inc,
                    child(self.tokens, model, provider, "output").inc,
                )
            inp, out = tokens
            if inp >= 0 and out >= 0:
                usage[0](inp)
                usage[1](out)
            else:  # what the counter's own inc says of a negative count (it raises)
                usage[2](inp)
                usage[3](out)
        if cost:
            add_cost = self._costs.get((model, provider))
            if add_cost is None:
                add_cost = self._costs[(model, provider)] = child(self.cost, model, provider).inc
            add_cost(cost)
        if fallbacks:
            child(self.fallbacks, endpoint).inc(fallbacks)
        reason = _REJECTIONS.get(obs.error_code or "")
        if reason is not None:
            child(self.rejections, reason).inc()

    async def _serve(self, scope: Scope, send: Send) -> None:
        if scope.get("method") not in ("GET", "HEAD"):
            await _plain(send, 405, b"Use GET.\n", [(b"allow", b"GET")])
            return
        registry = self.registry
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = self._prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = self._exposition(registry)
        await _plain(send, 200, body, [(b"content-type", self._content_type)])


def metric_fields(
    obs: Observation,
) -> tuple[str, str, str, tuple[int, int] | None, float | None, int]:
    """``(endpoint, model, provider, tokens, cost, fallbacks)`` of a finished request as the
    metrics label and count them: the Observation's properties of those names (``model`` only
    when routing answered, ``-`` for a missing label), with what routing recorded read once
    rather than once per property (every request pays for this function)."""
    model, provider, tokens, cost, fallbacks = answered(obs)
    # Only catalog ids as labels, never what was asked: the model only when routing answered.
    return (
        obs.endpoint,
        (model if obs.metadata else None) or "-",
        provider or "-",
        tokens,
        cost,
        fallbacks,
    )


def _adder(counter: Any) -> Callable[[float], None]:
    """What ``counter.inc(amount)`` does for a labelled child and an amount >= 0 (the callers
    make sure of both): its value's ``inc``, without the checks ``Counter.inc`` runs first (the
    child is observable; no exemplar). ``counter.inc`` itself on a prometheus-client whose
    children keep their value elsewhere."""
    value = getattr(counter, "_value", None)
    inc = getattr(value, "inc", None)
    if callable(inc) and type(counter).inc is _public_methods()[0]:
        return inc  # type: ignore[no-any-return]
    return counter.inc  # type: ignore[no-any-return]


def _observer(histogram: Any) -> Callable[[float], None]:
    """What ``histogram.observe(amount)`` does for a labelled child: the sum, then the first
    bucket whose bound is >= the amount (found by bisection; none for NaN), without the checks
    ``Histogram.observe`` runs first. ``histogram.observe`` itself on a prometheus-client whose
    children keep their buckets elsewhere."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if (
        type(histogram).observe is not _public_methods()[1]
        or not isinstance(bounds, list)
        or not isinstance(buckets, list)
        or len(bounds) != len(buckets)
        or total is None
        or not callable(total.inc)
    ):
        return histogram.observe  # type: ignore[no-any-return]
    add_to_sum = total.inc
    add_one = [bucket.inc for bucket in buckets]
    last = len(bounds) - 1

    def observe(amount: float) -> None:
        add_to_sum(amount)
        i = bisect_left(bounds, amount)
        if i <= last and amount <= bounds[i]:
            add_one[i](1)

    return observe


@cache
def _public_methods() -> tuple[Any, Any]:
    """``Counter.inc`` and ``Histogram.observe``: the methods the adders stand for (a subclass
    that changes them keeps its own)."""
    from prometheus_client import Counter, Histogram

    return Counter.inc, Histogram.observe


async def _plain(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    if not any(name == b"content-type" for name, _ in headers):
        headers = [(b"content-type", b"text/plain; charset=utf-8"), *headers]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
