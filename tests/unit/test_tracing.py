"""W3C trace context parsing and hops (services.common.tracing), and the JSON log lines (services.common.logs)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from services.common import tracing
from services.common.logs import JsonFormatter

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_a_valid_traceparent_gives_its_trace_id_parent_and_flags():
    assert tracing.parse(f"00-{TRACE}-{PARENT}-01") == tracing.TraceContext(TRACE, PARENT, "01")


@pytest.mark.parametrize("value", [
    "", "garbage", f"00-{TRACE}-{PARENT}", f"00-{TRACE.upper()}-{PARENT}-01", f"ff-{TRACE}-{PARENT}-01",
    f"00-{'0' * 32}-{PARENT}-01", f"00-{TRACE}-{'0' * 16}-01", f"00-{TRACE}-{PARENT}-01-extra",
    f"00-{TRACE[:-1]}-{PARENT}-01",
])
def test_an_invalid_traceparent_is_ignored(value):
    assert tracing.parse(value) is None


def test_a_future_version_with_more_fields_is_read_by_its_first_four():
    assert tracing.parse(f"01-{TRACE}-{PARENT}-00-more") == tracing.TraceContext(TRACE, PARENT, "00")


async def test_a_hop_keeps_the_callers_trace_id_with_a_span_of_its_own():
    async def hop() -> tracing.TraceContext:
        return tracing.enter(tracing.incoming((("traceparent", f"00-{TRACE}-{PARENT}-01"),)))

    context = await asyncio.create_task(hop())
    assert context.trace_id == TRACE and context.span_id != PARENT and len(context.span_id) == 16
    assert context.traceparent == f"00-{TRACE}-{context.span_id}-01"


async def test_a_call_without_a_traceparent_starts_a_trace_of_its_own():
    async def hop() -> tracing.TraceContext:
        return tracing.enter(tracing.incoming((("authorization", "Bearer x"),)))

    first, second = await asyncio.gather(hop(), hop())
    assert len(first.trace_id) == 32 and first.trace_id != second.trace_id


async def test_a_log_line_is_json_with_the_trace_id_of_the_call():
    formatter = JsonFormatter("feed")

    async def serve() -> dict:
        tracing.enter(tracing.parse(f"00-{TRACE}-{PARENT}-01"))
        record = logging.LogRecord("services.feed", logging.WARNING, __file__, 1, "slow %s", ("call",), None)
        return json.loads(formatter.format(record))

    line = await asyncio.create_task(serve())
    assert line["trace_id"] == TRACE
    assert (line["process"], line["level"], line["message"]) == ("feed", "WARNING", "slow call")
