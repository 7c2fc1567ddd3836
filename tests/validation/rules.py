"""The rule table: one row per field rule, with the expected status, code and param.

``docs/validation-rules.md`` lists the same rows (by id); ``test_rules.py`` runs each row and
checks that the docs and this table agree.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Final

DELETE: Final = object()

CHAT_BASE: Final[dict[str, Any]] = {
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "Hi"}],
}
RESPONSES_BASE: Final[dict[str, Any]] = {"model": "gpt-4o", "input": "Hi"}

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def set_path(body: dict[str, Any], path: str, value: Any) -> None:
    """Set (or delete, with ``DELETE``) ``a.b[0].c`` in ``body``, creating objects on the way."""
    tokens: list[str | int] = [name if name else int(index) for name, index in _TOKEN.findall(path)]
    node: Any = body
    for token in tokens[:-1]:
        if isinstance(token, str) and token not in node:
            node[token] = {}
        node = node[token]
    last = tokens[-1]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value


@dataclass(frozen=True)
class Rule:
    id: str
    endpoint: str  # "chat" | "responses"
    changes: tuple[tuple[str, Any], ...]
    status: int
    code: str | None  # None: accepted (200)
    param: str | None

    def body(self) -> dict[str, Any]:
        body = copy.deepcopy(CHAT_BASE if self.endpoint == "chat" else RESPONSES_BASE)
        for path, value in self.changes:
            set_path(body, path, value if value is DELETE else copy.deepcopy(value))
        return body

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self.endpoint == "chat" else "/v1/responses"


RULES: list[Rule] = []

MISSING = "missing_required_parameter"
INVALID = "invalid_parameter_value"
UNKNOWN = "unknown_field"
NOT_ALLOWED = "operation_not_allowed"
HOSTED = "hosted_tool_not_supported"


def ok(id_: str, endpoint: str, **changes: Any) -> None:
    RULES.append(Rule(id_, endpoint, tuple(_changes(changes)), 200, None, None))


def bad(id_: str, endpoint: str, code: str, param: str | None, *changes: tuple[str, Any]) -> None:
    RULES.append(Rule(id_, endpoint, tuple(changes), 400, code, param))


def _changes(changes: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(path.replace("__", "."), value) for path, value in changes.items()]


def user(content: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


# -- model / gateway.models (both endpoints) ------------------------------------------------------
for ep in ("chat", "responses"):
    bad(f"{ep}.model.missing", ep, MISSING, "model", ("model", DELETE))
    bad(f"{ep}.model.and_gateway_models", ep, INVALID, "gateway.models", ("gateway.models", ["a"]))
    bad(f"{ep}.model.type", ep, INVALID, "model", ("model", 1))
    bad(f"{ep}.model.empty", ep, INVALID, "model", ("model", ""))
    RULES.append(
        Rule(
            f"{ep}.gateway.models.only",
            ep,
            (("model", DELETE), ("gateway.models", ["a", "b"])),
            200,
            None,
            None,
        )
    )
    bad(
        f"{ep}.gateway.models.over_10",
        ep,
        INVALID,
        "gateway.models",
        ("model", DELETE),
        ("gateway.models", [f"m{i}" for i in range(11)]),
    )
    bad(
        f"{ep}.gateway.models.empty",
        ep,
        INVALID,
        "gateway.models",
        ("model", DELETE),
        ("gateway.models", []),
    )
    bad(
        f"{ep}.gateway.models.item",
        ep,
        INVALID,
        "gateway.models[1]",
        ("model", DELETE),
        ("gateway.models", ["a", ""]),
    )
    bad(f"{ep}.gateway.type", ep, INVALID, "gateway", ("gateway", "cheap"))
    bad(f"{ep}.gateway.unknown", ep, UNKNOWN, "gateway.fallbacks", ("gateway.fallbacks", True))
    bad(f"{ep}.unknown_field", ep, UNKNOWN, "foo", ("foo", 1))
    for legacy in ("models", "routing", "auriko_metadata"):
        bad(f"{ep}.legacy.{legacy}", ep, UNKNOWN, legacy, (legacy, {}))

# -- gateway.routing (20 options) and gateway.metadata -------------------------------------------
R = "gateway.routing"
ok(
    "routing.all_valid",
    "chat",
    gateway__routing={
        "optimize": "ttft-focus",
        "weights": {"cost": 1, "ttft": 0.5, "throughput": 0},
        "max_cost_per_1m": 2.5,
        "max_ttft_ms": 800,
        "min_throughput_tps": 20,
        "ttft_percentile": "p95",
        "throughput_percentile": "p50",
        "providers": ["openai"],
        "exclude_providers": ["x"],
        "prefer": "openai",
        "mode": "fallback",
        "allow_fallbacks": True,
        "max_fallback_attempts": 19,
        "timeout_ms": 1000,
        "deadline_ms": 1000,
        "data_policy": "zdr",
        "only_byok": True,
        "only_platform": False,
        "require_parameters": True,
        "tier": "priority",
    },
)
for field, value, param in (
    ("optimize", "cheapest", "optimize"),
    ("weights", {"cost": -1}, "weights.cost"),
    ("weights", {"cost": 0, "ttft": 0}, "weights"),
    ("weights", {"latency": 1}, "weights.latency"),
    ("max_cost_per_1m", 0, "max_cost_per_1m"),
    ("max_ttft_ms", 0, "max_ttft_ms"),
    ("max_ttft_ms", 1.5, "max_ttft_ms"),
    ("min_throughput_tps", -1, "min_throughput_tps"),
    ("ttft_percentile", "p99", "ttft_percentile"),
    ("throughput_percentile", "p90", "throughput_percentile"),
    ("providers", "openai", "providers"),
    ("exclude_providers", [1], "exclude_providers[0]"),
    ("prefer", 1, "prefer"),
    ("mode", "race", "mode"),
    ("allow_fallbacks", "yes", "allow_fallbacks"),
    ("max_fallback_attempts", 0, "max_fallback_attempts"),
    ("max_fallback_attempts", 20, "max_fallback_attempts"),
    ("timeout_ms", 0, "timeout_ms"),
    ("deadline_ms", -5, "deadline_ms"),
    ("data_policy", "private", "data_policy"),
    ("only_byok", 1, "only_byok"),
    ("only_platform", "true", "only_platform"),
    ("require_parameters", "no", "require_parameters"),
    ("tier", 2, "tier"),
):
    rule_id = base = f"routing.{param.replace('[0]', '')}"
    while any(rule.id == rule_id for rule in RULES):
        rule_id = f"{base}.{sum(rule.id.startswith(base) for rule in RULES) + 1}"
    code = UNKNOWN if field == "weights" and "latency" in value else INVALID
    bad(rule_id, "chat", code, f"{R}.{param}", (f"{R}.{field}", value))
bad(
    "routing.deadline_below_timeout",
    "chat",
    INVALID,
    f"{R}.deadline_ms",
    (f"{R}.timeout_ms", 2000),
    (f"{R}.deadline_ms", 1000),
)
bad(
    "routing.byok_and_platform",
    "chat",
    INVALID,
    f"{R}.only_platform",
    (f"{R}.only_byok", True),
    (f"{R}.only_platform", True),
)
bad("routing.unknown", "chat", UNKNOWN, f"{R}.min_success_rate", (f"{R}.min_success_rate", 0.9))
bad("routing.type", "chat", INVALID, R, (R, []))
ok(
    "metadata.all_valid",
    "responses",
    gateway__metadata={
        "tags": ["prod"],
        "user_id": "u1",
        "trace_id": "t1",
        "custom_fields": {"team": "search"},
    },
)
bad("metadata.unknown", "chat", UNKNOWN, "gateway.metadata.env", ("gateway.metadata.env", "prod"))
bad("metadata.tags", "chat", INVALID, "gateway.metadata.tags", ("gateway.metadata.tags", "prod"))
bad(
    "metadata.custom_fields",
    "chat",
    INVALID,
    "gateway.metadata.custom_fields.team",
    ("gateway.metadata.custom_fields", {"team": 1}),
)

# -- extensions (both endpoints) -----------------------------------------------------------------
for ep in ("chat", "responses"):
    bad(
        f"{ep}.extensions.thinking",
        ep,
        INVALID,
        "extensions.thinking",
        ("extensions", {"thinking": {"enabled": True}}),
    )
    bad(f"{ep}.extensions.type", ep, INVALID, "extensions", ("extensions", ["openai"]))
    bad(
        f"{ep}.extensions.provider_type",
        ep,
        INVALID,
        "extensions.openai",
        ("extensions", {"openai": "fast"}),
    )
ok("chat.extensions.valid", "chat", extensions={"anthropic": {"top_k": 5}, "openai": None})

# -- chat: messages ----------------------------------------------------------------------------
C = "chat"
bad("chat.messages.missing", C, MISSING, "messages", ("messages", DELETE))
bad("chat.messages.empty", C, INVALID, "messages", ("messages", []))
bad("chat.messages.type", C, INVALID, "messages", ("messages", "Hi"))
bad("chat.messages.item_not_object", C, INVALID, "messages[0]", ("messages", ["Hi"]))
bad("chat.messages.role_missing", C, MISSING, "messages[0].role", ("messages", [{"content": "x"}]))
bad(
    "chat.messages.role_unknown",
    C,
    INVALID,
    "messages[0].role",
    ("messages", [{"role": "bot", "content": "x"}]),
)
bad(
    "chat.messages.content_missing",
    C,
    MISSING,
    "messages[0].content",
    ("messages", [{"role": "user"}]),
)
bad("chat.messages.content_type", C, INVALID, "messages[0].content", ("messages", user(5)))
bad(
    "chat.messages.part_not_object",
    C,
    INVALID,
    "messages[0].content[0]",
    ("messages", user(["Hi"])),
)
bad(
    "chat.messages.part_type_missing",
    C,
    MISSING,
    "messages[0].content[0].type",
    ("messages", user([{"text": "Hi"}])),
)
bad(
    "chat.messages.part_type_unknown",
    C,
    INVALID,
    "messages[0].content[0].type",
    ("messages", user([{"type": "video", "video": {}}])),
)
bad(
    "chat.messages.text_missing",
    C,
    MISSING,
    "messages[0].content[0].text",
    ("messages", user([{"type": "text"}])),
)
bad(
    "chat.messages.image_url_url",
    C,
    INVALID,
    "messages[3].content[0].image_url.url",
    (
        "messages",
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": ""}}]},
        ],
    ),
)
bad(
    "chat.messages.image_url_detail",
    C,
    INVALID,
    "messages[0].content[0].image_url.detail",
    (
        "messages",
        user([{"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "ultra"}}]),
    ),
)
bad(
    "chat.messages.input_audio_data",
    C,
    MISSING,
    "messages[0].content[0].input_audio.data",
    ("messages", user([{"type": "input_audio", "input_audio": {"format": "wav"}}])),
)
bad(
    "chat.messages.file_without_source",
    C,
    MISSING,
    "messages[0].content[0].file.file_data",
    ("messages", user([{"type": "file", "file": {"filename": "a.pdf"}}])),
)
ok(
    "chat.messages.all_user_parts",
    C,
    messages=user(
        [
            {"type": "text", "text": "Look", "cache_control": {"type": "ephemeral"}},
            {
                "type": "image_url",
                "image_url": {"url": "data:image/png;base64,AA==", "detail": "low"},
            },
            {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}},
            {
                "type": "file",
                "file": {"file_data": "data:application/pdf;base64,AA==", "filename": "a"},
            },
        ]
    ),
)
bad(
    "chat.messages.system_image",
    C,
    INVALID,
    "messages[0].content[0].type",
    (
        "messages",
        [
            {
                "role": "system",
                "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
            }
        ],
    ),
)
ok(
    "chat.messages.all_roles",
    C,
    messages=[
        {"role": "system", "content": [{"type": "text", "text": "s"}]},
        {"role": "developer", "content": "d"},
        {"role": "user", "content": "u", "name": "ann"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        {"role": "assistant", "content": ""},
        {"role": "function", "name": "f", "content": None},
    ],
)
bad(
    "chat.messages.tool_call_function",
    C,
    MISSING,
    "messages[0].tool_calls[0].function",
    ("messages", [{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function"}]}]),
)
bad(
    "chat.messages.tool_call_id",
    C,
    MISSING,
    "messages[0].tool_call_id",
    ("messages", [{"role": "tool", "content": "42"}]),
)
bad(
    "chat.messages.function_name",
    C,
    MISSING,
    "messages[0].name",
    ("messages", [{"role": "function", "content": "42"}]),
)

# -- chat: sampling and scalar fields -------------------------------------------------------------
for field, good, wrong in (
    ("temperature", 2, [-0.1, 2.1, "1"]),
    ("top_p", 1, [1.5, -0.5]),
    ("top_k", 1, [0, 1.5]),
    ("min_p", 0.1, [1.5]),
    ("top_a", 0.5, [-1]),
    ("repetition_penalty", 1.1, [0]),
    ("frequency_penalty", -2, [2.5]),
    ("presence_penalty", 2, [-3]),
    ("n", 10, [0, 11]),
    ("seed", -7, [1.5, True]),
    ("max_tokens", 1, [0]),
    ("max_completion_tokens", 1, [0]),
    ("stop", ["\n", "END"], [5, [1]]),
    ("logprobs", True, ["yes"]),
    ("top_logprobs", 20, [21, -1]),
    ("logit_bias", {"50256": -100}, [{"50256": 101}, []]),
    ("reasoning_effort", "xhigh", ["extreme"]),
    ("reasoning", {"exclude": True}, [{"exclude": "yes"}]),
    ("parallel_tool_calls", False, ["yes"]),
    ("stream", True, ["true"]),
    ("stream_options", {"include_usage": True}, [{"include_usage": "yes"}]),
    ("web_search_options", {"search_context_size": "low"}, ["on"]),
    ("verbosity", "low", ["max"]),
    ("prompt_cache_key", "k1", [1]),
    ("safety_identifier", "s1", [1]),
    ("user", "u1", [1]),
    ("metadata", {"k": "v"}, [{"k": 1}]),
    ("service_tier", "flex", [1]),
):
    ok(f"chat.{field}.valid", C, **{field: good})
    for index, value in enumerate(wrong):
        param = field
        if isinstance(value, dict) and value:
            param = f"{field}.{next(iter(value))}"
        elif isinstance(value, list) and value and field == "stop":
            param = "stop[0]"
        bad(f"chat.{field}.invalid{index or ''}", C, INVALID, param, (field, value))
ok("chat.nulls_are_absent", C, temperature=None, top_p=None, stop=None, tools=None, user=None)

# -- chat: tools, tool_choice, response_format, deprecated functions -----------------------
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
ok(
    "chat.tools.valid",
    C,
    tools=[
        TOOL,
        {"type": "function", "function": {"name": "g", "description": "d", "strict": True}},
    ],
)
bad("chat.tools.type", C, INVALID, "tools[0].type", ("tools", [{"type": "custom", "custom": {}}]))
bad(
    "chat.tools.name_missing",
    C,
    MISSING,
    "tools[0].function.name",
    ("tools", [{"type": "function", "function": {}}]),
)
bad(
    "chat.tools.parameters_type",
    C,
    INVALID,
    "tools[0].function.parameters",
    ("tools", [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]),
)
bad("chat.tools.not_list", C, INVALID, "tools", ("tools", TOOL))
for choice in (
    "none",
    "auto",
    "required",
    {"type": "function", "function": {"name": "f"}},
    {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "auto",
            "tools": [{"type": "function", "function": {"name": "f"}}],
        },
    },
):
    slug = choice if isinstance(choice, str) else choice["type"]
    ok(f"chat.tool_choice.{slug}", C, tools=[TOOL], tool_choice=choice)
bad("chat.tool_choice.string", C, INVALID, "tool_choice", ("tool_choice", "always"))
bad(
    "chat.tool_choice.function_missing",
    C,
    MISSING,
    "tool_choice.function",
    ("tool_choice", {"type": "function"}),
)
bad("chat.tool_choice.type", C, INVALID, "tool_choice.type", ("tool_choice", {"type": "any"}))
bad("chat.tool_choice.kind", C, INVALID, "tool_choice", ("tool_choice", 1))
ok(
    "chat.functions.valid",
    C,
    functions=[{"name": "f", "parameters": {}}],
    function_call={"name": "f"},
)
bad("chat.functions.name", C, MISSING, "functions[0].name", ("functions", [{"parameters": {}}]))
bad(
    "chat.functions.with_tools",
    C,
    INVALID,
    "functions",
    ("functions", [{"name": "f"}]),
    ("tools", [TOOL]),
)
bad("chat.function_call.value", C, INVALID, "function_call", ("function_call", "required"))
bad(
    "chat.function_call.with_tool_choice",
    C,
    INVALID,
    "function_call",
    ("function_call", "auto"),
    ("tool_choice", "auto"),
)
for fmt in (
    {"type": "text"},
    {"type": "json_object"},
    {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True},
    },
):
    ok(f"chat.response_format.{fmt['type']}", C, response_format=fmt)
bad(
    "chat.response_format.type",
    C,
    INVALID,
    "response_format.type",
    ("response_format", {"type": "xml"}),
)
bad(
    "chat.response_format.json_schema_name",
    C,
    MISSING,
    "response_format.json_schema.name",
    ("response_format", {"type": "json_schema", "json_schema": {"schema": {}}}),
)
bad(
    "chat.response_format.json_schema_missing",
    C,
    MISSING,
    "response_format.json_schema",
    ("response_format", {"type": "json_schema"}),
)

# -- responses -------------------------------------------------------------------------------
S = "responses"
bad("responses.input.missing", S, MISSING, "input", ("input", DELETE))
bad("responses.input.type", S, INVALID, "input", ("input", 5))
ok("responses.input.lenient_message", S, input=[{"role": "user", "content": "Hi"}])
ok(
    "responses.input.all_items",
    S,
    input=[
        {"type": "message", "role": "system", "content": "s"},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "d"}]},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "u"},
                {"type": "input_image", "image_url": "https://x/a.png", "detail": "original"},
            ],
        },
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "t"}],
            "encrypted_content": "gAAA",
        },
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_1",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "a", "annotations": []},
                {"type": "refusal", "refusal": "no"},
            ],
        },
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "id": "fc_1"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [{"type": "input_text", "text": "42"}],
        },
    ],
)
bad("responses.input.item_not_object", S, INVALID, "input[0]", ("input", [1]))
bad("responses.input.type_missing", S, MISSING, "input[0].type", ("input", [{"content": "x"}]))
bad(
    "responses.input.type_unknown",
    S,
    INVALID,
    "input[0].type",
    ("input", [{"type": "note", "text": "x"}]),
)
bad(
    "responses.input.role",
    S,
    INVALID,
    "input[0].role",
    ("input", [{"role": "tool", "content": "x"}]),
)
bad(
    "responses.input.content_missing",
    S,
    MISSING,
    "input[0].content",
    ("input", [{"type": "message", "role": "user"}]),
)
bad(
    "responses.input.part_type",
    S,
    INVALID,
    "input[0].content[0].type",
    ("input", [{"role": "user", "content": [{"type": "text", "text": "x"}]}]),
)
bad(
    "responses.input.input_file",
    S,
    NOT_ALLOWED,
    "input[0].content[1]",
    (
        "input",
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "x"},
                    {"type": "input_file", "file_id": "f1"},
                ],
            }
        ],
    ),
)
bad(
    "responses.input.input_audio",
    S,
    NOT_ALLOWED,
    "input[0].content[0]",
    (
        "input",
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}
                ],
            }
        ],
    ),
)
bad(
    "responses.input.image_file_id",
    S,
    NOT_ALLOWED,
    "input[0].content[0].file_id",
    ("input", [{"role": "user", "content": [{"type": "input_image", "file_id": "f1"}]}]),
)
bad(
    "responses.input.image_url_missing",
    S,
    MISSING,
    "input[0].content[0].image_url",
    ("input", [{"role": "user", "content": [{"type": "input_image"}]}]),
)
bad(
    "responses.input.image_detail",
    S,
    INVALID,
    "input[0].content[0].detail",
    (
        "input",
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": "https://x/a.png", "detail": "max"}
                ],
            }
        ],
    ),
)
bad(
    "responses.input.function_call_id",
    S,
    MISSING,
    "input[0].call_id",
    ("input", [{"type": "function_call", "name": "f", "arguments": "{}"}]),
)
bad(
    "responses.input.function_output",
    S,
    MISSING,
    "input[0].output",
    ("input", [{"type": "function_call_output", "call_id": "c1"}]),
)
bad(
    "responses.input.function_output_file",
    S,
    NOT_ALLOWED,
    "input[0].output[0]",
    (
        "input",
        [
            {
                "type": "function_call_output",
                "call_id": "c1",
                "output": [{"type": "input_file", "file_data": "AA=="}],
            }
        ],
    ),
)
bad(
    "responses.input.reasoning_summary",
    S,
    INVALID,
    "input[0].summary",
    ("input", [{"type": "reasoning", "summary": "x"}]),
)
bad(
    "responses.input.item_reference",
    S,
    NOT_ALLOWED,
    "input[1]",
    ("input", [{"role": "user", "content": "x"}, {"type": "item_reference", "id": "msg_1"}]),
)
# Hosted-tool items are known: forwarded (a native provider runs them; the adapter's
# hosted_tools policy decides for chat-only providers).
ok(
    "responses.input.hosted_item",
    S,
    input=[{"type": "web_search_call", "id": "ws_1", "status": "completed"}],
)
ok(
    "responses.input.custom_tool_call",
    S,
    input=[
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** x"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
    ],
)
bad(
    "responses.input.custom_tool_call.input",
    S,
    MISSING,
    "input[0].input",
    ("input", [{"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch"}]),
)
ok(
    "responses.input.namespaced_call",
    S,
    input=[
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "f",
            "namespace": "ns",
            "arguments": "{}",
        },
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ],
)
ok("responses.input.developer", S, input=[{"role": "developer", "content": "Be brief."}])
for blob in (None, "gAAAAABo-opaque"):
    ok(
        f"responses.input.reasoning.encrypted_{'null' if blob is None else 'blob'}",
        S,
        input=[
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": blob},
            {"role": "user", "content": "Hi"},
        ],
    )
bad("responses.instructions", S, INVALID, "instructions", ("instructions", ["x"]))
RTOOL = {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": None}
ok("responses.tools.valid", S, tools=[RTOOL, {"type": "function", "name": "g"}])
bad(
    "responses.tools.nested_form",
    S,
    MISSING,
    "tools[0].name",
    ("tools", [{"type": "function", "function": {"name": "f"}}]),
)
ok("responses.tools.hosted", S, tools=[{"type": "web_search", "external_web_access": False}])
CUSTOM = {"type": "custom", "name": "apply_patch", "description": "Patch files."}
GRAMMAR = {"type": "grammar", "syntax": "lark", "definition": 'start: "x"'}
ok("responses.tools.custom", S, tools=[CUSTOM, {**CUSTOM, "name": "g", "format": GRAMMAR}])
bad(
    "responses.tools.custom.format",
    S,
    INVALID,
    "tools[0].format.syntax",
    ("tools", [{**CUSTOM, "format": {**GRAMMAR, "syntax": "ebnf"}}]),
)
NAMESPACE = {
    "type": "namespace",
    "name": "crm",
    "description": "CRM tools.",
    "tools": [RTOOL, CUSTOM],
}
ok("responses.tools.namespace", S, tools=[NAMESPACE])
bad(
    "responses.tools.namespace.member",
    S,
    INVALID,
    "tools[0].tools[0].type",
    ("tools", [{**NAMESPACE, "tools": [{"type": "web_search"}]}]),
)
bad(
    "responses.tools.namespace.empty",
    S,
    INVALID,
    "tools[0].tools",
    ("tools", [{**NAMESPACE, "tools": []}]),
)
bad("responses.tools.type", S, INVALID, "tools[0].type", ("tools", [{"type": "plugin"}]))
bad(
    "responses.tools.strict",
    S,
    INVALID,
    "tools[0].strict",
    ("tools", [{"type": "function", "name": "f", "strict": "yes"}]),
)
for choice in (
    "none",
    "auto",
    "required",
    {"type": "function", "name": "f"},
    {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "f"}]},
):
    slug = choice if isinstance(choice, str) else choice["type"]
    ok(f"responses.tool_choice.{slug}", S, tools=[RTOOL], tool_choice=choice)
bad("responses.tool_choice.string", S, INVALID, "tool_choice", ("tool_choice", "any"))
bad(
    "responses.tool_choice.name",
    S,
    MISSING,
    "tool_choice.name",
    ("tool_choice", {"type": "function"}),
)
ok("responses.tool_choice.hosted", S, tool_choice={"type": "file_search"})
ok("responses.tool_choice.custom", S, tools=[CUSTOM], tool_choice={"type": "custom", "name": "x"})
bad(
    "responses.tool_choice.allowed_mode",
    S,
    INVALID,
    "tool_choice.mode",
    ("tool_choice", {"type": "allowed_tools", "mode": "none", "tools": []}),
)
for fmt in (
    {"type": "text"},
    {"type": "json_object"},
    {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": True},
):
    ok(f"responses.text.format.{fmt['type']}", S, text={"format": fmt, "verbosity": "high"})
bad(
    "responses.text.format.type",
    S,
    INVALID,
    "text.format.type",
    ("text", {"format": {"type": "xml"}}),
)
bad(
    "responses.text.format.name",
    S,
    MISSING,
    "text.format.name",
    ("text", {"format": {"type": "json_schema", "schema": {}}}),
)
bad(
    "responses.text.format.schema",
    S,
    MISSING,
    "text.format.schema",
    ("text", {"format": {"type": "json_schema", "name": "x"}}),
)
bad(
    "responses.text.format.strict",
    S,
    INVALID,
    "text.format.strict",
    ("text", {"format": {"type": "json_schema", "name": "x", "schema": {}, "strict": "no"}}),
)
bad("responses.text.verbosity", S, INVALID, "text.verbosity", ("text", {"verbosity": "loud"}))
ok("responses.reasoning.valid", S, reasoning={"effort": "minimal", "summary": "auto"})
bad(
    "responses.reasoning.effort",
    S,
    INVALID,
    "reasoning.effort",
    ("reasoning", {"effort": "extreme"}),
)
bad(
    "responses.reasoning.summary",
    S,
    INVALID,
    "reasoning.summary",
    ("reasoning", {"summary": "long"}),
)
for field, good, wrong in (
    ("max_output_tokens", 16, 15),
    ("max_tool_calls", 1, 0),
    ("temperature", 0, 2.5),
    ("top_p", 0.5, 2),
    ("top_k", 40, 0),
    ("top_logprobs", 0, 21),
    ("truncation", "auto", "sometimes"),
    ("parallel_tool_calls", True, 1),
    ("stream", False, 0),
    ("metadata", {"k": "v"}, {"k": 1}),
    ("user", "u", 1),
    ("safety_identifier", "s", 1),
    ("prompt_cache_key", "k" * 64, "k" * 65),
    ("service_tier", "priority", 1),
):
    ok(f"responses.{field}.valid", S, **{field: good})
    param = f"{field}.k" if isinstance(wrong, dict) else field
    bad(f"responses.{field}.invalid", S, INVALID, param, (field, wrong))
ok(
    "responses.include.valid",
    S,
    include=["reasoning.encrypted_content", "message.output_text.logprobs"],
)
bad(
    "responses.include.value",
    S,
    INVALID,
    "include[1]",
    ("include", ["reasoning.encrypted_content", "usage"]),
)
for field, value in (
    ("store", True),
    ("background", True),
    ("previous_response_id", "resp_1"),
    ("conversation", "conv_1"),
    ("prompt", {"id": "pmpt_abc", "variables": {"city": "Paris"}}),
):
    bad(f"responses.{field}.not_allowed", S, NOT_ALLOWED, field, (field, value))
ok(
    "responses.stateless_defaults",
    S,
    store=False,
    background=False,
    previous_response_id=None,
    conversation=None,
)
bad("responses.store.type", S, INVALID, "store", ("store", "no"))

# -- every other field of OpenAI's Responses API is known (never unknown_field) --------------------
ok("responses.client_metadata.valid", S, client_metadata={"thread_id": "t1", "turn_id": "u1"})
bad("responses.client_metadata.type", S, INVALID, "client_metadata", ("client_metadata", "t1"))
PLATFORM_OPTIONS: list[tuple[str, Any, str, Any]] = [
    ("access_programs", {"cyber": "standard"}, "access_programs.cyber", {"cyber": "red"}),
    (
        "background_options",
        {"completion_window": "soonest"},
        "background_options.completion_window",
        {"completion_window": "1h"},
    ),
    (
        "context_management",
        [{"type": "compaction", "compact_threshold": 1000}],
        "context_management[0].compact_threshold",
        [{"type": "compaction", "compact_threshold": 0}],
    ),
    (
        "image",
        {"context_compression": "auto"},
        "image.context_compression",
        {"context_compression": 1},
    ),
    (
        "moderation",
        {"model": "omni-moderation-latest", "policy": {"input": {"mode": "score"}}},
        "moderation.policy.input.mode",
        {"model": "m", "policy": {"input": {"mode": "warn"}}},
    ),
    (
        "prompt_cache_options",
        {"ttl": "30m", "mode": "implicit"},
        "prompt_cache_options.ttl",
        {"ttl": "1d"},
    ),
]
for field_name, good, bad_param, bad_value in PLATFORM_OPTIONS:
    ok(f"responses.{field_name}.valid", S, **{field_name: good})
    bad(f"responses.{field_name}.invalid", S, INVALID, bad_param, (field_name, bad_value))
ok("responses.penalties.valid", S, presence_penalty=0.5, frequency_penalty=-2)
ok("responses.penalties.null", S, presence_penalty=None, frequency_penalty=None)
bad("responses.presence_penalty.range", S, INVALID, "presence_penalty", ("presence_penalty", 2.5))
bad("responses.frequency_penalty.range", S, INVALID, "frequency_penalty", ("frequency_penalty", -3))
bad("responses.service_tier.enum", S, INVALID, "service_tier", ("service_tier", "bogus"))
