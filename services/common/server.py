"""The one bootstrap of every process of the mesh: services and workers.

A service (`main(spec, setup)`): settings, logging, one grpc.aio server with
what wraps every handler (metrics and trace, errors, request and caller checks,
built once per method: services.common.handler_wraps), the standard health
service, server reflection; its
`setup` takes what it needs from `Resources` (database pools, Redis, channels
to other services), and the stores it took become its health dependencies:
a watcher probes them, health says NOT_SERVING while one is down and SERVING
again when it is back (services.common.dependencies).

A worker (`run_worker(name, work)`): the same settings, logging and
resources; `work(resources, stop)` runs until `stop` is set. A store or a
service out of reach ends the attempt, which starts again with backoff in the
same process; anything else ends the process, which the launcher restarts.

Shutdown (SIGTERM or SIGINT): health goes NOT_SERVING so Envoy stops sending
new calls, a short pause lets it notice, `server.stop(grace)` drains calls in
flight, then the resources close.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common import logs, metrics, revocation
from services.common.clients import MeshChannels
from services.common.config import Settings, env_int, load_settings
from services.common.db import Database
from services.common.dependencies import (
    CLOSE_TIMEOUT_S,
    REDIS_ERRORS,
    Backoff,
    Dependency,
    DependencyWatcher,
    connect_redis,
    finish_within,
    redis_dependency,
    unavailable_reason,
)
from services.common.errors import ErrorInterceptor
from services.common.handler_wraps import WrapOnce
from services.common.ids import IdAllocator, leased_allocator
from services.common.mesh_tls import CallerCheckInterceptor, server_credentials
from services.common.registry import SERVICES, WORKERS, ServiceSpec, all_proto_services, internal_callers
from services.common.request_checks import RequestCheckInterceptor
from services.common.revocation import RevocationList

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]
STARTUP_WAIT_S = 5.0
# A call that takes this long or longer is logged (PICTOR_SLOW_CALL_MS, or PICTOR_<SERVICE>_SLOW_CALL_MS).
SLOW_CALL_MS = 1000

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
]


class Resources:
    """What a process opens once and closes on the way out, each made on first use: the database
    pools, the Redis client, the channels to other services. The stores it made are the
    process's health dependencies."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dependencies: list[Dependency] = []
        self._db: Database | None = None
        self._redis: aioredis.Redis | None = None
        self._channels: MeshChannels | None = None
        self._ids: IdAllocator | None = None
        self._closers: list[Closer] = []

    async def database(self, max_size: int = 10) -> Database:
        if self._db is None:
            self._db = Database(self.settings, max_size=max_size)
            # Not waiting: a database that is down yet is the health watcher's news, not a crash.
            await self._db.open(wait=False)
            self._closers.append(self._db.close)
            metrics.watch_pools(self._db.pools)
            self.dependencies += self._db.dependencies()
        return self._db

    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = connect_redis(self.settings.redis_url)
            self._closers.append(self._redis.aclose)
            self.dependencies.append(redis_dependency(self.settings.redis_url))
        return self._redis

    async def ids(self) -> IdAllocator:
        """Ids under a worker number leased for this process (services.common.ids), released on close."""
        if self._ids is None:
            db = await self.database()
            self._ids = await leased_allocator(lambda: db.global_pool, self.settings.logical_shards,
                                               self.settings.process_name)
            assert self._ids.lease is not None
            self._closers.append(self._ids.lease.release)
        return self._ids

    def channels(self) -> MeshChannels:
        if self._channels is None:
            self._channels = MeshChannels(self.settings)
            self._closers.append(self._channels.close)
        return self._channels

    async def ready(self, timeout_s: float = STARTUP_WAIT_S) -> None:
        """Wait a little for the database pools' first connections, so that the first calls after a
        (re)start do not queue behind them; a database that is down is the health watcher's news."""
        if self._db is not None:
            await self._db.ready(timeout_s)

    def on_close(self, closer: Closer) -> None:
        """Close something else the process opened, with the rest (in reverse order of opening)."""
        self._closers.append(closer)

    async def close(self) -> None:
        """Close each, the last opened first; one that fails or hangs is logged and the rest close."""
        for close in reversed(self._closers):
            try:
                await finish_within(f"closing {close!r}", close())
            except Exception:
                log.exception("closing %s failed", close)
        self._closers.clear()


# A service's setup: add its servicers to the server, taking what it needs from the resources.
Setup = Callable[[grpc.aio.Server, Resources], Awaitable[None]]


@dataclass
class RunningService:
    spec: ServiceSpec
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    resources: Resources
    watcher: DependencyWatcher = field(default_factory=lambda: DependencyWatcher([]))

    async def set_health(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *self.spec.proto_services):
            await self.health.set(name, status)

    async def shutdown(self, grace_s: float, drain_pause_s: float = 0.2) -> None:
        """Each step bounded (finish_within): one that hangs is logged, with where it waits."""
        await finish_within("stopping the dependency watcher", self.watcher.stop())
        await self.set_health(False)
        await asyncio.sleep(drain_pause_s)
        # Past the grace, stop() cancels the calls still running; it has CLOSE_TIMEOUT_S more to end.
        await finish_within(f"stopping the {self.spec.name} server", self.server.stop(grace_s),
                            grace_s + CLOSE_TIMEOUT_S)
        await self.resources.close()


async def watch_revocations(resources: Resources) -> None:
    """This process's copy of the revoked access tokens (services.common.revocation), checked by every
    TokenVerifier. Its own Redis client, not a health dependency: with Redis away the last copy holds."""
    client = connect_redis(resources.settings.redis_url)
    revocations = RevocationList(client, resources.settings.access_token_ttl_s,
                                 env_int("PICTOR_REVOCATION_REFRESH_MS", 1000) / 1000)
    with contextlib.suppress(*REDIS_ERRORS):
        await revocations.reload()
    revocations.start()
    revocation.install(revocations)

    async def close() -> None:
        revocation.install(None)
        await revocations.close()
        await client.aclose()

    resources.on_close(close)


async def start(spec: ServiceSpec, setup: Setup, settings: Settings, *, host: str = "127.0.0.1",
                port: int | None = None) -> RunningService:
    """Start `spec` on host:port (port 0 picks a free one); SERVING once its stores answer.

    The port is mutual TLS with the service's mesh certificate (services.common.mesh_tls); its
    calls to other services present the same certificate."""
    # Reflection describes the whole mesh, so grpcurl through the gateway
    # lists every service whichever backend answers.
    for module in (m for s in SERVICES for m in s.proto_modules):
        importlib.import_module(module)
    watcher = DependencyWatcher([])
    # Metrics outermost: the status it counts is the one the caller gets.
    slow_call_ms = env_int(f"{spec.env_prefix}_SLOW_CALL_MS", env_int("PICTOR_SLOW_CALL_MS", SLOW_CALL_MS))
    wraps = WrapOnce(metrics.MetricsInterceptor(slow_call_ms / 1000), ErrorInterceptor(watcher),
                     RequestCheckInterceptor(), CallerCheckInterceptor(internal_callers()))
    server = grpc.aio.server(interceptors=[wraps], options=SERVER_OPTIONS)
    settings = replace(settings, mesh_identity=spec.name)
    resources = Resources(settings)
    try:
        await watch_revocations(resources)
        await setup(server, resources)
        watcher.dependencies = resources.dependencies
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (*all_proto_services(), health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME),
            server,
        )
        bound = server.add_secure_port(f"{host}:{settings.service_port(spec) if port is None else port}",
                                       server_credentials(settings.mesh_dir, spec.name))
        await resources.ready()
        await server.start()
    except BaseException:
        await resources.close()
        raise
    running = RunningService(spec, server, health_servicer, bound, resources, watcher)
    await watcher.check_once()
    await running.set_health(not watcher.down)
    watcher.on_change = running.set_health
    watcher.start()
    log.info("%s serving on %s:%d%s", spec.name, host, bound,
             f" (NOT_SERVING until {', '.join(watcher.down)} answers)" if watcher.down else "")
    return running


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: how every process of the mesh learns to shut down."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def configure_logging(process: str) -> None:
    logs.configure(process)


async def wait_for_stop(stop: asyncio.Event, timeout_s: float) -> None:
    """Sleep `timeout_s`, or less when `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout_s)


async def every(interval_s: float, task: Callable[[], Awaitable[object]], stop: asyncio.Event) -> None:
    """Run `task` every `interval_s` until `stop` (a worker's sweep beside its consumer)."""
    while not stop.is_set():
        await wait_for_stop(stop, interval_s)
        if not stop.is_set():
            await task()


async def side_by_side(*jobs: Awaitable[object]) -> None:
    """Run `jobs` together (a worker's consumer and its sweep) until all end. The first to fail
    stops the others and its error is raised as it is: keep_working then closes the resources
    and starts afresh, with nothing left running on the closed ones (asyncio.gather alone would
    leave the others running; a TaskGroup would wrap the error in an ExceptionGroup)."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# A worker's work: runs until `stop` is set, using the resources it is given.
Work = Callable[[Resources, asyncio.Event], Awaitable[None]]


async def keep_working(name: str, work: Work, settings: Settings, stop: asyncio.Event,
                       backoff: Backoff | None = None) -> None:
    """Run `work` until `stop`; when a store or service is out of reach, start it again (with fresh
    resources) after a growing delay. Any other error is raised: the process ends and the
    launcher restarts it."""
    backoff = backoff or Backoff()
    while not stop.is_set():
        resources = Resources(settings)
        began = time.monotonic()
        try:
            await work(resources, stop)
            return
        except Exception as error:
            reason = unavailable_reason(error)
            if reason is None:
                raise
            delay = backoff.delay(time.monotonic() - began)
            log.warning("%s: %s (%s: %s); starting again in %.1f s", name, reason, type(error).__name__, error, delay)
        finally:
            await resources.close()
        await wait_for_stop(stop, delay)


def run_worker(name: str, work: Work) -> None:
    """Run a worker process (it serves no port) until SIGTERM or SIGINT."""
    settings = load_settings()
    configure_logging(settings.replica or name)
    worker = next((w for w in WORKERS if w.name == name), None)
    if worker is not None and not settings.mesh_identity:
        settings = replace(settings, mesh_identity=worker.identity)

    async def run() -> None:
        stop = stop_on_signals()
        endpoint = await metrics.serve(settings.bind_host or "127.0.0.1", settings.metrics_ports.get(name, 0), name)
        await keep_working(name, work, settings, stop)
        log.info("%s stopped", name)
        if endpoint is not None:
            await endpoint.close()

    asyncio.run(run())


def main(spec: ServiceSpec, setup: Setup) -> None:
    """Run a service process until SIGTERM or SIGINT."""
    settings = load_settings()
    configure_logging(settings.replica or spec.name)

    async def run() -> None:
        stop = stop_on_signals()
        running = await start(spec, setup, settings, host=settings.listen_host(spec),
                              port=settings.listen_port or None)
        endpoint = await metrics.serve(settings.listen_host(spec), settings.metrics_ports.get(spec.name, 0), spec.name)
        await stop.wait()
        log.info("%s shutting down", spec.name)
        await running.shutdown(settings.shutdown_grace_s)
        if endpoint is not None:
            await endpoint.close()

    asyncio.run(run())
