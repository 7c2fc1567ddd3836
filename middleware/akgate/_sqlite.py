"""One way to open a SQLite connection for the stores (keys, usage, responses).

Every store opens in autocommit mode (``isolation_level=None``: each store writes its own
``BEGIN``/``COMMIT``), shareable with the store's thread, with a busy timeout in milliseconds
and the pragmas it asks for; a connection whose setup fails is closed, never leaked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["connect"]


def connect(
    database: str | Path,
    *,
    timeout: float,
    pragmas: Iterable[str] = (),
    setup: Callable[[sqlite3.Connection], object] | None = None,
    uri: bool = False,
) -> sqlite3.Connection:
    """A connection to ``database`` with ``PRAGMA busy_timeout`` from ``timeout`` (seconds),
    then each of ``pragmas`` (``"journal_mode = WAL"``), then ``setup(conn)`` (the schema)."""
    conn = sqlite3.connect(
        database, timeout=timeout, check_same_thread=False, isolation_level=None, uri=uri
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
        if setup is not None:
            setup(conn)
    except BaseException:
        conn.close()
        raise
    return conn
