"""Response bodies leave in bounded pieces, so a client that does not read holds little.

A server copies whatever it cannot write to the socket at once into the connection's buffer, and
only waits for the client before the *next* ``send``. One large body message (a 10 MiB stream
event, a big JSON answer) therefore sits whole in that buffer for every client that stops
reading, on top of what the layers hold. Sending it in pieces of :data:`PIECE_SIZE` lets the
server apply back-pressure between pieces: per connection it buffers at most about one piece.
"""

from __future__ import annotations

from typing import Final

from ._types import Message, Send

__all__ = ["PIECE_SIZE", "piecewise"]

PIECE_SIZE: Final = 64 * 1024


def piecewise(send: Send, piece: int = PIECE_SIZE) -> Send:
    """``send`` with ``http.response.body`` messages larger than ``piece`` bytes split up."""

    async def send_in_pieces(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
            return
        body: bytes = message.get("body", b"")
        if len(body) <= piece:
            await send(message)
            return
        more = message.get("more_body", False)
        view = memoryview(body)
        for start in range(0, len(body), piece):
            last = start + piece >= len(body)
            await send(
                {
                    "type": "http.response.body",
                    "body": bytes(view[start : start + piece]),
                    "more_body": more or not last,
                }
            )

    return send_in_pieces
