"""The adapter's JSON answer, handed to a stateful layer outside it without a parse.

``StatefulResponses`` gives every turn its own id and flags, then stores the Response object.
Read from the bytes the adapter sent, that costs a parse and a second encoding per turn. When the
turn needs nothing but :meth:`~akgate.store._capture.Turn.patch`, the stateful layer leaves an
:class:`AnswerSlot` in the request's shared ``ctx.state``: the adapter applies the patch before
encoding, and leaves the object and its bytes in the slot. The stateful layer uses them only when
the body it receives *is* those bytes (the same object): a layer in between that rewrote the body
(routing adds ``routing_metadata``) makes it read the body as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ["ANSWER_SLOT", "AnswerSlot"]

#: The ``RequestContext.state`` key of the slot.
ANSWER_SLOT: Final = "akgate.responses.answer"


class AnswerSlot:
    """``patch``: applied to the Response object before it is encoded; ``response`` and
    ``body``: the object and its bytes, once sent."""

    __slots__ = ("body", "patch", "response")

    def __init__(self, patch: Callable[[dict[str, Any]], None]) -> None:
        self.patch = patch
        self.response: dict[str, Any] | None = None
        self.body: bytes | None = None

    def fill(self, response: dict[str, Any], body: bytes) -> None:
        self.response = response
        self.body = body
