"""Paths, methods and headers through the served stack over a real uvicorn, with raw httpx."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from akgate._serve import ServeConfig, build_app
from akgate.auth import MemoryKeyStore, ensure_demo_key
from tests.support.servers import run_uvicorn

from .conftest import assert_envelope

pytestmark = pytest.mark.server

CHAT = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "demo", "input": "hi"}
TEXT = 'Hello! I am the akgate demo model. You said: "hi"'


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/chat/completions?x=1&y"])
def test_chat_path_with_query_string_is_served(http: httpx.Client, path: str) -> None:
    response = http.post(path, json=CHAT)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == TEXT
    assert response.json()["routing_metadata"]["provider"] == "demo"


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/responses?x=1"])
def test_responses_path_with_query_string_is_served(http: httpx.Client, path: str) -> None:
    response = http.post(path, json=RESPONSES)
    assert response.status_code == 200
    assert response.json()["output_text"] == TEXT


def test_chat_path_with_a_trailing_slash_is_routed(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions/", json=CHAT)
    assert response.status_code == 200, response.text
    assert response.json()["routing_metadata"]["provider"] == "demo"


def test_responses_path_with_a_trailing_slash_is_routed(http: httpx.Client) -> None:
    response = http.post("/v1/responses/", json=RESPONSES)
    assert response.status_code == 200, response.text
    assert response.json()["output_text"] == TEXT


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_post_endpoints_are_405_with_allow(
    http: httpx.Client, path: str, method: str
) -> None:
    response = http.request(method, path, json=CHAT if method in ("PUT", "PATCH") else None)
    assert_envelope(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
def test_head_on_post_endpoints_is_405_without_a_body(http: httpx.Client, path: str) -> None:
    response = http.head(path)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers.get("x-request-id")
    assert response.content == b""


def test_models_list_with_and_without_trailing_slash(http: httpx.Client) -> None:
    for path in ("/v1/models", "/v1/models/", "/v1/models?endpoint=responses"):
        response = http.get(path)
        assert response.status_code == 200
        assert {"demo", "demo-reasoning"} <= {m["id"] for m in response.json()["data"]}


def test_unknown_model_is_404_model_not_found(http: httpx.Client) -> None:
    error = assert_envelope(http.get("/v1/models/unknown"), 404, "model_not_found")
    assert error["param"] == "model"


def test_model_alias_returns_the_canonical_entry(http: httpx.Client) -> None:
    response = http.get("/v1/models/demo-latest")
    assert response.status_code == 200
    assert response.json()["id"] == "demo"


def test_post_on_models_is_405(http: httpx.Client) -> None:
    response = http.post("/v1/models", json={})
    assert_envelope(response, 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/v1/nothing", "/nothing", "/", "/v1"])
def test_unknown_paths_are_404_envelopes_with_a_request_id(http: httpx.Client, path: str) -> None:
    assert_envelope(http.get(path), 404, "resource_not_found")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models", "/v1/nothing", "/v1/me"])
def test_missing_key_is_401_with_www_authenticate(served: tuple[str, str], path: str) -> None:
    base, _ = served
    response = httpx.get(base + path)
    assert_envelope(response, 401, "invalid_api_key")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


def test_wrong_key_is_401_and_never_echoed(served: tuple[str, str]) -> None:
    base, _ = served
    secret = "ak_live_" + "x" * 40
    response = httpx.post(
        base + "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {secret}"}
    )
    assert_envelope(response, 401, "invalid_api_key")
    assert secret not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        [("AUTHORIZATION", "BEARER {key}")],
        [("X-Api-Key", "{key}")],
    ],
)
def test_odd_auth_header_spellings_are_accepted(
    served: tuple[str, str], headers: list[tuple[str, str]]
) -> None:
    base, key = served
    response = httpx.post(
        base + "/v1/chat/completions",
        json=CHAT,
        headers=[(k, v.format(key=key)) for k, v in headers],
    )
    assert response.status_code == 200, response.text


def _raw_post(base: str, key: str, headers: list[tuple[str, str]], body: object) -> httpx.Response:
    with httpx.Client(base_url=base) as client:
        request = client.build_request("POST", "/v1/chat/completions", content=b"")
        request = httpx.Request(
            "POST",
            request.url,
            headers=[("authorization", f"Bearer {key}"), *headers],
            content=body,  # type: ignore[arg-type]
        )
        return client.send(request)


@pytest.mark.parametrize(
    "content_types",
    [
        ["application/json; charset=utf-8"],
        ["APPLICATION/JSON"],
        ["application/json", "application/json"],
        ["application/vnd.api+json"],
    ],
)
def test_json_content_types_are_accepted(served: tuple[str, str], content_types: list[str]) -> None:
    base, key = served
    headers = [("Content-Type", ct) for ct in content_types]
    response = _raw_post(base, key, headers, json.dumps(CHAT).encode())
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("content_types", [[], ["text/plain"], ["text/plain", "application/json"]])
def test_missing_or_wrong_content_type_is_415(
    served: tuple[str, str], content_types: list[str]
) -> None:
    base, key = served
    headers = [("content-type", ct) for ct in content_types]
    response = _raw_post(base, key, headers, json.dumps(CHAT).encode())
    assert_envelope(response, 415, "invalid_request")


def test_chunked_request_body_is_read_whole(served: tuple[str, str]) -> None:
    base, key = served
    raw = json.dumps(CHAT).encode()
    parts = iter([raw[:7], raw[7:20], raw[20:]])
    response = _raw_post(base, key, [("content-type", "application/json")], parts)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == TEXT


def test_chunked_request_body_to_responses_is_read_whole(served: tuple[str, str]) -> None:
    base, key = served
    raw = json.dumps(RESPONSES).encode()
    with httpx.Client(base_url=base) as client:
        response = client.post(
            "/v1/responses",
            content=iter([raw[:5], raw[5:]]),
            headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["output_text"] == TEXT


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "invalid_request"),
        (b"{", "invalid_request"),
        (b"[]", "invalid_request"),
        (b'{"model": "\xff"}', "invalid_request"),
        (b'{"model": "demo"}', "missing_required_parameter"),
    ],
)
def test_malformed_bodies_are_400_envelopes(
    served: tuple[str, str], body: bytes, code: str
) -> None:
    base, key = served
    response = _raw_post(base, key, [("content-type", "application/json")], body)
    assert_envelope(response, 400, code)


def test_request_id_from_the_client_is_echoed(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=CHAT, headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


def test_overlong_request_id_is_replaced(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=CHAT, headers={"x-request-id": "a" * 200})
    assert response.headers["x-request-id"] != "a" * 200
    assert response.headers["x-request-id"]


def test_bad_fault_header_is_a_400_on_the_header(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=CHAT, headers={"x-demo-fault": "bogus"})
    error = assert_envelope(response, 400, "invalid_parameter_value")
    assert error["param"] == "x-demo-fault"


def test_stack_under_a_root_path() -> None:
    store = MemoryKeyStore()
    key = anyio.run(ensure_demo_key, store)
    app = build_app(ServeConfig(token_delay_ms=0), keys=store)
    with (
        run_uvicorn(app, root_path="/llm") as base,
        httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}) as client,
    ):
        # The proxy strips /llm; uvicorn puts it back into path and sets root_path.
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert client.post("/v1/responses", json=RESPONSES).json()["output_text"] == TEXT
        assert client.get("/v1/models/demo-latest").json()["id"] == "demo"
        assert client.get("/v1/me").status_code == 200
        assert_envelope(client.get("/v1/chat/completions"), 405, "method_not_allowed")
        assert_envelope(httpx.get(base + "/v1/models"), 401, "invalid_api_key")
