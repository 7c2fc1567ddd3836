"""``akgate`` command line: ``akgate serve`` and ``akgate keys ...``.

Each command group registers its own sub-parser, so the modules that implement them stay
independent (``akgate._serve`` and ``akgate.auth._cli``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    from ._serve import add_serve_command
    from .auth._cli import add_keys_command
    from .store._cli import add_responses_command
    from .usage._cli import add_usage_command

    parser = argparse.ArgumentParser(
        prog="akgate", description="Auriko-compatible LLM gateway middleware."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_serve_command(commands)
    add_keys_command(commands)
    add_usage_command(commands)
    add_responses_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from ._version import __version__

        print(f"akgate {__version__}")
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    result: int = handler(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
