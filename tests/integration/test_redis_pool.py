"""The services' Redis client (services.common.dependencies.connect_redis) against the stack's Redis.

On a Redis Cluster (PICTOR_REDIS_NODES) redis-py's cluster client keeps a pool per node that does not
wait: a burst beyond it fails at once, as a connection error (CACHE_UNAVAILABLE). These tests are of
the one-server pool."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.exceptions

from services.common import dependencies
from services.common.dependencies import connect_redis, split_cluster_url


@pytest.fixture(autouse=True)
def one_server(settings) -> None:
    if split_cluster_url(settings.redis_url)[1]:
        pytest.skip("the pool that waits is the one-server client's (see the module's docstring)")


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
        monkeypatch.setattr(client.connection_pool, "timeout", 0.2)
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()
        assert await holder is None
    finally:
        await client.aclose()
