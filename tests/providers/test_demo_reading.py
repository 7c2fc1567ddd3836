"""The demo reads files honestly and follows the plain instructions first-time users give.

Files: name, media type, size, and the text of a simple PDF's ``Tj``/``TJ`` strings (or a text
file), never guessed. Instructions: ``say X in exactly N words``, ``count from A to B``, ``say
hello``, and a pirate system prompt (docs/providers.md, "What it answers").
"""

from __future__ import annotations

import base64

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.providers._demo_files import answer_about_files, read_file
from akgate.providers.demo import DemoModel
from tests.contract.files import REPORT, REPORT_TITLE, data_url, pdf


def test_a_simple_pdf_gives_its_text_title_size_and_pages() -> None:
    file = read_file({"filename": "notes.pdf", "file_data": data_url(REPORT)})
    assert (file.name, file.media_type, file.size, file.pages) == (
        "notes.pdf",
        "application/pdf",
        len(REPORT),
        1,
    )
    assert file.text == f"Title: {REPORT_TITLE}\nRouting held steady (all regions)."
    assert file.title == REPORT_TITLE


def test_the_pdf_info_title_wins_and_tj_arrays_and_escapes_are_read() -> None:
    raw = pdf("first line", info_title="The Info Title").replace(
        b"(first line) Tj", b"[(Kerned) -120 (Text \\(ok\\) \\101)] TJ"
    )
    file = read_file({"filename": "k.pdf", "file_data": data_url(raw)})
    assert file.text == "KernedText (ok) A"
    assert file.title == "The Info Title"


def test_raw_base64_is_sniffed_as_a_pdf() -> None:
    file = read_file({"filename": "x.bin", "file_data": base64.b64encode(REPORT).decode()})
    assert (file.media_type, file.title) == ("application/pdf", REPORT_TITLE)


@pytest.mark.parametrize(
    ("spec", "unread"),
    [
        (
            {"filename": "z.pdf", "file_data": data_url(pdf("hidden", compress=True))},
            "its text is in compressed streams",
        ),
        ({"filename": "b.pdf", "file_data": "data:application/pdf;base64,@@@"}, "not valid base64"),
        ({"file_id": "file-1"}, "it was sent by id, not inline"),
        (
            {"filename": "i.bin", "file_data": data_url(b"\x00\x01", "application/octet-stream")},
            "the demo reads only text and simple PDFs",
        ),
    ],
)
def test_what_the_demo_cannot_read_it_says(spec: dict[str, str], unread: str) -> None:
    file = read_file(spec)
    assert file.text is None
    assert file.unread is not None
    assert unread in file.unread


async def ask(messages: list[dict[str, object]]) -> str:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=DemoModel()), base_url="http://demo"
    ) as client:
        r = await client.post("/v1/chat/completions", json={"model": "demo", "messages": messages})
    assert r.status_code == 200, r.text
    content: str = r.json()["choices"][0]["message"]["content"]
    return content


def user(text: str) -> dict[str, object]:
    return {"role": "user", "content": text}


@pytest.mark.parametrize(
    ("prompt", "answer"),
    [
        ("Say hello in exactly 3 words.", "Hello dear friend!"),
        ("Say hello in exactly one word.", "Hello!"),
        ("Say goodbye in exactly 4 words.", "Goodbye from the akgate."),
        ("Count from 1 to 5.", "1, 2, 3, 4, 5"),
        ("count down from 3 to 1", "3, 2, 1"),
        ("Count to 3.", "1, 2, 3"),
        ("Say hello.", "Hello!"),
        ("Say hi to Ada.", "Hi, Ada!"),
        ("Say thank you.", "Thank you!"),
    ],
)
async def test_plain_instructions(prompt: str, answer: str) -> None:
    assert await ask([user(prompt)]) == answer


async def test_a_pirate_system_prompt_gets_pirate_speak() -> None:
    system = {"role": "system", "content": "You are a pirate. Always respond in pirate speak."}
    assert await ask([system, user("Say hello.")]) == "Arr! Ahoy!"
    assert await ask([system, user("hi my friend")]) == (
        'Arr! Ahoy! I am th\' akgate demo model. Ye spake: "hi my friend"'
    )
    # An exact reply stays exact.
    assert await ask([system, user("Reply with exactly OK.")]) == "OK"


async def test_a_long_say_is_still_echoed() -> None:
    prompt = "Say something kind about my garden please"
    assert await ask([user(prompt)]) == f'Hello! I am the akgate demo model. You said: "{prompt}"'


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=400).map(lambda b: b"%PDF-1.4\n" + b),
    st.text(max_size=40),
    st.sampled_from(["application/pdf", "text/plain", "image/png", ""]),
)
def test_any_bytes_are_described_never_raised_on(data: bytes, name: str, media: str) -> None:
    url = data_url(data, media) if media else base64.b64encode(data).decode()
    file = read_file({"filename": name, "file_data": url})
    assert file.size == len(data)
    assert (file.text is None) != (file.unread is None)  # read, or says why not
    assert answer_about_files("What is its title?", [file])


@given(st.text(max_size=200))
def test_any_file_data_string_is_described(raw: str) -> None:
    assert answer_about_files("read it", [read_file({"file_data": raw})]).startswith(
        "I read 1 file"
    )
