"""What differs on a Redis Cluster, in one place: commands over keys of many slots.

A command or script whose keys map to different slots fails on a cluster. Where
one Redis takes such a call in one round trip, these helpers make the same call
on either: one script for many keys, several GETs at once.

call_each, execute_each: on one Redis, the calls go in one pipeline (a lone script call goes alone:
a pipeline holding a script asks SCRIPT EXISTS before it runs). redis-py's cluster client pipelines
no scripts (a script's keys decide its node only when it runs), so on a Redis
Cluster each call is its own command, routed to its keys' node, at most
CLUSTER_CONCURRENCY in flight. Either way every call's keys must share a slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

CLUSTER_CONCURRENCY = 32


def is_cluster(client: object) -> bool:
    return isinstance(client, (aioredis.RedisCluster, redis.RedisCluster))

Call = tuple[Sequence[str], Sequence[Any]]  # (keys, args)


async def call_each(client: aioredis.Redis, script: AsyncScript, calls: Sequence[Call]) -> list[Any]:
    """Run `script` once per (keys, args); the replies in the calls' order."""
    if not calls:
        return []
    if len(calls) == 1:  # EVALSHA alone: a pipeline asks SCRIPT EXISTS first, one more round trip
        (keys, args), = calls
        return [await script(keys=list(keys), args=list(args))]
    if not is_cluster(client):
        async with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                await script(keys=list(keys), args=list(args), client=pipe)
            return await pipe.execute()
    return await _concurrently([lambda keys=keys, args=args: script(keys=list(keys), args=list(args))
                                for keys, args in calls])


async def execute_each(client: aioredis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Each command, as (name, *args): in one pipeline on one Redis; on a cluster, whose pipelines
    refuse some commands (PFCOUNT, for one), as calls of their own. The replies in order."""
    if not is_cluster(client):
        async with client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return await pipe.execute()
    return await _concurrently([lambda command=command: client.execute_command(*command) for command in commands])


async def _concurrently(calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Each call, at most CLUSTER_CONCURRENCY in flight; the replies in order."""
    places = asyncio.Semaphore(CLUSTER_CONCURRENCY)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with places:
            return await call()

    return list(await asyncio.gather(*(one(call) for call in calls)))


async def mget(client: aioredis.Redis, keys: Sequence[str]) -> list[Any]:
    """MGET: one command on one Redis; on a cluster, one per slot (not atomic across them)."""
    if is_cluster(client):
        return await client.mget_nonatomic(keys)  # type: ignore[attr-defined]
    return await client.mget(keys)
