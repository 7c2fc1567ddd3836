"""The JSON content-type check's shortcut for ``application/json`` says what the rule says."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.validation._middleware import _is_json


def _is_json_by_the_rule(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


_parts = st.sampled_from(
    [b"application/json", b"Application/JSON", b"application/ld+json", b"text/plain", b";", b" "]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.lists(_parts, max_size=3).map(b"".join)))
def test_the_shortcut_matches_the_rule(content_type: bytes | None) -> None:
    assert _is_json(content_type) == _is_json_by_the_rule(content_type)


def test_plain_application_json_is_answered_without_splitting() -> None:
    class Exact(bytes):
        def split(self, *args: object, **kwargs: object) -> list[bytes]:  # type: ignore[override]
            raise AssertionError("the general rule ran")

    assert _is_json(Exact(b"application/json"))
