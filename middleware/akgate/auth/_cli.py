"""``akgate keys create|list|revoke`` against the SQLite file (default) or Redis (``keys update``
is registered here and lives in ``akgate.usage._cli``, beside the spend limits it also sets)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import anyio

from ._keys import KeyRecord, generate_key, iso_timestamp
from ._redisstore import RedisKeyStore
from ._sqlite import SQLiteKeyStore
from ._stores import KeyStore, KeyStoreUnavailable, create_key

__all__ = ["add_keys_command", "open_key_store", "parse_expires"]

T = TypeVar("T")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def open_key_store(
    db: str | None = None, redis: str | None = None, *, create: bool = True
) -> KeyStore:
    """The store the CLI and ``akgate serve`` use: Redis if a URL is given, else the SQLite file
    (``db`` or ``$AKGATE_HOME/keys.sqlite3``, default ``~/.akgate/keys.sqlite3``; ``create``:
    whether a missing file may be created)."""
    if redis:
        return RedisKeyStore(redis)
    return SQLiteKeyStore(db, create=create)


def parse_expires(value: str, *, now: float | None = None) -> float:
    """Epoch seconds from ``30d`` / ``12h`` / ``45m`` / ``90s`` / ``2w`` or an ISO-8601 date or
    datetime (UTC unless it names an offset)."""
    now = time.time() if now is None else now
    match = _DURATION.match(value.strip())
    if match:
        return now + int(match.group(1)) * _UNITS[match.group(2)]
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"cannot read --expires {value!r}: use 30d, 12h, 45m or an ISO date (2030-01-31)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(part for value in values or () for part in re.split(r"[\s,]+", value) if part)


def _run(
    args: argparse.Namespace,
    action: Callable[[KeyStore], Awaitable[T]],
    *,
    create: bool = False,
) -> T:
    # Only `keys create` may create the file: listing or revoking in a missing one must fail,
    # not report an empty store or "no key with id".
    async def main() -> T:
        store = open_key_store(args.db, args.redis, create=create)
        try:
            return await action(store)
        finally:
            await store.aclose()

    return anyio.run(main)


def _fail(message: str) -> int:
    print(f"akgate keys: {message}", file=sys.stderr)
    return 1


def _cmd_create(args: argparse.Namespace) -> int:
    try:
        expires_at = parse_expires(args.expires) if args.expires else None
        if expires_at is not None and expires_at <= time.time():
            return _fail("--expires is in the past")
        options: dict[str, Any] = {
            "name": args.name,
            "environment": "test" if args.test else "live",
            "scopes": _split(args.scopes),
            "allowed_models": _split(args.models),
            "rate_limit_rpm": args.rpm,
            "expires_at": expires_at,
            "workspace_id": args.workspace,
            "workspace_name": args.workspace_name or args.workspace,
            "profile": args.profile,
        }
        new = _run(args, lambda store: create_key(store, **options), create=True)
    except (ValueError, KeyStoreUnavailable) as exc:
        return _fail(str(exc))
    from akgate.usage._cli import apply_limit_options

    try:
        limits = apply_limit_options(args, new.key_id)
    except Exception as exc:  # the key exists: say so, and how to set the limits again
        print(new.key)
        return _fail(
            f"created {new.key_id} but could not store its limits ({exc}); "
            "set them with: akgate keys update"
        )
    if args.json:
        print(json.dumps({"key": new.key, **_public(new.record), "limits": limits}))
    else:
        print(new.key)
        print(
            f"Created {new.key_id} ({args.name}). Store the key now: it is not shown again.",
            file=sys.stderr,
        )
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    key, key_id = generate_key("test" if args.test else "live")
    print(key)
    print(
        f"Generated {key_id}; not stored anywhere. Give it to the gateway through "
        "AKGATE_API_KEYS (comma-separated) or MemoryKeyStore.from_keys([...]).",
        file=sys.stderr,
    )
    return 0


def _public(record: KeyRecord) -> dict[str, Any]:
    data = record.to_dict()
    del data["key_hash"]
    data["status"] = record.status(time.time())
    for field in ("expires_at", "created_at", "revoked_at"):
        data[field] = iso_timestamp(data[field])
    return data


def _cmd_list(args: argparse.Namespace) -> int:
    try:
        records = _run(args, lambda store: store.list_keys())
    except KeyStoreUnavailable as exc:
        return _fail(str(exc))
    rows = [_public(record) for record in records]
    if args.json:
        print(json.dumps(rows))
        return 0
    columns = ("key_id", "name", "environment", "status", "rate_limit_rpm", "scopes", "expires_at")
    table = [["KEY ID", "NAME", "ENV", "STATUS", "RPM", "SCOPES", "EXPIRES"]]
    for row in rows:
        cells = []
        for column in columns:
            value = row[column]
            if isinstance(value, list):
                value = ",".join(value) or "*"
            cells.append("-" if value is None else str(value))
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    for cells in table:
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip())
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    try:
        found = _run(args, lambda store: store.revoke(args.key_id))
    except KeyStoreUnavailable as exc:
        return _fail(str(exc))
    if not found:
        return _fail(f"no key with id {args.key_id!r}")
    print(f"Revoked {args.key_id}.")
    return 0


def add_keys_command(subparsers: Any) -> None:
    """Register ``akgate keys ...`` on the top-level sub-parsers."""
    store_options = argparse.ArgumentParser(add_help=False)
    where = store_options.add_mutually_exclusive_group()
    where.add_argument(
        "--db",
        metavar="PATH",
        help="SQLite key file (default: $AKGATE_HOME/keys.sqlite3 or ~/.akgate/keys.sqlite3)",
    )
    where.add_argument("--redis", metavar="URL", help="use the Redis key store at URL")

    keys = subparsers.add_parser("keys", help="create, list, update and revoke API keys")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", parents=[store_options], help="create a key")
    create.add_argument("--name", required=True, help="a label for listings")
    create.add_argument("--test", action="store_true", help="an ak_test_ key (test providers)")
    create.add_argument("--rpm", type=int, metavar="N", help="requests per minute (default: none)")
    create.add_argument(
        "--expires", metavar="WHEN", help="30d, 12h, 45m, or an ISO date/datetime (UTC)"
    )
    create.add_argument(
        "--scopes",
        action="append",
        metavar="LIST",
        help="comma-separated scopes: chat, responses, models, inference, * (default: all)",
    )
    create.add_argument(
        "--models", action="append", metavar="LIST", help="comma-separated allowed models (gpt-4o*)"
    )
    create.add_argument("--workspace", default="default", metavar="ID", help="workspace id")
    create.add_argument("--workspace-name", metavar="NAME", help="workspace name")
    create.add_argument(
        "--profile", default="inference", choices=("inference", "management", "mixed")
    )
    create.add_argument("--json", action="store_true", help="print the key and record as JSON")
    create.set_defaults(handler=_cmd_create)
    from akgate.usage._cli import add_key_limit_commands, add_limit_options

    add_limit_options(create)
    add_key_limit_commands(actions, store_options)

    generate = actions.add_parser(
        "generate", help="print a new key without storing it (for AKGATE_API_KEYS)"
    )
    generate.add_argument("--test", action="store_true", help="an ak_test_ key")
    generate.set_defaults(handler=_cmd_generate)

    listing = actions.add_parser("list", parents=[store_options], help="list keys (no secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_cmd_list)

    revoke = actions.add_parser("revoke", parents=[store_options], help="revoke a key by id")
    revoke.add_argument("key_id", metavar="ID", help="the key id, e.g. ak_live_abcdefgh")
    revoke.set_defaults(handler=_cmd_revoke)
