"""The Stateful Responses page's runnable example runs, and its error table is the registry's."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from akgate.errors import ERROR_CODES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "stateful-responses.md"


def test_runnable_example_prints_true() -> None:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    example = next(b for b in blocks if "asyncio.run(main())" in b)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, str(PAGE), "exec"), {})
    assert out.getvalue().strip() == "True"


def test_error_table_matches_the_registry() -> None:
    text = PAGE.read_text()
    table = text[text.index("## Errors") :]
    for code, status in re.findall(r"^\| `(\w+)` \| (\d+) \|", table, re.M):
        assert ERROR_CODES[code][0] == int(status), code
