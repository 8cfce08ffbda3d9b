"""A lean Redis client for a process's hottest reads: pipelines over one connection, nothing else.

redis-py's asyncio client spends on each pipeline a pool checkout and return (a Condition under a
timeout), a timeout context per reply, a callback per command and several turns of the event loop. A
feed page makes three pipelines: measured side by side (`python -m loadtest.wire_bench`), the same
three cost redis-py about three times the CPU they cost here, where a pipeline is its
commands packed by hiredis and written at once, and one future that the connection's reader answers
when their replies are in. Pipelines from concurrent callers share the connection, in order (Redis
answers in order); a caller that stops waiting leaves its place, and its replies are read and dropped.

The same answers and errors as redis-py (RESP2, replies as bytes): a timeout is a redis TimeoutError
and closes the connection (the replies still to come would answer the wrong callers), a lost or refused
connection a ConnectionError, tried once more on a fresh connection as the services' redis-py client
does (services.common.dependencies.connect_redis); an error reply raises as redis-py would raise it
(ResponseError, NoScriptError, BusyLoadingError...), after the whole pipeline is read.

Only for one Redis server over TCP: `wire_for` gives None for a cluster (each key to its node),
TLS or a unix socket, and the caller keeps redis-py (its Pipeline has the same methods).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Self

import hiredis
import redis.asyncio as aioredis
import redis.exceptions
from redis._parsers.base import BaseParser
from redis.commands.helpers import list_or_args

from services.common.cluster import is_cluster
from services.common.dependencies import REDIS_CONNECT_TIMEOUT_S, REDIS_SOCKET_TIMEOUT_S

Command = tuple[Any, ...]


class _Batch:
    __slots__ = ("future", "left", "replies")

    def __init__(self, future: asyncio.Future, count: int) -> None:
        self.future, self.left, self.replies = future, count, []


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.batches: collections.deque[_Batch] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                batch = self.batches[0]
                batch.replies.append(reply)
                batch.left -= 1
                if not batch.left:
                    self.batches.popleft()
                    if not batch.future.done():  # else its caller stopped waiting
                        batch.future.set_result(batch.replies)
        except (hiredis.ProtocolError, IndexError) as error:  # garbage, or a reply nobody asked for
            self.fail(redis.exceptions.ConnectionError(f"Redis sent what cannot be read ({error!r})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_all(redis.exceptions.ConnectionError(
            "Connection closed by server." if exc is None else f"Error while reading from socket: {exc}"))

    def send(self, commands: list[Command]) -> asyncio.Future:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise redis.exceptions.ConnectionError("Connection closed.")
        try:
            packed = b"".join(hiredis.pack_command(command) for command in commands)
        except TypeError as error:
            raise redis.exceptions.DataError(f"a command's argument cannot be sent: {error}") from None
        future = asyncio.get_running_loop().create_future()
        self.batches.append(_Batch(future, len(commands)))
        self.transport.write(packed)
        return future

    def fail(self, error: BaseException) -> None:
        """Close the connection, failing every pipeline on it."""
        self.closed = True
        self._fail_all(error)
        if self.transport is not None:
            self.transport.abort()

    def _fail_all(self, error: BaseException) -> None:
        while self.batches:
            future = self.batches.popleft().future
            if not future.done():
                future.set_exception(error)
                future.exception()  # a caller that stopped waiting must not leave it "never retrieved"


class WireRedis:
    """Pipelines to one Redis server over one connection (opened at the first, again after a loss)."""

    def __init__(self, host: str, port: int, *, password: str | None = None, username: str | None = None,
                 db: int = 0, timeout_s: float = REDIS_SOCKET_TIMEOUT_S,
                 connect_timeout_s: float = REDIS_CONNECT_TIMEOUT_S) -> None:
        self.host, self.port, self.db = host, port, db
        self.password, self.username = password, username
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self._connection: _Connection | None = None
        self._connecting = asyncio.Lock()

    def pipeline(self, transaction: bool = False) -> WirePipeline:
        if transaction:
            raise ValueError("WireRedis pipelines are not transactions")
        return WirePipeline(self)

    async def execute(self, commands: list[Command]) -> list[Any]:
        """The commands' replies, in their order (one write, one wait)."""
        if not commands:
            return []
        for attempt in (1, 2):
            connection = await self._connected()
            try:
                async with asyncio.timeout(self.timeout_s):
                    replies = await connection.send(commands)
            except TimeoutError:
                connection.fail(redis.exceptions.TimeoutError("Timeout reading from socket"))
                raise redis.exceptions.TimeoutError("Timeout reading from socket") from None
            except redis.exceptions.ConnectionError:
                if attempt == 2:
                    raise
                continue  # once more, on a fresh connection (this one may predate a restart of Redis)
            for reply in replies:
                if isinstance(reply, hiredis.ReplyError):
                    raise BaseParser.parse_error(str(reply))
            return replies
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._connection is not None:
            self._connection.fail(redis.exceptions.ConnectionError("Connection closed."))
            self._connection = None

    async def _connected(self) -> _Connection:
        connection = self._connection
        if connection is not None and not connection.closed:
            return connection
        async with self._connecting:
            if self._connection is not None and not self._connection.closed:
                return self._connection
            setup: list[Command] = []
            if self.password:
                setup.append(("AUTH", *([self.username] if self.username else []), self.password))
            if self.db:
                setup.append(("SELECT", self.db))
            fresh: _Connection | None = None
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    _, fresh = await asyncio.get_running_loop().create_connection(_Connection, self.host, self.port)
                    replies = await fresh.send(setup) if setup else []
                errors = [r for r in replies if isinstance(r, hiredis.ReplyError)]
                if errors:
                    raise BaseParser.parse_error(str(errors[0]))
            except BaseException as error:  # nothing half set up stays open
                if fresh is not None:
                    fresh.fail(redis.exceptions.ConnectionError("Connection closed."))
                if isinstance(error, TimeoutError):
                    raise redis.exceptions.TimeoutError("Timeout connecting to server") from None
                if isinstance(error, OSError):
                    raise redis.exceptions.ConnectionError(
                        f"Error connecting to {self.host}:{self.port}. {error}.") from error
                raise
            self._connection = fresh
            return fresh


class WirePipeline:
    """The part of redis-py's Pipeline the hot reads use (same signatures), queued and sent at once."""

    def __init__(self, wire: WireRedis) -> None:
        self.wire = wire
        self.commands: list[Command] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.commands.clear()

    def mget(self, keys: Any, *args: Any) -> WirePipeline:
        self.commands.append(("MGET", *list_or_args(keys, args)))
        return self

    def hmget(self, name: Any, keys: Any, *args: Any) -> WirePipeline:
        self.commands.append(("HMGET", name, *list_or_args(keys, args)))
        return self

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> WirePipeline:
        self.commands.append(("EVAL", script, numkeys, *keys_and_args))
        return self

    async def execute(self) -> list[Any]:
        commands, self.commands = self.commands, []
        return await self.wire.execute(commands)


def wire_for(client: aioredis.Redis) -> WireRedis | None:
    """A WireRedis to the server `client` reads, or None where it cannot go (a cluster, TLS, a unix socket)."""
    if is_cluster(client):
        return None
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    if "path" in kwargs or pool.connection_class.__name__.endswith(("SSLConnection", "UnixDomainSocketConnection")):
        return None
    return WireRedis(kwargs.get("host", "localhost"), int(kwargs.get("port", 6379)), password=kwargs.get("password"),
                     username=kwargs.get("username"), db=int(kwargs.get("db") or 0))

