"""Every row of the rule table, end to end through the middleware (and docs agree with it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from akgate.validation import RequestValidation

from .rules import RULES, Rule

DOCS = Path(__file__).resolve().parents[2] / "docs" / "validation-rules.md"


@pytest.mark.parametrize("rule", RULES, ids=[rule.id for rule in RULES])
async def test_rule(rule: Rule, inner: Any, client_for: Any) -> None:
    client = client_for(RequestValidation(inner))
    response = await client.post(rule.path, json=rule.body())
    assert response.status_code == rule.status, response.text
    if rule.code is None:
        assert inner.seen.calls == 1
        return
    assert inner.seen.calls == 0
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (rule.code, rule.param), error
    assert error["type"] == "invalid_request_error"
    assert error["doc_url"].endswith(rule.code)
    assert error["message"]


def test_docs_table_lists_every_rule() -> None:
    table = DOCS.read_text().split("## Rule table", 1)[1]
    documented = re.findall(r"^\|\s*`([a-z_][^`]*)`\s*\|", table, re.M)
    assert len(documented) == len(set(documented))
    assert set(documented) == {rule.id for rule in RULES}
