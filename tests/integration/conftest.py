"""Shared by the integration tests: clients of the stack's real PostgreSQL and Redis."""

from __future__ import annotations

import pytest

from services.common.db import Database
from services.common.dependencies import async_redis
from services.common.ids import IdAllocator


@pytest.fixture
async def client(settings):
    """An asyncio Redis client of the stack's Redis."""
    c = async_redis(settings.redis_url)
    yield c
    await c.aclose()


@pytest.fixture
async def db(settings):
    """An open Database (pools per physical database) of the stack's PostgreSQL."""
    database = Database(settings, max_size=4)
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def ids(settings) -> IdAllocator:
    return IdAllocator(settings.logical_shards)
