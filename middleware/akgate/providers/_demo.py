"""``DemoModel``: a deterministic OpenAI-compatible chat model, the embedded offline default.

It serves ``POST /v1/chat/completions`` (JSON and SSE) and ``GET /v1/models`` under the model ids
``demo``, ``demo-reasoning`` and ``demo-responses`` (the catalog offers the last one on
``/v1/responses`` only). Every answer is computed up front from the request (and, for
``cached_tokens``, from the earlier prompts under the same ``prompt_cache_key``), then sent (or
streamed token by token), so the same request always gets the same content. What it answers
is documented rule by rule in ``docs/providers.md``: the last user turn, plain instructions
("reply with exactly X"), values stated earlier, tools asked for in plain words with arguments
read from the prompt, images described from their bytes, files read from theirs (name, media
type, size, a text file's or a simple PDF's text), counting, "in exactly N words", pirate speak
asked for by a system prompt, ``n`` choices, logprobs, a refusal trigger and URL citations.

Tokens: a token is a word (``\\w+``) or a single other non-space character, with the whitespace in
front of it (``TOKEN_RE``). ``count_tokens(text)`` counts them. Prompt tokens are, per message,
3 plus the tokens of its role, text and tool calls, plus the tokens of the ``tools`` JSON.
Completion tokens are the tokens of the reasoning, the content, and each tool call's name and
arguments. ``cached_tokens`` is the length of the token prefix this prompt shares with the last
prompt sent under the same ``prompt_cache_key`` (0 without one).

Faults (constructor ``fault=`` or request header ``x-demo-fault``), comma-separated directives:

=========================  ==================================================================
``status=<code>``          answer with that HTTP status and the registry envelope
                           (429 and 503 carry ``Retry-After: 1``)
``midstream[=<n>]``        after ``n`` (default 3) content tokens, ``data: {"error": ...}``
                           then ``data: [DONE]`` (non-streaming: a 500 envelope)
``exception``              raise ``RuntimeError`` after streaming started (non-streaming:
                           before the response)
``drop``                   end the body after 3 tokens, without ``finish_reason`` or
                           ``[DONE]`` (non-streaming: a truncated JSON body)
``slow-first-byte=<ms>``   wait before the response starts
``delay=<ms>``             wait between streamed chunks (overrides ``token_delay``)
=========================  ==================================================================
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel

from akgate._asgi import (
    JSON_ANSWER,
    ClientDisconnected,
    answer_lifespan,
    dumps,
    read_request_json,
    route_path,
    send_json,
)
from akgate._types import Message, Receive, Scope, Send
from akgate._watch import run_watched
from akgate.context import get_context, request_context
from akgate.errors import ERROR_CODES, GatewayError, error_payload, send_error

from ._demo_files import answer_about_files, read_file
from ._demo_media import describe_image, token_logprob
from ._demo_prompt import (
    answers_question,
    exact_reply,
    instructed_reply,
    recalled_value,
    styled,
    tool_arguments,
)
from ._schema_instance import schema_instance

if TYPE_CHECKING:
    from akgate.routing._cancel import CallScope

__all__ = [
    "DEMO_MODELS",
    "FAULT_HEADER",
    "REFUSAL_TRIGGER",
    "RESPONSES_ONLY_MODEL",
    "DemoModel",
    "Faults",
    "count_tokens",
]

DEMO_MODELS: Final = ("demo", "demo-reasoning")
#: Served like ``demo``; the demo catalog offers it on ``/v1/responses`` only, so that
#: ``response_api_only`` can be seen. Not listed by the demo's own ``/v1/models``.
RESPONSES_ONLY_MODEL: Final = "demo-responses"
#: A user turn containing this phrase (any case) gets a refusal instead of an answer.
REFUSAL_TRIGGER: Final = "please refuse"
REFUSAL_TEXT: Final = "I can't help with that: you asked the akgate demo model to refuse."
_URL_RE: Final = re.compile(r"https?://[^\s\"'<>)\]]+")
#: Prompt-cache memory: this many keys, each remembering this many prompt tokens.
_CACHE_KEYS: Final = 1024
_CACHE_TOKENS: Final = 65_536
FAULT_HEADER: Final = b"x-demo-fault"
CHAT_PATH: Final = "/v1/chat/completions"
MODELS_PATH: Final = "/v1/models"
TOKEN_RE: Final = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")
#: A trigger phrase that asks for a tool without naming it.
TOOL_TRIGGER_RE: Final = re.compile(r"\b(?:call|invoke)\b|\buse (?:the |a |your )?tools?\b")
_MAX_FAULT_MS: Final = 60_000
_FAULT_TOKENS: Final = 3
_CREATED: Final = 1_700_000_000
_SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def tokenize(text: str) -> list[str]:
    """Split ``text`` into demo tokens; ``"".join(tokenize(t)) == t``."""
    return TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """The demo model's deterministic token count of ``text``."""
    return len(TOKEN_RE.findall(text))


@dataclass(frozen=True, slots=True)
class Faults:
    """Parsed fault directives (see the module docstring)."""

    status: int | None = None
    midstream: int | None = None
    exception: bool = False
    drop: bool = False
    slow_first_byte: float = 0.0
    delay: float | None = None

    @classmethod
    def parse(cls, text: str, base: Faults | None = None) -> Faults:
        """Parse ``text`` on top of ``base``; ``ValueError`` on an unknown or bad directive."""
        faults = base or cls()
        for raw in text.split(","):
            item = raw.strip().lower()
            if not item:
                continue
            name, _, value = item.partition("=")
            name, value = name.strip(), value.strip()
            if name == "status":
                status = _int(value, name)
                if not 400 <= status <= 599:
                    raise ValueError("status must be between 400 and 599")
                faults = replace(faults, status=status)
            elif name == "midstream":
                faults = replace(faults, midstream=_int(value, name) if value else _FAULT_TOKENS)
            elif name in ("exception", "drop") and not value:
                faults = replace(faults, **{name: True})
            elif name == "slow-first-byte":
                faults = replace(faults, slow_first_byte=_ms(value, name))
            elif name == "delay":
                faults = replace(faults, delay=_ms(value, name))
            else:
                raise ValueError(f"unknown fault directive {item!r}")
        return faults


def _int(value: str, name: str) -> int:
    if not value.isdigit():
        raise ValueError(f"{name} needs a non-negative integer")
    return int(value)


def _ms(value: str, name: str) -> float:
    ms = _int(value, name)
    if ms > _MAX_FAULT_MS:
        raise ValueError(f"{name} is capped at {_MAX_FAULT_MS} ms")
    return ms / 1000


# code for a fault status: the first registry code with that status (500 -> internal_error),
# except 503, where a provider is "unavailable" rather than "no provider available".
_CODE_FOR_STATUS: Final[dict[int, str]] = {503: "service_unavailable"}
for _code, (_status, _type) in ERROR_CODES.items():
    _CODE_FOR_STATUS.setdefault(_status, _code)


@dataclass(slots=True)
class _ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class _Plan:
    """Everything the answer contains, computed before anything is sent."""

    reasoning: list[str] = field(default_factory=list)
    content: list[str] | None = None
    tool_calls: list[_ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"
    usage: dict[str, Any] = field(default_factory=dict)
    refusal: str | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)
    #: One chat ``logprobs.content`` entry per content token (when asked for).
    logprobs: list[dict[str, Any]] | None = None


class DemoModel:
    """A deterministic OpenAI-compatible chat-completions ASGI app (no network, no weights).

    ``token_delay`` is the pause in seconds between streamed chunks; ``fault`` applies fault
    directives to every request; ``allow_fault_header=False`` ignores ``x-demo-fault``.
    """

    def __init__(
        self,
        *,
        token_delay: float = 0.0,
        fault: str | None = None,
        allow_fault_header: bool = True,
    ) -> None:
        if token_delay < 0:
            raise ValueError("token_delay must be >= 0")
        self.token_delay = token_delay
        self.faults = Faults.parse(fault) if fault else Faults()
        self.allow_fault_header = allow_fault_header
        #: prompt_cache_key -> the prompt tokens last sent under it (bounded, oldest dropped).
        self._prompt_cache: dict[str, list[str]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            # A model server has no websocket endpoint: refuse before accepting (HTTP 403).
            await send({"type": "websocket.close", "code": 1008})
            return
        # Under an akgate layer, the JSON answer's object is left for it (``_Responder.state``).
        outer = get_context(scope) is not None
        scope, send, ctx = request_context(scope, send)
        path = route_path(scope)
        method = scope.get("method", "GET")
        try:
            if path == MODELS_PATH:
                if method not in ("GET", "HEAD"):
                    raise _method_not_allowed(method, "GET")
                await send_json(send, 200, _models_list())
                return
            if path != CHAT_PATH:
                raise GatewayError("resource_not_found", f"No route for {method} {path}.")
            if method != "POST":
                raise _method_not_allowed(method, "POST")
            faults = self._request_faults(scope)
            payload = await read_request_json(scope, receive, ctx)
            request = _parse_request(payload)
        except GatewayError as err:
            await send_error(send, err)
            return
        except ClientDisconnected:
            return
        delay = faults.delay if faults.delay is not None else self.token_delay
        request.cached_tokens = self._cached_tokens(request)
        responder = _Responder(request, faults, delay, send)
        if outer:
            responder.state = ctx.state
        await responder.run(receive)

    def _cached_tokens(self, request: _Request) -> int:
        """Tokens this prompt shares with the last one under its ``prompt_cache_key``."""
        key = request.prompt_cache_key
        if key is None:
            return 0
        tokens = _prompt_token_list(request)[:_CACHE_TOKENS]
        before = self._prompt_cache.pop(key, None)
        self._prompt_cache[key] = tokens  # most recent last
        while len(self._prompt_cache) > _CACHE_KEYS:
            del self._prompt_cache[next(iter(self._prompt_cache))]
        shared = 0
        for old, new in zip(before or (), tokens, strict=False):
            if old != new:
                break
            shared += 1
        return shared

    def _request_faults(self, scope: Scope) -> Faults:
        if not self.allow_fault_header:
            return self.faults
        values = [v for k, v in scope.get("headers", ()) if k == FAULT_HEADER]
        if not values:
            return self.faults
        try:
            return Faults.parse(b",".join(values).decode("latin-1"), self.faults)
        except ValueError as exc:
            raise GatewayError(
                "invalid_parameter_value", f"Bad x-demo-fault header: {exc}.", "x-demo-fault"
            ) from None


def _method_not_allowed(method: str, allowed: str) -> GatewayError:
    return GatewayError(
        "method_not_allowed",
        f"Method {method} is not allowed here; use {allowed}.",
        headers={"Allow": allowed},
    )


def _models_list() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": model, "object": "model", "created": _CREATED, "owned_by": "akgate-demo"}
            for model in DEMO_MODELS
        ],
    }


# ---------------------------------------------------------------------------------------------
# Request parsing (only what the demo needs; the validation layer does the full check).


@dataclass(slots=True)
class _Request:
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    tools: list[dict[str, Any]]
    tool_choice: Any
    parallel_tool_calls: bool
    max_tokens: int | None
    response_format: dict[str, Any] | None
    stop: list[str]
    n: int = 1
    logprobs: bool = False
    top_logprobs: int = 0
    prompt_cache_key: str | None = None
    cached_tokens: int = 0


def _bad(message: str, param: str, code: str = "invalid_parameter_value") -> GatewayError:
    return GatewayError(code, message, param)


def _parse_request(payload: Mapping[str, Any]) -> _Request:
    model = payload.get("model")
    if model is None:
        raise _bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str):
        raise _bad("'model' must be a string.", "model")
    if model not in DEMO_MODELS and model != RESPONSES_ONLY_MODEL:
        raise GatewayError(
            "model_not_found",
            f"Model '{model}' does not exist here; the demo serves {', '.join(DEMO_MODELS)}.",
            "model",
        )
    messages = payload.get("messages")
    if messages is None:
        raise _bad(
            "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
        )
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty array.", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _bad("Each message must be an object with a 'role'.", f"messages[{index}]")
    stream = payload.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise _bad("'stream' must be a boolean.", "stream")
    options = payload.get("stream_options") or {}
    if not isinstance(options, dict):
        raise _bad("'stream_options' must be an object.", "stream_options")
    tools = payload.get("tools") or []
    if not isinstance(tools, list):
        raise _bad("'tools' must be an array.", "tools")
    functions: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            if isinstance(tool, dict) and tool.get("type", "function") != "function":
                continue  # custom tools: the demo never calls them
            raise _bad("Each tool needs 'function.name'.", f"tools[{index}]")
        functions.append(function)
    tool_choice = payload.get("tool_choice")
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        if name not in {f["name"] for f in functions}:
            raise _bad(f"tool_choice names an unknown function {name!r}.", "tool_choice")
    elif tool_choice not in (None, "auto", "none", "required"):
        raise _bad("tool_choice must be 'auto', 'none', 'required' or a function.", "tool_choice")
    limits = []
    for key in ("max_tokens", "max_completion_tokens"):
        value = payload.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _bad(f"'{key}' must be a positive integer.", key)
        limits.append(value)
    response_format = payload.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict)
        or response_format.get("type") not in ("text", "json_object", "json_schema")
    ):
        raise _bad(
            "response_format.type must be text, json_object or json_schema.", "response_format"
        )
    stop = payload.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in stop or () if isinstance(s, str) and s]
    n = payload.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10):
        raise _bad("'n' must be an integer from 1 to 10.", "n")
    logprobs = payload.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise _bad("'logprobs' must be a boolean.", "logprobs")
    top = payload.get("top_logprobs")
    if top is not None and (
        not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= 20
    ):
        raise _bad("'top_logprobs' must be an integer from 0 to 20.", "top_logprobs")
    cache_key = payload.get("prompt_cache_key")
    return _Request(
        model=model,
        messages=messages,
        stream=bool(stream),
        include_usage=bool(options.get("include_usage")) and bool(stream),
        tools=functions,
        tool_choice=tool_choice,
        parallel_tool_calls=payload.get("parallel_tool_calls") is not False,
        max_tokens=min(limits) if limits else None,
        response_format=response_format if isinstance(response_format, dict) else None,
        stop=stops,
        n=n or 1,
        logprobs=bool(logprobs),
        top_logprobs=top or 0,
        prompt_cache_key=cache_key if isinstance(cache_key, str) and cache_key else None,
    )


def _text(content: Any) -> str:
    """The text of a message's content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


# ---------------------------------------------------------------------------------------------
# Planning: the whole answer, deterministically.


def _last_user_text(request: _Request) -> str:
    """The text of the last message, when it is the user's (what the demo answers)."""
    last = request.messages[-1]
    return _text(last.get("content")) if last.get("role") == "user" else ""


def _plan(request: _Request) -> _Plan:
    plan = _Plan()
    last = request.messages[-1]
    calls = _choose_tools(request)
    if request.model == "demo-reasoning":
        plan.reasoning = tokenize(_reasoning_text(request, calls))
    said = _last_user_text(request)
    if not calls and REFUSAL_TRIGGER in said.lower():
        plan.refusal = REFUSAL_TEXT
        plan.content = None
        plan.finish_reason = "stop"
    elif calls:
        digest = hashlib.sha256(dumps(request.messages)).hexdigest()
        names = [str(f["name"]) for f in request.tools]
        for index, function in enumerate(calls):
            arguments = tool_arguments(_parameters(function), said, names)
            plan.tool_calls.append(
                _ToolCall(
                    id=f"call_{digest[index * 4 : index * 4 + 20]}{index}",
                    name=function["name"],
                    arguments=json.dumps(arguments, ensure_ascii=False),
                )
            )
        plan.finish_reason = "tool_calls"
    else:
        text = _answer_text(request, last)
        finish = "stop"
        for stop in request.stop:
            cut = text.find(stop)
            if cut != -1:
                text = text[:cut]
        content = tokenize(text)
        if request.max_tokens is not None:
            budget = max(request.max_tokens - len(plan.reasoning), 0)
            if len(plan.reasoning) > request.max_tokens:
                plan.reasoning = plan.reasoning[: request.max_tokens]
            if len(content) > budget:
                content, finish = content[:budget], "length"
        plan.content = content
        plan.finish_reason = finish
        text = "".join(content)
        for match in _URL_RE.finditer(text):
            url = match.group(0).rstrip(".,;:!?")
            plan.annotations.append(
                {
                    "type": "url_citation",
                    "url_citation": {
                        "url": url,
                        "title": urlsplit(url).netloc or url,
                        "start_index": match.start(),
                        "end_index": match.start() + len(url),
                    },
                }
            )
        if request.logprobs:
            plan.logprobs = [token_logprob(t, request.top_logprobs) for t in content]
    completion = len(plan.reasoning) + len(plan.content or ()) + count_tokens(plan.refusal or "")
    completion += sum(count_tokens(c.name) + count_tokens(c.arguments) for c in plan.tool_calls)
    completion *= request.n  # every choice is generated (and the same: the demo is deterministic)
    prompt = _prompt_tokens(request)
    plan.usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": min(request.cached_tokens, prompt)},
        "completion_tokens_details": {"reasoning_tokens": len(plan.reasoning)},
    }
    return plan


def _parameters(function: Mapping[str, Any]) -> Any:
    parameters = function.get("parameters")
    return parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}


def _choose_tools(request: _Request) -> list[dict[str, Any]]:
    tools, choice = request.tools, request.tool_choice
    if not tools or choice == "none":
        return []
    if isinstance(choice, dict):
        name = choice["function"]["name"]
        return [next(f for f in tools if f["name"] == name)]
    said = _last_user_text(request)
    text = said.lower()
    named = [f for f in tools if _mentions(text, f["name"])]
    if not named and text:
        # A question that a tool plainly answers ("What's the weather in Paris?" -> get_weather).
        named = [f for f in tools if answers_question(f, said)][:1]
    if not named and (choice == "required" or TOOL_TRIGGER_RE.search(text)):
        named = tools[:1]
    if not request.parallel_tool_calls:
        named = named[:1]
    return named


def _mentions(text: str, name: str) -> bool:
    name = name.lower()
    if not text:
        return False
    spaced = name.replace("_", " ").replace("-", " ")
    # A namespace member flattened by the Responses adapter (``<namespace>__<name>``) answers to
    # its own name too.
    member = name.rsplit("__", 1)[-1]
    return any(re.search(rf"\b{re.escape(n)}\b", text) for n in {name, spaced, member})


def _reasoning_text(request: _Request, calls: Sequence[Mapping[str, Any]]) -> str:
    last = request.messages[-1]
    words = count_tokens(_text(last.get("content")))
    if calls:
        names = ", ".join(str(f["name"]) for f in calls)
        return f"The request asks for a tool. I will call {names}."
    if last.get("role") == "tool":
        return "A tool answered. I will report its result."
    return f"The last message has {words} tokens. I will answer briefly and deterministically."


def _answer_text(request: _Request, last: Mapping[str, Any]) -> str:
    reply = _reply_text(request, last)
    format_ = request.response_format or {}
    if format_.get("type") == "json_object":
        return json.dumps({"answer": reply}, ensure_ascii=False)
    if format_.get("type") == "json_schema":
        spec = format_.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return json.dumps(schema_instance(schema if schema is not None else {"type": "object"}))
    return reply


def _reply_text(request: _Request, last: Mapping[str, Any]) -> str:
    if last.get("role") == "tool":
        # Quote every trailing tool result, named after the call it answers.
        names: dict[str, str] = {}
        for message in request.messages:
            for call in message.get("tool_calls") or ():
                if isinstance(call, dict):
                    function = call.get("function") or {}
                    # a flattened namespace member (``ns__name``) by its own name
                    name = str(function.get("name", "tool")).rsplit("__", 1)[-1]
                    names[str(call.get("id"))] = name
        results = []
        for message in reversed(request.messages):
            if message.get("role") != "tool":
                break
            name = names.get(str(message.get("tool_call_id")), "tool")
            results.append(f"{name} returned: {_text(message.get('content'))}")
        return "The tool results are in. " + "; ".join(reversed(results))
    user = next((m for m in reversed(request.messages) if m.get("role") == "user"), None)
    said = _text(user.get("content")).strip() if user else ""
    images = _image_urls(user.get("content")) if user else []
    if images:
        described = "; ".join(describe_image(url) for url in images)
        return f"I see {len(images)} image{'s' if len(images) > 1 else ''}: {described}."
    files = _file_parts(user.get("content")) if user else []
    if files:
        return answer_about_files(said, [read_file(f) for f in files])
    exact = exact_reply(said)
    if exact is not None:
        return exact  # exactly what was asked for: no style
    # A system or developer prompt may ask for a style (pirate speak).
    system = "\n".join(
        _text(m.get("content"))
        for m in request.messages
        if m.get("role") in ("system", "developer")
    )
    instructed = instructed_reply(said)
    if instructed is not None:
        return styled(instructed, system)
    earlier = [
        _text(m.get("content"))
        for m in request.messages
        if m is not user and m.get("role") in ("user", "assistant")
    ]
    recalled = recalled_value(said, earlier)
    if recalled is not None:
        return styled(recalled, system)
    if len(said) > 200:
        said = said[:200] + "..."
    if not said:
        return styled("Hello! I am the akgate demo model.", system)
    return styled(f'Hello! I am the akgate demo model. You said: "{said}"', system)


def _file_parts(content: Any) -> list[Any]:
    """The ``file`` objects of a message's chat ``file`` parts."""
    if not isinstance(content, list):
        return []
    return [
        part.get("file")
        for part in content
        if isinstance(part, dict) and part.get("type") == "file"
    ]


def _image_urls(content: Any) -> list[str]:
    if not isinstance(content, list):
        return []
    urls = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                urls.append(url)
    return urls


def _prompt_token_list(request: _Request) -> list[str]:
    """The prompt as demo tokens, message by message (what prompt caching compares)."""
    tokens: list[str] = []
    for message in request.messages:
        tokens.append(f"<{message.get('role')}>")
        tokens.extend(tokenize(_text(message.get("content"))))
        if message.get("tool_calls"):
            tokens.extend(tokenize(json.dumps(message["tool_calls"])))
    if request.tools:
        tokens.extend(tokenize(json.dumps(request.tools)))
    return tokens


def _prompt_tokens(request: _Request) -> int:
    total = 0
    for message in request.messages:
        total += (
            3 + count_tokens(str(message.get("role"))) + count_tokens(_text(message.get("content")))
        )
        if message.get("tool_calls"):
            total += count_tokens(json.dumps(message["tool_calls"]))
    if request.tools:
        total += count_tokens(json.dumps(request.tools))
    return total


# ---------------------------------------------------------------------------------------------
# Sending.


# Completion ids need to be unique, not secret: a random per-process prefix and a counter, where
# a fresh token from the OS costs a system call (~2 µs) per answer. A forked worker draws its own
# prefix, so two processes do not count from the same one.
_id_prefix = "chatcmpl-" + secrets.token_hex(6)
_id_counter = itertools.count(1)


def _completion_id() -> str:
    """``chatcmpl-`` and 24 hex digits: unique within a process, and across processes as far as
    48 random bits go."""
    return f"{_id_prefix}{next(_id_counter) & 0xFFFFFFFFFFFF:012x}"


def _new_id_prefix() -> None:
    global _id_prefix, _id_counter
    _id_prefix = "chatcmpl-" + secrets.token_hex(6)
    _id_counter = itertools.count(1)


if hasattr(os, "register_at_fork"):  # (not on Windows)
    os.register_at_fork(after_in_child=_new_id_prefix)


class _Responder:
    """Sends one answer; watches for the client going away while it does (``run_watched``: a
    bare task under asyncio, not a task group, which cost ~40 µs per request)."""

    def __init__(self, request: _Request, faults: Faults, delay: float, send: Send) -> None:
        self.request = request
        self.faults = faults
        self.delay = delay
        self.send = send
        self.id = _completion_id()
        self.created = int(time.time())
        self.raise_after: Exception | None = None
        #: The request context's shared state, when a layer outside may use the answer's
        #: object (``akgate._asgi.JSON_ANSWER``).
        self.state: dict[str, Any] | None = None
        #: The answer is over / the disconnect watcher is running.
        self.finished = False
        self.watching = False

    async def run(self, receive: Receive) -> None:
        async def respond() -> None:
            try:
                await self._respond()
            except OSError:
                pass  # ASGI 2.4 servers raise on send after a disconnect: nothing left to do
            except Exception as exc:
                self.raise_after = exc
            self.finished = True
            if self.watching:
                # The watcher is reading (a stream, or an outer layer's replay): let it see the
                # end and return; a task cancelled mid-await leaves a reference cycle behind.
                await anyio.lowlevel.checkpoint()

        await run_watched(respond, lambda scope: self._watch_disconnect(receive, scope))
        if self.raise_after is not None:
            # Raised outside the watched call, so the server sees it as is, not in a group.
            raise self.raise_after

    async def _watch_disconnect(self, receive: Receive, scope: CallScope) -> None:
        # Once the answer is over there is nothing left to watch: return rather than wait to be
        # cancelled (a task cancelled at an await leaves a reference cycle per request, its
        # CancelledError's traceback holding the request's state, for the garbage collector). A
        # JSON answer never yields, so this task usually never runs at all.
        self.watching = True
        try:
            while not self.finished:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    if not self.finished:
                        scope.cancel()
                    return
                # A receive that never blocks (an endless body replay) must not starve the
                # response.
                await anyio.lowlevel.checkpoint()
        finally:
            self.watching = False

    async def _respond(self) -> None:
        faults = self.faults
        if faults.slow_first_byte:
            await anyio.sleep(faults.slow_first_byte)
        if faults.status is not None:
            status = faults.status
            code = _CODE_FOR_STATUS.get(status, "upstream_error")
            headers = {"Retry-After": "1"} if status in (429, 503) else None
            await send_error(
                self.send,
                GatewayError(code, f"Demo fault: HTTP {status}.", status=status, headers=headers),
            )
            return
        plan = _plan(self.request)
        if self.request.stream:
            await self._stream(plan)
            return
        if faults.midstream is not None:
            await send_error(self.send, GatewayError("internal_error", "Demo fault: midstream."))
            return
        if faults.exception:
            raise RuntimeError("demo fault: exception before the response started")
        completion = self._completion(plan)
        body = dumps(completion)
        if faults.drop:
            await self.send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await self.send({"type": "http.response.body", "body": body[: len(body) // 2]})
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        state = self.state
        if state is None:
            await send_json(self.send, 200, body)
            return
        # Routing takes the object rather than parsing ``body`` again (when what reaches it is
        # still this very ``body``); once sent, the state lets go of both.
        state[JSON_ANSWER] = (body, completion)
        try:
            await send_json(self.send, 200, body)
        finally:
            state.pop(JSON_ANSWER, None)

    def _completion(self, plan: _Plan) -> dict[str, Any]:
        choices = []
        for index in range(self.request.n):
            message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
            if plan.content is not None:
                message["content"] = "".join(plan.content)
            if plan.refusal is not None:
                message["refusal"] = plan.refusal
            if plan.annotations:
                message["annotations"] = plan.annotations
            if plan.reasoning:
                message["reasoning_content"] = "".join(plan.reasoning)
            if plan.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": _call_id(call, index),
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in plan.tool_calls
                ]
            logprobs = (
                {"content": plan.logprobs, "refusal": None} if plan.logprobs is not None else None
            )
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": logprobs,
                    "finish_reason": plan.finish_reason,
                }
            )
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.request.model,
            "choices": choices,
            "usage": plan.usage,
            "system_fingerprint": None,
        }

    def _chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        *,
        index: int = 0,
        logprobs: dict[str, Any] | None = None,
    ) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.request.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": index,
                    "delta": delta,
                    "logprobs": logprobs,
                    "finish_reason": finish_reason,
                }
            ],
        }
        if self.request.include_usage:
            chunk["usage"] = None
        return b"data: " + dumps(chunk) + b"\n\n"

    async def _stream(self, plan: _Plan) -> None:
        faults = self.faults
        await self.send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        sent = 0  # delta chunks so far, for the mid-stream faults

        async def fault(force: bool = False) -> bool:
            """Apply a due mid-stream fault; True when it ended the stream."""
            if faults.midstream is not None and (force or sent >= faults.midstream):
                error = error_payload(
                    "internal_error", "Demo fault: error in the middle of the stream."
                )
                await self._emit(b"data: " + dumps({"error": error}) + b"\n\n")
                await self._emit(b"data: [DONE]\n\n", final=True)
                return True
            if (faults.drop or faults.exception) and (force or sent >= _FAULT_TOKENS):
                if faults.drop:
                    await self._emit(b"", final=True)
                else:
                    self.raise_after = RuntimeError(
                        "demo fault: exception after the response started"
                    )
                return True
            return False

        # Choices one after the other (each with its index), as an n > 1 stream may send them.
        for choice in range(self.request.n):
            await self._emit(self._chunk({"role": "assistant", "content": ""}, index=choice))
            for delta, logprobs in _deltas(plan, choice):
                if await fault():
                    return
                await self._emit(self._chunk(delta, index=choice, logprobs=logprobs))
                sent += 1
            # A fault set for later than the answer's end still fires, before the finish chunk.
            if await fault(force=True):
                return
            await self._emit(self._chunk({}, plan.finish_reason, index=choice))
        if self.request.include_usage:
            usage_chunk = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.request.model,
                "system_fingerprint": None,
                "choices": [],
                "usage": plan.usage,
            }
            await self._emit(b"data: " + dumps(usage_chunk) + b"\n\n")
        await self._emit(b"data: [DONE]\n\n", final=True)

    async def _emit(self, body: bytes, *, final: bool = False) -> None:
        await self.send({"type": "http.response.body", "body": body, "more_body": not final})
        if not final:
            await anyio.sleep(self.delay)


def _call_id(call: _ToolCall, choice: int) -> str:
    return call.id if choice == 0 else f"{call.id}n{choice}"


def _deltas(plan: _Plan, choice: int) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """One choice's stream deltas, each with its chunk's ``logprobs`` (or None)."""
    deltas: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
        ({"reasoning_content": p}, None) for p in plan.reasoning
    ]
    for position, piece in enumerate(plan.content or ()):
        logprobs = None
        if plan.logprobs is not None:
            logprobs = {"content": [plan.logprobs[position]], "refusal": None}
        deltas.append(({"content": piece}, logprobs))
    if plan.annotations:
        deltas.append(({"annotations": plan.annotations}, None))
    if plan.refusal is not None:
        deltas.extend(({"refusal": piece}, None) for piece in tokenize(plan.refusal))
    for index, call in enumerate(plan.tool_calls):
        function = {"name": call.name, "arguments": ""}
        head = {"index": index, "id": _call_id(call, choice), "type": "function"}
        deltas.append(({"tool_calls": [{**head, "function": function}]}, None))
        deltas.extend(
            ({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, None)
            for piece in tokenize(call.arguments)
        )
    return deltas
