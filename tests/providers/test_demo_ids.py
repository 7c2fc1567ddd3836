"""The demo's completion ids: unique per answer and per process, without a system call each."""

from __future__ import annotations

import os
import re

import pytest

import akgate.providers._demo as demo

ID = re.compile(r"chatcmpl-[0-9a-f]{24}")


def test_ids_are_unique_and_keep_their_format(monkeypatch: pytest.MonkeyPatch) -> None:
    # No token from the OS per answer (a system call each): the prefix is drawn once.
    monkeypatch.setattr(demo.secrets, "token_hex", lambda n=None: pytest.fail("token per answer"))
    ids = [demo._completion_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(ID.fullmatch(i) for i in ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_counts_from_a_prefix_of_its_own() -> None:
    parent = demo._completion_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, demo._completion_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert ID.fullmatch(child), child
    assert child[:21] != parent[:21]  # another random prefix (12 hex digits)
