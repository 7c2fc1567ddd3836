from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from akgate.sse import SSEEvent, SSEParser, encode_comment, encode_event


def parse_all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.finish())
    return events


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


def test_basic_event_with_name_and_id() -> None:
    events = parse_all([b"event: message\nid: 7\ndata: hello\n\n"])
    assert events == [SSEEvent("hello", "message", "7")]


def test_multiline_data_joined_with_newline() -> None:
    assert parse_all([b"data: a\ndata: b\n\n"]) == [SSEEvent("a\nb")]


def test_crlf_and_cr_line_endings() -> None:
    assert parse_all([b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]) == [
        SSEEvent("a"),
        SSEEvent("b"),
        SSEEvent("c"),
    ]


def test_crlf_split_across_chunks_counts_once() -> None:
    # "\r" ends one chunk and "\n" starts the next: one line ending, not two (not a blank line).
    assert parse_all([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [SSEEvent("a\nb")]


def test_comments_are_ignored() -> None:
    assert parse_all([b": keepalive\n\ndata: x\n\n"]) == [SSEEvent("x")]


def test_no_space_after_colon_and_field_without_colon() -> None:
    assert parse_all([b"data:x\ndata\n\n"]) == [SSEEvent("x\n")]


def test_event_without_data_is_dropped_and_name_reset() -> None:
    assert parse_all([b"event: ping\n\ndata: y\n\n"]) == [SSEEvent("y")]


def test_unterminated_event_is_discarded_at_end() -> None:
    assert parse_all([b"data: complete\n\ndata: partial"]) == [SSEEvent("complete")]


def test_utf8_split_inside_a_character() -> None:
    data = "data: héllo ✓\n\n".encode()
    assert parse_all([data[:8], data[8:14], data[14:]]) == [SSEEvent("héllo ✓")]


def test_retry_field() -> None:
    assert parse_all([b"retry: 1500\ndata: z\n\n"]) == [SSEEvent("z", retry=1500)]


def test_encode_event_roundtrip_multiline() -> None:
    raw = encode_event("line1\nline2", event="response.created")
    assert raw == b"event: response.created\ndata: line1\ndata: line2\n\n"
    assert parse_all([raw]) == [SSEEvent("line1\nline2", "response.created")]


def test_encode_comment_is_ignored_by_parser() -> None:
    assert parse_all([encode_comment("ping"), encode_event("a")]) == [SSEEvent("a")]


payload_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40
)
event_names = st.none() | st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=":"),
    min_size=1,
    max_size=12,
)
newlines = st.sampled_from(["\n", "\r\n", "\r"])


@given(
    events=st.lists(
        st.tuples(st.lists(payload_text, min_size=1, max_size=3), event_names), max_size=6
    ),
    newline=newlines,
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_any_chunk_split_yields_the_same_events(
    events: list[tuple[list[str], str | None]], newline: str, cuts: list[int]
) -> None:
    stream = ""
    expected = []
    for lines, name in events:
        if name is not None:
            stream += f"event: {name}{newline}"
        for line in lines:
            stream += f"data: {line}{newline}"
        stream += newline
        expected.append(SSEEvent("\n".join(lines), name))
    data = stream.encode()
    assert parse_all([data]) == expected
    assert parse_all(split_at(data, cuts)) == expected
    assert parse_all([bytes([b]) for b in data]) == expected


@given(st.lists(payload_text, min_size=1, max_size=4), st.sampled_from([None, "x.y"]))
def test_encoder_output_parses_back(lines: list[str], name: str | None) -> None:
    data = "\n".join(lines)
    assert parse_all([encode_event(data, event=name)]) == [SSEEvent(data, name)]
