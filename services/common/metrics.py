"""Prometheus metrics of every process of the mesh, served at `/metrics` on a port of its own.

What each process exports (the names deploy/grafana/pictor.json charts; tests/mesh/test_dashboard.py
checks that every one it queries is defined here):
  - every service: gRPC calls by service, method and status code with their latency
    (`MetricsInterceptor`, installed by services.common.server for every server), and the use of
    its PostgreSQL pools;
  - every consumer of the event bus: the events it handled, by group, topic and outcome;
  - the relay: the outbox rows not relayed yet, and each consumer group's pending and lag on
    each stream (XINFO GROUPS), so a stalled consumer shows even while its own process is stuck;
  - media: the image decoder pool (busy, waiting); the video transcoder: jobs waiting and held;
  - realtime: the streams open in the process;
  - the process itself (CPU, memory, open files: prometheus_client's process collector).

Gauges that need a query (Redis, PostgreSQL) are sampled when Prometheus scrapes, by the
samplers a process registers (`sample_on_scrape`), so they cost nothing between scrapes. The
HTTP endpoint runs on the process's event loop (no thread touches the pools). Labels never
carry user data: methods, codes, groups, topics and databases only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from services.common import tracing
from services.common.handler_wraps import HandlerWrap

log = logging.getLogger(__name__)

disable_created_metrics()

# Calls of the mesh's own plumbing (health checks every few seconds, reflection) are not counted.
PLUMBING = ("/grpc.health.", "/grpc.reflection.")
# Seconds: from a cached read (well under a millisecond) to a slow upload or transcode hand-off.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# The names follow grpc-ecosystem's go-grpc-prometheus, so stock gRPC dashboards read them too.
GRPC_HANDLED = Counter("grpc_server_handled_total", "gRPC calls completed, by status code.",
                       ["grpc_service", "grpc_method", "grpc_code"])
GRPC_SECONDS = Histogram("grpc_server_handling_seconds", "Time from a call's arrival to its status, seconds.",
                         ["grpc_service", "grpc_method"], buckets=LATENCY_BUCKETS)
GRPC_IN_FLIGHT = Gauge("grpc_server_in_flight", "gRPC calls being served (streams included).")

DB_POOL = Gauge("pictor_db_pool_connections", "PostgreSQL pool connections: size (open), available (idle), "
                "max, and callers waiting for one.", ["database", "state"])

EVENTS_HANDLED = Counter("pictor_events_handled_total", "Events a consumer group's member handled, by outcome "
                         "(acked, postponed, unavailable, failed).", ["group", "topic", "outcome"])
EVENTS_SECONDS = Histogram("pictor_events_handling_seconds", "Time a consumer's handler took per event, seconds.",
                           ["group"], buckets=LATENCY_BUCKETS)
EVENTS_PENDING = Gauge("pictor_events_pending", "Events delivered to a consumer group and not acknowledged yet "
                       "(XINFO GROUPS pending).", ["stream", "group"])
EVENTS_LAG = Gauge("pictor_events_lag", "Events on a stream not yet delivered to a consumer group "
                   "(XINFO GROUPS lag; counted with XRANGE on Redis 6).", ["stream", "group"])
STREAM_LENGTH = Gauge("pictor_events_stream_length", "Entries on an event stream (XLEN).", ["stream"])
OUTBOX_BACKLOG = Gauge("pictor_outbox_backlog", "Events committed to the shards' outboxes and not relayed yet.",
                       ["database"])

DECODER_BUSY = Gauge("pictor_media_decoders_busy", "Image decoder processes working on a job.")
DECODER_WAITING = Gauge("pictor_media_decoder_waiting", "Image jobs waiting for a free decoder.")
DECODER_SLOTS = Gauge("pictor_media_decoders", "Image decoder processes in the pool (PICTOR_MEDIA_JOBS).")
VIDEO_JOBS = Gauge("pictor_media_video_jobs", "Video transcoding jobs: waiting for a transcoder, or held by one.",
                   ["state"])
REALTIME_STREAMS = Gauge("pictor_realtime_open_streams", "Live event streams open in this process.")

# Above this many, a group's lag on Redis 6 (no `lag` in XINFO GROUPS) is reported as this many.
LAG_COUNT_CAP = 10_000

Sampler = Callable[[], Awaitable[None]]
_samplers: dict[str, Sampler] = {}
SAMPLE_TIMEOUT_S = 2.0


def sample_on_scrape(name: str, sampler: Sampler) -> None:
    """Run `sampler` (it sets gauges) before each scrape; a later one of the same name replaces it (a
    worker that starts again with fresh resources)."""
    _samplers[name] = sampler


async def _sample() -> None:
    async def one(name: str, sampler: Sampler) -> None:
        try:
            await asyncio.wait_for(sampler(), SAMPLE_TIMEOUT_S)
        except Exception as error:  # noqa: BLE001 (a store that is down: the gauges keep their last value)
            log.warning("metrics sampler %s failed: %s: %s", name, type(error).__name__, error)

    await asyncio.gather(*(one(name, s) for name, s in list(_samplers.items())))


# --- the HTTP endpoint ----------------------------------------------------------------------------

class MetricsServer:
    """`GET /metrics` in the text exposition format, on the process's event loop."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, _, rest = request.partition(b" ")
            path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
            if method != b"GET" or path != b"/metrics":
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                await _sample()
                body = generate_latest(REGISTRY)
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE_LATEST}\r\n"
                             f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


async def serve(host: str, port: int, process: str) -> MetricsServer | None:
    """Start the process's metrics endpoint; port 0: none (PICTOR_METRICS_PORT_OFFSET=0). A port
    that is taken is logged, not fatal: a process serves its calls without its metrics."""
    if port <= 0:
        return None
    server = MetricsServer()
    try:
        await server.start(host, port)
    except OSError as error:
        log.error("%s: metrics not served: port %d: %s", process, port, error)
        return None
    log.info("%s: metrics on http://%s:%d/metrics", process, host, server.port)
    return server


# --- gRPC ------------------------------------------------------------------------------------------

class _MethodMetrics:
    """A method's histogram and per-code counters, looked up once rather than on every call."""

    __slots__ = ("codes", "labels", "path", "seconds", "slow_s")

    def __init__(self, method_path: str, slow_s: float) -> None:
        service, _, method = method_path.lstrip("/").rpartition("/")
        self.path = method_path
        self.labels = (service, method)
        self.seconds = GRPC_SECONDS.labels(service, method)
        self.codes: dict[grpc.StatusCode, Any] = {}
        self.slow_s = slow_s

    def done(self, code: grpc.StatusCode, began: float) -> None:
        took = time.perf_counter() - began
        self.seconds.observe(took)
        counter = self.codes.get(code)
        if counter is None:
            counter = self.codes[code] = GRPC_HANDLED.labels(*self.labels, code.name)
        counter.inc()
        if took >= self.slow_s:
            log.warning("slow call: %s answered %s in %.1f ms", self.path, code.name, took * 1000)


def _code(context: grpc.aio.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if error is None or isinstance(error, grpc.aio.AbortError):
        return grpc.StatusCode.OK if error is None else grpc.StatusCode.UNKNOWN
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


class _Observed:
    """One call, from its handler's start to its status: in flight meanwhile, then counted and timed;
    the handler's task continues the caller's trace."""

    __slots__ = ("began", "context", "metrics", "parent")

    def __init__(self, metrics: _MethodMetrics, context: grpc.aio.ServicerContext,
                 parent: tracing.TraceContext | None) -> None:
        self.metrics, self.context, self.parent = metrics, context, parent

    def __enter__(self) -> None:
        tracing.enter(self.parent)
        GRPC_IN_FLIGHT.inc()
        self.began = time.perf_counter()

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        GRPC_IN_FLIGHT.dec()
        self.metrics.done(_code(self.context, error), self.began)


class MetricsInterceptor(HandlerWrap):
    """Counts each call by method and status code and times it; continues the caller's W3C trace
    (the `traceparent` metadata, services.common.tracing) for the call's logs and outbound calls.

    A call that takes `slow_call_s` or longer is logged (one line, with its trace id); a server
    stream is timed but never logged as slow.

    The outermost wrap: the code it records is the one the caller gets, after the error
    interceptor mapped the domain's exceptions."""

    def __init__(self, slow_call_s: float = 1.0) -> None:
        self._methods: dict[str, _MethodMetrics] = {}
        self.slow_call_s = slow_call_s

    def wrap(self, path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if path.startswith(PLUMBING):
            return handler
        answers_once = bool(handler.unary_unary or handler.stream_unary)
        metrics = self._methods.get(path)
        if metrics is None:
            # A stream the server keeps writing to lasts as long as its reader stays: not slow.
            slow_s = self.slow_call_s if answers_once else math.inf
            metrics = self._methods[path] = _MethodMetrics(path, slow_s)

        if answers_once:
            kind = "unary_unary" if handler.unary_unary else "stream_unary"
            behavior = getattr(handler, kind)

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with _Observed(metrics, context, tracing.incoming(context.invocation_metadata())):
                    return await behavior(request, context)

            return handler._replace(**{kind: unary})

        kind = "unary_stream" if handler.unary_stream else "stream_stream"
        streamer = getattr(handler, kind)

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with _Observed(metrics, context, tracing.incoming(context.invocation_metadata())):
                async for reply in streamer(request, context):
                    yield reply

        return handler._replace(**{kind: streaming})


# --- samplers for the stores ----------------------------------------------------------------------

def database_label(url: str) -> str:
    """host:port/dbname of a PostgreSQL URL, never its user or password."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(url)
    return f"{parts.get('host', '')}:{parts.get('port', '5432')}/{parts.get('dbname', '')}"


def watch_pools(pools: Callable[[], dict[str, Any]]) -> None:
    """Sample the pools `pools()` returns (url -> psycopg AsyncConnectionPool) at each scrape."""
    async def sample() -> None:
        for url, pool in pools().items():
            stats = pool.get_stats()
            label = database_label(url)
            DB_POOL.labels(label, "size").set(stats.get("pool_size", 0))
            DB_POOL.labels(label, "available").set(stats.get("pool_available", 0))
            DB_POOL.labels(label, "waiting").set(stats.get("requests_waiting", 0))
            DB_POOL.labels(label, "max").set(pool.max_size)

    sample_on_scrape("db_pools", sample)


async def sample_streams(client: Any) -> None:
    """Every event stream's length, and each of its consumer groups' pending and lag."""
    async for raw in client.scan_iter(match="events:*", _type="stream", count=1000):
        name = raw.decode() if isinstance(raw, bytes) else raw
        STREAM_LENGTH.labels(name).set(await client.xlen(name))
        for group in await client.xinfo_groups(name):
            group_name = group["name"].decode() if isinstance(group["name"], bytes) else group["name"]
            EVENTS_PENDING.labels(name, group_name).set(group["pending"])
            lag = group.get("lag")
            if lag is None:  # Redis 6 (the embedded server): count what is past the group's last delivery
                last = group["last-delivered-id"]
                last = last.decode() if isinstance(last, bytes) else last
                lag = len(await client.xrange(name, min=f"({last}", max="+", count=LAG_COUNT_CAP))
            EVENTS_LAG.labels(name, group_name).set(lag)
