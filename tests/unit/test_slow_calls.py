"""The metrics interceptor logs a call that answers slowly, not a stream that its reader keeps open."""
import asyncio
import logging

import grpc
import pytest

from services.common.metrics import MetricsInterceptor

SLOW_S = 0.05


async def _answer_late(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await asyncio.sleep(SLOW_S * 2)
    return request


async def _stream_a_while(request: bytes, context: grpc.aio.ServicerContext):
    for _ in range(3):
        await asyncio.sleep(SLOW_S)
        yield request


@pytest.fixture
async def channel():
    server = grpc.aio.server(interceptors=[MetricsInterceptor(SLOW_S)])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Slow", {
        "Answer": grpc.unary_unary_rpc_method_handler(_answer_late),
        "Stream": grpc.unary_stream_rpc_method_handler(_stream_a_while),
    })])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    await server.stop(None)


async def test_a_call_answered_past_the_threshold_is_logged_as_slow(channel, caplog):
    with caplog.at_level(logging.WARNING, logger="services.common.metrics"):
        assert await channel.unary_unary("/test.Slow/Answer")(b"x") == b"x"
    slow = [r.getMessage() for r in caplog.records if "slow call" in r.getMessage()]
    assert len(slow) == 1 and "/test.Slow/Answer answered OK" in slow[0]


async def test_a_server_stream_that_lasts_is_not_logged_as_slow(channel, caplog):
    with caplog.at_level(logging.WARNING, logger="services.common.metrics"):
        replies = [reply async for reply in channel.unary_stream("/test.Slow/Stream")(b"y")]
    assert replies == [b"y"] * 3
    assert not [r for r in caplog.records if "slow call" in r.getMessage()]
