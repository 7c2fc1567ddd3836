"""The public names of akgate.auth."""

from __future__ import annotations

import akgate.auth


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(akgate.auth) if not name.startswith("_")}
    public -= {"annotations"}
    assert set(akgate.auth.__all__) == public
