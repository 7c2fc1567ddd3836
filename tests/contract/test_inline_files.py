"""Files sent inline on ``/v1/responses`` (``input_file``), chat ``file`` parts and Messages PDFs.

The request shape is the one the Open Responses compliance suite sends (``file-input``): an
``input_text`` part and an ``input_file`` part with ``filename`` and a ``file_data`` data URL.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import openai
from httpx_sse import aconnect_sse

from akgate.adapter._options import AdapterOptions
from akgate.adapter._request import to_chat_request

from .conftest import ChatApp, over_app, served
from .files import REPORT, REPORT_TITLE, data_url, pdf, png

ASK_TITLE = "Read the attached file and answer with its title only."


def file_input(text: str = ASK_TITLE, **file: Any) -> list[dict[str, Any]]:
    part = {
        "type": "input_file",
        **(file or {"filename": "notes.pdf", "file_data": data_url(REPORT)}),
    }
    return [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}, part],
        }
    ]


def answer_text(body: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in body["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def assert_error(response: httpx.Response, status: int, code: str, param: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param), error


# -- akgate serve: the demo reads the file -------------------------------------------------------


async def test_the_compliance_file_request_answers_the_title_under_akgate_serve() -> None:
    async with served() as client:
        for model in ("demo", "demo-reasoning", "demo-responses"):
            r = await client.post("/v1/responses", json={"model": model, "input": file_input()})
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "completed"
            assert answer_text(r.json()) == REPORT_TITLE


async def test_the_file_request_streams_the_title() -> None:
    async with served() as client:
        body = {"model": "demo", "input": file_input(), "stream": True}
        async with aconnect_sse(client, "POST", "/v1/responses", json=body) as source:
            assert source.response.status_code == 200
            events = [json.loads(e.data) async for e in source.aiter_sse()]
    assert events[-1]["type"] == "response.completed"
    assert answer_text(events[-1]["response"]) == REPORT_TITLE


async def test_the_openai_sdk_sends_a_file_and_reads_what_the_demo_says() -> None:
    async with served() as client:
        sdk = openai.AsyncOpenAI(
            api_key=client.headers["authorization"].split()[1],
            base_url="http://gateway/v1",
            http_client=client,
        )
        response = await sdk.responses.create(
            model="demo",
            input=file_input("What does the attached file say?"),  # type: ignore[arg-type]
        )
    size = len(REPORT)
    assert response.output_text == (
        f"I read 1 file: notes.pdf (application/pdf, {size} bytes, 1 page), which says: "
        f'"Title: {REPORT_TITLE} Routing held steady (all regions)."'
        "."
    )


async def test_chat_file_parts_reach_the_demo_under_akgate_serve() -> None:
    text = b"# Release checklist\nship it\n"
    async with served() as client:
        part = {
            "type": "file",
            "file": {"filename": "list.md", "file_data": data_url(text, "text/markdown")},
        }
        body = {
            "model": "demo",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Title?"}, part]}],
        }
        r = await client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Release checklist"


# -- the options: refused by default, file_id and file_url ---------------------------------------


async def test_files_are_refused_by_default_as_the_stateless_contract_says() -> None:
    async with over_app(ChatApp()) as client:
        r = await client.post("/v1/responses", json={"model": "m", "input": file_input()})
    assert_error(r, 400, "operation_not_allowed", "input[0].content[1]")


async def test_file_id_is_refused_even_with_inline_files() -> None:
    async with served() as client:
        r = await client.post(
            "/v1/responses",
            json={"model": "demo", "input": file_input(file_id="file-abc", filename="x.pdf")},
        )
    assert_error(r, 400, "operation_not_allowed", "input[0].content[1].file_id")


async def test_file_url_cannot_reach_a_chat_provider() -> None:
    async with served() as client:
        r = await client.post(
            "/v1/responses",
            json={"model": "demo", "input": file_input(file_url="https://example.com/a.pdf")},
        )
    assert_error(r, 400, "operation_not_allowed", "input[0].content[1].file_url")


async def test_an_input_file_without_data_names_the_missing_field() -> None:
    async with served() as client:
        r = await client.post(
            "/v1/responses", json={"model": "demo", "input": file_input(filename="x.pdf")}
        )
    assert_error(r, 400, "missing_required_parameter", "input[0].content[1].file_data")


async def test_the_chat_app_gets_a_chat_file_part() -> None:
    app = ChatApp()
    files = {"m": {"capabilities": {"files": True}}}
    async with over_app(app, models=files, inline_files=True) as client:
        r = await client.post("/v1/responses", json={"model": "m", "input": file_input()})
    assert r.status_code == 200, r.text
    assert app.bodies[-1]["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": ASK_TITLE},
                {"type": "file", "file": {"file_data": data_url(REPORT), "filename": "notes.pdf"}},
            ],
        }
    ]


async def test_the_wrapped_apps_models_get_images_and_files_unless_the_catalog_says_no() -> None:
    """The gateway cannot know what the app reads, so it lets the app answer (an upstream too)."""
    app = ChatApp()
    image = {"type": "image_url", "image_url": {"url": data_url(png(2, 2), "image/png")}}
    part = {"type": "file", "file": {"file_data": data_url(REPORT), "filename": "a.pdf"}}
    chat = {"model": "m", "messages": [{"role": "user", "content": [image, part]}]}
    async with over_app(app) as client:
        r = await client.post("/v1/chat/completions", json=chat)
    assert r.status_code == 200, r.text
    assert app.bodies[-1]["messages"][0]["content"] == [image, part]
    no_images = {"m": {"capabilities": {"vision": False}}}
    async with over_app(app, models=no_images) as client:
        r = await client.post("/v1/chat/completions", json=chat)
    assert_error(r, 400, "vision_not_supported", "messages")


async def test_a_model_that_cannot_read_files_is_a_clear_400() -> None:
    app = ChatApp()
    no_files = {"m": {"capabilities": {"files": False}}}
    async with over_app(app, models=no_files, inline_files=True) as client:
        r = await client.post("/v1/responses", json={"model": "m", "input": file_input()})
        assert_error(r, 400, "unsupported_modalities", "input")
        part = {"type": "file", "file": {"file_data": data_url(REPORT), "filename": "a.pdf"}}
        chat = {"model": "m", "messages": [{"role": "user", "content": [part]}]}
        r = await client.post("/v1/chat/completions", json=chat)
        assert_error(r, 400, "unsupported_modalities", "messages")
    assert app.bodies == []


async def test_a_chat_file_part_needs_data_or_an_id() -> None:
    async with served() as client:
        part = {"type": "file", "file": {"filename": "a.pdf"}}
        chat = {"model": "demo", "messages": [{"role": "user", "content": [part]}]}
        r = await client.post("/v1/chat/completions", json=chat)
    assert_error(r, 400, "missing_required_parameter", "messages[0].content[0].file.file_data")


def test_files_returned_by_a_tool_follow_the_tool_results_as_a_user_message() -> None:
    report = {"type": "input_file", "filename": "r.pdf", "file_data": data_url(REPORT)}
    payload = {
        "model": "m",
        "input": [
            {"type": "function_call", "call_id": "c1", "name": "fetch", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "fetch", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "c1",
                "output": [{"type": "input_text", "text": "here"}, report],
            },
            {"type": "function_call_output", "call_id": "c2", "output": "none"},
            {"role": "user", "content": "thanks"},
        ],
    }
    chat = to_chat_request(payload, AdapterOptions(inline_files=True))
    assert [m["role"] for m in chat["messages"]] == ["assistant", "tool", "tool", "user", "user"]
    assert chat["messages"][1]["content"] == "here"
    assert chat["messages"][3]["content"] == [
        {"type": "file", "file": {"file_data": report["file_data"], "filename": "r.pdf"}}
    ]


# -- the Messages endpoint: PDF document blocks ---------------------------------------------------


async def test_a_messages_pdf_is_read_by_the_demo_and_refused_by_a_model_without_files() -> None:
    block = {
        "type": "document",
        "source": {
            "type": "base64",
            "media_type": "application/pdf",
            "data": base64.b64encode(pdf("Title: Field Notes")).decode(),
        },
    }
    body = {
        "model": "demo",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Its title?"}, block]}],
    }
    headers = {"anthropic-version": "2023-06-01"}
    async with served() as client:
        r = await client.post("/v1/messages", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["content"][0]["text"] == "Field Notes"
    no_files = {"m": {"capabilities": {"files": False}}}
    async with over_app(ChatApp(), models=no_files) as client:
        r = await client.post("/v1/messages", json={**body, "model": "m"}, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "file input" in r.json()["error"]["message"]
