"""Every Python snippet in README.md and docs/*.md runs as written.

A snippet runs alone, in a fresh namespace, in a temporary directory, with ``$AKGATE_API_KEYS``
holding one key (``$AKGATE_KEY`` holds it too, as the quickstart has the reader export it) and
``$OPENAI_API_KEY`` / ``$ANTHROPIC_API_KEY`` / ``$REDIS_URL`` holding dummies. An HTML comment
right above the fence changes that (the directives are documented in CONTRIBUTING.md, "Docs
snippets"):

* ``<!-- docs-test: continue -->``: continues the previous snippet of the page (its namespace);
* ``<!-- docs-test: server MODULE:NAME -->``: the snippet is a client of a server on
  127.0.0.1:8000; that ASGI app (``akgate:serve`` is ``akgate serve``'s demo stack) is started on a
  free port and the snippet's ``127.0.0.1:8000`` points there;
* ``<!-- docs-test: call MODEL [stream] -->``: after it ran, the ``app`` (or ``application``) it
  built must answer ``/v1/chat/completions`` and ``/v1/responses`` for MODEL with 200 (JSON, and
  streamed too with ``stream``);
* ``<!-- docs-test: skip REASON -->``: not run (only for code that cannot run in a test: it
  blocks serving forever, or is a fragment of another file). Keep this set tiny.
"""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from akgate.auth._keys import generate_key
from tests.support.servers import run_uvicorn

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[^\n]*\n(?P<code>.*?)^(?P=indent)```", re.M | re.S)
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*\Z", re.S)
#: Snippets that may be skipped, at most: the set stays tiny and visible here.
MAX_SKIPPED = 4


@dataclass
class Snippet:
    page: str
    line: int
    code: str
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def snippets() -> list[Snippet]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip()
            directives: dict[str, str] = {}
            comment = DIRECTIVE.search(before[before.rfind("<!--") :]) if "<!--" in before else None
            if comment is not None:
                for part in comment.group("body").split(";"):
                    name, _, value = part.strip().partition(" ")
                    directives[name] = value.strip()
            found.append(
                Snippet(
                    page=str(page.relative_to(ROOT)),
                    line=text.count("\n", 0, match.start()) + 1,
                    code=textwrap.dedent(match.group("code")),
                    directives=directives,
                )
            )
    return found


ALL = snippets()


def test_the_runner_sees_the_snippets_and_skips_few() -> None:
    assert len(ALL) >= 25
    unknown = [s.id for s in ALL if set(s.directives) - {"continue", "server", "call", "skip"}]
    assert not unknown, f"unknown docs-test directives in {unknown}"
    skipped = [s for s in ALL if "skip" in s.directives]
    assert all(s.directives["skip"] for s in skipped), "a skip must say why"
    assert len(skipped) <= MAX_SKIPPED, [s.id for s in skipped]


@contextmanager
def server(spec: str, key: str) -> Iterator[str]:
    if spec == "akgate:serve":
        from akgate import MemoryKeyStore
        from akgate._serve import ServeConfig, build_app

        app: Any = build_app(ServeConfig(token_delay_ms=0), keys=MemoryKeyStore.from_keys([key]))
    else:
        module, _, name = spec.partition(":")
        if not module.startswith("akgate"):  # an example app: built afresh with this test's key
            sys.modules.pop(module, None)
        app = getattr(importlib.import_module(module), name.removesuffix("()"))
        if name.endswith("()"):
            app = app()
    with run_uvicorn(app, lifespan="on") as base:
        yield base.removeprefix("http://")


def close_clients(namespaces: list[dict[str, Any]]) -> None:
    """Close the SDK clients the snippets opened (a reader's script ends with its process)."""
    for namespace in namespaces:
        for value in namespace.values():
            module = type(value).__module__.split(".")[0]
            if module in ("openai", "anthropic", "auriko", "httpx") and callable(
                getattr(value, "close", None)
            ):
                value.close()


async def call(app: Any, directive: str, key: str) -> None:
    model, _, mode = directive.partition(" ")
    streams = (False, True) if mode == "stream" else (False,)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"authorization": f"Bearer {key}"},
    ) as http:
        chat = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        for path, body in [
            request
            for stream in streams
            for request in (
                ("/v1/chat/completions", {**chat, "stream": stream}),
                ("/v1/responses", {"model": model, "input": "hi", "stream": stream}),
            )
        ]:
            response = await http.post(path, json=body)
            assert response.status_code == 200, (path, response.text)


@pytest.mark.server
@pytest.mark.parametrize("page", sorted({s.page for s in ALL}))
def test_snippets_run_as_written(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key, _ = generate_key("test")
    monkeypatch.setenv("AKGATE_API_KEYS", key)
    monkeypatch.setenv("AKGATE_KEY", key)
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-docs-test")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")  # never connected to
    monkeypatch.chdir(tmp_path)
    # The guides run from the repository root (examples.*) or the Django project (chatsite.*).
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "django_project"))
    monkeypatch.syspath_prepend(str(ROOT))
    namespace: dict[str, Any] = {}
    namespaces = [namespace]
    with ExitStack() as servers:
        servers.callback(close_clients, namespaces)
        addresses: dict[str, str] = {}  # one server per spec and page: snippets continue
        for snippet in (s for s in ALL if s.page == page):
            if "skip" in snippet.directives:
                continue
            if "continue" not in snippet.directives:
                namespace = {"__name__": "__docs__"}
                namespaces.append(namespace)
            code = snippet.code
            spec = snippet.directives.get("server")
            try:
                if spec:
                    if spec not in addresses:
                        addresses[spec] = servers.enter_context(server(spec, key))
                    code = code.replace("127.0.0.1:8000", addresses[spec])
                exec(compile(code, snippet.id, "exec"), namespace)
                if "call" in snippet.directives:
                    app = namespace.get("app", namespace.get("application"))
                    anyio.run(call, app, snippet.directives["call"], key)
            except Exception as exc:
                raise AssertionError(f"{snippet.id}: {type(exc).__name__}: {exc}") from exc
    capsys.readouterr()
