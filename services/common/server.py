"""Wiring every service shares: one grpc.aio server with the error interceptor,
the standard health service, server reflection and graceful shutdown.

Shutdown (SIGTERM or SIGINT): health goes NOT_SERVING so Envoy stops sending
new calls, a short pause lets it notice, `server.stop(grace)` drains calls in
flight, then the service's own resources (pools) close.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.config import Settings, load_settings
from services.common.errors import ErrorInterceptor
from services.common.registry import SERVICES, ServiceSpec, all_proto_services

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]
# A service's setup: given the settings, add its servicers to the server and
# return the closers of what it opened.
Setup = Callable[[grpc.aio.Server, Settings], Awaitable[Sequence[Closer]]]

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
]


@dataclass
class RunningService:
    spec: ServiceSpec
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    closers: list[Closer] = field(default_factory=list)

    async def shutdown(self, grace_s: float, drain_pause_s: float = 0.2) -> None:
        for name in ("", *self.spec.proto_services):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await asyncio.sleep(drain_pause_s)
        await self.server.stop(grace_s)
        for close in reversed(self.closers):
            try:
                await close()
            except Exception:
                log.exception("closing %s failed", self.spec.name)


async def start(spec: ServiceSpec, setup: Setup, settings: Settings, *, host: str = "127.0.0.1",
                port: int | None = None) -> RunningService:
    """Start `spec` on host:port (port 0 picks a free one) and mark it SERVING."""
    # Reflection describes the whole mesh, so grpcurl through the gateway
    # lists every service whichever backend answers.
    for module in (m for s in SERVICES for m in s.proto_modules):
        importlib.import_module(module)
    server = grpc.aio.server(interceptors=[ErrorInterceptor()], options=SERVER_OPTIONS)
    closers = list(await setup(server, settings))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*all_proto_services(), health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME),
        server,
    )
    bound = server.add_insecure_port(f"{host}:{settings.service_port(spec) if port is None else port}")
    await server.start()
    for name in ("", *spec.proto_services):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s serving on %s:%d", spec.name, host, bound)
    return RunningService(spec, server, health_servicer, bound, closers)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: how every process of the mesh learns to shut down."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def run_worker(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run a worker process (it serves no port) until `run` returns; `run` watches stop_on_signals()."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s")
    asyncio.run(run())


def main(spec: ServiceSpec, setup: Setup) -> None:
    """Run a service process until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {spec.name} %(levelname)s %(name)s: %(message)s")
    settings = load_settings()

    async def run() -> None:
        running = await start(spec, setup, settings, host=settings.service_hosts[spec.name])
        stop = stop_on_signals()
        await stop.wait()
        log.info("%s shutting down", spec.name)
        await running.shutdown(settings.shutdown_grace_s)

    asyncio.run(run())
