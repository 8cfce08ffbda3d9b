"""WrapOnce (services.common.handler_wraps) on a real grpc.aio server: each method's handler is
wrapped once, outermost first, and the wrapped handler serves every later call; a method that
does not exist stays UNIMPLEMENTED and is not kept."""

from __future__ import annotations

import grpc
import pytest

from services.common.handler_wraps import HandlerWrap, WrapOnce


class Recording(HandlerWrap):
    """Counts the wraps it builds; each call records its name on the way in."""

    def __init__(self, name: str, entered: list[str]) -> None:
        self.name, self.entered, self.built = name, entered, []

    def wrap(self, path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        self.built.append(path)
        behavior = handler.unary_unary

        async def recorded(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            self.entered.append(self.name)
            return await behavior(request, context)

        return handler._replace(unary_unary=recorded)


async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


@pytest.fixture
async def served():
    entered: list[str] = []
    outer, inner = Recording("outer", entered), Recording("inner", entered)
    server = grpc.aio.server(interceptors=[WrapOnce(outer, inner)])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Wraps", {
        "One": grpc.unary_unary_rpc_method_handler(echo),
        "Two": grpc.unary_unary_rpc_method_handler(echo),
    })])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel, outer, inner, entered
    await server.stop(None)


async def test_each_method_is_wrapped_once_and_every_call_runs_the_wraps_outermost_first(served):
    channel, outer, inner, entered = served
    for _ in range(3):
        assert await channel.unary_unary("/test.Wraps/One")(b"1") == b"1"
        assert await channel.unary_unary("/test.Wraps/Two")(b"2") == b"2"
    assert outer.built == inner.built == ["/test.Wraps/One", "/test.Wraps/Two"]
    assert entered == ["outer", "inner"] * 6


async def test_a_method_that_does_not_exist_is_unimplemented_each_time_and_never_wrapped(served):
    channel, outer, inner, entered = served
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary("/test.Wraps/Nope")(b"")
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert outer.built == inner.built == [] and entered == []


async def test_a_wrap_on_its_own_is_an_interceptor_that_wraps_each_call():
    entered: list[str] = []
    alone = Recording("alone", entered)
    server = grpc.aio.server(interceptors=[alone])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Wraps", {
        "One": grpc.unary_unary_rpc_method_handler(echo)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for _ in range(2):
                assert await channel.unary_unary("/test.Wraps/One")(b"x") == b"x"
    finally:
        await server.stop(None)
    assert alone.built == ["/test.Wraps/One"] * 2 and entered == ["alone"] * 2
