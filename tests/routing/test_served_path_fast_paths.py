"""Fast paths of routing's fixed per-request work, checked against the rules they shortcut: the
final chat chunk spliced from the provider's usage chunk, the start's headers kept when there is
no ``Content-Length`` to drop, and an in-process app's JSON answer taken as its object."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import from_json, to_json

import akgate.routing._metadata as metadata_module
from akgate._asgi import JSON_ANSWER
from akgate.providers import DemoModel
from akgate.routing import Catalog, Routing
from akgate.routing._attempt import _without_content_length
from akgate.routing._metadata import ChatStreamRewriter
from tests.support.asgi import drive, http_scope

METADATA = {"provider": "p", "cost": {"usd": 1.5e-05}, "ttft_ms": 1.0}


def _final_chunk_by_the_rule(usage_chunk: dict[str, Any], usage: Any) -> dict[str, Any]:
    """What ``_finish`` builds from the usage chunk: re-encoded with ``choices``, ``usage`` and
    ``routing_metadata`` set."""
    final = dict(usage_chunk)
    final["choices"] = []
    final["usage"] = usage
    final["routing_metadata"] = METADATA
    return final


def _events(out: bytes) -> list[bytes]:
    return [block for block in out.split(b"\n\n") if block]


def _rewrite(chunks: list[bytes]) -> bytes:
    rewriter = ChatStreamRewriter(lambda usage: dict(METADATA), "p")
    out = b"".join(rewriter.feed(chunk) for chunk in chunks)
    return out + rewriter.close()


_usage = st.fixed_dictionaries(
    {"prompt_tokens": st.integers(0, 10**6), "completion_tokens": st.integers(0, 10**6)},
    optional={"total_tokens": st.integers(0, 10**6), "note": st.text(max_size=8)},
)
_head = st.fixed_dictionaries(
    {"id": st.text(max_size=12), "object": st.just("chat.completion.chunk")},
    optional={"created": st.integers(0, 2**40), "model": st.text(max_size=12)},
)


@settings(max_examples=200, deadline=None)
@given(
    _head,
    _usage,
    st.booleans(),
    st.sampled_from(["compact", "spaced", "ascii"]),
    st.booleans(),
)
def test_the_spliced_final_chunk_says_what_the_reencoded_one_says(
    head: dict[str, Any], usage: dict[str, Any], usage_first: bool, style: str, one_chunk: bool
) -> None:
    usage_chunk = (
        {**head, "usage": usage, "choices": []}
        if usage_first
        else {
            **head,
            "choices": [],
            "usage": usage,
        }
    )
    if style == "compact":
        text = to_json(usage_chunk)
    elif style == "spaced":
        text = json.dumps(usage_chunk, indent=None, separators=(", ", ": ")).encode()
    else:
        text = json.dumps(usage_chunk, ensure_ascii=True).encode()
    first = b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
    tail = b"data: " + text + b"\n\ndata: [DONE]\n\n"
    out = _rewrite([first + tail] if one_chunk else [first, tail])
    events = _events(out)
    assert events[-1] == b"data: [DONE]"
    final = from_json(events[-2][len(b"data: ") :])
    assert final == _final_chunk_by_the_rule(usage_chunk, usage)
    assert list(final) == list(_final_chunk_by_the_rule(usage_chunk, usage))
    # The provider's own bytes, as they came, with the metadata spliced before the brace.
    assert events[-2].startswith(b"data: " + text[:-1] + b',"routing_metadata":')


def test_the_provider_usage_chunk_keeps_its_bytes() -> None:
    # Spaces after the colons: re-encoding would drop them (the splice keeps them).
    text = (
        b'{"id": "c1", "object": "chat.completion.chunk", "choices": [], '
        b'"usage": {"prompt_tokens": 3}}'
    )
    out = _rewrite([b"data: " + text + b"\n\n", b"data: [DONE]\n\n"])
    assert out == (
        b"data: " + text[:-1] + b',"routing_metadata":' + to_json(METADATA) + b"}\n\n"
        b"data: [DONE]\n\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        # No ``choices``, or null: the final chunk gains "choices": [].
        b'{"id":"c1","usage":{"prompt_tokens":3}}',
        b'{"id":"c1","choices":null,"usage":{"prompt_tokens":3}}',
        # Its own routing_metadata is replaced, not repeated.
        b'{"id":"c1","choices":[],"usage":{"prompt_tokens":3},"routing_metadata":{"x":1}}',
    ],
)
def test_chunks_the_splice_cannot_make_are_reencoded(text: bytes) -> None:
    out = _rewrite([b"data: " + text + b"\n\n", b"data: [DONE]\n\n"])
    final = from_json(_events(out)[-2][len(b"data: ") :])
    assert final == _final_chunk_by_the_rule(from_json(text), from_json(text)["usage"])


def test_a_named_usage_event_is_reencoded() -> None:
    # Only a one-line ``data:`` event is spliced; the final chunk is a plain ``data:`` event.
    text = b'{"id": "c1", "choices": [], "usage": {"prompt_tokens": 3}}'
    out = _rewrite([b"event: chunk\ndata: " + text + b"\n\n", b"data: [DONE]\n\n"])
    final = _events(out)[-2]
    assert final.startswith(b'data: {"id":"c1"')
    parsed = from_json(final[len(b"data: ") :])
    assert parsed == _final_chunk_by_the_rule(from_json(text), {"prompt_tokens": 3})


def test_a_later_usage_in_a_content_chunk_is_reported_on_the_final_chunk() -> None:
    # The usage chunk came first, a content chunk then carried another usage: the final chunk
    # reports the last one (not the usage chunk's own bytes).
    chunks = [
        b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":1}}\n\n',
        b'data: {"id":"c1","choices":[{"index":0}],"usage":{"prompt_tokens":2}}\n\n',
        b"data: [DONE]\n\n",
    ]
    final = from_json(_events(_rewrite(chunks))[-2][len(b"data: ") :])
    assert final["usage"] == {"prompt_tokens": 2}


_names = st.sampled_from(
    [b"content-length", b"Content-Length", b"CONTENT-LENGTH", b"content-type", b"x-a", b"etag"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_names, st.binary(max_size=3)), max_size=6), st.booleans())
def test_dropping_content_length_matches_the_lowering_rule(
    headers: list[tuple[bytes, bytes]], copy: bool
) -> None:
    original = list(headers)
    kept = _without_content_length(headers, copy=copy)
    assert kept == [(k, v) for k, v in original if k.lower() != b"content-length"]
    assert headers == original  # never changed in place
    if copy:
        assert kept is not headers


def test_headers_without_content_length_are_not_copied() -> None:
    headers = [(b"content-type", b"text/event-stream"), (b"x-a", b"1")]
    assert _without_content_length(headers) is headers


# -- an in-process app's JSON answer ------------------------------------------------------------

CHAT = {"model": "demo", "messages": [{"role": "user", "content": "Say something nice."}]}


class _CopiedBody:
    """Passes the demo's answer on as an equal but different bytes object (so routing parses)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def copying(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": bytes(bytearray(message["body"]))}
            await send(message)

        await self.app(scope, receive, copying)


async def _post(app: Any, payload: dict[str, Any], **extra: Any) -> tuple[int, bytes]:
    body = json.dumps(payload).encode()
    sent = await drive(app, http_scope(**extra), body)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def _comparable(body: bytes) -> dict[str, Any]:
    answer = json.loads(body)
    answer.pop("id")
    answer.pop("created")
    meta = answer["routing_metadata"]
    meta.pop("ttft_ms", None)
    meta.pop("throughput_tps", None)
    return answer


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=40))
async def test_the_demo_answer_object_gives_what_parsing_its_bytes_gives(prompt: str) -> None:
    payload = {"model": "demo", "messages": [{"role": "user", "content": prompt}]}
    direct = Routing(DemoModel(), catalog=Catalog.demo("app"))
    parsed = Routing(_CopiedBody(DemoModel()), catalog=Catalog.demo("app"))
    status_a, body_a = await _post(direct, payload)
    status_b, body_b = await _post(parsed, payload)
    assert status_a == status_b == 200
    assert _comparable(body_a) == _comparable(body_b)


async def test_the_demo_answer_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = metadata_module.from_json

    def counting(data: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(data)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(metadata_module, "from_json", counting)
    routing = Routing(DemoModel(), catalog=Catalog.demo("app"))
    status, body = await _post(routing, CHAT)
    assert status == 200
    assert "routing_metadata" in json.loads(body)
    assert calls == []
    # A body that is not the object's own bytes is parsed, as before.
    copied = Routing(_CopiedBody(DemoModel()), catalog=Catalog.demo("app"))
    assert (await _post(copied, CHAT))[0] == 200
    assert len(calls) == 1


async def test_the_demo_leaves_nothing_in_the_state_after_its_answer() -> None:
    from akgate.context import RequestContext

    ctx = RequestContext()
    routing = Routing(DemoModel(), catalog=Catalog.demo("app"))
    status, _ = await _post(routing, CHAT, akgate=ctx)
    assert status == 200
    assert JSON_ANSWER not in ctx.state


_type_names = st.sampled_from([b"content-type", b"Content-Type", b"CONTENT-TYPE", b"x-type"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_type_names, st.sampled_from([b"", b"a/json", b"text/event-stream"]))))
def test_the_content_type_read_matches_find_header(headers: list[tuple[bytes, bytes]]) -> None:
    from akgate._asgi import find_header
    from akgate.routing._attempt import _content_type

    assert _content_type(headers) == (find_header(headers, b"content-type") or b"")


_counts = st.one_of(
    st.integers(-3, 10**7), st.booleans(), st.none(), st.floats(0, 10), st.text(max_size=2)
)
_usages = st.one_of(
    st.fixed_dictionaries(
        {"prompt_tokens": _counts, "completion_tokens": _counts},
        optional={
            "total_tokens": _counts,
            "prompt_tokens_details": st.one_of(
                st.none(), st.fixed_dictionaries({"cached_tokens": _counts})
            ),
        },
    ),
    st.fixed_dictionaries({"input_tokens": _counts, "output_tokens": _counts}),
    st.none(),
    st.integers(),
)
_prices = st.one_of(st.floats(0, 100), st.integers(0, 100).map(float))


@settings(max_examples=400, deadline=None)
@given(_usages, _prices, _prices, st.one_of(st.none(), _prices))
def test_the_plain_chat_cost_is_what_counting_and_pricing_give(
    usage: Any, input_price: float, output_price: float, cached_price: float | None
) -> None:
    from akgate.routing._catalog import Offering
    from akgate.routing._cost import compute_cost, plain_chat_cost, token_counts

    offering = Offering(
        name="p",
        model_id="m",
        input_price=input_price,
        output_price=output_price,
        cached_input_price=cached_price,
    )
    plain = plain_chat_cost(usage, offering)
    tokens = token_counts(usage)
    if plain is not None:
        assert tokens is not None
        assert plain == (tokens.input, tokens.output, compute_cost(tokens, offering))
        assert repr(plain[2]) == repr(compute_cost(tokens, offering))  # the same floats, exactly


@pytest.mark.parametrize(
    "details", [None, {"cached_tokens": 0}, {"cached_tokens": None}, {"cached_tokens": 7}, {}]
)
def test_the_usual_chat_usage_takes_the_one_call_path(details: Any) -> None:
    from akgate.routing._catalog import Offering
    from akgate.routing._cost import compute_cost, plain_chat_cost, token_counts

    offering = Offering(
        name="p", model_id="m", input_price=0.5, output_price=1.5, cached_input_price=0.05
    )
    usage: dict[str, Any] = {"prompt_tokens": 17, "completion_tokens": 27, "total_tokens": 44}
    if details is not None:
        usage["prompt_tokens_details"] = details
    tokens = token_counts(usage)
    assert tokens is not None
    assert plain_chat_cost(usage, offering) == (17, 27, compute_cost(tokens, offering))


# -- routing_metadata spliced into a JSON answer ---------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "routing_metadata", "usage"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["id", "usage", "routing_metadata", "x"]), _json_values),
    st.sampled_from([b"", b" ", b"\n", b"\r\n\t "]),
    st.booleans(),
    st.booleans(),
)
def test_the_spliced_json_answer_says_what_the_reencoded_one_says(
    obj: dict[str, Any], trailing: bytes, spaced: bool, parsed: bool
) -> None:
    # The splice is taken when the object has no routing_metadata key of its own (its text may
    # appear nested or inside a string): the answer then reads as the object with the key added.
    body = json.dumps(obj, indent=1 if spaced else None).encode() + trailing
    out = metadata_module.inject_json(
        body, lambda usage: METADATA, json.loads(body) if parsed else None
    )
    assert out is not None
    assert json.loads(out) == {**obj, "routing_metadata": METADATA}
    if "routing_metadata" in obj or not obj:
        assert out == to_json({**obj, "routing_metadata": METADATA})  # re-encoded
    else:
        assert out.startswith(body.rstrip()[:-1])  # the answer's own bytes, then the key


# -- content part types read in one pass ----------------------------------------------------------


def _part_types_by_the_rule(items: Any) -> set[str]:
    """The rule ``_part_types`` follows: every mapping's ``content`` list, else its ``output``
    list; the ``type`` of each mapping part that is a string."""
    from collections.abc import Mapping

    found: set[str] = set()
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        parts = item.get("content")
        if not isinstance(parts, list):
            parts = item.get("output")
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, Mapping) and isinstance(part.get("type"), str):
                found.add(part["type"])
    return found


_part = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "file", 3])}),
).flatmap(
    lambda p: st.sampled_from([p, MappingProxyType(p)]) if isinstance(p, dict) else st.just(p)
)
_item = st.one_of(
    st.text(max_size=3),
    st.dictionaries(
        st.sampled_from(["role", "content", "output"]),
        st.one_of(st.text(max_size=5), st.lists(_part, max_size=3), st.none()),
    ).flatmap(lambda d: st.sampled_from([d, MappingProxyType(d)])),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(_item, max_size=6), st.none(), st.text(max_size=3)))
def test_part_types_read_what_the_rule_reads(items: Any) -> None:
    # Dicts are answered without the Mapping check; other mappings still count.
    from akgate.routing._strategies import _part_types

    assert _part_types(items) == _part_types_by_the_rule(items)


# -- a plain request's needs, from the validation layer's finding ---------------------------------

_plain_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "developer", "user", "assistant"]),
        "content": st.text(max_size=5),
    }
)
_plain_options = st.fixed_dictionaries(
    {},
    optional={
        "stream": st.booleans(),
        "temperature": st.sampled_from([0, 0.5, 2]),
        "top_p": st.sampled_from([0, 0.3, 1]),
        "max_tokens": st.integers(1, 9),
        "max_completion_tokens": st.integers(1, 9),
        "max_output_tokens": st.integers(16, 99),
        "user": st.text(max_size=3),
        "instructions": st.text(max_size=3),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["chat_completions", "responses"]),
    st.lists(_plain_message, min_size=1, max_size=4),
    st.booleans(),
    _plain_options,
)
def test_a_plain_request_needs_what_reading_it_finds(
    endpoint: str, messages: list[dict[str, str]], as_string: bool, options: dict[str, Any]
) -> None:
    # Every request the plain-request check accepts: plain_needs says what read_needs says.
    from akgate.routing._strategies import plain_needs, read_needs
    from akgate.validation._simple import is_simple_chat, is_simple_responses

    if endpoint == "chat_completions":
        payload: dict[str, Any] = {"model": "demo", "messages": messages, **options}
        plain = is_simple_chat(payload)
    else:
        items: Any = messages[0]["content"] if as_string else messages
        payload = {"model": "demo", "input": items, **options}
        plain = is_simple_responses(payload)
    if plain:
        assert plain_needs(payload) == read_needs(payload, endpoint)  # type: ignore[arg-type]


def _gateway_with(between: Any = None) -> Any:
    """Validation then routing over the demo, with ``between`` (a wrapper) between them."""
    from akgate.validation import RequestValidation

    routing: Any = Routing(DemoModel(), catalog=Catalog.demo("app"))
    return RequestValidation(between(routing) if between else routing)


async def test_routing_reads_a_validated_plain_request_without_its_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import akgate.routing._middleware as routing_middleware

    read: list[Any] = []
    real = routing_middleware.read_needs
    monkeypatch.setattr(routing_middleware, "read_needs", lambda p, e: read.append(p) or real(p, e))
    assert (await _post(_gateway_with(), CHAT))[0] == 200
    assert read == []  # the validation layer found it plain
    tools = {**CHAT, "tools": [{"type": "function", "function": {"name": "f"}}]}
    assert (await _post(_gateway_with(), tools))[0] == 200
    assert len(read) == 1  # not plain: read as before
    assert (await _post(Routing(DemoModel(), catalog=Catalog.demo("app")), CHAT))[0] == 200
    assert len(read) == 2  # no validation layer: read as before

    def replacing(app: Any) -> Any:
        # A layer that rewrites the request: the payload routing sees is not the one checked.
        async def layer(scope: Any, receive: Any, send: Any) -> None:
            ctx = scope["akgate"]
            ctx.payload = {**ctx.payload, "tools": tools["tools"]}
            await app(scope, receive, send)

        return layer

    assert (await _post(_gateway_with(replacing), CHAT))[0] == 200
    assert len(read) == 3
    assert read[-1]["tools"] == tools["tools"]


async def test_a_model_named_by_its_alias_takes_the_one_route_plan() -> None:
    # The one-route shortcut is keyed by every name of the model: an alias plans as its id does,
    # and both plan what ranking plans.
    from akgate.context import RequestContext
    from akgate.routing._attempt import Plan

    catalog = Catalog.from_dict(
        {
            "models": {
                "solo": {
                    "aliases": ["solo-latest"],
                    "providers": [{"name": "app", "input_price": 1, "output_price": 2}],
                }
            }
        }
    )
    routing = Routing(DemoModel(), catalog=catalog, app_provider="app")
    plans = []
    for name in ("solo", "solo-latest"):
        payload = {"model": name, "messages": [{"role": "user", "content": "hi"}]}
        found = routing._plan_or_ranking(payload, RequestContext(), "chat_completions")
        assert isinstance(found, Plan)
        ranked = await routing._ranked_plan(*(found.payload, RequestContext(), "chat_completions",
            found.routing, None, name, catalog.get(name), found.needs))  # fmt: skip
        assert found.routes == ranked.routes
        plans.append(found.routes)
    assert plans[0] == plans[1]


def test_a_test_key_takes_the_one_route_plan_when_a_test_provider_serves_it() -> None:
    # akgate serve's demo key is a test key: its usual request is planned without filtering
    # and ranking when the one route's provider is a test provider (ranking would keep it),
    # and ranked (to be refused) when it is not.
    from akgate.context import Identity, RequestContext
    from akgate.routing import Provider
    from akgate.routing._attempt import Plan

    catalog = Catalog.from_dict(
        {"models": {"solo": {"providers": [{"name": "app", "input_price": 1, "output_price": 2}]}}}
    )
    payload = {"model": "solo", "messages": [{"role": "user", "content": "hi"}]}
    for test_provider in (True, False):
        routing = Routing(
            DemoModel(), catalog=catalog, app_provider=Provider("app", test=test_provider)
        )
        ctx = RequestContext(identity=Identity(key_id="ak_test_x", environment="test"))
        found = routing._plan_or_ranking(payload, ctx, "chat_completions")
        assert isinstance(found, Plan) is test_provider
