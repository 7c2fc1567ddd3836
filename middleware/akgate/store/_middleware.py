"""``StatefulResponses``: ``store``, ``previous_response_id`` and item references over a stateless
``/v1/responses``, plus ``GET``/``DELETE /v1/responses/{id}``, ``.../input_items``,
``.../cancel`` and background runs.

It sits outside the layers that validate and translate the request: it turns a stateful request
into the stateless one they already serve (the chain's items and resolved references inline;
``store``, ``previous_response_id`` and ``background`` removed), then reads their answer back
(:class:`~akgate.store._capture.ResponseCapture`) to give it the turn's id and store it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

from pydantic_core import to_json

from akgate._asgi import (
    DEFAULT_MAX_BODY_SIZE,
    ClientDisconnected,
    dumps,
    read_request_json,
    replay_receive,
    route_path,
    scope_with_body,
    send_json,
)
from akgate._endpoints import ENDPOINTS, Resolution, gateway_scope, send_refused
from akgate._options import check_body_size, check_path
from akgate._types import ASGIApp, Receive, Scope, Send
from akgate.adapter._answer import ANSWER_SLOT, AnswerSlot
from akgate.context import SCOPE_KEY, RequestContext, request_context
from akgate.errors import GatewayError, send_error

from ._background import BackgroundRuns
from ._base import ResponseStore, ResponseStoreUnavailable, ResponseTooLarge, StoredResponse
from ._capture import ResponseCapture, Turn
from ._conversations import Conversations
from ._encrypted import has_blobs, open_blobs, sealer, wants_sealing
from ._errors import response_not_found, store_unavailable
from ._history import expand_chain, new_stored_id, own_input_items, references
from ._open import open_response_store
from ._reasoning import ReasoningKeyRing

__all__ = ["StatefulResponses"]

logger = logging.getLogger("akgate.store")

#: Request fields this layer consumes: the inner layers serve the stateless request.
_STATEFUL_FIELDS: Final = ("store", "previous_response_id", "background", "conversation")
#: Paths below ``/v1/responses/`` that are other endpoints, not response ids.
_OTHER_ENDPOINTS: Final = frozenset({"compact", "input_tokens"})
_LIVE: Final = frozenset({"queued", "in_progress"})


class StatefulResponses:
    """Serve the stateful parts of the Responses API over a stateless ``/v1/responses``.

    Options (keyword-only):

    * ``store``: a :class:`~akgate.store.ResponseStore` or a URL (``memory://``,
      ``sqlite:///path``, ``redis://host:port/0``).
    * ``default_store``: what an omitted ``store`` means (``True``, as in OpenAI's API).
    * ``path``: the Responses path (below ``root_path``); ``conversations_path`` the
      Conversations API's (``/v1/conversations``).
    * ``max_body_size``: request body cap in bytes (413 above it).
    * ``lease_seconds``: how long a background run's worker may go silent before the run reads
      as ``failed`` (it renews the lease every third of it).
    * ``poll_interval``: how often a stream follower in another worker looks for new events.
    * ``reasoning_keys``: the key ring for ``include: ["reasoning.encrypted_content"]``, as a
      :class:`~akgate.store.ReasoningKeyRing`, ``kid:base64url-key[,...]`` or a function
      returning that string, called on first use (default
      ``$AKGATE_REASONING_KEYS``; without one, the include is refused with a 400).
    * ``strict_encrypted_content``: answer 400 ``invalid_encrypted_content`` for a replayed blob
      that cannot be used, instead of dropping it and reporting it in
      ``input_transformations``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: ResponseStore | str,
        default_store: bool = True,
        path: str = "/v1/responses",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        lease_seconds: float = 30.0,
        poll_interval: float = 0.1,
        reasoning_keys: ReasoningKeyRing | str | Callable[[], str] | None = None,
        strict_encrypted_content: bool = False,
        conversations_path: str = "/v1/conversations",
    ) -> None:
        check_path("path", path)
        check_body_size(max_body_size)
        if lease_seconds <= 0 or poll_interval <= 0:
            raise ValueError("lease_seconds and poll_interval must be positive")
        self.app = app
        self.store: ResponseStore = open_response_store(store) if isinstance(store, str) else store
        self.owns_store = isinstance(store, str)
        self.default_store = default_store
        self.path = path
        self.max_body_size = max_body_size
        self.runs = BackgroundRuns(self, lease_seconds=lease_seconds, poll_interval=poll_interval)
        self.conversations = Conversations(self)
        self.conversations_path = conversations_path
        if isinstance(reasoning_keys, str):
            reasoning_keys = ReasoningKeyRing.parse(reasoning_keys)
        #: Made on first use when given as a function (``akgate serve`` keeps its ring in a
        #: file it creates only when a request needs it).
        self._reasoning_source = reasoning_keys if callable(reasoning_keys) else None
        self.reasoning_keys: ReasoningKeyRing | None = (
            None if callable(reasoning_keys) else reasoning_keys or ReasoningKeyRing.from_env()
        )
        self.strict_encrypted_content = strict_encrypted_content
        #: The endpoint-table rows (by name) whose one path is none of this layer's: their
        #: requests pass through whatever their method (see ``__call__``).
        self._foreign_endpoints = frozenset(
            spec.name
            for spec in ENDPOINTS
            if "{" not in spec.path and not self._serves_path(spec.path)
        )

    def __repr__(self) -> str:
        return f"StatefulResponses({self.store!r})"

    def _serves_path(self, path: str) -> bool:
        """Whether a request for the route path ``path`` may be one this layer answers."""
        own = (self.path, self.conversations_path)
        return path in own or path.startswith(tuple(p + "/" for p in own))

    async def aclose(self) -> None:
        """Stop this process's background runs; close the store if it was made from a URL."""
        await self.runs.aclose()
        if self.owns_store:
            await self.store.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = scope.get(SCOPE_KEY)
        route = ctx.route if isinstance(ctx, RequestContext) else None
        if route is not None and route[0] == scope["path"]:
            # An outer layer resolved this very path (gateway_scope's cache): a request for an
            # endpoint this layer never serves (a chat completion) goes on at once.
            known: Resolution | None = route[1]  # type: ignore[assignment]
            if (
                known is not None
                and known.spec is not None
                and not known.refused
                and known.spec.name in self._foreign_endpoints
            ):
                await self.app(scope, receive, send)
                return
        scope, resolution = gateway_scope(scope)  # the canonical path, as every layer sees it
        if resolution is not None and resolution.refused:
            await send_refused(scope, send, resolution)
            return
        path = route_path(scope)
        method = scope.get("method", "GET")
        if path == self.path or path == self.path + "/":
            if method == "POST":
                await self.create(scope, receive, send)
                return
        elif path.startswith(self.path + "/"):
            parts = path[len(self.path) + 1 :].split("/")
            if parts[0] and parts[0] not in _OTHER_ENDPOINTS and len(parts) <= 2:
                await self.resource(scope, receive, send, parts)
                return
        elif path == self.conversations_path or path.startswith(self.conversations_path + "/"):
            rest = path[len(self.conversations_path) + 1 :]
            scope, send, ctx = request_context(scope, send)
            parts = rest.split("/") if rest else []
            await self.conversations.handle(scope, receive, send, ctx, parts)
            return
        await self.app(scope, receive, send)

    # --- POST /v1/responses -------------------------------------------------------------

    async def create(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope, send, ctx = request_context(scope, send)
        try:
            payload = await read_request_json(scope, receive, ctx, max_size=self.max_body_size)
            turn, inner_payload = await self.plan(payload, ctx)
        except GatewayError as err:
            await send_error(send, err)
            return
        except ResponseStoreUnavailable:
            await send_error(send, store_unavailable())
            return
        except ClientDisconnected:
            return
        if turn is None:
            await self.app(scope, receive, send)  # nothing stateful: untouched, store not used
            return
        # Nothing to take out or put in: the client's own bytes are the inner request's.
        unchanged = len(inner_payload) == len(payload) and inner_payload.get(
            "input"
        ) is payload.get("input")
        body = ctx.body if unchanged and ctx.body is not None else dumps(inner_payload)
        child = ctx.child(inner_payload, body, "responses")
        child.endpoint = ctx.endpoint
        inner_scope = {**scope_with_body(scope, body), SCOPE_KEY: child}
        if turn.background:
            await self.runs.start(turn, inner_scope, child, payload, receive, send)
            return
        answer = None
        if (
            not turn.stream
            and turn.seal is None
            and not turn.input_transformations
            and turn.conversation_id is None
        ):
            # A turn that needs only its id and flags: the adapter patches and hands over its
            # answer (``akgate.adapter._answer``).
            answer = child.state[ANSWER_SLOT] = AnswerSlot(turn.patch)
        capture = ResponseCapture(
            turn,
            send,
            lambda response, encoded: self.save_final(turn, response, encoded),
            answer=answer,
        )
        try:
            await self.app(inner_scope, replay_receive(body, ctx.raw_receive or receive), capture)
        finally:
            if answer is not None:
                child.state.pop(ANSWER_SLOT, None)  # its turn need not outlive the request

    async def plan(
        self, payload: dict[str, Any], ctx: RequestContext
    ) -> tuple[Turn | None, dict[str, Any]]:
        """The turn and the stateless request for the inner layers (``None``: pass as is)."""
        store = payload.get("store")
        if store is None:
            store = self.default_store
        elif not isinstance(store, bool):
            raise GatewayError("invalid_parameter_value", "'store' must be a boolean.", "store")
        background = payload.get("background")
        if background is not None and not isinstance(background, bool):
            raise GatewayError(
                "invalid_parameter_value", "'background' must be a boolean.", "background"
            )
        previous = payload.get("previous_response_id")
        if previous is not None and (not isinstance(previous, str) or not previous):
            raise GatewayError(
                "invalid_parameter_value",
                "'previous_response_id' must be a response id string.",
                "previous_response_id",
            )
        value = payload.get("input")
        refs = references(value) if isinstance(value, list) else []
        seal = wants_sealing(payload)
        blobs = has_blobs(value)
        conversation = payload.get("conversation")
        stateful = previous is not None or refs or background or seal or blobs
        if not store and not stateful and conversation is None:
            return None, payload
        if (seal or blobs) and self._reasoning_source is not None:
            self.reasoning_keys = ReasoningKeyRing.parse(self._reasoning_source())
            self._reasoning_source = None
        if seal and self.reasoning_keys is None:
            raise GatewayError(
                "invalid_parameter_value",
                "'reasoning.encrypted_content' needs a server key ring: set "
                "AKGATE_REASONING_KEYS (akgate serve keeps one for you).",
                "include",
            )
        if background and not store:
            raise GatewayError(
                "invalid_parameter_value",
                "'background: true' needs 'store' (stored responses are how a background run "
                "is read back).",
                "background",
            )
        if payload.get("conversation") is not None and previous is not None:
            raise GatewayError(
                "invalid_parameter_value",
                "'previous_response_id' and 'conversation' cannot be used together.",
                "previous_response_id",
            )
        workspace = workspace_of(ctx)
        chain: list[str] = []
        history: list[dict[str, Any]] = []
        conversation_id: str | None = None
        if previous is not None:
            chain, history = await expand_chain(self.store, workspace, previous)
        elif conversation is not None:
            conversation_id, history = await self.conversations.history(workspace, conversation)
        model = payload.get("model") if isinstance(payload.get("model"), str) else None
        removed: list[dict[str, Any]] = []
        if blobs and isinstance(value, list):
            value, removed = open_blobs(
                value,
                self.reasoning_keys,
                workspace=workspace,
                model=model,
                strict=self.strict_encrypted_content,
            )
        resolved = await self.store.find_items(workspace, refs) if refs else {}
        stored_input, inner_input, dropped = own_input_items(value, resolved)
        for item_id in dropped:
            ctx.warn(
                "input_transformation",
                f"reasoning:{item_id}",
                f"The reasoning item {item_id} is not stored; it was not forwarded.",
            )
        inner = {k: v for k, v in payload.items() if k not in _STATEFUL_FIELDS}
        if history or refs or dropped or blobs:
            inner["input"] = [*history, *inner_input]
        turn = Turn(
            id=new_stored_id("resp_"),
            workspace=workspace,
            store=store,
            background=bool(background),
            stream=payload.get("stream") is True,
            previous_response_id=previous,
            chain=chain,
            input_items=stored_input,
            created_at=time.time(),
            input_transformations=removed,
            input_offset=len(history),
            conversation_id=conversation_id,
        )
        if seal and self.reasoning_keys is not None:
            turn.seal = sealer(self.reasoning_keys, workspace=workspace, model=model or "")
        return turn, inner

    def record_for(
        self, turn: Turn, response: dict[str, Any], encoded: bytes | None = None
    ) -> StoredResponse:
        return StoredResponse(
            id=turn.id,
            workspace=turn.workspace,
            response=response,
            input_items=turn.input_items,
            chain=turn.chain,
            created_at=turn.created_at,
            expires_at=turn.created_at + self.store.ttl,
            background=turn.background,
            stream=turn.stream and turn.background,
            response_json=encoded,
        )

    async def save_final(self, turn: Turn, response: dict[str, Any], encoded: bytes) -> bytes:
        """Store a finished turn (``encoded`` is its JSON) and return the JSON to forward; a
        failed write still lets the answer out, saying so."""
        await self.extend_conversation(turn, response)
        if not turn.store:
            return encoded
        try:
            await self.store.save(self.record_for(turn, response, encoded))
            return encoded
        except (ResponseStoreUnavailable, ResponseTooLarge) as exc:
            logger.warning("response %s was not stored (%s)", turn.id, type(exc).__name__)
            response["store"] = False
            metadata = response.get("routing_metadata")
            if isinstance(metadata, dict):
                warnings = metadata.setdefault("warnings", [])
                if isinstance(warnings, list):
                    warnings.append(
                        {
                            "type": "store",
                            "code": "response_not_stored",
                            "message": "The response could not be stored; it cannot be "
                            "retrieved or continued with previous_response_id.",
                        }
                    )
            return to_json(response)

    async def extend_conversation(self, turn: Turn, response: dict[str, Any]) -> None:
        """Append a ``completed``/``incomplete`` turn's items to its conversation."""
        if turn.conversation_id is None or response.get("status") not in (
            "completed",
            "incomplete",
        ):
            return
        output = response.get("output")
        items = [*turn.input_items, *(output if isinstance(output, list) else ())]
        try:
            await self.conversations.append(turn.workspace, turn.conversation_id, items)
        except (ResponseStoreUnavailable, ResponseTooLarge) as exc:
            logger.warning(
                "conversation %s not extended (%s)", turn.conversation_id, type(exc).__name__
            )

    # --- /v1/responses/{id}[/input_items|/cancel] ---------------------------------------

    async def resource(self, scope: Scope, receive: Receive, send: Send, parts: list[str]) -> None:
        scope, send, ctx = request_context(scope, send)
        response_id = parts[0]
        sub = parts[1] if len(parts) > 1 else None
        method = scope.get("method", "GET")
        if method == "HEAD":
            method = "GET"  # the server sends no body for HEAD
        allowed = {None: "GET, DELETE", "input_items": "GET", "cancel": "POST"}.get(sub)
        if allowed is None:
            await send_error(send, GatewayError("resource_not_found", "Unknown endpoint."))
            return
        if method not in allowed.split(", "):
            await send_error(
                send,
                GatewayError("method_not_allowed", f"Use {allowed} on this endpoint."),
                headers=[(b"allow", allowed.encode())],
            )
            return
        query = _query(scope)
        workspace = workspace_of(ctx)
        try:
            if sub is None and method == "DELETE":
                record = await self.runs.load(workspace, response_id)
                if record is None:
                    raise response_not_found(response_id)
                await self.runs.stop_for_delete(workspace, response_id)
                if not await self.store.delete(workspace, response_id):
                    raise response_not_found(response_id)
                if record.background and record.response.get("status") in _LIVE:
                    # Running in another worker: the flag stops it, and it finds no record.
                    await self.store.request_cancel(response_id)
                await send_json(
                    send, 200, {"id": response_id, "object": "response", "deleted": True}
                )
                return
            record = await self.runs.load(workspace, response_id)
            if record is None:
                raise response_not_found(response_id)
            if sub is None:
                if query.get("stream") == "true":
                    await self.runs.stream(
                        record, _int_param(query, "starting_after", -1), receive, send
                    )
                    return
                await send_json(send, 200, record.response)
            elif sub == "input_items":
                await send_json(send, 200, _input_items_page(record, query))
            else:
                await send_json(send, 200, await self.runs.cancel(record))
        except GatewayError as err:
            await send_error(send, err)
        except ResponseStoreUnavailable:
            await send_error(send, store_unavailable())


def workspace_of(ctx: RequestContext) -> str:
    """The workspace that owns what this request stores ("" without an auth layer)."""
    return ctx.identity.workspace_id if ctx.identity is not None else ""


def _query(scope: Scope) -> dict[str, str]:
    from urllib.parse import parse_qsl

    raw = scope.get("query_string", b"")
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True)) if raw else {}


def _int_param(query: dict[str, str], name: str, default: int) -> int:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise GatewayError(
            "invalid_parameter_value", f"'{name}' must be an integer.", name
        ) from None


def _input_items_page(record: StoredResponse, query: dict[str, str]) -> dict[str, Any]:
    return list_page(record.input_items, query)


def list_page(all_items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """One cursor page (``after``, ``limit`` 1-100 default 20, ``order`` default ``desc``)."""
    order = query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise GatewayError("invalid_parameter_value", "'order' must be asc or desc.", "order")
    limit = _int_param(query, "limit", 20)
    if not 1 <= limit <= 100:
        raise GatewayError("invalid_parameter_value", "'limit' must be between 1 and 100.", "limit")
    items = all_items if order == "asc" else all_items[::-1]
    after = query.get("after")
    if after:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }
