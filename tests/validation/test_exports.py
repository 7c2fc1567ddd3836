from __future__ import annotations

import akgate.validation


def test_all_lists_the_public_names() -> None:
    public = {name for name in vars(akgate.validation) if not name.startswith("_")}
    modules = {"annotations"}
    assert set(akgate.validation.__all__) == public - modules
