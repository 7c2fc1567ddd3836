"""Hypothesis strategies shared by the operations layers' tests."""

from __future__ import annotations

from hypothesis import strategies as st

#: Header names a response start may carry: the two the layers look for, in several cases, a
#: neighbour of the same length, and arbitrary bytes.
header_names = st.sampled_from(
    [
        b"content-type",
        b"Content-Type",
        b"CONTENT-TYPE",
        b"x-request-id",
        b"X-Request-ID",
        b"X-REQUEST-ID",
        b"content-length",
    ]
) | st.binary(max_size=13)
#: ``http.response.start`` messages with up to four such headers.
starts = st.fixed_dictionaries(
    {
        "type": st.just("http.response.start"),
        "status": st.integers(100, 599),
        "headers": st.lists(
            st.tuples(
                header_names,
                st.sampled_from(
                    [b"application/json", b"text/event-stream", b"Text/Event-Stream", b"x"]
                ),
            ),
            max_size=4,
        ),
    }
)
