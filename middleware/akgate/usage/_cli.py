"""``akgate usage`` (spend and tokens from the ledger), budget and tpm options of
``akgate keys create``, ``akgate keys update`` and ``akgate workspaces update``."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from ._limits import Limits, LimitScope
from ._open import open_usage_store as open_store
from ._periods import PERIODS
from ._sqlite import default_usage_path
from ._sqlstore import SUMMARY_COLUMNS, SQLUsageStore, UsageStoreError

__all__ = [
    "add_key_limit_commands",
    "add_limit_options",
    "add_usage_command",
    "apply_limit_options",
    "open_usage_store",
    "parse_since",
    "usage_db_beside",
]

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def usage_db_beside(keys_db: str | None) -> Path:
    """The usage file next to a key file (``usage.sqlite3``), else the default one."""
    return Path(keys_db).with_name("usage.sqlite3") if keys_db else default_usage_path()


def open_usage_store(usage_db: str | None, keys_db: str | None = None) -> SQLUsageStore:
    """``--usage-db`` (a path or a PostgreSQL URL), else the file beside the key file."""
    return open_store(usage_db or usage_db_beside(keys_db))


def parse_since(value: str, *, now: float | None = None) -> float:
    """Epoch seconds from ``7d`` / ``12h`` / ``30m`` / ``2w`` ago, or an ISO date (UTC)."""
    from akgate.auth._cli import parse_expires

    now = time.time() if now is None else now
    text = value.strip()
    if text[:-1].isdigit() and text[-1:] in _UNITS:
        return now - int(text[:-1]) * _UNITS[text[-1]]
    try:
        return parse_expires(text, now=now)
    except ValueError:
        raise ValueError(f"cannot read {value!r}: use 7d, 12h, 30m or an ISO date") from None


def _usd(text: str) -> float | None:
    if text.lower() in ("none", "off", "-"):
        return None
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError("a budget is a USD amount >= 0 (or 'none')")
    return value


def _tpm(text: str) -> int | None:
    if text.lower() in ("none", "off", "-"):
        return None
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("--tpm must be >= 1 (or 'none')")
    return value


def add_limit_options(parser: argparse.ArgumentParser, *, tpm: bool = True) -> None:
    """``--budget-daily/--budget-weekly/--budget-monthly USD``, ``--budget-soft``, ``--tpm``."""
    for period in ("daily", "weekly", "monthly"):
        parser.add_argument(
            f"--budget-{period}",
            type=_usd,
            metavar="USD",
            default=argparse.SUPPRESS,
            help=f"{period} budget in USD (UTC periods; 'none' removes it)",
        )
    soft = parser.add_mutually_exclusive_group()
    soft.add_argument(
        "--budget-soft",
        dest="budget_enforce",
        action="store_false",
        default=argparse.SUPPRESS,
        help="serve past the budgets, flagging it in X-Budget-Exceeded headers",
    )
    soft.add_argument(
        "--budget-enforce",
        dest="budget_enforce",
        action="store_true",
        default=argparse.SUPPRESS,
        help="refuse with 429 budget_exhausted once a budget is spent (the default)",
    )
    if tpm:
        parser.add_argument(
            "--tpm",
            type=_tpm,
            metavar="N",
            default=argparse.SUPPRESS,
            help="tokens per minute (input + output; 'none' removes it)",
        )
    parser.add_argument(
        "--usage-db",
        metavar="PATH",
        help="usage and limits file (default: usage.sqlite3 beside the key file)",
    )


def _merged(args: argparse.Namespace, current: Limits | None) -> Limits | None:
    """``current`` with the options given on the command line (None: nothing given)."""
    given = {
        name: getattr(args, name)
        for name in ("budget_daily", "budget_weekly", "budget_monthly", "budget_enforce", "tpm")
        if hasattr(args, name)
    }
    if not given:
        return None
    base = current or Limits()
    usd: dict[str, float | None] = {}
    for period in PERIODS:
        budget = base.budgets.get(period)
        usd[period] = budget.limit_usd if budget is not None else None
        if f"budget_{period}" in given:
            usd[period] = given[f"budget_{period}"]
    enforce = given.get(
        "budget_enforce", all(b.enforce for b in base.budgets.values()) if base.budgets else True
    )
    return Limits.of(
        daily=usd["daily"],
        weekly=usd["weekly"],
        monthly=usd["monthly"],
        enforce=enforce,
        tpm=given.get("tpm", base.tpm),
    )


def _set_limits(
    args: argparse.Namespace, scope: LimitScope, scope_id: str, db: str | None
) -> Limits | None:
    store = open_usage_store(args.usage_db, db)
    try:
        limits = _merged(args, store.get_limits_sync(scope, scope_id))
        if limits is not None:
            store.set_limits_sync(scope, scope_id, limits)
        return limits
    finally:
        store.close()


def apply_limit_options(args: argparse.Namespace, key_id: str) -> dict[str, Any] | None:
    """After ``keys create``: store the key's limits; their JSON form (None: none given)."""
    limits = _set_limits(args, "api_key", key_id, getattr(args, "db", None))
    return None if limits is None else _limits_json(limits)


def _limits_json(limits: Limits) -> dict[str, Any]:
    return {
        "budgets": {p: b.limit_usd for p, b in limits.budgets.items()},
        "budget_enforce": all(b.enforce for b in limits.budgets.values()),
        "tpm": limits.tpm,
    }


def _fail(command: str, message: str) -> int:
    print(f"akgate {command}: {message}", file=sys.stderr)
    return 1


def _rpm(text: str) -> int | None:
    if text.lower() in ("none", "off", "-"):
        return None
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("--rpm must be >= 1 (or 'none')")
    return value


def _cmd_update(args: argparse.Namespace) -> int:
    from akgate.auth._cli import open_key_store
    from akgate.auth._keys import KeyRecord
    from akgate.auth._stores import KeyStoreUnavailable

    async def update_key() -> KeyRecord | None:
        # The requests-per-minute limit lives on the key record (the auth layer enforces it
        # without the spend layer); the budgets and tpm live in the usage store.
        store = open_key_store(args.db, args.redis, create=False)
        try:
            if hasattr(args, "rpm"):
                return await store.update(args.key_id, rate_limit_rpm=args.rpm)
            return next((r for r in await store.list_keys() if r.key_id == args.key_id), None)
        finally:
            await store.aclose()

    try:
        record = anyio.run(update_key)
        if record is None:
            return _fail("keys", f"no key with id {args.key_id!r}")
        limits = _set_limits(args, "api_key", args.key_id, args.db)
    except (ValueError, UsageStoreError, KeyStoreUnavailable) as exc:
        return _fail("keys", str(exc))
    if limits is None and not hasattr(args, "rpm"):
        return _fail("keys", "nothing to update: give --rpm, --budget-*, --budget-soft or --tpm")
    result: dict[str, Any] = {"key_id": args.key_id, "rate_limit_rpm": record.rate_limit_rpm}
    if limits is not None:
        result.update(_limits_json(limits))
    print(json.dumps(result))
    return 0


def _cmd_workspace(args: argparse.Namespace) -> int:
    try:
        limits = _set_limits(args, "workspace", args.workspace_id, args.db)
    except (ValueError, UsageStoreError) as exc:
        return _fail("workspaces", str(exc))
    if limits is None:
        return _fail("workspaces", "nothing to update: give --budget-* or --budget-soft")
    print(json.dumps({"workspace_id": args.workspace_id, **_limits_json(limits)}))
    return 0


def add_key_limit_commands(actions: Any, store_options: argparse.ArgumentParser) -> None:
    """``akgate keys update KEY_ID ...`` on the ``keys`` sub-parsers."""
    update = actions.add_parser(
        "update",
        parents=[store_options],
        help="change a key's limits (rpm, budgets, tpm) without re-issuing it",
        description="Change a key's limits without re-issuing it. Running gateways apply the "
        "change within their cache TTL (2 s by default), like a revocation.",
    )
    update.add_argument("key_id", metavar="ID", help="the key id, e.g. ak_live_abcdefgh")
    update.add_argument(
        "--rpm",
        type=_rpm,
        metavar="N",
        default=argparse.SUPPRESS,
        help="requests per minute ('none' removes the key's own limit)",
    )
    add_limit_options(update)
    update.set_defaults(handler=_cmd_update)


def _cmd_usage(args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since)
        until = parse_since(args.until) if args.until else None
        store = open_usage_store(args.usage_db, args.db)
        try:
            rows = store.summarize(since, until, args.by)
        finally:
            store.close()
    except (ValueError, UsageStoreError) as exc:
        return _fail("usage", str(exc))
    columns = SUMMARY_COLUMNS
    if args.json:
        print(json.dumps({"since": since, "until": until, "by": args.by, "rows": rows}))
        return 0
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([args.by if c == "group" else c for c in columns])
        for row in rows:
            writer.writerow([row[c] for c in columns])
        return 0
    titles = [args.by.upper(), "REQUESTS", "ERRORS", "INPUT", "OUTPUT", "CACHED", "REASONING"]
    table = [[*titles, "COST USD"]]
    for row in [*rows, _total(rows)]:
        cells = [str(row[c]) for c in columns[:-1]]
        table.append([*cells, f"{row['cost_usd']:.6f}"])
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    for cells in table:
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return 0


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"group": "TOTAL"}
    for column in (
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "cost_usd",
    ):
        total[column] = sum(row[column] for row in rows)
    return total


def add_usage_command(subparsers: Any) -> None:
    """Register ``akgate usage`` and ``akgate workspaces update``."""
    usage = subparsers.add_parser(
        "usage", help="spend and tokens from the usage ledger, by key, model or day"
    )
    usage.add_argument("--since", default="7d", metavar="WHEN", help="7d, 24h, or an ISO date")
    usage.add_argument("--until", metavar="WHEN", help="end of the range (default: now)")
    usage.add_argument("--by", choices=("key", "model", "day"), default="key")
    output = usage.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument("--csv", action="store_true", help="print CSV")
    usage.add_argument("--usage-db", metavar="PATH", help="the usage file")
    usage.add_argument("--db", metavar="PATH", help="the key file (usage.sqlite3 beside it)")
    usage.set_defaults(handler=_cmd_usage)

    workspaces = subparsers.add_parser("workspaces", help="workspace budgets")
    actions = workspaces.add_subparsers(dest="workspaces_command", metavar="ACTION", required=True)
    update = actions.add_parser("update", help="set a workspace's budgets")
    update.add_argument("workspace_id", metavar="ID")
    update.add_argument("--db", metavar="PATH", help="the key file (usage.sqlite3 beside it)")
    add_limit_options(update, tpm=False)
    update.set_defaults(handler=_cmd_workspace)
