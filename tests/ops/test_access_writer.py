"""The access log's direct path under ``akgate serve``'s logging configuration: the same bytes
as the logging path for any request, lines written once per event-loop turn and in order, every
user configuration of ``akgate.access`` still honoured, nothing lost at exit."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from akgate.context import Identity, RequestContext
from akgate.ops import AccessLog
from akgate.ops._accesslog import access_fields
from akgate.ops._accesswriter import AccessLineHandler, direct_handler
from akgate.ops._observe import Observation
from akgate.ops._stack import configure_logging

ROOT = Path(__file__).resolve().parents[2]
UTC = "%Y-%m-%dT%H:%M:%SZ"


class Stream(io.StringIO):
    """A stream that counts the system calls a real one would make."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.flushes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1


@contextmanager
def served_logging(log_format: str = "text") -> Iterator[tuple[logging.Logger, AccessLineHandler]]:
    """``configure_logging`` as ``akgate serve`` calls it, undone afterwards."""
    saved = {}
    for name in ("akgate", "akgate.access"):
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), list(logger.filters), logger.level, logger.propagate)
        logger.handlers.clear()  # what another test (or a docs snippet) may have added
        logger.filters.clear()
    configure_logging(log_format)  # type: ignore[arg-type]
    access = logging.getLogger("akgate.access")
    (handler,) = access.handlers
    assert isinstance(handler, AccessLineHandler)
    try:
        yield access, handler
    finally:
        for name, (handlers, filters, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.filters[:] = filters
            logger.setLevel(level)
            logger.propagate = propagate


def plain_formatter(log_format: str) -> logging.Formatter:
    """The standard library's rule for each format's access lines."""
    if log_format == "json":
        return logging.Formatter("%(message)s")
    formatter = logging.Formatter("%(asctime)s %(message)s", datefmt=UTC)
    formatter.converter = time.gmtime
    return formatter


@contextmanager
def clock_at(unix: float) -> Iterator[None]:
    with (
        mock.patch("time.time", return_value=unix),
        mock.patch("time.time_ns", return_value=round(unix * 1e9)),
    ):
        yield


async def answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def observation(data: dict[str, Any]) -> Observation:
    ctx = RequestContext(request_id=data["request_id"], started=100.0)
    if data["key_id"] is not None:
        ctx.identity = Identity(key_id=data["key_id"], workspace_id=data["workspace"])
    ctx.payload = data["payload"]
    if data["routing"] is not None:
        ctx.state["routing"] = data["routing"]
    headers = [(b"user-agent", data["user_agent"].encode())]
    scope = {"type": "http", "method": data["method"], "path": data["path"], "headers": headers}
    obs = Observation(scope, ctx)
    obs.started = 100.0
    obs.status, obs.stream, obs.error_code = data["status"], data["stream"], data["error"]
    obs.first_byte = 100.0 + data["ttft"] if data["ttft"] is not None else None
    obs.ended = 100.0 + data["duration"]
    obs.finish()
    return obs


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
numbers = st.one_of(st.integers(-5, 10**9), st.floats(allow_nan=False, allow_infinity=False))
metadata = st.fixed_dictionaries(
    {},
    optional={
        "model_canonical": st.one_of(names, st.integers(), st.none()),
        "provider": st.one_of(names, st.none()),
        "cost": st.one_of(st.none(), names, st.fixed_dictionaries({"usd": numbers | names})),
    },
)
routing = st.fixed_dictionaries(
    {},
    optional={
        "attempts": st.lists(
            st.fixed_dictionaries({"provider": names | st.integers()}), max_size=4
        ),
        "tokens": st.one_of(st.none(), st.tuples(st.integers(0, 10**7), st.integers(0, 10**7))),
        "metadata": metadata | st.none(),
    },
)
requests = st.fixed_dictionaries(
    {
        "request_id": st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1),
        "method": st.sampled_from(["GET", "POST", "DELETE", "OPTIONS", "PATCH"]),
        # Odd paths: percent signs (logging's own format character), quotes, spaces, unicode,
        # longer than the 200 characters the line keeps.
        "path": st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=260),
        "user_agent": st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
        "status": st.integers(0, 599),
        "error": st.one_of(st.none(), names),
        "stream": st.booleans(),
        "ttft": st.one_of(st.none(), st.floats(0, 100)),
        "duration": st.floats(0, 1000),
        "key_id": st.one_of(st.none(), names),
        "workspace": names,
        "payload": st.one_of(st.none(), st.fixed_dictionaries({"model": names | st.integers()})),
        "routing": st.one_of(st.none(), routing, names),
    }
)
#: Whole milliseconds: the record's clock (time_ns on Python 3.13) gives the same second.
instants = st.integers(0, 4_102_444_800_000).map(lambda ms: ms / 1000)


@given(data=requests, unix=instants, log_format=st.sampled_from(["text", "json"]))
def test_the_direct_line_is_the_one_logging_writes(
    data: dict[str, Any], unix: float, log_format: str
) -> None:
    obs = observation(data)
    layer = AccessLog(answer, format=log_format)  # type: ignore[arg-type]
    with served_logging(log_format) as (logger, handler), clock_at(unix):
        direct = Stream()
        handler.setStream(direct)  # type: ignore[arg-type]
        assert direct_handler(logger) is handler
        layer._log(obs)  # no event loop here: written at once
        plain = io.StringIO()
        reference = logging.StreamHandler(plain)
        reference.setFormatter(plain_formatter(log_format))
        logger.handlers[:] = [reference]
        layer._log(obs)
    assert direct.getvalue() == plain.getvalue()
    assert direct.getvalue().count("\n") >= 1
    if log_format == "json":
        expected = {"ts": round(unix, 3), **access_fields(obs)}
        assert direct.getvalue() == json.dumps(expected, separators=(",", ":")) + "\n"


def reference_fields(obs: Observation) -> dict[str, Any]:
    """The fields as the Observation's properties define them (access_fields' first form)."""
    tokens = obs.tokens
    ttft = obs.ttft
    return {
        "request_id": obs.ctx.request_id,
        "key_id": obs.key_id,
        "workspace": obs.workspace,
        "method": obs.method,
        "path": obs.path[:200],
        "endpoint": obs.endpoint,
        "model": obs.model,
        "provider": obs.provider,
        "status": obs.status,
        "error": obs.error_code,
        "stream": obs.stream,
        "input_tokens": tokens[0] if tokens else None,
        "output_tokens": tokens[1] if tokens else None,
        "cost_usd": obs.cost,
        "fallbacks": obs.fallbacks,
        "ttft_ms": round(ttft * 1000, 1) if ttft is not None else None,
        "duration_ms": round(obs.duration * 1000, 1),
    }


def reference_text(fields: dict[str, Any]) -> str:
    """The text line's first form."""
    parts = [f"{fields['request_id']} {fields['method']} {fields['path']} {fields['status']}"]
    for name in (
        "key_id",
        "workspace",
        "endpoint",
        "model",
        "provider",
        "error",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "fallbacks",
        "ttft_ms",
        "duration_ms",
    ):
        value = fields[name]
        if value is not None and not (name == "fallbacks" and value == 0):
            parts.append(f"{name}={value}")
    # Then what a client could break the line with, written as an escape, character by character.
    unsafe = {*map(chr, range(0x20)), "\x7f", "\x85", "\u2028", "\u2029", "\\"}
    return "".join(
        (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") if c in unsafe else c
        for c in " ".join(parts)
    )


@given(data=requests)
def test_fields_and_text_follow_the_observation_rules(data: dict[str, Any]) -> None:
    from akgate.ops._accesslog import _text

    obs = observation(data)
    fields = access_fields(obs)
    assert fields == reference_fields(obs)
    assert list(fields) == list(reference_fields(obs))
    assert _text(fields) == reference_text(fields)


@given(data=requests)
def test_the_served_text_line_is_the_fields_line(data: dict[str, Any]) -> None:
    """access_text (akgate serve's line, built without the fields' dict) against the rule it
    skips: the fields, then the text line of the fields."""
    from akgate.ops._accesslog import _text, access_text

    obs = observation(data)
    assert access_text(obs) == _text(access_fields(obs)) == reference_text(reference_fields(obs))


@given(
    text=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)))
    | st.text(
        st.sampled_from(
            ["a", " ", "\\", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\xa0", "é"]
        )
    )
)
def test_the_printable_shortcut_escapes_what_the_pattern_escapes(text: str) -> None:
    """_safe returns a printable line without a backslash as it is, without the pattern's
    search: the same as the escape rule character by character."""
    from akgate.ops._accesslog import _safe

    unsafe = {*map(chr, range(0x20)), "\x7f", "\x85", "\u2028", "\u2029", "\\"}
    expected = "".join(
        (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") if c in unsafe else c
        for c in text
    )
    assert _safe(text) == expected


async def test_lines_of_one_loop_turn_are_written_and_flushed_once() -> None:
    layer = AccessLog(answer)
    with served_logging() as (_, handler):
        stream = Stream()
        handler.setStream(stream)  # type: ignore[arg-type]
        stream.writes = stream.flushes = 0
        obs = [observation(_simple(f"req_{n}")) for n in range(3)]
        for one in obs:
            layer._log(one)
        assert stream.getvalue() == ""  # still this turn
        await asyncio.sleep(0)
        lines = stream.getvalue().splitlines()
        assert [line.split(" ")[1] for line in lines] == ["req_0", "req_1", "req_2"]
        assert (stream.writes, stream.flushes) == (1, 1)
        layer._log(observation(_simple("req_3")))
        await asyncio.sleep(0)
        assert stream.getvalue().splitlines()[-1].split(" ")[1] == "req_3"
        assert (stream.writes, stream.flushes) == (2, 2)


def _simple(request_id: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "method": "POST",
        "path": "/v1/chat/completions",
        "user_agent": "test",
        "status": 200,
        "error": None,
        "stream": False,
        "ttft": None,
        "duration": 0.01,
        "key_id": "ak_test_abcdefgh",
        "workspace": "default",
        "payload": {"model": "demo"},
        "routing": None,
    }


async def test_a_request_through_the_layer_is_logged_by_the_end_of_its_turn() -> None:
    layer = AccessLog(answer)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with served_logging() as (_, handler):
        stream = Stream()
        handler.setStream(stream)  # type: ignore[arg-type]
        scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""}
        await layer(scope, receive, send)
        await asyncio.sleep(0)
        (line,) = stream.getvalue().splitlines()
    assert line.split(" ")[2:5] == ["GET", "/x", "200"]
    assert (sent[0]["status"], sent[1]["body"]) == (200, b"{}")


class Collect(logging.Handler):
    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_a_handler_added_later_gets_the_next_line_after_the_pending_ones() -> None:
    layer = AccessLog(answer)
    with served_logging() as (logger, handler):
        stream = Stream()
        handler.setStream(stream)  # type: ignore[arg-type]
        layer._log(observation(_simple("req_first")))
        mine = Collect()
        mine.setFormatter(logging.Formatter("mine: %(message)s"))
        logger.addHandler(mine)
        assert direct_handler(logger) is None
        layer._log(observation(_simple("req_second")))  # through logging, this very turn
        ids = [line.split(" ")[1] for line in stream.getvalue().splitlines()]
        assert ids == ["req_first", "req_second"]  # in order, though the first was pending
        assert [line.split(" ")[1] for line in mine.lines] == ["req_second"]
        assert mine.lines[0].startswith("mine: req_second POST /v1/chat/completions 200 ")


def _handler_level(logger: logging.Logger, handler: AccessLineHandler) -> None:
    handler.setLevel(logging.WARNING)


def _logger_level(logger: logging.Logger, handler: AccessLineHandler) -> None:
    logger.setLevel(logging.WARNING)


def _logger_filter(logger: logging.Logger, handler: AccessLineHandler) -> None:
    logger.addFilter(lambda record: "req_x" not in record.getMessage())


def _handler_filter(logger: logging.Logger, handler: AccessLineHandler) -> None:
    handler.addFilter(lambda record: "req_x" not in record.getMessage())


def _disabled(logger: logging.Logger, handler: AccessLineHandler) -> None:
    logger.disabled = True


@pytest.mark.parametrize(
    "configure", [_handler_level, _logger_level, _logger_filter, _handler_filter, _disabled]
)
def test_a_users_level_or_filter_still_drops_the_line(configure: Any) -> None:
    with served_logging() as (logger, handler):
        stream = Stream()
        handler.setStream(stream)  # type: ignore[arg-type]
        configure(logger, handler)
        try:
            AccessLog(answer)._log(observation(_simple("req_x")))
        finally:
            logger.disabled = False
        assert stream.getvalue() == ""


def test_a_users_formatter_on_the_handler_is_used() -> None:
    with served_logging() as (_, handler):
        stream = Stream()
        handler.setStream(stream)  # type: ignore[arg-type]
        handler.setFormatter(logging.Formatter("%(levelname)s %(request_id)s|%(message)s"))
        AccessLog(answer)._log(observation(_simple("req_f")))
        assert stream.getvalue().startswith("INFO req_f|req_f POST /v1/chat/completions 200 ")


def test_propagation_turned_back_on_reaches_the_parents_handlers() -> None:
    with served_logging() as (logger, handler):
        stream = Stream()
        handler.setStream(stream)  # type: ignore[arg-type]
        parent = Collect()
        logging.getLogger("akgate").handlers[:] = [parent]
        logger.propagate = True
        AccessLog(answer)._log(observation(_simple("req_p")))
        assert stream.getvalue().split(" ")[1] == "req_p"
    assert [line.split(" ")[0] for line in parent.lines] == ["req_p"]


def test_a_record_factory_of_the_users_sees_every_line() -> None:
    seen: list[str] = []
    original = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = original(*args, **kwargs)
        seen.append(record.getMessage())
        return record

    with served_logging() as (_, handler):
        handler.setStream(Stream())  # type: ignore[arg-type]
        logging.setLogRecordFactory(factory)
        try:
            AccessLog(answer)._log(observation(_simple("req_r")))
        finally:
            logging.setLogRecordFactory(original)
    assert [line.split(" ")[0] for line in seen] == ["req_r"]


async def test_a_failing_stream_is_reported_as_logging_reports_it() -> None:
    class Broken(Stream):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    with served_logging() as (_, handler):
        handler.setStream(Broken())  # type: ignore[arg-type]
        with mock.patch.object(handler, "handleError") as handle_error:
            AccessLog(answer)._log(observation(_simple("req_b")))
            await asyncio.sleep(0)  # the loop's callback does not raise
        (record,), _ = handle_error.call_args
        assert " req_b POST /v1/chat/completions 200 " in record.getMessage()
        handler.setStream(Stream())  # type: ignore[arg-type]


SHUTDOWN = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
from akgate.ops import AccessLog
from akgate.ops._stack import configure_logging
from tests.ops.test_access_writer import answer, observation, _simple

configure_logging()
layer = AccessLog(answer)
loop = asyncio.new_event_loop()

async def last_request():
    layer._log(observation(_simple("req_last")))
    loop.stop()  # the loop ends before the turn that writes the line

loop.create_task(last_request())
loop.run_forever()
loop.close()
print("exiting", file=sys.stderr)
"""


def test_a_line_still_pending_when_the_loop_stops_is_written_at_exit() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SHUTDOWN, str(ROOT / "middleware"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "exiting" in done.stderr
    (line,) = done.stdout.splitlines()
    assert line.split(" ")[1:4] == ["req_last", "POST", "/v1/chat/completions"]


def test_configuring_again_writes_the_lines_the_old_handler_held() -> None:
    with served_logging() as (_, handler):
        stream = Stream()
        handler.setStream(stream)  # type: ignore[arg-type]
        handler._pending.append("held\n")  # as if logged this turn
        configure_logging()
        assert stream.getvalue() == "held\n"


def test_lines_from_loops_in_several_threads_are_all_written() -> None:
    """Apps on several threads, each with its own event loop, share the handler: a line added
    while another thread writes the pending ones is written too, once."""
    layer = AccessLog(answer)
    per_thread = 300

    def serve(name: str) -> None:
        async def requests() -> None:
            for n in range(per_thread):
                layer._log(observation(_simple(f"req_{name}_{n}")))
                if n % 7 == 0:
                    await asyncio.sleep(0)

        asyncio.run(requests())

    switch = sys.getswitchinterval()
    with served_logging() as (_, handler):
        stream = Stream()
        handler.setStream(stream)  # type: ignore[arg-type]
        sys.setswitchinterval(1e-6)
        try:
            threads = [threading.Thread(target=serve, args=(str(t),)) for t in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(switch)
        handler.flush()
        ids = [line.split(" ")[1] for line in stream.getvalue().splitlines()]
    assert sorted(ids) == sorted(f"req_{t}_{n}" for t in range(4) for n in range(per_thread))


def test_a_loop_closed_before_its_flush_does_not_hold_up_the_next_loops_lines() -> None:
    layer = AccessLog(answer)
    with served_logging() as (_, handler):
        stream = Stream()
        handler.setStream(stream)  # type: ignore[arg-type]
        first = asyncio.new_event_loop()

        async def stopped_early() -> None:
            layer._log(observation(_simple("req_early")))
            first.stop()  # closed below with the turn that would write the line not run

        task = first.create_task(stopped_early())
        first.run_forever()
        first.close()
        assert task.done()
        assert stream.getvalue() == ""

        async def next_request() -> list[str]:
            layer._log(observation(_simple("req_next")))
            await asyncio.sleep(0)
            return [line.split(" ")[1] for line in stream.getvalue().splitlines()]

        assert asyncio.run(next_request()) == ["req_early", "req_next"]


async def test_a_turns_later_lines_skip_the_running_loop_look_up() -> None:
    """Once a flush is scheduled on this thread's running loop, the turn's next lines go with it
    without asking asyncio for the running loop (each ask costs a getpid system call)."""
    layer = AccessLog(answer)
    real = asyncio.get_running_loop
    asked: list[int] = []

    def counting() -> asyncio.AbstractEventLoop:
        asked.append(1)
        return real()

    with served_logging() as (_, handler):
        stream = Stream()
        handler.setStream(stream)  # type: ignore[arg-type]
        stream.writes = stream.flushes = 0
        with mock.patch("akgate.ops._accesswriter.asyncio.get_running_loop", counting):
            for n in range(3):
                layer._log(observation(_simple(f"req_{n}")))
        assert len(asked) == 1
        assert stream.getvalue() == ""
        await asyncio.sleep(0)
        assert [line.split(" ")[1] for line in stream.getvalue().splitlines()] == [
            "req_0",
            "req_1",
            "req_2",
        ]
        assert (stream.writes, stream.flushes) == (1, 1)


def test_a_flush_left_on_a_stopped_loop_is_not_relied_on() -> None:
    """A loop stopped (and closed) before the turn that would write its lines: the next loop on
    the same thread writes them, with its own line, by the end of its turn."""
    layer = AccessLog(answer)
    with served_logging() as (_, handler):
        stream = Stream()
        handler.setStream(stream)  # type: ignore[arg-type]
        first = asyncio.new_event_loop()

        def log_and_stop() -> None:
            layer._log(observation(_simple("req_0")))
            first.stop()  # the loop ends with this turn: the flush it scheduled never runs

        first.call_soon(log_and_stop)
        first.run_forever()
        first.close()
        assert stream.getvalue() == ""

        async def next_loop() -> str:
            layer._log(observation(_simple("req_1")))
            await asyncio.sleep(0)
            return stream.getvalue()

        written = asyncio.run(next_loop())
        assert [line.split(" ")[1] for line in written.splitlines()] == ["req_0", "req_1"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
async def test_a_forked_child_writes_its_line_at_once() -> None:
    """A child forked while a flush is scheduled on the parent's loop does not wait for that
    loop (it does not run in the child): its line is written at once, as outside a loop."""
    layer = AccessLog(answer)
    read_end, write_end = os.pipe()
    out = os.fdopen(write_end, "w")
    with served_logging() as (_, handler):
        saved = handler.stream
        handler.setStream(out)
        layer._log(observation(_simple("req_parent")))  # a flush scheduled on this loop
        pid = os.fork()
        if pid == 0:  # the child: log, then leave without any clean-up
            try:
                layer._log(observation(_simple("req_child")))
            finally:
                os._exit(0)
        os.waitpid(pid, 0)  # noqa: ASYNC222  (the child exits at once)
        handler._pending.clear()  # the parent's own line is not what this test reads
        handler.setStream(saved)
    out.close()
    with os.fdopen(read_end) as pipe:
        child_output = pipe.read()
    assert "req_child" in child_output
