"""Encrypted reasoning: stateless continuity across store:false turns, key rotation, and blobs
that cannot be used (tampered, another workspace's, another model's, unknown key)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import openai
import pytest

from akgate.store import MemoryResponseStore, ReasoningKeyRing
from akgate.store._reasoning import InvalidReasoning, ensure_key_file
from tests.state.conftest import ChatEcho, keys, sdk, stack

INCLUDE = ["reasoning.encrypted_content"]


def ring_spec(*kids: str) -> str:
    return ",".join(
        f"{kid}:{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}" for kid in kids
    )


def app_with(echo: ChatEcho, ring: str | None, *key: Any, **options: Any) -> Any:
    return stack(
        echo,
        MemoryResponseStore(),
        *key,
        adapter_options={"reasoning_input": "reasoning_content"},
        response_store_options={"reasoning_keys": ring, **options},
    )


async def first_turn(client: openai.AsyncOpenAI, model: str = "reasoner") -> Any:
    response = await client.responses.create(model=model, input="why", store=False, include=INCLUDE)
    reasoning = response.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.encrypted_content is not None
    assert "thinking" not in reasoning.encrypted_content  # sealed, not encoded
    return response


def replay(response: Any, **changes: Any) -> list[dict[str, Any]]:
    reasoning = response.output[0].model_dump(exclude_none=True)
    reasoning.update(changes)
    reasoning.pop("summary", None)  # Codex-style: only the blob carries the text
    return [
        {"role": "user", "content": "why"},
        reasoning,
        {"role": "assistant", "content": response.output_text},
        {"role": "user", "content": "and"},
    ]


async def test_reasoning_survives_store_false_turns(echo: ChatEcho) -> None:
    a, _ = keys()
    app = app_with(echo, ring_spec("k1"), a)
    client = sdk(app, a)
    first = await first_turn(client)
    second = await client.responses.create(
        model="reasoner", input=replay(first), store=False, include=INCLUDE
    )
    assert echo.requests[-1]["messages"][1]["reasoning_content"] == "thinking about echo: why"
    assert not second.to_dict().get("input_transformations")
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(second.id)  # nothing was stored


async def test_streamed_blob_is_the_same_in_done_and_completed(echo: ChatEcho) -> None:
    a, _ = keys()
    client = sdk(app_with(echo, ring_spec("k1"), a), a)
    async with client.responses.stream(
        model="reasoner", input="why", store=False, include=INCLUDE
    ) as stream:
        events = [e async for e in stream]
    added = next(e for e in events if e.type == "response.output_item.added")
    done = next(e for e in events if e.type == "response.output_item.done")
    completed = events[-1]
    assert added.item.type == "reasoning"
    assert getattr(added.item, "encrypted_content", None) is None
    assert done.item.encrypted_content
    assert done.item.encrypted_content == completed.response.output[0].encrypted_content


@pytest.mark.parametrize("case", ["tampered", "workspace", "model", "unknown_key"])
async def test_unusable_blob_is_dropped_and_reported(echo: ChatEcho, case: str) -> None:
    a, b = keys()
    spec = ring_spec("k1")
    app = app_with(echo, spec, a, b)
    first = await first_turn(sdk(app, a))
    blob = first.output[0].encrypted_content
    client, model = sdk(app, a), "reasoner"
    expected = {
        "tampered": "invalid_encrypted_content",
        "workspace": "organization_mismatch",
        "model": "model_mismatch",
        "unknown_key": "prefix_mismatch",
    }[case]
    if case == "tampered":
        blob = blob[:-4] + ("AAAA" if not blob.endswith("AAAA") else "BBBB")
    elif case == "workspace":
        client = sdk(app, b)
    elif case == "model":
        model = "echo"
    else:
        other = app_with(ChatEcho(), ring_spec("k9"), a)
        blob = (await first_turn(sdk(other, a))).output[0].encrypted_content
    response = await client.responses.create(
        model=model, input=replay(first, encrypted_content=blob), store=False
    )
    assert response.output_text == "echo: and"  # the turn goes on
    assert "reasoning_content" not in echo.requests[-1]["messages"][1]
    transformations = response.to_dict()["input_transformations"]
    assert transformations == [
        {"id": first.output[0].id, "type": "reasoning", "action": "removed", "reason": expected}
    ]


async def test_strict_mode_answers_400(echo: ChatEcho) -> None:
    a, _ = keys()
    app = app_with(echo, ring_spec("k1"), a, strict_encrypted_content=True)
    client = sdk(app, a)
    first = await first_turn(client)
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(
            model="reasoner", input=replay(first, encrypted_content="akgr1.k1.AAAA"), store=False
        )
    assert info.value.body["code"] == "invalid_encrypted_content"  # type: ignore[index]


async def test_rotation_keeps_old_blobs_readable(echo: ChatEcho) -> None:
    a, _ = keys()
    old = ring_spec("k1")
    first = await first_turn(sdk(app_with(echo, old, a), a))
    rotated = ring_spec("k2") + "," + old  # the new key seals, the old one still opens
    app = app_with(echo, rotated, a)
    await sdk(app, a).responses.create(model="reasoner", input=replay(first), store=False)
    assert echo.requests[-1]["messages"][1]["reasoning_content"] == "thinking about echo: why"
    fresh = await first_turn(sdk(app, a))
    assert fresh.output[0].encrypted_content.startswith("akgr1.k2.")


async def test_include_without_a_key_ring_is_refused(
    echo: ChatEcho, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AKGATE_REASONING_KEYS", raising=False)
    a, _ = keys()
    client = sdk(app_with(echo, None, a), a)
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="reasoner", input="x", include=INCLUDE)
    assert info.value.body["param"] == "include"  # type: ignore[index]
    assert "AKGATE_REASONING_KEYS" in info.value.body["message"]  # type: ignore[index]


def test_key_ring_parsing_and_key_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ReasoningKeyRing.parse("k1:AAAA")
    with pytest.raises(ValueError, match="kid:"):
        ReasoningKeyRing.parse("nocolon")
    path = tmp_path / "reasoning.keys"
    spec = ensure_key_file(path)
    assert ensure_key_file(path) == spec  # kept, not remade
    assert path.stat().st_mode & 0o777 == 0o600
    ring = ReasoningKeyRing.parse(spec)
    blob = ring.seal("t", workspace="w", model="m")
    assert ring.open(blob, workspace="w", model="m") == "t"
    with pytest.raises(InvalidReasoning):
        ring.open(blob, workspace="other", model="m")
    assert spec.split(":")[1] not in repr(ring)
