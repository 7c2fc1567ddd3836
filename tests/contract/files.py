"""Tiny file fixtures, built here byte by byte: an uncompressed one-page PDF and a data URL."""

from __future__ import annotations

import base64
import zlib


def pdf(*lines: str, info_title: str | None = None, compress: bool = False) -> bytes:
    """A one-page PDF whose content stream draws ``lines`` with ``Tj`` (``compress``: Flate)."""
    ops = [b"BT", b"/F1 12 Tf", b"72 720 Td"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops += [b"(" + escaped.encode("latin-1") + b") Tj", b"0 -16 Td"]
    ops.append(b"ET")
    content = b"\n".join(ops) + b"\n"
    stream_dict = f"/Length {len(content)}".encode()
    if compress:
        content = zlib.compress(content)
        stream_dict = f"/Length {len(content)} /Filter /FlateDecode".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< " + stream_dict + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    if info_title is not None:
        objects.append(b"<< /Title (" + info_title.encode("latin-1") + b") >>")
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R"
    if info_title is not None:
        trailer += f" /Info {len(objects)} 0 R"
    out += f"trailer\n{trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def data_url(data: bytes, media_type: str = "application/pdf") -> str:
    return f"data:{media_type};base64," + base64.b64encode(data).decode()


#: The report every file test sends: its first line is its title.
REPORT = pdf("Title: Akgate Quarterly Field Notes", "Routing held steady (all regions).")
REPORT_TITLE = "Akgate Quarterly Field Notes"


def png(width: int, height: int) -> bytes:
    """A valid one-colour PNG of that size (grey, 8-bit)."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
