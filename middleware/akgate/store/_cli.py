"""``akgate responses prune``, and the store ``akgate serve`` uses by default."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import anyio

from ._base import ResponseStoreUnavailable
from ._open import open_response_store

__all__ = ["add_responses_command", "serve_reasoning_keys", "serve_store_url"]

#: ``--responses-store`` values that turn the store off.
OFF = frozenset({"off", "none", "false"})


def serve_store_url(url: str | None, *, db: str | None, redis: str | None) -> str | None:
    """The response store of ``akgate serve``: ``url`` when given (``off`` for none), else Redis
    when keys are in Redis, else ``responses.sqlite3`` beside the SQLite key store."""
    if url is not None:
        return None if url.lower() in OFF else url
    if redis:
        return redis
    if db:
        return f"sqlite:///{Path(db).resolve().parent / 'responses.sqlite3'}"
    return "sqlite://"  # the default file beside the default key store


def serve_reasoning_keys(db: str | None) -> str:
    """The reasoning key ring of ``akgate serve``: ``$AKGATE_REASONING_KEYS``, else the one it
    keeps in ``reasoning.keys`` beside the key store (made on first start, mode 0600)."""
    import os

    from akgate.auth._sqlite import default_db_path

    from ._reasoning import KEYS_ENV, ensure_key_file

    spec = os.environ.get(KEYS_ENV)
    if spec:
        return spec
    home = Path(db).resolve().parent if db else default_db_path().parent
    return ensure_key_file(home / "reasoning.keys")


def _prune(args: argparse.Namespace) -> int:
    url = serve_store_url(args.store, db=args.db, redis=None) or "sqlite://"
    try:
        store = open_response_store(url)
    except ValueError as exc:
        print(f"akgate responses prune: {exc}", file=sys.stderr)
        return 2

    async def run() -> int:
        try:
            return await store.prune()
        finally:
            await store.aclose()

    try:
        count = anyio.run(run)
    except ResponseStoreUnavailable as exc:
        print(f"akgate responses prune: {exc}", file=sys.stderr)
        return 1
    print(f"pruned {count} expired response(s)")
    return 0


def add_responses_command(subparsers: Any) -> None:
    """Register ``akgate responses prune``."""
    parser = subparsers.add_parser("responses", help="manage stored responses")
    commands = parser.add_subparsers(dest="responses_command", metavar="COMMAND", required=True)
    prune = commands.add_parser(
        "prune",
        help="delete expired responses (SQLite; Redis expires them itself)",
        description="Delete the responses whose retention has passed, with their items and "
        "event logs.",
    )
    prune.add_argument(
        "--store",
        metavar="URL",
        help="the response store (default: responses.sqlite3 beside the key store)",
    )
    prune.add_argument("--db", metavar="PATH", help="the SQLite key store the store sits beside")
    prune.set_defaults(handler=_prune)
