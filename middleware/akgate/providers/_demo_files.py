"""The demo model's honest reading of file parts (chat ``{"type": "file", "file": {...}}``).

A file is read from the bytes the request carries, never fetched: its name, media type and size,
and its text when the demo can read it without a PDF library: a text file (``text/*``, JSON,
XML, CSV, Markdown) as is, and a simple PDF from the literal strings its uncompressed content
streams draw (``(...) Tj`` and ``[(...) ...] TJ``). A compressed or encrypted PDF is described,
not read. The title is the PDF's ``/Title`` entry, else the first line of text (a leading
``Title:`` or ``#`` removed).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["DemoFile", "answer_about_files", "read_file"]

_MAX_FILE_BYTES: Final = 20 * 1024 * 1024
_TEXT_TYPES: Final = ("application/json", "application/xml", "application/x-ndjson")
_TEXT_EXTENSIONS: Final = {
    "txt": "text/plain",
    "md": "text/markdown",
    "csv": "text/csv",
    "json": "application/json",
    "xml": "application/xml",
    "html": "text/html",
    "pdf": "application/pdf",
}
#: How far before ``stream`` its dictionary (``<< /Length ... /Filter ... >>``) is looked for.
_DICT_WINDOW: Final = 1024
#: A literal string with balanced parentheses one level deep, and backslash escapes.
#: What the content-stream scan stops at: a string, an array, or the end of an array.
_SPECIAL: Final = re.compile(rb"[(\[\]]")
#: What the string scan stops at: an escape or a parenthesis (strings nest balanced ones).
_IN_STRING: Final = re.compile(rb"[\\()]")
_SHOWS_STRING: Final = re.compile(rb"\s*(?:Tj|')")
_SHOWS_ARRAY: Final = re.compile(rb"\s*TJ")
_INFO_TITLE: Final = re.compile(rb"/Title\s*\(")
_ESCAPES: Final = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


@dataclass(frozen=True, slots=True)
class DemoFile:
    """What the demo learnt from one file part."""

    name: str
    media_type: str
    size: int | None
    text: str | None = None
    title: str | None = None
    #: Why the text could not be read (``None`` when it was, or there is none to read).
    unread: str | None = None
    pages: int | None = None

    def describe(self) -> str:
        """One phrase: name, media type, size (and pages), as the demo reports it."""
        facts = [self.media_type]
        if self.size is not None:
            facts.append(f"{self.size} bytes")
        if self.pages is not None:
            facts.append(f"{self.pages} page{'s' if self.pages != 1 else ''}")
        return f"{self.name} ({', '.join(facts)})"


def _unescape(raw: bytes) -> str:
    out = bytearray()
    i = 0
    while i < len(raw):
        char = raw[i : i + 1]
        if char == b"\\" and i + 1 < len(raw):
            nxt = raw[i + 1 : i + 2]
            octal = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4])
            if octal:
                out.append(int(octal.group(0), 8) & 0xFF)
                i += 1 + len(octal.group(0))
                continue
            out += _ESCAPES.get(nxt, nxt if nxt not in (b"\n", b"\r") else b"")
            i += 2
            continue
        out += char
        i += 1
    return out.decode("latin-1")


def _literal(data: bytes, start: int) -> tuple[bytes, int] | None:
    """The raw bytes of the PDF string opening at ``data[start] == "("`` and the index after
    it; ``None`` when it never closes. Linear: each byte is looked at once."""
    depth, pos = 1, start + 1
    while depth:
        found = _IN_STRING.search(data, pos)
        if found is None:
            return None
        char = data[found.start()]
        if char == 0x5C:  # backslash: the next byte is escaped
            pos = found.start() + 2
            continue
        depth += 1 if char == 0x28 else -1
        pos = found.start() + 1
    return data[start + 1 : pos - 1], pos


def _drawn_strings(body: bytes) -> list[str]:
    """The strings a content stream shows, in order: ``(...) Tj``, ``(...) '`` and the strings
    of ``[(...) ...] TJ`` arrays joined (kerning numbers dropped)."""
    shown: list[str] = []
    array: list[str] | None = None
    pos = 0
    while (found := _SPECIAL.search(body, pos)) is not None:
        at = found.start()
        char = body[at]
        if char == 0x28:  # "("
            literal = _literal(body, at)
            if literal is None:
                break
            text, pos = _unescape(literal[0]), literal[1]
            if array is not None:
                array.append(text)
            elif _SHOWS_STRING.match(body, pos):
                shown.append(text)
        elif char == 0x5B:  # "["
            array, pos = [], at + 1
        else:  # "]"
            pos = at + 1
            if array is not None and _SHOWS_ARRAY.match(body, pos):
                shown.append("".join(array))
            array = None
    return shown


def _streams(data: bytes) -> list[tuple[bytes, bytes]]:
    """(dictionary, data) of each ``stream ... endstream`` of a PDF, in one linear pass."""
    found = []
    pos = 0
    while (start := data.find(b"stream", pos)) != -1:
        pos = start + 6
        if data[start - 3 : start] == b"end":
            continue
        eol = 2 if data[pos : pos + 2] == b"\r\n" else 1 if data[pos : pos + 1] in b"\r\n" else 0
        if not eol:
            continue
        end = data.find(b"endstream", pos + eol)
        if end == -1:
            break
        window = data[max(0, start - _DICT_WINDOW) : start]
        opened = window.rfind(b"<<")
        found.append((window[opened:] if opened != -1 else b"", data[pos + eol : end]))
        pos = end + 9
    return found


def _pdf_text(data: bytes) -> tuple[str | None, str | None, str | None, int]:
    """(text, title, why unread, pages) of a PDF, from its uncompressed content streams."""
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
    if b"/Encrypt" in data:
        return None, None, "it is encrypted", pages
    lines: list[str] = []
    compressed = False
    for head, body in _streams(data):
        if b"/Filter" in head:
            compressed = True
            continue
        lines.extend(_drawn_strings(body))
    info = _INFO_TITLE.search(data)
    literal = _literal(data, info.end() - 1) if info else None
    title = _unescape(literal[0]).strip() if literal else None
    text = "\n".join(line for line in lines if line.strip()) or None
    if text is None:
        why = "its text is in compressed streams" if compressed else "it draws no text"
        return None, title, why, pages
    return text, title, None, pages


def _title_of(text: str) -> str | None:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return re.sub(r"^title\s*:\s*", "", line, flags=re.I) or None
    return None


def _decode(file_data: str) -> tuple[str | None, bytes | None]:
    """(media type from a data URL, the bytes); bytes ``None`` when not valid base64."""
    media: str | None = None
    payload = file_data
    if file_data.startswith("data:"):
        header, _, payload = file_data.partition(",")
        media = header[5:].split(";")[0] or None
        if ";base64" not in header:
            return media, payload.encode("utf-8")
    try:
        return media, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return media, None


def _sniff(data: bytes, name: str) -> str:
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _TEXT_EXTENSIONS.get(extension, "application/octet-stream")


def read_file(file: Any) -> DemoFile:
    """Read the ``file`` object of a chat file part (``file_data``/``file_id``, ``filename``)."""
    spec = file if isinstance(file, dict) else {}
    name = spec.get("filename") if isinstance(spec.get("filename"), str) else None
    data_url = spec.get("file_data")
    if not isinstance(data_url, str):
        file_id = spec.get("file_id")
        label = name or (f"file {file_id}" if isinstance(file_id, str) else "a file")
        return DemoFile(label, "unknown type", None, unread="it was sent by id, not inline")
    name = name or "unnamed file"
    if len(data_url) > _MAX_FILE_BYTES * 4 // 3 + 64:
        return DemoFile(name, "unknown type", None, unread="it is larger than the demo reads")
    media, data = _decode(data_url)
    if data is None:
        return DemoFile(name, media or "unknown type", None, unread="its data is not valid base64")
    media = media or _sniff(data, name)
    if media == "application/pdf" or data.startswith(b"%PDF-"):
        text, title, why, pages = _pdf_text(data)
        if title is None and text is not None:
            title = _title_of(text)
        return DemoFile(name, media, len(data), text, title, why, pages)
    if media.startswith("text/") or media in _TEXT_TYPES:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return DemoFile(name, media, len(data), unread="it is not UTF-8 text")
        return DemoFile(name, media, len(data), text, _title_of(text))
    return DemoFile(name, media, len(data), unread="the demo reads only text and simple PDFs")


_TITLE_ASK: Final = re.compile(r"\btitle\b", re.I)
_TEXT_ASK: Final = re.compile(
    r"\b(?:read|summari[sz]e|say|says|contents?|text|what(?:'s| is)? in)\b", re.I
)
_QUOTE_CHARS: Final = 200


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _QUOTE_CHARS else flat[:_QUOTE_CHARS] + "..."


def answer_about_files(prompt: str, files: list[DemoFile]) -> str:
    """The demo's answer to a prompt sent with files: the title when asked for it, else what
    each file is and (when asked to read it, or always for one file) what it says."""
    if _TITLE_ASK.search(prompt):
        titles = [f.title for f in files if f.title]
        if titles:
            return "; ".join(titles)
    count = f"{len(files)} file{'s' if len(files) > 1 else ''}"
    described = []
    for file in files:
        phrase = file.describe()
        if file.text is not None and (len(files) == 1 or _TEXT_ASK.search(prompt)):
            phrase += f', which says: "{_quote(file.text)}"'
        elif file.unread is not None:
            phrase += f", whose text the demo cannot read ({file.unread})"
        described.append(phrase)
    return f"I read {count}: " + "; ".join(described) + "."
