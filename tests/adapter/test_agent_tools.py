"""Agent tool types over a chat app: namespace and custom tools, and the hosted-tool policy.

Unit tests for each mapping, and property tests: tool names round-trip through the flattening,
a custom tool's input streams out of arbitrarily fragmented arguments, and the streamed Response
equals the JSON one.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.adapter import AdapterOptions, ResponsesAdapter, chat_to_response, to_chat_request
from akgate.adapter._tools import CustomInputDecoder, ToolMap, ToolRef, custom_input
from akgate.context import RequestContext
from akgate.errors import GatewayError

from .checks import check_response, check_stream
from .scripted import USAGE, call, chunk, completion, json_app, stream_app, tool

CHAT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FN = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
CUSTOM = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch.",
    "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch"'},
}
NAMESPACE = {
    "type": "namespace",
    "name": "crm",
    "description": "Customer records.",
    "tools": [
        {**FN, "name": "lookup", "description": "Find a customer."},
        {"type": "custom", "name": "note"},
    ],
}
TOOLS = [FN, CUSTOM, NAMESPACE, {"type": "web_search", "external_web_access": False}]
LENIENT = AdapterOptions(hosted_tools="lenient")
STRICT = AdapterOptions()


def chat_names(chat: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in chat.get("tools", ())]


# --- request mapping ------------------------------------------------------------------------


def test_namespace_and_custom_tools_become_function_tools() -> None:
    ctx = RequestContext()
    chat = to_chat_request({"model": "m", "input": "hi", "tools": TOOLS}, LENIENT, ctx)
    assert chat_names(chat) == ["lookup", "apply_patch", "crm__lookup", "crm__note"]
    patch = chat["tools"][1]["function"]
    assert patch["parameters"]["properties"]["input"]["type"] == "string"
    assert patch["parameters"]["required"] == ["input"]
    assert 'start: "*** Begin Patch"' in patch["description"]  # the grammar, for the model
    assert patch["description"].startswith("Apply a patch.")
    assert chat["tools"][2]["function"]["description"].startswith("[crm] Customer records.")
    # the hosted tool was dropped (lenient), with one warning naming it
    assert [w["code"] for w in ctx.warnings] == ["tools[3]"]
    assert "web_search" in ctx.warnings[0]["message"]
    assert ctx.warnings[0]["type"] == "unsupported_feature"


def test_hosted_tools_strict_is_a_400_naming_the_tool() -> None:
    with pytest.raises(GatewayError) as info:
        to_chat_request({"model": "m", "input": "hi", "tools": TOOLS}, STRICT)
    assert (info.value.code, info.value.param, info.value.status) == (
        "hosted_tool_not_supported",
        "tools[3]",
        400,
    )


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"type": "web_search_call", "id": "ws_1", "status": "completed"}, "input[1]"),
        ({"type": "tool_search_call", "id": "ts_1", "arguments": {}}, "input[1]"),
    ],
)
def test_hosted_items_follow_the_policy(item: dict[str, Any], param: str) -> None:
    body = {"model": "m", "input": [{"role": "user", "content": "hi"}, item]}
    with pytest.raises(GatewayError) as info:
        to_chat_request(body, STRICT)
    assert (info.value.code, info.value.param) == ("hosted_tool_not_supported", param)
    ctx = RequestContext()
    chat = to_chat_request(body, LENIENT, ctx)
    assert chat["messages"] == [{"role": "user", "content": "hi"}]
    assert [w["code"] for w in ctx.warnings] == [param]


def test_custom_tool_is_never_refused_as_hosted() -> None:
    chat = to_chat_request({"model": "m", "input": "hi", "tools": [CUSTOM]}, STRICT)
    assert chat_names(chat) == ["apply_patch"]


def test_replayed_namespace_and_custom_calls_become_chat_tool_calls() -> None:
    body = {
        "model": "m",
        "tools": TOOLS[:3],
        "input": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "go"},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "lookup",
                "namespace": "crm",
                "arguments": '{"id": 1}',
            },
            {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** x"},
            {"type": "function_call_output", "call_id": "c1", "output": "Ada"},
            {"type": "custom_tool_call_output", "call_id": "c2", "output": "patched"},
        ],
    }
    chat = to_chat_request(body, STRICT)
    assistant = chat["messages"][2]
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == [
        "crm__lookup",
        "apply_patch",
    ]
    assert json.loads(assistant["tool_calls"][1]["function"]["arguments"]) == {"input": "*** x"}
    assert chat["messages"][3:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "Ada"},
        {"role": "tool", "tool_call_id": "c2", "content": "patched"},
    ]


def test_tool_choice_custom_and_namespaced() -> None:
    body = {"model": "m", "input": "hi", "tools": TOOLS[:3]}
    chat = to_chat_request(
        {**body, "tool_choice": {"type": "custom", "name": "apply_patch"}}, STRICT
    )
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "apply_patch"}}
    allowed = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "custom", "name": "apply_patch"}, {"type": "file_search"}],
    }
    ctx = RequestContext()
    chat = to_chat_request({**body, "tool_choice": allowed}, LENIENT, ctx)
    assert chat["tool_choice"]["allowed_tools"]["tools"] == [
        {"type": "function", "function": {"name": "apply_patch"}}
    ]
    assert [w["code"] for w in ctx.warnings] == ["tool_choice.tools[1]"]


def test_client_metadata_and_platform_options_are_never_forwarded() -> None:
    ctx = RequestContext()
    body = {
        "model": "m",
        "input": "hi",
        "client_metadata": {"thread_id": "t"},
        "prompt_cache_options": {"ttl": "30m"},
        "moderation": {"model": "omni-moderation-latest"},
        "background_options": {"completion_window": "soonest"},
    }
    chat = to_chat_request(body, STRICT, ctx)
    for key in ("client_metadata", "prompt_cache_options", "moderation", "background_options"):
        assert key not in chat
    assert [w["code"] for w in ctx.warnings] == ["moderation"]


# --- names round-trip -----------------------------------------------------------------------

name = st.text(alphabet="abcdefgh_-.:/ é", min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    top=st.lists(st.tuples(st.sampled_from(["function", "custom"]), name), max_size=5),
    spaces=st.lists(
        st.tuples(
            name,
            st.lists(
                st.tuples(st.sampled_from(["function", "custom"]), name), min_size=1, max_size=4
            ),
        ),
        max_size=4,
    ),
)
def test_tool_names_round_trip_and_never_collide(
    top: list[tuple[str, str]], spaces: list[tuple[str, list[tuple[str, str]]]]
) -> None:
    tools: list[dict[str, Any]] = [{"type": k, "name": n} for k, n in top]
    tools += [
        {"type": "namespace", "name": ns, "tools": [{"type": k, "name": n} for k, n in members]}
        for ns, members in spaces
    ]
    first = ToolMap.from_tools(tools)
    again = ToolMap.from_tools(json.loads(json.dumps(tools)))
    refs: dict[ToolRef, None] = {}
    for k, n in top:
        refs.setdefault(ToolRef(k, n), None)  # type: ignore[arg-type]
    for ns, members in spaces:
        for k, n in members:
            refs.setdefault(ToolRef(k, n, ns), None)  # type: ignore[arg-type]
    # one chat name per distinct tool (a name declared twice keeps its first declaration)
    names = {}
    for ref in refs:
        if first.kind_of(ref.name, ref.namespace) != ref.kind:
            continue  # the same name declared as both kinds: the first kind wins
        chat = first.chat_name(ref.name, ref.namespace, ref.kind)
        assert chat == again.chat_name(ref.name, ref.namespace, ref.kind)  # deterministic
        assert first.client_ref(chat) == ref  # round trip
        names[chat] = ref
        if ref.namespace is not None:
            assert CHAT_NAME.match(chat), chat
    assert len(names) == len(set(names))
    declared = [n for _, n in top]
    for k, n in top:  # top-level tools keep their own names (when the name is used once)
        if declared.count(n) == 1:
            assert first.chat_name(n, None, k) == n


def test_long_or_unsafe_namespaced_names_are_valid_chat_names() -> None:
    tools = [
        {"type": "namespace", "name": "n" * 60, "tools": [{"type": "function", "name": "f" * 60}]},
        {"type": "namespace", "name": "my.space", "tools": [{"type": "custom", "name": "run"}]},
    ]
    tool_map = ToolMap.from_tools(tools)
    long_name = tool_map.chat_name("f" * 60, "n" * 60)
    assert CHAT_NAME.match(long_name)
    assert tool_map.client_ref(long_name) == ToolRef("function", "f" * 60, "n" * 60)
    assert CHAT_NAME.match(tool_map.chat_name("run", "my.space", "custom"))


def test_a_flattened_name_that_is_taken_gets_another() -> None:
    tools = [
        {"type": "function", "name": "crm__lookup"},
        {"type": "namespace", "name": "crm", "tools": [{"type": "function", "name": "lookup"}]},
    ]
    tool_map = ToolMap.from_tools(tools)
    assert tool_map.chat_name("crm__lookup") == "crm__lookup"
    other = tool_map.chat_name("lookup", "crm")
    assert other != "crm__lookup"
    assert tool_map.client_ref(other) == ToolRef("function", "lookup", "crm")


# --- custom input decoding ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=40),
    cuts=st.lists(st.integers(0, 200), max_size=8),
    ascii_only=st.booleans(),
    spaced=st.booleans(),
)
def test_custom_input_streams_out_of_any_fragmentation(
    text: str, cuts: list[int], ascii_only: bool, spaced: bool
) -> None:
    raw = json.dumps({"input": text}, ensure_ascii=ascii_only)
    if spaced:
        raw = raw.replace('{"input": ', '{ "input" :  ', 1)
    decoder = CustomInputDecoder()
    points = sorted({min(c, len(raw)) for c in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    streamed = "".join(decoder.feed(piece) for piece in pieces)
    assert streamed == text == custom_input(raw)


def test_custom_input_that_is_not_json_is_the_raw_text() -> None:
    decoder = CustomInputDecoder()
    assert decoder.feed("*** Begin Patch") == ""
    assert custom_input("*** Begin Patch") == "*** Begin Patch"
    assert custom_input('{"other": 1}') == '{"other": 1}'


# --- response mapping: JSON and stream agree ----------------------------------------------


def calls_completion(calls: list[tuple[str, str, str]]) -> dict[str, Any]:
    return completion(
        {
            "content": None,
            "tool_calls": [
                {"id": cid, "type": "function", "function": {"name": n, "arguments": a}}
                for cid, n, a in calls
            ],
        },
        "tool_calls",
    )


def test_json_calls_come_back_in_the_clients_shape() -> None:
    request = {"model": "m", "input": "hi", "tools": TOOLS[:3]}
    chat = calls_completion(
        [
            ("c1", "crm__lookup", '{"id": 7}'),
            ("c2", "apply_patch", json.dumps({"input": "*** Begin Patch\n"})),
            ("c3", "crm__note", json.dumps({"input": "called"})),
            ("c4", "lookup", "{}"),
        ]
    )
    response = chat_to_response(chat, request)
    check_response(response)
    out = response["output"]
    assert out[0] == {
        **out[0],
        "type": "function_call",
        "name": "lookup",
        "namespace": "crm",
        "arguments": '{"id": 7}',
    }
    assert out[1]["type"] == "custom_tool_call"
    assert out[1]["id"].startswith("ctc_")
    assert (out[1]["name"], out[1]["input"], out[1]["call_id"]) == (
        "apply_patch",
        "*** Begin Patch\n",
        "c2",
    )
    assert "namespace" not in out[1]
    assert (out[2]["type"], out[2]["name"], out[2]["namespace"], out[2]["input"]) == (
        "custom_tool_call",
        "note",
        "crm",
        "called",
    )
    assert out[3]["name"] == "lookup"
    assert "namespace" not in out[3]


def comparable(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in item.items() if k != "id"} | {"prefix": item["id"].split("_")[0]}
        for item in response["output"]
    ]


@settings(max_examples=60, deadline=None)
@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(["crm__lookup", "apply_patch", "crm__note", "lookup", "unknown"]),
            st.text(max_size=20),
        ),
        min_size=1,
        max_size=3,
    ),
    cuts=st.lists(st.integers(1, 12), max_size=6),
)
async def test_streamed_calls_equal_the_json_answer(
    calls: list[tuple[str, str]], cuts: list[int]
) -> None:
    request = {"model": "m", "input": "hi", "tools": TOOLS[:3]}
    triples = []
    for i, (chat_name, text) in enumerate(calls):
        arguments = (
            json.dumps({"input": text})
            if "note" in chat_name or "patch" in chat_name
            else json.dumps({"q": text})
        )
        triples.append((f"call_{i}", chat_name, arguments))
    json_result = await call(ResponsesAdapter(json_app(calls_completion(triples))), request)
    chunks: list[Any] = [chunk({"role": "assistant", "content": None})]
    for i, (cid, chat_name, arguments) in enumerate(triples):
        chunks.append(chunk({"tool_calls": [tool(i, id=cid, name=chat_name, args="")]}))
        pos = 0
        for cut in [*cuts, len(arguments)]:
            if pos >= len(arguments):
                break
            piece = arguments[pos : pos + cut]
            pos += len(piece)
            chunks.append(chunk({"tool_calls": [tool(i, args=piece)]}))
    chunks += [chunk({}, "tool_calls"), chunk(choices=False, usage=USAGE), "[DONE]"]
    streamed = await call(ResponsesAdapter(stream_app(chunks)), {**request, "stream": True})
    terminal = check_stream(streamed.events)
    assert comparable(terminal) == comparable(json_result.json)
    deltas = [e for e in streamed.events if e["type"] == "response.custom_tool_call_input.delta"]
    customs = [i for i in terminal["output"] if i["type"] == "custom_tool_call"]
    assert "".join(d["delta"] for d in deltas) == "".join(i["input"] for i in customs)


# --- through the middleware ---------------------------------------------------------------


async def test_adapter_option_hosted_tools() -> None:
    with pytest.raises(ValueError, match="hosted_tools"):
        ResponsesAdapter(json_app({}), hosted_tools="loose")  # type: ignore[arg-type]
    body = {"model": "m", "input": "hi", "tools": TOOLS}
    strict = await call(ResponsesAdapter(json_app(completion({"content": "ok"}))), body)
    assert strict.status == 400
    assert strict.json["error"]["code"] == "hosted_tool_not_supported"
    assert strict.json["error"]["param"] == "tools[3]"
    lenient = ResponsesAdapter(json_app(completion({"content": "ok"})), hosted_tools="lenient")
    result = await call(lenient, body)
    assert result.status == 200
    assert result.json["output_text"] == "ok"
    # the echo keeps the tools as the client sent them
    assert result.json["tools"][3]["type"] == "web_search"
