#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run every check:
# ruff check and format, mypy --strict, the docs build and pytest. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis-server is missing: install it (e.g. sudo apt-get install -y redis-server)" >&2
    exit 1
  fi
fi

# PostgreSQL for the usage-ledger tests (the tests start their own server on 127.0.0.1).
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL is missing: install it (e.g. sudo apt-get install -y postgresql)" >&2
    exit 1
  fi
fi

# Node clients for tests/clients (exact versions from tests/clients/js/package-lock.json).
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "node and npm are missing: install Node.js 18 or later" >&2
    exit 1
  fi
fi
npm ci --prefix tests/clients/js --no-audit --no-fund --silent

python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# The Codex CLI (tests/clients/test_codex_cli.py), exactly as pinned in its lock file. Its native
# binary is an optional dependency served by the npm registry itself (no other download).
(cd tests/clients/codex && npm ci --no-audit --no-fund --loglevel=error)
# The Claude Code CLI that tests/clients/test_claude_code.py drives (pinned by its lock file;
# its platform binary is an optional dependency from the npm registry).
(cd tests/clients/claude_code && npm ci --no-audit --no-fund --loglevel=error)

echo "== ruff" && python -m ruff check middleware tests examples benchmarks
echo "== ruff format --check" && python -m ruff format --check middleware tests examples benchmarks
echo "== mypy --strict" && python -m mypy
echo "== mkdocs build --strict" && NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --quiet --site-dir "${TMPDIR:-/tmp}/akgate-site"
echo "== pytest" && AKGATE_REQUIRE_REDIS=1 python -m pytest -q -p no:cacheprovider
