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
