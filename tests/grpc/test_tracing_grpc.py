"""Trace context over real gRPC: a server of the mesh (services.common.server, mutual TLS) whose
handler calls another over a mesh channel; the trace id crosses both hops on the wire."""

from __future__ import annotations

import asyncio
import json

import grpc

from services.common import server, tracing
from services.common.mesh_tls import service_channel
from services.common.registry import TOOLS, by_name

SPEC = by_name("search")  # any service's identity: the methods below are the test's own
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def raw(data: bytes) -> bytes:
    return data


def incoming_traceparent(context: grpc.aio.ServicerContext) -> str:
    return dict(context.invocation_metadata()).get("traceparent", "")


async def test_the_trace_id_crosses_every_hop_with_each_hop_the_next_ones_parent(settings):
    ports: dict[str, int] = {}
    channels: list[grpc.aio.Channel] = []

    async def inner(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return json.dumps({"incoming": incoming_traceparent(context),
                           "own": tracing.current().traceparent}).encode()

    async def outer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        channel = service_channel(settings, SPEC.name, SPEC.name, port=ports["port"])
        channels.append(channel)
        reply = json.loads(await channel.unary_unary("/pictor.test.Trace/Inner")(b"", timeout=10))
        return json.dumps({"incoming": incoming_traceparent(context), "own": tracing.current().traceparent,
                           "inner": reply}).encode()

    async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
        grpc_server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("pictor.test.Trace", {
            "Outer": grpc.unary_unary_rpc_method_handler(outer, request_deserializer=raw, response_serializer=raw),
            "Inner": grpc.unary_unary_rpc_method_handler(inner, request_deserializer=raw, response_serializer=raw),
        }),))

    running = await server.start(SPEC, setup, settings, port=0)
    ports["port"] = running.port
    client = service_channel(settings, SPEC.name, TOOLS, port=running.port)
    try:
        sent = f"00-{TRACE}-{CLIENT_SPAN}-01"
        reply = json.loads(await client.unary_unary("/pictor.test.Trace/Outer")(
            b"", metadata=(("traceparent", sent),), timeout=10))
    finally:
        await client.close()
        for channel in channels:
            await channel.close()
        await running.shutdown(grace_s=1, drain_pause_s=0)

    outer_hop = tracing.parse(reply["own"])
    inner_hop = tracing.parse(reply["inner"]["own"])
    assert reply["incoming"] == sent
    assert outer_hop.trace_id == inner_hop.trace_id == TRACE
    # The outer handler's call carried its own hop as the parent of the next.
    assert reply["inner"]["incoming"] == outer_hop.traceparent
    assert len({CLIENT_SPAN, outer_hop.span_id, inner_hop.span_id}) == 3


async def test_a_mesh_channel_carries_the_trace_on_streams_and_replaces_a_traceparent_given_inside_a_trace(settings):
    async def told(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return incoming_traceparent(context).encode()

    async def streamed(request: bytes, context: grpc.aio.ServicerContext):
        yield incoming_traceparent(context).encode()

    async def setup(grpc_server: grpc.aio.Server, resources: server.Resources) -> None:
        grpc_server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("pictor.test.Trace", {
            "Told": grpc.unary_unary_rpc_method_handler(told, request_deserializer=raw, response_serializer=raw),
            "Streamed": grpc.unary_stream_rpc_method_handler(streamed, request_deserializer=raw,
                                                             response_serializer=raw),
        }),))

    running = await server.start(SPEC, setup, settings, port=0)
    channel = service_channel(settings, SPEC.name, TOOLS, port=running.port)

    async def in_a_trace() -> tuple[str, bytes, list[bytes]]:
        hop = tracing.enter(None)
        told_reply = await channel.unary_unary("/pictor.test.Trace/Told")(
            b"", metadata=(("traceparent", f"00-{TRACE}-{CLIENT_SPAN}-01"),), timeout=10)
        stream = [reply async for reply in channel.unary_stream("/pictor.test.Trace/Streamed")(b"", timeout=10)]
        return hop.traceparent, told_reply, stream

    try:
        without = await channel.unary_unary("/pictor.test.Trace/Told")(b"", timeout=10)
        own, told_reply, stream = await asyncio.create_task(in_a_trace())
    finally:
        await channel.close()
        await running.shutdown(grace_s=1, drain_pause_s=0)

    assert without == b""  # outside a trace, nothing is made up
    assert told_reply.decode() == own and stream == [own.encode()]
