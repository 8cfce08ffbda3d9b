"""Shared by the gRPC tests: a service on a real grpc.aio server at port 0, and a stub of it."""

from __future__ import annotations

import grpc
import pytest

from services.common import server
from services.common.mesh_tls import service_channel
from services.common.registry import TOOLS


@pytest.fixture
async def serve(settings):
    """`await serve(SPEC, setup, SomeServiceStub)`: the service on a free port, against the stack's
    stores, and a stub on a channel to it (mutual TLS as `identity`: a method for the mesh only
    needs one its allow-list admits); both closed (the server gracefully) after the test."""
    started: list[tuple[server.RunningService, grpc.aio.Channel]] = []

    async def start(spec, setup, stub_class, identity: str = TOOLS):
        running = await server.start(spec, setup, settings, port=0)
        channel = service_channel(settings, spec.name, identity, port=running.port)
        started.append((running, channel))
        return stub_class(channel)

    yield start
    for running, channel in started:
        await channel.close()
        await running.shutdown(grace_s=1, drain_pause_s=0)
