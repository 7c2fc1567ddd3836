"""The demo model's honest answers about images, and its deterministic logprobs.

Images are described from what the request carries, never fetched: a data URL's bytes give the
format (PNG, JPEG, GIF, WebP, BMP) and, when the header holds them, the pixel size; a plain URL
gives only what its text says (host and file extension).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = ["describe_image", "token_logprob"]

_MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
_ALTERNATIVES: Final = (" the", " a", ".", ",", " and", " of", " to", " is", " demo", "!")


def _size(kind: str, data: bytes) -> tuple[int, int] | None:
    try:
        if kind == "PNG" and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return int(width), int(height)
        if kind == "GIF":
            width, height = struct.unpack("<HH", data[6:10])
            return int(width), int(height)
        if kind == "BMP":
            width, height = struct.unpack("<ii", data[18:26])
            return int(width), abs(int(height))
        if kind == "WebP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                width = int.from_bytes(data[24:27], "little") + 1
                height = int.from_bytes(data[27:30], "little") + 1
                return width, height
            if chunk == b"VP8 ":
                width, height = struct.unpack("<HH", data[26:30])
                return int(width) & 0x3FFF, int(height) & 0x3FFF
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if kind == "JPEG":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        pos += 2 + length
    return None


def _kind(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[:2] == b"BM":
        return "BMP"
    return None


def describe_image(url: str) -> str:
    """One sentence about the image at ``url`` (a data URL or a plain URL)."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        media_type = header[5:].split(";")[0] or "unknown type"
        if len(payload) > _MAX_IMAGE_BYTES * 4 // 3 + 4:
            return f"an image ({media_type}) larger than the demo reads"
        try:
            data = base64.b64decode(payload, validate=True) if ";base64" in header else b""
        except (binascii.Error, ValueError):
            return f"an image whose data URL ({media_type}) is not valid base64"
        kind = _kind(data)
        if kind is None:
            return f"{len(data)} bytes declared as {media_type}, in no image format the demo knows"
        size = _size(kind, data)
        dims = f", {size[0]}x{size[1]} pixels" if size else ""
        return f"a {kind} image{dims} ({len(data)} bytes)"
    parts = urlsplit(url)
    name = parts.path.rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[-1].upper() if "." in name else ""
    what = f"a {extension} image" if extension else "an image"
    return f"{what} at {parts.netloc or 'a URL'} (not downloaded, so its size is unknown)"


def _value(token: str) -> float:
    digest = hashlib.sha256(token.encode()).digest()
    return -round(int.from_bytes(digest[:2], "big") / 65535 * 0.5, 4)


def token_logprob(token: str, top: int) -> dict[str, Any]:
    """A chat ``logprobs.content`` entry for ``token`` with ``top`` alternatives (deterministic).

    The token's own log probability is in [-0.5, 0] from a hash of its text; the alternatives
    come from a fixed list, each one less likely than the last.
    """
    logprob = _value(token)
    alternatives: list[dict[str, Any]] = []
    if top > 0:
        alternatives.append(
            {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}
        )
        for step, other in enumerate(a for a in _ALTERNATIVES if a != token):
            if len(alternatives) >= top:
                break
            alternatives.append(
                {
                    "token": other,
                    "logprob": round(logprob - 1.5 - step, 4),
                    "bytes": list(other.encode("utf-8")),
                }
            )
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode("utf-8")),
        "top_logprobs": alternatives,
    }
