"""PostgreSQL and Redis as dependencies that can go away: bounded waits, and a watcher.

Every client of the stores waits a bounded time (a pool checkout, a Redis
socket read), so an outage answers within seconds instead of hanging. The
watcher probes each store a process needs every `interval_s`; while one is
down the process's health says NOT_SERVING and the error interceptor answers
UNAVAILABLE at once (and for calls already waiting on it), and when the store
is back everything turns SERVING again by itself, with the pools renewed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import grpc
import hiredis
import psycopg
import redis
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.common.cluster import is_cluster

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
CACHE_UNAVAILABLE = "CACHE_UNAVAILABLE"

# A Redis reply slower than this is an outage (the slowest command we send,
# XREADGROUP, blocks 0.5 s); a connection attempt, likewise.
REDIS_SOCKET_TIMEOUT_S = 1.5
REDIS_CONNECT_TIMEOUT_S = 1.0
# Connections per process. A burst beyond them (thousands of live streams closing at once) waits
# up to a command's timeout for a free one, instead of failing at once as redis-py's default pool
# does past its 100.
REDIS_MAX_CONNECTIONS = 200
PROBE_INTERVAL_S = 0.5
PROBE_TIMEOUT_S = 1.0
# After the timeout, how long a probe still gets before it counts as unanswered. A process that did
# not run for a while (its loop held by a long callback, or the machine's cores all busy) finds the
# answer that came meanwhile and its own timeout due in the same turn of the loop, and the timeout
# is handled first: the answer needs a few more turns of the loop to be read.
PROBE_GRACE_S = 0.05
# How long closing one thing (a pool, a client, a worker pool) may take on the way out.
CLOSE_TIMEOUT_S = 10.0

# ConnectionError covers BusyLoading. On a Redis Cluster also: the cluster down or re-forming (a
# master gone, slots uncovered) and no node reachable, which redis-py raises as RedisClusterException.
# NOTE: that class also covers CrossSlotTransactionError, a programming error: it reads as an outage.
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ClusterError,
                redis.exceptions.TryAgainError, redis.exceptions.RedisClusterException)
DATABASE_ERRORS = (psycopg.OperationalError,)  # covers psycopg_pool.PoolTimeout


DEPENDENCY_UNAVAILABLE = "DEPENDENCY_UNAVAILABLE"


def unavailable_reason(error: BaseException) -> str | None:
    """DATABASE_UNAVAILABLE or CACHE_UNAVAILABLE when `error` means a store could not be reached
    (or answered too late), DEPENDENCY_UNAVAILABLE for another service of the mesh; else None."""
    if isinstance(error, grpc.aio.AioRpcError):
        unreachable = error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        return DEPENDENCY_UNAVAILABLE if unreachable else None
    if isinstance(error, BaseExceptionGroup):
        reasons = {unavailable_reason(e) for e in error.exceptions}
        return next(iter(reasons)) if len(reasons) == 1 else None
    if isinstance(error, DATABASE_ERRORS):
        return DATABASE_UNAVAILABLE
    if isinstance(error, REDIS_ERRORS):
        return CACHE_UNAVAILABLE
    return None


def split_cluster_url(url: str) -> tuple[str, bool]:
    """PICTOR_REDIS_URL without its `cluster` parameter, and whether it names a Redis Cluster
    (`?cluster=yes`: any node of it; the client finds the others)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    flags = [value.lower() for name, value in query if name == "cluster"]
    if any(flag not in ("yes", "true", "1", "no", "false", "0") for flag in flags):
        raise ValueError(f"PICTOR_REDIS_URL: cluster must be yes or no, got {flags[0]!r}")
    rest = urlencode([(name, value) for name, value in query if name != "cluster"])
    return urlunsplit(parts._replace(query=rest)), bool(flags) and flags[-1] in ("yes", "true", "1")


class _Connection(aioredis.Connection):
    """redis-py's asyncio connection, packing each command with hiredis's packer, in C, as redis-py's
    blocking connection does. redis-py's asyncio packer encodes each argument in Python and copies
    the command so far once per argument: the feed's 120-key MGET and 120-field HMGET cost it about
    0.3 ms more CPU a page than with this packer (docs/PERFORMANCE.md). hiredis encodes str as UTF-8,
    and int and float as repr does, as redis-py does; anything else (a bool, a memoryview, another
    encoding) goes through redis-py's encoder first, which refuses what redis-py refuses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._as_given = (self.encoder.encoding.lower().replace("-", "").replace("_", "") == "utf8"
                          and self.encoder.encoding_errors == "strict")

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """redis-py's, with the write timed by asyncio.timeout instead of wait_for. On Python 3.11,
        wait_for hides a cancellation that comes in the turn its inner task finishes: a caller cancelled
        as its write went out carried on as though it never was, and a loop cancelled to stop (the
        transcoder's progress notices, awaited by the job that cancelled them) ran on for ever."""
        if not self.is_connected:
            await self.connect_check_health(check_health=False)
        if check_health:
            await self.check_health()
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        try:
            async with asyncio.timeout(self.socket_timeout or None):
                self._writer.writelines(command)
                await self._writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise redis.exceptions.TimeoutError("Timeout writing to socket") from None
        except OSError as error:
            await self.disconnect(nowait=True)
            raise redis.exceptions.ConnectionError(f"Error while writing to socket: {error}") from error
        except BaseException:  # cancelled mid-write: what went out is unknown, so the connection goes
            await self.disconnect(nowait=True)
            raise

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):  # a command of two words, 'CONFIG GET', is sent as two arguments
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        if self._as_given:
            try:
                return [hiredis.pack_command(args)]
            except TypeError:
                pass
        encoded = (self.encoder.encode(arg) for arg in args)
        return [hiredis.pack_command(tuple(bytes(arg) if isinstance(arg, memoryview) else arg
                                           for arg in encoded))]


class _ClusterNode(ClusterNode):
    """redis-py's node of a cluster, whose idle connections leave its pool before they are closed.
    After a connection error or a timeout on a node, redis-py 8.1 closes the node's idle connections
    (their state may predate a failover) in tasks that start a turn of the loop later, while they
    are still in the pool: commands that took them up meanwhile lose them as they write or read, a
    cascade of AttributeError and "Connection closed by server", each using up its command's one
    retry (redis/redis-py#4287; seen in a sign-in storm on a cluster, where it answered 500). Here
    they are out of the pool first, and out of its count: no command can take one, and commands
    meanwhile open new ones."""

    __slots__ = ()

    async def disconnect_free_connections(self) -> None:
        idle = list(self._free)
        self._free.clear()
        for connection in idle:
            self._connections.remove(connection)
        await asyncio.gather(*(connection.disconnect() for connection in idle), return_exceptions=True)


class _RedisCluster(aioredis.RedisCluster):
    """redis-py's cluster client, with three changes:
      - a burst beyond REDIS_MAX_CONNECTIONS commands in flight waits up to `pool_timeout_s` for one
        to finish, as the one-server client's pool does; redis-py's pool per node fails at once;
      - a node's idle connections are not closed under commands taking them up (_ClusterNode);
      - a command whose connection was closed under it while it wrote is tried again: redis-py 8.1
        lets that race out as asyncio's AttributeError or TypeError instead of a ConnectionError
        (redis/redis-py#4287). The retry takes a fresh connection."""

    ERRORS_ALLOW_RETRY = (*aioredis.RedisCluster.ERRORS_ALLOW_RETRY, AttributeError, TypeError)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Our connections, on the nodes known and on those found later (redis-py fixes the class in
        # the keyword arguments it gives every node it makes).
        self.connection_kwargs["connection_class"] = _Connection
        for node in self.nodes_manager.startup_nodes.values():
            node.connection_class = _Connection
            node.__class__ = _ClusterNode
        # Commands in flight from this client, over every node: none of the nodes' pools can run out.
        self._in_flight = asyncio.Semaphore(REDIS_MAX_CONNECTIONS)
        self.pool_timeout_s = REDIS_SOCKET_TIMEOUT_S

    async def initialize(self, *args: Any, **kwargs: Any) -> _RedisCluster:
        await super().initialize(*args, **kwargs)
        # The nodes found (redis-py makes them of its own class; ours adds no attributes).
        for node in self.nodes_manager.nodes_cache.values():
            node.__class__ = _ClusterNode
        return self

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            # Not wait_for: on Python 3.11 a caller cancelled in the turn its permit came carried on.
            async with asyncio.timeout(self.pool_timeout_s):
                await self._in_flight.acquire()
        except TimeoutError:
            raise redis.exceptions.ConnectionError(
                f"no Redis connection came free within {self.pool_timeout_s:g} s "
                f"({REDIS_MAX_CONNECTIONS} commands in flight)") from None
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self._in_flight.release()


def connect_redis(url: str) -> aioredis.Redis:
    """An asyncio Redis client that gives up in bounded time. A connection error is retried once, on a
    fresh connection (the pooled one may predate a restart of Redis); a timeout is not retried.
    A Redis Cluster (`?cluster=yes`) gets a cluster client: each command goes to its key's node."""
    url, cluster = split_cluster_url(url)
    if cluster:
        return _RedisCluster.from_url(  # type: ignore[return-value]  # the same commands, routed
            url, max_connections=REDIS_MAX_CONNECTIONS, socket_timeout=REDIS_SOCKET_TIMEOUT_S,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)))
    pool = aioredis.BlockingConnectionPool.from_url(
        url, connection_class=_Connection, max_connections=REDIS_MAX_CONNECTIONS, timeout=REDIS_SOCKET_TIMEOUT_S,
        socket_timeout=REDIS_SOCKET_TIMEOUT_S, socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)))
    return aioredis.Redis.from_pool(pool)


def async_redis(url: str, **options: Any) -> aioredis.Redis:
    """A plain asyncio client, a cluster client when the URL names a Redis Cluster: for tools, tests
    and pub/sub, which choose their own timeouts."""
    url, cluster = split_cluster_url(url)
    return (aioredis.RedisCluster if cluster else aioredis.Redis).from_url(url, **options)  # type: ignore[return-value]


def sync_redis(url: str, **options: Any) -> redis.Redis:
    """A blocking client for tools and tests: a cluster client when the URL names a Redis Cluster."""
    url, cluster = split_cluster_url(url)
    return (redis.RedisCluster if cluster else redis.Redis).from_url(url, **options)  # type: ignore[return-value]


@dataclass
class Backoff:
    """Exponential delays between attempts: `first_s`, doubling up to `max_s`; back to `first_s`
    once an attempt lasted `reset_after_s` (it was working, this failure is a new one)."""

    first_s: float = 0.5
    max_s: float = 30.0
    reset_after_s: float = 30.0
    _last_s: float = 0.0

    def delay(self, lasted_s: float) -> float:
        if self._last_s == 0.0 or lasted_s >= self.reset_after_s:
            self._last_s = self.first_s
        else:
            self._last_s = min(self._last_s * 2, self.max_s)
        return self._last_s


@dataclass
class Dependency:
    """A store a process cannot work without: how to probe it, and what to do once it is back."""

    name: str
    reason: str
    probe: Callable[[], Awaitable[None]]
    recovered: Callable[[], Awaitable[None]] | None = None
    close: Callable[[], Awaitable[None]] | None = None


def postgres_dependency(url: str, recovered: Callable[[], Awaitable[None]] | None = None) -> Dependency:
    """Probes with `SELECT 1` on a connection of its own (opened again after any failure)."""
    held: list[psycopg.AsyncConnection] = []

    async def probe() -> None:
        if not held:
            held.append(await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=2))
        conn = held[0]
        try:
            await conn.execute("SELECT 1")
        except BaseException:
            if held and held[0] is conn:
                held.clear()
            _abandon(conn)
            raise

    async def close() -> None:
        while held:
            await held.pop().close()

    info = psycopg.conninfo.conninfo_to_dict(url)
    name = f"postgresql {info.get('host', '')}:{info.get('port', '')}/{info.get('dbname', '')}"
    return Dependency(name, DATABASE_UNAVAILABLE, probe, recovered, close)


def _abandon(conn: psycopg.AsyncConnection) -> None:
    """Drop a connection whose server may not answer, without waiting for it."""
    with contextlib.suppress(Exception):
        conn.pgconn.finish()


def redis_dependency(url: str) -> Dependency:
    client = connect_redis(url)
    # On a Redis Cluster, every master: one that does not answer is the outage of its slots.
    target = {"target_nodes": aioredis.RedisCluster.PRIMARIES} if is_cluster(client) else {}

    async def probe() -> None:
        await client.ping(**target)

    return Dependency("redis", CACHE_UNAVAILABLE, probe, close=client.aclose)


@dataclass
class DependencyWatcher:
    """Probes each dependency every `interval_s`; one that fails or takes over `timeout_s` is down."""

    dependencies: list[Dependency]
    interval_s: float = PROBE_INTERVAL_S
    timeout_s: float = PROBE_TIMEOUT_S
    # Called with True when every dependency is up, False when one goes down.
    on_change: Callable[[bool], Awaitable[None]] | None = None
    down: dict[str, str] = field(default_factory=dict)  # name -> reason
    _waiters: set[asyncio.Future] = field(default_factory=set)
    _task: asyncio.Task | None = None

    @property
    def reason(self) -> str | None:
        """Why calls cannot be served now (the first dependency down), or None."""
        return next(iter(self.down.values()), None)

    def outage(self) -> asyncio.Future:
        """A future that gets the reason when a dependency goes down; `discard` it when done with it."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        return waiter

    def discard(self, waiter: asyncio.Future) -> None:
        self._waiters.discard(waiter)

    async def check_once(self) -> None:
        results = await asyncio.gather(*(self._probe(d) for d in self.dependencies))
        was_ok = not self.down
        for dependency, error in zip(self.dependencies, results):
            if error is None and dependency.name in self.down:
                del self.down[dependency.name]
                log.warning("%s is reachable again", dependency.name)
                if dependency.recovered is not None:
                    await dependency.recovered()
            elif error is not None and dependency.name not in self.down:
                self.down[dependency.name] = dependency.reason
                log.error("%s is unavailable (%s); answering UNAVAILABLE until it is back", dependency.name, error)
        if self.down:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(self.reason)
            self._waiters.clear()
        if was_ok != (not self.down) and self.on_change is not None:
            await self.on_change(not self.down)

    async def _probe(self, dependency: Dependency) -> BaseException | None:
        # NOTE: not asyncio.wait_for: it waits for the cancelled probe to finish, and a cancelled
        # psycopg query first tries to cancel on the server, which (stopped) may not answer for seconds.
        task = asyncio.ensure_future(dependency.probe())
        done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
        if not done:
            done, _ = await asyncio.wait({task}, timeout=PROBE_GRACE_S)
        if not done:
            task.cancel()
            task.add_done_callback(ignore_outcome)
            return TimeoutError(f"no answer in {self.timeout_s} s")
        return task.exception()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.check_once()
            except Exception:
                log.exception("dependency check failed")
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    def start(self) -> None:
        if self.dependencies and self._task is None:
            self._task = asyncio.create_task(self._run(), name="dependency-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for dependency in self.dependencies:
            if dependency.close is not None:
                with contextlib.suppress(Exception):
                    await finish_within(f"closing the probe of {dependency.name}", dependency.close())


async def finish_within(what: str, awaitable: Awaitable[Any], timeout_s: float | None = None) -> None:
    """Await `awaitable` for at most `timeout_s` (CLOSE_TIMEOUT_S by default), raising what it raises.
    Past that, log `what` hung, with where it waits, and go on without it: a process on its way out
    must not hang on one thing that does not close. Not asyncio.wait_for, which would wait for the
    cancelled awaitable too."""
    limit_s = CLOSE_TIMEOUT_S if timeout_s is None else timeout_s
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=limit_s)
    if done:
        return task.result()
    log.error("%s did not finish within %g s; going on without it. It waits in:\n%s", what, limit_s,
              awaiting(task.get_coro()))
    task.cancel()
    task.add_done_callback(ignore_outcome)


def awaiting(coro: Any) -> str:
    """Where a suspended coroutine waits: each frame down its chain of awaits, then what the last one
    awaits. (Task.print_stack shows only the outermost frame of a suspended coroutine.)"""
    lines = []
    while (frame := getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)) is not None:
        lines.append(f'  File "{frame.f_code.co_filename}", line {frame.f_lineno}, in {frame.f_code.co_name}')
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return "\n".join([*lines, f"  awaiting {coro!r}"])


def ignore_outcome(task: asyncio.Future) -> None:
    """Done callback of a task left to finish in the background: nobody awaits its outcome."""
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved
