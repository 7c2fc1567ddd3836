"""The reference pages stay complete: every environment variable the package reads is in the
table, and the new pages are in the site's navigation."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "middleware" / "akgate"


def test_every_environment_variable_read_is_in_the_table() -> None:
    source = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    names = set(re.findall(r'"((?:AKGATE|PROMETHEUS|OPENAI)_[A-Z_]+)"', source))
    assert {"AKGATE_HOME", "AKGATE_API_KEYS", "AKGATE_KEY_PEPPER"} <= names
    table = (ROOT / "docs" / "environment.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)`", table, re.M))
    assert names <= documented, names - documented


def test_operations_and_reference_pages_are_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in ("operations.md", "environment.md", "troubleshooting.md", "changelog.md"):
        assert page in nav
    assert "CHANGELOG.md" in (ROOT / "docs" / "changelog.md").read_text()


def test_readme_silences_the_mkdocs_banner_where_it_shows_mkdocs_serve() -> None:
    readme = (ROOT / "README.md").read_text()
    for line in readme.splitlines():
        if "mkdocs serve" in line:
            assert "NO_MKDOCS_2_WARNING=1 mkdocs serve" in line, line
