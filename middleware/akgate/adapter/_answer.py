"""The adapter's JSON answer, handed to the layers outside it without a parse.

Routing adds ``routing_metadata`` to the Response object, and ``StatefulResponses`` gives every
turn its own id and flags, then stores it. Read from the bytes the adapter sent, each costs a
parse (and the stateful layer a second encoding). Instead the adapter leaves the object and its
bytes in an :class:`AnswerSlot` in the request's shared ``ctx.state``; a layer uses the object
only when the body it receives *is* those bytes (the same object), and when it sends a body of
its own it leaves that body and the object changed alike (routing does). A layer in between that
rewrote the body otherwise makes the next one read the body, as before.

When the turn needs nothing but :meth:`~akgate.store._capture.Turn.patch`, the stateful layer
puts the slot there first, with the patch: the adapter applies it before encoding.
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

    def __init__(self, patch: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.patch = patch
        self.response: dict[str, Any] | None = None
        self.body: bytes | None = None

    def fill(self, response: dict[str, Any], body: bytes) -> None:
        self.response = response
        self.body = body

    def clear(self) -> None:
        """Once the body went out: a layer outside reads it as it arrives, or not at all."""
        self.response = None
        self.body = None
