"""Two uvicorn workers sharing one store (SQLite file, or Redis): create on one, read, continue,
resume and cancel on the other. Each worker is its own stack and store client, as in separate
processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest

from akgate.auth import NewKey
from tests.state.conftest import ChatEcho, keys, stack
from tests.support.servers import run_uvicorn


@contextmanager
def two_workers(make_store: Any) -> Iterator[tuple[openai.OpenAI, openai.OpenAI, NewKey]]:
    a, _ = keys()
    with ExitStack() as servers:
        clients = []
        for _ in range(2):
            # A URL: each worker's stack opens its own client and closes it at shutdown.
            app = stack(ChatEcho(), make_store(), a)
            url = servers.enter_context(run_uvicorn(app))
            client = openai.OpenAI(base_url=url + "/v1", api_key=a.key, max_retries=0)
            servers.callback(client.close)  # closed before its server stops
            clients.append(client)
        yield clients[0], clients[1], a


def poll(client: openai.OpenAI, response_id: str) -> Any:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        response = client.responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress"):
            return response
        time.sleep(0.05)
    raise AssertionError("the run did not finish")


def exercise(one: openai.OpenAI, two: openai.OpenAI) -> None:
    first = one.responses.create(model="echo", input="hi")
    second = two.responses.create(model="echo", input="again", previous_response_id=first.id)
    assert second.output_text == "echo: again"
    assert two.responses.retrieve(first.id).output_text == "echo: hi"

    background = one.responses.create(model="echo", input="bg", background=True)
    assert poll(two, background.id).output_text == "echo: bg"

    # A stream started on one worker, resumed on the other (which follows the stored log).
    stream = one.responses.create(model="ticks", input="s", background=True, stream=True)
    iterator = iter(stream)
    head = [next(iterator) for _ in range(4)]
    stream.close()
    response_id = head[0].response.id
    with two.responses.stream(response_id=response_id, starting_after=1) as resumed:
        rest = list(resumed)
    assert rest[0].sequence_number == 2
    assert rest[-1].type == "response.completed"

    # Cancel on the other worker: the run stops (its worker sees the flag) and stays cancelled.
    slow = one.responses.create(model="slow", input="c", background=True)
    time.sleep(0.2)
    assert two.responses.cancel(slow.id).status == "cancelled"
    time.sleep(1.0)
    assert one.responses.retrieve(slow.id).status == "cancelled"
    # Delete on the other worker while it runs: it stops, and does not come back.
    doomed = one.responses.create(model="slow", input="d", background=True)
    time.sleep(0.2)
    two.responses.delete(doomed.id)
    time.sleep(1.0)
    with pytest.raises(openai.NotFoundError):
        one.responses.retrieve(doomed.id)
    two.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        one.responses.retrieve(first.id)


def test_two_workers_share_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    with two_workers(lambda: f"sqlite:///{path}") as (one, two, _):
        exercise(one, two)


def test_two_workers_share_redis(redis_server: Any) -> None:
    redis_server.flush()
    with two_workers(lambda: redis_server.url) as (one, two, _):
        exercise(one, two)
