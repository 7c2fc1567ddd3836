"""Mount the akgate stack at ``/v1`` beside a Django ASGI application.

In ``asgi.py``::

    from django.core.asgi import get_asgi_application

    django_app = get_asgi_application()          # first: it runs django.setup()

    from akgate.contrib.django import mount

    application = mount(django_app)              # /v1/... through the gateway, the rest to Django

HTTP requests whose route path (``path`` below ``root_path``) is ``/v1`` or starts with ``/v1/``
go through :func:`akgate.gateway` built around the Django application itself, so a Django view
that serves ``/v1/chat/completions`` sits behind auth, validation and routing, and
``/v1/responses`` is answered by the adapter over that view. Every other request, and every
non-HTTP scope except lifespan, goes to Django untouched.

Django's handler raises ``ValueError`` on a lifespan scope. By default the mount answers lifespan
itself (startup and shutdown complete, nothing else), so ``uvicorn --lifespan on`` works and
``--lifespan auto`` logs nothing; pass ``handle_lifespan=False`` to hand lifespan to the wrapped app
unchanged (for an app that does support it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from akgate._asgi import answer_lifespan, route_path
from akgate._endpoints import canonical_path
from akgate._types import ASGIApp, Receive, Scope, Send
from akgate.context import Identity, get_context

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = ["PrefixDispatcher", "get_identity", "mount"]


class PrefixDispatcher:
    """Send HTTP requests under ``prefix`` to ``gateway_app`` and everything else to ``app``.

    The prefix is matched against the route path (``path`` minus ``root_path`` when ``path``
    starts with it, as Starlette and Django resolve it), and against its canonical form, without
    regard to case; the scope is passed on unchanged, so both apps see the same ``path``,
    ``root_path`` and ``SCRIPT_NAME``.
    """

    __slots__ = ("app", "gateway_app", "handle_lifespan", "prefix", "prefix_slash")

    def __init__(
        self,
        app: ASGIApp,
        gateway_app: ASGIApp,
        *,
        prefix: str = "/v1",
        handle_lifespan: bool = True,
    ) -> None:
        if not prefix.startswith("/") or prefix.endswith("/") or len(prefix) < 2:
            raise ValueError("prefix must start with '/' and not end with '/' (e.g. '/v1')")
        self.app = app
        self.gateway_app = gateway_app
        self.prefix = prefix.lower()
        self.prefix_slash = self.prefix + "/"
        self.handle_lifespan = handle_lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if self._owns(route_path(scope)):
                await self.gateway_app(scope, receive, send)
                return
        elif kind == "lifespan" and self.handle_lifespan:
            await answer_lifespan(receive, send)
            return
        await self.app(scope, receive, send)

    def _owns(self, path: str) -> bool:
        # The gateway's path rule (docs/security.md#one-canonical-path): '/V1/x', '//v1/x' and
        # '/a/../v1/x' go to the gateway too, which refuses them, so that neither app reads
        # them differently from the other.
        for candidate in (path, canonical_path(path)):
            lower = candidate.lower()
            if lower == self.prefix or lower.startswith(self.prefix_slash):
                return True
        return False


def mount(
    application: ASGIApp | None = None,
    *,
    prefix: str = "/v1",
    handle_lifespan: bool = True,
    gateway_app: ASGIApp | None = None,
    **gateway_options: Any,
) -> PrefixDispatcher:
    """Serve ``prefix`` through the akgate stack in front of ``application`` (Django's ASGI app).

    ``application`` defaults to ``django.core.asgi.get_asgi_application()``. The stack is
    ``akgate.gateway(application, **gateway_options)`` unless a pre-built ``gateway_app`` is given
    (for instance a stack around a different provider).
    """
    if application is None:
        from django.core.asgi import get_asgi_application

        application = get_asgi_application()
    if gateway_app is None:
        from akgate.stack import gateway

        gateway_app = gateway(application, **gateway_options)
    elif gateway_options:
        raise ValueError("pass either gateway_app or gateway options, not both")
    return PrefixDispatcher(
        application, gateway_app, prefix=prefix, handle_lifespan=handle_lifespan
    )


def get_identity(request: HttpRequest) -> Identity | None:
    """The caller's :class:`~akgate.Identity` in a Django view (None outside the gateway)."""
    scope = getattr(request, "scope", None)
    if scope is None:
        return None
    ctx = get_context(scope)
    return ctx.identity if ctx is not None else None
