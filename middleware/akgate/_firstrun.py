"""What ``akgate serve`` prints first: where it listens, which key store it uses, and lines the
user can paste that work, whether the store is fresh or already holds keys."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from typing import Literal, TextIO
from urllib.parse import urlsplit

from akgate.auth import KeyStore, SQLiteKeyStore
from akgate.auth._keys import hash_key, parse_key, resolve_pepper

__all__ = ["KEY_ENV", "KeyChoice", "choose_key", "print_banner", "store_label"]

#: The variable the banner's examples read a key from when ``akgate serve`` did not just make one.
KEY_ENV = "AKGATE_KEY"


@dataclass(frozen=True, slots=True)
class KeyChoice:
    """The key the banner's examples use.

    ``new``: made now on a fresh store (its secret is shown once); ``env``: ``$AKGATE_KEY`` holds a
    key of this store; ``none``: no key is known to this terminal, so the banner prints the command
    that makes one.
    """

    kind: Literal["new", "env", "none"]
    key: str | None = None
    key_id: str | None = None
    #: Why ``$AKGATE_KEY`` was not used (``none`` only).
    note: str = ""


def store_label(store: KeyStore, db: str | None, redis_url: str | None) -> tuple[str, str]:
    """``(shown, option)``: how the banner names the store, and the ``keys`` CLI option that
    reaches it (empty when that option would have to carry a password)."""
    if redis_url:
        parts = urlsplit(redis_url)
        if parts.password:
            host = parts.hostname or ""
            shown = f"Redis at {parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"
            return shown + " (password hidden)", '--redis "$AKGATE_REDIS_URL"'
        return f"Redis at {redis_url}", f"--redis {shlex.quote(redis_url)}"
    path = str(store.path) if isinstance(store, SQLiteKeyStore) else (db or "")
    return path, f"--db {shlex.quote(path)}" if path else ""


async def choose_key(store: KeyStore, created: str | None) -> KeyChoice:
    """The banner's key: the one just created, else ``$AKGATE_KEY`` if this store knows it."""
    if created is not None:
        return KeyChoice("new", created, created[:16])
    raw = os.environ.get(KEY_ENV, "").strip()
    if not raw:
        return KeyChoice("none", note=f"${KEY_ENV} is not set")
    parsed = parse_key(raw.encode("utf-8", "replace"))
    if parsed is None:
        return KeyChoice("none", note=f"${KEY_ENV} is not an akgate key")
    record = await store.lookup(hash_key(raw, resolve_pepper(None)))
    if record is None or record.revoked:
        return KeyChoice("none", note=f"${KEY_ENV} is not an active key of this store")
    return KeyChoice("env", raw, parsed[0])


def print_banner(
    base_url: str,
    choice: KeyChoice,
    *,
    store: str = "",
    store_option: str = "",
    upstream: str | None = None,
    model: str = "demo",
    file: TextIO | None = None,
) -> None:
    """Print where the gateway listens and copy-paste examples for curl and the openai SDK."""
    out = file or sys.stdout
    behind = f"upstream {upstream}" if upstream else "the demo model (models: demo, demo-reasoning)"
    python = ["  # pip install openai", "  from openai import OpenAI"]
    lines = [f"akgate serving {behind}", f"  Base URL:  {base_url}"]
    if store:
        lines.append(f"  Key store: {store}")
    make_key: list[str] = []
    if choice.kind == "new":
        assert choice.key is not None
        lines.append(f"  API key:   {choice.key}  (ak_test_ key, shown once, stored hashed)")
        shell_key, python_key = choice.key, f'"{choice.key}"'
    else:
        if choice.kind == "env":
            lines.append(f"  API key:   ${KEY_ENV} ({choice.key_id}, found in the store)")
        else:
            lines.append(f"  API key:   none known to this terminal ({choice.note}); make one:")
            create = " ".join(p for p in ("akgate keys create --name me --test", store_option) if p)
            make_key = [f"  export {KEY_ENV}=$({create})"]
        shell_key, python_key = f"${KEY_ENV}", f'os.environ["{KEY_ENV}"]'
        python.insert(1, "  import os")
    lines += [
        "",
        "Try it:",
        *make_key,
        f"  curl {base_url}/chat/completions \\",
        f'    -H "Authorization: Bearer {shell_key}" -H "Content-Type: application/json" \\',
        f'    -d \'{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello"}}]}}\'',
        "",
        *python,
        f'  client = OpenAI(base_url="{base_url}", api_key={python_key})',
        f'  print(client.responses.create(model="{model}", input="Hello").output_text)',
        "",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), file=out, flush=True)
