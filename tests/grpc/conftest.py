"""Shared by the gRPC tests: a service on a real grpc.aio server at port 0."""

from __future__ import annotations

import pytest

from services.common import server


@pytest.fixture
async def start_service(settings):
    """`await start_service(SPEC, setup)`: the service on a free port, against the stack's stores;
    shut down gracefully after the test."""
    started = []

    async def start(spec, setup) -> server.RunningService:
        running = await server.start(spec, setup, settings, port=0)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.shutdown(grace_s=1, drain_pause_s=0)
