"""The services' Redis client (services.common.dependencies.connect_redis) against the stack's Redis:
one server's pool, or on a Redis Cluster (PICTOR_REDIS_NODES) the cap on commands in flight that
makes redis-py's cluster client wait as that pool does."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.exceptions

from services.common import dependencies
from services.common.cluster import is_cluster
from services.common.dependencies import connect_redis


async def test_a_burst_beyond_the_pool_waits_for_a_free_connection_instead_of_failing(settings, monkeypatch):
    monkeypatch.setattr(dependencies, "REDIS_MAX_CONNECTIONS", 3)
    client = connect_redis(settings.redis_url)
    try:
        # Nine calls that each hold a connection for 0.3 s, on three connections: three rounds.
        results = await asyncio.gather(*(client.blpop(f"test-empty-{uuid.uuid4().hex}", 0.3) for _ in range(9)))
        assert results == [None] * 9
    finally:
        await client.aclose()


async def test_a_burst_that_outwaits_a_command_timeout_is_a_cache_error_not_a_hang(settings, monkeypatch):
    monkeypatch.setattr(dependencies, "REDIS_MAX_CONNECTIONS", 1)
    client = connect_redis(settings.redis_url)
    try:
        holder = asyncio.create_task(client.blpop(f"test-empty-{uuid.uuid4().hex}", 1))
        await asyncio.sleep(0.1)
        if is_cluster(client):
            monkeypatch.setattr(client, "pool_timeout_s", 0.2)
        else:
            monkeypatch.setattr(client.connection_pool, "timeout", 0.2)
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()
        assert await holder is None
    finally:
        await client.aclose()


async def test_a_command_cancelled_at_any_step_is_cancelled(settings):
    # The caller's cancellation must reach it whatever the command was doing. Python 3.11's wait_for
    # (around redis-py's every write, and our cluster client's wait for a turn among the commands in
    # flight) hides a cancellation that comes in the turn its inner task finishes: the caller carried
    # on as though never cancelled, and a loop cancelled to stop (the transcoder's progress notices,
    # which the job that cancelled them awaits) ran on for ever. Here a command is cancelled after
    # each of its first steps (its turn, its connection, its write, its read).
    client = connect_redis(settings.redis_url)
    key = f"test-cancel-{uuid.uuid4().hex}"
    try:
        await client.ping()
        cancelled = 0
        for steps in range(60):
            task = asyncio.create_task(client.set(key, steps, ex=60))
            for _ in range(steps):
                await asyncio.sleep(0)
            if task.done():  # it had its answer within those steps
                continue
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            cancelled += 1
        assert cancelled > 5
        assert await client.set(key, "end", ex=60) and await client.get(key) == b"end"  # the client still works
        if is_cluster(client):
            assert client._in_flight._value == dependencies.REDIS_MAX_CONNECTIONS  # every turn given back
        else:
            assert not client.connection_pool._in_use_connections  # every connection given back
    finally:
        await client.aclose()
